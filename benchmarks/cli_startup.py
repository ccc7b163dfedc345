"""How fast the command line answers: `--help`, `persona-set list` and `persona-set show`, against a baseline.

    .venv/bin/python benchmarks/cli_startup.py --runs 7                 # baseline: the commit before the reshape
    .venv/bin/python benchmarks/cli_startup.py --runs 7 --baseline REV  # any other revision

Both versions run from source in the same interpreter (PYTHONPATH), on the same embedded warehouse with one
built persona set, alternating command by command so the host's drift hits both alike. Reports the median
wall time of each command (seconds) and the ratio baseline / ours. Targets: --help under 0.3 s, list and
show under 0.5 s.
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

REPO = Path(__file__).resolve().parent.parent
BASELINE = "a51b3a9"  # the last commit before the package was reshaped (issue "One room per concept")
COMMANDS = {
    "--help": ["--help"],
    "persona-set list": ["persona-set", "list"],
    "persona-set show": ["persona-set", "show", "Customers"],
}
TARGETS = {"--help": 0.3, "persona-set list": 0.5, "persona-set show": 0.5}


def _run(source: Path, env: dict[str, str], args: list[str]) -> float:
    """Seconds one command takes; run from the home folder, so `source` alone decides which code runs."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", revisions.CLI, *args],
        env={**env, "PYTHONPATH": str(source)},
        cwd=env["PERSONA_HOME"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with ('' for none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONA_", "DAGSTER_"))}
        env["PERSONA_HOME"] = str(Path(scratch) / "home")
        Path(env["PERSONA_HOME"]).mkdir()
        for setup in (["seed", "--contacts", "2000", "--days", "7"], ["persona-set", "create", "--name",
                      "Customers", "--cohort", "customers"], ["persona-set", "build", "Customers"]):  # fmt: skip
            _run(REPO, env, setup)
        with revisions.sources(args.baseline, Path(scratch)) as sources:
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.runs):
                for name, command in COMMANDS.items():
                    for version, source in sources.items():
                        times.setdefault((name, version), []).append(_run(source, env, command))
    print(f"median of {args.runs} runs, seconds (baseline {args.baseline or 'none'})")
    print(f"{'command':<20} {'ours':>6} {'baseline':>9} {'ratio':>6} {'target':>7}")
    for name in COMMANDS:
        ours = statistics.median(times[(name, "ours")])
        line = f"{name:<20} {ours:>6.2f}"
        if args.baseline:
            base = statistics.median(times[(name, "baseline")])
            line += f" {base:>9.2f} {base / ours:>5.1f}x"
        else:
            line += f" {'-':>9} {'-':>6}"
        line += f" {'<' + str(TARGETS[name]):>7} {'met' if ours < TARGETS[name] else 'MISSED'}"
        print(line)


if __name__ == "__main__":
    main()
