"""User text in HTML: always escaped, never markup."""

from __future__ import annotations

import html


def escape(text: object) -> str:
    """Text (a name, a value) as HTML text, quotes included, so it is safe in elements and attributes."""
    return html.escape(str(text), quote=True)
