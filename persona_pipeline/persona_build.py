"""The steps of a persona set build between the warehouse and the core; the Dagster assets call these."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core.clustering import Progress
from persona_pipeline.core.model import BuildOutcome, PersonaModel, build_model
from persona_pipeline.core.personas import Persona, describe_personas
from persona_pipeline.core.traits import Trait, TraitCatalog, TraitKind
from persona_pipeline.core.validation import ValidationResult, validate
from persona_pipeline.sql_models import SqlModelError
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.sources import load_catalog


class BuildError(RuntimeError):
    """A build step that cannot go on; the message says what to do."""


@dataclass
class BuildContext:
    record: store.PersonaSet
    catalog: TraitCatalog
    traits: list[Trait]
    build: int


def context_for(engine: Engine, partition: str) -> BuildContext:
    record = store.get_by_id(engine, store.id_from_partition_key(partition))
    catalog = load_catalog(engine)
    traits = catalog.select(record.traits)
    latest = store.latest_build(engine, record.id)
    return BuildContext(record, catalog, traits, (latest["build"] if latest else 0) + 1)


def extract_cohort(engine: Engine, ctx: BuildContext) -> pd.DataFrame:
    """The cohort's contacts with their clustering traits, read in bulk."""
    cohort = ctx.record.cohort
    if not sa.inspect(engine).has_table(cohort):
        raise BuildError(
            f"the cohort {cohort!r} has not been built in the warehouse yet: run `persona-pipeline models run` "
            f"or materialize the asset cohorts/{cohort} in Dagster"
        )
    present = {c["name"] for c in sa.inspect(engine).get_columns("contacts")}
    missing = [t.name for t in ctx.traits if t.name not in present]
    if missing:
        raise BuildError(
            f"the contacts table has no column {', '.join(missing)} although the trait catalog declares it; "
            "reload the data with `persona-pipeline load` or fix the catalog"
        )
    columns = ", ".join(quote(engine, c) for c in ["contact_id", *(t.name for t in ctx.traits)])
    sql = (
        f"SELECT {columns} FROM {quote(engine, 'contacts')} "  # noqa: S608 - every identifier is quoted
        f"WHERE {quote(engine, 'contact_id')} IN (SELECT {quote(engine, 'contact_id')} FROM {quote(engine, cohort)}) "
        f"ORDER BY {quote(engine, 'contact_id')}"  # the same rows in the same order on every backend: determinism
    )
    try:
        frame = read_frame(engine, sql, categorical=True, split_on="contact_id")
    except sa.exc.DBAPIError as exc:
        raise SqlModelError(f"reading cohort {cohort!r} failed: {str(exc).splitlines()[0]}") from exc
    return _typed_for_handoff(frame, ctx.traits)


def _as_text(column: pd.Series) -> pd.Series:
    return column.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def _typed_for_handoff(frame: pd.DataFrame, traits: list[Trait]) -> pd.DataFrame:
    """Categories for categorical traits; a column of mixed types (text in a number column of a user's own
    table) becomes text, so it can be handed to the next step and validation can report each bad value."""
    for trait in traits:
        column = frame[trait.name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            if trait.kind is TraitKind.CATEGORICAL:
                continue
            column = column.astype(object)
        if trait.kind is TraitKind.CATEGORICAL:
            frame[trait.name] = _as_text(column).astype("category")
        elif column.dtype == object:
            frame[trait.name] = _as_text(column)
    return frame


def validate_cohort(engine: Engine, ctx: BuildContext, frame: pd.DataFrame) -> ValidationResult:
    result = validate(frame, ctx.traits)
    store.record_quarantine(engine, ctx.record.id, ctx.build, result.quarantine)
    return result


def previous_model(engine: Engine, persona_set_id: int) -> PersonaModel | None:
    latest = store.latest_build(engine, persona_set_id)
    return PersonaModel.from_json(latest["model"]) if latest else None


def fit_personas(
    engine: Engine, ctx: BuildContext, valid: pd.DataFrame, progress: Progress | None = None
) -> BuildOutcome:
    previous = previous_model(engine, ctx.record.id)
    if previous is not None and set(previous.transform.trait_names) - {t.name for t in ctx.traits}:
        previous = None  # the set's traits changed: identities cannot be carried over a different space
    return build_model(
        valid,
        ctx.traits,
        ctx.record.seed,
        k=ctx.record.n_personas,
        previous=previous,
        explicit_traits=bool(ctx.record.traits),
        progress=progress,
    )


def make_personas(
    engine: Engine, ctx: BuildContext, valid: pd.DataFrame, outcome: BuildOutcome
) -> list[Persona]:
    """Describe and store the personas of this build, keeping the names of personas that survived."""
    kept_names: dict[int, str] = {}
    if ctx.record.current_build is not None:
        kept_names = {p["persona_id"]: p["name"] for p in store.read_personas(engine, ctx.record.id)}
    used = [t for t in ctx.traits if t.name in outcome.model.transform.trait_names]
    quarantined = store.quarantined_rows(engine, ctx.record.id, ctx.build)
    result = describe_personas(valid, outcome.persona_ids, used, ctx.catalog, ctx.record.seed, kept_names)
    store.record_build(
        engine,
        ctx.record.id,
        {
            "build": ctx.build,
            "k": outcome.model.k,
            "k_reason": outcome.k_choice.reason,
            "k_scores": json.dumps(outcome.k_choice.scores),
            "stability": outcome.stability,
            "model": outcome.model.to_json(),
            "cohort_size": len(valid) + quarantined,
            "quarantined": quarantined,
            "kept_from_previous": outcome.kept_from_previous,
            "built_at": store._now(),
        },
        [p.to_row() for p in result],
    )
    return result


def write_memberships(engine: Engine, ctx: BuildContext, valid: pd.DataFrame, outcome: BuildOutcome) -> int:
    frame = pd.DataFrame(
        {
            "contact_id": valid["contact_id"].to_numpy(),
            "persona_id": outcome.persona_ids,
            "confidence": outcome.confidence,
        }
    )
    frame["confidence"] = frame["confidence"].astype("float64").round(4)
    return store.replace_memberships(engine, ctx.record.id, ctx.build, frame)


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def markdown_escape(text: str) -> str:
    """User text shown as text in Markdown: HTML escaped and Markdown punctuation neutralised."""
    escaped = html.escape(text)
    for char in "\\`*_{}[]()#+-.!|>~":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def personas_markdown(set_name: str, rows: list[dict[str, Any]]) -> str:
    """The Definition view as Markdown: avatar, name, population, defining traits and rules of each persona.

    Takes personas as `Persona.to_view()` or `persona_sets.read_personas` give them.
    """
    lines = [f"## {markdown_escape(set_name)}", ""]
    for row in rows:
        lines.append(f"### ![avatar]({svg_data_uri(row['avatar_svg'])}) {markdown_escape(row['name'])}")
        lines.append(f"**{row['population']:,} contacts ({row['share']:.1%})** · persona {row['persona_id']}")
        lines.append("")
        for effect in row["defining_traits"]:
            lines.append(f"- {markdown_escape(effect['text'])}")
        for rule in row["rules"]:
            lines.append(
                f"- *rule:* {markdown_escape(rule['text'])} ({rule['precision']:.0%} precise, covers {rule['coverage']:.0%})"
            )
        lines.append("")
    return "\n".join(lines)


def personas_table(personas: list[Persona]) -> list[dict[str, Any]]:
    """One row per persona for the UI's table: id, name, population, share and its top defining traits."""
    return [
        {
            "persona_id": p.persona_id,
            "name": p.name,
            "population": p.population,
            "share": round(p.share, 4),
            "defining_traits": "; ".join(d.text for d in p.defining[:3]),
        }
        for p in personas
    ]
