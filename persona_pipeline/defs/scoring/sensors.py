"""The sensors that trigger scoring runs: schedules, changed contacts, and freshly built payloads."""

import datetime as dt
import json

from croniter import croniter
from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from persona_pipeline.config import sensor_interval
from persona_pipeline.core.domain import ChangeWindow, Trigger, Watermark
from persona_pipeline.defs.scoring.jobs import score_pipeline_job, score_run_config
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.defs.shared.runs import PIPELINE_TAG
from persona_pipeline.scoring import pipelines, runs

CHANGE_CHUNK = 100_000  # changed contacts per run: a burst becomes several runs, never a dropped tick


def latest_completed_tick(cron: str, now: dt.datetime) -> dt.datetime:
    """The most recent time at or before `now` (UTC) that the cron expression names."""
    minute = now.replace(second=0, microsecond=0)
    if croniter.match(cron, minute):
        return minute
    return croniter(cron, now).get_prev(dt.datetime)


@sensor(
    name="scheduled_pipelines",
    job=score_pipeline_job,
    minimum_interval_seconds=sensor_interval(60),
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs each scheduled pipeline once per due time of its cron expression (UTC).",
)
def scheduled_pipelines(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
    now = dt.datetime.now(dt.UTC)
    requests = []
    for pipeline in pipelines.list_all(warehouse.engine()):
        if pipeline.trigger is not Trigger.SCHEDULE or not pipeline.cron:
            continue
        due = latest_completed_tick(pipeline.cron, now)
        if due.replace(tzinfo=None) <= pipeline.created_at:
            continue  # nothing was due since the pipeline was created
        requests.append(
            RunRequest(
                run_key=f"{pipeline.name}@{due:%Y%m%dT%H%M}",
                run_config=score_run_config(pipeline.name),
                tags={PIPELINE_TAG: pipeline.name},
            )
        )
    return (
        SensorResult(run_requests=requests)
        if requests
        else SensorResult(skip_reason="no scheduled pipeline due")
    )


@sensor(
    name="changed_contacts",
    job=score_pipeline_job,
    minimum_interval_seconds=sensor_interval(30),
    default_status=DefaultSensorStatus.RUNNING,
    description="Rescores contacts created or updated since the last tick, for every on-change pipeline.",
)
def changed_contacts(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
    engine = warehouse.engine()
    # a payload never built has nothing to score with; fresh_payloads scores everyone once it is built
    watching = [
        p
        for p in pipelines.list_all(engine)
        if p.trigger is Trigger.ON_CHANGE and pipelines.payload_builds(engine, p) is not None
    ]
    cursor = json.loads(context.cursor) if context.cursor else None
    after = Watermark(dt.datetime.fromisoformat(cursor["t"]), int(cursor["i"])) if cursor else None
    if after is None:  # first tick: start watching from now on, do not rescore the whole base
        latest, _ = runs.changed_since(engine, None, 10**12)
        new_cursor = _cursor(latest) if latest else None
        return SensorResult(skip_reason="started watching contacts", cursor=new_cursor)
    upto, count = runs.changed_since(engine, after, CHANGE_CHUNK)
    if not count:
        return SensorResult(skip_reason="no changed contacts")
    window = ChangeWindow(after.time, after.contact_id, upto.time, upto.contact_id)
    key = f"{after.time:%Y%m%dT%H%M%S}.{after.contact_id}-{upto.time:%Y%m%dT%H%M%S}.{upto.contact_id}"
    requests = [
        RunRequest(
            run_key=f"{p.name}:{key}",
            run_config=score_run_config(p.name, window),
            tags={PIPELINE_TAG: p.name},
        )
        for p in watching
    ]
    context.log.info(f"{count:,} changed contacts; {len(requests)} pipeline run(s)")
    return SensorResult(run_requests=requests, cursor=_cursor(upto))


def _cursor(mark: Watermark) -> str:
    return json.dumps({"t": mark.time.isoformat(), "i": mark.contact_id})


@sensor(
    name="fresh_payloads",
    job=score_pipeline_job,
    minimum_interval_seconds=sensor_interval(30),
    default_status=DefaultSensorStatus.RUNNING,
    description="Scores every contact of an on-change pipeline once its payload is built, and again after "
    "each rebuild of a persona set in it, so no contact keeps a persona from an older build.",
)
def fresh_payloads(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
    engine = warehouse.engine()
    requests = []
    for pipeline in pipelines.list_all(engine):
        builds = pipelines.payload_builds(engine, pipeline) if pipeline.trigger is Trigger.ON_CHANGE else None
        if builds is None:
            continue
        # one run per pipeline and payload builds: the run key makes every later tick a no-op
        key = f"{pipeline.id}:{pipeline.name}@builds:" + ",".join(f"{s}.{b}" for s, b in builds)
        requests.append(
            RunRequest(
                run_key=key, run_config=score_run_config(pipeline.name), tags={PIPELINE_TAG: pipeline.name}
            )
        )
    if not requests:
        return SensorResult(skip_reason="no on-change pipeline with a built payload")
    return SensorResult(run_requests=requests)
