"""Declarative automation, running by default: the assets that declare a condition are kept up to date.

Dagster creates a stopped automation sensor on its own when none is defined, so conditions written on assets
(eager Analysis and report; sources observed every few minutes) did nothing until someone found the
switch. This one starts with the daemon; README "Automation" says how to stop it.
"""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

AUTOMATION_SENSOR = "persona_automation"
AUTOMATION_INTERVAL = 30  # seconds

persona_automation = AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=AssetSelection.all(include_sources=True),
    default_status=DefaultSensorStatus.RUNNING,
    # Dagster's own default, whatever PERSONA_SENSOR_INTERVAL says: each evaluation walks the whole asset
    # graph, and the conditions it serves (eager refreshes, observing sources every 5 minutes) need no more
    minimum_interval_seconds=AUTOMATION_INTERVAL,
    description="Materializes (and observes) the assets whose automation condition is met.",
)
