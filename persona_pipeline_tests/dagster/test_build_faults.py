"""A build killed at each of its steps: nothing stale is served, the run and the set are settled, a retry works.

Each kill runs `persona-set build` in a process of its own that SIGKILLs itself inside one step (after the
step's work where that is the dangerous moment: a build recorded but not current, memberships written but not
switched in).
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from dagster import DagsterRunStatus, RunsFilter
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.runtime.instance import instance
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline_tests.helpers import sensor_tick

# step -> (module, function, kill before or after the real call, does the new build land before the kill)
KILL_POINTS = {
    "cohort_traits": ("persona_pipeline.persona_sets.build", "extract_cohort", "before", False),
    "validated_traits": ("persona_pipeline.persona_sets.build", "validate_cohort", "after", False),
    "persona_model": ("persona_pipeline.persona_sets.build", "fit_personas", "after", False),
    "personas": ("persona_pipeline.persona_sets.build", "make_personas", "after", False),
    "persona_memberships": ("persona_pipeline.warehouse.memberships", "make_current", "before", False),
    "persona_analysis": ("persona_pipeline.studies.analysis", "run_analysis", "before", True),
    "persona_report": ("persona_pipeline.studies.report", "write_report", "before", True),
}

KILLER = """
import importlib, os, signal, sys
from persona_pipeline.cli import main

module = importlib.import_module({module!r})
real = getattr(module, {function!r})

def dies(*args, **kwargs):
    if {when!r} == "after":
        real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

setattr(module, {function!r}, dies)
sys.exit(main(["persona-set", "build", "Customers"]))
"""


# Each step dies on one backend, alternating, and the switch-in of memberships (where the two engines'
# transactions matter most) on both. The kills of a backend run in sequence on one set: each case's retry
# leaves the set ready, which is the next case's starting point (a fresh set per case cost ~15 s more each).
KILL_SEQUENCES = {
    backend: [step for i, step in enumerate(KILL_POINTS) if i % 2 == parity]
    + ["persona_memberships"] * parity
    for parity, backend in enumerate(["sqlite", "postgres"])
}


def _kill_and_retry(ready: Engine, step: str) -> None:
    module, function, when, lands = KILL_POINTS[step]
    before = store.get(ready, "Customers")
    members_before = read_memberships(ready, before.id)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER.format(module=module, function=function, when=when)],
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, (step, killed.stderr.decode()[-2000:])

    # the daemon's next tick settles what the dead process left: its run failed, its set not left building
    sensor_tick("queued_persona_sets")
    assert not instance().get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED])), step
    record = store.get(ready, "Customers")
    if lands:  # the memberships were switched in before the kill: the new build is current and ready
        assert record.status == "ready" and record.current_build > before.current_build, step
    else:
        assert record.status == "errored" and record.current_build == before.current_build, step
        assert read_memberships(ready, record.id).equals(members_before), step

    # whatever was recorded meanwhile, readers use the current build: scores agree with the memberships
    assert main(["pipeline", "run", "check"]) == 0, step
    scored = read_frame(ready, "SELECT contact_id, persona_id FROM check_scores").set_index("contact_id")
    members = read_memberships(ready, record.id).set_index("contact_id")
    assert (scored.loc[members.index, "persona_id"] == members["persona_id"]).all(), step

    # and a retry builds again, under a build number never used before
    highest = store.latest_build_number(ready, record.id)
    assert main(["persona-set", "build", "Customers"]) == 0, step
    retried = store.get(ready, "Customers")
    assert retried.status == "ready" and retried.current_build == highest + 1, step


@pytest.mark.parametrize("warehouse", list(KILL_SEQUENCES), indirect=True)
def test_a_build_killed_in_any_step_serves_the_last_good_build_and_a_retry_works(
    ready: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", "create", "check", "--population", "customers", "--payload", "Customers",
                 "--table", "check_scores"]) == 0  # fmt: skip
    for step in KILL_SEQUENCES["postgres" if ready.dialect.name == "postgresql" else "sqlite"]:
        _kill_and_retry(ready, step)
        capsys.readouterr()
