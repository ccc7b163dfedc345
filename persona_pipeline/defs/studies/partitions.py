"""Daily partitions of the membership snapshots: from the first day of data (or PERSONA_FLOW_START) to today.

A fixed start (it was 2025-01-01) showed hundreds of "missing" days before any data existed. The first day
the trait history knows is read when the definitions load (once per process); with no data yet, or no
warehouse to ask, the partitions start today and move back once data is there.
"""

import datetime as dt
import logging

from dagster import DailyPartitionsDefinition

from persona_pipeline.config import flow_start, warehouse_url
from persona_pipeline.studies.flow import first_history_day
from persona_pipeline.warehouse.engine import get_engine

log = logging.getLogger(__name__)


def daily_partitions() -> DailyPartitionsDefinition:
    """One partition per day from the start day to today (today's partition exists)."""
    return DailyPartitionsDefinition(start_date=_start_day(warehouse_url(), flow_start()), end_offset=1)


_FOUND: dict[str, str] = {}  # warehouse URL -> its first day, once it has data (then it does not move)


def _start_day(url: str, configured: str | None) -> str:
    """Asked again until the warehouse has data: the demo loads the definitions before it seeds."""
    if configured:
        return configured
    if url in _FOUND:
        return _FOUND[url]
    try:
        first = first_history_day(get_engine())
    except Exception as exc:  # noqa: BLE001 - any driver's error (server down): the code location must load
        log.warning(
            "daily snapshot partitions start today: the warehouse could not say its first day (%s)", exc
        )
        first = None
    if first is None:
        return dt.datetime.now(dt.UTC).date().isoformat()
    _FOUND[url] = first.isoformat()
    return _FOUND[url]
