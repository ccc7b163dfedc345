"""demo: seed a base, build a persona set on it, snapshot its flow and write the report and Explore page."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from persona_pipeline.cli import data
from persona_pipeline.cli.output import quiet, say
from persona_pipeline.cli.persona_sets import build_failed, print_set
from persona_pipeline.errors import PersonaPipelineError
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set, refresh_explore, refresh_study, take_snapshots
from persona_pipeline.studies.explore import default_explore_path
from persona_pipeline.studies.flow import history_days
from persona_pipeline.studies.overview import default_overview_path
from persona_pipeline.studies.report import default_report_path
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import get_engine

ANALYSIS_TRAITS = ["state", "preferred_channel"]


MIN_CONTACTS = 1_000  # below this the customers cohort is too small to cluster, and the seed would be wasted
FLOW_DAYS = 28  # four weeks of daily snapshots, one run: enough to see contacts move


def demo(args: argparse.Namespace) -> int:
    if args.contacts < MIN_CONTACTS:  # checked before the seed replaces the warehouse's data
        raise PersonaPipelineError(
            f"the demo needs at least {MIN_CONTACTS:,} contacts, not {args.contacts:,}"
        )
    start = time.perf_counter()
    data.seed_base(args.contacts, args.days, args.seed)
    engine = get_engine()
    existing = {r.name for r in store.list_all(engine)}
    name = "Customers" if "Customers" not in existing else f"Customers {dt.datetime.now():%Y-%m-%d %H%M%S}"
    record = catalog.create(engine, name, "customers", seed=args.seed, analysis_traits=ANALYSIS_TRAITS)
    say(f"created persona set {record.name!r} (id {record.id}) on cohort {record.cohort!r}: {record.status}")
    report = build_persona_set(name, say)
    if not report.success:
        return build_failed(report)
    say(f"persona set {name!r} {report.message}")
    print_set(engine, store.get(engine, name))
    if args.days:
        last = min(history_days(engine)[1], dt.date.today())
        first = last - dt.timedelta(days=min(args.days, FLOW_DAYS) - 1)
        say(f"\nflow: snapshotting the {(last - first).days + 1} days from {first} to {last} in one run")
        snapshotted, failure = take_snapshots(first, last, quiet)
        if snapshotted:
            refresh_study(name, quiet, ["persona_flow", "persona_report"])
            say(f"report: {default_report_path(store.get(engine, name))}")
        else:
            say(
                f"the flow snapshots failed ({failure}); the personas are built: persona-pipeline flow snapshot"
            )
    if refresh_explore(quiet).success:
        say(f"explore: {default_explore_path()}")
        say(f"overview: {default_overview_path()}")
    say(
        f"\ndemo finished in {time.perf_counter() - start:.1f}s. Explore it: make dagster (then open http://127.0.0.1:3000)"
    )
    return 0
