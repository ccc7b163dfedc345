"""Assign contacts to personas: in batches (vectorized) and one at a time (real time, plain Python).

Scoring one contact through pandas costs milliseconds of overhead; the single path below encodes the contact
with precomputed tables and compares it with the centroids in pure Python, the same arithmetic as the batch
path (the same persona but at float32 near-ties: a property test checks it). A latent-class model's costs
are added here in the order core/latent_class.costs adds them, so it gives the same persona on every contact.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from persona_pipeline.core.domain import did_you_mean
from persona_pipeline.core.features import CLIP, FeatureTransform, TraitEncoding
from persona_pipeline.core.latent_class import EXP_FLOOR
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.traits import BOOLEAN_WORDS, NUMERIC_LIKE, TraitKind, normal_level
from persona_pipeline.errors import ScoringError


@dataclass(frozen=True)
class Score:
    persona_id: int
    confidence: float
    persona_name: str | None = None
    # clustering traits scored as missing: not given, empty, or a level the build never saw
    missing: tuple[str, ...] = ()
    # 'trait: value is not one of its levels (did you mean ...?)' for each given level the build never saw
    not_levels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "persona_id": self.persona_id,
            "persona_name": self.persona_name,
            "confidence": round(self.confidence, 4),
        }
        if self.missing:  # said, so a persona from half a contact is not read as one from all of it
            out["scored_without"] = list(self.missing)
        if self.not_levels:
            out["not_levels"] = list(self.not_levels)
        return out


class Scorer:
    """One persona set's model, ready to score single contacts fast."""

    def __init__(
        self,
        model: PersonaModel,
        names: dict[int, str] | None = None,
        known_traits: set[str] | None = None,
        normalized: set[str] | frozenset[str] = frozenset(),
        bounds: dict[str, tuple[float | None, float | None]] | None = None,
    ):
        """`normalized`: traits whose levels match ignoring case and spaces (`normalize: true`), as at load;
        `bounds`: numeric traits' declared (min, max): a value a load would reject is refused here too."""
        self.model = model
        self._bounds = {name: pair for name, pair in (bounds or {}).items() if pair != (None, None)}
        self.names = names or {}
        transform: FeatureTransform = model.transform
        self._encodings = transform.encodings
        self._trait_names = {e.name for e in self._encodings}
        # traits the catalog knows but the model does not cluster on are accepted and ignored
        self._known = self._trait_names | set(known_traits or ())
        self._centroids = [list(map(float, row)) for row in model.centroids.astype(np.float32)]
        self._ids = list(model.persona_ids)
        self._levels = {
            e.name: {level: i for i, level in enumerate(e.levels)} for e in self._encodings if e.levels
        }
        for e in self._encodings:  # a loose level reads as its declared one, as the load read it
            if e.name in normalized and e.levels:
                self._levels[e.name] |= {normal_level(level): i for i, level in enumerate(e.levels)}
        self._normalized = frozenset(normalized)
        self._latent = None
        if model.latent is not None:  # per persona and trait, as plain floats: (base, [terms per trait])
            self._latent = (
                model.latent.base.tolist(),
                [
                    (t.mean.tolist(), t.half_precision.tolist(), t.offset.tolist())
                    if t.numeric
                    else (t.thresholds.tolist(), t.level_costs.tolist())
                    if t.thresholds is not None
                    else t.level_costs.tolist()
                    for t in model.latent.terms
                ],
            )
        self._lookups = {}
        for e in self._encodings:
            if e.kind == TraitKind.CATEGORICAL:
                shares = np.asarray(e.shares)
                table = (np.vstack([np.eye(len(e.levels)), shares[None, :]]) - shares) / e.scale
                self._lookups[e.name] = [list(map(float, row.astype(np.float32))) for row in table]

    def _number(self, e: TraitEncoding, value: Any) -> float | None:
        """A numeric-like value as the build encoded it: a date as days before the model's reference, a level
        as its rank; unknown levels count as missing, as in the build."""
        if e.kind == TraitKind.DATE:
            if value is None or value == "":
                return None
            try:  # ISO only: '05/03/2023' would be read month-first, where a load may have read it day-first
                if not isinstance(value, str):
                    raise TypeError(value)
                when = pd.Timestamp(dt.datetime.fromisoformat(value))
            except (TypeError, ValueError):
                raise ScoringError(
                    f"trait {e.name!r} takes an ISO date such as 2024-05-31 (or 2024-05-31T08:00), not {value!r}"
                ) from None
            if pd.isna(when) or not e.reference:
                return None
            when = when.tz_convert(None) if when.tzinfo is not None else when
            return float((pd.Timestamp(e.reference) - when) / pd.Timedelta(days=1))
        if e.kind == TraitKind.ORDINAL:
            code = self._level_code(e, value)
            return None if code < 0 else float(code)
        number = _number(e.name, value)
        low, high = self._bounds.get(e.name, (None, None))
        if number is not None and (
            (low is not None and number < low) or (high is not None and number > high)
        ):
            declared = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
            raise ScoringError(
                f"trait {e.name!r} is {number:g}, outside its declared range {declared} (the traits file's min "
                "and max): a load would reject it too"
            )
        return number

    def _level_code(self, e: TraitEncoding, value: Any) -> int:
        """A level's index among the trait's levels; -1 for missing or unseen (scored as missing)."""
        if value is not None and not isinstance(value, str):
            raise ScoringError(f"trait {e.name!r} takes one of its levels as text, not {value!r}")
        if value is None:
            return -1
        levels = self._levels[e.name]
        return levels.get(value, levels.get(normal_level(value), -1) if e.name in self._normalized else -1)

    def _vector(self, contact: dict[str, Any]) -> tuple[list[float], list[str]]:
        """The contact's (d,) feature row, and the traits it was scored without (filled as the build did)."""
        out: list[float] = []
        missing: list[str] = []
        for e in self._encodings:
            value = contact.get(e.name)
            if e.kind in NUMERIC_LIKE:
                number = self._number(e, value)
                if number is None or not math.isfinite(number):
                    missing.append(e.name)
                    out.append(_feature(e, e.fill))  # the fill is on the feature's scale already
                else:
                    out.append(_feature(e, _on_scale(e, number)))
            elif e.kind == TraitKind.BOOLEAN:
                flag = _boolean(e.name, value)
                if flag is None:
                    missing.append(e.name)
                out.append(
                    float(np.float32(((e.fill if flag is None else float(flag)) - e.center) / e.scale))
                )
            else:
                code = self._level_code(e, value)
                if code < 0:
                    missing.append(e.name)
                out.extend(self._lookups[e.name][code])
        return out, missing

    def score(self, contact: dict[str, Any]) -> Score:
        """Persona and confidence for one contact given as {trait: value}; missing traits are allowed."""
        if not isinstance(contact, dict):
            raise ScoringError("a contact is a JSON object of trait: value pairs")
        unknown = [k for k in contact if k not in self._known and k != "contact_id"]
        if unknown:
            first = sorted(unknown)[0]
            raise ScoringError(
                f"unknown trait(s) {', '.join(map(repr, sorted(unknown)))}{did_you_mean(first, self._known)}; this "
                f"persona set scores on {', '.join(sorted(self._trait_names))}"
            )
        scored = self._score_latent(contact) if self._latent is not None else self._score_centroids(contact)
        return replace(scored, not_levels=self._not_levels(contact)) if scored.missing else scored

    def _not_levels(self, contact: dict[str, Any]) -> tuple[str, ...]:
        """Given values of a category that match none of its levels (a near miss such as 'Never Married' for
        '1. Never Married' scores as missing, as a load reads it; said so, with the level meant)."""
        out = []
        for e in self._encodings:
            value = contact.get(e.name)
            if (
                e.kind in (TraitKind.CATEGORICAL, TraitKind.ORDINAL)
                and isinstance(value, str)
                and value.strip()
            ):
                if self._level_code(e, value) < 0:
                    hint = did_you_mean(value, self._levels[e.name])
                    out.append(f"{e.name}: {value!r} is not one of its levels{hint}")
        return tuple(out)

    def _score_centroids(self, contact: dict[str, Any]) -> Score:
        x, missing = self._vector(contact)
        best = second = math.inf
        best_index = 0
        for index, centroid in enumerate(self._centroids):
            distance = 0.0
            for a, b in zip(x, centroid, strict=True):
                distance += (a - b) * (a - b)
            if distance < best:
                best, second, best_index = distance, best, index
            elif distance < second:
                second = distance
        confidence = 1.0 - best / second if second > 0 and math.isfinite(second) else 1.0
        persona = self._ids[best_index]
        return Score(persona, confidence, self.names.get(persona), tuple(missing))

    def _score_latent(self, contact: dict[str, Any]) -> Score:
        """The cheapest persona by latent-class cost (core/latent_class.py): each present trait's term added in
        the transform's order; its posterior as the confidence."""
        base, terms = self._latent
        costs = list(base)
        missing: list[str] = []
        for e, term in zip(self._encodings, terms, strict=True):
            value = contact.get(e.name)
            if e.kind in NUMERIC_LIKE:
                number = self._number(e, value)
                if number is None or not math.isfinite(number):
                    missing.append(e.name)
                    continue
                x = _feature(e, _on_scale(e, number))
                if len(term) == 2:  # a count modelled by its levels: the level between its cuts
                    cuts, level_costs = term
                    code = bisect.bisect_right(cuts, x)
                    for c in range(len(costs)):
                        costs[c] = costs[c] + level_costs[c][code]
                    continue
                means, halves, offsets = term
                for c in range(len(costs)):
                    gap = x - means[c]
                    costs[c] = costs[c] + (gap * gap * halves[c] + offsets[c])
                continue
            if e.kind == TraitKind.BOOLEAN:
                flag = _boolean(e.name, value)
                code = -1 if flag is None else int(flag)
            else:
                code = self._level_code(e, value)
            if code < 0:
                missing.append(e.name)
                continue
            for c in range(len(costs)):
                costs[c] = costs[c] + term[c][code]
        best_index = min(range(len(costs)), key=costs.__getitem__)  # the first minimum, as argmin
        best = costs[best_index]
        confidence = 1.0 / sum(math.exp(max(best - cost, EXP_FLOOR)) for cost in costs)
        persona = self._ids[best_index]
        return Score(persona, confidence, self.names.get(persona), tuple(missing))

    def score_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Batch scoring: contact_id, persona_id, confidence for every row."""
        persona, confidence = self.model.assign(frame)
        return pd.DataFrame(
            {"contact_id": frame["contact_id"].to_numpy(), "persona_id": persona, "confidence": confidence}
        )


def _on_scale(e: TraitEncoding, number: float) -> float:
    """A present number on the scale the build fitted the trait on: log1p where it chose logs."""
    return math.log1p(max(number, 0.0)) if e.log else number


def _feature(e: TraitEncoding, number: float) -> float:
    """A number on its trait's scale standardized, clipped and held in 32 bits, as the batch path holds it."""
    return float(np.float32(min(max((number - e.center) / e.scale, -CLIP), CLIP)))


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ScoringError(f"trait {name!r} takes a number, not {value!r}")
    number = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ScoringError(f"trait {name!r} takes a number, not {value!r}")
    return number


def _boolean(name: str, value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[value.strip().lower()]
    raise ScoringError(f"trait {name!r} takes true or false, not {value!r}")
