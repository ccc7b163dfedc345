"""Persona sets' catalog rows: their definition, status, builds and personas (SQLAlchemy only, no pandas).

Status is written only through `write_status` and `make_current`, which persona_sets.lifecycle calls: this
module stores a status, it never decides one. The memberships themselves are in warehouse.memberships.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from persona_pipeline.core.domain import (
    BuildSummary,
    ClusteringMethod,
    Persona,
    PersonaSet,
    PersonaSetStatus,
    did_you_mean,
    name_key,
)
from persona_pipeline.errors import PersonaSetError
from persona_pipeline.warehouse.tables import (
    ensure_catalog_tables,
    flow_days,
    membership_history,
    persona_analysis,
    persona_builds,
    persona_memberships,
    persona_sets,
    personas,
    quarantine,
    sql_model_state,
)


def now() -> dt.datetime:
    """The time stamps the catalog stores: UTC, naive, to the second (the same on SQLite and PostgreSQL)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _record(row: Any) -> PersonaSet:
    return PersonaSet(
        id=row.id,
        name=row.name,
        cohort=row.cohort,
        traits=json.loads(row.traits) if row.traits else None,
        n_personas=row.n_personas,
        seed=row.seed,
        status=PersonaSetStatus(row.status),
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        built_at=row.built_at,
        current_build=row.current_build,
        analysis_traits=json.loads(row.analysis_traits) if row.analysis_traits else [],
        show_in_explore=bool(row.show_in_explore),
        analysis_window_days=row.analysis_window_days,
        method=ClusteringMethod(row.method or ClusteringMethod.KMEANS),
    )


def insert(
    engine: Engine,
    name: str,
    cohort: str,
    traits: list[str] | None,
    n_personas: int | None,
    seed: int,
    analysis_traits: list[str] | None,
    show_in_explore: bool,
    status: PersonaSetStatus,
    method: ClusteringMethod = ClusteringMethod.KMEANS,
) -> PersonaSet:
    """Store a new persona set, validated by the service; names are bound as parameters, never inlined."""
    ensure_catalog_tables(engine)
    stamp = now()
    with engine.begin() as conn:
        names = conn.execute(sa.select(persona_sets.c.name)).scalars()
        same = [n for n in names if name_key(n) == name_key(name)]
        if same:
            raise PersonaSetError(
                f"a persona set named {same[0]!r} exists already (names differing only in case or Unicode "
                "composition are the same name); choose another name"
            )
        conn.execute(
            persona_sets.insert().values(
                name=name,
                cohort=cohort,
                traits=traits_column(traits),
                n_personas=n_personas,
                seed=seed,
                analysis_traits=json.dumps(analysis_traits) if analysis_traits else None,
                show_in_explore=show_in_explore,
                method=str(method),
                status=status.value,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    return get(engine, name)


def get(engine: Engine, name: str) -> PersonaSet:
    ensure_catalog_tables(engine)
    name = unicodedata.normalize("NFC", name)  # names are stored composed
    with engine.connect() as conn:
        row = conn.execute(sa.select(persona_sets).where(persona_sets.c.name == name)).first()
        if row is None:
            known = conn.execute(sa.select(persona_sets.c.name).order_by(persona_sets.c.name)).scalars().all()
            same = [k for k in known if name_key(k) == name_key(name)]  # names are unique ignoring case
            if len(same) == 1:
                row = conn.execute(sa.select(persona_sets).where(persona_sets.c.name == same[0])).first()
    if row is None:
        hint = f"known persona sets: {', '.join(repr(k) for k in known)}" if known else "there are none yet"
        raise PersonaSetError(f"no persona set named {name!r}{did_you_mean(name, known)}; {hint}")
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


def write_status(
    engine: Engine, persona_set_id: int, status: PersonaSetStatus, error: str | None = None, **values: Any
) -> None:
    """Store a status (and any definition changes decided with it); only persona_sets.lifecycle calls this."""
    with engine.begin() as conn:
        conn.execute(
            persona_sets.update()
            .where(persona_sets.c.id == persona_set_id)
            .values(**values, status=PersonaSetStatus(status).value, error=error, updated_at=now())
        )


def claim_building(engine: Engine, persona_set_id: int) -> bool:
    """Mark the set building unless it already is, in one statement: of two builds started together, one wins."""
    with engine.begin() as conn:
        claimed = conn.execute(
            persona_sets.update()
            .where(
                (persona_sets.c.id == persona_set_id)
                & (persona_sets.c.status != PersonaSetStatus.BUILDING.value)
            )
            .values(status=PersonaSetStatus.BUILDING.value, error=None, updated_at=now())
        )
    return claimed.rowcount == 1


def set_window_days(engine: Engine, persona_set_id: int, days: int) -> None:
    """Keep the Analysis's order window with the set, so a later refresh (new analysis traits, a rebuild)
    uses it too; not updated_at, which keys the queued build's run."""
    with engine.begin() as conn:
        conn.execute(
            persona_sets.update().where(persona_sets.c.id == persona_set_id).values(analysis_window_days=days)
        )


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


def rename_persona(engine: Engine, record: PersonaSet, persona_id: int, new_name: str) -> None:
    """Rename a persona of the current build (the service checked the name); later builds keep it."""
    with engine.begin() as conn:
        conn.execute(
            personas.update()
            .where(
                (personas.c.persona_set_id == record.id)
                & (personas.c.build == record.current_build)
                & (personas.c.persona_id == persona_id)
            )
            # the name it had from its traits stays beside the user's (a rebuild keeps it current)
            .values(
                name=new_name,
                named_by_user=True,
                data_name=sa.case((personas.c.named_by_user, personas.c.data_name), else_=personas.c.name),
            )
        )


def set_analysis_traits(engine: Engine, persona_set_id: int, names: list[str]) -> None:
    """Change what the Analysis view studies; the personas themselves are not rebuilt."""
    with engine.begin() as conn:
        conn.execute(
            persona_sets.update()
            .where(persona_sets.c.id == persona_set_id)
            .values(analysis_traits=json.dumps(names) if names else None, updated_at=now())
        )


def _summary(row: Any) -> BuildSummary:
    return BuildSummary(
        build=row.build,
        k=row.k,
        k_reason=row.k_reason,
        k_scores=row.k_scores,
        stability=row.stability,
        model=row.model,
        cohort_size=row.cohort_size,
        quarantined=row.quarantined,
        kept_from_previous=row.kept_from_previous,
        built_at=row.built_at,
        identity=row.identity,
    )


def current_build(engine: Engine, record: PersonaSet) -> BuildSummary | None:
    """The build every reader uses: the set's current one, never merely the newest recorded."""
    if record.current_build is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(persona_builds).where(
                (persona_builds.c.persona_set_id == record.id)
                & (persona_builds.c.build == record.current_build)
            )
        ).first()
    return _summary(row) if row else None


def latest_build_number(engine: Engine, persona_set_id: int) -> int:
    """The highest build number ever recorded for the set (0 if none): a new build takes the next one."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.max(persona_builds.c.build)).where(
                persona_builds.c.persona_set_id == persona_set_id
            )
        ).scalar()
    return int(value or 0)


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


def record_build(engine: Engine, persona_set_id: int, build: BuildSummary, built: list[Persona]) -> None:
    """Store one build's model and personas (it becomes current only with make_current)."""
    with engine.begin() as conn:
        for table in (persona_builds, personas):
            conn.execute(
                table.delete().where(
                    (table.c.persona_set_id == persona_set_id) & (table.c.build == build.build)
                )
            )
        conn.execute(persona_builds.insert().values(persona_set_id=persona_set_id, **build.__dict__))
        conn.execute(
            personas.insert(),
            [{"persona_set_id": persona_set_id, "build": build.build, **p.to_row()} for p in built],
        )


def make_current(conn: Connection, persona_set_id: int, build: int, status: PersonaSetStatus) -> None:
    """In the caller's transaction: the build becomes the one readers see, older builds' memberships go."""
    of_set = persona_memberships.c.persona_set_id == persona_set_id
    other_build = (persona_memberships.c.build < build) | (persona_memberships.c.build > build)
    # two ranges of the (set, build, contact) key, not `build <> :build`: that scanned every row of the new
    # build (2.7 s at 10M contacts) to find none of the old ones
    conn.execute(persona_memberships.delete().where(of_set & other_build))
    stamp = now()
    conn.execute(
        persona_sets.update()
        .where(persona_sets.c.id == persona_set_id)
        .values(status=status.value, error=None, built_at=stamp, updated_at=stamp, current_build=build)
    )


def set_interpretations(conn: Connection, persona_set_id: int, build: int, texts: dict[int, str]) -> None:
    """Replace the interpretation (JSON) of each persona of a build: the Analysis adds what they buy."""
    for persona_id, text in texts.items():
        conn.execute(
            personas.update()
            .where(
                (personas.c.persona_set_id == persona_set_id)
                & (personas.c.build == build)
                & (personas.c.persona_id == persona_id)
            )
            .values(interpretation=text)
        )


def read_personas(engine: Engine, persona_set_id: int, build: int | None = None) -> list[Persona]:
    """The personas of a build (default: the set's current one, read in the same query), by id."""
    which = (
        personas.c.build == build
        if build is not None
        else personas.c.build
        == sa.select(persona_sets.c.current_build)
        .where(persona_sets.c.id == persona_set_id)
        .scalar_subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(personas)
            .where((personas.c.persona_set_id == persona_set_id) & which)
            .order_by(personas.c.persona_id)
        ).all()
    return [Persona.from_row(row) for row in rows]


def delete(engine: Engine, persona_set_id: int) -> None:
    """Remove a persona set and everything stored for it, in one transaction (the lineage guard runs first)."""
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


def traits_column(traits: list[str] | None) -> str | None:
    """How a set's clustering traits are stored: a JSON list, or NULL for the catalog's defaults."""
    return json.dumps(traits) if traits else None


def cohort_built_at(engine: Engine, cohort: str) -> dt.datetime | None:
    """When the cohort's SQL model table was last built (None if never recorded)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sql_model_state.c.built_at).where(sql_model_state.c.model == cohort)
        ).scalar()


def snapshotted_day_range(engine: Engine, persona_set_id: int) -> tuple[dt.date, dt.date] | None:
    """The first and last day snapshotted for the set's Flow, or None."""
    with engine.connect() as conn:
        first, last = conn.execute(
            sa.select(sa.func.min(flow_days.c.day), sa.func.max(flow_days.c.day)).where(
                flow_days.c.persona_set_id == persona_set_id
            )
        ).one()
    return None if first is None else (_as_date(first), _as_date(last))


def _as_date(value: Any) -> dt.date:
    """A DATE column's value: a date on PostgreSQL, ISO text from SQLite's MIN/MAX."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
