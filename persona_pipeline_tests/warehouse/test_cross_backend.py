"""Determinism across warehouses: the same data and seed give the same memberships on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core.synthetic import SyntheticBase
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame, write_frame
from persona_pipeline.warehouse.engine import engine_for, forget_engines
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline.warehouse.sources import replace_sources
from persona_pipeline_tests.helpers import postgres_schema


def test_same_memberships_on_sqlite_and_postgres(
    small_base: SyntheticBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {}
    with postgres_schema() as postgres_url:
        urls = {"sqlite": f"sqlite:///{tmp_path / 'w.sqlite'}", "postgres": postgres_url}
        for backend, url in urls.items():
            monkeypatch.setenv("PERSONA_HOME", str(tmp_path / backend))
            monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / backend / "dagster"))
            monkeypatch.setenv("PERSONA_WAREHOUSE_URL", url)
            engine = engine_for(url)
            b = small_base
            replace_sources(engine, b.catalog, b.contacts, b.trait_history, b.orders, b.segments)
            catalog.create(engine, "Customers", "customers", seed=3)
            assert build_persona_set("Customers", lambda _: None).success
            record = store.get(engine, "Customers")
            results[backend] = (
                read_memberships(engine, record.id)[["contact_id", "persona_id"]],
                [p.name for p in store.read_personas(engine, record.id)],
            )
            engine.dispose()
        forget_engines()
    sqlite_members, sqlite_names = results["sqlite"]
    pg_members, pg_names = results["postgres"]
    assert sqlite_names == pg_names
    assert sqlite_members.reset_index(drop=True).equals(pg_members.reset_index(drop=True))


def test_bulk_round_trip_keeps_nulls_and_types(warehouse: sa.Engine) -> None:
    """A NULL alone on its row (a one-column read) is a row too: COPY writes it as an empty line."""
    frame = pd.DataFrame(
        {
            "contact_id": [1, 2, 3, 4],
            "state": ["CA", None, 'N,Y "q"', None],
            "score": [0.5, None, -1.25, 3.0],
            "flag": [True, False, None, True],
        }
    )
    with warehouse.begin() as conn:
        sa.Table(
            "roundtrip",
            sa.MetaData(),
            sa.Column("contact_id", sa.BigInteger),
            sa.Column("state", sa.String(20)),
            sa.Column("score", sa.Float),
            sa.Column("flag", sa.Boolean),
        ).create(conn)
        write_frame(conn, "roundtrip", frame)
    alone = read_frame(warehouse, "SELECT state FROM roundtrip ORDER BY contact_id")
    assert len(alone) == 4 and alone["state"].isna().tolist() == [False, True, False, True]
    back = read_frame(warehouse, "SELECT * FROM roundtrip ORDER BY contact_id", categorical=True)
    assert [None if pd.isna(v) else v for v in back["state"]] == ["CA", None, 'N,Y "q"', None]
    assert back["score"].isna().tolist() == [False, True, False, False]
    assert back.loc[back["flag"].notna(), "flag"].astype(bool).tolist() == [True, False, True]


def test_a_read_split_in_halves_equals_one_read(seeded: sa.Engine) -> None:
    sql = (
        "SELECT contact_id, age, state, dog_owner FROM contacts WHERE contact_id % 3 <> 0 ORDER BY contact_id"
    )
    whole = read_frame(seeded, sql, categorical=True)
    split = read_frame(seeded, sql, categorical=True, split_on="contact_id")
    assert len(whole) > 1000
    pd.testing.assert_frame_equal(whole, split, check_categorical=False)


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_forked_processes_never_share_the_parents_connections(warehouse: Engine) -> None:
    """A Celery worker's pool forks after the parent used the warehouse: each child opens its own connection."""
    backend_pid = "SELECT pg_backend_pid()"
    with warehouse.connect() as conn:
        parent = conn.execute(sa.text(backend_pid)).scalar_one()  # then back in the pool, open
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if every query ran on a connection of its own
            code = 1
            try:
                for _ in range(50):
                    with warehouse.connect() as conn:
                        mine = conn.execute(sa.text(backend_pid)).scalar_one()
                        total = conn.execute(
                            sa.text("SELECT sum(g) FROM generate_series(1, 1000) g")
                        ).scalar()
                    if mine == parent or total != 500_500:
                        break
                else:
                    code = 0
            finally:
                os._exit(code)
        children.append(pid)
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children] == [0, 0]
    with warehouse.connect() as conn:  # and the parent's own connection still works
        assert conn.execute(sa.text(backend_pid)).scalar_one() == parent
