"""The report's charts: axes that cover the data on round ticks, and a distinct colour for every category."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_pipeline.core.domain import Persona
from persona_pipeline.core.render.charts import nice_ticks
from persona_pipeline.core.render.palette import PALETTE
from persona_pipeline.core.render.report import OTHER, persona_meta, products_section


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_ticks_start_at_zero_cover_the_peak_and_are_evenly_round(peak: float) -> None:
    ticks = nice_ticks(peak)
    steps = np.diff(ticks)
    assert ticks[0] == 0 and ticks[-1] >= peak * (1 - 1e-9)
    assert np.allclose(steps, steps[0], rtol=1e-6)
    assert 2 <= len(ticks) <= 6  # a few ticks, and the last is not far past the data
    assert ticks[-2] < peak


def _persona(pid: int, name: str) -> Persona:
    return Persona(persona_id=pid, name=name, avatar_svg="", population=1, share=0.5, defining=[], rules=[])


def _products_table(categories: int, personas: list[int]) -> pd.DataFrame:
    rng = np.random.default_rng(categories)
    rows = []
    for pid in [0, *personas]:
        amounts = rng.uniform(1, 100, categories)
        for c, amount in enumerate(amounts):
            rows.append(
                {
                    "persona_id": pid,
                    "bucket": f"category_{c:02d}",
                    "value": float(amount),
                    "share": float(amount / amounts.sum()),
                    "lift": 1.0,
                    "count": 1.0,
                }
            )
    return pd.DataFrame(rows)


def test_every_category_has_its_own_colour_and_the_rest_are_one_other() -> None:
    meta = persona_meta([_persona(1, "A"), _persona(2, "B")])
    for categories in (3, len(PALETTE), 15):
        html = products_section(_products_table(categories, [1, 2]), meta, "EUR")
        legend = re.findall(
            r"<span class='key' data-colour='(#[0-9A-Fa-f]{6})'><i[^>]*></i>([^<]*)</span>", html
        )
        colours = [c for c, _ in legend]
        assert len(set(colours)) == len(colours)  # no two categories share a colour
        if categories <= len(PALETTE):
            assert len(legend) == categories and OTHER not in html
        else:
            assert len(legend) == len(PALETTE) and legend[-1][1] == OTHER
        assert html.count("<tr><th><i class='swatch'") == categories  # the table lists every category
