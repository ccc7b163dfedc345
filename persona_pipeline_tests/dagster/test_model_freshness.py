"""SQL models are rebuilt when their SQL or their sources changed, and only then, on both warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import run_sql_models
from persona_pipeline.sql_models import discover, execution_order, run_models, stale_models
from persona_pipeline.warehouse import changes
from persona_pipeline.warehouse.engine import is_postgres
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline.warehouse.tables import SOURCE_TABLES

WRITES = {  # one statement per source that changes one row, each undone by its twin in the other direction
    "contacts": "UPDATE contacts SET age = age + 1 WHERE contact_id = (SELECT MIN(contact_id) FROM contacts)",
    "orders": "UPDATE orders SET amount = amount + 1 WHERE order_id = (SELECT MIN(order_id) FROM orders)",
    "trait_history": "DELETE FROM trait_history WHERE contact_id = (SELECT MAX(contact_id) FROM trait_history)",
}


def _reading(models: dict, sources: set[str]) -> set[str]:
    """The models that read any of these sources, directly or through other models."""
    hit: set[str] = set()
    for name in execution_order(models):
        model = models[name]
        if set(model.sources) & sources or set(model.refs) & hit:
            hit.add(name)
    return hit


def _write(engine: Engine, statement: str, commit: bool = True) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text(statement))
        if commit:
            conn.commit()
        else:
            conn.rollback()


def test_models_built_from_unchanged_sources_are_current(seeded: Engine) -> None:
    models = discover()
    everything = execution_order(models)
    assert stale_models(seeded, models, everything) == everything  # never built
    run_models(seeded, models)
    assert stale_models(seeded, models, everything) == []
    _write(seeded, WRITES["contacts"], commit=False)  # rolled back: nothing changed
    assert stale_models(seeded, models, everything) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(written=st.sets(st.sampled_from(sorted(WRITES))))
def test_a_write_makes_exactly_the_models_reading_it_stale(seeded: Engine, written: set[str]) -> None:
    models = discover()
    everything = execution_order(models)
    stale = stale_models(seeded, models, everything)
    if stale:
        run_models(seeded, models, stale)
    assert stale_models(seeded, models, everything) == []
    for source in sorted(written):
        _write(seeded, WRITES[source])
    stale = stale_models(seeded, models, everything)
    assert set(stale) == _reading(models, written)
    assert stale == [n for n in everything if n in stale]  # in the order they must be rebuilt


def test_dropped_table_edited_sql_and_recreated_source_are_noticed(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = discover()
    everything = execution_order(models)
    run_models(seeded, models)
    with seeded.begin() as conn:
        conn.execute(sa.text("DROP TABLE leads"))
    assert stale_models(seeded, models, everything) == ["leads"]
    run_models(seeded, models, ["leads"])

    # the same models with one cohort's SQL changed: it is stale, nothing else is
    edited = tmp_path / "sql"
    for model in models.values():
        target = edited / model.path.relative_to(model.path.parents[1])
        target.parent.mkdir(parents=True, exist_ok=True)
        text = model.template + ("\n  AND 1 = 1" if model.name == "customers" else "")
        target.write_text(text, encoding="utf-8")
    monkeypatch.setenv("PERSONA_SQL_DIR", str(edited))
    assert stale_models(seeded, discover(), everything) == ["customers"]
    monkeypatch.delenv("PERSONA_SQL_DIR")

    # a source table dropped and created again by someone else loses its trigger: counted as changed
    with seeded.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders_copy AS SELECT * FROM orders"))
        conn.execute(sa.text("DROP TABLE orders CASCADE" if is_postgres(seeded) else "DROP TABLE orders"))
        conn.execute(sa.text("CREATE TABLE orders AS SELECT * FROM orders_copy"))
    assert set(stale_models(seeded, models, everything)) == _reading(models, {"orders"})


def test_change_counts_come_from_committed_writes_by_anyone(seeded: Engine) -> None:
    before = changes.versions(seeded)
    assert set(before) == set(SOURCE_TABLES) and all(v is not None for v in before.values())
    assert changes.versions(seeded) == before  # reading them changes nothing
    _write(seeded, WRITES["orders"])
    _write(seeded, "INSERT INTO contacts (contact_id, created_at, updated_at) SELECT MAX(contact_id) + 1, "
           "MAX(created_at), MAX(updated_at) FROM contacts")  # fmt: skip
    _write(seeded, "DELETE FROM contacts WHERE contact_id = (SELECT MAX(contact_id) FROM contacts)")
    after = changes.versions(seeded)
    assert after["orders"] > before["orders"]
    assert after["contacts"] >= before["contacts"] + 2
    assert after["trait_history"] == before["trait_history"]


def test_builds_and_runs_skip_current_models(seeded: Engine) -> None:
    said: list[str] = []
    assert run_sql_models(said.append, ["customers"], changed_only=True) == (True, "")
    assert any(line.startswith("SQL models: ") and "customers" in line for line in said)
    said.clear()
    assert run_sql_models(said.append, ["customers"], changed_only=True) == (True, "")
    assert said == [
        "SQL models up to date (their SQL and sources unchanged since built): "
        "stg_contacts, stg_orders, stg_customer_value, customers"
    ]
    _write(seeded, WRITES["orders"])
    said.clear()
    assert run_sql_models(said.append, ["customers"], changed_only=True) == (True, "")
    assert any(line == "SQL models: stg_orders, stg_customer_value, customers" for line in said)


def test_a_build_without_the_cli_reads_its_cohort_as_the_data_is_now(seeded: Engine) -> None:
    """Builds launched by the sensor skip the CLI's model run: the chain itself rebuilds a stale cohort."""
    from persona_pipeline.runtime.jobs import build_persona_set
    from persona_pipeline.warehouse import persona_sets as store

    run_models(seeded, discover())
    with seeded.connect() as conn:
        lead = conn.execute(sa.text("SELECT MIN(contact_id) FROM leads")).scalar_one()
    with seeded.begin() as conn:  # the lead orders: from now on a customer
        conn.execute(
            sa.text(
                "INSERT INTO orders (order_id, contact_id, ordered_at, amount, product_category) "
                "SELECT MAX(order_id) + 1, :lead, MAX(ordered_at), 50, MIN(product_category) FROM orders"
            ),
            {"lead": lead},
        )
    catalog.create(seeded, "Leads", "leads")
    said: list[str] = []
    assert build_persona_set("Leads", said.append, refresh_models=False, study=False).success
    assert not any(line.startswith("SQL models") for line in said)  # no model run before the job
    members = read_memberships(seeded, store.get(seeded, "Leads").id)
    assert lead not in set(members["contact_id"]) and len(members) > 0
    assert stale_models(seeded, discover(), ["leads"]) == []
