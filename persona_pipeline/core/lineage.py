"""Who consumes what, and the guard that refuses to delete anything still consumed.

A persona set is consumed by pipelines whose payload holds it; a cohort by the persona sets built on it, by
pipelines whose population holds it, and by SQL models that ref() it (Dagster assets downstream).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from persona_pipeline.errors import LineageError


@dataclass(frozen=True)
class Consumer:
    kind: str  # "persona set", "pipeline", "SQL model"
    name: str
    how: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} ({self.how})"


@dataclass(frozen=True)
class PipelineRef:
    name: str
    population: tuple[str, ...]  # cohorts
    payload: tuple[str, ...]  # persona sets


def persona_set_consumers(name: str, pipelines: Iterable[PipelineRef]) -> list[Consumer]:
    return [Consumer("pipeline", p.name, "payload") for p in pipelines if name in p.payload]


def cohort_consumers(
    cohort: str,
    persona_sets: Iterable[tuple[str, str]],
    pipelines: Iterable[PipelineRef],
    model_refs: Mapping[str, Iterable[str]],
) -> list[Consumer]:
    """persona_sets: (name, cohort) pairs; model_refs: model name -> the models it refs."""
    found = [Consumer("persona set", name, "built on it") for name, used in persona_sets if used == cohort]
    found += [Consumer("pipeline", p.name, "population") for p in pipelines if cohort in p.population]
    found += [
        Consumer("SQL model", m, "ref()") for m, refs in model_refs.items() if cohort in refs and m != cohort
    ]
    return found


def guard(target: str, consumers: list[Consumer], advice: str) -> None:
    if consumers:
        raise LineageError(target, consumers, advice)
