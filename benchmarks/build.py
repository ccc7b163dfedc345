"""Benchmark: build a persona set for 1,000,000 contacts from PostgreSQL, end to end, against a naive baseline.

    PERSONA_WAREHOUSE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/test python benchmarks/build.py
    python benchmarks/build.py --method k-means,latent-class --no-baseline   # both methods, interleaved

Ours: `persona-set build` through Dagster (the cohort's SQL models, rebuilt only if their SQL or sources changed
since they were built; --changed-sources writes one contact before each run so that they are; COPY out, Pandera validation, k chosen by the
data, fit on a sample, personas with names and rules, COPY in). Baseline, what a notebook does: pandas.read_sql,
get_dummies + median imputation + StandardScaler, scikit-learn KMeans with default settings on every row at
Faraday's k, DataFrame.to_sql. Each run is a fresh process (peak memory is its own); figures are medians.
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
from pathlib import Path

from memory import peak_rss_mb
from settle import vacuum_analyze

SCHEMA = "bench_build"
ROOT = Path(__file__).resolve().parent.parent


def _url() -> str:
    base = os.environ.get("PERSONA_WAREHOUSE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    if not base.startswith("postgresql"):
        raise SystemExit("this benchmark measures PostgreSQL: set PERSONA_WAREHOUSE_URL to a postgresql URL")
    return base.split("?")[0] + f"?options=-csearch_path%3D{SCHEMA}"


def seed(contacts: int) -> None:
    import sqlalchemy as sa

    from persona_pipeline.core.synthetic import generate
    from persona_pipeline.warehouse.engine import get_engine
    from persona_pipeline.warehouse.sources import replace_sources

    admin = sa.create_engine(_url().split("?")[0])
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    start = time.perf_counter()
    base = generate(contacts, days=0, seed=1, with_orders=False)
    engine = get_engine(_url())
    replace_sources(engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments)
    os.environ["PERSONA_WAREHOUSE_URL"] = _url()
    with tempfile.TemporaryDirectory() as home:  # the cohort, built once as after any load
        os.environ["PERSONA_HOME"] = home
        from persona_pipeline.runtime.jobs import run_sql_models

        assert run_sql_models(lambda _: None, ["all_contacts"])[0]
    vacuum_analyze(_url().split("?")[0], SCHEMA)
    print(
        f"seeded {contacts:,} contacts x {len(base.catalog.traits)} traits in {time.perf_counter() - start:.1f}s"
    )


def run_ours(home: str, changed_sources: bool, method: str) -> dict:
    os.environ["PERSONA_HOME"] = home
    import sqlalchemy as sa

    if changed_sources:  # one contact written since the cohort was built: the build rebuilds it first
        from persona_pipeline.warehouse.engine import get_engine

        with get_engine().begin() as conn:
            conn.execute(sa.text("UPDATE contacts SET updated_at = updated_at WHERE contact_id = 1"))
    from persona_pipeline.persona_sets import catalog
    from persona_pipeline.runtime.jobs import build_persona_set
    from persona_pipeline.warehouse import persona_sets as store
    from persona_pipeline.warehouse.engine import get_engine

    engine = get_engine()
    for leftover in store.list_all(engine):  # from runs of an older version of this script
        store.delete(engine, leftover.id)
    name = f"bench {time.time_ns()}"
    catalog.create(engine, name, "all_contacts", method=method)
    lines: list[str] = []
    start = time.perf_counter()
    report = build_persona_set(name, lines.append, study=False)  # the chain; studies: benchmarks/study.py
    seconds = time.perf_counter() - start
    if not report.success:
        raise SystemExit(f"build failed: {report.message}")
    record = store.get(engine, name)
    build = store.current_build(engine, record)
    store.delete(engine, record.id)  # every run starts from the same warehouse: no other set's memberships
    # and without the deleted rows, which autovacuum (off on this server) would otherwise clear in the background
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM persona_memberships"))
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "k": build.k, "log": lines}


def run_baseline() -> dict:
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    from persona_pipeline.core.clustering import faraday_rule
    from persona_pipeline.warehouse.engine import get_engine
    from persona_pipeline.warehouse.trait_catalog import load_catalog

    engine = get_engine()
    catalog = load_catalog(engine)
    traits = catalog.default_clustering
    start = time.perf_counter()
    parts = {}
    columns = ", ".join(["contact_id", *traits])
    frame = pd.read_sql(
        f"SELECT {columns} FROM contacts WHERE contact_id IN (SELECT contact_id FROM all_contacts)", engine
    )
    numeric = [t.name for t in catalog.traits if t.name in traits and t.kind == "numeric"]
    other = [t for t in traits if t not in numeric]
    features = pd.concat(
        [
            frame[numeric].fillna(frame[numeric].median()),
            pd.get_dummies(frame[other].astype(str), dtype=float),
        ],
        axis=1,
    )
    parts["read_sql"] = time.perf_counter() - start
    x = StandardScaler().fit_transform(features)
    labels = KMeans(n_clusters=faraday_rule(len(frame)), random_state=0).fit_predict(x)
    parts["features_and_kmeans"] = time.perf_counter() - start - parts["read_sql"]
    out = pd.DataFrame({"contact_id": frame["contact_id"], "persona_id": labels + 1})
    out.to_sql("baseline_memberships", engine, if_exists="replace", index=False, chunksize=10_000)
    seconds = time.perf_counter() - start
    parts["to_sql"] = seconds - parts["read_sql"] - parts["features_and_kmeans"]
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "log": [f"{k}: {v:.1f}s" for k, v in parts.items()]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument(
        "--changed-sources",
        action="store_true",
        help="write one contact before each of our runs, so every build first rebuilds the cohort's SQL models",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="ours only (at 10M the notebook's read_sql and to_sql need tens of GB and most of an hour)",
    )
    parser.add_argument(
        "--method",
        default="k-means",
        help="the set's clustering method; a comma list runs ours once per method",
    )
    parser.add_argument("--one", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["PERSONA_WAREHOUSE_URL"] = _url()
    if args.one == "ours":
        print(json.dumps(run_ours(args.home, args.changed_sources, args.method)))
        return
    if args.one == "baseline":
        print(json.dumps(run_baseline()))
        return
    if not args.skip_seed:
        seed(args.contacts)
    methods = args.method.split(",")
    ours_runs = [f"ours {m}" if len(methods) > 1 else "ours" for m in methods]
    results: dict[str, list[dict]] = {name: [] for name in [*ours_runs, "baseline"]}
    home = tempfile.mkdtemp()  # one project home (and Dagster instance) for all our runs, as a user has
    for run in range(args.runs):
        # interleaved, so drift on a noisy machine hits every version alike
        for which, method in [
            *zip(ours_runs, methods, strict=True),
            *([] if args.no_baseline else [("baseline", "")]),
        ]:
            one = "baseline" if which == "baseline" else "ours"
            out = subprocess.run(
                [sys.executable, __file__, "--one", one, "--home", home, "--method", method or "k-means"]
                + (["--changed-sources"] if args.changed_sources else []),
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results[which].append(result)
            print(
                f"run {run + 1} {which:<20} {result['seconds']:7.1f}s  peak {result['peak_mb']:7.0f} MB",
                flush=True,
            )
            if run == 0:
                print("\n".join("    " + line for line in result["log"]))
    print()
    for which in ours_runs:
        print(
            f"{args.contacts:,} contacts, {args.runs} runs: {which} {statistics.median(r['seconds'] for r in results[which]):.1f} s "
            f"median ({', '.join(format(r['seconds'], '.1f') for r in results[which])}), peak "
            f"{max(r['peak_mb'] for r in results[which]):,.0f} MB (largest of the runs)"
        )
    if len(ours_runs) > 1:
        first, *others = ours_runs
        for other in others:
            ratio = statistics.median(r["seconds"] for r in results[other]) / statistics.median(
                r["seconds"] for r in results[first]
            )
            print(f"{other} / {first}: {ratio:.2f}x the time")
    if args.no_baseline:
        return
    ours = statistics.median(r["seconds"] for r in results[ours_runs[0]])
    base = statistics.median(r["seconds"] for r in results["baseline"])
    print(
        "| contacts | runs | ours (median) | baseline (median) | speed-up | peak MB ours | peak MB baseline |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.contacts:,} | {args.runs} | {ours:.1f} s | {base:.1f} s | {base / ours:.1f}x | "
        f"{statistics.median(r['peak_mb'] for r in results[ours_runs[0]]):,.0f} | "
        f"{statistics.median(r['peak_mb'] for r in results['baseline']):,.0f} |"
    )


if __name__ == "__main__":
    main()
