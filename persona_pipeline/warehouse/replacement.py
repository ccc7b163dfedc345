"""Whole-population rescoring on PostgreSQL without rewriting a live table row by row.

A destination table persona-pipeline creates on PostgreSQL is partitioned by contact_id range. A full run
writes each bucket's rows into a table of its own (a shadow: no old rows to delete, its index filled in
contact_id order) and at the end swaps the shadows in as the partitions in one short transaction, so
readers see the old scores or the new ones, never a mix, a run that dies changes nothing, and nothing is
left to vacuum (replacing a million rows in place left a million dead ones, 0.7 s of VACUUM). The parent
table, and with it its grants, the views over it and indexes a user adds, stays as it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from persona_pipeline.core.domain import ScoringBucket

PARTITION_KEY = "RANGE (contact_id)"
STALE_AFTER = dt.timedelta(hours=1)  # a shadow this much older than a new run is a dead run's: dropped
_COMMENT = "persona-pipeline scores of {table}, run {token}, started {since}"


@dataclass(frozen=True)
class Replacement:
    """A full run's identity: its shadows are named by `token`; rows scored since `since` are newer than it."""

    token: str
    since: dt.datetime

    def to_dict(self) -> dict[str, str]:
        return {"token": self.token, "since": self.since.isoformat()}

    @staticmethod
    def from_dict(data: dict[str, str]) -> Replacement:
        return Replacement(data["token"], dt.datetime.fromisoformat(data["since"]))


def is_partitioned(conn: Connection, table: str) -> bool:
    """Partitioned as create_partitioned does it (a user's table partitioned otherwise is left alone)."""
    if conn.dialect.name != "postgresql":
        return False
    key = conn.execute(
        sa.text("SELECT pg_get_partkeydef(oid) FROM pg_class WHERE oid = to_regclass(:t) AND relkind = 'p'"),
        {"t": _q(conn, table)},
    ).scalar()
    return key == PARTITION_KEY


def create_partitioned(conn: Connection, table: sa.Table) -> None:
    """The destination (declared partitioned by contact_id range) with one empty partition taking every id."""
    table.create(conn)
    first = Replacement("0" * 8, dt.datetime(1970, 1, 1))
    shadow = prepare_shadow(conn, table.name, first, ScoringBucket(0, None, None))
    conn.execute(
        sa.text(
            f"ALTER TABLE {_q(conn, table.name)} ATTACH PARTITION {_q(conn, shadow)} {_bounds(None, None)}"
        )
    )


def shadow_name(table: str, token: str, index: int) -> str:
    """Within PostgreSQL's 63 characters; the hash keeps two long destination names' shadows apart."""
    return f"{_prefix(table)}{token}_{index}"


def prepare_shadow(conn: Connection, table: str, replacement: Replacement, bucket: ScoringBucket) -> str:
    """An empty shadow for one bucket (emptied again if a retried step finds it), bounded like its partition."""
    low, high = bucket.low, bucket.high
    name = shadow_name(table, replacement.token, bucket.index)
    shadow, parent = _q(conn, name), _q(conn, table)
    # with the parent's indexes and constraints (a user's own too), kept up as rows arrive in contact_id
    # order: cheaper than building them while the swap holds its lock
    conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {shadow} (LIKE {parent} INCLUDING ALL)"))
    conn.execute(sa.text(f"TRUNCATE {shadow}"))
    limits = [f"contact_id >= {int(low)}"] if low is not None else []
    limits += [f"contact_id < {int(high)}"] if high is not None else []
    if limits:  # ATTACH then trusts the constraint instead of scanning the rows
        check = _q(conn, name + "_range")
        conn.execute(sa.text(f"ALTER TABLE {shadow} DROP CONSTRAINT IF EXISTS {check}"))
        conn.execute(sa.text(f"ALTER TABLE {shadow} ADD CONSTRAINT {check} CHECK ({' AND '.join(limits)})"))
    comment = _COMMENT.format(table=table, token=replacement.token, since=replacement.since.isoformat())
    conn.execute(sa.text(f"COMMENT ON TABLE {shadow} IS {_literal(conn, comment)}"))
    return name


def swap_in(
    conn: Connection,
    table: str,
    replacement: Replacement,
    buckets: list[ScoringBucket],
    lock_wait: dt.timedelta,
) -> None:
    """The shadows become the partitions and the old partitions are dropped, in the caller's transaction.

    Rows another run wrote meanwhile (the on-change sensor rescoring a contact after this run read it) are
    newer than this run's and are kept. Waiting for any lock (the table's, a partition's) longer than
    `lock_wait` raises PostgreSQL's lock_not_available (55P03) and changes nothing.
    """
    parent = _q(conn, table)
    conn.execute(sa.text(f"SET LOCAL lock_timeout = {int(lock_wait.total_seconds() * 1000)}"))
    conn.execute(sa.text(f"LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE"))
    old = _partitions(conn, table)
    conn.execute(
        sa.text(
            f"CREATE TEMPORARY TABLE persona_newer_scores ON COMMIT DROP AS SELECT * FROM {parent} "  # noqa: S608
            "WHERE scored_at >= :since"
        ),
        {"since": replacement.since},
    )
    for name in old:
        conn.execute(sa.text(f"ALTER TABLE {parent} DETACH PARTITION {_q(conn, name)}"))
    for bucket in buckets:
        shadow = _q(conn, shadow_name(table, replacement.token, bucket.index))
        conn.execute(
            sa.text(f"ALTER TABLE {parent} ATTACH PARTITION {shadow} {_bounds(bucket.low, bucket.high)}")
        )
    conn.execute(
        sa.text(
            f"DELETE FROM {parent} AS d USING persona_newer_scores AS n "  # noqa: S608
            "WHERE d.contact_id = n.contact_id AND d.persona_set = n.persona_set"
        )
    )
    conn.execute(sa.text(f"INSERT INTO {parent} SELECT * FROM persona_newer_scores"))  # noqa: S608
    for name in old:
        conn.execute(sa.text(f"DROP TABLE {_q(conn, name)}"))


def drop_shadows(
    conn: Connection, table: str, token: str | None = None, before: dt.datetime | None = None
) -> list[str]:
    """Drop shadows not attached: a run's own (`token`), or every run's that started before `before`."""
    dropped = []
    for name, comment in unattached_shadows(conn, table):
        parts = comment.split(", ")
        mine = token is not None and parts[1] == f"run {token}"
        stale = before is not None and dt.datetime.fromisoformat(parts[2].removeprefix("started ")) < before
        if mine or stale:
            conn.execute(sa.text(f"DROP TABLE {_q(conn, name)}"))
            dropped.append(name)
    return dropped


def unattached_shadows(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, comment) of this destination's shadows that are not partitions, in the destination's schema."""
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(:t)) "
            "AND c.relkind = 'r' AND NOT c.relispartition AND starts_with(c.relname, :prefix)"
        ),
        {"t": _q(conn, table), "prefix": _prefix(table)},
    ).all()
    owned = _COMMENT.split("{table}")[0] + table + ","
    return [(name, comment) for name, comment in rows if comment and comment.startswith(owned)]


def _partitions(conn: Connection, table: str) -> list[str]:
    return list(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
            ),
            {"t": _q(conn, table)},
        ).scalars()
    )


def _prefix(table: str) -> str:
    return f"{table[:36]}_{hashlib.sha1(table.encode()).hexdigest()[:6]}__"  # noqa: S324 - a name, not a secret


def _bounds(low: int | None, high: int | None) -> str:
    start = "MINVALUE" if low is None else str(int(low))
    end = "MAXVALUE" if high is None else str(int(high))
    return f"FOR VALUES FROM ({start}) TO ({end})"


def _q(conn: Connection, identifier: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(identifier)


def _literal(conn: Connection, text: str) -> str:
    return (
        sa.literal(text, sa.Text())
        .compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        .string
    )
