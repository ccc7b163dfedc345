"""Avatars drawn by code as SVG from a persona's dominant traits: abstract badges, never faces.

The badge's colour comes from the persona's strongest trait, and up to three glyphs stand for its defining
traits, so two personas that differ look different and the same persona looks the same after a rebuild.
"""

from __future__ import annotations

import hashlib

from persona_pipeline.core.domain import TraitEffect
from persona_pipeline.core.render.html import escape
from persona_pipeline.core.render.palette import colour_for

# Simple shapes on a 24x24 grid, chosen by trait name; anything else gets a shape from its name's hash.
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
    "home_ownership": '<path d="M3 11 L12 3 L21 11 L19 11 L19 21 L5 21 L5 11 Z"/>',
    "household_size": '<circle cx="7" cy="9" r="3"/><circle cx="17" cy="9" r="3"/><circle cx="12" cy="15" r="3"/>',
    "children": '<circle cx="8" cy="10" r="3.5"/><circle cx="16" cy="13" r="2.5"/>',
    "household_income": '<circle cx="12" cy="12" r="8"/>',
    "net_worth": '<rect x="4" y="14" width="4" height="7"/><rect x="10" y="9" width="4" height="12"/>'
    '<rect x="16" y="4" width="4" height="17"/>',
    "age": '<circle cx="12" cy="12" r="8" fill="none" stroke-width="2.5"/><path d="M12 7 L12 12 L16 14"/>',
}
FALLBACK_GLYPHS = (
    '<path d="M12 3 L21 21 L3 21 Z"/>',
    '<rect x="5" y="5" width="14" height="14" rx="2"/>',
    '<path d="M12 2 L14.5 9 L22 9 L16 13.5 L18 21 L12 16.5 L6 21 L8 13.5 L2 9 L9.5 9 Z"/>',
    '<circle cx="12" cy="12" r="7"/>',
)


def _glyph(trait: str) -> str:
    if trait in GLYPHS:
        return GLYPHS[trait]
    return FALLBACK_GLYPHS[int(hashlib.sha256(trait.encode()).hexdigest(), 16) % len(FALLBACK_GLYPHS)]


def avatar_svg(name: str, defining: list[TraitEffect], size: int = 96) -> str:
    """A square SVG badge: colour from the strongest trait, a large glyph for it and small ones for the next two."""
    # a trait the persona lacks (0% dog owners) gets no glyph: a dog would say the opposite
    drawn = [e for e in defining if e.level in ("high", "low") or e.effect > 0]
    lead = drawn[0] if drawn else None
    colour = colour_for(f"{lead.trait}={lead.level}" if lead else name)
    glyphs = [_glyph(e.trait) for e in drawn[:3]] or [FALLBACK_GLYPHS[0]]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 96 96" role="img">',
        f"<title>{escape(name)}</title>",
        f'<rect width="96" height="96" rx="20" fill="{colour}"/>',
        '<circle cx="48" cy="40" r="27" fill="#ffffff" fill-opacity="0.22"/>',
        f'<g transform="translate(27 19) scale(1.75)" fill="#ffffff" stroke="#ffffff" stroke-width="0.6">{glyphs[0]}</g>',
    ]
    for slot, glyph in enumerate(glyphs[1:]):
        x = 16 + slot * 44
        parts.append(
            f'<circle cx="{x + 10}" cy="80" r="11" fill="#ffffff" fill-opacity="0.9"/>'
            f'<g transform="translate({x + 2} 72) scale(0.68)" fill="{colour}" stroke="{colour}" stroke-width="0.8">{glyph}</g>'
        )
    parts.append("</svg>")
    return "".join(parts)
