"""Benchmark: Analysis, one day's snapshot and a 90-day backfill for a 1,000,000-contact persona set (PostgreSQL).

    PERSONA_WAREHOUSE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/test python benchmarks/study.py

Ours calls the same functions the Dagster assets call (studies.analysis.run_analysis, studies.flow.snapshot_day). The naive
baseline is what a notebook does: read_sql, pandas groupbys, and for a snapshot: read the day's trait versions,
assign everyone, to_sql the full snapshot (one row per contact per day). The naive 90-day backfill is not run
(about half an hour): its time and size are the measured per-day figures times 90, and are labelled so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time

import sqlalchemy as sa

SCHEMA = "bench_study"


def _url() -> str:
    base = os.environ.get("PERSONA_WAREHOUSE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    return base.split("?")[0] + f"?options=-csearch_path%3D{SCHEMA}"


def _size(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_total_relation_size(:t)"), {"t": table}).scalar_one())


def _rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608 - our table


def naive_analysis(engine: sa.Engine, persona_set_id: int, traits: list[str]) -> float:
    import pandas as pd

    start = time.perf_counter()
    members = pd.read_sql(
        f"SELECT contact_id, persona_id FROM persona_memberships WHERE persona_set_id = {persona_set_id}",
        engine,
    )
    contacts = pd.read_sql(f"SELECT contact_id, {', '.join(traits)} FROM contacts", engine)
    orders = pd.read_sql("SELECT contact_id, amount, product_category FROM orders", engine)
    frame = members.merge(contacts, on="contact_id")
    for trait in traits:
        if pd.api.types.is_numeric_dtype(frame[trait]) and frame[trait].dtype != bool:
            bins = pd.cut(frame[trait], 8)
            frame.groupby("persona_id")[trait].agg(["mean", "median"])
            pd.crosstab(frame["persona_id"], bins, normalize="index")
        else:
            pd.crosstab(frame["persona_id"], frame[trait], normalize="index")
    merged = orders.merge(members, on="contact_id")
    merged.groupby("persona_id")["amount"].agg(["sum", "mean", "count"])
    merged.groupby(["persona_id", "product_category"])["amount"].sum()
    return time.perf_counter() - start


def naive_snapshot(engine: sa.Engine, model, cohort: str, day: dt.date) -> float:  # noqa: ANN001
    import pandas as pd

    from persona_pipeline.core.flow import day_end

    start = time.perf_counter()
    end = day_end(day).to_pydatetime()
    versions = pd.read_sql(
        sa.text(
            "SELECT * FROM trait_history WHERE valid_from < :end AND (valid_to IS NULL OR valid_to >= :end) "
            f"AND contact_id IN (SELECT contact_id FROM {cohort})"  # noqa: S608 - our cohort name
        ),
        engine,
        params={"end": end},
    )
    persona, _ = model.assign(versions)
    out = pd.DataFrame(
        {"day": pd.Timestamp(day), "contact_id": versions["contact_id"], "persona_id": persona}
    )
    out.to_sql("naive_snapshots", engine, if_exists="append", index=False, chunksize=10_000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-seed", action="store_true")
    args = parser.parse_args()
    os.environ["PERSONA_WAREHOUSE_URL"] = _url()
    os.environ.setdefault("PERSONA_HOME", tempfile.mkdtemp())

    from persona_pipeline.core.model import PersonaModel
    from persona_pipeline.core.synthetic import generate
    from persona_pipeline.persona_sets import catalog
    from persona_pipeline.runtime.jobs import build_persona_set
    from persona_pipeline.studies import analysis, flow
    from persona_pipeline.warehouse import persona_sets as store
    from persona_pipeline.warehouse.engine import get_engine
    from persona_pipeline.warehouse.sources import replace_sources

    engine = get_engine()
    end = dt.date.today()
    if not args.skip_seed:
        admin = sa.create_engine(_url().split("?")[0])
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        start = time.perf_counter()
        base = generate(args.contacts, days=args.days, seed=2, end_date=end)
        replace_sources(engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments)
        print(
            f"seeded {len(base.contacts):,} contacts, {len(base.trait_history):,} history rows, "
            f"{len(base.orders):,} orders in {time.perf_counter() - start:.0f}s",
            flush=True,
        )
        del base
        catalog.create(engine, "Everyone", "all_contacts", analysis_traits=["state", "preferred_channel"])
        assert build_persona_set("Everyone", lambda _: None, study=False).success
    record = store.get(engine, "Everyone")
    from persona_pipeline.warehouse.trait_catalog import load_catalog

    clustering = [t.name for t in load_catalog(engine).select(record.traits)]
    names = list(dict.fromkeys([*clustering, *record.analysis_traits]))
    model = PersonaModel.from_json(store.current_build(engine, record).model)

    ours_analysis, naive_analysis_times = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        analysis.run_analysis(engine, record.id)
        ours_analysis.append(time.perf_counter() - start)
        naive_analysis_times.append(naive_analysis(engine, record.id, names))
    print(
        f"analysis: ours {statistics.median(ours_analysis):.1f}s, naive {statistics.median(naive_analysis_times):.1f}s"
    )

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM membership_history"))
        conn.execute(sa.text("DELETE FROM flow_days"))
        conn.execute(sa.text("DROP TABLE IF EXISTS naive_snapshots"))
    days = [end - dt.timedelta(days=i) for i in range(args.days - 1, -1, -1)]
    per_day = []
    backfill_start = time.perf_counter()
    for day in days:
        start = time.perf_counter()
        flow.snapshot_day(engine, day)
        per_day.append(time.perf_counter() - start)
    backfill = time.perf_counter() - backfill_start
    naive_days = [naive_snapshot(engine, model, "all_contacts", day) for day in days[-args.runs :]]
    naive_day = statistics.median(naive_days)
    ours_rows, ours_bytes = _rows(engine, "membership_history"), _size(engine, "membership_history")
    naive_rows_day = _rows(engine, "naive_snapshots") / len(naive_days)
    naive_bytes_day = _size(engine, "naive_snapshots") / len(naive_days)
    incremental = statistics.median(per_day[1:]) if len(per_day) > 1 else per_day[0]
    print(
        f"first snapshot (every version assigned): {per_day[0]:.1f}s; later days, median: {incremental:.2f}s"
    )
    print()
    print("| measure | ours | naive baseline | ratio |")
    print("|---|---:|---:|---:|")
    a, b = statistics.median(ours_analysis), statistics.median(naive_analysis_times)
    print(f"| analysis (median of {args.runs}) | {a:.1f} s | {b:.1f} s | {b / a:.1f}x |")
    print(
        f"| one day's snapshot, incremental (median) | {incremental:.2f} s | {naive_day:.1f} s | {naive_day / incremental:.0f}x |"
    )
    print(
        f"| first day's snapshot | {per_day[0]:.1f} s | {naive_day:.1f} s | {naive_day / per_day[0]:.1f}x |"
    )
    print(
        f"| {args.days}-day backfill | {backfill:.0f} s | {naive_day * args.days:.0f} s (extrapolated) | "
        f"{naive_day * args.days / backfill:.0f}x |"
    )
    print(
        f"| storage for {args.days} days | {ours_rows:,} rows, {ours_bytes / 1e6:.0f} MB | "
        f"{naive_rows_day * args.days:,.0f} rows, {naive_bytes_day * args.days / 1e6:,.0f} MB (extrapolated) | "
        f"{naive_bytes_day * args.days / ours_bytes:.0f}x smaller |"
    )


if __name__ == "__main__":
    main()
