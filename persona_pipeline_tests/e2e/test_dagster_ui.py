"""The Dagster UI shows what the CLI did: the real webserver, queried through the GraphQL API its pages use.

A home where the CLI built a persona set and ran a scoring pipeline; then `dg dev` (what `make dagster` runs:
webserver, daemon and code server) on a free port, and its API must list those runs under their jobs, from the
code location, tagged with what they worked on; and all its processes must be gone soon after SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.defs.shared.runs import PERSONA_SET_TAG, PIPELINE_TAG
from persona_pipeline.runtime.origin import CODE_LOCATION, LAUNCHED_BY_TAG, REPOSITORY
from persona_pipeline_tests.helpers import REPO

STARTUP_SECONDS = 120
SHUTDOWN_SECONDS = 20

RUNS_OF_JOB = """
query Runs($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { runs { runId status tags { key value } repositoryOrigin { repositoryLocationName repositoryName } } }
  }
}
"""
REEXECUTE = """
mutation Reexecute($parent: String!) {
  launchPipelineReexecution(reexecutionParams: {parentRunId: $parent, strategy: ALL_STEPS}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""
RUN_STATUS = """
query Status($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }
"""
LAUNCH = """
mutation Launch($selector: JobOrPipelineSelector!) {
  launchPipelineExecution(executionParams: {selector: $selector, mode: "default"}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
ASSET_EDGES = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
STALE = """
query Stale($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode { staleStatus } } }
"""
CHECK_RUNS = """
query Checks($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 5) { partition status }
}
"""
LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _selector(job: str) -> dict[str, str]:
    return {"repositoryLocationName": CODE_LOCATION, "repositoryName": REPOSITORY, "pipelineName": job}


class Webserver:
    """A running `dagster-webserver` and its GraphQL endpoint."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.url, self.log = process, f"http://127.0.0.1:{port}/graphql", log

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - our own local server
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # GraphQL says what was wrong with the query in the body
            raise AssertionError(f"{exc}: {exc.read().decode()[:2000]}") from exc
        assert "errors" not in answer, answer
        return answer["data"]

    def runs_of(self, job: str) -> list[dict[str, Any]]:
        found = self.query(RUNS_OF_JOB, {"selector": _selector(job)})["pipelineOrError"]
        assert found["__typename"] == "Pipeline", f"{job}: {found}"
        return found["runs"]


@pytest.fixture
def ui_home(seeded: Engine) -> Engine:
    """The CLI built a persona set and ran an ad hoc scoring pipeline in this home."""
    assert main(["persona-set", "create", "--name", "Customers", "--cohort", "customers"]) == 0
    assert main(["persona-set", "build", "Customers"]) == 0
    create = ["pipeline", "create", "nightly", "--population", "customers", "--payload", "Customers"]
    assert main([*create, "--table", "nightly_personas"]) == 0
    assert main(["pipeline", "run", "nightly"]) == 0
    return seeded


def _interruptible() -> None:
    """As a terminal starts it: SIGINT at its default (a shell's background job would have it ignored, and
    Dagster maps SIGTERM onto SIGINT's handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(command: list[str], log: Path) -> subprocess.Popen:
    """`dg` from this environment in the repository (its pyproject names the project), in its own process
    group so that the test can see every process it started; output to `log`."""
    with log.open("w") as sink:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / command[0]), *command[1:]],
            cwd=REPO,
            env=dict(os.environ),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_interruptible,  # noqa: PLW1509 - only resets one signal before exec
        )


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen, what: str) -> None:
    """SIGTERM, and every process of its group (webserver, daemon, code servers, their helpers) must be gone
    within SHUTDOWN_SECONDS: `dagster dev` once left a multiprocessing resource tracker holding the shell."""
    group = process.pid
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    while _group_alive(group) and time.monotonic() < deadline:
        process.poll()
        time.sleep(0.5)
    if _group_alive(group):
        os.killpg(group, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{what} left processes running {SHUTDOWN_SECONDS}s after SIGTERM")
    process.wait()


@pytest.fixture
def webserver(ui_home: Engine, tmp_path: Path) -> Iterator[Webserver]:
    """`dg dev`: the webserver and, to run what it launches (Dagster queues runs), the daemon."""
    port = _free_port()
    log = tmp_path / "dg-dev.log"
    process = _start(["dg", "dev", "--host", "127.0.0.1", "-p", str(port)], log)
    server = Webserver(process, port, log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"the webserver exited:\n{log.read_text()[-3000:]}"
            try:
                entries = server.query(LOCATIONS)["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    assert entries[0]["name"] == CODE_LOCATION
                    assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, f"no webserver after {STARTUP_SECONDS}s:\n{log.read_text()}"
            time.sleep(1)
        yield server
    finally:
        _stop(process, "dg dev")


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_the_ui_shows_what_the_cli_did(webserver: Webserver, ui_home: Engine) -> None:
    """One webserver and daemon for both halves: starting them is most of the cost."""
    _cli_runs_show_under_their_jobs_from_the_code_location(webserver)
    _lineage_is_whole_and_a_changed_source_marks_its_readers_stale(webserver, ui_home)


def _cli_runs_show_under_their_jobs_from_the_code_location(webserver: Webserver) -> None:
    expected = {
        "sql_models": {},
        "build_persona_set": {PERSONA_SET_TAG: "Customers"},
        "score_pipeline": {PIPELINE_TAG: "nightly"},
    }
    for job, wanted in expected.items():
        runs = webserver.runs_of(job)
        assert runs, f"the UI lists no run under {job}"
        for run in runs:
            origin = run["repositoryOrigin"]
            assert (origin["repositoryLocationName"], origin["repositoryName"]) == (CODE_LOCATION, REPOSITORY)
            tags = {t["key"]: t["value"] for t in run["tags"]}
            assert tags[LAUNCHED_BY_TAG] == "cli" and run["status"] == "SUCCESS"
            assert wanted.items() <= tags.items(), f"{job}: {tags}"
            # bookkeeping stays hidden: no tag of ours outside Dagster's hidden prefix but the ones people read
            ours = {k for k in tags if k.startswith("persona-pipeline/")}
            assert ours <= {LAUNCHED_BY_TAG, PERSONA_SET_TAG, PIPELINE_TAG}, ours

    # every build check's result belongs to the set it checked (its partition), and passed on this base
    checks = {
        "validated_traits": ["quarantine_share_within_limit"],
        "persona_model": ["split_half_stability"],
        "personas": ["smallest_persona_share", "unchanged_contacts_keep_persona"],
        "persona_memberships": ["memberships_match_valid_rows"],
    }
    for asset, names in checks.items():
        for name in names:
            found = webserver.query(CHECK_RUNS, {"key": {"path": [asset]}, "name": name})[
                "assetCheckExecutions"
            ]
            assert [(e["partition"], e["status"]) for e in found] == [("set-1", "SUCCEEDED")], (asset, name)
    # re-executed from the UI (as its "Re-execute" button does), a CLI run runs again from the code location
    parent = webserver.runs_of("sql_models")[0]["runId"]
    child = _finished(webserver, webserver.query(REEXECUTE, {"parent": parent})["launchPipelineReexecution"])
    assert child in {r["runId"] for r in webserver.runs_of("sql_models")}


def _finished(webserver: Webserver, launched: dict[str, Any]) -> str:
    """Wait for a run the UI launched (the daemon dequeues it) to succeed; its id."""
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + STARTUP_SECONDS
    status = ""
    while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(1)
        status = webserver.query(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
    daemon_log = webserver.log.read_text()[-3000:]
    assert status == "SUCCESS", f"run {run_id}: {status}\n{daemon_log}"
    return run_id


def _lineage_is_whole_and_a_changed_source_marks_its_readers_stale(
    webserver: Webserver, ui_home: Engine
) -> None:
    edges = {
        "/".join(node["assetKey"]["path"]): {"/".join(d["path"]) for d in node["dependencyKeys"]}
        for node in webserver.query(ASSET_EDGES)["assetNodes"]
    }
    needed = {
        "cohort_traits": {"sources/contacts", "cohorts/customers"},
        "membership_snapshot": {"persona_memberships", "sources/trait_history", "cohorts/customers"},
        "persona_flow": {"membership_snapshot", "persona_memberships", "personas"},
        "persona_report": {"persona_analysis", "personas", "persona_flow"},
        "persona_explore": {"personas", "persona_memberships"},
        "staging/stg_contacts": {"sources/contacts"},
    }
    for asset, upstream in needed.items():
        assert upstream <= edges[asset], f"{asset} reads {upstream - edges[asset]} without an edge"
    stg = {"key": {"path": ["staging", "stg_contacts"]}}
    assert webserver.query(STALE, stg)["assetNodeOrError"]["staleStatus"] == "FRESH"
    # a user's ETL changes contacts; the sources are observed (the UI's "Observe sources" launches this job)
    with ui_home.begin() as conn:
        conn.execute(sa.text("UPDATE contacts SET age = age + 1 WHERE contact_id <= 10"))
    _finished(
        webserver,
        webserver.query(LAUNCH, {"selector": _selector("observe_sources")})["launchPipelineExecution"],
    )
    assert webserver.query(STALE, stg)["assetNodeOrError"]["staleStatus"] == "STALE"
