"""How a run launched by the daemon or the UI executes its steps: a process each, forked, not spawned."""

from dagster import ExecutorDefinition, multiprocess_executor


def step_executor(max_concurrent: int | None = None) -> ExecutorDefinition:
    """The multiprocess executor with its steps forked from a server that imported our code once per run.

    Spawned (Dagster's default), every step process imports Dagster, pandas, scikit-learn and our definitions
    afresh: about 4 s per step on a two-core machine, so a build's chain of steps spent more time importing
    than working. The forkserver (started by the run's worker, with its environment) imports the job's module
    once; each step is then a fork of it. Steps stay separate processes, so a crash still fails only its step.
    """
    config: dict = {"start_method": {"forkserver": {}}}
    if max_concurrent is not None:
        config["max_concurrent"] = max_concurrent
    return multiprocess_executor.configured(config)
