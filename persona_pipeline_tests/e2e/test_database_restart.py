"""The warehouse restarted (`pg_ctl restart -m immediate`) while a build writes its memberships, on a private
PostgreSQL server this test starts on a port of its own (the shared server is never touched).

Afterwards nothing is left "building", the previous build still serves, and a retry builds the set.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core.synthetic import generate
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import engine_for, forget_engines
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline.warehouse.sources import replace_sources
from persona_pipeline_tests.helpers import END_DATE, sensor_tick

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres() -> None:
    user = pwd.getpwnam("postgres")
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


def _pg_ctl(data: Path, *args: str) -> None:
    """pg_ctl as postgres (it refuses root); the server logs to a file, so no pipe of ours stays open."""
    subprocess.run(
        [f"{BINARIES[-1]}/pg_ctl", "-D", str(data), "-w", "-l", str(data / "server.log"), *args],
        preexec_fn=_as_postgres,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def private_postgres() -> Iterator[tuple[str, Path]]:
    """A throwaway PostgreSQL cluster on a free port: its URL and data folder."""
    if not BINARIES or os.geteuid() != 0:
        pytest.fail("this test needs PostgreSQL's server binaries and root (to run them as 'postgres')")
    root = Path(tempfile.mkdtemp(prefix="persona_pg_", dir="/tmp"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        [f"{BINARIES[-1]}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        preexec_fn=_as_postgres,
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    _pg_ctl(data, "-o", options, "start")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", data
    finally:
        subprocess.run(
            [f"{BINARIES[-1]}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
            preexec_fn=_as_postgres,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


WAITS_IN_THE_SWITCH = """
import sys, time
from pathlib import Path
from persona_pipeline.cli import main
from persona_pipeline.warehouse import memberships

real = memberships.make_current

def waits(*args, **kwargs):
    Path({marker!r}).write_text("rows written")
    time.sleep(6)  # the test restarts the server now: the switch runs on a dead connection
    return real(*args, **kwargs)

memberships.make_current = waits
sys.exit(main(["persona-set", "build", "Customers"]))
"""


def test_a_warehouse_restart_during_the_memberships_write_leaves_nothing_building(
    private_postgres: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, data = private_postgres
    monkeypatch.setenv("PERSONA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("PERSONA_WAREHOUSE_URL", url)
    engine: Engine = engine_for(url)
    try:
        base = generate(contacts=1_500, days=10, seed=3, end_date=END_DATE)
        replace_sources(engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments)
        catalog.create(engine, "Customers", "customers", n_personas=3)
        assert build_persona_set("Customers", lambda _: None, study=False).success
        before = store.get(engine, "Customers")
        members = read_memberships(engine, before.id)

        marker = tmp_path / "switching"
        building = subprocess.Popen(
            [sys.executable, "-c", WAITS_IN_THE_SWITCH.format(marker=str(marker))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(1200):
            if marker.exists() or building.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), building.communicate()[1].decode()[-2000:]
        _pg_ctl(data, "-m", "immediate", "restart")
        out, err = building.communicate(timeout=300)
        assert building.returncode in (1, 2), err.decode()[-2000:]  # it failed, saying so
        assert "Traceback" not in err.decode()

        sensor_tick("queued_persona_sets")  # or the next command: nothing stays "building"
        after = store.get(engine, "Customers")
        assert after.status == "errored" and after.current_build == before.current_build
        assert read_memberships(engine, after.id).equals(members)  # the previous build serves, whole
        assert main(["score", "--persona-set", "Customers", "--json", '{"age": 50}']) == 0

        assert main(["persona-set", "build", "Customers"]) == 0  # and a retry works
        retried = store.get(engine, "Customers")
        assert retried.status == "ready" and retried.current_build > before.current_build
    finally:
        engine.dispose()
        forget_engines()
