"""Fixtures: a warehouse on the embedded SQLite default and on a real PostgreSQL (its own schema per test).

Helpers that tests call (row counts, sensor ticks, constants) are in helpers.py.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core.synthetic import SyntheticBase, generate
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.warehouse.engine import engine_for, forget_engines
from persona_pipeline.warehouse.sources import replace_sources
from persona_pipeline_tests.helpers import END_DATE, PG_URL, REPO, postgres_schema

BACKENDS = ["sqlite", "postgres"]
# The slowest files first (measured with --durations): under --dist loadfile a long file handed out last is
# the suite's tail, and so CI's wall time; the rest keep their order.
SLOW_FIRST = (
    "e2e/test_daemon_e2e.py",
    "dagster/test_build_faults.py",
    "e2e/test_dagster_ui.py",
    "e2e/test_distributed.py",
    "e2e/test_bad_input.py",
    "dagster/test_races.py",
    "e2e/test_database_restart.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist's workers start with SIGINT ignored, and Dagster copies SIGINT's handler onto SIGTERM after
    every run in the main thread: every process a test started afterwards then ignored SIGTERM (Dagster's
    compute-log `tail` processes cost 30 s each to give up on, and were left running)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return next((i for i, name in enumerate(SLOW_FIRST) if path.endswith(name)), len(SLOW_FIRST))

    items.sort(key=rank)


@pytest.fixture(scope="session")
def small_base() -> SyntheticBase:
    """4,000 contacts with history and orders: enough for six personas, quick to build."""
    return generate(contacts=4_000, days=30, seed=11, end_date=END_DATE)


@pytest.fixture(params=BACKENDS)
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """An empty warehouse and a private home folder and Dagster instance, on each backend."""
    monkeypatch.setenv("PERSONA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    with contextlib.ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
        else:
            url = cleanup.enter_context(postgres_schema())
        monkeypatch.setenv("PERSONA_WAREHOUSE_URL", url)
        engine = engine_for(url)
        yield engine
        engine.dispose()
        forget_engines()


@pytest.fixture
def postgres_dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Dagster instance keeping runs, events and sensor state in a fresh PostgreSQL database (deploy/dagster.yaml)."""
    database = f"dagster_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    home = tmp_path / "dagster_pg"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    base = PG_URL.rsplit("/", 1)[0]
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", f"{base}/{database}")
    yield home
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def seeded(warehouse: Engine, small_base: SyntheticBase) -> Engine:
    replace_sources(
        warehouse,
        small_base.catalog,
        small_base.contacts,
        small_base.trait_history,
        small_base.orders,
        small_base.segments,
    )
    return warehouse


@pytest.fixture
def ready(seeded: Engine) -> Engine:
    """The seeded warehouse with the persona set Customers built on the customers cohort (no study)."""
    catalog.create(seeded, "Customers", "customers")
    assert build_persona_set("Customers", lambda _: None, study=False).success
    return seeded
