"""The command line's grammar: every command and flag, and the module:function that carries it out.

Imports nothing but argparse and the domain's vocabulary, so `--help` answers at Python's start-up cost;
each command's module is imported only when that command runs (see cli.main).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import NoReturn

from persona_pipeline.core.domain import (
    DEFAULT_MAX_QUARANTINE_SHARE,
    EXPORT_KINDS,
    MAX_PERSONAS,
    MIN_PERSONAS,
    ClusteringMethod,
    ScoringEngine,
    Trigger,
)

DESCRIPTION = (
    "persona-pipeline: seed or load customers, run the SQL models, create, build and inspect persona sets."
)


LARGEST_COUNT = 1_000_000_000  # contacts, days, seeds: beyond this a value is a typo, not a request


def positive(text: str) -> int:
    """A whole number of at least 1 (contacts, days of a backfill, days of an order window)."""
    if not text.strip().isdigit() or not 1 <= int(text) <= LARGEST_COUNT:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {LARGEST_COUNT:,}, not {text!r}")
    return int(text)


def non_negative(text: str) -> int:
    if not text.strip().isdigit() or int(text) > LARGEST_COUNT:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {LARGEST_COUNT:,}, not {text!r}")
    return int(text)


def day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, not {text!r}") from None


def share(text: str) -> float:
    """A share from 0 to 1: nan, inf and negative numbers are refused here, before anything runs."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, like 0.05, not {text!r}") from None
    if not 0 <= value <= 1:  # also false for nan
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, like 0.05, not {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (what was wrong and where to read more), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="persona-pipeline", description=DESCRIPTION)
    sub = top.add_subparsers(dest="command", required=True)

    _data_commands(sub)
    _persona_set_commands(sub)
    _study_commands(sub)
    _scoring_commands(sub)
    _demo_command(sub)
    _worker_command(sub)
    return top


def _data_commands(sub: argparse._SubParsersAction) -> None:
    """seed, load, models: the customer base and the SQL models."""
    seed = sub.add_parser("seed", help="write a seeded, realistic customer base to the warehouse")
    seed.add_argument("--contacts", type=positive, default=20_000)
    seed.add_argument("--days", type=non_negative, default=90, help="days of trait history")
    seed.add_argument("--seed", type=non_negative, default=0)
    seed.add_argument("--end-date", type=day, help="last day of the history, YYYY-MM-DD (default: today)")
    seed.set_defaults(func="data:seed")

    load = sub.add_parser(
        "load",
        help="load your own contacts (CSV or Parquet) with a traits file: merges into the stored base",
        description="Merge a contacts file into the warehouse: new contacts are added, changed ones updated "
        "(with a new trait-history version), the others stay. --replace replaces the whole base; "
        "--delete-missing or --remove take contacts out. The input formats are in the README (Input formats).",
    )
    load.add_argument("contacts", nargs="?", help="contacts file (.csv, .tsv, .txt or .parquet)")
    load.add_argument(
        "--traits", help="traits file (YAML) declaring each trait's kind and the file's columns"
    )
    load.add_argument(
        "--orders",
        help="orders file: order_id, contact_id, ordered_at, amount, and optionally product_category, status, "
        "refunded; appended and de-duplicated by order id",
    )
    load.add_argument("--remove", help="a file of contact ids to remove from the base")
    scope = load.add_mutually_exclusive_group()
    scope.add_argument(
        "--replace",
        action="store_true",
        help="replace the whole base (contacts, history, orders) with the files",
    )
    scope.add_argument(
        "--delete-missing",
        action="store_true",
        help="remove stored contacts that the contacts file does not hold",
    )
    load.add_argument(
        "--dry-run", action="store_true", help="validate and report what would change; write nothing"
    )
    load.add_argument(
        "--max-reject-share",
        type=share,
        default=0.05,
        help="load nothing when more than this share of a file's rows is rejected (default 0.05)",
    )
    load.add_argument("--delimiter", help="field delimiter (default: detected)")
    load.add_argument("--decimal", choices=[".", ","], help="decimal mark, '.' or ',' (default: detected)")
    load.add_argument(
        "--date-format",
        help="strftime format of dates, e.g. %%d/%%m/%%Y (default: inferred from each whole column)",
    )
    load.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    load.add_argument(
        "--rejects",
        help="where to write rejected rows as CSV (default: load_rejects_<date>_<time>.csv in PERSONA_HOME)",
    )
    load.set_defaults(func="data:load")

    models = sub.add_parser("models", help="list or run the SQL models in dbt_like_sql/")
    models.add_argument("action", choices=["run", "list", "delete"])
    models.add_argument(
        "--only", nargs="*", help="run: these models and what they need; delete: these cohorts"
    )
    models.set_defaults(func="data:models")


def _persona_set_commands(sub: argparse._SubParsersAction) -> None:
    """persona-set: create, list, show, build and change persona sets."""
    ps = sub.add_parser("persona-set", help="create, list, show and build persona sets")
    ps_sub = ps.add_subparsers(dest="action", required=True)
    create = ps_sub.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--cohort", required=True, help="a model in dbt_like_sql/cohorts/")
    create.add_argument("--traits", help="clustering traits, comma separated (default: the catalog's)")
    create.add_argument(
        "--personas",
        type=int,
        help=f"number of personas, {MIN_PERSONAS}..{MAX_PERSONAS} (default: chosen by the data)",
    )
    create.add_argument("--seed", type=non_negative, default=0)
    create.add_argument(
        "--method",
        choices=[str(m) for m in ClusteringMethod],
        default=str(ClusteringMethod.KMEANS),
        help="k-means (default), or latent-class: numbers, levels and missing values modelled per persona "
        "(closer to hidden segments on mixed, overlapping data; slower to build: BENCHMARKS.md)",
    )
    create.add_argument("--analysis-traits", help="extra traits to study, not cluster on, comma separated")
    create.add_argument(
        "--explore",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show the set in Explore once built (default: shown)",
    )
    explore_set = ps_sub.add_parser("explore", help="show or hide the set in Explore (no rebuild)")
    explore_set.add_argument("name")
    toggle = explore_set.add_mutually_exclusive_group(required=True)
    toggle.add_argument("--show", dest="show", action="store_true")
    toggle.add_argument("--hide", dest="show", action="store_false")
    ps_sub.add_parser("list")
    rename = ps_sub.add_parser("rename-persona", help="give a persona your own name; rebuilds keep it")
    rename.add_argument("name")
    rename.add_argument("--persona", type=int, required=True, help="the persona id (see persona-set show)")
    rename.add_argument("--to", required=True)
    update = ps_sub.add_parser(
        "update", help="change the cohort, traits, number of personas or method; queues a rebuild"
    )
    update.add_argument("name")
    update.add_argument("--cohort")
    traits = update.add_mutually_exclusive_group()
    traits.add_argument("--traits", help="clustering traits, comma separated")
    traits.add_argument(
        "--default-traits", action="store_true", help="reset to the catalog's clustering traits"
    )
    personas = update.add_mutually_exclusive_group()
    personas.add_argument("--personas", type=int)
    personas.add_argument("--auto-personas", action="store_true", help="let the data choose the number again")
    update.add_argument(
        "--method", choices=[str(m) for m in ClusteringMethod], help="k-means or latent-class"
    )
    delete = ps_sub.add_parser("delete", help="delete a persona set, its results and its partition")
    delete.add_argument("name")
    rebuild = ps_sub.add_parser("rebuild", help="queue a rebuild for the sensor")
    rebuild.add_argument("name")
    extra = ps_sub.add_parser("analysis-traits", help="set the traits studied beside the clustering ones")
    extra.add_argument("name")
    extra.add_argument("--set", required=True, help="comma separated trait names ('' clears them)")
    show = ps_sub.add_parser("show")
    show.add_argument("name")
    build = ps_sub.add_parser("build")
    build.add_argument("name")
    build.add_argument(
        "--max-quarantine-share",
        type=share,
        default=None,
        help=f"stop the build when more than this share of rows fails validation (default {DEFAULT_MAX_QUARANTINE_SHARE})",
    )
    ps.set_defaults(func="persona_sets:persona_set")


def _study_commands(sub: argparse._SubParsersAction) -> None:
    """analyse, flow, report, explore, export: studying built persona sets."""
    analyse = sub.add_parser("analyse", help="refresh a ready persona set's Analysis and print its summary")
    analyse.add_argument("name")
    analyse.add_argument(
        "--window-days", type=positive, default=None, help="orders window, days up to the latest order"
    )
    analyse.set_defaults(func="studies:analyse")

    flow = sub.add_parser("flow", help="membership snapshots over time, and the flow between days")
    flow_sub = flow.add_subparsers(dest="action", required=True)
    snap = flow_sub.add_parser(
        "snapshot", help="snapshot every ready persona set for a day or a range of days"
    )
    snap.add_argument(
        "--day", type=day, help="the last day, YYYY-MM-DD (default: today or the history's last day)"
    )
    snap.add_argument("--days", type=positive, default=1, help="how many days up to --day (a backfill)")
    show_flow = flow_sub.add_parser("show", help="members per persona per day, and the from -> to matrix")
    show_flow.add_argument("name")
    show_flow.add_argument("--from", dest="from_day", type=day)
    show_flow.add_argument("--to", dest="to_day", type=day)
    flow.set_defaults(func="studies:flow")

    report = sub.add_parser("report", help="write the persona set's HTML report and print its path")
    report.add_argument("name")
    report.add_argument("--out", help="where to write it (default: PERSONA_HOME/reports/)")
    report.set_defaults(func="studies:report")

    explore = sub.add_parser("explore", help="compare the persona sets shown in Explore, side by side")
    explore.add_argument("--out", help="where to write the page (default: PERSONA_HOME/reports/explore.html)")
    explore.set_defaults(func="studies:explore")

    export = sub.add_parser("export", help="stream memberships, analysis, flow or history to CSV")
    export.add_argument("name")
    export.add_argument("--what", required=True, choices=EXPORT_KINDS)
    export.add_argument("--out", required=True)
    export.set_defaults(func="studies:export")


def _scoring_commands(sub: argparse._SubParsersAction) -> None:
    """score and pipeline: assigning contacts to personas."""
    score = sub.add_parser("score", help="assign one contact, given as JSON, to a persona of a ready set")
    score.add_argument("--persona-set", required=True)
    given = score.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--contact",
        help="score a stored contact by its id: the file's own key (text or number); where the files had "
        "numeric ids, also its contact_id",
    )
    given.add_argument(
        "--json",
        help='the contact\'s traits: JSON text, e.g. \'{"age": 34, "dog_owner": true}\', @FILE to read it '
        "from a file, or - to read it from standard input",
    )
    score.set_defaults(func="scoring:score")

    pipe = sub.add_parser("pipeline", help="scoring pipelines: create, list, run, delete")
    pipe_sub = pipe.add_subparsers(dest="action", required=True)
    pipe_create = pipe_sub.add_parser("create")
    pipe_create.add_argument("name")
    pipe_create.add_argument("--population", required=True, help="cohorts, comma separated (unioned)")
    pipe_create.add_argument("--payload", required=True, help="persona sets, comma separated")
    pipe_create.add_argument("--trigger", default=Trigger.AD_HOC.value, choices=[t.value for t in Trigger])
    pipe_create.add_argument("--cron", help="with --trigger schedule, e.g. '0 2 * * *' (UTC)")
    pipe_create.add_argument("--table", help="destination warehouse table")
    pipe_create.add_argument("--csv", help="destination CSV file, inside PERSONA_EXPORT_DIR")
    pipe_create.add_argument(
        "--score-in",
        default=ScoringEngine.PYTHON.value,
        choices=[e.value for e in ScoringEngine],
        help="python (read, assign, write back) or warehouse (SQL from the model, run in PostgreSQL)",
    )
    pipe_sub.add_parser("list")
    for action in ("run", "delete"):
        pipe_sub.add_parser(action).add_argument("name")
    pipe.set_defaults(func="scoring:pipeline")


def _demo_command(sub: argparse._SubParsersAction) -> None:
    """demo: everything at once on a seeded base."""
    demo = sub.add_parser("demo", help="seed 20,000 contacts, build a persona set and print it")
    demo.add_argument("--contacts", type=positive, default=20_000)
    demo.add_argument("--days", type=non_negative, default=90)
    demo.add_argument("--seed", type=non_negative, default=0)
    demo.set_defaults(func="demo:demo")


def _worker_command(sub: argparse._SubParsersAction) -> None:
    """worker: serve steps of runs that PERSONA_EXECUTOR=celery sends to the broker."""
    worker = sub.add_parser(
        "worker",
        help="serve steps of runs executed on Celery (PERSONA_EXECUTOR=celery), on this or any host",
    )
    worker.add_argument(
        "--concurrency", type=positive, default=1, help="steps at once (processes), default 1"
    )
    worker.add_argument("--name", default=None, help="the worker's name in the UI's step logs (name@host)")
    worker.set_defaults(func="worker:worker")
