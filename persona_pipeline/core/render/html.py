"""User text in HTML: always escaped, never markup."""

from __future__ import annotations

import html
import json


def escape(text: object) -> str:
    """Text (a name, a value) as HTML text, quotes included, so it is safe in elements and attributes."""
    return html.escape(str(text), quote=True)


# Characters that could end or confuse a <script> block, or a JavaScript string, written as JSON escapes
SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_json(data: object) -> str:
    """`data` as JSON safe inside a <script> element: no user text can close it or open a comment.

    json.dumps escapes quotes and control characters; <, >, & and the two JavaScript line separators are
    written as \\uXXXX escapes, which JSON.parse reads back unchanged.
    """
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.translate(SCRIPT_ESCAPES)
