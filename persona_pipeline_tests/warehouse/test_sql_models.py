"""dbt-like SQL models: refs, dependency order, clear errors naming the file, on both warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from persona_pipeline.sql_models import (
    SqlModelError,
    cohort_names,
    discover,
    execution_order,
    run_model,
    run_models,
)
from persona_pipeline_tests.helpers import table_rows


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, sql in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql, encoding="utf-8")
    return root


def test_shipped_models_are_ordered_by_their_refs() -> None:
    models = discover()
    order = execution_order(models)
    for name, model in models.items():
        assert all(order.index(ref) < order.index(name) for ref in model.refs)
    assert {"customers", "recent_customers", "high_value_customers", "leads", "all_contacts"} <= set(
        cohort_names(models)
    )
    assert execution_order(models, ["leads"]) == ["stg_contacts", "stg_orders", "stg_customer_value", "leads"]


def test_cycle_names_the_files(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {"a/one.sql": "SELECT * FROM {{ ref('two') }}", "a/two.sql": "SELECT * FROM {{ ref('one') }}"},
    )
    with pytest.raises(SqlModelError, match=r"cycle: .*one\.sql.*two\.sql|cycle: .*two\.sql.*one\.sql"):
        discover(root)


def test_unknown_ref_and_template_errors_name_the_file(tmp_path: Path) -> None:
    root = _write(tmp_path / "r", {"cohorts/c.sql": "SELECT contact_id FROM {{ ref('missing') }}"})
    with pytest.raises(SqlModelError, match=r"c\.sql: ref\('missing'\) names no model"):
        discover(root)
    root = _write(tmp_path / "t", {"cohorts/c.sql": "SELECT {{ ref('x' }}"})
    with pytest.raises(SqlModelError, match=r"c\.sql: template error"):
        discover(root)
    root = _write(tmp_path / "s", {"cohorts/c.sql": "SELECT contact_id FROM {{ source('secrets') }}"})
    with pytest.raises(SqlModelError, match=r"c\.sql: source\('secrets'\) is not a source table"):
        discover(root)


def test_models_run_on_the_warehouse(seeded: Engine) -> None:
    counts = run_models(seeded, discover())
    contacts = table_rows(seeded, "contacts")
    assert counts["all_contacts"] == contacts
    assert counts["customers"] + counts["leads"] == contacts
    assert 0 < counts["recent_customers"] <= counts["customers"]
    assert 0 < counts["high_value_customers"] < counts["customers"]


def test_failing_sql_keeps_the_previous_table(seeded: Engine, tmp_path: Path) -> None:
    good = _write(
        tmp_path / "good",
        {"cohorts/picked.sql": "SELECT contact_id FROM {{ source('contacts') }} WHERE contact_id <= 10"},
    )
    run_model(seeded, discover(good)["picked"], discover(good))
    bad = _write(
        tmp_path / "bad",
        {"cohorts/picked.sql": "SELECT contact_id FROM {{ source('contacts') }} WHERE nope > 1"},
    )
    with pytest.raises(SqlModelError, match=r"picked\.sql: the SQL failed"):
        run_model(seeded, discover(bad)["picked"], discover(bad))
    assert table_rows(seeded, "picked") == 10
    no_id = _write(tmp_path / "noid", {"cohorts/picked.sql": "SELECT age FROM {{ source('contacts') }}"})
    with pytest.raises(SqlModelError, match="must return a contact_id column"):
        run_model(seeded, discover(no_id)["picked"], discover(no_id))
    assert table_rows(seeded, "picked") == 10
