"""The steps of a persona set build between the warehouse and the core; the Dagster assets call these.

Each step takes the set's id and reads what it needs; every status change goes through lifecycle.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core import clustering, identity
from persona_pipeline.core.clustering import Progress
from persona_pipeline.core.domain import BuildSummary, Persona, PersonaSet, stability_warning
from persona_pipeline.core.model import BuildOutcome, PersonaModel, build_model
from persona_pipeline.core.personas import describe_personas
from persona_pipeline.core.traits import Trait, TraitCatalog
from persona_pipeline.core.validation import ValidationResult, validate
from persona_pipeline.errors import BuildAlreadyRunning, BuildError, PersonaPipelineError, SqlModelError
from persona_pipeline.persona_sets import lifecycle
from persona_pipeline.sql_models import explain_empty_cohort, refresh_stale
from persona_pipeline.warehouse import memberships
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.persona_sets import now
from persona_pipeline.warehouse.trait_catalog import load_catalog


@dataclass
class BuildContext:
    record: PersonaSet
    catalog: TraitCatalog
    traits: list[Trait]
    build: int  # the number this build stores under: one past the highest ever recorded, never reused


@dataclass(frozen=True)
class Verdict:
    """A build check's outcome, in words for the UI: what was measured against what."""

    passed: bool
    message: str


@contextlib.contextmanager
def marks_errors(engine: Engine, persona_set_id: int) -> Iterator[None]:
    """Any failure of a build step marks the persona set errored with the error's text, then propagates."""
    try:
        yield
    except BuildAlreadyRunning:
        raise  # the set belongs to the build that is running: it settles the status
    except Exception as exc:
        # a user error is its own sentence; anything else keeps its type, which says where to look
        text = str(exc) if isinstance(exc, PersonaPipelineError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            lifecycle.mark_errored(engine, persona_set_id, text)
        raise


def context_for(engine: Engine, persona_set_id: int) -> BuildContext:
    record = store.get_by_id(engine, persona_set_id)
    catalog = load_catalog(engine)
    traits = catalog.select(record.traits)
    return BuildContext(record, catalog, traits, store.latest_build_number(engine, record.id) + 1)


def begin(engine: Engine, ctx: BuildContext) -> list[str]:
    """The set is building; the SQL models its cohort needs are brought up to date (returns those rebuilt).

    A build the sensor launches has no CLI step before it to refresh the cohort: this is that step.
    """
    lifecycle.start_building(engine, ctx.record)
    return refresh_stale(engine, [ctx.record.cohort])


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
    if frame.empty:
        raise BuildError(explain_empty_cohort(engine, cohort))
    return _typed_for_handoff(frame, ctx.traits)


def _as_text(column: pd.Series) -> pd.Series:
    return column.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def _typed_for_handoff(frame: pd.DataFrame, traits: list[Trait]) -> pd.DataFrame:
    """Categories for categorical traits; a column of mixed types (text in a number column of a user's own
    table) becomes text, so it can be handed to the next step and validation can report each bad value."""
    for trait in traits:
        column = frame[trait.name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            if trait.has_levels:
                continue
            column = column.astype(object)
        if trait.has_levels:
            frame[trait.name] = _as_text(column).astype("category")
        elif column.dtype == object:
            frame[trait.name] = _as_text(column)
    return frame


def validate_cohort(engine: Engine, ctx: BuildContext, frame: pd.DataFrame) -> ValidationResult:
    result = validate(frame, ctx.traits)
    memberships.record_quarantine(engine, ctx.record.id, ctx.build, result.quarantine)
    return result


def check_quarantine_limit(limit: float) -> float:
    """The share of rows allowed to fail validation: a finite number from 0 to 1, refused before anything runs."""
    if not (isinstance(limit, int | float) and math.isfinite(limit) and 0 <= limit <= 1):
        raise BuildError(
            f"max_quarantine_share must be a share from 0 to 1 (0.05 allows 5% of rows to fail), not {limit!r}"
        )
    return float(limit)


def judge_quarantine(engine: Engine, ctx: BuildContext, result: ValidationResult, limit: float) -> Verdict:
    """Whether the quarantined share is within `limit`; over it, the set is errored with the top reasons."""
    limit = check_quarantine_limit(limit)
    if result.failed_share <= limit:
        return Verdict(True, f"{result.failed_share:.2%} of rows quarantined (limit {limit:.1%})")
    top = "; ".join(f"{r.column}: {r.reason} ({r.rows} rows)" for r in result.summary().head(3).itertuples())
    message = (
        f"{result.failed_rows:,} of {result.total_rows:,} rows ({result.failed_share:.1%}) failed validation, "
        f"more than the allowed {limit:.1%}. Most common: {top}. The rows are in the "
        f"quarantine table (persona_set_id={ctx.record.id}, build={ctx.build}); fix the source data or raise "
        "max_quarantine_share."
    )
    lifecycle.mark_errored(engine, ctx.record.id, message)
    return Verdict(False, message)


def previous_model(engine: Engine, record: PersonaSet) -> PersonaModel | None:
    """The model of the set's current build: what a rebuild matches its personas to."""
    build = store.current_build(engine, record)
    return PersonaModel.from_json(build.model) if build else None


def previous_memberships(
    engine: Engine, persona_set_id: int, contact_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The current build's stored memberships aligned to `contact_ids` (n,): persona id (0 where the contact
    was not in it), fingerprint (int64) and whether one was stored (bool); and how many of its contacts left."""
    stored = memberships.read_memberships(engine, persona_set_id, fingerprints=True)
    position = pd.Index(stored["contact_id"].to_numpy()).get_indexer(contact_ids)
    found = position >= 0
    ids = np.zeros(len(contact_ids), dtype=np.int32)
    ids[found] = stored["persona_id"].to_numpy()[position[found]]
    stored_prints = pd.array(stored["fingerprint"], dtype="Int64")
    prints = np.zeros(len(contact_ids), dtype=np.int64)
    fingerprinted = np.zeros(len(contact_ids), dtype=bool)
    prints[found] = stored_prints.to_numpy(dtype="int64", na_value=0)[position[found]]
    fingerprinted[found] = ~stored_prints.isna()[position[found]]
    return ids, prints, fingerprinted, len(stored) - int(found.sum())


def fit_personas(
    engine: Engine, ctx: BuildContext, valid: pd.DataFrame, progress: Progress | None = None
) -> BuildOutcome:
    """Fit this build; on a rebuild, persona ids follow the previous build's stored memberships."""
    previous = previous_model(engine, ctx.record)
    gone_traits = (
        sorted(set(previous.transform.trait_names) - {t.name for t in ctx.traits}) if previous else []
    )
    if gone_traits and progress:  # its k and model stay behind; ids still follow the contacts
        progress(
            f"the previous build clustered on {', '.join(gone_traits)}, which this one cannot: k is chosen afresh and "
            "persona ids follow the contacts they had"
        )
    stored = None
    if previous is not None:
        stored = previous_memberships(engine, ctx.record.id, valid["contact_id"].to_numpy())
    outcome = build_model(
        valid,
        ctx.traits,
        ctx.record.seed,
        k=ctx.record.n_personas,
        previous=previous,
        explicit_traits=bool(ctx.record.traits),
        progress=progress,
        previous_ids=stored[0] if stored is not None else None,
        fingerprint=True,
        method=ctx.record.method,
        same_traits=not gone_traits,
    )
    outcome.contact_ids = valid["contact_id"].to_numpy()
    if stored is not None:
        ids, prints, fingerprinted, left = stored
        outcome.previous_ids = ids
        outcome.trait_states = identity.trait_states(ids, prints, fingerprinted, outcome.fingerprints)
        outcome.left_previous = left
        outcome.previous_traits = list(previous.transform.trait_names)
    return outcome


def make_personas(
    engine: Engine, ctx: BuildContext, valid: pd.DataFrame, outcome: BuildOutcome
) -> tuple[list[Persona], BuildSummary]:
    """Describe and store the personas of this build, keeping the names of personas that survived."""
    kept_names: dict[int, str] = {}
    user_named: frozenset[int] = frozenset()
    if ctx.record.current_build is not None:
        previous = store.read_personas(engine, ctx.record.id)
        kept_names = {p.persona_id: p.name for p in previous}
        user_named = frozenset(p.persona_id for p in previous if p.named_by_user)
    used = [t for t in ctx.traits if t.name in outcome.model.transform.trait_names]
    quarantined = store.quarantined_rows(engine, ctx.record.id, ctx.build)
    result = describe_personas(
        valid, outcome.persona_ids, used, ctx.catalog, ctx.record.seed, kept_names, user_named
    )
    figure = None
    if outcome.previous_ids is not None and outcome.trait_states is not None:
        renamed = {
            p.persona_id: f"{kept_names[p.persona_id]!r} -> {p.name!r}"
            for p in result
            if kept_names.get(p.persona_id, p.name) != p.name
        }
        figure = identity.identity_figure(
            outcome.previous_ids,
            outcome.trait_states,
            outcome.persona_ids,
            renamed,
            outcome.left_previous,
            (outcome.previous_traits, outcome.model.transform.trait_names),
        )
    summary = BuildSummary(
        build=ctx.build,
        k=outcome.model.k,
        k_reason=outcome.k_choice.reason,
        k_scores=json.dumps(outcome.k_choice.scores),
        stability=outcome.stability,
        model=outcome.model.to_json(),
        cohort_size=len(valid) + quarantined,
        quarantined=quarantined,
        kept_from_previous=figure.kept_share if figure is not None else None,
        built_at=now(),
        identity=figure.to_json() if figure is not None else None,
    )
    store.record_build(engine, ctx.record.id, summary, result)
    return result, summary


def write_memberships(engine: Engine, ctx: BuildContext, outcome: BuildOutcome) -> int:
    """Every valid contact's persona and confidence, stored as the set's current build: the set is ready."""
    if outcome.contact_ids is None:
        raise BuildError("the model step's outcome has no contact ids: rebuild the persona set")
    frame = pd.DataFrame(
        {
            "contact_id": outcome.contact_ids,
            "persona_id": outcome.persona_ids,
            "confidence": outcome.confidence,
        }
    )
    if outcome.fingerprints is not None:
        frame["fingerprint"] = outcome.fingerprints
    frame["confidence"] = frame["confidence"].astype("float64").round(4)
    return lifecycle.land_memberships(engine, ctx.record.id, ctx.build, frame)


def personas_table(personas: list[Persona]) -> list[dict[str, Any]]:
    """One row per persona for the UI's table, formatted for people: the population with separators, the
    share as a percentage, the two strongest defining traits on one short line."""
    return [
        {
            "persona_id": p.persona_id,
            "name": p.name,
            "contacts": f"{p.population:,}",
            "share": f"{p.share:.1%}",
            "defining traits": "; ".join(_short(d.text) for d in p.defining[:2]),
        }
        for p in personas
    ]


def _short(text: str, limit: int = 48) -> str:
    """'age: median 71 years vs 42 years' without ' in the cohort', clipped to `limit` characters."""
    text = text.removesuffix(" in the cohort")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


KEPT_WHEN_UNCHANGED = 0.95  # a rebuild should keep this share of unchanged contacts in their persona


def judge_memberships(
    engine: Engine, ctx: BuildContext, valid_rows: int, expected: dict[int, int]
) -> Verdict:
    """Whether the stored current build holds exactly one membership per valid row, persona by persona
    (`expected`: contacts per persona id, as the personas step counted them)."""
    stored = memberships.count_memberships(engine, ctx.record.id)
    total = sum(stored.values())
    if total == valid_rows and stored == expected:
        return Verdict(
            True, f"{total:,} memberships stored, one per valid cohort row, as each persona counts"
        )
    return Verdict(
        False,
        f"{total:,} memberships stored for {valid_rows:,} valid cohort rows (per persona stored {stored}, "
        f"described {expected}); rebuild the set: persona-pipeline persona-set build {ctx.record.name!r}",
    )


def judge_smallest(personas: list[Persona]) -> Verdict:
    """Whether every persona holds at least the share the automatic k requires (a user-set k may not)."""
    smallest = min(personas, key=lambda p: p.share)
    if smallest.share >= clustering.MIN_SHARE:
        return Verdict(True, f"smallest persona {smallest.name!r}: {smallest.share:.1%} of the cohort")
    return Verdict(
        False,
        f"persona {smallest.name!r} holds {smallest.share:.1%} of the cohort, under "
        f"{clustering.MIN_SHARE:.0%}: too small to act on; ask for fewer personas (--personas) or let the "
        "data choose",
    )


def judge_stability(stability: float) -> Verdict:
    """Whether fits on two halves of the cohort agree as well as the automatic k requires."""
    warning = stability_warning(stability)
    if warning is None:
        return Verdict(True, f"split-half stability {stability:.2f} (at least {clustering.STABLE:.2f})")
    return Verdict(False, warning)


def judge_drift(summary: BuildSummary) -> Verdict:
    """Whether a rebuild kept contacts whose traits did not change in their persona (id and name)."""
    figure = summary.identity_figure
    if figure is None or figure.unchanged_share is None:
        return Verdict(
            True, "first build, or no contact of the previous build kept its traits: nothing to drift"
        )
    share = figure.unchanged_share
    if share >= KEPT_WHEN_UNCHANGED:
        return Verdict(True, f"{share:.1%} of {figure.unchanged:,} unchanged contacts kept their persona")
    return Verdict(
        False,
        f"only {share:.1%} of {figure.unchanged:,} contacts whose traits did not change kept their persona "
        f"(expected at least {KEPT_WHEN_UNCHANGED:.0%}): the personas moved; check the k table "
        "(persona-pipeline persona-set show) before sending this build to pipelines",
    )
