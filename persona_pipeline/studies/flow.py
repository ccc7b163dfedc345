"""Flow: each ready persona set's memberships per day, stored per trait version, and the moves between days."""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core import flow
from persona_pipeline.core.domain import PersonaSet
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.errors import FlowError
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame, write_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.tables import flow_days, membership_history

ID_CHUNK = 5_000


def first_history_day(engine: Engine) -> dt.date | None:
    """The first day the trait history knows; None without a history (no data yet)."""
    if not sa.inspect(engine).has_table("trait_history"):
        return None
    with engine.connect() as conn:
        first = conn.execute(sa.text("SELECT MIN(valid_from) FROM trait_history")).scalar()
    return None if first is None else pd.Timestamp(first).date()


def history_days(engine: Engine) -> tuple[dt.date, dt.date]:
    """The first day the trait history knows and the last day a snapshot may describe (today at the latest)."""
    with engine.connect() as conn:
        first, last = conn.execute(
            sa.text("SELECT MIN(valid_from), MAX(valid_from) FROM trait_history")
        ).one()
    if first is None:
        raise FlowError("the trait history is empty: seed or load contacts first")
    first, last = (pd.Timestamp(v).date() for v in (first, last))
    return first, max(last, dt.datetime.now(dt.UTC).date())


def require_day(engine: Engine, day: dt.date) -> None:
    first, last = history_days(engine)
    if not first <= day <= last:
        raise FlowError(
            f"{day} is outside the trait history, which runs from {first} to {last}; pick a day in it"
        )


def _keys_valid_on(engine: Engine, cohort: str, day: dt.date) -> pd.DataFrame:
    sql = (
        "SELECT h.contact_id, h.valid_from, h.valid_to FROM trait_history h "  # noqa: S608 - quoted identifier
        "WHERE h.valid_from < :end AND (h.valid_to IS NULL OR h.valid_to >= :end) "
        f"AND h.contact_id IN (SELECT contact_id FROM {quote(engine, cohort)})"
    )
    return read_frame(engine, sql, {"end": flow.day_end(day).to_pydatetime()})


def _stored_covering(engine: Engine, persona_set_id: int, day: dt.date) -> pd.DataFrame:
    return read_frame(
        engine,
        "SELECT contact_id, valid_from, valid_to, version_from, build FROM membership_history "
        "WHERE persona_set_id = :id "
        "AND valid_from < :end AND (valid_to IS NULL OR valid_to >= :end)",
        {"id": persona_set_id, "end": flow.day_end(day).to_pydatetime()},
    )


def _by_contact_chunks(engine: Engine, sql: str, contact_ids: np.ndarray, params: dict | None = None) -> list:
    """`sql` (with `contact_id IN :ids`) run per chunk of ID_CHUNK ids, bound, never inlined; its frames."""
    statement = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        return [
            pd.read_sql(statement, conn, params={**(params or {}), "ids": [int(i) for i in chunk]})
            for chunk in (contact_ids[s : s + ID_CHUNK] for s in range(0, len(contact_ids), ID_CHUNK))
        ]


def _history_rows(engine: Engine, contact_ids: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Trait history rows of some contacts."""
    select = ", ".join(quote(engine, c) for c in ["contact_id", "valid_from", "valid_to", *columns])
    sql = f"SELECT {select} FROM trait_history WHERE contact_id IN :ids"  # noqa: S608 - quoted identifiers
    parts = _by_contact_chunks(engine, sql, contact_ids)
    if not parts:
        return pd.DataFrame(columns=["contact_id", "valid_from", "valid_to", *columns])
    return pd.concat(parts, ignore_index=True)


def _membership_rows(engine: Engine, persona_set_id: int, contact_ids: np.ndarray) -> pd.DataFrame:
    """The set's stored membership rows of some contacts (contact_ids never empty)."""
    sql = (
        "SELECT contact_id, valid_from, valid_to FROM membership_history "
        "WHERE persona_set_id = :id AND contact_id IN :ids"
    )
    return pd.concat(_by_contact_chunks(engine, sql, contact_ids, {"id": persona_set_id}), ignore_index=True)


def _normalize_times(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("valid_from", "valid_to", "version_from"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype("datetime64[us]")
    return frame


@dataclass(frozen=True)
class DaySnapshot:
    """One day's snapshot: members stored per persona set, and the sets it could not snapshot, with why."""

    members: dict[str, int]
    skipped: dict[str, str]


def snapshot_day(engine: Engine, day: dt.date) -> DaySnapshot:
    """Store every built persona set's memberships as of `day` (its current build). Idempotent. A set whose
    model needs traits the history no longer has (a load with --replace dropped them) is skipped and named:
    the other sets are still snapshotted."""
    require_day(engine, day)
    history_columns = {c["name"] for c in sa.inspect(engine).get_columns("trait_history")}
    members: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for record in store.list_all(engine):
        if (
            record.current_build is None
        ):  # a set being rebuilt, or whose rebuild failed, serves its current build
            continue
        model = PersonaModel.from_json(store.current_build(engine, record).model)
        missing = model.traits_missing_from(history_columns)
        if missing:
            skipped[record.name] = (
                f"its model uses trait{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which the trait "
                f"history no longer has (a load with --replace left {'them' if len(missing) > 1 else 'it'} out); "
                f"rebuild it with the traits there are (persona-pipeline persona-set build {shlex.quote(record.name)}) "
                "or load them again"
            )
            continue
        members[record.name] = _snapshot_set(engine, record, model, day)
    return DaySnapshot(members, skipped)


def _stale_ends(engine: Engine, stale: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """When each stored row that no longer covers `day` ended: where its trait version closed; where the
    trait history begins, for a version a replaced base no longer has (the new base took over there); the
    day's start, for a contact whose version is still open but who left the cohort. Never before the row began.
    stale: (contact_id, valid_from, version_from) -> (contact_id, valid_from, valid_to)."""
    versions = _normalize_times(_history_rows(engine, stale["contact_id"].unique(), []))
    found = stale.merge(
        versions.rename(columns={"valid_from": "version_from", "valid_to": "version_to"}),
        on=["contact_id", "version_from"],
        how="left",
        indicator=True,
    )
    day_start = pd.Timestamp(day)
    with engine.connect() as conn:
        begins = pd.Timestamp(conn.execute(sa.text("SELECT MIN(valid_from) FROM trait_history")).scalar())
    gone = found["_merge"] == "left_only"
    end = found["version_to"].where(found["version_to"].notna(), day_start)
    end = end.where(~gone, min(begins, day_start))
    end = end.where(end > found["valid_from"], found["valid_from"])
    return pd.DataFrame(
        {
            "contact_id": found["contact_id"],
            "valid_from": found["valid_from"],
            "valid_to": end.astype("datetime64[us]"),
        }
    )


def _snapshot_set(engine: Engine, record: PersonaSet, model: PersonaModel, day: dt.date) -> int:
    current = _normalize_times(_keys_valid_on(engine, record.cohort, day))
    stored = _normalize_times(_stored_covering(engine, record.id, day))
    began = pd.Timestamp(record.built_at) if record.built_at is not None else None
    # a day that ended before the current build began keeps the memberships stored for it
    rebuilt_at = began if began is not None and flow.day_end(day) > began else None
    plan = flow.plan_snapshot(stored, current, record.current_build, rebuilt_at)
    ends, drop = plan.ends, plan.drop
    if len(plan.stale):
        ended = _stale_ends(engine, plan.stale, day)
        empty = ended["valid_to"] <= ended["valid_from"]  # covers nothing: gone, its key free for a new row
        ends = pd.concat([ends, ended[~empty]], ignore_index=True)
        drop = pd.concat([drop, ended[empty][["contact_id", "valid_from"]]], ignore_index=True)
    fresh = plan.assign
    if len(fresh) and has_snapshots(engine, record.id):  # a set never snapshotted has no rows in the way
        existing = _normalize_times(_membership_rows(engine, record.id, fresh["contact_id"].unique()))
        more_ends, more_drop = flow.make_room(existing, fresh, ends, drop)
        ends = pd.concat([ends, more_ends], ignore_index=True)
        drop = pd.concat([drop, more_drop], ignore_index=True)
    traits = model.transform.trait_names
    if len(fresh) > len(current) // 10:  # a first snapshot: read every version of the day in one COPY
        columns = ", ".join(
            f"h.{quote(engine, t)}" for t in ["contact_id", "valid_from", "valid_to", *traits]
        )
        sql = (
            f"SELECT {columns} FROM trait_history h "  # noqa: S608 - identifiers quoted
            "WHERE h.valid_from < :end AND (h.valid_to IS NULL OR h.valid_to >= :end) "
            f"AND h.contact_id IN (SELECT contact_id FROM {quote(engine, record.cohort)})"
        )
        versions = read_frame(engine, sql, {"end": flow.day_end(day).to_pydatetime()}, categorical=True)
    else:
        versions = _history_rows(engine, fresh["contact_id"].unique(), traits)
    versions = _normalize_times(versions).rename(columns={"valid_from": "version_from"})
    versions = fresh.merge(versions.drop(columns=["valid_to"]), on=["contact_id", "version_from"], how="left")
    rows = versions[["contact_id", "valid_from", "valid_to", "version_from"]].copy()
    if len(versions):
        persona, _ = model.assign(versions)
        rows["persona_id"] = persona
    else:
        rows["persona_id"] = pd.Series(dtype="int64")
    rows = rows.assign(persona_set_id=record.id, build=record.current_build)
    of_row = (
        (membership_history.c.persona_set_id == record.id)
        & (membership_history.c.contact_id == sa.bindparam("cid"))
        & (membership_history.c.valid_from == sa.bindparam("vfrom"))
    )
    with engine.begin() as conn:
        if len(drop):
            conn.execute(
                membership_history.delete().where(of_row),
                [
                    {"cid": int(r.contact_id), "vfrom": r.valid_from.to_pydatetime()}
                    for r in drop.itertuples()
                ],
            )
        if len(ends):
            conn.execute(
                membership_history.update().where(of_row).values(valid_to=sa.bindparam("vto")),
                [
                    {
                        "cid": int(r.contact_id),
                        "vfrom": r.valid_from.to_pydatetime(),
                        "vto": None if pd.isna(r.valid_to) else r.valid_to.to_pydatetime(),
                    }  # fmt: skip
                    for r in ends.itertuples()
                ],
            )
        write_frame(conn, "membership_history", rows)
        conn.execute(
            flow_days.delete().where((flow_days.c.persona_set_id == record.id) & (flow_days.c.day == day))
        )
        conn.execute(
            flow_days.insert().values(
                persona_set_id=record.id,
                day=day,
                build=record.current_build,
                members=len(current),
                snapshot_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            )  # fmt: skip
        )
    return len(current)


def flow_history(engine: Engine, persona_set_id: int) -> tuple[pd.DataFrame, list[dt.date]]:
    """The set's membership intervals and the days that were snapshotted."""
    history = _normalize_times(
        read_frame(
            engine,
            "SELECT contact_id, persona_id, valid_from, valid_to FROM membership_history WHERE persona_set_id = :id",
            {"id": persona_set_id},
        )
    )
    return history, snapshotted_days(engine, persona_set_id)


def snapshotted_days(engine: Engine, persona_set_id: int) -> list[dt.date]:
    """The days snapshotted for the set, in order."""
    with engine.connect() as conn:
        days = conn.execute(
            sa.select(flow_days.c.day)
            .where(flow_days.c.persona_set_id == persona_set_id)
            .order_by(flow_days.c.day)
        ).scalars()
        return [pd.Timestamp(d).date() for d in days]


def has_snapshots(engine: Engine, persona_set_id: int) -> bool:
    """Whether any day was snapshotted for the set (its Flow has something to show)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(flow_days.c.day).where(flow_days.c.persona_set_id == persona_set_id).limit(1)
        ).first()
    return found is not None


def require_snapshots(engine: Engine, record: PersonaSet) -> list[dt.date]:
    """The set's snapshotted days; a FlowError saying how to take some when there are none."""
    days = snapshotted_days(engine, record.id)
    if not days:
        raise FlowError(
            f"persona set {record.name!r} has no snapshots yet: persona-pipeline flow snapshot --days 30"
        )
    return days


def flow_counts(engine: Engine, name: str) -> pd.DataFrame:
    record = store.get(engine, name)
    require_snapshots(engine, record)
    history, days = flow_history(engine, record.id)
    return flow.daily_counts(history, days)


def _day_runs(days: list[dt.date]) -> str:
    """Snapshotted days as runs: '2026-08-15, 2026-09-10, 2026-11-05 .. 2026-12-04' (never a false range)."""
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]} .. {r[-1]}" for r in runs)


def _require_days(name: str, days: list[dt.date], asked: list[dt.date]) -> None:
    """A FlowError naming the snapshotted days when a day asked for has no snapshot of the set."""
    for day in asked:
        if day not in days:
            shown = _day_runs(days) if days else "none yet"
            raise FlowError(
                f"{day} has no snapshot for {name!r} (snapshotted days: {shown}); pick one of them, or "
                f"snapshot it: persona-pipeline flow snapshot --day {day} --days 1"
            )


def flow_transitions(engine: Engine, name: str, first: dt.date, second: dt.date) -> pd.DataFrame:
    record = store.get(engine, name)
    history, days = flow_history(engine, record.id)
    _require_days(record.name, days, [first, second])
    return flow.transitions(history, first, second)


def flow_view(
    engine: Engine, name: str, first: dt.date | None, second: dt.date | None
) -> tuple[pd.DataFrame, pd.DataFrame, dt.date, dt.date]:
    """What `flow show` prints, from one read of the history: members per persona on each snapshotted day from
    `first` to `second` (the first and last snapshot when None), the from -> to table between them, and the
    two days."""
    record = store.get(engine, name)
    days = require_snapshots(engine, record)
    first, second = first or days[0], second or days[-1]
    _require_days(record.name, days, [first, second])
    history, days = flow_history(engine, record.id)
    counts = flow.daily_counts(history, days)
    counts = counts[(counts["day"] >= first) & (counts["day"] <= second)]
    return counts, flow.transitions(history, first, second), first, second
