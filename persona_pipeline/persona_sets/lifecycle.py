"""The life of a persona set: every change of its status happens here, and nowhere else.

    new / changed / rebuild asked   -> queued
    a build starts                  -> building
    its memberships land            -> ready (the new build becomes current)
    a step fails, a run is killed   -> errored, with the reason (the previous build keeps serving)

The warehouse stores what this module decides (warehouse.persona_sets.write_status and make_current).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from persona_pipeline.core.domain import ClusteringMethod, PersonaSet, PersonaSetStatus
from persona_pipeline.errors import BuildAlreadyRunning, NotBuiltError, PersonaSetError
from persona_pipeline.warehouse import persona_sets as store

if TYPE_CHECKING:
    import pandas as pd

Status = PersonaSetStatus


def create_queued(
    engine: Engine,
    name: str,
    cohort: str,
    traits: list[str] | None,
    n_personas: int | None,
    seed: int,
    analysis_traits: list[str] | None,
    show_in_explore: bool,
    method: ClusteringMethod = ClusteringMethod.KMEANS,
) -> PersonaSet:
    """A new persona set starts queued: the queued_persona_sets sensor (or `persona-set build`) builds it."""
    return store.insert(
        engine,
        name,
        cohort,
        traits,
        n_personas,
        seed,
        analysis_traits,
        show_in_explore,
        Status.QUEUED,
        method,
    )


def queue(engine: Engine, record: PersonaSet, **definition: Any) -> None:
    """Ask for a rebuild, with any change of definition (cohort, traits, n_personas, method as stored columns)."""
    store.write_status(engine, record.id, Status.QUEUED, None, **definition)


def start_building(engine: Engine, record: PersonaSet) -> None:
    """The set is building now; refused while another build is (that build settles the set, not this one)."""
    if not store.claim_building(engine, record.id):
        raise BuildAlreadyRunning(
            f"persona set {record.name!r} is being built by another run now; this one stopped without changing "
            "it. Wait for that build, or terminate it in the Dagster UI"
        )


def mark_errored(engine: Engine, persona_set_id: int, message: str) -> None:
    """The build failed: errored with the reason; the current build, if any, stays in place."""
    store.write_status(engine, persona_set_id, Status.ERRORED, message)


def land_memberships(engine: Engine, persona_set_id: int, build: int, frame: pd.DataFrame) -> int:
    """Store a build's memberships and make it current: the set is ready, in one switch.

    frame: contact_id, persona_id, confidence; one row per valid cohort contact.
    """
    from persona_pipeline.warehouse import memberships  # pandas: the CLI's catalog commands never need it

    return memberships.replace_memberships(engine, persona_set_id, build, frame, Status.READY)


def require_built(record: PersonaSet) -> None:
    """A set serves its current build whatever its status (queued, building, errored): only a set that never
    finished a build has nothing to serve."""
    if record.current_build is None:
        state = f"{record.status}: {record.error}" if record.error else str(record.status)
        raise NotBuiltError(
            f"persona set {record.name!r} is not ready ({state}) and has no build to serve yet; build it "
            f"first: persona-pipeline persona-set build {record.name!r}"
        )


def queued_sets(engine: Engine) -> list[PersonaSet]:
    """The persona sets waiting for a build."""
    return [r for r in store.list_all(engine) if r.status is Status.QUEUED]


def build_finished(
    engine: Engine,
    persona_set_id: int,
    success: bool,
    error: str | None,
    personas_built: bool = False,
    report: Path | None = None,
) -> tuple[str, str]:
    """Settle the set's status after its build run and return the notification's subject and body.

    personas_built: the failed run wrote the memberships before failing (in the Analysis or the report), so
    the set stays ready and the message says what failed. report: where the set's report is written (the
    message of a ready set says where to open it, or how to write it when it is not there).
    """
    record = store.get_by_id(engine, persona_set_id)
    if not success and personas_built and record.status is Status.READY:
        return (
            f"Persona set {record.name!r} is ready, but its Analysis or report failed",
            f"The personas of {record.name!r} were built (build {record.current_build}), then this failed:\n\n"
            f"{error or 'see the run in the Dagster UI'}\n\nRefresh them with: persona-pipeline analyse "
            f"{record.name!r}\n",
        )
    if success and record.status is Status.READY:
        personas = store.read_personas(engine, record.id)
        lines = [f"- {p.name}: {p.population:,} contacts ({p.share:.1%})" for p in personas]
        where = ""
        if report is not None:
            where = (
                f"\nThe report: {report}\n"
                if report.exists()
                else f"\nNo report yet: persona-pipeline report {record.name!r} writes it to {report}\n"
            )
        return (
            f"Persona set {record.name!r} is ready ({len(personas)} personas)",
            f"The persona set {record.name!r} on cohort {record.cohort!r} was built "
            f"(build {record.current_build}).\n\n" + "\n".join(lines) + "\n" + where,
        )
    text = (
        record.error
        if record.status is Status.ERRORED and record.error
        else (error or "the build run failed")
    )
    if record.status is not Status.ERRORED:
        mark_errored(engine, record.id, text)
    return (
        f"Persona set {record.name!r} failed to build",
        f"The build of persona set {record.name!r} failed:\n\n{text}\n\n"
        f"Fix the cause, then: persona-pipeline persona-set build {record.name!r}\n",
    )


def build_killed(engine: Engine, persona_set_id: int, message: str) -> None:
    """A build whose process was killed left its set "building": errored, with the reason.

    A set the build had already made ready stays ready, and a set deleted since is left alone.
    """
    try:
        record = store.get_by_id(engine, persona_set_id)
    except PersonaSetError:
        return
    if record.status is Status.BUILDING:
        mark_errored(engine, record.id, message)


def building_sets(engine: Engine) -> list[PersonaSet]:
    return [r for r in store.list_all(engine) if r.status is Status.BUILDING]


def build_abandoned(engine: Engine, persona_set_id: int) -> None:
    """A set still "building" after its run ended (failed where its status could not be written)."""
    record = store.get_by_id(engine, persona_set_id)
    if record.status is not Status.BUILDING:
        return
    served = f"build {record.current_build} still serves" if record.current_build else "it has no build yet"
    mark_errored(
        engine,
        persona_set_id,
        "its build run ended without finishing (the warehouse or the run's process stopped mid-build); "
        f"{served}. Build it again: persona-pipeline persona-set build {record.name!r}",
    )


def settle_build_run(engine: Engine, before: PersonaSet, failure: str) -> tuple[bool, str]:
    """After a build run: whether a new build landed; if not, the set is errored and the reason returned.

    `failure` is the run's own error text, used when no step recorded a reason on the set.
    """
    after = store.get_by_id(engine, before.id)
    if after.status is Status.READY and after.current_build != before.current_build:
        return True, ""
    message = after.error or failure
    if after.status is not Status.ERRORED:
        mark_errored(engine, before.id, message)
    return False, message
