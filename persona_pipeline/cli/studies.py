"""analyse, flow, report, explore, export: studying built persona sets."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING

from persona_pipeline.cli.output import clip, quiet, say
from persona_pipeline.config import currency
from persona_pipeline.core.analysis import NO_ORDERS, OrderQuality, PurchaseWindow, purchase_table
from persona_pipeline.core.domain import names_by_id
from persona_pipeline.core.flow import transition_matrix
from persona_pipeline.persona_sets.lifecycle import require_built
from persona_pipeline.runtime.jobs import refresh_explore, refresh_study, take_snapshots
from persona_pipeline.studies import explore as explore_page
from persona_pipeline.studies import flow as flows
from persona_pipeline.studies.analysis import read_analysis
from persona_pipeline.studies.export import export_csv
from persona_pipeline.studies.overview import default_overview_path
from persona_pipeline.studies.report import default_report_path, write_report
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import get_engine

if TYPE_CHECKING:
    import pandas as pd


def analyse(args: argparse.Namespace) -> int:
    engine = get_engine()
    record = store.get(engine, args.name)
    require_built(record)
    result = refresh_study(record.name, say, ["persona_analysis", "persona_report"], args.window_days)
    if not result.success:
        say(f"analysis failed: {result.message}")
        return 1
    table = read_analysis(engine, record.id)
    persona_names = names_by_id(store.read_personas(engine, record.id))
    purchases = purchase_table(table)
    window = PurchaseWindow.from_table(table)
    money = window.currency if window else currency()
    if window is not None:
        say("\n" + window.text())
    if purchases.empty:
        say("\n" + NO_ORDERS)
    else:
        _purchases_table(purchases, persona_names, money)
    quality = {r.bucket: int(r.count) for r in table[table["section"] == "quality"].itertuples()}
    say("\n" + OrderQuality.sentence(quality))
    return 0


def _purchases_table(purchases: pd.DataFrame, persona_names: dict[int, str], money: str) -> None:
    say(
        f"\n{'persona':<32} {'contacts':>9} {'of set':>7} {'revenue ' + money:>15} {'of rev.':>7} "
        f"{'orders':>8} {'customers':>9} {'avg order':>10} {'orders/cust':>11}"
    )
    for pid, row in purchases.iterrows():
        label = "whole cohort" if pid == 0 else persona_names.get(int(pid), str(pid))
        say(
            f"{clip(label, 32):<32} {row['contacts']:>9,.0f} {row['contact_share']:>7.1%} "
            f"{row['revenue']:>15,.2f} {row['revenue_share']:>7.1%} {row['orders']:>8,.0f} "
            f"{row['customers']:>9,.0f} {row['average_order']:>10,.2f} {row['orders_per_customer']:>11.2f}"
        )


def _days(count: int) -> str:
    return f"{count:,} day" + ("" if count == 1 else "s")


def flow(args: argparse.Namespace) -> int:
    engine = get_engine()
    if args.action == "snapshot":
        first, last = flows.history_days(engine)
        end = args.day or min(last, dt.date.today())
        flows.require_day(engine, end)
        days = [end - dt.timedelta(days=i) for i in range(args.days) if end - dt.timedelta(days=i) >= first]
        if len(days) < args.days:  # fresh data: the days before the history began cannot be described
            say(
                f"the trait history begins on {first}: snapshotting the {_days(len(days))} from {first} to {end}"
            )
        start = time.perf_counter()
        ok, message = take_snapshots(min(days), max(days), say)
        if not ok:
            say(f"snapshot of {min(days)} to {max(days)} failed: {message}")
            return 1
        say(f"{_days(len(days))} snapshotted in one run in {time.perf_counter() - start:.1f} s")
        return 0
    record = store.get(engine, args.name)
    # one read of the history; a day without a snapshot is refused before any table is printed
    counts, moves, first, second = flows.flow_view(engine, record.name, args.from_day, args.to_day)
    persona_names = names_by_id(store.read_personas(engine, record.id))
    pivot = counts.pivot_table(index="day", columns="persona_id", values="members", fill_value=0).astype(int)
    # columns by persona id, every name in full once above them: clipped names could read alike
    for pid in pivot.columns:
        say(f"[{int(pid)}] {persona_names.get(int(pid), 'a persona of an earlier build')}")
    pivot.columns = [f"[{int(c)}]" for c in pivot.columns]
    say("\nmembers per persona at the end of each day:\n" + pivot.to_string())
    matrix = transition_matrix(moves)
    matrix.index = [i if isinstance(i, str) else f"[{int(i)}]" for i in matrix.index]
    matrix.columns = [c if isinstance(c, str) else f"[{int(c)}]" for c in matrix.columns]
    say(f"\nfrom {first} (rows) to {second} (columns):\n{matrix.to_string()}")
    return 0


def report(args: argparse.Namespace) -> int:
    engine = get_engine()
    record = store.get(engine, args.name)
    require_built(record)
    if args.out:
        say(f"wrote the report: {write_report(engine, record.name, args.out)}")
        return 0
    result = refresh_study(record.name, quiet, ["persona_report"])
    if not result.success:
        say(f"report failed: {result.message}")
        return 1
    say(f"wrote the report: {default_report_path(record)}")
    return 0


def explore(args: argparse.Namespace) -> int:
    engine = get_engine()
    if args.out:
        path, table = explore_page.write_explore(engine, args.out)
    else:
        result = refresh_explore(quiet)
        if not result.success:
            say(f"Explore failed: {result.message}")
            return 1
        path = explore_page.default_explore_path()
        table = explore_page.explore_sizes(explore_page.explore_sets(engine))
    if table.empty:
        say("no built persona set is shown in Explore: persona-pipeline persona-set explore NAME --show")
    for set_name, rows in table.groupby("persona_set", sort=False):
        say(f"\n{set_name}: {rows['population'].sum():,} contacts, {len(rows)} personas")
        for row in rows.itertuples():
            traits = "; ".join(row.top_traits)
            say(f"  {clip(row.persona, 34):<34} {row.population:>9,} {row.share:>6.1%}  {clip(traits, 70)}")
    say(str(path))
    if not args.out:
        say(f"every persona set, with its status and report: {default_overview_path()}")
    return 0


def export(args: argparse.Namespace) -> int:
    size = export_csv(get_engine(), args.name, args.what, Path(args.out))
    say(f"wrote {args.what} of {args.name!r} to {args.out} ({size:,} bytes)")
    return 0
