"""Avatars drawn by code as SVG from a persona's dominant traits: abstract badges, never faces.

The badge takes the persona's own colour (the one its cards and charts use); up to three glyphs stand for the
traits that define it, those its name mentions first, so "Dog-Loving" shows the dog. Each trait has its own
glyph (a drawn shape for the traits we know, the trait's initials for any other), and a numeric trait carries
an up or down mark, so "Young" and "Seasoned" do not share a clock.
"""

from __future__ import annotations

from persona_pipeline.core.domain import TraitEffect
from persona_pipeline.core.render.html import escape

# Simple shapes on a 24x24 grid, keyed by trait or by "trait=level" where a level deserves its own picture.
GLYPHS = {
    "dog_owner": '<circle cx="8" cy="7" r="2.5"/><circle cx="16" cy="7" r="2.5"/><circle cx="5" cy="13" r="2.2"/>'
    '<circle cx="19" cy="13" r="2.2"/><ellipse cx="12" cy="16.5" rx="5" ry="4.5"/>',
    "cat_owner": '<path d="M5 20 L5 7 L9 11 L15 11 L19 7 L19 20 Z"/>',
    "outdoors": '<path d="M2 20 L9 8 L13 14 L16 10 L22 20 Z"/>',
    "travel": '<path d="M2 13 L22 9 L22 11 L14 13 L10 20 L8 20 L10 14 L2 15 Z"/>',
    "fitness": '<rect x="3" y="8" width="3" height="8"/><rect x="18" y="8" width="3" height="8"/>'
    '<rect x="6" y="11" width="12" height="2"/>',
    "gardening": '<path d="M12 21 L12 10"/><path d="M12 12 C6 12 5 6 5 4 C10 4 12 8 12 12 Z"/>'
    '<path d="M12 10 C18 10 19 4 19 3 C14 3 12 6 12 10 Z"/>',
    "cooking": '<path d="M4 12 L20 12 L18 20 L6 20 Z"/><rect x="10" y="5" width="4" height="5" rx="2"/>',
    "gaming": '<rect x="3" y="8" width="18" height="9" rx="4"/>',
    "luxury_goods": '<path d="M12 3 L20 10 L12 21 L4 10 Z"/>',
    "urbanicity": '<rect x="3" y="9" width="5" height="12"/><rect x="9" y="4" width="6" height="17"/>'
    '<rect x="16" y="11" width="5" height="10"/>',
    "urbanicity=rural": '<path d="M6 3 L11 12 L8 12 L8 20 L4 20 L4 12 L1 12 Z"/>'
    '<path d="M17 6 L23 16 L19 16 L19 21 L15 21 L15 16 L11 16 Z"/>',
    "urbanicity=suburban": '<path d="M2 13 L8 7 L14 13 L13 13 L13 20 L3 20 L3 13 Z"/>'
    '<circle cx="19" cy="11" r="4"/><rect x="18" y="14" width="2" height="6"/>',
    "home_ownership": '<path d="M3 11 L12 3 L21 11 L19 11 L19 21 L5 21 L5 11 Z"/>',
    "household_size": '<circle cx="7" cy="9" r="3"/><circle cx="17" cy="9" r="3"/><circle cx="12" cy="15" r="3"/>',
    "children": '<circle cx="8" cy="10" r="3.5"/><circle cx="16" cy="13" r="2.5"/>',
    "household_income": '<circle cx="12" cy="12" r="8"/>',
    "net_worth": '<rect x="4" y="14" width="4" height="7"/><rect x="10" y="9" width="4" height="12"/>'
    '<rect x="16" y="4" width="4" height="17"/>',
    "age": '<circle cx="12" cy="12" r="8" fill="none" stroke-width="2.5"/><path d="M12 7 L12 12 L16 14"/>',
    "home_value": '<path d="M2 12 L12 3 L22 12 L20 12 L20 21 L4 21 L4 12 Z"/>'
    '<path d="M12 10 L15 13.5 L12 18 L9 13.5 Z" fill="none" stroke-width="1.6"/>',
    "years_at_residence": '<path d="M12 2 L12 18"/><path d="M5 12 C5 19 19 19 19 12" fill="none" stroke-width="2.2"/>'
    '<rect x="8" y="5" width="8" height="2"/><circle cx="12" cy="3.5" r="2"/>',
    "vehicles": '<path d="M3 15 L5 9 L19 9 L21 15 L21 18 L3 18 Z"/><circle cx="7" cy="19" r="2.2"/>'
    '<circle cx="17" cy="19" r="2.2"/>',
    "commute_minutes": '<path d="M9 2 L15 2 L20 22 L4 22 Z"/>',
    "credit_score": '<rect x="2" y="5" width="20" height="14" rx="2"/>',
    "marital_status": '<circle cx="9" cy="13" r="5" fill="none" stroke-width="2.2"/>'
    '<circle cx="15" cy="13" r="5" fill="none" stroke-width="2.2"/>',
    "education": '<path d="M1 9 L12 4 L23 9 L12 14 Z"/><path d="M6 12 L6 17 C9 20 15 20 18 17 L18 12 L12 15 Z"/>',
    "shopping_style": '<path d="M5 8 L19 8 L20 21 L4 21 Z"/><path d="M9 8 C9 3 15 3 15 8" fill="none" stroke-width="1.6"/>',
    "state": '<path d="M12 22 C5 14 5 11 5 9 A7 7 0 0 1 19 9 C19 11 19 14 12 22 Z"/>',
    "preferred_channel": '<path d="M2 6 L22 6 L22 19 L2 19 Z"/><path d="M2 6 L12 13 L22 6" fill="none" stroke-width="1.2"/>',
}
HIGH_MARK = '<path d="M20 0.5 L24 6 L16 6 Z"/>'  # a numeric trait above the cohort
LOW_MARK = '<path d="M20 6 L24 0.5 L16 0.5 Z"/>'  # ... and below it
MAX_GLYPHS = 3


def initials(trait: str) -> str:
    """The letters that stand for a trait without a drawn glyph: 'credit_score' -> 'CS', 'tenure' -> 'Te'."""
    words = [w for w in trait.replace("-", "_").split("_") if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].capitalize()
    return "".join(w[0] for w in words[:2]).upper()


def glyph(effect: TraitEffect) -> str:
    """The SVG (24x24 grid) standing for one defining trait, with its direction for numeric traits."""
    shape = GLYPHS.get(f"{effect.trait}={effect.level}") or GLYPHS.get(effect.trait)
    if shape is None:
        shape = (
            '<text x="12" y="16.5" text-anchor="middle" font-size="12" font-weight="700" '
            f'font-family="sans-serif" stroke="none">{escape(initials(effect.trait))}</text>'
        )
    if effect.level == "high":
        shape += HIGH_MARK
    elif effect.level == "low":
        shape += LOW_MARK
    return shape


def avatar_svg(
    name: str, defining: list[TraitEffect], colour: str, named: tuple[str, ...] = (), size: int = 96
) -> str:
    """A square SVG badge in the persona's colour: a large glyph and up to two small ones.

    `named` lists the traits the persona's name is made of: they are drawn first.
    """
    # a trait the persona lacks (0% dog owners) gets no glyph: a dog would say the opposite
    drawn = [e for e in defining if e.level in ("high", "low") or e.effect > 0]
    drawn.sort(key=lambda e: e.trait not in named)  # stable: the name's traits first, each in its own order
    chosen: list[TraitEffect] = []
    for effect in drawn:
        if effect.trait not in {c.trait for c in chosen}:
            chosen.append(effect)
    glyphs = [glyph(e) for e in chosen[:MAX_GLYPHS]]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 96 96" role="img">',
        f"<title>{escape(name)}</title>",
        f'<rect width="96" height="96" rx="20" fill="{colour}"/>',
        '<circle cx="48" cy="40" r="27" fill="#ffffff" fill-opacity="0.22"/>',
    ]
    if glyphs:
        parts.append(
            f'<g transform="translate(27 19) scale(1.75)" fill="#ffffff" stroke="#ffffff" stroke-width="0.6">'
            f"{glyphs[0]}</g>"
        )
    else:  # nothing sets it apart: an empty ring says so
        parts.append('<circle cx="48" cy="40" r="14" fill="none" stroke="#ffffff" stroke-width="4"/>')
    for slot, small in enumerate(glyphs[1:]):
        x = 16 + slot * 44
        parts.append(
            f'<circle cx="{x + 10}" cy="80" r="12" fill="#ffffff" fill-opacity="0.92"/>'
            f'<g transform="translate({x + 1} 71) scale(0.75)" fill="{colour}" stroke="{colour}" stroke-width="0.8">'
            f"{small}</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
