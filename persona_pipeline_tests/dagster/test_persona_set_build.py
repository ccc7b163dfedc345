"""The persona set chain materialized in process through Dagster, on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core.domain import MIN_STABILITY, ClusteringMethod, PersonaSet, names_by_id
from persona_pipeline.core.synthetic import SyntheticBase
from persona_pipeline.defs.persona_sets.partitions import partition_key
from persona_pipeline.errors import PersonaSetError
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.sql_models import SqlModelError, default_models_dir, discover, run_models
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline.warehouse.sources import replace_sources
from persona_pipeline_tests.helpers import table_rows

HOSTILE_NAMES = ["x'; drop table contacts;--", "<script>alert(1)</script>"]


def _quiet(_: str) -> None:
    pass


def _build(name: str, **kwargs) -> PersonaSet:  # noqa: ANN003
    report = build_persona_set(name, _quiet, **kwargs)
    assert report.success, report.message
    return report


def test_chain_builds_named_personas(seeded: Engine) -> None:
    catalog.create(seeded, "Customers", "customers")
    _build("Customers")
    record = store.get(seeded, "Customers")
    assert record.status == "ready" and record.current_build == 1 and record.built_at is not None
    personas = store.read_personas(seeded, record.id)
    assert 2 <= len(personas) <= 10
    assert len({p.name for p in personas}) == len(personas)
    assert all(p.avatar_svg.startswith("<svg") and p.defining for p in personas)
    cohort = table_rows(seeded, "customers")
    memberships = read_memberships(seeded, record.id)
    assert len(memberships) == cohort == sum(p.population for p in personas)
    assert set(memberships["persona_id"]) == {p.persona_id for p in personas}
    assert memberships["confidence"].between(0, 1).all()
    build = store.current_build(seeded, record)
    assert 0 <= build.stability <= 1 and build.k == len(personas)

    instance = DagsterInstance.get()
    for name in ("cohort_traits", "validated_traits", "persona_model", "personas", "persona_memberships"):
        event = instance.get_latest_materialization_event(AssetKey(name))
        assert event is not None, name
        metadata = event.asset_materialization.metadata
        assert event.asset_materialization.partition == partition_key(record.id)
        if name != "persona_model":
            assert metadata["dagster/row_count"].value > 0, name
    definition = instance.get_latest_materialization_event(
        AssetKey("personas")
    ).asset_materialization.metadata
    assert "data:image/svg+xml;base64," in definition["definition"].value
    assert instance.get_latest_materialization_event(AssetKey(["cohorts", "customers"])) is not None


def test_a_users_k_is_shown_beside_the_datas_and_warned_about_when_unstable(
    seeded: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog.create(seeded, "Fine", "customers", n_personas=12)
    _build("Fine")
    build = store.current_build(seeded, store.get(seeded, "Fine"))
    assert build.k == 12 and "set by the user; the data would choose k=" in build.k_reason
    assert main(["persona-set", "show", "Fine"]) == 0
    shown = capsys.readouterr().out
    assert ("warning: split-half stability" in shown) == (build.stability < MIN_STABILITY)
    assert "set by the user" in shown  # the per-k table marks the user's k


@pytest.mark.parametrize("method", list(ClusteringMethod))
def test_rebuild_after_changes_keeps_persona_ids_and_names(
    seeded: Engine, small_base: SyntheticBase, method: ClusteringMethod
) -> None:
    catalog.create(seeded, "All", "all_contacts", method=method)
    _build("All")
    record = store.get(seeded, "All")
    before = read_memberships(seeded, record.id).set_index("contact_id")["persona_id"]
    names_before = names_by_id(store.read_personas(seeded, record.id))

    contacts = small_base.contacts.copy()
    rng = np.random.default_rng(5)
    movers = rng.choice(len(contacts), len(contacts) // 20, replace=False)
    donors = rng.choice(len(contacts), len(movers), replace=False)
    traits = small_base.catalog.names
    contacts.loc[contacts.index[movers], traits] = small_base.contacts.iloc[donors][traits].to_numpy()
    replace_sources(seeded, small_base.catalog, contacts, small_base.trait_history, small_base.orders)

    _build("All")
    after = read_memberships(seeded, record.id).set_index("contact_id")["persona_id"]
    assert store.get(seeded, "All").current_build == 2
    assert (after.reindex(before.index) == before).mean() >= 0.95
    assert names_by_id(store.read_personas(seeded, record.id)) == names_before

    # the figure counts against what each contact was told last time, split by whether its traits changed
    old, new = small_base.contacts[traits], contacts[traits]
    differs = ~((old == new) | (old.isna() & new.isna())).all(axis=1).to_numpy()
    changed_ids = set(contacts["contact_id"].to_numpy()[differs].tolist())
    figure = store.current_build(seeded, store.get(seeded, "All")).identity_figure
    kept = after.reindex(before.index) == before
    is_changed = before.index.isin(list(changed_ids))
    assert figure.changed == len(changed_ids) and figure.unchanged == len(before) - len(changed_ids)
    assert figure.unchanged_kept == int(kept[~is_changed].sum()) and figure.changed_kept == int(
        kept[is_changed].sum()
    )
    assert figure.unchanged_share >= 0.95 and figure.joined == figure.left == figure.unknown == 0


def _spoil_ages(engine: Engine, share: float) -> list[int]:
    ids = read_frame(engine, "SELECT contact_id FROM customers ORDER BY contact_id")["contact_id"].tolist()
    bad = ids[: int(len(ids) * share)]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE contacts SET age = 500 WHERE contact_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)), {"ids": bad})  # fmt: skip
    return bad


def test_bad_rows_are_quarantined_and_too_many_stop_the_build(seeded: Engine) -> None:
    catalog.create(seeded, "Customers", "customers")
    _build("Customers")
    record = store.get(seeded, "Customers")
    good_memberships = read_memberships(seeded, record.id)

    bad = _spoil_ages(seeded, 0.02)
    _build("Customers")
    quarantined = read_frame(seeded, "SELECT * FROM quarantine WHERE build = 2")
    assert sorted(quarantined["contact_id"].astype(int)) == sorted(bad)
    assert set(quarantined["column"]) == {"age"} and quarantined["reason"].str.contains("outside").all()
    assert not set(bad) & set(read_memberships(seeded, record.id)["contact_id"])

    _spoil_ages(seeded, 0.10)
    report = build_persona_set("Customers", _quiet)
    assert not report.success
    record = store.get(seeded, "Customers")
    assert record.status == "errored"
    assert "failed validation" in record.error and "age" in record.error and "quarantine" in record.error
    assert record.current_build == 2  # the stored personas and memberships are the last good ones
    assert len(read_memberships(seeded, record.id)) == len(good_memberships) - len(bad)

    report = build_persona_set("Customers", _quiet, max_quarantine_share=0.5)
    assert report.success and store.get(seeded, "Customers").current_build == 3  # builds count completed ones


def test_hostile_names_are_stored_verbatim_and_harm_nothing(seeded: Engine) -> None:
    contacts_before = table_rows(seeded, "contacts")
    for name in HOSTILE_NAMES:
        catalog.create(seeded, name, "high_value_customers", n_personas=2)
        _build(name)
        assert store.get(seeded, name).status == "ready"
    assert [r.name for r in store.list_all(seeded)] == HOSTILE_NAMES
    assert table_rows(seeded, "contacts") == contacts_before
    with pytest.raises(PersonaSetError, match="exists already"):
        catalog.create(seeded, HOSTILE_NAMES[0], "customers")


def _models_dir_with(tmp_path: Path, extra: dict[str, str]) -> Path:
    root = tmp_path / "models"
    shutil.copytree(default_models_dir(), root)
    for name, sql in extra.items():
        (root / "cohorts" / f"{name}.sql").write_text(sql, encoding="utf-8")
    return root


def test_empty_small_and_failing_cohorts_are_clear_errors(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _models_dir_with(
        tmp_path,
        {
            "nobody": "SELECT contact_id FROM {{ ref('stg_contacts') }} WHERE contact_id < 0",
            "three": "SELECT contact_id FROM {{ ref('stg_contacts') }} WHERE contact_id <= 3",
            "broken": "SELECT contact_id FROM {{ ref('stg_contacts') }} WHERE no_such_column = 1",
        },
    )
    monkeypatch.setenv("PERSONA_SQL_DIR", str(root))
    catalog.create(seeded, "Empty", "nobody")
    lines: list[str] = []
    report = build_persona_set("Empty", lines.append)
    assert not report.success and "cohort is empty" in report.message
    # the failed step once, no line per step that then did not run
    assert any("cohort_traits" in line and "failed" in line for line in lines)
    assert not any("Not executing" in line for line in lines), lines
    assert report.message.startswith("the cohort is empty")  # the user's sentence, no class name before it
    assert store.get(seeded, "Empty").status == "errored"

    catalog.create(seeded, "Tiny", "three", n_personas=5)
    report = build_persona_set("Tiny", _quiet)
    assert not report.success and "fewer than the 5 personas" in store.get(seeded, "Tiny").error

    catalog.create(seeded, "Broken", "broken")
    report = build_persona_set("Broken", _quiet)
    assert not report.success
    assert "broken.sql" in report.message and "the SQL failed" in report.message
    with pytest.raises(SqlModelError, match="unknown cohort 'nope'"):
        build_persona_set(catalog.create(seeded, "Nope", "nope").name, _quiet)


def test_unknown_traits_and_constant_traits(seeded: Engine) -> None:
    with seeded.begin() as conn:
        conn.execute(sa.text("UPDATE contacts SET urbanicity = 'urban'"))
    catalog.create(seeded, "Chosen", "customers", traits=["age", "urbanicity"])
    report = build_persona_set("Chosen", _quiet)
    assert not report.success and "urbanicity" in report.message and "single value" in report.message
    catalog.create(seeded, "Defaults", "customers")
    _build("Defaults")
    model = store.current_build(seeded, store.get(seeded, "Defaults")).model
    assert '"name": "urbanicity"' not in model


def test_wrong_types_infinities_and_missing_columns_in_the_warehouse(seeded: Engine) -> None:
    """A user's own contacts table may hold text where numbers belong, or infinities; a column may be gone."""
    run_models(seeded, discover())
    ids = read_frame(seeded, "SELECT contact_id FROM customers ORDER BY contact_id")["contact_id"].tolist()[
        :3
    ]
    with seeded.begin() as conn:
        if seeded.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE contacts ALTER COLUMN age TYPE text USING age::text"))
        conn.execute(sa.text("UPDATE contacts SET age = 'forty' WHERE contact_id = :id"), {"id": ids[0]})
        conn.execute(
            sa.text("UPDATE contacts SET household_income = :inf WHERE contact_id = :id"),
            {"inf": float("inf"), "id": ids[1]},
        )
    catalog.create(seeded, "Typed", "customers")
    _build("Typed")
    quarantined = read_frame(
        seeded, 'SELECT contact_id, "column", reason FROM quarantine ORDER BY contact_id'
    )
    reasons = {(int(r.contact_id), r.column): r.reason for r in quarantined.itertuples()}
    assert reasons[(ids[0], "age")].startswith("wrong type")
    assert "finite" in reasons[(ids[1], "household_income")]
    assert ids[2] in set(read_memberships(seeded, store.get(seeded, "Typed").id)["contact_id"])

    with seeded.begin() as conn:
        conn.execute(sa.text("ALTER TABLE contacts DROP COLUMN gaming"))
    report = build_persona_set("Typed", _quiet)
    assert not report.success and "no column gaming" in report.message
    assert store.get(seeded, "Typed").current_build == 1


def test_a_latent_class_set_is_built_shown_and_switched_back(
    seeded: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """The method is part of the definition: chosen at create, stored, used by the build, shown in the CLI
    and Dagster; changing it queues a rebuild that keeps the personas' ids."""
    assert (
        main(["persona-set", "create", "--name", "LC", "--cohort", "customers", "--method", "latent-class"])
        == 0
    )
    with pytest.raises(SystemExit) as usage:  # argparse's usage error: exit 2, one line naming the choices
        main(["persona-set", "create", "--name", "X", "--cohort", "customers", "--method", "gmm"])
    assert usage.value.code == 2
    assert "invalid choice: 'gmm'" in capsys.readouterr().err
    with pytest.raises(PersonaSetError, match="--method must be one of k-means, latent-class"):
        catalog.create(seeded, "Y", "customers", method="gmm")
    _build("LC")
    record = store.get(seeded, "LC")
    assert record.method == "latent-class"
    build = store.current_build(seeded, record)
    assert '"method": "latent-class"' in build.model
    memberships = read_memberships(seeded, record.id)
    assert memberships["confidence"].between(0, 1).all() and memberships["persona_id"].nunique() == build.k
    metadata = DagsterInstance.get().get_latest_materialization_event(AssetKey("persona_model"))
    assert metadata.asset_materialization.metadata["method"].value == "latent-class"
    capsys.readouterr()
    assert main(["persona-set", "show", "LC"]) == 0
    shown = capsys.readouterr().out
    assert "method latent-class" in shown and "lowest ICL" in shown and "ICL per contact" in shown
    assert f"build 1 (latent-class): {build.k} personas" in shown
    assert "k_scores" in metadata.asset_materialization.metadata
    assert "ICL per contact" in metadata.asset_materialization.metadata["k_scores"].value

    assert main(["persona-set", "update", "LC", "--method", "k-means"]) == 0
    assert store.get(seeded, "LC").status == "queued"
    capsys.readouterr()
    assert main(["persona-set", "show", "LC"]) == 0  # the next build's method, and the one being served
    shown = capsys.readouterr().out
    assert "method k-means · status queued" in shown and "build 1 (latent-class)" in shown
    assert main(["persona-set", "list"]) == 0
    assert "k-means" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("LC "))
    _build("LC")
    after = store.get(seeded, "LC")
    assert after.method == "k-means" and '"method": "k-means"' in store.current_build(seeded, after).model
    moved = read_memberships(seeded, record.id).set_index("contact_id")["persona_id"]
    assert (
        moved.reindex(memberships["contact_id"]).to_numpy() == memberships["persona_id"].to_numpy()
    ).mean() >= 0.5
