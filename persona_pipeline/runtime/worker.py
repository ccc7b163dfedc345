"""A Celery worker for runs whose steps are Celery tasks (PERSONA_EXECUTOR=celery): `persona-pipeline worker`.

The worker takes steps from the broker's `dagster` queue and executes each with Dagster's own task
(dagster-celery): it re-imports the job by the origin in the message, reaches the run's Dagster instance by
the storage in the message and the warehouse by PERSONA_WAREHOUSE_URL, and hands outputs on through the
step storage (the warehouse by default), so it shares no disk with the run or other workers. Our
definitions are imported once, before the pool forks, so a step does not pay for importing them.
"""

from __future__ import annotations

import socket

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

import persona_pipeline.definitions  # noqa: F401 - imported once in the parent, inherited by every fork
from persona_pipeline.defs.shared.executor import CELERY_QUEUE, celery_app_args

app = make_app(celery_app_args())
execute_plan = create_task(app)


def run_worker(concurrency: int, name: str | None = None) -> None:
    """Serve steps until stopped (SIGTERM finishes the current step first; Ctrl-C twice stops at once)."""
    app.worker_main(
        [
            "worker",
            "--queues",
            CELERY_QUEUE,
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name or 'persona'}@{socket.gethostname()}",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
