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

# Tags that say what a run works on, the same whoever launched it (CLI, sensor, schedule or the UI's launchpad):
# the UI's run list filters on them.
PERSONA_SET_TAG = "persona-pipeline/persona_set"  # the set's name
PIPELINE_TAG = "persona-pipeline/pipeline"  # the scoring pipeline's name
