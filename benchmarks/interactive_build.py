"""How long a user waits for a 50,000-contact build from the command line on the embedded default (SQLite).

    .venv/bin/python benchmarks/interactive_build.py --runs 5                  # against BASELINE
    .venv/bin/python benchmarks/interactive_build.py --runs 5 --baseline REV   # any other revision
    .venv/bin/python benchmarks/interactive_build.py --runs 5 --baseline HEAD --method latent-class
                                                    # the latent-class method against k-means, same code

Each version gets its own home with the same seeded base (`seed --contacts 50000 --days 0`), then, run after
run and alternating versions so the host's drift hits both alike, creates a new persona set on the `customers`
cohort and times `persona-set build` end to end: process start-up, the Dagster run (SQL models current,
validation, k chosen by the data, fit, personas, memberships, Analysis, report) and the printout. Reports the
median wall time of each version and the ratio baseline / ours. Target: at most 5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import revisions

BASELINE = "e74d18d"  # main before issue 14 ("Personas that hold up")
TARGET_SECONDS = 5.0


def _cli(source: Path, home: Path, args: list[str]) -> float:
    """Seconds one command takes, run from `source` (PYTHONPATH) against `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONA_", "DAGSTER_"))}
    env.update(PERSONA_HOME=str(home), PYTHONPATH=str(source))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", revisions.CLI, *args], env=env, cwd=home, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with ('' for none)")
    parser.add_argument("--method", default="", help="ours builds with persona-set create --method this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        with revisions.sources(args.baseline, Path(scratch)) as sources:
            homes = {}
            for version, source in sources.items():
                homes[version] = Path(scratch) / f"home-{version}"
                homes[version].mkdir()
                _cli(source, homes[version], ["seed", "--contacts", str(args.contacts), "--days", "0"])
            times: dict[str, list[float]] = {v: [] for v in sources}
            for run in range(args.runs):
                for version, source in sources.items():
                    name = f"Run {run}"
                    method = ["--method", args.method] if args.method and version == "ours" else []
                    _cli(
                        source,
                        homes[version],
                        ["persona-set", "create", "--name", name, "--cohort", "customers", *method],
                    )
                    times[version].append(_cli(source, homes[version], ["persona-set", "build", name]))
                    print(f"run {run} {version}: {times[version][-1]:.2f} s", flush=True)
    ours = statistics.median(times["ours"])
    print(
        f"\n{args.contacts:,} contacts, median of {args.runs} builds, seconds (baseline {args.baseline or 'none'}"
        f"{', ours with --method ' + args.method if args.method else ''})"
    )
    line = f"persona-set build: ours {ours:.2f}"
    if args.baseline:
        base = statistics.median(times["baseline"])
        line += f", baseline {base:.2f}, ratio {base / ours:.2f}x"
    print(f"{line}; target <= {TARGET_SECONDS:.0f} s: {'met' if ours <= TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
