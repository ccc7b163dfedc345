"""Runs on Celery: two workers, each on a host of its own, do a build's and a scoring run's steps.

Each worker runs in a network namespace of its own (a separate host to the network: its own loopback, one
virtual link) and reaches PostgreSQL and RabbitMQ through forwarders on the host's side of that link; the
launching command's home is hidden from it (a tmpfs over it, in the worker's own mount namespace), and each
has a home of its own, so a step that read another step's files would fail. Without root or `ip`, the
workers run as plain processes (still with homes of their own). The broker is a RabbitMQ virtual host of the
test's own, so no other run's workers take these steps.

Checked: memberships of a set built on the workers equal those of the same set built in one process; a
scoring run's buckets go to both workers and score every contact as the in-process run does; killing a worker
in the middle of a bucket leaves the run to finish on the other worker (the broker hands the step back), with
every contact scored once and no shadow table left; the scoring pool's limit (`dagster instance concurrency
set`) keeps a worker that could take two buckets at one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy.engine import Engine, make_url

from persona_pipeline.cli import main
from persona_pipeline.defs.scoring.jobs import SCORING_POOL
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline.warehouse.replacement import unattached_shadows
from persona_pipeline_tests.helpers import REPO

CONTACTS = int(os.environ.get("PERSONA_DISTRIBUTED_CONTACTS", "10000"))  # 200000 for the full size
TIMEOUT = 300
CLI = [str(Path(sys.executable).parent / "persona-pipeline")]
SERVICES = {"postgres": 5432, "rabbitmq": 5672}
WORKERS = ("w1", "w2")


def _can_make_hosts() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("socat") is not None


@dataclass
class Host:
    """A worker's host: its network namespace and the address it reaches the services at (else loopback)."""

    name: str
    address: str = "127.0.0.1"
    namespace: str | None = None
    forwarders: list[subprocess.Popen] = field(default_factory=list)

    def command(self, argv: list[str], hidden: list[Path]) -> list[str]:
        if self.namespace is None:
            return argv
        mounts = " && ".join(f"mount -t tmpfs tmpfs '{p}'" for p in hidden)
        return ["ip", "netns", "exec", self.namespace, "sh", "-c", f'{mounts} && exec "$@"', "sh", *argv]


@contextlib.contextmanager
def _hosts() -> Iterator[list[Host]]:
    """One host per worker: a namespace linked to this one by a veth pair, the services forwarded by socat."""
    if not _can_make_hosts():
        yield [Host(w) for w in WORKERS]
        return
    tag = os.getpid() % 10_000
    hosts = []
    try:
        for i, worker in enumerate(WORKERS, start=1):
            namespace, outside, inside = f"pp{tag}{worker}", f"pp{tag}{worker}h", f"pp{tag}{worker}n"
            subnet = f"10.{230 + i}.{tag % 250}"
            host = Host(worker, f"{subnet}.1", namespace)
            hosts.append(host)
            for step in (
                ["ip", "netns", "add", namespace],
                ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
                ["ip", "link", "set", inside, "netns", namespace],
                ["ip", "addr", "add", f"{subnet}.1/30", "dev", outside],
                ["ip", "link", "set", outside, "up"],
                ["ip", "netns", "exec", namespace, "ip", "addr", "add", f"{subnet}.2/30", "dev", inside],
                ["ip", "netns", "exec", namespace, "ip", "link", "set", inside, "up"],
                ["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"],
            ):
                subprocess.run(step, check=True, capture_output=True)
            for port in SERVICES.values():
                host.forwarders.append(
                    subprocess.Popen(
                        [
                            "socat",
                            f"TCP-LISTEN:{port},bind={host.address},fork,reuseaddr",
                            f"TCP:127.0.0.1:{port}",
                        ]
                    )
                )
        time.sleep(0.5)  # the forwarders listen
        yield hosts
    finally:
        for host in hosts:
            for forwarder in host.forwarders:
                forwarder.kill()
                forwarder.wait()
            subprocess.run(["ip", "netns", "del", host.namespace or ""], capture_output=True)


@contextlib.contextmanager
def _virtual_host() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own (guest may use it), deleted after."""
    vhost = f"persona_test_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
    try:
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        yield vhost
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True)


def _at(url: str, address: str) -> str:
    """`url` with its host replaced by the address a worker reaches the service at."""
    return make_url(url).set(host=address).render_as_string(hide_password=False)


@dataclass
class Worker:
    host: Host
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL to the worker and its pool: a host that dies, not a worker that shuts down."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def _wait(what: str, condition: Callable[[], bool], logs: list[Path]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {TIMEOUT}s waiting for {what}\n{tails}")


@contextlib.contextmanager
def _held_run(
    warehouse: Engine, environment: dict[str, str]
) -> Iterator[tuple[sa.Connection, subprocess.Popen]]:
    """A scoring run of 'nightly' whose buckets wait on a lock this connection holds until the block ends.

    A bucket holds its pipeline's row while it writes (a delete waits for it), so it waits here; after the
    block the lock goes and the run must succeed.
    """
    with warehouse.connect() as holder:
        holder.execute(sa.text("SELECT id FROM pipelines WHERE name = 'nightly' FOR UPDATE"))
        running = subprocess.Popen(
            [*CLI, "pipeline", "run", "nightly"],
            env=os.environ | environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        yield holder, running
        holder.rollback()
    out, err = running.communicate(timeout=TIMEOUT)
    assert running.returncode == 0, err[-3000:]


def _ended(process: subprocess.Popen) -> bool:
    """Whether a run that should still be waiting ended: a failure, with the run's own words."""
    if process.poll() is None:
        return False
    out, err = process.communicate()
    pytest.fail(f"the run ended early (exit {process.returncode}):\n{out[-3000:]}\n{err[-3000:]}")


def _steps_by_worker(run_id: str) -> list[tuple[str, str]]:
    """(step key, worker name) of every step a Celery worker started for the run, in order."""
    instance = DagsterInstance.get()
    try:
        found = []
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or event.event_type_value != "ENGINE_EVENT":
                continue
            metadata = event.engine_event_data.metadata or {}
            if "Celery worker" in metadata:
                found.append((event.step_key or "", str(metadata["Celery worker"].value).split("@")[0]))
        return found
    finally:
        instance.dispose()


def _step_spans(run_id: str) -> dict[str, tuple[float, float]]:
    """When each step of the run started and ended (Dagster's event timestamps, seconds)."""
    instance = DagsterInstance.get()
    try:
        starts, ends = {}, {}
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = record.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                ends[event.step_key] = record.timestamp
        return {step: (starts[step], ends[step]) for step in starts}
    finally:
        instance.dispose()


def _last_run(job_name: str):  # noqa: ANN202 - Dagster's run record
    instance = DagsterInstance.get()
    try:
        return instance.get_runs(RunsFilter(job_name=job_name), limit=1)[0]
    finally:
        instance.dispose()


def _scores(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT contact_id, persona_set, persona_id, persona_name FROM spread_scores ORDER BY contact_id"
            )
        ).all()
    return pd.DataFrame(rows, columns=["contact_id", "persona_set", "persona_id", "persona_name"])


def _memberships(engine: Engine, name: str) -> pd.DataFrame:
    record = store.get(engine, name)
    names = {p.persona_id: p.name for p in store.read_personas(engine, record.id)}
    frame = read_memberships(engine, record.id).sort_values("contact_id").reset_index(drop=True)
    return frame.assign(persona_name=frame["persona_id"].map(names))[
        ["contact_id", "persona_id", "persona_name"]
    ]


def _waiting_workers(conn: sa.Connection) -> list[str]:
    """Workers (by their connections' application name) whose queries wait for a lock this connection holds.

    One name per waiting connection (a bucket writes its slices over two connections).
    """
    rows = conn.execute(
        sa.text(
            "SELECT application_name FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
    ).all()
    return sorted(r[0] for r in rows)


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_two_workers_on_two_hosts_build_and_score_as_one_process_does(
    warehouse: Engine, postgres_dagster_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch_home = Path(os.environ["PERSONA_HOME"])
    launch_home.mkdir(parents=True, exist_ok=True)
    assert main(["seed", "--contacts", str(CONTACTS), "--days", "30", "--seed", "5"]) == 0
    for name in ("Local", "Spread"):
        assert main(["persona-set", "create", "--name", name, "--cohort", "customers"]) == 0
    assert main(["persona-set", "build", "Local"]) == 0  # in this process: the reference

    with contextlib.ExitStack() as stack:
        vhost = stack.enter_context(_virtual_host())
        hosts = stack.enter_context(_hosts())
        warehouse_url, dagster_url = os.environ["PERSONA_WAREHOUSE_URL"], os.environ["DAGSTER_PG_URL"]
        distributed = {
            "PERSONA_EXECUTOR": "celery",
            "PERSONA_CELERY_BROKER": f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}",
            "PERSONA_SCORE_BUCKETS": "4",
        }
        workers = []
        homes = {w: tmp_path / f"{w}_home" for w in WORKERS}
        for host in hosts:
            home = homes[host.name]
            (home / "dagster").mkdir(parents=True)
            shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster" / "dagster.yaml")
            env = os.environ | {
                "PERSONA_EXECUTOR": "celery",
                "PERSONA_CELERY_BROKER": f"pyamqp://guest:guest@{host.address}:5672/{vhost}",
                "PERSONA_HOME": str(home),
                "DAGSTER_HOME": str(home / "dagster"),
                "PERSONA_WAREHOUSE_URL": _at(warehouse_url, host.address),
                "DAGSTER_PG_URL": _at(dagster_url, host.address),
                "PGAPPNAME": host.name,  # libpq's: the worker's connections carry its name
            }
            hidden = [launch_home, postgres_dagster_home] + [h for w, h in homes.items() if w != host.name]
            log = tmp_path / f"{host.name}.log"
            # w2 takes two steps at once: the pool's limit below, not the workers, must keep them apart
            concurrency = "2" if host.name == "w2" else "1"
            argv = host.command([*CLI, "worker", "--name", host.name, "--concurrency", concurrency], hidden)
            with log.open("w") as out:
                process = subprocess.Popen(
                    argv, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            workers.append(Worker(host, process, log))
            stack.callback(workers[-1].kill)
        logs = [w.log for w in workers]
        _wait("both workers to connect", lambda: all("ready." in w.log.read_text() for w in workers), logs)

        def launch(*argv: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*CLI, *argv], env=os.environ | distributed, capture_output=True, text=True, timeout=TIMEOUT
            )

        built = launch("persona-set", "build", "Spread")
        assert built.returncode == 0, built.stderr[-3000:]
        pd.testing.assert_frame_equal(_memberships(warehouse, "Spread"), _memberships(warehouse, "Local"))
        build_steps = _steps_by_worker(_last_run("build_persona_set").run_id)
        assert {"cohort_traits", "persona_model", "persona_memberships"} <= {s for s, _ in build_steps}

        # a scoring run: in this process for the reference, then on the workers
        create = ["pipeline", "create", "nightly", "--population", "customers", "--payload", "Spread"]
        assert main([*create, "--table", "spread_scores"]) == 0
        assert main(["pipeline", "run", "nightly"]) == 0
        reference = _scores(warehouse)
        assert len(reference) == reference["contact_id"].nunique() > CONTACTS * 0.5
        scored = launch("pipeline", "run", "nightly")
        assert scored.returncode == 0, scored.stderr[-3000:]
        pd.testing.assert_frame_equal(_scores(warehouse), reference)
        buckets = [
            (s, w)
            for s, w in _steps_by_worker(_last_run("score_pipeline").run_id)
            if s.startswith("score_bucket")
        ]
        assert len(buckets) == 4 and {w for _, w in buckets} == set(WORKERS), buckets

        # a worker dies in the middle of a bucket: the broker hands the step to the other one
        with _held_run(warehouse, distributed) as (holder, running):
            _wait(
                "a bucket in each worker",
                lambda: _ended(running) or set(_waiting_workers(holder)) == set(WORKERS),
                logs,
            )
            workers[0].kill()
        run = _last_run("score_pipeline")
        assert run.status == DagsterRunStatus.SUCCESS
        pd.testing.assert_frame_equal(_scores(warehouse), reference)
        with warehouse.connect() as conn:
            assert unattached_shadows(conn, "spread_scores") == []
        steps = [(s, w) for s, w in _steps_by_worker(run.run_id) if s.startswith("score_bucket")]
        taken_back = {s for s, w in steps if w == "w1"}
        assert taken_back, steps  # the killed worker had a bucket ...
        assert all((s, "w2") in steps for s in taken_back), steps  # ... which the other worker did again

        # the pool bounds the warehouse's load: one scoring step at a time, whatever the workers could take
        dagster_cli = str(Path(sys.executable).parent / "dagster")
        limit = [dagster_cli, "instance", "concurrency", "set", SCORING_POOL, "1"]
        limited = subprocess.run(limit, env=os.environ, capture_output=True, text=True, timeout=120)
        assert limited.returncode == 0, limited.stderr[-3000:]
        with _held_run(warehouse, distributed) as (holder, running):
            _wait(
                "a bucket waiting on the lock",
                lambda: _ended(running) or bool(_waiting_workers(holder)),
                logs,
            )
            time.sleep(3)  # w2 could take a second bucket meanwhile: the pool must not hand it one
        pd.testing.assert_frame_equal(_scores(warehouse), reference)
        spans = sorted(
            span
            for step, span in _step_spans(_last_run("score_pipeline").run_id).items()
            if step.startswith("score_bucket")
        )
        assert len(spans) == 4 and all(
            later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)
        ), spans
