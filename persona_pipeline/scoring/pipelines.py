"""Scoring pipelines: a population (cohorts, unioned) scored with a payload (persona sets) into destinations.

Defining them, validated here for every caller; running them is scoring.runs.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import Engine

from persona_pipeline.config import exports_dir
from persona_pipeline.core.domain import Pipeline, ScoringEngine, Trigger, clean_name
from persona_pipeline.core.lineage import PipelineRef
from persona_pipeline.errors import PipelineError
from persona_pipeline.sql_models import discover, require_cohort
from persona_pipeline.warehouse import persona_sets as sets_store
from persona_pipeline.warehouse import pipelines as store
from persona_pipeline.warehouse.tables import HIDDEN_TRUTH_TABLE, SOURCE_TABLES, metadata

TRIGGERS = tuple(t.value for t in Trigger)
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


def _cron_problem(cron: str) -> str:
    """What is wrong with a cron expression the scheduler refused: the field count, or a value out of range."""
    fields = cron.split()
    if len(fields) != len(CRON_FIELDS):
        return f"it has {len(fields)} fields, not five (minute hour day-of-month month day-of-week)"
    for text, (name, low, high) in zip(fields, CRON_FIELDS, strict=True):
        for number in re.findall(r"\d+", re.sub(r"/\d+", "", text)):  # a step (*/15) is no value
            if not low <= int(number) <= high:
                return f"the {name} is {number}, outside {low}-{high}"
    return "a field is not a number, range, list, step or name cron reads"


def valid_cron(expression: str) -> bool:
    """Five fields of minute, hour, day, month and weekday, as the sensor's cron iterator reads them."""
    from croniter import croniter  # only pipelines with a schedule need it

    fields = expression.split()
    return len(fields) == 5 and all(CRON_FIELD.match(f) for f in fields) and croniter.is_valid(expression)


def create(
    engine: Engine,
    name: str,
    population: list[str],
    payload: list[str],
    trigger: str = Trigger.AD_HOC.value,
    cron: str | None = None,
    destination_table: str | None = None,
    destination_csv: str | None = None,
    score_in: str = ScoringEngine.PYTHON.value,
) -> Pipeline:
    clean = clean_name(name, "a pipeline", PipelineError)
    engines = [e.value for e in ScoringEngine]
    if score_in not in engines:
        raise PipelineError(f"--score-in must be one of {', '.join(engines)}, not {score_in!r}")
    if score_in == ScoringEngine.WAREHOUSE and engine.dialect.name != "postgresql":
        raise PipelineError(
            "--score-in warehouse runs the model as SQL inside PostgreSQL, and this warehouse is "
            f"{engine.dialect.name}: set PERSONA_WAREHOUSE_URL to a PostgreSQL database, or score in python "
            "(the default)"
        )
    if not population:
        raise PipelineError("a pipeline needs a population: --population cohort[,cohort]")
    models = discover()
    for cohort in population:
        require_cohort(models, cohort)
    if not payload:
        raise PipelineError("a pipeline needs a payload: --payload persona-set[,persona-set]")
    set_ids = [sets_store.get(engine, s).id for s in payload]
    if trigger not in TRIGGERS:
        raise PipelineError(f"--trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
    if trigger == Trigger.SCHEDULE and not cron:
        raise PipelineError("--trigger schedule needs --cron, e.g. --cron '0 2 * * *' for 02:00 daily (UTC)")
    if trigger == Trigger.SCHEDULE and not valid_cron(cron):
        raise PipelineError(
            f"{cron!r} is not a valid cron expression: {_cron_problem(cron)} (e.g. '0 2 * * *' for 02:00 daily)"
        )
    if trigger != Trigger.SCHEDULE and cron:
        raise PipelineError("--cron goes with --trigger schedule")
    if not destination_table and not destination_csv:
        raise PipelineError("a pipeline needs a destination: --table NAME and/or --csv FILE")
    if destination_table and (
        not TABLE_NAME.match(destination_table) or destination_table in _reserved_tables()
    ):
        raise PipelineError(
            f"{destination_table!r} cannot be a destination table: use lower case letters, digits and '_', "
            "and not the name of one of persona-pipeline's own tables"
        )
    csv_path = None
    if destination_csv:
        csv_path = (exports_dir() / destination_csv).resolve()
        if not csv_path.is_relative_to(exports_dir()):
            raise PipelineError(
                f"{destination_csv!r} is outside the export folder {exports_dir()}; give a path inside it"
            )
    return store.insert(
        engine,
        clean,
        population,
        set_ids,
        Trigger(trigger),
        cron,
        destination_table,
        str(csv_path) if csv_path else None,
        ScoringEngine(score_in),
    )


def _reserved_tables() -> set[str]:
    return set(metadata.tables) | set(SOURCE_TABLES) | {HIDDEN_TRUTH_TABLE} | set(discover())


get = store.get
list_all = store.list_all


def refs(engine: Engine) -> list[PipelineRef]:
    """Every pipeline as the lineage guard sees it."""
    names = {r.id: r.name for r in sets_store.list_all(engine)}
    return [
        PipelineRef(p.name, tuple(p.population), tuple(names.get(i, str(i)) for i in p.payload))
        for p in list_all(engine)
    ]


def delete(engine: Engine, name: str) -> Pipeline:
    """Remove a pipeline and its stored scores (its destination table and CSV stay: they are the user's)."""
    pipeline = get(engine, name)
    store.delete(engine, pipeline)
    return pipeline


def payload_builds(engine: Engine, pipeline: Pipeline) -> list[tuple[int, int]] | None:
    """(persona set id, current build) for the payload, or None while any of its sets has never been built."""
    builds = [(i, sets_store.get_by_id(engine, i).current_build) for i in pipeline.payload]
    return None if any(b is None for _, b in builds) else builds
