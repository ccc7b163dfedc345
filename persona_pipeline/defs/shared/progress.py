"""A compact progress logger: one line per step log message, with the time since the run started."""

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from dagster import InitLoggerContext, logger

PROGRESS_LOGGER = "progress"
# Dagster's bookkeeping after a step failed: one line per skipped step says nothing the run's error does not
SKIPPED_STEP = "Dependencies for step "
_sinks: list[Callable[[str], None]] = []


class _Handler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.start = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        if meta.get("dagster_event") is not None:
            event = meta["dagster_event"]
            if event.event_type_value not in ("STEP_FAILURE", "ASSET_CHECK_EVALUATION"):
                return
        text = meta.get("orig_message") or record.getMessage()
        if text.startswith(SKIPPED_STEP) and text.endswith("Not executing."):
            return
        step = meta.get("step_key") or "run"
        line = f"  [{time.perf_counter() - self.start:5.1f}s] {step}: {text}"
        for sink in _sinks or [print]:
            sink(line)


@logger(description="Prints each step's progress messages on one line.")
def progress_logger(_context: InitLoggerContext) -> logging.Logger:
    log = logging.Logger("persona_pipeline.progress", level=logging.INFO)
    log.addHandler(_Handler())
    return log


@contextlib.contextmanager
def progress_sink(sink: Callable[[str], None]) -> Iterator[None]:
    _sinks.append(sink)
    try:
        yield
    finally:
        _sinks.remove(sink)
