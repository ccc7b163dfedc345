"""Runs left "started" by a killed CLI process: recognised by the process that ran them, then settled.

Runs executed in process carry the process that executes them (PROCESS_TAG: "host:pid:start", start being
the process's start time in clock ticks since boot where /proc tells it, so that a pid reused later is not
taken for it). The host includes the pid namespace: containers sharing a hostname (host networking) do not
share pids. What a killed run leaves in the warehouse is each domain's to settle: defs/killed_runs.py passes
their settlers in.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, RunsFilter

from persona_pipeline.defs.shared.runs import IN_PROCESS_UNFINISHED

# Under Dagster's hidden prefix: bookkeeping for us, not a tag people should read beside a run's own tags.
PROCESS_TAG = ".dagster/persona-pipeline-process"
LEGACY_PROCESS_TAG = "persona-pipeline/process"  # runs recorded before it was hidden
# What a domain does about one of its runs that a killed process left unfinished: (instance, run, reason).
Settler = Callable[[DagsterInstance, DagsterRun, str], None]


def process_identity(pid: int) -> str | None:
    """This host's process `pid` as PROCESS_TAG writes it, or None if no such process is running."""
    try:
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        if Path("/proc/self/stat").exists():
            return None  # /proc works here and has no such process
        try:  # no /proc (macOS): a live pid is all that can be told
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        started = ""
    return f"{_this_host()}:{pid}:{started}"


def _this_host() -> str:
    try:
        return f"{socket.gethostname()}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def fail_orphaned_runs(
    dagster: DagsterInstance, settlers: Sequence[Settler], say: Callable[[str], None] | None = None
) -> list[str]:
    """Mark failed the in-process runs whose process on this host is gone, and return their ids.

    A CLI run killed (or its machine restarted) never reports its end: it would stay "started" for good,
    and the deletion guard would refuse on its account. Runs from another host are left alone. Each settler
    sees the run before it is marked failed.
    """
    failed = []
    for run in dagster.get_runs(RunsFilter(statuses=IN_PROCESS_UNFINISHED)):
        recorded = run.tags.get(PROCESS_TAG) or run.tags.get(LEGACY_PROCESS_TAG)
        if not recorded:
            continue
        host, pid, _ = recorded.rsplit(":", 2)
        if host != _this_host() or process_identity(int(pid)) == recorded:
            continue
        if dagster.get_run_by_id(run.run_id).status not in IN_PROCESS_UNFINISHED:
            continue  # it finished, or another reaper got there first, since the list was read
        message = (
            f"The process that executed this run (pid {pid} on {socket.gethostname()}) ended before the run "
            "did: it was killed or its machine restarted. Marked failed by persona-pipeline; run it again."
        )
        # the warehouse first: should it fail, the run stays unfinished and the next look tries again
        for settle in settlers:
            settle(dagster, run, message)
        dagster.report_run_failed(run, message)
        failed.append(run.run_id)
        if say:
            say(f"run {run.run_id} ({run.job_name}) was left unfinished by a killed process: marked failed")
    return failed
