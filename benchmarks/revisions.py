"""The code a benchmark compares with: another revision of this repository, checked out beside it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


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
