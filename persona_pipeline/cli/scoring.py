"""score and pipeline: assigning contacts to personas, one at a time or a whole population."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from persona_pipeline.cli.output import clip, names, say
from persona_pipeline.errors import ScoringError
from persona_pipeline.scoring import pipelines
from persona_pipeline.warehouse import persona_sets as sets_store
from persona_pipeline.warehouse.engine import get_engine


def score(args: argparse.Namespace) -> int:
    from persona_pipeline.scoring.realtime import (  # numpy, pandas: the model
        load_scorer,
        score_stored_contact,
    )

    if args.contact is not None:
        say(json.dumps(score_stored_contact(args.persona_set, args.contact), default=str))
        return 0
    contact = _contact(args.json)
    scorer = load_scorer(args.persona_set)
    scored = scorer.score(contact)
    if set(scored.missing) == set(scorer.model.transform.trait_names):  # stdout stays the JSON alone
        print(
            "warning: the contact gives none of the traits this set scores on "
            f"({', '.join(scorer.model.transform.trait_names)}): its persona is the one any empty contact gets",
            file=sys.stderr,
        )
    for line in scored.not_levels:  # scored as missing, as a load reads it: said where a person looks
        print(f"warning: {line}; scored without it", file=sys.stderr)
    say(json.dumps(scored.to_dict()))
    return 0


def _contact(given: str) -> dict:
    """The contact of --json: JSON text, @FILE (a document too large for a command line), or - for stdin."""
    source = "--json"
    text = given
    if given == "-":
        source, text = "standard input", sys.stdin.read()
    elif given.startswith("@"):
        source = given[1:]
        try:
            text = Path(source).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ScoringError(f"cannot read the contact from {source}: {reason}") from exc
    try:
        contact = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScoringError(f"{source} is not valid JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(contact, dict):
        raise ScoringError(f'{source} must hold one JSON object of traits, like {{"age": 34}}')
    return contact


def pipeline(args: argparse.Namespace) -> int:
    engine = get_engine()
    if args.action == "create":
        created = pipelines.create(
            engine,
            args.name,
            names(args.population),
            names(args.payload),
            args.trigger,
            args.cron,
            args.table,
            args.csv,
            args.score_in,
        )
        say(
            f"created pipeline {created.name!r} ({created.trigger}{' ' + created.cron if created.cron else ''}"
            f", scored in {created.score_in})"
        )
        return 0
    if args.action == "list":
        sets = {r.id: r.name for r in sets_store.list_all(engine)}
        for p in pipelines.list_all(engine):
            destination = ", ".join(d for d in (p.destination_table, p.destination_csv) if d)
            last = p.last_run_at.strftime("%Y-%m-%d %H:%M") if p.last_run_at else "never run"
            say(
                f"{clip(p.name, 28):<28} {p.trigger:<9} {p.cron or '':<12} population {','.join(p.population)} · "
                f"payload {','.join(sets.get(i, str(i)) for i in p.payload)} → {destination} · scored in {p.score_in} · {last}"
            )
        return 0
    if args.action == "run":
        from persona_pipeline.runtime.jobs import run_pipeline  # Dagster: a run is a job

        pipelines.get(engine, args.name)
        report = run_pipeline(args.name, say)
        outcome = "done" if report.success else "failed: " + report.message
        say(f"pipeline {args.name!r}: {outcome} in {report.seconds:.1f}s")
        return 0 if report.success else 1
    from persona_pipeline.runtime.deletion import delete_pipeline  # Dagster: the guard looks at runs

    for removed in delete_pipeline(engine, args.name):
        say(f"deleted {removed}")
    return 0
