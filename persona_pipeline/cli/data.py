"""seed, load, models: the customer base in the warehouse and the SQL models over it."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from persona_pipeline.cli.output import say
from persona_pipeline.warehouse.engine import describe, get_engine


def seed(args: argparse.Namespace) -> int:
    seed_base(args.contacts, args.days, args.seed, args.end_date)
    return 0


def seed_base(contacts: int, days: int, seed: int, end: dt.date | None = None) -> None:
    """Generate a seeded base and write it to the warehouse, saying what was written."""
    from persona_pipeline.core.synthetic import generate  # numpy and pandas: only for seeding
    from persona_pipeline.warehouse.sources import replace_sources  # pandas: writes frames

    start = time.perf_counter()
    say(f"generating {contacts:,} contacts over {days} days (seed {seed}) ...")
    base = generate(contacts, days, seed, end)
    say(
        f"  {len(base.contacts):,} contacts, {len(base.trait_history):,} history rows, {len(base.orders):,} orders, "
        f"{len(base.catalog.traits)} traits ({time.perf_counter() - start:.1f}s)"
    )
    engine = get_engine()
    counts = replace_sources(
        engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments
    )
    say(f"  written to {describe(engine)}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    _observe()
    say(f"done in {time.perf_counter() - start:.1f}s")


def _observe() -> None:
    """Tell Dagster the sources changed, so the UI marks the models reading them stale."""
    from persona_pipeline.runtime.jobs import observe_sources  # Dagster: only once something was written

    result = observe_sources(say)
    if not result.success:
        say(f"  the sources were written, but Dagster could not record it: {result.message}")


def load(args: argparse.Namespace) -> int:
    from persona_pipeline.loading import LoadOptions, load_files  # pandas and pyarrow: only for loading

    options = LoadOptions(
        delimiter=args.delimiter,
        decimal=args.decimal,
        date_format=args.date_format,
        encoding=args.encoding,
        rejects_path=args.rejects,
        replace=args.replace,
        delete_missing=args.delete_missing,
        remove_path=args.remove,
        dry_run=args.dry_run,
        max_reject_share=args.max_reject_share,
    )
    report = load_files(get_engine(), args.contacts, args.traits, args.orders, options, say=say)
    for line in report.lines():
        say(line)
    if not args.dry_run:
        _observe()
    return 0


def models(args: argparse.Namespace) -> int:
    from persona_pipeline.sql_models import discover, execution_order  # jinja2: only the models commands

    if args.action == "delete":
        from persona_pipeline.runtime.deletion import delete_cohort  # Dagster: the guard looks at runs

        for name in args.only or []:
            for line in delete_cohort(get_engine(), name):
                say(f"deleted {line}")
        return 0
    if args.action == "list":
        found = discover()
        for name in execution_order(found):
            m = found[name]
            say(f"{m.folder + '/' if m.folder else ''}{name:<28} refs: {', '.join(m.refs) or '-'}")
        return 0
    from persona_pipeline.runtime.jobs import run_sql_models  # Dagster: the models run as a job

    ok, _ = run_sql_models(say, args.only or None)
    return 0 if ok else 1
