"""persona-pipeline worker: a Celery worker for distributed runs (runtime/worker.py)."""

from __future__ import annotations

import argparse

from persona_pipeline.config import executor_settings
from persona_pipeline.errors import ConfigError


def worker(args: argparse.Namespace) -> int:
    settings = executor_settings()
    if not settings.distributed:
        raise ConfigError(
            "a worker serves runs executed on Celery: set PERSONA_EXECUTOR=celery (and PERSONA_CELERY_BROKER) "
            "here and wherever runs start, then start the worker again"
        )
    try:
        # Celery is an optional extra; importing the worker also builds its app from the settings above
        from persona_pipeline.runtime.worker import run_worker
    except ImportError as exc:
        raise ConfigError(
            "a worker needs the Celery executor: pip install 'persona-pipeline[distributed]'"
        ) from exc
    print(f"worker: taking steps from {settings.broker} (results to {settings.backend})", flush=True)
    run_worker(args.concurrency, args.name)
    return 0
