"""How the command line prints: one line at a time, flushed; long names clipped to their column."""

from __future__ import annotations

import shlex


def say(text: str) -> None:
    print(text, flush=True)


def quiet(_text: str) -> None:
    """A `say` that prints nothing (a step's own lines, when only the outcome matters)."""


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def shell_quote(text: str) -> str:
    return shlex.quote(text)


def names(text: str | None) -> list[str]:
    """A comma separated list from a flag, blanks dropped."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]
