"""Run statuses the domains agree on: which runs count as still working on something."""

from dagster import DagsterRunStatus

# Runs not finished yet: queued or waiting to start count too, since they will touch the data.
UNFINISHED_RUN_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# Runs executed in process by a CLI command: a killed command leaves them in one of these for good.
IN_PROCESS_UNFINISHED = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
