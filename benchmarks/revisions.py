"""The code a benchmark compares with: another revision of this repository, checked out beside it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# `python -c CLI args...` runs a version's command line as its `persona-pipeline` script does (cli.entry, which
# skips Python's module teardown), or as main() where that version has no entry()
CLI = (
    "import sys\nfrom persona_pipeline import cli\n"
    "if hasattr(cli, 'entry'):\n    cli.entry()\nsys.exit(cli.main(sys.argv[1:]))"
)


@contextlib.contextmanager
def sources(baseline: str, scratch: Path) -> Iterator[dict[str, Path]]:
    """{"ours": this checkout, "baseline": a git worktree of `baseline`} ('' leaves the baseline out); the
    worktree is removed on the way out. Put a source on PYTHONPATH to run that version."""
    found = {"ours": REPO}
    worktree = scratch / "baseline"
    if baseline:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), baseline],
            check=True,
            capture_output=True,
        )
        found["baseline"] = worktree
    try:
        yield found
    finally:
        if baseline:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=True
            )
