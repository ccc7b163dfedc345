"""The life of a persona set between runs: queued sets to build, and what a finished build means."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from persona_pipeline.warehouse import persona_sets as store


@dataclass(frozen=True)
class BuildRequest:
    partition_key: str
    run_key: str  # the same queued state always gives the same key: a second sensor tick launches nothing
    name: str


def queued_builds(engine: Engine) -> list[BuildRequest]:
    """A build request for every queued persona set, keyed by the set and the moment it was queued."""
    return [
        BuildRequest(r.partition_key, f"{r.partition_key}@{r.updated_at:%Y%m%dT%H%M%S}", r.name)
        for r in store.list_all(engine)
        if r.status == "queued"
    ]


def missing_partitions(engine: Engine, existing: set[str]) -> tuple[list[str], list[str]]:
    """Partitions the catalog's persona sets lack, and the names of built sets whose partition vanished."""
    records = [r for r in store.list_all(engine) if r.partition_key not in existing]
    restored = [repr(r.name) for r in records if r.current_build is not None]
    return [r.partition_key for r in records], restored


def build_finished(
    engine: Engine, partition_key: str, success: bool, error: str | None, personas_built: bool = False
) -> tuple[str, str]:
    """Settle the set's status after its build run and return the notification's subject and body.

    personas_built: the failed run wrote the memberships before failing (in the Analysis or the report), so
    the set stays ready and the message says what failed.
    """
    record = store.get_by_id(engine, store.id_from_partition_key(partition_key))
    if not success and personas_built and record.status == "ready":
        return (
            f"Persona set {record.name!r} is ready, but its Analysis or report failed",
            f"The personas of {record.name!r} were built (build {record.current_build}), then this failed:\n\n"
            f"{error or 'see the run in the Dagster UI'}\n\nRefresh them with: persona-pipeline analyse "
            f"{record.name!r}\n",
        )
    if success and record.status == "ready":
        personas = store.read_personas(engine, record.id)
        lines = [f"- {p['name']}: {p['population']:,} contacts ({p['share']:.1%})" for p in personas]
        return (
            f"Persona set {record.name!r} is ready ({len(personas)} personas)",
            f"The persona set {record.name!r} on cohort {record.cohort!r} was built "
            f"(build {record.current_build}).\n\n" + "\n".join(lines) + "\n",
        )
    text = record.error if record.status == "errored" and record.error else (error or "the build run failed")
    if record.status != "errored":
        store.set_status(engine, record.id, "errored", text)
    return (
        f"Persona set {record.name!r} failed to build",
        f"The build of persona set {record.name!r} failed:\n\n{text}\n\n"
        f"Fix the cause, then: persona-pipeline persona-set build {record.name!r}\n",
    )


def build_killed(engine: Engine, partition_key: str, message: str) -> None:
    """A build whose process was killed left its set "building": errored, with the reason.

    A set the build had already made ready stays ready, and a set deleted since is left alone.
    """
    try:
        record = store.get_by_id(engine, store.id_from_partition_key(partition_key))
    except store.PersonaSetError:
        return
    if record.status == "building":
        store.set_status(engine, record.id, "errored", message)
