"""persona-set: create, list, show, build and change persona sets.

`list` and `show` read the catalog with SQLAlchemy alone; the other actions import the services they need
when they run (noted where they do), so the read-only commands answer quickly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from persona_pipeline.cli.output import clip, names, say, shell_quote
from persona_pipeline.core.domain import NO_RULE, PersonaSet, PersonaSetStatus
from persona_pipeline.persona_sets import catalog
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import get_engine

if TYPE_CHECKING:
    from persona_pipeline.runtime.jobs import RunReport


def persona_set(args: argparse.Namespace) -> int:
    return ACTIONS[args.action](get_engine(), args)


def create(engine: Engine, args: argparse.Namespace) -> int:
    record = catalog.create(
        engine,
        args.name,
        args.cohort,
        names(args.traits) or None,
        args.personas,
        args.seed,
        names(args.analysis_traits),
        args.explore,
        args.method,
    )
    say(f"created persona set {record.name!r} (id {record.id}) on cohort {record.cohort!r}: {record.status}")
    _say_clustered(engine, record, names(args.analysis_traits))
    say(f"build it with: persona-pipeline persona-set build {shell_quote(record.name)}")
    return 0


def _say_clustered(engine: Engine, record: PersonaSet, analysis_traits: list[str]) -> None:
    """Analysis traits the set clusters on anyway are said, not silently taken (a trial's --analysis-traits
    gender, gender being clustered on)."""
    clustered = catalog.clustered_among(engine, record, analysis_traits)
    if clustered:
        say(
            f"  {', '.join(clustered)} {'is' if len(clustered) == 1 else 'are'} clustered on already: the Analysis "
            "shows them among the clustering traits"
        )


def list_sets(engine: Engine, _args: argparse.Namespace) -> int:
    rows = store.list_all(engine)
    if not rows:
        say("no persona sets yet: persona-pipeline persona-set create --name NAME --cohort COHORT")
        return 0
    say(f"{'name':<32} {'personas':>8}  {'method':<12} {'cohort':<22} {'status':<9} {'explore':<7}  built at")
    for r in rows:
        k = len(store.read_personas(engine, r.id))
        built = r.built_at.strftime("%Y-%m-%d %H:%M") if r.built_at else "-"
        shown = "shown" if r.show_in_explore else "hidden"
        say(
            f"{clip(r.name, 32):<32} {k or '-':>8}  {r.method:<12} {clip(r.cohort, 22):<22} {r.status:<9} "
            f"{shown:<7}  {built}"
        )
    return 0


def show(engine: Engine, args: argparse.Namespace) -> int:
    print_set(engine, store.get(engine, args.name))
    return 0


def print_set(engine: Engine, record: PersonaSet) -> None:
    """The set's status, its current build's figures and each persona's definition."""
    say(  # the method the next build uses; each build's own is on its line
        f"persona set {record.name!r} · cohort {record.cohort!r} · method {record.method} · status {record.status}"
    )
    if record.status is PersonaSetStatus.ERRORED and record.error:
        say(f"  error: {record.error}")
    build = store.current_build(engine, record)
    if build is None:
        say("  not built yet")
        return
    say(
        f"  build {build.build} ({build.method}): {build.k} personas · {build.cohort_size:,} contacts "
        f"({build.quarantined:,} quarantined) · stability {build.stability:.2f}"
    )
    warning = build.stability_warning()
    if warning:
        say(f"  warning: {warning}")
    if catalog.data_changed_since_build(engine, record, build):
        say(
            f"  note: the data of cohort {record.cohort!r} changed since this build; its personas and "
            f"memberships are as built: persona-pipeline persona-set build {shell_quote(record.name)} takes the "
            "change in"
        )
    figure = build.identity_figure
    if figure is not None:
        say(f"  since the previous build: {figure.text()}")
    say(f"  k: {build.k_reason}")
    rows = build.k_table()
    if rows:
        columns = list(rows[0])
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
        say("     " + "  ".join(c.rjust(widths[c]) for c in columns))
        for row in rows:
            say("     " + "  ".join(row[c].rjust(widths[c]) for c in columns))
    for p in store.read_personas(engine, record.id):
        say("")
        say(f"  [{p.persona_id}] {p.name} — {p.population:,} contacts ({p.share:.1%})")
        if p.named_by_user and p.data_name:  # kept over rebuilds: what its traits say now, to check it by
            say(f"      a name you gave; its traits alone name it {p.data_name!r} now")
        for effect in p.defining:
            say(f"      · {effect.text}")
        for rule in p.rules:  # all of them, as the report and the export show them
            say(f"      rule: {rule.described}")
        if not p.rules:
            say(f"      rule: {NO_RULE}")
        if p.interpretation is not None:
            say(f"      {p.interpretation.summary}")
            if p.interpretation.prose:
                say(f"      in {p.interpretation.prose_by}'s words: {p.interpretation.prose}")
            for idea in p.interpretation.ideas:
                say(f"      idea: {idea}")


def explore(engine: Engine, args: argparse.Namespace) -> int:
    record, changed = catalog.set_show_in_explore(engine, args.name, args.show)
    state = "shown in" if args.show else "hidden from"
    say(f"{record.name!r} is {state} Explore" + ("" if changed else " (it already was)"))
    return 0


def rename_persona(engine: Engine, args: argparse.Namespace) -> int:
    new_name = catalog.rename_persona(engine, args.name, args.persona, args.to)
    say(f"persona {args.persona} of {args.name!r} is now {new_name!r} (kept across rebuilds)")
    return 0


def update(engine: Engine, args: argparse.Namespace) -> int:
    changes: dict = {}
    if args.cohort:
        changes["cohort"] = args.cohort
    if args.traits or args.default_traits:
        changes["traits"] = None if args.default_traits else names(args.traits)
    if args.personas is not None or args.auto_personas:
        changes["n_personas"] = None if args.auto_personas else args.personas
    if args.method:
        changes["method"] = args.method
    if catalog.update(engine, args.name, **changes):
        say(f"{args.name!r} changed and queued for a rebuild (the sensor builds it; or: persona-set build)")
        _say_if_nothing_launches(args.name)
    else:
        say(f"{args.name!r}: nothing changed")
    return 0


def delete(engine: Engine, args: argparse.Namespace) -> int:
    from persona_pipeline.runtime.deletion import delete_persona_set  # Dagster: the guard looks at runs

    for line in delete_persona_set(engine, args.name):
        say(f"deleted {line}")
    return 0


def rebuild(engine: Engine, args: argparse.Namespace) -> int:
    record = catalog.rebuild(engine, args.name)
    say(f"{record.name!r} queued for a rebuild (the queued_persona_sets sensor launches it)")
    _say_if_nothing_launches(record.name)
    return 0


def _say_if_nothing_launches(name: str) -> None:
    from persona_pipeline.runtime.instance import sensor_daemon_running  # Dagster: the daemon's heartbeats

    if not sensor_daemon_running():
        say(
            "  no Dagster daemon is running, so no sensor will launch it: build it now with "
            f"persona-pipeline persona-set build {shell_quote(name)}, or start one (make dagster)"
        )


def analysis_traits(engine: Engine, args: argparse.Namespace) -> int:
    from persona_pipeline.runtime.jobs import refresh_study  # Dagster: the Analysis is an asset

    chosen = names(args.set)
    record = catalog.set_analysis_traits(engine, args.name, chosen)
    say(f"analysis traits of {record.name!r}: {', '.join(chosen) or 'none'} (the personas are not rebuilt)")
    _say_clustered(engine, record, chosen)
    if record.current_build is None:  # nothing built yet: the first build studies them
        return 0
    result = refresh_study(record.name, say, ["persona_analysis", "persona_report"])
    if not result.success:
        say(f"analysis failed: {result.message}")
    return 0 if result.success else 1


def build(engine: Engine, args: argparse.Namespace) -> int:
    from persona_pipeline.runtime.jobs import build_persona_set  # Dagster: the build is a job

    report = build_persona_set(args.name, say, args.max_quarantine_share)
    if not report.success:
        return build_failed(report)
    say(f"persona set {args.name!r} {report.message}")
    print_set(engine, store.get(engine, args.name))
    return 0


def build_failed(report: RunReport) -> int:
    """A build that did not land: one line on stderr; exit 2 when the data or the request stopped it."""
    print(f"error: build failed: {report.message}", file=sys.stderr)
    return 2 if report.user_error else 1


ACTIONS: dict[str, Callable[[Engine, argparse.Namespace], int]] = {
    "create": create,
    "list": list_sets,
    "show": show,
    "explore": explore,
    "rename-persona": rename_persona,
    "update": update,
    "delete": delete,
    "rebuild": rebuild,
    "analysis-traits": analysis_traits,
    "build": build,
}
