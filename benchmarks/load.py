"""Loading a contacts file into PostgreSQL: `persona-pipeline load` against pandas `read_csv` + `to_sql`.

    .venv/bin/python benchmarks/load.py --rows 1000000 --runs 3
    .venv/bin/python benchmarks/load.py --rows 1000000 --runs 3 --url postgresql+psycopg2://postgres@127.0.0.1/test

A deterministic file of `--rows` contacts × 25 traits (12 numeric, 6 categorical, 5 boolean, 1 ordinal, 1
date; 2% of cells blank) is written as CSV and Parquet. Each run loads it into an empty private schema:

- baseline: `pd.read_csv(path)` then `frame.to_sql(..., index=False)` with pandas' defaults (what a notebook
  does; no typing, no validation, no history);
- ours: `load_files` on the same file (typed by the traits file, every cell validated, rejects kept, the
  trait history written, one transaction), from CSV and from Parquet.

Runs alternate baseline and ours so the host's drift hits both alike; reports medians (seconds), rows/s and
the ratio baseline / ours, and the peak resident memory of each of our loads (a child process each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
NUMERIC, CATEGORICAL, BOOLEAN = 12, 6, 5
LEVELS = ["alpha", "beta", "gamma", "delta", "epsilon"]
ORDINAL_LEVELS = ["none", "some", "many", "all"]


def traits_yaml() -> str:
    lines = ["traits:"]
    lines += [f"  - {{name: n{i}, kind: numeric}}" for i in range(NUMERIC)]
    lines += [
        f"  - {{name: c{i}, kind: categorical, levels: [{', '.join(LEVELS)}]}}" for i in range(CATEGORICAL)
    ]
    lines += [f"  - {{name: b{i}, kind: boolean}}" for i in range(BOOLEAN)]
    lines += [f"  - {{name: o0, kind: ordinal, levels: [{', '.join(ORDINAL_LEVELS)}]}}"]
    lines += ["  - {name: d0, kind: date}"]
    return "\n".join(lines) + "\n"


def contacts(rows: int, seed: int = 0) -> pd.DataFrame:
    """(rows, 26): contact_id and 25 traits as text, 2% of cells blank."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"contact_id": np.arange(1, rows + 1)}
    for i in range(NUMERIC):
        data[f"n{i}"] = np.round(rng.lognormal(3, 1, rows), 2)
    for i in range(CATEGORICAL):
        data[f"c{i}"] = np.asarray(LEVELS)[rng.integers(0, len(LEVELS), rows)]
    for i in range(BOOLEAN):
        data[f"b{i}"] = np.where(rng.random(rows) < 0.4, "true", "false")
    data["o0"] = np.asarray(ORDINAL_LEVELS)[rng.integers(0, len(ORDINAL_LEVELS), rows)]
    days = rng.integers(0, 3650, rows)
    data["d0"] = (pd.Timestamp("2016-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    frame = pd.DataFrame(data)
    for name in frame.columns[1:]:
        frame[name] = frame[name].astype(object)
        frame.loc[rng.random(rows) < 0.02, name] = None
    return frame


OURS = """
import json, resource, sys, time
from persona_pipeline.loading import load_files
from persona_pipeline.warehouse.engine import engine_for
url, path, traits = sys.argv[1:4]
engine = engine_for(url)
start = time.perf_counter()
report = load_files(engine, path, traits)
seconds = time.perf_counter() - start
assert report.rejects.empty and report.changes.contacts_new == int(sys.argv[4]), report.lines()
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BASELINE = """
import json, resource, sys, time
import pandas as pd, sqlalchemy as sa
url, path = sys.argv[1:3]
engine = sa.create_engine(url)
start = time.perf_counter()
frame = pd.read_csv(path)
frame.to_sql("contacts", engine, index=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _write_files(folder: Path, rows: int) -> None:
    """The benchmark's files, a million rows at a time: a 10M-row file without 10M rows in memory."""
    writer = None
    step = 1_000_000
    for first in range(0, rows, step):
        frame = contacts(min(step, rows - first), seed=first // step)
        frame["contact_id"] += first
        frame.to_csv(folder / "contacts.csv", index=False, header=first == 0, mode="w" if first == 0 else "a")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(folder / "contacts.parquet", table.schema)
        writer.write_table(table.cast(writer.schema))
    writer.close()
    (folder / "t.yaml").write_text(traits_yaml(), encoding="utf-8")


def _schema_url(base: str) -> tuple[str, str]:
    """A fresh schema and a URL whose connections use it (search_path), so every run starts empty."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}options=-csearch_path%3D{schema}"


def _drop(base: str, schema: str) -> None:
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _child(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, cwd=REPO
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", default=PG_URL)
    parser.add_argument("--no-baseline", action="store_true", help="time our loads only")
    parser.add_argument("--write", help=argparse.SUPPRESS)  # internal: write the files into this folder
    args = parser.parse_args()
    if args.write:
        _write_files(Path(args.write), args.rows)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        start = time.perf_counter()
        csv_path, parquet_path, traits = (
            folder / "contacts.csv",
            folder / "contacts.parquet",
            folder / "t.yaml",
        )
        # written by a child: Linux keeps a process's peak memory across exec, so a parent that had held the
        # frame would pass its peak on to every load it starts and hide theirs
        subprocess.run(
            [sys.executable, __file__, "--write", str(folder), "--rows", str(args.rows)], check=True
        )
        print(f"{args.rows:,} rows x 25 traits written in {time.perf_counter() - start:.1f}s "
              f"(CSV {csv_path.stat().st_size / 1e6:.0f} MB)")  # fmt: skip
        cases = {"ours (CSV)": (OURS, csv_path), "ours (Parquet)": (OURS, parquet_path)}
        if not args.no_baseline:
            cases = {"pandas read_csv + to_sql": (BASELINE, csv_path), **cases}
        times: dict[str, list[float]] = {name: [] for name in cases}
        peaks: dict[str, list[float]] = {name: [] for name in cases}
        for run in range(args.runs):
            for name, (code, path) in cases.items():
                schema, url = _schema_url(args.url)
                try:
                    extra = [str(traits), str(args.rows)] if code is OURS else []
                    result = _child(code, url, str(path), *extra)
                finally:
                    _drop(args.url, schema)
                times[name].append(result["seconds"])
                peaks[name].append(result["peak_mb"])
                print(
                    f"  run {run + 1} {name:<26} {result['seconds']:7.2f} s  peak {result['peak_mb']:,.0f} MB"
                )
        base = statistics.median(times["pandas read_csv + to_sql"]) if not args.no_baseline else None
        print(f"\nmedian of {args.runs} runs, {args.rows:,} rows:")
        for name in cases:
            median = statistics.median(times[name])
            ratio = (
                f"  {base / median:5.1f}x faster than the baseline"
                if base and name.startswith("ours")
                else ""
            )
            print(f"  {name:<26} {median:7.2f} s  {args.rows / median:>10,.0f} rows/s  "
                  f"peak {max(peaks[name]):,.0f} MB{ratio}")  # fmt: skip


if __name__ == "__main__":
    main()
