"""Who is in which persona: a build's memberships and quarantined rows, in bulk (COPY on PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core.domain import PersonaSetStatus
from persona_pipeline.warehouse.bulk import read_frame, write_frame
from persona_pipeline.warehouse.engine import is_postgres
from persona_pipeline.warehouse.persona_sets import make_current
from persona_pipeline.warehouse.tables import persona_memberships, quarantine

# The memberships a reader sees: the set's current build only (a new build's rows go in before it becomes current).
# Uncorrelated on purpose: the correlated form (`m.build = (SELECT ... WHERE s.id = m.persona_set_id)`) ran
# its subquery once per membership row, 8.6 of 9.7 s counting a 10M-contact set (BENCHMARKS.md, 10M build).
CURRENT_MEMBERSHIPS = "(m.persona_set_id, m.build) IN (SELECT s.id, s.current_build FROM persona_sets s)"


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


def replace_memberships(
    engine: Engine, persona_set_id: int, build: int, memberships: pd.DataFrame, status: PersonaSetStatus
) -> int:
    """Store this build's memberships, then make it the set's current build with `status` in one short
    transaction (persona_sets.lifecycle decides the status).

    memberships: contact_id, persona_id, confidence and optionally fingerprint; one row per contact.
    The rows go in first under the new build number (in two halves on two connections on PostgreSQL, COPY);
    readers see only a set's current build, so they see the old memberships until the switch and the new ones
    after it, never a mix. Rows of an attempt that died before its switch are cleared on the next one.
    """
    columns = ["contact_id", "persona_id", "confidence"]
    frame = memberships[columns + (["fingerprint"] if "fingerprint" in memberships else [])].assign(
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
    if is_postgres(engine):  # fresh statistics: planned as one row, every read of the build was an index walk
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE persona_memberships"))
    with engine.begin() as conn:
        make_current(conn, persona_set_id, build, status)
    return written


def read_memberships(engine: Engine, persona_set_id: int, fingerprints: bool = False) -> pd.DataFrame:
    """The current build's memberships: contact_id, persona_id, confidence (and fingerprint), by contact_id."""
    extra = ", m.fingerprint" if fingerprints else ""
    return read_frame(
        engine,
        f"SELECT m.contact_id, m.persona_id, m.confidence{extra} FROM persona_memberships m "  # noqa: S608 - constants
        f"WHERE m.persona_set_id = :id AND {CURRENT_MEMBERSHIPS} ORDER BY m.contact_id",
        {"id": persona_set_id},
    )


def count_memberships(engine: Engine, persona_set_id: int) -> dict[int, int]:
    """Contacts per persona in the set's current build, as stored (what every reader sees)."""
    frame = read_frame(
        engine,
        "SELECT m.persona_id, COUNT(*) AS contacts FROM persona_memberships m "  # noqa: S608 - constants
        f"WHERE m.persona_set_id = :id AND {CURRENT_MEMBERSHIPS} GROUP BY m.persona_id",
        {"id": persona_set_id},
    )
    return {int(p): int(c) for p, c in zip(frame["persona_id"], frame["contacts"], strict=True)}
