"""Runs started from the CLI carry the code location's origin, so the UI files them where it files its own.

The Dagster UI lists a job's runs by the tag `.dagster/repository` (`<repository>@<location>`), which a run
gets from its remote origin; `execute_in_process` records none, so CLI runs were missing from every job page
and the timeline, and re-executing one warned of "a different code location". Here the run is created with
the origin a run launched from the UI would have: the same location name as `workspace.yaml` (one constant,
CODE_LOCATION, checked against that file by a test) and a Python origin the daemon or the UI can reload to
re-execute it. The steps still run in this process (the CLI's progress and exit code depend on it).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import (
    AssetKey,
    DagsterInstance,
    ExecuteInProcessResult,
    JobDefinition,
    JobExecutionResult,
    execute_job,
)
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.origin import JobPythonOrigin
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from persona_pipeline.defs.shared.executor import DEFINITIONS_MODULE
from persona_pipeline.errors import ConfigError

CODE_LOCATION = "persona-pipeline"  # workspace.yaml, [tool.dagster] and the Helm deployment name it too
DEFINITIONS_ATTRIBUTE = "defs"
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a single Definitions object
LAUNCHED_BY_TAG = "persona-pipeline/launched-by"  # "cli" here; the UI and the daemon set their own tags


def remote_origin(job_name: str) -> RemoteJobOrigin:
    """The origin the webserver gives `job_name` when it loads workspace.yaml."""
    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=os.getcwd()
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, CODE_LOCATION)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY), job_name)


def python_origin(job_name: str) -> JobPythonOrigin:
    """Where a run worker re-imports the job: our Definitions object, by module and attribute."""
    return JobPythonOrigin(job_name, _repository().get_python_origin())


def _repository() -> ReconstructableRepository:
    return ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, os.getcwd())


@contextmanager
def _runs_created_with_origin(instance: DagsterInstance, job_name: str) -> Iterator[None]:
    """Within the block, runs this instance object creates carry the job's origins.

    `execute_in_process` creates its run through `instance.create_run_for_job` and offers no way to pass the
    origins; shadowing that one method on this one object (never on the class) adds them and nothing else.
    """
    create = instance.create_run_for_job

    def with_origin(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("remote_job_origin", remote_origin(job_name))
        kwargs.setdefault("job_code_origin", python_origin(job_name))
        return create(*args, **kwargs)

    instance.create_run_for_job = with_origin  # type: ignore[method-assign]
    try:
        yield
    finally:
        del instance.create_run_for_job


def execute_as_launched(
    job: JobDefinition,
    instance: DagsterInstance,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    asset_selection: list[AssetKey] | None = None,
    partition_key: str | None = None,
) -> ExecuteInProcessResult:
    """Execute `job` in this process as a run of the code location (see the module docstring)."""
    with _runs_created_with_origin(instance, job.name):
        return job.execute_in_process(
            run_config=run_config,
            instance=instance,
            asset_selection=asset_selection,
            partition_key=partition_key,
            raise_on_error=False,
            tags=tags,
        )


def execute_distributed(
    job_name: str,
    instance: DagsterInstance,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    asset_selection: list[AssetKey] | None = None,
    partition_key: str | None = None,
) -> JobExecutionResult:
    """Execute `job_name` with its own executor (Celery), this process orchestrating: the steps run on
    whichever workers take them, which re-import the job by its Python origin and reach this instance by
    its storage, so the instance must be one they can reach (PostgreSQL, not this machine's SQLite files).
    """
    if isinstance(instance.run_storage, SqliteRunStorage):
        raise ConfigError(
            f"PERSONA_EXECUTOR=celery: the Dagster instance in {instance.root_directory} keeps runs in SQLite "
            "files that workers on other hosts cannot reach; copy deploy/dagster.yaml (PostgreSQL storage) "
            "there and set DAGSTER_PG_URL"
        )
    from celery.exceptions import DuplicateTaskNameWarning  # installed with the Celery executor

    run_tags = dict(tags) | ({"dagster/partition": partition_key} if partition_key else {})
    job = _repository().get_reconstructable_job(job_name)
    with _runs_created_with_origin(instance, job_name), warnings.catch_warnings():
        # dagster-celery declares its task anew for every step it sends; Celery warns each time, to no end
        warnings.simplefilter("ignore", DuplicateTaskNameWarning)
        with execute_job(
            job, instance, run_config=run_config, tags=run_tags, asset_selection=asset_selection
        ) as result:
            return result
