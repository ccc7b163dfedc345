"""Studying a built persona set: the Analysis table and the Flow over time, between the warehouse and the core."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core import flow
from persona_pipeline.core.analysis import AnalysisError, OrderQuality, analyse
from persona_pipeline.core.explore import ExploreSet, geography
from persona_pipeline.core.explore import render as render_explore
from persona_pipeline.core.explore import sizes as explore_sizes
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.report import ReportData
from persona_pipeline.core.report import render as render_report
from persona_pipeline.core.traits import CatalogError, Trait, TraitKind
from persona_pipeline.settings import persona_home
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame, stream_csv, write_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.sources import load_catalog
from persona_pipeline.warehouse.tables import flow_days, membership_history, persona_analysis

DEFAULT_WINDOW_DAYS = 365


def require_ready(record: store.PersonaSet) -> None:
    if record.status != "ready" or record.current_build is None:
        state = f"{record.status}: {record.error}" if record.error else record.status
        raise AnalysisError(
            f"persona set {record.name!r} is not ready ({state}); build it first: "
            f"persona-pipeline persona-set build {record.name!r}"
        )


def analysis_traits(engine: Engine, record: store.PersonaSet) -> tuple[list[Trait], list[Trait]]:
    """The set's clustering traits and its analysis traits (any catalog trait not clustered on)."""
    catalog = load_catalog(engine)
    clustering = catalog.select(record.traits)
    try:
        extra = catalog.select(record.analysis_traits) if record.analysis_traits else []
    except CatalogError as exc:
        raise AnalysisError(
            f"persona set {record.name!r} has an analysis trait the catalog lacks: {exc}"
        ) from exc
    names = {t.name for t in clustering}
    return clustering, [t for t in extra if t.name not in names]


def check_analysis_traits(engine: Engine, names: list[str]) -> None:
    """Fail before storing when a requested analysis trait does not exist."""
    try:
        load_catalog(engine).select(names)
    except CatalogError as exc:
        raise AnalysisError(str(exc)) from exc


def _member_traits(engine: Engine, persona_set_id: int, traits: list[Trait]) -> pd.DataFrame:
    columns = ", ".join(f"c.{quote(engine, t.name)}" for t in traits)
    sql = (
        f"SELECT m.contact_id, {columns} FROM persona_memberships m "  # noqa: S608 - identifiers quoted
        f"JOIN contacts c ON c.contact_id = m.contact_id WHERE m.persona_set_id = :id AND {store.CURRENT_MEMBERSHIPS} "
        "ORDER BY m.contact_id"
    )
    return read_frame(engine, sql, {"id": persona_set_id}, categorical=True)


def _orders(engine: Engine, window_days: int) -> pd.DataFrame:
    """Orders in the window ending at the latest order, with a flag for contacts the warehouse does not know."""
    with engine.connect() as conn:
        latest = conn.execute(sa.text("SELECT MAX(ordered_at) FROM orders")).scalar()
    if latest is None:
        return pd.DataFrame(columns=["contact_id", "amount", "product_category", "unknown"])
    if isinstance(latest, str):
        latest = dt.datetime.fromisoformat(latest)
    cutoff = latest - dt.timedelta(days=window_days)
    frame = read_frame(
        engine,
        "SELECT o.contact_id, o.amount, o.product_category, "
        "CASE WHEN c.contact_id IS NULL THEN 1 ELSE 0 END AS unknown "
        "FROM orders o LEFT JOIN contacts c ON c.contact_id = o.contact_id WHERE o.ordered_at >= :cutoff",
        {"cutoff": cutoff},
    )
    return frame


def run_analysis(
    engine: Engine, name_or_id: str | int, window_days: int = DEFAULT_WINDOW_DAYS
) -> pd.DataFrame:
    """Compute and store the set's Analysis table; returns it."""
    record = (
        store.get_by_id(engine, name_or_id) if isinstance(name_or_id, int) else store.get(engine, name_or_id)
    )
    require_ready(record)
    if window_days < 1:
        raise AnalysisError(f"the order window must be at least one day, not {window_days}")
    clustering, extra = analysis_traits(engine, record)
    members = store.read_memberships(engine, record.id)
    traits_frame = _member_traits(engine, record.id, [*clustering, *extra])
    orders = _orders(engine, window_days)
    amount = pd.to_numeric(orders["amount"], errors="coerce")
    unknown = orders["unknown"].astype(int) == 1
    missing = amount.isna() & ~unknown
    negative = (amount < 0) & ~unknown
    member_ids = members["contact_id"].to_numpy()
    usable = ~unknown & ~missing & ~negative
    in_cohort = orders["contact_id"].isin(member_ids).to_numpy()
    quality = OrderQuality(
        used=int((usable & in_cohort).sum()),
        missing_amount=int(missing.sum()),
        negative_amount=int(negative.sum()),
        unknown_contact=int(unknown.sum()),
        outside_cohort=int((usable & ~in_cohort).sum()),
    )
    clean = orders[usable & in_cohort].assign(amount=amount[usable & in_cohort])
    table = analyse(members, traits_frame, clustering, extra, clean, quality)
    with engine.begin() as conn:
        conn.execute(persona_analysis.delete().where(persona_analysis.c.persona_set_id == record.id))
        write_frame(conn, "persona_analysis", table.assign(persona_set_id=record.id))
    return table


def read_analysis(engine: Engine, persona_set_id: int) -> pd.DataFrame:
    return read_frame(
        engine,
        'SELECT section, persona_id, trait, role, bucket, "count", share, value, lift FROM persona_analysis '
        "WHERE persona_set_id = :id",
        {"id": persona_set_id},
    )


# --- Flow -------------------------------------------------------------------------------------------------

ID_CHUNK = 5_000


class FlowError(ValueError):
    """A flow request that cannot be answered (a day outside the history, a set never snapshotted)."""


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
        "SELECT contact_id, valid_from, valid_to FROM membership_history WHERE persona_set_id = :id "
        "AND valid_from < :end AND (valid_to IS NULL OR valid_to >= :end)",
        {"id": persona_set_id, "end": flow.day_end(day).to_pydatetime()},
    )


def _history_rows(engine: Engine, contact_ids: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Trait history rows of some contacts, fetched in chunks of ids (bound parameters, never inlined)."""
    select = ", ".join(quote(engine, c) for c in ["contact_id", "valid_from", "valid_to", *columns])
    parts = []
    for start in range(0, len(contact_ids), ID_CHUNK):
        ids = [int(i) for i in contact_ids[start : start + ID_CHUNK]]
        statement = sa.text(f"SELECT {select} FROM trait_history WHERE contact_id IN :ids").bindparams(  # noqa: S608
            sa.bindparam("ids", expanding=True)
        )
        with engine.connect() as conn:
            parts.append(pd.read_sql(statement, conn, params={"ids": ids}))
    if not parts:
        return pd.DataFrame(columns=["contact_id", "valid_from", "valid_to", *columns])
    return pd.concat(parts, ignore_index=True)


def _normalize_times(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("valid_from", "valid_to"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    return frame


def snapshot_day(engine: Engine, day: dt.date) -> dict[str, int]:
    """Store every ready persona set's memberships as of `day`; returns members per set. Idempotent."""
    require_day(engine, day)
    results: dict[str, int] = {}
    for record in store.list_all(engine):
        if record.status != "ready" or record.current_build is None:
            continue
        results[record.name] = _snapshot_set(engine, record, day)
    return results


def _snapshot_set(engine: Engine, record: store.PersonaSet, day: dt.date) -> int:
    model = PersonaModel.from_json(store.latest_build(engine, record.id)["model"])
    current = _normalize_times(_keys_valid_on(engine, record.cohort, day))
    stored = _normalize_times(_stored_covering(engine, record.id, day))
    fresh, moved = flow.new_versions(stored, current)
    # stored rows that no longer cover the day: the history closed (or rewrote) their version since
    stale = stored.merge(current, on=["contact_id", "valid_from"], how="left", indicator=True)
    stale = stale[stale["_merge"] == "left_only"][["contact_id", "valid_from"]]
    if len(stale):
        actual = _normalize_times(_history_rows(engine, stale["contact_id"].unique(), []))
        fixed = stale.merge(actual, on=["contact_id", "valid_from"], how="left")
        moved = pd.concat([moved, fixed[["contact_id", "valid_from", "valid_to"]]], ignore_index=True)
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
    versions = _normalize_times(versions)
    versions = fresh.merge(versions.drop(columns=["valid_to"]), on=["contact_id", "valid_from"], how="left")
    rows = versions[["contact_id", "valid_from", "valid_to"]].copy()
    if len(versions):
        persona, _ = model.assign(versions)
        rows["persona_id"] = persona
    else:
        rows["persona_id"] = pd.Series(dtype="int64")
    rows = rows.assign(persona_set_id=record.id, build=record.current_build)
    with engine.begin() as conn:
        write_frame(conn, "membership_history", rows)
        if len(moved):
            conn.execute(
                membership_history.update()
                .where(
                    (membership_history.c.persona_set_id == record.id)
                    & (membership_history.c.contact_id == sa.bindparam("cid"))
                    & (membership_history.c.valid_from == sa.bindparam("vfrom"))
                )
                .values(valid_to=sa.bindparam("vto")),
                [
                    {
                        "cid": int(r.contact_id),
                        "vfrom": r.valid_from.to_pydatetime(),
                        "vto": None if pd.isna(r.valid_to) else r.valid_to.to_pydatetime(),
                    }  # fmt: skip
                    for r in moved.itertuples()
                ],
            )
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
    with engine.connect() as conn:
        days = conn.execute(
            sa.select(flow_days.c.day)
            .where(flow_days.c.persona_set_id == persona_set_id)
            .order_by(flow_days.c.day)
        ).scalars()
        days = [pd.Timestamp(d).date() for d in days]
    return history, days


def flow_counts(engine: Engine, name: str) -> pd.DataFrame:
    record = store.get(engine, name)
    history, days = flow_history(engine, record.id)
    if not days:
        raise FlowError(
            f"persona set {record.name!r} has no snapshots yet: persona-pipeline flow snapshot --days 30"
        )
    return flow.daily_counts(history, days)


def flow_transitions(engine: Engine, name: str, first: dt.date, second: dt.date) -> pd.DataFrame:
    record = store.get(engine, name)
    history, days = flow_history(engine, record.id)
    for day in (first, second):
        if day not in days:
            shown = f"{days[0]} .. {days[-1]}" if days else "none yet"
            raise FlowError(f"{day} has no snapshot for {record.name!r} (snapshotted days: {shown})")
    return flow.transitions(history, first, second)


# --- Report -----------------------------------------------------------------------------------------------


def report_data(engine: Engine, name: str) -> ReportData:
    record = store.get(engine, name)
    require_ready(record)
    build = store.latest_build(engine, record.id)
    table = read_analysis(engine, record.id)
    if table.empty:
        table = run_analysis(engine, record.id)
    history, days = flow_history(engine, record.id)
    return ReportData(
        set_name=record.name,
        cohort=record.cohort,
        build=build,
        personas=store.read_personas(engine, record.id),
        analysis=table,
        flow_days=[str(d) for d in days],
        flow_counts=flow.daily_counts(history, days) if days else None,
        trajectories=flow.trajectories(history, days) if days else [],
    )


def default_report_path(record: store.PersonaSet) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", record.name.lower()).strip("-")[:60] or "persona-set"
    folder = persona_home() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{record.id}-{slug}.html"


def write_report(engine: Engine, name: str, out: str | Path | None = None) -> Path:
    """Write the set's self-contained HTML report; returns its path."""
    data = report_data(engine, name)
    path = Path(out) if out else default_report_path(store.get(engine, name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path


# --- Explore ----------------------------------------------------------------------------------------------


def geography_trait(engine: Engine) -> str | None:
    """The categorical trait Explore maps personas over (PERSONA_GEOGRAPHY_TRAIT, default state), if catalogued."""
    name = os.environ.get("PERSONA_GEOGRAPHY_TRAIT", "state")
    catalog = load_catalog(engine)
    return name if name in catalog and catalog[name].kind == TraitKind.CATEGORICAL else None


def explore_sets(engine: Engine) -> list[ExploreSet]:
    """The built persona sets shown in Explore, oldest first: a set being rebuilt, or whose rebuild failed,
    keeps showing its current build rather than vanishing from the comparison."""
    return [
        ExploreSet(r.id, r.name, r.cohort, r.current_build, r.built_at, store.read_personas(engine, r.id))
        for r in store.list_all(engine)
        if r.show_in_explore and r.current_build is not None
    ]


def explore_geography(engine: Engine, sets: list[ExploreSet], trait: str) -> pd.DataFrame:
    """Members per persona per region for the shown sets, counted in the warehouse."""
    region = quote(engine, trait)
    statement = sa.text(
        f"SELECT m.persona_set_id, m.persona_id, c.{region} AS region, COUNT(*) AS members "  # noqa: S608 - quoted
        "FROM persona_memberships m JOIN contacts c ON c.contact_id = m.contact_id "
        f"WHERE m.persona_set_id IN :ids AND {store.CURRENT_MEMBERSHIPS} GROUP BY m.persona_set_id, m.persona_id, c.{region}"
    ).bindparams(sa.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        counts = pd.DataFrame(
            conn.execute(statement, {"ids": [s.id for s in sets]}).all(),
            columns=["persona_set_id", "persona_id", "region", "members"],
        )
    counts["persona_set"] = counts["persona_set_id"].map({s.id: s.name for s in sets})
    return geography(counts.drop(columns="persona_set_id"))


def explore_fingerprint(engine: Engine) -> str:
    """Changes exactly when the Explore page would: which sets are shown, their builds and persona names."""
    shown = [
        (s.name, s.build, [(p["persona_id"], p["name"]) for p in s.personas]) for s in explore_sets(engine)
    ]
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()[:16]


def default_explore_path() -> Path:
    folder = persona_home() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "explore.html"


def write_explore(engine: Engine, out: str | Path | None = None) -> tuple[Path, pd.DataFrame]:
    """Write the Explore page; returns its path and the side-by-side sizes table."""
    sets = explore_sets(engine)
    trait = geography_trait(engine)
    geo = explore_geography(engine, sets, trait) if sets and trait else None
    path = Path(out) if out else default_explore_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_explore(sets, geo, trait), encoding="utf-8")
    return path, explore_sizes(sets)


# --- Export -----------------------------------------------------------------------------------------------

EXPORTS = ("memberships", "analysis", "flow", "history")


def export_csv(engine: Engine, name: str, what: str, out: Path) -> int:
    """Stream one of the set's tables to a CSV file in flat memory; returns the bytes written."""
    record = store.get(engine, name)
    if what not in EXPORTS:
        raise AnalysisError(f"--what must be one of {', '.join(EXPORTS)}, not {what!r}")
    if what != "flow":
        require_ready(record)
    queries = {
        "memberships": "SELECT m.contact_id, m.persona_id, p.name AS persona_name, m.confidence, m.build "  # noqa: S608
        "FROM persona_memberships m JOIN personas p ON p.persona_set_id = m.persona_set_id "
        "AND p.build = m.build AND p.persona_id = m.persona_id "
        f"WHERE m.persona_set_id = :id AND {store.CURRENT_MEMBERSHIPS} ORDER BY m.contact_id",
        "analysis": 'SELECT section, persona_id, trait, role, bucket, "count", share, value, lift '
        "FROM persona_analysis WHERE persona_set_id = :id",
        "history": "SELECT contact_id, persona_id, valid_from, valid_to, build FROM membership_history "
        "WHERE persona_set_id = :id ORDER BY contact_id, valid_from",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        if what == "flow":
            handle.write(flow_counts(engine, record.name).to_csv(index=False).encode())
        else:
            stream_csv(engine, queries[what], handle, {"id": record.id})
    return out.stat().st_size
