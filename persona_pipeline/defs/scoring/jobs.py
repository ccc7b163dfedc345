"""The scoring job: a pipeline's population fanned out over contact_id buckets, one step each."""

import datetime as dt

from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    HookContext,
    OpExecutionContext,
    Out,
    failure_hook,
    job,
    op,
)

from persona_pipeline.core.domain import ChangeWindow, ScoringBucket
from persona_pipeline.defs.shared.executor import step_executor
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.scoring import pipelines, runs
from persona_pipeline.warehouse.replacement import Replacement

SCORE_JOB = "score_pipeline"


class ScoreConfig(Config):
    pipeline: str
    after_time: str | None = None  # with the next three: score only contacts changed in this window
    after_id: int = 0
    upto_time: str | None = None
    upto_id: int = 0
    buckets: int = 0  # 0: one per core (PERSONA_SCORE_BUCKETS); runs executed in one process ask for theirs


def _window(config: ScoreConfig) -> ChangeWindow | None:
    if config.upto_time is None:
        return None
    after = dt.datetime.fromisoformat(config.after_time) if config.after_time else dt.datetime(1970, 1, 1)
    return ChangeWindow(after, config.after_id, dt.datetime.fromisoformat(config.upto_time), config.upto_id)


def score_run_config(name: str, window: ChangeWindow | None = None, buckets: int = 0) -> dict:
    config: dict = {"pipeline": name} | ({"buckets": buckets} if buckets else {})
    if window is not None:
        config |= {
            "after_time": window.after_time.isoformat(),
            "after_id": window.after_id,
            "upto_time": window.upto_time.isoformat(),
            "upto_id": window.upto_id,
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
    buckets = runs.plan(engine, pipeline, config.buckets or None, say=context.log.info)
    replacement = None
    if _window(config) is None:
        replacement = runs.start_replacement(engine, pipeline, runs.run_token(context.run_id))
    shadows = replacement.to_dict() if replacement else None  # step outputs travel as JSON
    for bucket in buckets:
        yield DynamicOutput(
            {"bucket": bucket.to_list(), "replacement": shadows}, mapping_key=f"bucket_{bucket.index}"
        )


SCORING_POOL = (
    "warehouse_scoring"  # `dagster instance concurrency set warehouse_scoring N` bounds the warehouse's load
)


@op(out=Out(dict), pool=SCORING_POOL)
def score_bucket(
    context: OpExecutionContext, config: ScoreConfig, warehouse: WarehouseResource, work: dict
) -> dict:
    engine = warehouse.engine()
    pipeline = pipelines.get(engine, config.pipeline)
    bucket = ScoringBucket.from_list(work["bucket"])
    scored = runs.score_bucket(engine, pipeline, bucket, window=_window(config), replacement=_shadows(work))
    context.log.info(f"bucket {bucket.index}: {scored:,} contacts scored")
    return work | {"scored": scored}


@op
def finish_scoring(
    context: OpExecutionContext, config: ScoreConfig, warehouse: WarehouseResource, done: list[dict]
) -> int:
    engine = warehouse.engine()
    pipeline = pipelines.get(engine, config.pipeline)
    replacement = _shadows(done[0]) if done else None
    buckets = sorted((ScoringBucket.from_list(d["bucket"]) for d in done), key=lambda b: b.index)
    path = runs.finish_run(engine, pipeline, replacement, buckets)
    scored = sum(d["scored"] for d in done)
    context.log.info(
        f"pipeline {config.pipeline!r}: {scored:,} contacts scored"
        + (f" (swapped in as {len(done)} partitions)" if replacement else "")
        + (f"; CSV {path}" if path else "")
    )
    return scored


def _shadows(work: dict) -> Replacement | None:
    return Replacement.from_dict(work["replacement"]) if work["replacement"] else None


@failure_hook(required_resource_keys={"warehouse"})
def drop_shadows_of_failed_run(context: HookContext) -> None:
    """A bucket or the swap failed: the run's shadows go now, not when a run an hour later finds them."""
    config = context.op_config
    if config.get("upto_time") is not None:
        return  # an on-change run writes in place: no shadows
    engine = context.resources.warehouse.engine()
    dropped = runs.abandon_run(engine, config["pipeline"], runs.run_token(context.run_id))
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
