"""The Analysis view of a built persona set: sizes, trait distributions with lift, purchases, product sales."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.config import currency, llm_settings
from persona_pipeline.core.analysis import OrderQuality, PurchaseWindow, analyse
from persona_pipeline.core.domain import DEFAULT_WINDOW_DAYS, PersonaSet
from persona_pipeline.core.interpretation import interpret, purchase_profiles
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.orders import OrderStatus, counted, net_amounts
from persona_pipeline.core.traits import Trait
from persona_pipeline.errors import AnalysisError, CatalogError
from persona_pipeline.persona_sets.lifecycle import require_built
from persona_pipeline.studies.prose import add_prose
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame, write_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.memberships import CURRENT_MEMBERSHIPS, read_memberships
from persona_pipeline.warehouse.tables import persona_analysis
from persona_pipeline.warehouse.trait_catalog import load_catalog

__all__ = ["DEFAULT_WINDOW_DAYS", "read_analysis", "run_analysis"]


def analysis_traits(engine: Engine, record: PersonaSet) -> tuple[list[Trait], list[Trait]]:
    """The set's clustering traits and its analysis traits (any catalog trait not clustered on). A trait the
    build left out (one value for the whole cohort) is not shown as one it clustered on."""
    catalog = load_catalog(engine)
    clustered = set(PersonaModel.from_json(store.current_build(engine, record).model).transform.trait_names)
    clustering = [t for t in catalog.select(record.traits) if t.name in clustered]
    try:
        extra = catalog.select(record.analysis_traits) if record.analysis_traits else []
    except CatalogError as exc:
        raise AnalysisError(
            f"persona set {record.name!r} has an analysis trait the catalog lacks: {exc}"
        ) from exc
    names = {t.name for t in clustering}
    return clustering, [t for t in extra if t.name not in names]


def _member_traits(engine: Engine, persona_set_id: int, traits: list[Trait]) -> pd.DataFrame:
    columns = ", ".join(f"c.{quote(engine, t.name)}" for t in traits)
    sql = (
        f"SELECT m.contact_id, {columns} FROM persona_memberships m "  # noqa: S608 - identifiers quoted
        f"JOIN contacts c ON c.contact_id = m.contact_id WHERE m.persona_set_id = :id AND {CURRENT_MEMBERSHIPS} "
        "ORDER BY m.contact_id"
    )
    return read_frame(engine, sql, {"id": persona_set_id}, categorical=True)


def _orders(engine: Engine, window: int) -> tuple[pd.DataFrame, PurchaseWindow, int]:
    """Orders of the `window` calendar days up to and including the day of the latest order (not N days of
    24 hours back from its instant, which spans N+1 calendar days), with a flag for contacts the warehouse
    does not know; and how many orders are older than the window."""
    with engine.connect() as conn:  # the one scan that finds the latest order counts them all too
        latest, total = conn.execute(sa.text("SELECT MAX(ordered_at), COUNT(*) FROM orders")).one()
    if latest is None:
        empty = pd.DataFrame(
            columns=["contact_id", "amount", "refunded", "status", "product_category", "unknown"]
        )
        return empty, PurchaseWindow.ending(None, window, currency()), 0
    if isinstance(latest, str):
        latest = dt.datetime.fromisoformat(latest)
    frame_of = PurchaseWindow.ending(
        latest.date() if isinstance(latest, dt.datetime) else latest, window, currency()
    )
    cutoff = dt.datetime.combine(frame_of.first_day, dt.time())
    frame = read_frame(
        engine,
        "SELECT o.contact_id, o.amount, o.refunded, o.status, o.product_category, "
        "CASE WHEN c.contact_id IS NULL THEN 1 ELSE 0 END AS unknown "
        "FROM orders o LEFT JOIN contacts c ON c.contact_id = o.contact_id WHERE o.ordered_at >= :cutoff",
        {"cutoff": cutoff},
    )
    return frame, frame_of, int(total) - len(frame)  # every order not in the window is before it


def run_analysis(engine: Engine, name_or_id: str | int, window_days: int | None = None) -> pd.DataFrame:
    """Compute and store the set's Analysis table; returns it. `window_days` changes the set's order window
    (kept with the set for later refreshes); None uses the one it has."""
    record = (
        store.get_by_id(engine, name_or_id) if isinstance(name_or_id, int) else store.get(engine, name_or_id)
    )
    require_built(record)
    if window_days is not None and window_days < 1:
        raise AnalysisError(
            f"the order window must be at least one day, not {window_days}: pass --window-days 1 or more"
        )
    if window_days is not None and window_days != record.window_days:
        store.set_window_days(engine, record.id, window_days)
    window_days = window_days or record.window_days
    clustering, extra = analysis_traits(engine, record)
    members = read_memberships(engine, record.id)
    traits_frame = _member_traits(engine, record.id, [*clustering, *extra])
    orders, window, before_window = _orders(engine, window_days)
    amount = pd.to_numeric(orders["amount"], errors="coerce")
    refunded = pd.to_numeric(orders["refunded"], errors="coerce")
    status = orders["status"].astype(object)
    unknown = (orders["unknown"].astype(int) == 1).to_numpy()
    cancelled = (status.astype(str) == OrderStatus.CANCELLED).to_numpy() & ~unknown
    missing = amount.isna().to_numpy() & ~unknown & ~cancelled
    negative = (amount < 0).to_numpy() & ~unknown & ~cancelled
    usable = counted(status, amount, refunded) & ~unknown  # the one rule, as the cohorts' SQL states it
    not_counted = ~usable & ~unknown & ~cancelled & ~missing & ~negative
    in_cohort = orders["contact_id"].isin(members["contact_id"].to_numpy()).to_numpy()
    quality = OrderQuality(
        used=int((usable & in_cohort).sum()),
        missing_amount=int(missing.sum()),
        negative_amount=int(negative.sum()),
        unknown_contact=int(unknown.sum()),
        outside_cohort=int((usable & ~in_cohort).sum()),
        cancelled=int(cancelled.sum()),
        not_counted=int(not_counted.sum()),
        before_window=before_window,
    )
    net = net_amounts(amount, refunded)
    clean = orders[usable & in_cohort].assign(amount=net[usable & in_cohort])
    table = analyse(members, traits_frame, clustering, extra, clean, quality, window)
    profiles = purchase_profiles(table)
    personas = store.read_personas(engine, record.id)
    stories = {p.persona_id: interpret(p, profiles.get(p.persona_id), currency()) for p in personas}
    model = llm_settings()
    if model is not None:
        stories = add_prose(model, personas, stories)
    texts = {persona_id: story.to_json() for persona_id, story in stories.items()}
    with engine.begin() as conn:
        conn.execute(persona_analysis.delete().where(persona_analysis.c.persona_set_id == record.id))
        write_frame(conn, "persona_analysis", table.assign(persona_set_id=record.id))
        store.set_interpretations(conn, record.id, record.current_build, texts)
    return table


def read_analysis(engine: Engine, persona_set_id: int) -> pd.DataFrame:
    return read_frame(
        engine,
        'SELECT section, persona_id, trait, role, bucket, "count", share, value, lift FROM persona_analysis '
        "WHERE persona_set_id = :id",
        {"id": persona_set_id},
    )
