"""The warehouse's tables: sources shaped by the trait catalog, and the catalog and results of persona sets."""

from __future__ import annotations

import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from persona_pipeline.core.traits import TraitCatalog, TraitKind
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.replacement import PARTITION_KEY

SOURCE_TABLES = ("contacts", "trait_history", "orders")
HIDDEN_TRUTH_TABLE = (
    "hidden_segments"  # the generator's truth, for quality tests only; the pipeline never reads it
)

metadata = sa.MetaData()

trait_catalog = sa.Table(
    "trait_catalog",
    metadata,
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("definition", sa.Text, nullable=False),
)

# How the last traits file mapped its files (contacts: id column and kind; orders: headers), as JSON: a load
# given only --orders or --remove reads its files the same way.
source_layout = sa.Table(
    "source_layout",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
)

persona_sets = sa.Table(
    "persona_sets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("cohort", sa.String(200), nullable=False),
    sa.Column("traits", sa.Text, nullable=True),  # JSON list, or NULL for the catalog's defaults
    sa.Column("n_personas", sa.Integer, nullable=True),  # a user's override of k
    sa.Column("seed", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("built_at", sa.DateTime, nullable=True),
    sa.Column("current_build", sa.Integer, nullable=True),
    sa.Column("analysis_traits", sa.Text, nullable=True),  # JSON list: studied, not clustered on
    sa.Column("show_in_explore", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column(
        "analysis_window_days", sa.Integer, nullable=True
    ),  # the Analysis's order window; NULL: default
    sa.Column("method", sa.String(20), nullable=True),  # core.domain.ClusteringMethod; NULL: k-means
    sqlite_autoincrement=True,  # ids are never reused: a new set must not inherit a deleted one's partition
)

# What one Dagster step hands the next when steps may run on different hosts (PERSONA_STEP_STORAGE=warehouse):
# Arrow or JSON bytes under the step output's key (an asset's path and partition, or run/step/output).
step_outputs = sa.Table(
    "step_outputs",
    metadata,
    sa.Column("output_key", sa.String(1000), primary_key=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("written_at", sa.DateTime, nullable=False, index=True),
)

persona_builds = sa.Table(
    "persona_builds",
    metadata,
    sa.Column("persona_set_id", sa.Integer, primary_key=True),
    sa.Column("build", sa.Integer, primary_key=True),
    sa.Column("k", sa.Integer, nullable=False),
    sa.Column("k_reason", sa.Text, nullable=False),
    sa.Column("k_scores", sa.Text, nullable=False),
    sa.Column("stability", sa.Float, nullable=True),
    sa.Column("model", sa.Text, nullable=False),  # JSON: feature transform, centroids, persona ids
    sa.Column("cohort_size", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    # share of the contacts of both builds that kept persona id and name (see core/identity.py)
    sa.Column("kept_from_previous", sa.Float, nullable=True),
    sa.Column("built_at", sa.DateTime, nullable=False),
    sa.Column("identity", sa.Text, nullable=True),  # JSON identity.IdentityFigure: kept, unchanged vs changed
)

personas = sa.Table(
    "personas",
    metadata,
    sa.Column("persona_set_id", sa.Integer, primary_key=True),
    sa.Column("build", sa.Integer, primary_key=True),
    sa.Column("persona_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("avatar_svg", sa.Text, nullable=False),
    sa.Column("population", sa.Integer, nullable=False),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("defining_traits", sa.Text, nullable=False),  # JSON list of trait effects
    sa.Column("rules", sa.Text, nullable=False),  # JSON list of rules
    sa.Column("named_by_user", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("interpretation", sa.Text, nullable=True),  # JSON domain.Interpretation
    sa.Column("data_name", sa.String(200), nullable=True),  # what the data would call a user-named persona
)

# Keyed by build too: a new build's rows are stored beside the current build's until the switch (see
# persona_sets.replace_memberships), and inserting keys equal to just-deleted ones made PostgreSQL check each
# against its deleted twin (2x slower at 1M contacts).
MEMBERSHIP_KEY = ("persona_set_id", "build", "contact_id")
persona_memberships = sa.Table(
    "persona_memberships",
    metadata,
    sa.Column("persona_set_id", sa.Integer, nullable=False),
    sa.Column("contact_id", sa.BigInteger, nullable=False),
    sa.Column("persona_id", sa.Integer, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("build", sa.Integer, nullable=False),
    # a hash of the clustering traits the membership was built from: the next build tells who changed
    sa.Column("fingerprint", sa.BigInteger, nullable=True),
    sa.PrimaryKeyConstraint(*MEMBERSHIP_KEY, name="persona_memberships_pkey"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("persona_set_id", sa.Integer, nullable=False, index=True),
    sa.Column("build", sa.Integer, nullable=False),
    sa.Column("contact_id", sa.BigInteger, nullable=True),
    sa.Column("column", sa.String(200), nullable=False),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
)


persona_analysis = sa.Table(
    "persona_analysis",
    metadata,
    sa.Column("persona_set_id", sa.Integer, nullable=False, index=True),
    sa.Column("section", sa.String(20), nullable=False),  # size, trait, summary, revenue, product, quality
    sa.Column("persona_id", sa.Integer, nullable=False),  # 0: the whole cohort
    sa.Column("trait", sa.String(200), nullable=True),
    sa.Column("role", sa.String(20), nullable=True),  # clustering or analysis
    sa.Column("bucket", sa.String(200), nullable=True),
    sa.Column("count", sa.Float, nullable=True),
    sa.Column("share", sa.Float, nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("lift", sa.Float, nullable=True),
)

membership_history = sa.Table(
    "membership_history",
    metadata,
    sa.Column("persona_set_id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.BigInteger, primary_key=True),
    sa.Column("valid_from", sa.DateTime, primary_key=True),  # within the trait version's interval
    sa.Column("valid_to", sa.DateTime, nullable=True),
    sa.Column("persona_id", sa.Integer, nullable=False),
    sa.Column("build", sa.Integer, nullable=False),
    # the trait version assigned: its valid_from (a rebuild starts a row within the version, where it began)
    sa.Column("version_from", sa.DateTime, nullable=True),
)

flow_days = sa.Table(
    "flow_days",
    metadata,
    sa.Column("persona_set_id", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("build", sa.Integer, nullable=False),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("snapshot_at", sa.DateTime, nullable=False),
)

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("population", sa.Text, nullable=False),  # JSON list of cohorts, unioned
    sa.Column("payload", sa.Text, nullable=False),  # JSON list of persona set ids
    sa.Column("trigger", sa.String(20), nullable=False),  # ad_hoc, schedule, on_change
    sa.Column("cron", sa.String(100), nullable=True),
    sa.Column("destination_table", sa.String(63), nullable=True),
    sa.Column("destination_csv", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_run_at", sa.DateTime, nullable=True),
    sa.Column("score_in", sa.String(20), nullable=True),  # core.domain.ScoringEngine; NULL: python
    sqlite_autoincrement=True,  # ids are never reused, as on PostgreSQL
)


# One row per source table: how many committed writes changed it (kept by triggers; see warehouse/changes.py).
source_versions = sa.Table(
    "source_versions",
    metadata,
    sa.Column("source", sa.String(63), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# What each SQL model's table was last built from (a hash of its SQL and inputs), to skip unchanged rebuilds.
sql_model_state = sa.Table(
    "sql_model_state",
    metadata,
    sa.Column("model", sa.String(63), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("built_at", sa.DateTime, nullable=False),
)


def score_table(name: str, meta: sa.MetaData, per_pipeline: bool, partitioned: bool = False) -> sa.Table:
    """The shape of a scoring output row; pipeline_scores keys rows by pipeline, a user's destination by contact.

    `partitioned`: by contact_id range on PostgreSQL, so a full run can swap its rows in (warehouse.replacement).
    """
    return sa.Table(
        name,
        meta,
        *([sa.Column("pipeline_id", sa.Integer, primary_key=True)] if per_pipeline else []),
        sa.Column(
            "contact_id", sa.BigInteger, primary_key=per_pipeline, nullable=False, index=not per_pipeline
        ),
        sa.Column("external_id", sa.String(200), nullable=True),  # the contact's own key from its file
        sa.Column("persona_set", sa.String(200), primary_key=per_pipeline, nullable=False),
        sa.Column("persona_id", sa.Integer, nullable=False),
        sa.Column("persona_name", sa.String(200), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("scored_at", sa.DateTime, nullable=False),
        **({"postgresql_partition_by": PARTITION_KEY} if partitioned else {}),
    )


pipeline_scores = score_table("pipeline_scores", metadata, per_pipeline=True)


# Columns added after a table first shipped: (table, column, SQL type). Older warehouses get them on start.
ADDED_COLUMNS = [
    ("persona_sets", "analysis_traits", "TEXT"),
    ("persona_sets", "show_in_explore", "BOOLEAN NOT NULL DEFAULT TRUE"),
    ("personas", "named_by_user", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("pipeline_scores", "external_id", "VARCHAR(200)"),
    ("persona_memberships", "fingerprint", "BIGINT"),
    ("persona_builds", "identity", "TEXT"),
    ("personas", "interpretation", "TEXT"),
    ("persona_sets", "analysis_window_days", "INTEGER"),
    ("pipelines", "score_in", "VARCHAR(20)"),
    ("persona_sets", "method", "VARCHAR(20)"),
    ("membership_history", "version_from", "TIMESTAMP"),
    ("personas", "data_name", "VARCHAR(200)"),
]


_ensured: weakref.WeakSet = weakref.WeakSet()


def ensure_catalog_tables(engine: Engine) -> None:
    """Create missing catalog tables and add columns added since; once per engine, not on every lookup."""
    if engine in _ensured:
        return
    metadata.create_all(engine)
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table, column, sql_type in ADDED_COLUMNS:
            if column not in {c["name"] for c in inspector.get_columns(table)}:
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
                if column == "version_from":  # rows stored before a rebuild could split a version
                    conn.execute(sa.text("UPDATE membership_history SET version_from = valid_from"))
        if tuple(inspector.get_pk_constraint("persona_memberships")["constrained_columns"]) != MEMBERSHIP_KEY:
            _rekey_memberships(conn)
        ensure_source_columns(conn)
        if conn.dialect.name == "sqlite":
            _pad_sqlite_datetimes(conn)
    _ensured.add(engine)


SQLITE_FORMAT_VERSION = 1  # PRAGMA user_version once every stored datetime has its microseconds


def _pad_sqlite_datetimes(conn: Connection) -> None:
    """Datetimes bulk-written before version 1 were stored to the second ('2026-12-04 17:24:13'), while
    SQLAlchemy binds '2026-12-04 17:24:13.000000': as text they never compared equal (a Flow snapshot could
    not close a contact's previous membership, which then counted twice) and the shorter sorted first. Once per
    warehouse, every such value gets the microseconds it stood for."""
    if conn.execute(sa.text("PRAGMA user_version")).scalar() >= SQLITE_FORMAT_VERSION:
        return
    inspector = sa.inspect(conn)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if isinstance(column["type"], sa.DateTime):
                name = quote(conn.engine, column["name"])
                pad = f"UPDATE {quote(conn.engine, table)} SET {name} = {name} || '.000000' WHERE length({name}) = 19"  # noqa: S608 - names from the schema, quoted
                conn.execute(sa.text(pad))
    conn.execute(sa.text(f"PRAGMA user_version = {SQLITE_FORMAT_VERSION}"))


def _rekey_memberships(conn: Connection) -> None:
    """Memberships stored before the key held the build: the same rows under the new key."""
    if conn.dialect.name == "postgresql":
        name = sa.inspect(conn).get_pk_constraint("persona_memberships")["name"]
        conn.execute(
            sa.text(
                f'ALTER TABLE persona_memberships DROP CONSTRAINT "{name}", '
                f"ADD CONSTRAINT persona_memberships_pkey PRIMARY KEY ({', '.join(MEMBERSHIP_KEY)})"
            )
        )
        return
    # SQLite cannot change a primary key: copy into a table of the new shape and swap
    columns = ", ".join(c.name for c in persona_memberships.columns)
    conn.execute(sa.text("ALTER TABLE persona_memberships RENAME TO persona_memberships__old"))
    persona_memberships.create(conn)
    conn.execute(
        sa.text(f"INSERT INTO persona_memberships ({columns}) SELECT {columns} FROM persona_memberships__old")  # noqa: S608
    )
    conn.execute(sa.text("DROP TABLE persona_memberships__old"))


def _trait_type(kind: TraitKind) -> sa.types.TypeEngine:
    return {
        TraitKind.NUMERIC: sa.Float(),
        TraitKind.BOOLEAN: sa.Boolean(),
        TraitKind.CATEGORICAL: sa.String(200),
        TraitKind.ORDINAL: sa.String(200),
        TraitKind.DATE: sa.DateTime(),
    }[kind]


def source_tables(catalog: TraitCatalog) -> dict[str, sa.Table]:
    """contacts (current values), trait_history (as-of rows) and orders, with one column per trait."""
    meta = sa.MetaData()

    def traits() -> list[sa.Column]:
        return [sa.Column(t.name, _trait_type(t.kind), nullable=True) for t in catalog.traits]

    contacts = sa.Table(
        "contacts",
        meta,
        sa.Column("contact_id", sa.BigInteger, primary_key=True),
        # a file's own key when it is text ("C001"): kept beside the integer id, shown in exports and scores
        sa.Column("external_id", sa.String(200), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=True),
        # updated_at came from a file (else it is a load's time): only such a time makes an older row stale
        sa.Column("dated", sa.Boolean, nullable=True),
        *traits(),
    )
    history = sa.Table(
        "trait_history",
        meta,
        sa.Column("contact_id", sa.BigInteger, nullable=False),
        sa.Column("valid_from", sa.DateTime, nullable=False),
        sa.Column("valid_to", sa.DateTime, nullable=True),
        *traits(),
        sa.Index("trait_history_contact", "contact_id", "valid_from"),
    )
    orders = sa.Table(
        "orders",
        meta,
        sa.Column("order_id", sa.BigInteger, primary_key=True),
        sa.Column("contact_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("ordered_at", sa.DateTime, nullable=False),
        sa.Column("amount", sa.Float, nullable=True),
        sa.Column("product_category", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="completed"),  # core.orders
        sa.Column("refunded", sa.Float, nullable=False, server_default="0"),
    )
    truth = sa.Table(
        HIDDEN_TRUTH_TABLE,
        meta,
        sa.Column("contact_id", sa.BigInteger, primary_key=True),
        sa.Column("segment", sa.String(100), nullable=False),
    )
    return {"contacts": contacts, "trait_history": history, "orders": orders, HIDDEN_TRUTH_TABLE: truth}


# Source columns added after the source tables first shipped: (table, column, SQL type).
ADDED_SOURCE_COLUMNS = [
    ("contacts", "external_id", "VARCHAR(200)"),
    ("contacts", "dated", "BOOLEAN"),
    ("orders", "status", "VARCHAR(20) NOT NULL DEFAULT 'completed'"),
    ("orders", "refunded", "FLOAT NOT NULL DEFAULT 0"),
]


def ensure_source_columns(conn: Connection) -> None:
    """Give source tables written by an older release the columns added since (no-op when present)."""
    inspector = sa.inspect(conn)
    present_tables = set(inspector.get_table_names())
    for table, column, sql_type in ADDED_SOURCE_COLUMNS:
        if table in present_tables and column not in {c["name"] for c in inspector.get_columns(table)}:
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
            if column == "external_id":
                conn.execute(sa.text("CREATE UNIQUE INDEX contacts_external_id ON contacts (external_id)"))


def drop_sources(conn: Connection, catalog: TraitCatalog) -> None:
    for table in source_tables(catalog).values():
        table.drop(conn, checkfirst=True)


def column_types(engine: Engine, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of each column of a warehouse table, in order; empty when it does not exist."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(table):
        return []
    return [(c["name"], str(c["type"]).lower()) for c in inspector.get_columns(table)]
