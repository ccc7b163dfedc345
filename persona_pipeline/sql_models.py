"""dbt-like SQL models: SELECT files with {{ ref('name') }}, run in dependency order as warehouse tables.

Macros: ref('model') and source('table') resolve to quoted table names and give lineage;
counted_order(alias) and net_amount(alias) state what counts as an order (core/orders.py);
days_before(expression, n) is the one piece of date arithmetic that differs between SQLite and PostgreSQL;
config(materialized='view') makes a model a view (staging models: no copy, always current) instead of a table.
"""

from __future__ import annotations

import datetime as dt
import graphlib
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.config import sql_dir
from persona_pipeline.core.domain import did_you_mean
from persona_pipeline.core.orders import counted_order_sql, net_amount_sql
from persona_pipeline.errors import SqlModelError
from persona_pipeline.warehouse import changes
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.tables import SOURCE_TABLES, ensure_catalog_tables, sql_model_state

MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COHORT_FOLDER = "cohorts"


@dataclass(frozen=True)
class SqlModel:
    name: str
    path: Path
    folder: str
    template: str
    refs: tuple[str, ...] = field(default=())
    sources: tuple[str, ...] = field(default=())
    materialized: str = "table"  # or "view", set in the file with {{ config(materialized='view') }}

    @property
    def is_cohort(self) -> bool:
        return self.folder == COHORT_FOLDER


def default_models_dir() -> Path:
    configured = sql_dir()
    if configured:
        return configured
    beside_package = Path(__file__).resolve().parent.parent / "dbt_like_sql"
    return beside_package if beside_package.is_dir() else Path("dbt_like_sql").resolve()


def _environment(
    on_ref: Callable[[str], str],
    on_source: Callable[[str], str],
    dialect: str,
    on_config: Callable[..., str] = lambda **_: "",
) -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - SQL, not HTML

    def days_before(expression: str, days: int) -> str:
        days = int(days)
        if dialect == "postgresql":
            return f"({expression} - INTERVAL '{days} days')"
        return f"datetime({expression}, '-{days} days')"

    env.globals.update(
        ref=on_ref,
        source=on_source,
        days_before=days_before,
        config=on_config,
        counted_order=counted_order_sql,  # the one rule for what counts as an order (core/orders.py)
        net_amount=net_amount_sql,
    )
    return env


def _scan(path: Path, text: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """The refs, sources and materialization of a template, found by rendering it with recording stand-ins."""
    refs: list[str] = []
    sources: list[str] = []
    settings = {"materialized": "table"}

    def record_config(**kwargs: str) -> str:
        settings.update({k: str(v) for k, v in kwargs.items()})
        return ""

    def record_ref(name: str) -> str:
        refs.append(str(name))
        return "__ref__"

    def record_source(name: str) -> str:
        sources.append(str(name))
        return "__source__"

    try:
        _environment(record_ref, record_source, "sqlite", record_config).from_string(text).render()
    except jinja2.TemplateError as exc:
        raise SqlModelError(f"{path}: template error: {exc}") from exc
    if settings["materialized"] not in ("table", "view"):
        raise SqlModelError(
            f"{path}: materialized must be 'table' or 'view', not {settings['materialized']!r}"
        )
    return tuple(dict.fromkeys(refs)), tuple(dict.fromkeys(sources)), settings["materialized"]


def discover(root: Path | None = None) -> dict[str, SqlModel]:
    """Every model under root, checked: unique names, known refs and sources, no cycles."""
    root = root or default_models_dir()
    if not root.is_dir():
        raise SqlModelError(
            f"{root}: no SQL models folder; set PERSONA_SQL_DIR to the folder holding dbt_like_sql"
        )
    models: dict[str, SqlModel] = {}
    for path in sorted(root.rglob("*.sql")):
        name = path.stem
        if not MODEL_NAME.match(name):
            raise SqlModelError(
                f"{path}: model names must be lower case letters, digits and '_' (got {name!r})"
            )
        if name in models:
            raise SqlModelError(f"{path}: a model named {name!r} exists already at {models[name].path}")
        if name in SOURCE_TABLES:
            raise SqlModelError(f"{path}: {name!r} is a source table's name; rename the model")
        text = path.read_text(encoding="utf-8")
        refs, sources, materialized = _scan(path, text)
        folder = path.parent.relative_to(root).parts[0] if path.parent != root else ""
        models[name] = SqlModel(name, path, folder, text, refs, sources, materialized)
    for model in models.values():
        for ref in model.refs:
            if ref not in models:
                raise SqlModelError(
                    f"{model.path}: ref('{ref}') names no model; known models: {', '.join(sorted(models))}"
                )
        for source in model.sources:
            if source not in SOURCE_TABLES:
                raise SqlModelError(
                    f"{model.path}: source('{source}') is not a source table; use one of {', '.join(SOURCE_TABLES)}"
                )
    execution_order(models)
    return models


def execution_order(models: dict[str, SqlModel], only: list[str] | None = None) -> list[str]:
    """Models in dependency order; with `only`, just those and everything they need."""
    sorter = graphlib.TopologicalSorter({name: set(m.refs) for name, m in models.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        files = " -> ".join(str(models[n].path) for n in cycle if n in models)
        raise SqlModelError(f"the SQL models form a cycle: {files}; remove one of these refs") from exc
    if only is None:
        return order
    unknown = [n for n in only if n not in models]
    if unknown:
        raise SqlModelError(
            f"no SQL model named {', '.join(map(repr, unknown))}{did_you_mean(unknown[0], models)}; the models "
            f"are {', '.join(sorted(models))}"
        )
    needed: set[str] = set()
    stack = list(only)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(models[name].refs)
    return [n for n in order if n in needed]


def render(model: SqlModel, engine: Engine) -> str:
    env = _environment(lambda n: quote(engine, str(n)), lambda n: quote(engine, str(n)), engine.dialect.name)
    return env.from_string(model.template).render().strip().rstrip(";")


def _drop(conn: sa.Connection, name: str) -> None:
    """Drop a model's table or view, whichever it is now (a model may change its materialization)."""
    inspector = sa.inspect(conn)
    quoted = quote(conn.engine, name)
    if name in inspector.get_view_names():
        conn.execute(sa.text(f"DROP VIEW {quoted}"))
    elif inspector.has_table(name):
        conn.execute(sa.text(f"DROP TABLE {quoted}"))


def fingerprints(engine: Engine, models: dict[str, SqlModel], names: list[str]) -> dict[str, str | None]:
    """For these models and what they need: a hash of what a rebuild now would be built from.

    That is the model's SQL, the change counts of its sources, what its upstream tables were last built from
    (a table holds the data of its last build) and the same, recursively, for upstream views (a view is live).
    None where an input cannot be known: such a model is always rebuilt.
    """
    order = execution_order(models, names)
    sources = sorted({s for n in order for s in models[n].sources})
    counts = changes.versions(engine, sources) if sources else {}
    built = _built_from(engine)
    result: dict[str, str | None] = {}
    for name in order:
        model = models[name]
        inputs = [result[r] if models[r].materialized == "view" else built.get(r) for r in model.refs] + [
            counts[s] for s in model.sources
        ]
        if any(value is None for value in inputs):
            result[name] = None
            continue
        described = [model.materialized, render(model, engine), *model.refs, *model.sources, *inputs]
        result[name] = hashlib.sha256(json.dumps(described).encode()).hexdigest()
    return result


def stale_models(engine: Engine, models: dict[str, SqlModel], names: list[str]) -> list[str]:
    """These models and what they need, in order, keeping those a rebuild would change (or that are missing)."""
    current = fingerprints(engine, models, names)
    built = _built_from(engine)
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    stale: list[str] = []
    for name in execution_order(models, names):
        if (
            current[name] is None
            or built.get(name) != current[name]
            or name not in present
            or any(r in stale for r in models[name].refs)
        ):
            stale.append(name)
    return stale


def refresh_stale(engine: Engine, names: list[str]) -> list[str]:
    """Rebuild, in order, those of these models (and what they need) that are stale; returns their names.

    For work that reads cohorts without the CLI's model run before it (runs the sensors launch): it must
    still see the data as it is now, e.g. a contact added since the cohort was built.
    """
    models = discover()
    stale = stale_models(engine, models, names)
    for name in stale:
        run_model(engine, models[name], models)
    return stale


def _built_from(engine: Engine) -> dict[str, str]:
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(sql_model_state.c.model, sql_model_state.c.fingerprint)).tuples().all()
        )


def run_model(engine: Engine, model: SqlModel, models: dict[str, SqlModel]) -> int:
    """Rebuild one model's table (or view); on any error the previous one stays as it was.

    What it was built from is recorded in the same transaction (taken before the build: a write that lands
    meanwhile makes the model look changed next time, never unchanged).
    """
    fingerprint = fingerprints(engine, models, [model.name])[model.name]
    sql = render(model, engine)
    target = quote(engine, model.name)
    staging = quote(engine, f"{model.name}__building")
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.begin() as conn:
            if postgres:  # one rebuild of a model at a time: two would race for its __building table
                key = int(hashlib.sha256(model.name.encode()).hexdigest()[:15], 16)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            if model.materialized == "view":
                if postgres and model.name in sa.inspect(conn).get_view_names():
                    # views that depend on this one stay valid: PostgreSQL replaces in place
                    conn.execute(sa.text(f"CREATE OR REPLACE VIEW {target} AS {sql}"))
                else:
                    _drop(conn, model.name)
                    conn.execute(sa.text(f"CREATE VIEW {target} AS {sql}"))
                columns = [c["name"] for c in sa.inspect(conn).get_columns(model.name)]
            else:
                _drop(conn, f"{model.name}__building")
                conn.execute(sa.text(f"CREATE TABLE {staging} AS {sql}"))
                columns = [c["name"] for c in sa.inspect(conn).get_columns(f"{model.name}__building")]
            if model.is_cohort and "contact_id" not in columns:
                raise SqlModelError(
                    f"{model.path}: a cohort must return a contact_id column; it returns {', '.join(columns)}"
                )
            if model.materialized == "table":
                _drop(conn, model.name)
                conn.execute(sa.text(f"ALTER TABLE {staging} RENAME TO {target}"))
                if "contact_id" in columns:  # cohorts are joined and range-scanned on it everywhere
                    index = quote(engine, f"{model.name}__contact_id"[:63])
                    conn.execute(sa.text(f"CREATE INDEX {index} ON {target} (contact_id)"))
                if postgres:
                    conn.execute(sa.text(f"ANALYZE {target}"))  # statistics, so joins on the model plan well
            rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {target}")).scalar_one()  # noqa: S608 - quoted
            conn.execute(sql_model_state.delete().where(sql_model_state.c.model == model.name))
            if fingerprint is not None:
                conn.execute(
                    sql_model_state.insert().values(
                        model=model.name,
                        fingerprint=fingerprint,
                        built_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
                    )
                )
    except sa.exc.DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise SqlModelError(f"{model.path}: the SQL failed: {detail}") from exc
    return int(rows)


def run_models(engine: Engine, models: dict[str, SqlModel], only: list[str] | None = None) -> dict[str, int]:
    return {name: run_model(engine, models[name], models) for name in execution_order(models, only)}


def cohort_names(models: dict[str, SqlModel]) -> list[str]:
    return sorted(name for name, m in models.items() if m.is_cohort)


def require_cohort(models: dict[str, SqlModel], cohort: str) -> SqlModel:
    if cohort not in models or not models[cohort].is_cohort:
        raise SqlModelError(
            f"unknown cohort {cohort!r}{did_you_mean(cohort, cohort_names(models))}; cohorts are the files in "
            f"dbt_like_sql/{COHORT_FOLDER}/: "
            f"{', '.join(cohort_names(models)) or 'none'}"
        )
    return models[cohort]


def _sources_read(models: dict[str, SqlModel], name: str) -> set[str]:
    """Every source table a model reads, through its refs."""
    model = models[name]
    found = set(model.sources)
    for ref in model.refs:
        found |= _sources_read(models, ref)
    return found


def explain_empty_cohort(engine: Engine, cohort: str) -> str:
    """Why a cohort may select nobody, in one line: what it is, what it reads, and what the warehouse holds."""
    try:
        models = discover()
    except SqlModelError:
        models = {}
    model = models.get(cohort)
    comment = ""
    if model is not None:
        first = model.template.strip().splitlines()[0] if model.template.strip() else ""
        comment = f" ({first.lstrip('-').strip()})" if first.startswith("--") else ""
    read = _sources_read(models, cohort) if model is not None else set()
    present = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        contacts = (
            conn.execute(sa.text("SELECT COUNT(*) FROM contacts")).scalar() if "contacts" in present else 0
        )
        orders = counted = 0
        if "orders" in present:
            orders = conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar()
            counted = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM orders o WHERE {counted_order_sql('o')}")  # noqa: S608 - fixed SQL
            ).scalar()
    line = (
        f"the cohort is empty: {cohort!r}{comment} selects no contact; the warehouse holds {contacts:,} contacts and "
        f"{orders:,} orders, {counted:,} of which count (not cancelled, net amount above zero)"
    )
    if "orders" in read and not counted:
        return (
            f"{line}. This cohort reads orders: load them with `persona-pipeline load --orders FILE`, "
            "or choose a cohort that needs none, such as all_contacts"
        )
    return f"{line}. Check the cohort's SQL ({model.path if model else cohort}) against the data"
