"""Bring your own data: typed by a trait catalog, every rejected row reported, failed loads change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.errors import LoadError
from persona_pipeline.loading import load_files
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.trait_catalog import load_catalog
from persona_pipeline_tests.helpers import table_rows

CATALOG = """traits:
  - {name: age, kind: numeric, min: 18, max: 100, labels: {high: Seasoned, low: Young}}
  - {name: spend, kind: numeric, min: 0}
  - {name: region, kind: categorical, levels: [north, south], labels: {north: Northern, south: Southern}}
  - {name: pet_owner, kind: boolean, labels: {true: Pet-Loving}}
"""


def _catalog(tmp_path: Path) -> Path:
    path = tmp_path / "traits.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return path


def _people(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    young = rng.random(n) < 0.5
    return pd.DataFrame(
        {
            "contact_id": np.arange(1, n + 1),
            "age": np.where(young, rng.normal(25, 3, n), rng.normal(65, 5, n)).round(0),
            "spend": np.where(young, rng.normal(50, 10, n), rng.normal(400, 40, n)).round(2),
            "region": np.where(young, "north", "south"),
            "pet_owner": np.where(young, "no", "yes"),
            "created_at": "03/02/2025",
        }
    )


def test_load_reports_each_rejected_row_and_keeps_the_rest(warehouse: Engine, tmp_path: Path) -> None:
    frame = _people().astype(object)
    frame.loc[0, "age"] = "forty"
    frame.loc[1, "region"] = "east"
    frame.loc[2, "pet_owner"] = "sometimes"
    frame.loc[3, "age"] = 150
    frame.loc[4, "contact_id"] = 6  # duplicates the id on line 7
    frame.loc[5, "spend"] = "inf"
    frame.loc[10, "region"] = "North"  # case: normalize would match it
    frame.loc[11, "region"] = "sotuh"  # a typo: the level it is closest to
    text = frame.to_csv(index=False, sep=";").replace(".", ",")  # a European export: ';' and decimal commas
    (tmp_path / "contacts.csv").write_text(text, encoding="utf-8")
    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4],
            "contact_id": [10, 11, 9999, 12],
            "ordered_at": ["01/03/2025", "02/03/2025", "03/03/2025", "04/03/2025"],
            "amount": ["12,50", "-3", "8", ""],
            "product_category": ["books", "toys", "books", "toys"],
        }
    )
    (tmp_path / "orders.csv").write_text(orders.to_csv(index=False, sep=";"), encoding="utf-8")
    report = load_files(
        warehouse,
        tmp_path / "contacts.csv",
        _catalog(tmp_path),
        orders_path=tmp_path / "orders.csv",
        date_format="%d/%m/%Y",
        rejects_path=tmp_path / "rejects.csv",
        max_reject_share=1.0,  # this file is meant to be mostly broken
    )
    assert "delimiter ';'" in report.notes[0] and "decimal mark ','" in report.notes[0]
    # printed by problem, each with its first line; the file lists every row
    printed = report.lines()
    assert "  1 row of contacts.csv, column 'age': not a number (value 'forty', first on line 2)" in printed
    assert any(
        line.startswith("  1 row of contacts.csv, column 'region'") and "line 13" in line for line in printed
    )
    rejected = pd.read_csv(tmp_path / "rejects.csv")
    by_line = {(r.file, r.line, r.column): r.reason for r in rejected.itertuples()}
    assert by_line[("contacts.csv", 2, "age")] == "not a number"
    assert "not a declared level" in by_line[("contacts.csv", 3, "region")]
    assert "normalize" not in by_line[("contacts.csv", 3, "region")]  # 'east' is no case of any level
    assert "add `normalize: true`" in by_line[("contacts.csv", 12, "region")]
    assert "(did you mean 'south'?)" in by_line[("contacts.csv", 13, "region")]
    assert "not a boolean" in by_line[("contacts.csv", 4, "pet_owner")]
    assert "above the declared maximum 100" in by_line[("contacts.csv", 5, "age")]
    assert (
        "duplicate" in by_line[("contacts.csv", 6, "contact_id")]
        and ("contacts.csv", 7, "contact_id") in by_line
    )
    assert "finite" in by_line[("contacts.csv", 7, "spend")]
    assert "no stored or loaded contact" in by_line[("orders.csv", 4, "contact_id")]
    assert by_line[("orders.csv", 3, "amount")] == "negative amount"
    assert by_line[("orders.csv", 5, "amount")] == "missing amount (only a cancelled order may have none)"
    assert report.contacts == 300 - 8 and table_rows(warehouse, "contacts") == 292  # lines 2..7, 12, 13
    assert report.orders == 1 and table_rows(warehouse, "orders") == 1
    stored = read_frame(warehouse, "SELECT * FROM contacts WHERE contact_id = 10")
    assert stored["spend"].iloc[0] == pytest.approx(float(_people().loc[9, "spend"]))
    assert str(stored["created_at"].iloc[0])[:10] == "2025-02-03"
    assert load_catalog(warehouse).names == ["age", "spend", "region", "pet_owner"]


def test_failed_loads_change_nothing(warehouse: Engine, tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    good = tmp_path / "good.csv"
    _people().to_csv(good, index=False)
    load_files(warehouse, good, catalog, date_format="%d/%m/%Y")
    before = read_frame(warehouse, "SELECT * FROM contacts ORDER BY contact_id")

    semicolons = tmp_path / "semicolons.csv"
    _people(50).to_csv(semicolons, index=False, sep=";")
    with pytest.raises(LoadError, match=r"missing column.*pass --delimiter ';'"):
        load_files(warehouse, semicolons, catalog, delimiter=",", date_format="%d/%m/%Y")

    latin = tmp_path / "latin.csv"
    latin.write_bytes(_people(5).to_csv(index=False).replace("north", "nörth").encode("latin-1"))
    with pytest.raises(LoadError, match=r"line \d+ is not valid utf-8.*--encoding latin-1"):
        load_files(warehouse, latin, catalog, date_format="%d/%m/%Y")

    # a row with a field too many (an unquoted decimal comma) or too few would put its values under the wrong
    # columns; the survey passes read only a few columns, where pandas checks no row's length
    lines = _people(40).to_csv(index=False).splitlines()
    for number, broken, fields in (
        (7, lines[6].replace(".", ",", 1), 7),
        (31, lines[30].rsplit(",", 1)[0], 5),
    ):
        misaligned = tmp_path / f"misaligned-{number}.csv"
        misaligned.write_text(
            "\n".join([*lines[: number - 1], broken, *lines[number:]]) + "\n", encoding="utf-8"
        )
        with pytest.raises(
            LoadError, match=rf"line {number} has {fields} fields but the header has 6.*nothing was changed"
        ):
            load_files(warehouse, misaligned, catalog, date_format="%d/%m/%Y")

    hopeless = tmp_path / "hopeless.csv"
    _people(5).assign(age="old").to_csv(hopeless, index=False)
    with pytest.raises(LoadError, match="no row could be loaded.*nothing was changed"):
        load_files(warehouse, hopeless, catalog, date_format="%d/%m/%Y")
    pd.testing.assert_frame_equal(read_frame(warehouse, "SELECT * FROM contacts ORDER BY contact_id"), before)


def test_loaded_parquet_builds_personas_from_the_users_catalog(warehouse: Engine, tmp_path: Path) -> None:
    people = _people().assign(
        pet_owner=lambda f: f["pet_owner"] == "yes", created_at=pd.Timestamp("2025-02-03")
    )
    people.to_parquet(tmp_path / "people.parquet")
    assert main(["load", str(tmp_path / "people.parquet"), "--traits", str(_catalog(tmp_path))]) == 0
    assert main(["persona-set", "create", "--name", "People", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "People"]) == 0
    personas = store.read_personas(warehouse, store.get(warehouse, "People").id)
    assert len(personas) == 2
    names = sorted(p.name for p in personas)
    assert any("Northern" in n or "Young" in n for n in names) and any(
        "Southern" in n or "Seasoned" in n for n in names
    )
    assert sorted(p.population for p in personas) == sorted(people["region"].value_counts().tolist())


def test_each_file_has_its_own_decimal_mark(warehouse: Engine, tmp_path: Path) -> None:
    """Contacts exported with decimal commas, orders with decimal points: 71.08 stays 71.08, never 7108."""
    text = _people(50).assign(created_at="2025-02-03").to_csv(index=False, sep=";").replace(".", ",")
    (tmp_path / "contacts.csv").write_text(text, encoding="utf-8")
    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 3],
            "contact_id": [1, 2, 3],
            "ordered_at": ["2025-03-01", "2025-03-02", "2025-03-03"],
            "amount": ["71.08", "1200.5", "3"],
            "product_category": ["books", "toys", "books"],
        }
    )
    (tmp_path / "orders.csv").write_text(orders.to_csv(index=False), encoding="utf-8")
    report = load_files(
        warehouse, tmp_path / "contacts.csv", _catalog(tmp_path), orders_path=tmp_path / "orders.csv"
    )
    assert report.contacts == 50 and report.orders == 3 and report.rejects.empty
    stored = read_frame(warehouse, "SELECT order_id, amount FROM orders ORDER BY order_id")
    assert stored["amount"].tolist() == [71.08, 1200.5, 3.0]
