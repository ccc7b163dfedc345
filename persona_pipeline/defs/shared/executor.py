"""How a run executes its steps: forked processes on the run's machine, or Celery tasks for workers anywhere."""

from __future__ import annotations

from dagster import ExecutorDefinition, multiprocess_executor

from persona_pipeline.config import executor_settings
from persona_pipeline.errors import ConfigError

DEFINITIONS_MODULE = "persona_pipeline.definitions"  # workspace.yaml and the CLI's run origin load it too
CELERY_QUEUE = "dagster"  # the queue dagster-celery routes steps to; workers listen on it

# A step is acknowledged only once it finished, and a worker that dies mid-step hands it back: the broker
# redelivers it to another worker (steps are safe to run again: a scoring bucket empties its shadow first).
# One step at a time per worker process, so a long step never holds a second one hostage.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "result_extended": True,
}


def celery_app_args() -> dict:
    """The Celery app's arguments, the same for the run that sends steps and the workers that take them."""
    settings = executor_settings()
    return {
        "broker": settings.broker,
        "backend": settings.backend,
        "include": [],
        "config_source": dict(CELERY_SETTINGS),
    }


def step_executor(max_concurrent: int | None = None) -> ExecutorDefinition:
    """PERSONA_EXECUTOR's executor: `multiprocess` (default) or `celery`.

    Multiprocess: steps are forked from a server that imported our code once per run. Spawned (Dagster's
    default), every step process imports Dagster, pandas, scikit-learn and our definitions afresh: about 5 s
    of CPU per step, so a build's chain of steps spent more time importing than working. The module is named:
    Dagster reads a forkserver config without `preload_modules` as an empty list and preloads nothing, not
    the job's module as its docs say. Steps stay separate processes, so a crash still fails only its step.
    `max_concurrent` bounds those processes.

    Celery: each step is a task on the broker, executed by whichever worker (`persona-pipeline worker`)
    takes it; how many run at once is the workers' concurrency, and Dagster pools bound the warehouse's load.
    """
    if executor_settings().distributed:
        try:
            # dagster-celery is an optional extra, needed only when runs are distributed
            from dagster_celery import celery_executor
        except ImportError as exc:
            raise ConfigError(
                "PERSONA_EXECUTOR=celery needs the Celery executor: pip install 'persona-pipeline[distributed]'"
            ) from exc
        args = celery_app_args()
        return celery_executor.configured(
            {"broker": args["broker"], "backend": args["backend"], "config_source": args["config_source"]}
        )
    config: dict = {"start_method": {"forkserver": {"preload_modules": [DEFINITIONS_MODULE]}}}
    if max_concurrent is not None:
        config["max_concurrent"] = max_concurrent
    return multiprocess_executor.configured(config)
