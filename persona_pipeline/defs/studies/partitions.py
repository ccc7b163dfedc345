"""Daily partitions of the membership snapshots: one per day from PERSONA_FLOW_START to today."""

from dagster import DailyPartitionsDefinition

from persona_pipeline.config import flow_start

daily_partitions = DailyPartitionsDefinition(
    start_date=flow_start(), end_offset=1
)  # today's partition exists
