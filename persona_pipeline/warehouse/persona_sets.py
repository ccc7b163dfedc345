"""Persona sets in the warehouse catalog: their definition, status, builds and results."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.warehouse.bulk import read_frame, write_frame
from persona_pipeline.warehouse.engine import is_postgres
from persona_pipeline.warehouse.tables import (
    ensure_catalog_tables,
    persona_builds,
    persona_memberships,
    persona_sets,
    personas,
    quarantine,
)

MAX_NAME_LENGTH = 200
STATUSES = ("queued", "building", "ready", "errored")


class PersonaSetError(ValueError):
    """A persona set request that cannot be carried out; the message says how to fix it."""


@dataclass(frozen=True)
class PersonaSet:
    id: int
    name: str
    cohort: str
    traits: list[str] | None
    n_personas: int | None
    seed: int
    status: str
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    built_at: dt.datetime | None
    current_build: int | None
    analysis_traits: list[str]
    show_in_explore: bool = True

    @property
    def partition_key(self) -> str:
        return partition_key(self.id)


def partition_key(persona_set_id: int) -> str:
    """Dagster partition of a persona set: by id, so a rename never orphans its runs."""
    return f"set-{persona_set_id}"


def id_from_partition_key(key: str) -> int:
    if not key.startswith("set-") or not key[4:].isdigit():
        raise PersonaSetError(f"{key!r} is not a persona set partition (expected 'set-<id>')")
    return int(key[4:])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _record(row: Any) -> PersonaSet:
    return PersonaSet(
        id=row.id,
        name=row.name,
        cohort=row.cohort,
        traits=json.loads(row.traits) if row.traits else None,
        n_personas=row.n_personas,
        seed=row.seed,
        status=row.status,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        built_at=row.built_at,
        current_build=row.current_build,
        analysis_traits=json.loads(row.analysis_traits) if row.analysis_traits else [],
        show_in_explore=bool(row.show_in_explore),
    )


def create(
    engine: Engine,
    name: str,
    cohort: str,
    traits: list[str] | None = None,
    n_personas: int | None = None,
    seed: int = 0,
    analysis_traits: list[str] | None = None,
    show_in_explore: bool = True,
) -> PersonaSet:
    """Queue a new persona set; names are free text (stored as given, always bound as parameters)."""
    ensure_catalog_tables(engine)
    clean = name.strip()
    if not clean:
        raise PersonaSetError("a persona set needs a name: pass --name NAME")
    if len(clean) > MAX_NAME_LENGTH:
        raise PersonaSetError(f"the name is {len(clean)} characters long; keep it to {MAX_NAME_LENGTH}")
    if n_personas is not None and not 2 <= n_personas <= 8:
        raise PersonaSetError(f"--personas must be between 2 and 8, not {n_personas}")
    now = _now()
    with engine.begin() as conn:
        exists = conn.execute(sa.select(persona_sets.c.id).where(persona_sets.c.name == clean)).first()
        if exists:
            raise PersonaSetError(f"a persona set named {clean!r} exists already; choose another name")
        conn.execute(
            persona_sets.insert().values(
                name=clean,
                cohort=cohort,
                traits=json.dumps(traits) if traits else None,
                n_personas=n_personas,
                seed=seed,
                analysis_traits=json.dumps(analysis_traits) if analysis_traits else None,
                show_in_explore=show_in_explore,
                status="queued",
                created_at=now,
                updated_at=now,
            )
        )
    return get(engine, clean)


def get(engine: Engine, name: str) -> PersonaSet:
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(persona_sets).where(persona_sets.c.name == name)).first()
        if row is None:
            known = conn.execute(sa.select(persona_sets.c.name).order_by(persona_sets.c.name)).scalars().all()
    if row is None:
        hint = f"known persona sets: {', '.join(repr(k) for k in known)}" if known else "there are none yet"
        raise PersonaSetError(f"no persona set named {name!r}; {hint}")
    return _record(row)


def get_by_id(engine: Engine, persona_set_id: int) -> PersonaSet:
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(persona_sets).where(persona_sets.c.id == persona_set_id)).first()
    if row is None:
        raise PersonaSetError(f"no persona set with id {persona_set_id}; it may have been deleted")
    return _record(row)


def list_all(engine: Engine) -> list[PersonaSet]:
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(persona_sets).order_by(persona_sets.c.id)).all()
    return [_record(r) for r in rows]


def set_status(engine: Engine, persona_set_id: int, status: str, error: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    with engine.begin() as conn:
        conn.execute(
            persona_sets.update()
            .where(persona_sets.c.id == persona_set_id)
            .values(status=status, error=error, updated_at=_now())
        )


def queue(engine: Engine, persona_set_id: int) -> None:
    """Ask for a rebuild: the queued-set sensor (or `persona-set build`) takes it from here."""
    set_status(engine, persona_set_id, "queued")


_UNSET = object()


def update_config(
    engine: Engine,
    persona_set_id: int,
    cohort: str | None = None,
    traits: list[str] | None | object = _UNSET,
    n_personas: int | None | object = _UNSET,
) -> bool:
    """Change how the set is built; returns whether anything changed, in which case the set is queued.

    traits=None resets to the catalog's defaults; n_personas=None lets the data choose again.
    """
    record = get_by_id(engine, persona_set_id)
    values: dict[str, Any] = {}
    if cohort is not None and cohort != record.cohort:
        values["cohort"] = cohort
    if traits is not _UNSET and traits != record.traits:
        values["traits"] = json.dumps(traits) if traits else None
    if n_personas is not _UNSET and n_personas != record.n_personas:
        if n_personas is not None and not 2 <= n_personas <= 8:
            raise PersonaSetError(f"--personas must be between 2 and 8, not {n_personas}")
        values["n_personas"] = n_personas
    if not values:
        return False
    with engine.begin() as conn:
        conn.execute(
            persona_sets.update()
            .where(persona_sets.c.id == persona_set_id)
            .values(**values, status="queued", error=None, updated_at=_now())
        )
    return True


def set_show_in_explore(engine: Engine, persona_set_id: int, show: bool) -> bool:
    """Show or hide the set in Explore (no rebuild needed); returns whether anything changed."""
    if get_by_id(engine, persona_set_id).show_in_explore == show:
        return False
    with engine.begin() as conn:
        conn.execute(
            persona_sets.update()
            .where(persona_sets.c.id == persona_set_id)
            .values(show_in_explore=show)  # not updated_at: it keys the queued build's run
        )
    return True


def rename_persona(engine: Engine, persona_set_id: int, persona_id: int, new_name: str) -> None:
    """Rename a persona of the current build; later builds keep the name while the persona survives."""
    record = get_by_id(engine, persona_set_id)
    clean = new_name.strip()
    if not clean or len(clean) > MAX_NAME_LENGTH:
        raise PersonaSetError(f"a persona name needs 1 to {MAX_NAME_LENGTH} characters")
    current = {p["persona_id"]: p["name"] for p in read_personas(engine, persona_set_id)}
    if persona_id not in current:
        raise PersonaSetError(
            f"persona set {record.name!r} has no persona {persona_id}; its personas are "
            + ", ".join(f"{pid} ({name})" for pid, name in current.items())
        )
    if any(name == clean and pid != persona_id for pid, name in current.items()):
        raise PersonaSetError(f"another persona of {record.name!r} is already named {clean!r}")
    with engine.begin() as conn:
        conn.execute(
            personas.update()
            .where(
                (personas.c.persona_set_id == persona_set_id)
                & (personas.c.build == record.current_build)
                & (personas.c.persona_id == persona_id)
            )
            .values(name=clean)
        )


def set_analysis_traits(engine: Engine, persona_set_id: int, names: list[str]) -> None:
    """Change what the Analysis view studies; the personas themselves are not rebuilt."""
    with engine.begin() as conn:
        conn.execute(
            persona_sets.update()
            .where(persona_sets.c.id == persona_set_id)
            .values(analysis_traits=json.dumps(names) if names else None, updated_at=_now())
        )


def latest_build(engine: Engine, persona_set_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(persona_builds)
            .where(persona_builds.c.persona_set_id == persona_set_id)
            .order_by(persona_builds.c.build.desc())
            .limit(1)
        ).first()
    return dict(row._mapping) if row else None


def record_quarantine(engine: Engine, persona_set_id: int, build: int, rows: pd.DataFrame) -> int:
    """Replace this build's quarantined rows: a re-run of the same build does not double them."""
    with engine.begin() as conn:
        conn.execute(
            quarantine.delete().where(
                (quarantine.c.persona_set_id == persona_set_id) & (quarantine.c.build == build)
            )
        )
        frame = rows.assign(persona_set_id=persona_set_id, build=build)
        return write_frame(
            conn, "quarantine", frame[["persona_set_id", "build", "contact_id", "column", "value", "reason"]]
        )


def quarantined_rows(engine: Engine, persona_set_id: int, build: int) -> int:
    """Rows of this build that failed validation (a row with several bad cells counts once)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count(sa.distinct(quarantine.c.contact_id))).where(
                    (quarantine.c.persona_set_id == persona_set_id) & (quarantine.c.build == build)
                )
            ).scalar_one()
        )


def record_build(
    engine: Engine, persona_set_id: int, build: dict[str, Any], persona_rows: list[dict[str, Any]]
) -> None:
    """Store one build's model and personas, and make it the set's current build."""
    with engine.begin() as conn:
        conn.execute(
            persona_builds.delete().where(
                (persona_builds.c.persona_set_id == persona_set_id)
                & (persona_builds.c.build == build["build"])
            )
        )
        conn.execute(
            personas.delete().where(
                (personas.c.persona_set_id == persona_set_id) & (personas.c.build == build["build"])
            )
        )
        conn.execute(persona_builds.insert().values(persona_set_id=persona_set_id, **build))
        conn.execute(
            personas.insert(),
            [{"persona_set_id": persona_set_id, "build": build["build"], **p} for p in persona_rows],
        )


# The memberships a reader sees: the set's current build only (a new build's rows go in before it becomes current).
CURRENT_MEMBERSHIPS = "m.build = (SELECT s.current_build FROM persona_sets s WHERE s.id = m.persona_set_id)"


def replace_memberships(engine: Engine, persona_set_id: int, build: int, memberships: pd.DataFrame) -> int:
    """Store this build's memberships, then make it the set's current build in one short transaction.

    The rows go in first under the new build number (in two halves on two connections on PostgreSQL, COPY);
    readers see only a set's current build, so they see the old memberships until the switch and the new ones
    after it, never a mix. Rows of an attempt that died before its switch are cleared on the next one.
    """
    frame = memberships[["contact_id", "persona_id", "confidence"]].assign(
        persona_set_id=persona_set_id, build=build
    )
    of_set = persona_memberships.c.persona_set_id == persona_set_id
    with engine.begin() as conn:
        conn.execute(persona_memberships.delete().where(of_set & (persona_memberships.c.build == build)))

    def write(part: pd.DataFrame) -> int:
        with engine.begin() as conn:
            return write_frame(conn, "persona_memberships", part)

    middle = len(frame) // 2
    parts = [frame.iloc[:middle], frame.iloc[middle:]] if is_postgres(engine) and middle else [frame]
    with ThreadPoolExecutor(len(parts)) as pool:
        written = sum(pool.map(write, parts))
    with engine.begin() as conn:
        conn.execute(persona_memberships.delete().where(of_set & (persona_memberships.c.build != build)))
        conn.execute(
            persona_sets.update()
            .where(persona_sets.c.id == persona_set_id)
            .values(status="ready", error=None, built_at=_now(), updated_at=_now(), current_build=build)
        )
    return written


def read_memberships(engine: Engine, persona_set_id: int) -> pd.DataFrame:
    return read_frame(
        engine,
        "SELECT m.contact_id, m.persona_id, m.confidence FROM persona_memberships m "  # noqa: S608 - a constant
        f"WHERE m.persona_set_id = :id AND {CURRENT_MEMBERSHIPS} ORDER BY m.contact_id",
        {"id": persona_set_id},
    )


def read_personas(engine: Engine, persona_set_id: int, build: int | None = None) -> list[dict[str, Any]]:
    record = get_by_id(engine, persona_set_id)
    build = build if build is not None else record.current_build
    if build is None:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(personas)
            .where((personas.c.persona_set_id == persona_set_id) & (personas.c.build == build))
            .order_by(personas.c.persona_id)
        ).all()
    out = []
    for row in rows:
        item = dict(row._mapping)
        item["defining_traits"] = json.loads(item["defining_traits"])
        item["rules"] = json.loads(item["rules"])
        out.append(item)
    return out


def delete(engine: Engine, persona_set_id: int) -> None:
    """Remove a persona set and everything stored for it, in one transaction (the lineage guard runs first)."""
    from persona_pipeline.warehouse.tables import flow_days, membership_history, persona_analysis

    with engine.begin() as conn:
        for table in (
            persona_memberships,
            personas,
            persona_builds,
            quarantine,
            persona_analysis,
            membership_history,
            flow_days,
        ):
            conn.execute(table.delete().where(table.c.persona_set_id == persona_set_id))
        conn.execute(persona_sets.delete().where(persona_sets.c.id == persona_set_id))
