"""The source tables and the trait catalog stored beside them: replaced whole, or merged into, in the caller's
transaction, so a load that fails leaves them as they were.

A merge changes only what the file changes: new contacts are inserted, changed ones updated with a new
trait-history version valid from their change, removed ones leave the base today (their history stays, so past
days still count them); orders are upserted by order id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from persona_pipeline.core.traits import TraitCatalog, TraitKind
from persona_pipeline.errors import LoadError
from persona_pipeline.warehouse.bulk import write_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.tables import (
    HIDDEN_TRUTH_TABLE,
    SOURCE_TABLES,
    ensure_catalog_tables,
    ensure_source_columns,
    source_layout,
    source_tables,
    trait_catalog,
)
from persona_pipeline.warehouse.trait_catalog import load_catalog


@dataclass
class SourceChanges:
    """What a load did (or, in a dry run, would do) to the stored base."""

    contacts_new: int = 0
    contacts_changed: int = 0
    contacts_unchanged: int = 0
    contacts_removed: int = 0
    orders_new: int = 0
    orders_changed: int = 0
    orders_unchanged: int = 0
    replaced_contacts: int = 0  # --replace: what was there before
    replaced_orders: int = 0
    stale_lines: list[int] = field(default_factory=list)  # rows older than the stored contact: not applied
    dated_before_version: int = 0  # changes dated before the open version began: recorded at the load time
    contacts_returned: int = 0  # removed contacts loaded again: a new version from the load time


def replace_sources(
    engine: Engine,
    catalog: TraitCatalog,
    contacts: pd.DataFrame,
    trait_history: pd.DataFrame,
    orders: pd.DataFrame,
    truth: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Swap in a whole new customer base in one transaction: a failure leaves the old one untouched."""
    ensure_catalog_tables(engine)
    with engine.begin() as conn:
        counts = replace_in(conn, catalog, contacts, trait_history, orders, truth)
    analyze(engine)
    return counts


def replace_in(
    conn: Connection,
    catalog: TraitCatalog,
    contacts: pd.DataFrame,
    trait_history: pd.DataFrame,
    orders: pd.DataFrame,
    truth: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Drop and recreate the source tables with these rows, in the caller's transaction."""
    tables = recreate(conn, catalog)
    counts: dict[str, int] = {}
    frames = {"contacts": contacts, "trait_history": trait_history, "orders": orders}
    if truth is not None:
        frames[HIDDEN_TRUTH_TABLE] = truth
    for name, frame in frames.items():
        columns = [c.name for c in tables[name].columns]
        counts[name] = write_frame(conn, name, frame[[c for c in columns if c in frame.columns]])
    return counts


def recreate(conn: Connection, catalog: TraitCatalog) -> dict[str, sa.Table]:
    """Drop the source tables and create them empty for this catalog, which is stored beside them."""
    tables = source_tables(catalog)
    # PostgreSQL refuses to drop a table that staging views read; the next models run recreates them
    cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
    for table in tables.values():
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(conn.engine, table.name)}{cascade}"))
    for table in tables.values():
        table.create(conn)
    write_catalog(conn, catalog)
    return tables


def analyze(engine: Engine) -> None:
    """Fresh statistics make the cohort joins plan well on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for table in SOURCE_TABLES:  # the tables a load writes, not every table of the database
                if table in present:
                    conn.execute(sa.text(f"ANALYZE {quote(conn.engine, table)}"))
            conn.commit()


def write_catalog(conn: Connection, catalog: TraitCatalog) -> None:
    conn.execute(trait_catalog.delete())
    conn.execute(
        trait_catalog.insert(),
        [
            {"position": i, "name": t.name, "definition": json.dumps(t.to_dict())}
            for i, t in enumerate(catalog.traits)
        ],
    )


def write_layout(conn: Connection, layout: str) -> None:
    conn.execute(source_layout.delete())
    conn.execute(source_layout.insert().values(name="layout", definition=layout))


def stored_layout(engine: Engine) -> str | None:
    """The layout the last traits file declared (JSON), or None."""
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        return conn.execute(sa.select(source_layout.c.definition)).scalar()


def stored_catalog(engine: Engine) -> TraitCatalog | None:
    """The catalog of the stored base, or None when nothing was seeded or loaded."""
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("contacts"):
            return None
        if conn.execute(sa.select(sa.func.count()).select_from(trait_catalog)).scalar() == 0:
            return None
    return load_catalog(engine)


def source_counts(conn: Connection) -> dict[str, int]:
    """Rows in each source table now (0 where it does not exist)."""
    present = set(sa.inspect(conn).get_table_names())
    return {
        name: int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {name}")).scalar()) if name in present else 0  # noqa: S608 - fixed names
        for name in ("contacts", "orders")
    }


_COLUMN_FAMILY = {
    TraitKind.NUMERIC: ("FLOAT", "REAL", "DOUBLE", "NUMERIC"),
    TraitKind.BOOLEAN: ("BOOL",),
    TraitKind.DATE: ("DATE", "TIMESTAMP"),
    TraitKind.CATEGORICAL: ("CHAR", "TEXT", "STRING"),
    TraitKind.ORDINAL: ("CHAR", "TEXT", "STRING"),
}


def align_catalog(conn: Connection, stored: TraitCatalog, new: TraitCatalog) -> list[str]:
    """Make the stored tables fit a merge's catalog: added traits get columns (missing for contacts not in the
    file), traits that left keep their stored column; a trait whose kind changed cannot be merged."""
    notes: list[str] = []
    for trait in new.traits:
        if trait.name in stored and stored[trait.name].kind is not trait.kind:
            raise LoadError(
                f"trait {trait.name!r} is stored as {stored[trait.name].kind} and the traits file makes it "
                f"{trait.kind}: stored values cannot be merged with another kind; load with --replace to start "
                "the base over, or keep the kind"
            )
    inspector = sa.inspect(conn)
    columns = {
        t: {c["name"]: str(c["type"]).upper() for c in inspector.get_columns(t)}
        for t in ("contacts", "trait_history")
    }
    types = source_tables(new)
    added = [t for t in new.traits if t.name not in stored]
    for trait in added:
        for table in ("contacts", "trait_history"):
            existing = columns[table].get(trait.name)
            if existing is not None:
                if not any(word in existing for word in _COLUMN_FAMILY[trait.kind]):
                    raise LoadError(
                        f"trait {trait.name!r} left the catalog earlier and its stored column is {existing}, "
                        f"not {trait.kind}; load with --replace, or give the trait another name"
                    )
                continue
            sql_type = types[table].c[trait.name].type.compile(dialect=conn.dialect)
            conn.execute(
                sa.text(f"ALTER TABLE {table} ADD COLUMN {quote(conn.engine, trait.name)} {sql_type}")
            )
    if added:
        notes.append(
            f"new trait(s) {', '.join(t.name for t in added)}: contacts not in this file have no value for them yet"
        )
    left = [t.name for t in stored.traits if t.name not in new]
    if left:
        notes.append(
            f"trait(s) {', '.join(left)} left the catalog: their stored values stay in the tables, unused"
        )
    write_catalog(conn, new)
    return notes


def key_kind(conn: Connection) -> str:
    """'text' when stored contacts carry a file's text key, 'integer' when they do not, 'empty' when none."""
    row = conn.execute(sa.text("SELECT COUNT(*), COUNT(external_id) FROM contacts")).one()
    if row[0] == 0:
        return "empty"
    return "text" if row[1] else "integer"


def external_ids(conn: Connection, keys: pd.Series) -> pd.Series:
    """The stored contact_id of each text key (<NA> where the key is not stored), as exact nullable integers;
    keys: (n,) text."""
    stored = pd.read_sql(
        sa.text("SELECT external_id, contact_id FROM contacts WHERE external_id IS NOT NULL"), conn
    )
    position = pd.Index(stored["external_id"].astype(str)).get_indexer(keys.astype(str))
    ids = stored["contact_id"].to_numpy(dtype="int64")[np.maximum(position, 0)] if len(stored) else position
    return pd.Series(pd.arrays.IntegerArray(ids.astype("int64"), position < 0), index=keys.index)


def next_contact_id(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT COALESCE(MAX(contact_id), 0) FROM contacts")).scalar()) + 1


def stored_contact_ids(conn: Connection) -> np.ndarray:
    """(n,) int64: every stored contact id."""
    return pd.read_sql(sa.text("SELECT contact_id FROM contacts"), conn)["contact_id"].to_numpy(dtype="int64")


def unstaged_contact_ids(conn: Connection) -> np.ndarray:
    """(n,) int64: stored contacts the staged file does not hold (what --delete-missing removes)."""
    return pd.read_sql(
        sa.text(
            "SELECT contact_id FROM contacts c WHERE NOT EXISTS "
            "(SELECT 1 FROM load_contacts s WHERE s.contact_id = c.contact_id)"
        ),
        conn,
    )["contact_id"].to_numpy(dtype="int64")


def _distinct(conn: Connection, left: str, right: str) -> str:
    """A null-safe 'differs' between two columns: NULL and NULL are equal."""
    op = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    return f"{left} {op} {right}"


def start_staging(conn: Connection, catalog: TraitCatalog) -> None:
    """Temporary tables the chunks of a load are written to (load_contacts, load_orders), shaped like the
    sources with the file's line and, for orders, the file's contact key; nothing touches the sources yet."""
    drop_staging(conn)
    tables = source_tables(catalog)
    meta = sa.MetaData()
    for name, template, extra in (
        ("load_contacts", tables["contacts"], [sa.Column("line", sa.BigInteger)]),
        (
            "load_orders",
            tables["orders"],
            [
                sa.Column("line", sa.BigInteger),
                sa.Column("key_id", sa.BigInteger),
                sa.Column("key_text", sa.String(200)),
            ],
        ),
    ):
        columns = [sa.Column(c.name, c.type, nullable=True) for c in template.columns] + extra
        sa.Table(name, meta, *columns, prefixes=["TEMPORARY"]).create(conn)


def stage(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """Append one chunk's typed rows to a staging table (COPY on PostgreSQL)."""
    return write_frame(conn, table, frame)


def _number_new(conn: Connection) -> None:
    """Staged contacts without a contact_id get the next free ones, in the file's line order."""
    start = next_contact_id(conn)
    conn.execute(
        sa.text(
            "UPDATE load_contacts SET contact_id = n.id FROM (SELECT line, :start - 1 + ROW_NUMBER() OVER "
            "(ORDER BY line) AS id FROM load_contacts WHERE contact_id IS NULL) AS n WHERE load_contacts.line = n.line"
        ),
        {"start": start},
    )


def assign_contact_ids(conn: Connection, text_keys: bool) -> None:
    """Staged contacts keyed by text take the stored contact_id of their key, or a new one; contacts without
    ids (generated) all take new ones. Integer-keyed contacts came with theirs."""
    conn.execute(sa.text("CREATE INDEX load_contacts_line ON load_contacts (line)"))
    if text_keys:
        conn.execute(
            sa.text(
                "UPDATE load_contacts SET contact_id = c.contact_id FROM contacts c "
                "WHERE c.external_id = load_contacts.external_id"
            )
        )
    _number_new(conn)
    conn.execute(sa.text("CREATE INDEX load_contacts_id ON load_contacts (contact_id)"))


def take_stale(conn: Connection) -> pd.DataFrame:
    """Staged rows older than the stored contact (updated_at), taken out of the staging: a load never writes
    an older version over a newer one. Returns their line, contact_id, external_id and updated_at."""
    older = (
        "FROM load_contacts s JOIN contacts c ON c.contact_id = s.contact_id "
        "WHERE s.updated_at < c.updated_at AND c.dated"  # a stored load time says nothing of the data's age
    )
    stale = pd.read_sql(
        sa.text(f"SELECT s.line, s.contact_id, s.external_id, s.updated_at {older} ORDER BY s.line"),  # noqa: S608 - fixed SQL
        conn,
    )
    if len(stale):
        conn.execute(sa.text(f"DELETE FROM load_contacts WHERE line IN (SELECT s.line {older})"))  # noqa: S608
    return stale


def insert_staged(conn: Connection, catalog: TraitCatalog) -> None:
    """Every staged contact into the (empty, recreated) contacts table, with the ids assigned to it."""
    names = ", ".join(quote(conn.engine, t.name) for t in catalog.traits)
    columns = f"contact_id, external_id, created_at, updated_at, dated, {names}"
    conn.execute(sa.text(f"INSERT INTO contacts ({columns}) SELECT {columns} FROM load_contacts"))  # noqa: S608


def open_history(conn: Connection, catalog: TraitCatalog) -> int:
    """Each contact's first trait-history version, valid from its creation, copied inside the warehouse (a
    fresh base: every contact is new); returns the contacts."""
    names = ", ".join(quote(conn.engine, t.name) for t in catalog.traits)
    return int(
        conn.execute(
            sa.text(
                f"INSERT INTO trait_history (contact_id, valid_from, valid_to, {names}) "  # noqa: S608 - quoted
                f"SELECT contact_id, created_at, NULL, {names} FROM contacts"
            )
        ).rowcount
    )


def merge_contacts(conn: Connection, catalog: TraitCatalog, now: pd.Timestamp) -> SourceChanges:
    """Merge the staged contacts: insert new ones, update changed ones (closing their open history version and
    opening one valid from the change), leave the rest. History versions never overlap nor end before they
    begin: a change dated before the contact's open version began, and a removed contact loaded again since
    its history ended, take effect at the load time (`now`)."""
    changes = SourceChanges()
    names = [quote(conn.engine, t.name) for t in catalog.traits]
    differs = " OR ".join(_distinct(conn, f"c.{n}", f"s.{n}") for n in names)
    at = {"now": now.to_pydatetime()}
    in_order = "(h.valid_from IS NULL OR s.updated_at >= h.valid_from)"
    conn.execute(sa.text("DROP TABLE IF EXISTS load_changed"))
    conn.execute(
        sa.text(
            "CREATE TEMPORARY TABLE load_changed AS SELECT s.contact_id, "  # noqa: S608 - quoted
            f"CASE WHEN {in_order} THEN s.updated_at ELSE :now END AS changed_at, "
            f"CASE WHEN {in_order} THEN 0 ELSE 1 END AS moved "
            "FROM load_contacts s JOIN contacts c ON c.contact_id = s.contact_id "
            "LEFT JOIN trait_history h ON h.contact_id = s.contact_id AND h.valid_to IS NULL "
            f"WHERE {differs}"
        ),
        at,
    )
    conn.execute(sa.text("DROP TABLE IF EXISTS load_new"))
    conn.execute(
        sa.text(
            "CREATE TEMPORARY TABLE load_new AS SELECT s.contact_id, MAX(h.valid_to) AS left_at "
            "FROM load_contacts s LEFT JOIN trait_history h ON h.contact_id = s.contact_id "
            "WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = s.contact_id) GROUP BY s.contact_id"
        )
    )
    staged = int(conn.execute(sa.text("SELECT COUNT(*) FROM load_contacts")).scalar())
    changed, moved = conn.execute(sa.text("SELECT COUNT(*), COALESCE(SUM(moved), 0) FROM load_changed")).one()
    new, returned = conn.execute(sa.text("SELECT COUNT(*), COUNT(left_at) FROM load_new")).one()
    changes.contacts_changed, changes.dated_before_version = int(changed), int(moved)
    changes.contacts_new, changes.contacts_returned = int(new), int(returned)
    changes.contacts_unchanged = staged - changes.contacts_changed - changes.contacts_new
    trait_list = ", ".join(names)
    if changes.contacts_changed:
        conn.execute(
            sa.text(
                "UPDATE trait_history SET valid_to = ch.changed_at FROM load_changed ch "
                "WHERE trait_history.contact_id = ch.contact_id AND trait_history.valid_to IS NULL"
            )
        )
        assignments = ", ".join(f"{n} = s.{n}" for n in names)
        conn.execute(
            sa.text(
                f"UPDATE contacts SET {assignments}, updated_at = s.updated_at, dated = s.dated FROM load_contacts s "  # noqa: S608 - quoted
                "JOIN load_changed ch ON ch.contact_id = s.contact_id WHERE contacts.contact_id = s.contact_id"
            )
        )
        conn.execute(
            sa.text(
                f"INSERT INTO trait_history (contact_id, valid_from, valid_to, {trait_list}) "  # noqa: S608 - quoted
                f"SELECT s.contact_id, ch.changed_at, NULL, {', '.join(f's.{n}' for n in names)} "
                "FROM load_contacts s JOIN load_changed ch ON ch.contact_id = s.contact_id"
            )
        )
    if changes.contacts_new:
        selected = ", ".join(f"s.{n}" for n in names)
        conn.execute(
            sa.text(
                f"INSERT INTO trait_history (contact_id, valid_from, valid_to, {trait_list}) "  # noqa: S608 - quoted
                "SELECT s.contact_id, CASE WHEN n.left_at IS NULL OR s.created_at >= n.left_at "
                f"THEN s.created_at ELSE :now END, NULL, {selected} FROM load_contacts s "
                "JOIN load_new n ON n.contact_id = s.contact_id"
            ),
            at,
        )
        conn.execute(
            sa.text(
                f"INSERT INTO contacts (contact_id, external_id, created_at, updated_at, dated, {trait_list}) "  # noqa: S608
                f"SELECT s.contact_id, s.external_id, s.created_at, s.updated_at, s.dated, {selected} "
                "FROM load_contacts s "
                "JOIN load_new n ON n.contact_id = s.contact_id"
            )
        )
    return changes


def remove_contacts(conn: Connection, ids: np.ndarray, now: pd.Timestamp) -> int:
    """Contacts leave the base now; their history versions close today, so past days still count them.

    ids: (n,) int64 stored contact ids.
    """
    if not len(ids):
        return 0
    conn.execute(sa.text("DROP TABLE IF EXISTS load_removed"))
    conn.execute(sa.text("CREATE TEMPORARY TABLE load_removed (contact_id BIGINT PRIMARY KEY)"))
    write_frame(conn, "load_removed", pd.DataFrame({"contact_id": np.unique(ids).astype("int64")}))
    conn.execute(
        sa.text(
            "UPDATE trait_history SET valid_to = :now WHERE valid_to IS NULL "
            "AND contact_id IN (SELECT contact_id FROM load_removed)"
        ),
        {"now": now.to_pydatetime()},
    )
    return int(
        conn.execute(
            sa.text("DELETE FROM contacts WHERE contact_id IN (SELECT contact_id FROM load_removed)")
        ).rowcount
    )


ORDER_VALUES = ("contact_id", "ordered_at", "amount", "product_category", "status", "refunded")


def link_orders(conn: Connection, text_keys: bool) -> pd.DataFrame:
    """Staged orders take the contact_id of their file key; those whose contact is not stored (nor loaded now)
    are taken out of the staging and returned (line, key)."""
    match = "c.external_id = load_orders.key_text" if text_keys else "c.contact_id = load_orders.key_id"
    conn.execute(sa.text(f"UPDATE load_orders SET contact_id = c.contact_id FROM contacts c WHERE {match}"))  # noqa: S608 - fixed SQL
    key = "key_text" if text_keys else "key_id"
    sql = f"SELECT line, {key} AS key FROM load_orders WHERE contact_id IS NULL ORDER BY line"  # noqa: S608
    unknown = pd.read_sql(sa.text(sql), conn)
    if len(unknown):
        conn.execute(sa.text("DELETE FROM load_orders WHERE contact_id IS NULL"))
    return unknown


def merge_orders(conn: Connection) -> tuple[int, int, int]:
    """Upsert the staged orders by order id: new ones inserted, changed ones (a status, a refund) updated;
    returns (new, changed, unchanged)."""
    differs = " OR ".join(_distinct(conn, f"o.{c}", f"s.{c}") for c in ORDER_VALUES)
    changed = int(
        conn.execute(
            sa.text(
                f"SELECT COUNT(*) FROM load_orders s JOIN orders o ON o.order_id = s.order_id WHERE {differs}"  # noqa: S608
            )
        ).scalar()
    )
    new = int(
        conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM load_orders s WHERE NOT EXISTS "
                "(SELECT 1 FROM orders o WHERE o.order_id = s.order_id)"
            )
        ).scalar()
    )
    if changed:
        assignments = ", ".join(f"{c} = s.{c}" for c in ORDER_VALUES)
        update_differs = " OR ".join(_distinct(conn, f"orders.{c}", f"s.{c}") for c in ORDER_VALUES)
        conn.execute(
            sa.text(
                f"UPDATE orders SET {assignments} FROM load_orders s "  # noqa: S608
                f"WHERE orders.order_id = s.order_id AND ({update_differs})"
            )
        )
    if new:
        columns = ", ".join(("order_id", *ORDER_VALUES))
        conn.execute(
            sa.text(
                f"INSERT INTO orders ({columns}) SELECT {', '.join(f's.{c}' for c in ('order_id', *ORDER_VALUES))} "  # noqa: S608
                "FROM load_orders s WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = s.order_id)"
            )
        )
    staged = int(conn.execute(sa.text("SELECT COUNT(*) FROM load_orders")).scalar())
    return new, changed, staged - new - changed


def ensure_sources(conn: Connection, catalog: TraitCatalog) -> None:
    """Create the source tables a first merge writes into (an empty warehouse), with today's columns."""
    present = set(sa.inspect(conn).get_table_names())
    for name, table in source_tables(catalog).items():
        if name != HIDDEN_TRUTH_TABLE and name not in present:
            table.create(conn)
    ensure_source_columns(conn)


STAGING_TABLES = ("load_contacts", "load_changed", "load_new", "load_removed", "load_orders")


def drop_staging(conn: Connection) -> None:
    """Temporary tables live as long as the (pooled) connection: drop them before it goes back."""
    for name in STAGING_TABLES:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
