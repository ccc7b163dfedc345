"""Benchmark: rescoring a pipeline's population end to end on PostgreSQL, memory as it grows, real-time latency.

    PERSONA_WAREHOUSE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/test python benchmarks/scoring.py

Ours: `pipeline run` through the Dagster job, in one process as the CLI runs it (the population's SQL models,
rebuilt only if their SQL or sources changed; one contact_id-range bucket, as for any run executed in one
process, scored in slices of ~65,536 contacts as a pipeline: up to two slices read ahead (COPY out), one
assigned, up to two written behind (binary COPY into the bucket's shadow table, swapped in as the
destination's partitions once every bucket is done: see persona_pipeline/warehouse/replacement.py).
The seeded schema is vacuumed and analyzed once, as autovacuum (off on this server) would after the load.
Baseline: read_sql of the population's traits, assign everyone, to_sql. Runs alternate (ours, baseline, ...);
each is a fresh process, so its peak memory is its own. Real-time: Scorer.score on 10,000 contacts, one call each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import sqlalchemy as sa
from memory import peak_rss_mb
from settle import vacuum_analyze

SCHEMA = "bench_scoring"


def _url(schema: str) -> str:
    base = os.environ.get("PERSONA_WAREHOUSE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    return base.split("?")[0] + f"?options=-csearch_path%3D{schema}"


def seed(contacts: int, schema: str) -> None:
    from persona_pipeline.core.synthetic import generate
    from persona_pipeline.persona_sets import catalog
    from persona_pipeline.runtime.jobs import build_persona_set
    from persona_pipeline.scoring import pipelines
    from persona_pipeline.warehouse.engine import get_engine
    from persona_pipeline.warehouse.sources import replace_sources

    admin = sa.create_engine(_url(schema).split("?")[0])
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    start = time.perf_counter()
    base = generate(contacts, days=0, seed=3, with_orders=False)
    engine = get_engine(_url(schema))
    replace_sources(engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments)
    del base
    os.environ["PERSONA_WAREHOUSE_URL"] = _url(schema)
    catalog.create(engine, "Everyone", "all_contacts")
    built = time.perf_counter()
    assert build_persona_set("Everyone", lambda _: None, study=False).success
    print(f"built the persona set (cohort models included) in {time.perf_counter() - built:.1f}s", flush=True)
    pipelines.create(engine, "rescore", ["all_contacts"], ["Everyone"], destination_table="contact_personas")
    vacuum_analyze(_url(schema).split("?")[0], schema)
    print(f"seeded {contacts:,} contacts into {schema} in {time.perf_counter() - start:.0f}s", flush=True)


def _timed_run(pipeline: str, table: str) -> dict:
    """One pipeline run, timed; then its table vacuumed, as autovacuum (off on this server) would between runs."""
    from persona_pipeline.runtime.jobs import run_pipeline
    from persona_pipeline.warehouse.engine import get_engine

    start = time.perf_counter()
    report = run_pipeline(pipeline, lambda _: None)
    seconds = time.perf_counter() - start
    if not report.success:
        raise SystemExit(report.message)
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM {table}"))
    return {"seconds": seconds, "peak_mb": peak_rss_mb()}


def run_ours() -> dict:
    return _timed_run("rescore", "contact_personas")


def run_warehouse() -> dict:
    """The same population scored inside PostgreSQL (pipeline `--score-in warehouse`, its own table)."""
    from persona_pipeline.errors import PipelineError
    from persona_pipeline.scoring import pipelines
    from persona_pipeline.warehouse.engine import get_engine

    try:
        pipelines.get(get_engine(), "rescore_sql")
    except PipelineError:  # a schema seeded before warehouse scoring existed
        pipelines.create(get_engine(), "rescore_sql", ["all_contacts"], ["Everyone"],
                         destination_table="contact_personas_sql", score_in="warehouse")  # fmt: skip
    return _timed_run("rescore_sql", "contact_personas_sql")


def run_baseline() -> dict:
    import pandas as pd

    from persona_pipeline.core.model import PersonaModel
    from persona_pipeline.warehouse import persona_sets as store
    from persona_pipeline.warehouse.engine import get_engine

    engine = get_engine()
    record = store.get(engine, "Everyone")
    model = PersonaModel.from_json(store.current_build(engine, record).model)
    start = time.perf_counter()
    columns = ", ".join(["contact_id", *model.transform.trait_names])
    frame = pd.read_sql(
        f"SELECT {columns} FROM contacts WHERE contact_id IN (SELECT contact_id FROM all_contacts)", engine
    )
    persona, confidence = model.assign(frame)
    out = pd.DataFrame({"contact_id": frame["contact_id"], "persona_id": persona, "confidence": confidence})
    out.to_sql("baseline_scores", engine, if_exists="replace", index=False, chunksize=10_000)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_rss_mb()}


def latency() -> dict:
    import numpy as np

    from persona_pipeline.scoring.realtime import load_scorer
    from persona_pipeline.warehouse.bulk import read_frame
    from persona_pipeline.warehouse.engine import get_engine

    engine = get_engine()
    scorer = load_scorer("Everyone", engine)
    traits = scorer.model.transform.trait_names
    sample = read_frame(engine, f"SELECT {', '.join(traits)} FROM contacts LIMIT 10000")  # noqa: S608
    contacts = [
        {k: (None if v is None or v != v else v) for k, v in row.items()} for row in sample.to_dict("records")
    ]
    for row in contacts:  # numpy scalars -> plain values, as JSON would give them
        for key, value in row.items():
            if hasattr(value, "item"):
                row[key] = value.item()
    times = []
    for contact in contacts:
        start = time.perf_counter_ns()
        scorer.score(contact)
        times.append(time.perf_counter_ns() - start)
    ns = np.asarray(times)
    return {"p50_us": float(np.percentile(ns, 50)) / 1000, "p99_us": float(np.percentile(ns, 99)) / 1000,
            "per_second": len(ns) / (ns.sum() / 1e9)}  # fmt: skip


def _child(which: str, schema: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", which, "--schema", schema],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument(
        "--no-baseline", action="store_true", help="only ours (for the memory figure at a size)"
    )
    parser.add_argument("--one", choices=["ours", "warehouse", "baseline", "latency"], help=argparse.SUPPRESS)
    parser.add_argument("--schema", default=SCHEMA, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PERSONA_HOME", tempfile.mkdtemp())
    if args.one:
        os.environ["PERSONA_WAREHOUSE_URL"] = _url(args.schema)
        runs = {"ours": run_ours, "warehouse": run_warehouse, "baseline": run_baseline, "latency": latency}
        print(json.dumps(runs[args.one]()))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        schema = f"{SCHEMA}_{size // 1000}k"
        if not args.skip_seed:
            seed(size, schema)
        with_baseline = size == sizes[0] and not args.no_baseline
        ours, base, inside = [], [], []
        for _ in range(args.runs):  # interleaved, so drift on a noisy machine hits all alike
            ours.append(_child("ours", schema))
            inside.append(_child("warehouse", schema))
            if with_baseline:
                base.append(_child("baseline", schema))
        rows.append((size, ours, base, inside))
        print(
            f"{size:,}: ours {[round(r['seconds'], 1) for r in ours]}, in the warehouse "
            f"{[round(r['seconds'], 1) for r in inside]}, baseline {[round(r['seconds'], 1) for r in base]}",
            flush=True,
        )
    timing = _child("latency", f"{SCHEMA}_{sizes[0] // 1000}k")
    print()
    print(
        "| contacts | ours (median) | contacts/s | in the warehouse (median) | warehouse / ours | baseline (median) "
        "| speed-up | peak MB ours | peak MB baseline |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, ours, base, inside in rows:
        o = statistics.median(r["seconds"] for r in ours)
        w = statistics.median(r["seconds"] for r in inside)
        b = statistics.median(r["seconds"] for r in base) if base else None
        print(
            f"| {size:,} | {o:.1f} s | {size / o:,.0f} | {w:.1f} s | {w / o:.2f}x | "
            f"{f'{b:.1f} s' if b else '–'} | {f'{b / o:.1f}x' if b else '–'} | "
            f"{statistics.median(r['peak_mb'] for r in ours):,.0f} | "
            f"{statistics.median(r['peak_mb'] for r in base) if base else 0:,.0f} |"
        )
    print(
        f"\nsingle contact: p50 {timing['p50_us']:.0f} µs, p99 {timing['p99_us']:.0f} µs, {timing['per_second']:,.0f} calls/s"
    )


if __name__ == "__main__":
    main()
