"""Change counters on the source tables, so SQL models whose inputs did not change are not rebuilt.

A trigger on each source table adds one to the table's row of source_versions inside the writer's own
transaction, so a write is counted exactly when it commits, whoever made it (seed, load, a user's ETL).
A table without the trigger (new, or dropped and created again since) counts as changed once, when the
trigger is put back. Where a trigger cannot be added (no right to), the table has no version and the models
reading it are always rebuilt, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from persona_pipeline.warehouse.engine import is_postgres, quote
from persona_pipeline.warehouse.tables import SOURCE_TABLES, ensure_catalog_tables, source_versions

TRIGGER = "persona_count_change"
SQLITE_EVENTS = ("insert", "update", "delete")  # SQLite triggers are per row and per event
INSTALL_LOCK = 7_140_001  # a PostgreSQL advisory lock: two processes adding the same trigger wait in turn

# Statement-level on PostgreSQL: a COPY of a million rows counts once. The schema comes from the table, so
# writers with another search_path (a user's ETL) still find source_versions.
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION persona_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('UPDATE %I.source_versions SET version = version + 1 WHERE source = $1', TG_TABLE_SCHEMA)
  USING TG_TABLE_NAME;
  RETURN NULL;
END $$
"""


def versions(engine: Engine, sources: list[str] | tuple[str, ...] = SOURCE_TABLES) -> dict[str, int | None]:
    """Each source's change count; None for a missing table or one whose changes cannot be counted."""
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        untracked = [s for s in sources if _has_table(conn, s) and not _has_trigger(conn, s)]
    if untracked:
        _track(engine, untracked)
    with engine.connect() as conn:
        present = {s for s in sources if _has_table(conn, s) and _has_trigger(conn, s)}
        counts = dict(
            conn.execute(sa.select(source_versions.c.source, source_versions.c.version)).tuples().all()
        )
    return {s: (counts.get(s) if s in present else None) for s in sources}


def _track(engine: Engine, tables: list[str]) -> None:
    """Add the trigger to these tables and count that as a change: what happened without it is unknown."""
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": INSTALL_LOCK})
        for table in tables:
            if _has_trigger(conn, table):  # another process added it while this one waited
                continue
            try:
                with conn.begin_nested():
                    _add_trigger(conn, table)
            except sa.exc.DBAPIError:
                continue  # no right to add a trigger here: the table stays untracked (always rebuilt)
            bumped = conn.execute(
                source_versions.update()
                .where(source_versions.c.source == table)
                .values(version=source_versions.c.version + 1)
            ).rowcount
            if not bumped:
                conn.execute(source_versions.insert().values(source=table, version=1))


def _add_trigger(conn: Connection, table: str) -> None:
    name = quote(conn.engine, table)
    if is_postgres(conn.engine):
        conn.execute(sa.text(POSTGRES_FUNCTION))
        conn.execute(
            sa.text(
                f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {name} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()"
            )
        )
        return
    literal = table.replace("'", "''")
    count = f"UPDATE source_versions SET version = version + 1 WHERE source = '{literal}'"  # noqa: S608
    for event in SQLITE_EVENTS:
        trigger = quote(conn.engine, f"{TRIGGER}_{event}_{table}")
        conn.execute(
            sa.text(
                f"CREATE TRIGGER IF NOT EXISTS {trigger} AFTER {event.upper()} ON {name} BEGIN {count}; END"
            )
        )


def _has_table(conn: Connection, table: str) -> bool:
    return sa.inspect(conn).has_table(table)


def _has_trigger(conn: Connection, table: str) -> bool:
    if is_postgres(conn.engine):
        query = "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = to_regclass(:table) AND tgname = :name"
        return (
            conn.execute(sa.text(query), {"table": quote(conn.engine, table), "name": TRIGGER}).scalar() == 1
        )
    names = {f"{TRIGGER}_{event}_{table}" for event in SQLITE_EVENTS}
    found = conn.execute(
        sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table"),
        {"table": table},
    ).scalars()
    return names <= set(found)
