"""Scoring pipelines in Dagster: a job that fans out over contact_id buckets, and the sensors that trigger it."""

import datetime as dt
import json

from dagster import (
    Config,
    DefaultSensorStatus,
    DynamicOut,
    DynamicOutput,
    HookContext,
    OpExecutionContext,
    Out,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    failure_hook,
    job,
    op,
    sensor,
)

from persona_pipeline import pipelines
from persona_pipeline.defs.executor import step_executor
from persona_pipeline.defs.resources import WarehouseResource
from persona_pipeline.settings import sensor_interval

SCORE_JOB = "score_pipeline"
CHANGE_CHUNK = 100_000  # changed contacts per run: a burst becomes several runs, never a dropped tick


class ScoreConfig(Config):
    pipeline: str
    after_time: str | None = None  # with the next three: score only contacts changed in this window
    after_id: int = 0
    upto_time: str | None = None
    upto_id: int = 0
    buckets: int = 0  # 0: one per core (PERSONA_SCORE_BUCKETS); runs executed in one process ask for theirs


def _window(config: ScoreConfig) -> tuple[dt.datetime, int, dt.datetime, int] | None:
    if config.upto_time is None:
        return None
    after = dt.datetime.fromisoformat(config.after_time) if config.after_time else dt.datetime(1970, 1, 1)
    return after, config.after_id, dt.datetime.fromisoformat(config.upto_time), config.upto_id


def score_run_config(
    name: str, window: tuple[dt.datetime, int, dt.datetime, int] | None = None, buckets: int = 0
) -> dict:
    config: dict = {"pipeline": name} | ({"buckets": buckets} if buckets else {})
    if window is not None:
        config |= {
            "after_time": window[0].isoformat(),
            "after_id": window[1],
            "upto_time": window[2].isoformat(),
            "upto_id": window[3],
        }
    return {"ops": {step: {"config": config} for step in ("plan_buckets", "score_bucket", "finish_scoring")}}


def pipeline_of(run_config: dict | None) -> str | None:
    """The pipeline a score_pipeline run scores, read back from the run config score_run_config wrote."""
    return (run_config or {}).get("ops", {}).get("plan_buckets", {}).get("config", {}).get("pipeline")


@op(out=DynamicOut(dict))
def plan_buckets(context: OpExecutionContext, config: ScoreConfig, warehouse: WarehouseResource):  # noqa: ANN201
    """Each bucket's work: its contact_id range and, for a full run, the shadows its rows go to."""
    engine = warehouse.engine()
    pipeline = pipelines.get(engine, config.pipeline)  # an unknown pipeline fails here, before any work
    # ranges fixed once, so buckets neither overlap nor leave gaps
    buckets = pipelines.plan(engine, pipeline, config.buckets or None, say=context.log.info)
    replacement = None
    if _window(config) is None:
        replacement = pipelines.start_replacement(engine, pipeline, pipelines.run_token(context.run_id))
    for bucket in buckets:  # step outputs are pickled: the Replacement travels as it is
        yield DynamicOutput(
            {"bucket": list(bucket), "replacement": replacement}, mapping_key=f"bucket_{bucket[0]}"
        )


@op(out=Out(dict))
def score_bucket(
    context: OpExecutionContext, config: ScoreConfig, warehouse: WarehouseResource, work: dict
) -> dict:
    engine = warehouse.engine()
    pipeline = pipelines.get(engine, config.pipeline)
    bucket = tuple(work["bucket"])
    scored = pipelines.score_bucket(
        engine, pipeline, bucket, changed=_window(config), replacement=work["replacement"]
    )
    context.log.info(f"bucket {bucket[0]}: {scored:,} contacts scored")
    return work | {"scored": scored}


@op
def finish_scoring(
    context: OpExecutionContext, config: ScoreConfig, warehouse: WarehouseResource, done: list[dict]
) -> int:
    engine = warehouse.engine()
    pipeline = pipelines.get(engine, config.pipeline)
    replacement = done[0]["replacement"] if done else None
    path = pipelines.finish_run(engine, pipeline, replacement, sorted(tuple(d["bucket"]) for d in done))
    scored = sum(d["scored"] for d in done)
    context.log.info(
        f"pipeline {config.pipeline!r}: {scored:,} contacts scored"
        + (f" (swapped in as {len(done)} partitions)" if replacement else "")
        + (f"; CSV {path}" if path else "")
    )
    return scored


@failure_hook(required_resource_keys={"warehouse"})
def drop_shadows_of_failed_run(context: HookContext) -> None:
    """A bucket or the swap failed: the run's shadows go now, not when a run an hour later finds them."""
    config = context.op_config
    if config.get("upto_time") is not None:
        return  # an on-change run writes in place: no shadows
    engine = context.resources.warehouse.engine()
    dropped = pipelines.abandon_run(engine, config["pipeline"], pipelines.run_token(context.run_id))
    if dropped:
        context.log.info(f"dropped this failed run's shadow tables: {', '.join(dropped)}")


@job(
    name=SCORE_JOB,
    executor_def=step_executor(max_concurrent=2),
    description="Score a pipeline's population with its payload, one step per contact_id bucket (both cores).",
)
def score_pipeline_job() -> None:
    cleanup = {drop_shadows_of_failed_run}
    finish_scoring.with_hooks(cleanup)(plan_buckets().map(score_bucket.with_hooks(cleanup)).collect())


@sensor(
    name="scheduled_pipelines",
    job=score_pipeline_job,
    minimum_interval_seconds=sensor_interval(60),
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs each scheduled pipeline once per due time of its cron expression (UTC).",
)
def scheduled_pipelines(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
    from dagster._utils.schedules import get_latest_completed_cron_tick

    now = dt.datetime.now(dt.UTC)
    requests = []
    for pipeline in pipelines.list_all(warehouse.engine()):
        if pipeline.trigger != "schedule" or not pipeline.cron:
            continue
        due = get_latest_completed_cron_tick(pipeline.cron, now, "UTC")
        if due.replace(tzinfo=None) <= pipeline.created_at:
            continue  # nothing was due since the pipeline was created
        requests.append(
            RunRequest(
                run_key=f"{pipeline.name}@{due:%Y%m%dT%H%M}", run_config=score_run_config(pipeline.name)
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
        if p.trigger == "on_change" and pipelines.payload_builds(engine, p) is not None
    ]
    cursor = json.loads(context.cursor) if context.cursor else None
    after = (dt.datetime.fromisoformat(cursor["t"]), int(cursor["i"])) if cursor else None
    if after is None:  # first tick: start watching from now on, do not rescore the whole base
        latest, _ = pipelines.changed_since(engine, None, 10**12)
        new_cursor = json.dumps({"t": latest[0].isoformat(), "i": latest[1]}) if latest else None
        return SensorResult(skip_reason="started watching contacts", cursor=new_cursor)
    upto, count = pipelines.changed_since(engine, after, CHANGE_CHUNK)
    if not count:
        return SensorResult(skip_reason="no changed contacts")
    window = (after[0], after[1], upto[0], upto[1])
    key = f"{after[0]:%Y%m%dT%H%M%S}.{after[1]}-{upto[0]:%Y%m%dT%H%M%S}.{upto[1]}"
    requests = [
        RunRequest(run_key=f"{p.name}:{key}", run_config=score_run_config(p.name, window)) for p in watching
    ]
    context.log.info(f"{count:,} changed contacts; {len(requests)} pipeline run(s)")
    return SensorResult(run_requests=requests, cursor=json.dumps({"t": upto[0].isoformat(), "i": upto[1]}))


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
        builds = pipelines.payload_builds(engine, pipeline) if pipeline.trigger == "on_change" else None
        if builds is None:
            continue
        # one run per pipeline and payload builds: the run key makes every later tick a no-op
        key = f"{pipeline.id}:{pipeline.name}@builds:" + ",".join(f"{s}.{b}" for s, b in builds)
        requests.append(RunRequest(run_key=key, run_config=score_run_config(pipeline.name)))
    if not requests:
        return SensorResult(skip_reason="no on-change pipeline with a built payload")
    return SensorResult(run_requests=requests)
