"""Markdown for Dagster's metadata: the Definition view and small tables, user text always escaped."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

from persona_pipeline.core.domain import NO_RULE, Interpretation, Persona


def escape(text: str) -> str:
    """User text shown as text in Markdown: HTML escaped and Markdown punctuation neutralised."""
    escaped = html.escape(text)
    for char in "\\`*_{}[]()#+-.!|>~":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def table(columns: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; every cell and header escaped (names come from users)."""
    head = "| " + " | ".join(escape(str(c)) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(escape(str(v)) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def personas_markdown(set_name: str, personas: list[Persona]) -> str:
    """The Definition view as Markdown: avatar, name, population, defining traits and rules of each persona."""
    lines = [f"## {escape(set_name)}", ""]
    for persona in personas:
        lines.append(f"### ![avatar]({svg_data_uri(persona.avatar_svg)}) {escape(persona.name)}")
        lines.append(
            f"**{persona.population:,} contacts ({persona.share:.1%})** · persona {persona.persona_id}"
        )
        lines.append("")
        for effect in persona.defining:
            lines.append(f"- {escape(effect.text)}")
        for rule in persona.rules:
            lines.append(f"- *rule:* {escape(rule.described)}")
        if not persona.rules:
            lines.append(f"- *rule:* {escape(NO_RULE)}")
        if persona.interpretation is not None:
            lines += ["", escape(persona.interpretation.summary), ""]
            lines += _prose_lines(persona.interpretation)
            lines += [f"- *idea:* {escape(idea)}" for idea in persona.interpretation.ideas]
        lines.append("")
    return "\n".join(lines)


def _prose_lines(story: Interpretation) -> list[str]:
    """The model's retelling, marked as its words, or why there is none (when one was asked for)."""
    if story.prose:
        return [f"*In {escape(story.prose_by)}'s words, from these figures:* {escape(story.prose)}", ""]
    if story.prose_note:
        return [f"*{escape(story.prose_note)}*", ""]
    return []


def interpretations_markdown(personas: list[Persona]) -> str:
    """Each persona's summary and marketing ideas (core/interpretation.py), as the Analysis leaves them."""
    lines = []
    for persona in personas:
        if persona.interpretation is None:
            continue
        lines += [f"### {escape(persona.name)}", "", escape(persona.interpretation.summary), ""]
        lines += _prose_lines(persona.interpretation)
        lines += [f"- {escape(idea)}" for idea in persona.interpretation.ideas]
        lines.append("")
    return "\n".join(lines) or "no interpretation yet"
