"""persona-pipeline: seed or load customers, run the SQL models, create, build and inspect persona sets."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence

from persona_pipeline.core.traits import CatalogError
from persona_pipeline.core.validation import DEFAULT_MAX_QUARANTINE_SHARE

EXIT_USER_ERROR = 2


def say(text: str) -> None:
    print(text, flush=True)


def _engine():  # noqa: ANN202 - a SQLAlchemy engine
    from persona_pipeline.warehouse.engine import get_engine

    return get_engine()


def cmd_seed(args: argparse.Namespace) -> int:
    from persona_pipeline.core.synthetic import generate
    from persona_pipeline.warehouse.engine import describe
    from persona_pipeline.warehouse.sources import replace_sources

    start = time.perf_counter()
    end = dt.date.fromisoformat(args.end_date) if args.end_date else None
    say(f"generating {args.contacts:,} contacts over {args.days} days (seed {args.seed}) ...")
    base = generate(args.contacts, args.days, args.seed, end)
    say(
        f"  {len(base.contacts):,} contacts, {len(base.trait_history):,} history rows, {len(base.orders):,} orders, "
        f"{len(base.catalog.traits)} traits ({time.perf_counter() - start:.1f}s)"
    )
    engine = _engine()
    counts = replace_sources(
        engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments
    )
    say(f"  written to {describe(engine)}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    say(f"done in {time.perf_counter() - start:.1f}s")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from persona_pipeline.loading import load_files

    report = load_files(
        _engine(),
        args.contacts,
        args.traits,
        orders_path=args.orders,
        delimiter=args.delimiter,
        decimal=args.decimal,
        date_format=args.date_format,
        encoding=args.encoding,
        rejects_path=args.rejects,
    )
    for line in report.lines():
        say(line)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from persona_pipeline.runner import run_sql_models
    from persona_pipeline.sql_models import discover, execution_order

    if args.action == "list":
        models = discover()
        for name in execution_order(models):
            m = models[name]
            say(f"{m.folder + '/' if m.folder else ''}{name:<28} refs: {', '.join(m.refs) or '-'}")
        return 0
    ok, _ = run_sql_models(say, args.only or None)
    return 0 if ok else 1


def cmd_persona_set(args: argparse.Namespace) -> int:
    from persona_pipeline.warehouse import persona_sets as store

    engine = _engine()
    if args.action == "create":
        from persona_pipeline.sql_models import discover, require_cohort
        from persona_pipeline.warehouse.sources import load_catalog

        require_cohort(discover(), args.cohort)
        traits = [t.strip() for t in args.traits.split(",") if t.strip()] if args.traits else None
        catalog = load_catalog(engine)
        catalog.select(traits)  # unknown names fail here, before anything is stored
        record = store.create(engine, args.name, args.cohort, traits, args.personas, args.seed)
        say(
            f"created persona set {record.name!r} (id {record.id}) on cohort {record.cohort!r}: {record.status}"
        )
        say(f"build it with: persona-pipeline persona-set build {_shell_quote(record.name)}")
        return 0
    if args.action == "list":
        rows = store.list_all(engine)
        if not rows:
            say("no persona sets yet: persona-pipeline persona-set create --name NAME --cohort COHORT")
            return 0
        say(f"{'name':<32} {'personas':>8}  {'cohort':<22} {'status':<9} built at")
        for r in rows:
            k = len(store.read_personas(engine, r.id)) if r.current_build else 0
            built = r.built_at.strftime("%Y-%m-%d %H:%M") if r.built_at else "-"
            say(f"{_clip(r.name, 32):<32} {k or '-':>8}  {_clip(r.cohort, 22):<22} {r.status:<9} {built}")
        return 0
    if args.action == "show":
        return _show(engine, args.name)
    if args.action == "build":
        from persona_pipeline.runner import build_persona_set

        report = build_persona_set(args.name, say, args.max_quarantine_share)
        if not report.success:
            say(f"build failed: {report.message}")
            return 1
        say(f"persona set {args.name!r} {report.message}")
        return _show(engine, args.name)
    raise AssertionError(args.action)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _show(engine, name: str) -> int:  # noqa: ANN001
    from persona_pipeline.warehouse import persona_sets as store

    record = store.get(engine, name)
    say(f"persona set {record.name!r} · cohort {record.cohort!r} · status {record.status}")
    if record.status == "errored" and record.error:
        say(f"  error: {record.error}")
    build = store.latest_build(engine, record.id)
    if build is None or record.current_build is None:
        say("  not built yet")
        return 0
    kept = (
        f", {build['kept_from_previous']:.1%} kept their persona"
        if build["kept_from_previous"] is not None
        else ""
    )
    say(
        f"  build {build['build']}: {build['k']} personas · {build['cohort_size']:,} contacts "
        f"({build['quarantined']:,} quarantined) · stability {build['stability']:.2f}{kept}"
    )
    say(f"  k: {build['k_reason']}")
    for p in store.read_personas(engine, record.id):
        say("")
        say(f"  [{p['persona_id']}] {p['name']} — {p['population']:,} contacts ({p['share']:.1%})")
        for effect in p["defining_traits"]:
            say(f"      · {effect['text']}")
        for rule in p["rules"][:1]:
            say(
                f"      rule: {rule['text']} ({rule['precision']:.0%} precise, covers {rule['coverage']:.0%})"
            )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from persona_pipeline.warehouse import persona_sets as store

    start = time.perf_counter()
    cmd_seed(argparse.Namespace(contacts=args.contacts, days=args.days, seed=args.seed, end_date=None))
    engine = _engine()
    existing = {r.name for r in store.list_all(engine)}
    name = "Customers" if "Customers" not in existing else f"Customers {dt.datetime.now():%Y-%m-%d %H%M%S}"
    cmd_persona_set(
        argparse.Namespace(
            action="create", name=name, cohort="customers", traits=None, personas=None, seed=args.seed
        )
    )
    code = cmd_persona_set(argparse.Namespace(action="build", name=name, max_quarantine_share=None))
    say(
        f"\ndemo finished in {time.perf_counter() - start:.1f}s. Explore it: make dagster (then open http://127.0.0.1:3000)"
    )
    return code


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="persona-pipeline", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    seed = sub.add_parser("seed", help="write a seeded, realistic customer base to the warehouse")
    seed.add_argument("--contacts", type=int, default=20_000)
    seed.add_argument("--days", type=int, default=90, help="days of trait history")
    seed.add_argument("--seed", type=int, default=0)
    seed.add_argument("--end-date", help="last day of the history, YYYY-MM-DD (default: today)")
    seed.set_defaults(func=cmd_seed)

    load = sub.add_parser("load", help="load your own contacts (CSV or Parquet) with a trait catalog")
    load.add_argument("contacts", help="contacts file (.csv, .tsv, .txt or .parquet)")
    load.add_argument("--traits", required=True, help="trait catalog YAML declaring each trait's kind")
    load.add_argument(
        "--orders", help="orders file: order_id, contact_id, ordered_at, amount, product_category"
    )
    load.add_argument("--delimiter", help="field delimiter (default: detected)")
    load.add_argument("--decimal", help="decimal mark, '.' or ',' (default: detected)")
    load.add_argument("--date-format", help="strftime format of dates, e.g. %%d/%%m/%%Y (default: detected)")
    load.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    load.add_argument(
        "--rejects", help="where to write rejected rows as CSV (default: beside the home folder)"
    )
    load.set_defaults(func=cmd_load)

    models = sub.add_parser("models", help="list or run the SQL models in dbt_like_sql/")
    models.add_argument("action", choices=["run", "list"])
    models.add_argument("--only", nargs="*", help="run these models and what they need")
    models.set_defaults(func=cmd_models)

    ps = sub.add_parser("persona-set", help="create, list, show and build persona sets")
    ps_sub = ps.add_subparsers(dest="action", required=True)
    create = ps_sub.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--cohort", required=True, help="a model in dbt_like_sql/cohorts/")
    create.add_argument("--traits", help="clustering traits, comma separated (default: the catalog's)")
    create.add_argument("--personas", type=int, help="number of personas, 2..8 (default: chosen by the data)")
    create.add_argument("--seed", type=int, default=0)
    ps_sub.add_parser("list")
    show = ps_sub.add_parser("show")
    show.add_argument("name")
    build = ps_sub.add_parser("build")
    build.add_argument("name")
    build.add_argument(
        "--max-quarantine-share",
        type=float,
        default=None,
        help=f"stop the build when more than this share of rows fails validation (default {DEFAULT_MAX_QUARANTINE_SHARE})",
    )
    ps.set_defaults(func=cmd_persona_set)

    demo = sub.add_parser("demo", help="seed 20,000 contacts, build a persona set and print it")
    demo.add_argument("--contacts", type=int, default=20_000)
    demo.add_argument("--days", type=int, default=90)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    from persona_pipeline.core.clustering import ClusteringError
    from persona_pipeline.core.model import FeatureError
    from persona_pipeline.core.validation import ValidationError
    from persona_pipeline.loading import LoadError
    from persona_pipeline.persona_build import BuildError
    from persona_pipeline.sql_models import SqlModelError
    from persona_pipeline.warehouse.persona_sets import PersonaSetError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        CatalogError,
        PersonaSetError,
        SqlModelError,
        LoadError,
        BuildError,
        ValidationError,
        FeatureError,
        ClusteringError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
