"""Creating and changing persona sets, validated once here for the CLI, the Dagster UI and the Python API.

    from persona_pipeline.persona_sets import catalog
    catalog.create(engine, "Customers", "customers", traits=["age", "urbanicity"])

Everything a user can get wrong (an unknown cohort or trait, a name too long, k out of range) is refused
here with the same words whoever asks, before anything is stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from persona_pipeline.core.domain import (
    MAX_PERSONAS,
    MIN_PERSONAS,
    BuildSummary,
    ClusteringMethod,
    PersonaSet,
    clean_name,
    name_key,
)
from persona_pipeline.errors import AnalysisError, CatalogError, PersonaSetError
from persona_pipeline.persona_sets import lifecycle
from persona_pipeline.sql_models import discover, require_cohort, stale_models
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.trait_catalog import load_catalog

_UNSET: Any = object()


def _require_k(n_personas: int | None) -> None:
    if n_personas is not None and not MIN_PERSONAS <= n_personas <= MAX_PERSONAS:
        raise PersonaSetError(
            f"--personas must be between {MIN_PERSONAS} and {MAX_PERSONAS}, not {n_personas}"
        )


def _require_method(method: ClusteringMethod | str) -> ClusteringMethod:
    try:
        return ClusteringMethod(method)
    except ValueError:
        choices = ", ".join(str(m) for m in ClusteringMethod)
        raise PersonaSetError(f"--method must be one of {choices}, not {method!r}") from None


def require_traits(engine: Engine, names: list[str] | None) -> None:
    """Unknown trait names fail here, naming them, before anything is stored."""
    load_catalog(engine).select(names)


def require_analysis_traits(engine: Engine, names: list[str]) -> None:
    """Fail before storing when a requested analysis trait does not exist."""
    try:
        require_traits(engine, names)
    except CatalogError as exc:
        raise AnalysisError(str(exc)) from exc


def create(
    engine: Engine,
    name: str,
    cohort: str,
    traits: list[str] | None = None,
    n_personas: int | None = None,
    seed: int = 0,
    analysis_traits: list[str] | None = None,
    show_in_explore: bool = True,
    method: ClusteringMethod | str = ClusteringMethod.KMEANS,
) -> PersonaSet:
    """Queue a new persona set on a cohort (traits: None for the catalog's clustering traits)."""
    method = _require_method(method)
    clean = clean_name(name, "a persona set", PersonaSetError)
    require_cohort(discover(), cohort)
    require_traits(engine, traits or None)
    if analysis_traits:
        require_traits(engine, analysis_traits)
    _require_k(n_personas)
    return lifecycle.create_queued(
        engine,
        clean,
        cohort,
        traits or None,
        n_personas,
        seed,
        analysis_traits or None,
        show_in_explore,
        method,
    )


def update(
    engine: Engine,
    name: str,
    cohort: str | None = None,
    traits: list[str] | None = _UNSET,
    n_personas: int | None = _UNSET,
    method: ClusteringMethod | str | None = None,
) -> bool:
    """Change how the set is built; returns whether anything changed, in which case the set is queued.

    traits=None resets to the catalog's defaults; n_personas=None lets the data choose again.
    """
    record = store.get(engine, name)
    values: dict[str, Any] = {}
    if cohort is not None:
        require_cohort(discover(), cohort)
        if cohort != record.cohort:
            values["cohort"] = cohort
    if traits is not _UNSET:
        require_traits(engine, traits)
        if traits != record.traits:
            values["traits"] = store.traits_column(traits)
    if n_personas is not _UNSET:
        _require_k(n_personas)
        if n_personas != record.n_personas:
            values["n_personas"] = n_personas
    if method is not None:
        method = _require_method(method)
        if method != record.method:
            values["method"] = str(method)
    if not values:
        return False
    lifecycle.queue(engine, record, **values)
    return True


def rebuild(engine: Engine, name: str) -> PersonaSet:
    """Queue a rebuild of the set as it is defined."""
    record = store.get(engine, name)
    lifecycle.queue(engine, record)
    return record


def rename_persona(engine: Engine, name: str, persona_id: int, new_name: str) -> str:
    """Rename a persona of the current build; later builds keep the name while the persona survives."""
    record = store.get(engine, name)
    clean = clean_name(new_name, "a persona", PersonaSetError)
    current = {p.persona_id: p.name for p in store.read_personas(engine, record.id)}
    if persona_id not in current:
        raise PersonaSetError(
            f"persona set {record.name!r} has no persona {persona_id}; its personas are "
            + ", ".join(f"{pid} ({n})" for pid, n in current.items())
        )
    taken = [(pid, n) for pid, n in current.items() if name_key(n) == name_key(clean) and pid != persona_id]
    if taken:
        pid, name = taken[0]
        raise PersonaSetError(
            f"persona {pid} of {record.name!r} is already named {name!r} (names are matched ignoring case); "
            "choose another name"
        )
    store.rename_persona(engine, record, persona_id, clean)
    return clean


def set_analysis_traits(engine: Engine, name: str, traits: list[str]) -> PersonaSet:
    """Change the traits studied beside the clustering ones (the personas are not rebuilt)."""
    require_analysis_traits(engine, traits)
    record = store.get(engine, name)
    store.set_analysis_traits(engine, record.id, traits)
    return store.get_by_id(engine, record.id)


def clustered_among(engine: Engine, record: PersonaSet, traits: list[str]) -> list[str]:
    """Those of `traits` the set clusters on (its --traits, or the catalog's default clustering traits): the
    Analysis shows them with the clustering traits, not again as analysis traits."""
    clustering = record.traits or load_catalog(engine).default_clustering
    return [t for t in traits if t in clustering]


def set_show_in_explore(engine: Engine, name: str, show: bool) -> tuple[PersonaSet, bool]:
    """Show or hide the set in Explore; returns the set and whether anything changed."""
    record = store.get(engine, name)
    return record, store.set_show_in_explore(engine, record.id, show)


def data_changed_since_build(engine: Engine, record: PersonaSet, build: BuildSummary) -> bool:
    """Whether the set's cohort no longer holds what `build` (its current one) was made from: the cohort's SQL
    model would be rebuilt (its sources changed since), or was rebuilt after this build (another set's build)."""
    if build.built_at is None:
        return False
    models = discover()
    if record.cohort not in models:
        return False
    if record.cohort in stale_models(engine, models, [record.cohort]):
        return True
    cohort_built = store.cohort_built_at(engine, record.cohort)
    return cohort_built is not None and cohort_built > build.built_at
