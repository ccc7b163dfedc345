"""persona-pipeline: seed or load customers, run the SQL models, create, build and inspect persona sets."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from persona_pipeline.core.lineage import LineageError
from persona_pipeline.core.scoring import ScoringError
from persona_pipeline.core.traits import CatalogError
from persona_pipeline.core.validation import DEFAULT_MAX_QUARANTINE_SHARE

EXIT_USER_ERROR = 2


def say(text: str) -> None:
    print(text, flush=True)


def _engine():  # noqa: ANN202 - a SQLAlchemy engine
    from persona_pipeline.warehouse.engine import get_engine

    return get_engine()


def cmd_seed(args: argparse.Namespace) -> int:
    from persona_pipeline.core.synthetic import generate
    from persona_pipeline.warehouse.engine import describe
    from persona_pipeline.warehouse.sources import replace_sources

    start = time.perf_counter()
    end = dt.date.fromisoformat(args.end_date) if args.end_date else None
    say(f"generating {args.contacts:,} contacts over {args.days} days (seed {args.seed}) ...")
    base = generate(args.contacts, args.days, args.seed, end)
    say(
        f"  {len(base.contacts):,} contacts, {len(base.trait_history):,} history rows, {len(base.orders):,} orders, "
        f"{len(base.catalog.traits)} traits ({time.perf_counter() - start:.1f}s)"
    )
    engine = _engine()
    counts = replace_sources(
        engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments
    )
    say(f"  written to {describe(engine)}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    say(f"done in {time.perf_counter() - start:.1f}s")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from persona_pipeline.loading import load_files

    report = load_files(
        _engine(),
        args.contacts,
        args.traits,
        orders_path=args.orders,
        delimiter=args.delimiter,
        decimal=args.decimal,
        date_format=args.date_format,
        encoding=args.encoding,
        rejects_path=args.rejects,
    )
    for line in report.lines():
        say(line)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from persona_pipeline.runner import run_sql_models
    from persona_pipeline.sql_models import discover, execution_order

    if args.action == "delete":
        from persona_pipeline.deletion import delete_cohort

        for name in args.only or []:
            for line in delete_cohort(_engine(), name):
                say(f"deleted {line}")
        return 0
    if args.action == "list":
        models = discover()
        for name in execution_order(models):
            m = models[name]
            say(f"{m.folder + '/' if m.folder else ''}{name:<28} refs: {', '.join(m.refs) or '-'}")
        return 0
    ok, _ = run_sql_models(say, args.only or None)
    return 0 if ok else 1


def cmd_persona_set(args: argparse.Namespace) -> int:
    from persona_pipeline.warehouse import persona_sets as store

    engine = _engine()
    if args.action == "create":
        from persona_pipeline.sql_models import discover, require_cohort
        from persona_pipeline.warehouse.sources import load_catalog

        require_cohort(discover(), args.cohort)
        traits = _names(args.traits) or None
        extra = _names(args.analysis_traits)
        catalog = load_catalog(engine)
        catalog.select(traits)  # unknown names fail here, before anything is stored
        if extra:
            catalog.select(extra)
        record = store.create(
            engine, args.name, args.cohort, traits, args.personas, args.seed, extra, args.explore
        )
        say(
            f"created persona set {record.name!r} (id {record.id}) on cohort {record.cohort!r}: {record.status}"
        )
        say(f"build it with: persona-pipeline persona-set build {_shell_quote(record.name)}")
        return 0
    if args.action == "list":
        rows = store.list_all(engine)
        if not rows:
            say("no persona sets yet: persona-pipeline persona-set create --name NAME --cohort COHORT")
            return 0
        say(f"{'name':<32} {'personas':>8}  {'cohort':<22} {'status':<9} {'explore':<7}  built at")
        for r in rows:
            k = len(store.read_personas(engine, r.id)) if r.current_build else 0
            built = r.built_at.strftime("%Y-%m-%d %H:%M") if r.built_at else "-"
            shown = "shown" if r.show_in_explore else "hidden"
            say(
                f"{_clip(r.name, 32):<32} {k or '-':>8}  {_clip(r.cohort, 22):<22} {r.status:<9} {shown:<7}  {built}"
            )
        return 0
    if args.action == "show":
        return _show(engine, args.name)
    if args.action == "explore":
        record = store.get(engine, args.name)
        changed = store.set_show_in_explore(engine, record.id, args.show)
        state = "shown in" if args.show else "hidden from"
        say(f"{record.name!r} is {state} Explore" + ("" if changed else " (it already was)"))
        return 0
    if args.action == "rename-persona":
        record = store.get(engine, args.name)
        store.rename_persona(engine, record.id, args.persona, args.to)
        say(f"persona {args.persona} of {record.name!r} is now {args.to.strip()!r} (kept across rebuilds)")
        return 0
    if args.action == "update":
        from persona_pipeline.sql_models import discover, require_cohort
        from persona_pipeline.warehouse.sources import load_catalog

        record = store.get(engine, args.name)
        changes: dict = {}
        if args.cohort:
            require_cohort(discover(), args.cohort)
            changes["cohort"] = args.cohort
        if args.traits or args.default_traits:
            traits = None if args.default_traits else _names(args.traits)
            load_catalog(engine).select(traits)
            changes["traits"] = traits
        if args.personas is not None or args.auto_personas:
            changes["n_personas"] = None if args.auto_personas else args.personas
        if store.update_config(engine, record.id, **changes):
            say(
                f"{record.name!r} changed and queued for a rebuild (the sensor builds it; or: persona-set build)"
            )
        else:
            say(f"{record.name!r}: nothing changed")
        return 0
    if args.action == "delete":
        from persona_pipeline.deletion import delete_persona_set

        for line in delete_persona_set(engine, args.name):
            say(f"deleted {line}")
        return 0
    if args.action == "rebuild":
        record = store.get(engine, args.name)
        store.queue(engine, record.id)
        say(f"{record.name!r} queued for a rebuild (the queued_persona_sets sensor launches it)")
        return 0
    if args.action == "analysis-traits":
        from persona_pipeline.runner import refresh_study
        from persona_pipeline.studies import check_analysis_traits, require_ready

        names = _names(args.set)
        check_analysis_traits(engine, names)
        record = store.get(engine, args.name)
        store.set_analysis_traits(engine, record.id, names)
        say(
            f"analysis traits of {record.name!r}: {', '.join(names) or 'none'} (the personas are not rebuilt)"
        )
        if record.status != "ready":
            return 0
        require_ready(record)
        result = refresh_study(record.name, say, ["persona_analysis", "persona_report"])
        if not result.success:
            say(f"analysis failed: {result.message}")
        return 0 if result.success else 1
    if args.action == "build":
        from persona_pipeline.runner import build_persona_set

        report = build_persona_set(args.name, say, args.max_quarantine_share)
        if not report.success:
            say(f"build failed: {report.message}")
            return 1
        say(f"persona set {args.name!r} {report.message}")
        return _show(engine, args.name)
    raise AssertionError(args.action)


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def cmd_analyse(args: argparse.Namespace) -> int:
    from persona_pipeline.runner import refresh_study
    from persona_pipeline.studies import read_analysis, require_ready
    from persona_pipeline.warehouse import persona_sets as store

    engine = _engine()
    record = store.get(engine, args.name)
    require_ready(record)
    result = refresh_study(record.name, say, ["persona_analysis", "persona_report"], args.window_days)
    if not result.success:
        say(f"analysis failed: {result.message}")
        return 1
    table = read_analysis(engine, record.id)
    names = {p["persona_id"]: p["name"] for p in store.read_personas(engine, record.id)}
    sizes = table[table["section"] == "size"].set_index("persona_id")
    revenue = table[table["section"] == "revenue"].pivot_table(
        index="persona_id", columns="bucket", values="value"
    )
    say(
        f"\n{'persona':<40} {'contacts':>9} {'share':>7} {'revenue':>8} {'avg order':>10} {'orders/cust':>11}"
    )
    for pid in revenue.index:
        row = revenue.loc[pid]
        label = "whole cohort" if pid == 0 else names.get(int(pid), str(pid))
        say(
            f"{_clip(label, 40):<40} {int(sizes.loc[pid, 'count']):>9,} {sizes.loc[pid, 'share']:>7.1%} "
            f"{row['revenue_share']:>8.1%} {row['average_order']:>10,.2f} {row['orders_per_customer']:>11.2f}"
        )
    quality = {r.bucket: int(r.count) for r in table[table["section"] == "quality"].itertuples()}
    say(
        f"\norders used {quality['used']:,}; left out: {quality['missing_amount']:,} missing amount, "
        f"{quality['negative_amount']:,} negative, {quality['unknown_contact']:,} unknown contact, "
        f"{quality['outside_cohort']:,} outside the cohort"
    )
    return 0


def cmd_flow(args: argparse.Namespace) -> int:
    from persona_pipeline import studies
    from persona_pipeline.core.flow import transition_matrix
    from persona_pipeline.runner import take_snapshots
    from persona_pipeline.warehouse import persona_sets as store

    engine = _engine()
    if args.action == "snapshot":
        first, last = studies.history_days(engine)
        end = dt.date.fromisoformat(args.day) if args.day else min(last, dt.date.today())
        days = [end - dt.timedelta(days=i) for i in range(args.days)]
        for day in days:
            studies.require_day(engine, day)
        start = time.perf_counter()
        for day, ok, message in take_snapshots(days, say):
            if not ok:
                say(f"snapshot of {day} failed: {message}")
                return 1
        say(f"{len(days)} day(s) snapshotted in {time.perf_counter() - start:.1f}s")
        return 0
    record = store.get(engine, args.name)
    counts = studies.flow_counts(engine, record.name)
    names = {p["persona_id"]: p["name"] for p in store.read_personas(engine, record.id)}
    pivot = counts.pivot_table(index="day", columns="persona_id", values="members", fill_value=0).astype(int)
    pivot.columns = [_clip(names.get(int(c), str(c)), 24) for c in pivot.columns]
    say(pivot.to_string())
    days = sorted(counts["day"].unique())
    first = dt.date.fromisoformat(args.from_day) if args.from_day else days[0]
    second = dt.date.fromisoformat(args.to_day) if args.to_day else days[-1]
    matrix = transition_matrix(studies.flow_transitions(engine, record.name, first, second))
    matrix.index = [_clip(names.get(i, str(i)), 24) for i in matrix.index]
    matrix.columns = [_clip(names.get(c, str(c)), 24) for c in matrix.columns]
    say(f"\nfrom {first} (rows) to {second} (columns):\n{matrix.to_string()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from persona_pipeline import studies
    from persona_pipeline.runner import refresh_study
    from persona_pipeline.warehouse import persona_sets as store

    engine = _engine()
    record = store.get(engine, args.name)
    studies.require_ready(record)
    if args.out:
        say(str(studies.write_report(engine, record.name, args.out)))
        return 0
    result = refresh_study(record.name, lambda _: None, ["persona_report"])
    if not result.success:
        say(f"report failed: {result.message}")
        return 1
    say(str(studies.default_report_path(record)))
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from persona_pipeline import studies
    from persona_pipeline.runner import refresh_explore

    engine = _engine()
    if args.out:
        path, table = studies.write_explore(engine, args.out)
    else:
        result = refresh_explore(lambda _: None)
        if not result.success:
            say(f"Explore failed: {result.message}")
            return 1
        path, table = studies.default_explore_path(), studies.explore_sizes(studies.explore_sets(engine))
    if table.empty:
        say("no built persona set is shown in Explore: persona-pipeline persona-set explore NAME --show")
    for set_name, rows in table.groupby("persona_set", sort=False):
        say(f"\n{set_name}: {rows['population'].sum():,} contacts, {len(rows)} personas")
        for row in rows.itertuples():
            traits = "; ".join(row.top_traits)
            say(f"  {_clip(row.persona, 34):<34} {row.population:>9,} {row.share:>6.1%}  {_clip(traits, 70)}")
    say(str(path))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from persona_pipeline.studies import export_csv

    size = export_csv(_engine(), args.name, args.what, Path(args.out))
    say(f"wrote {args.what} of {args.name!r} to {args.out} ({size:,} bytes)")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import json

    from persona_pipeline.realtime import load_scorer

    try:
        contact = json.loads(args.json)
    except json.JSONDecodeError as exc:
        raise ScoringError(f"--json is not valid JSON ({exc.msg} at character {exc.pos})") from exc
    say(json.dumps(load_scorer(args.persona_set).score(contact).to_dict()))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from persona_pipeline import pipelines
    from persona_pipeline.warehouse import persona_sets as store

    engine = _engine()
    if args.action == "create":
        pipeline = pipelines.create(
            engine,
            args.name,
            _names(args.population),
            _names(args.payload),
            args.trigger,
            args.cron,
            args.table,
            args.csv,
        )
        say(
            f"created pipeline {pipeline.name!r} ({pipeline.trigger}{' ' + pipeline.cron if pipeline.cron else ''})"
        )
        return 0
    if args.action == "list":
        sets = {r.id: r.name for r in store.list_all(engine)}
        for p in pipelines.list_all(engine):
            destination = ", ".join(d for d in (p.destination_table, p.destination_csv) if d)
            last = p.last_run_at.strftime("%Y-%m-%d %H:%M") if p.last_run_at else "never run"
            say(
                f"{_clip(p.name, 28):<28} {p.trigger:<9} {p.cron or '':<12} population {','.join(p.population)} · "
                f"payload {','.join(sets.get(i, str(i)) for i in p.payload)} → {destination} · {last}"
            )
        return 0
    if args.action == "run":
        from persona_pipeline.runner import run_pipeline

        pipelines.get(engine, args.name)
        report = run_pipeline(args.name, say)
        say(
            f"pipeline {args.name!r}: {'done' if report.success else 'failed: ' + report.message} in {report.seconds:.1f}s"
        )
        return 0 if report.success else 1
    from persona_pipeline.deletion import delete_pipeline

    for removed in delete_pipeline(engine, args.name):
        say(f"deleted {removed}")
    return 0


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _show(engine, name: str) -> int:  # noqa: ANN001
    from persona_pipeline.warehouse import persona_sets as store

    record = store.get(engine, name)
    say(f"persona set {record.name!r} · cohort {record.cohort!r} · status {record.status}")
    if record.status == "errored" and record.error:
        say(f"  error: {record.error}")
    build = store.latest_build(engine, record.id)
    if build is None or record.current_build is None:
        say("  not built yet")
        return 0
    kept = (
        f", {build['kept_from_previous']:.1%} kept their persona"
        if build["kept_from_previous"] is not None
        else ""
    )
    say(
        f"  build {build['build']}: {build['k']} personas · {build['cohort_size']:,} contacts "
        f"({build['quarantined']:,} quarantined) · stability {build['stability']:.2f}{kept}"
    )
    say(f"  k: {build['k_reason']}")
    for p in store.read_personas(engine, record.id):
        say("")
        say(f"  [{p['persona_id']}] {p['name']} — {p['population']:,} contacts ({p['share']:.1%})")
        for effect in p["defining_traits"]:
            say(f"      · {effect['text']}")
        for rule in p["rules"][:1]:
            say(
                f"      rule: {rule['text']} ({rule['precision']:.0%} precise, covers {rule['coverage']:.0%})"
            )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from persona_pipeline.warehouse import persona_sets as store

    start = time.perf_counter()
    cmd_seed(argparse.Namespace(contacts=args.contacts, days=args.days, seed=args.seed, end_date=None))
    engine = _engine()
    existing = {r.name for r in store.list_all(engine)}
    name = "Customers" if "Customers" not in existing else f"Customers {dt.datetime.now():%Y-%m-%d %H%M%S}"
    cmd_persona_set(
        argparse.Namespace(
            action="create",
            name=name,
            cohort="customers",
            traits=None,
            personas=None,
            seed=args.seed,
            analysis_traits="state,preferred_channel",
            explore=True,
        )
    )
    code = cmd_persona_set(argparse.Namespace(action="build", name=name, max_quarantine_share=None))
    if code == 0 and args.days:
        from persona_pipeline.runner import refresh_study, take_snapshots
        from persona_pipeline.studies import default_report_path, history_days

        last = min(history_days(engine)[1], dt.date.today())
        days = [last - dt.timedelta(days=i) for i in range(0, args.days + 1, 7)]
        say(f"\nflow: snapshotting {len(days)} days, a week apart")
        outcomes = take_snapshots(days, lambda _: None)
        if all(ok for _, ok, _ in outcomes):
            refresh_study(name, lambda _: None, ["persona_flow", "persona_report"])
            say(f"report: {default_report_path(store.get(engine, name))}")
    if code == 0:
        from persona_pipeline.runner import refresh_explore
        from persona_pipeline.studies import default_explore_path

        if refresh_explore(lambda _: None).success:
            say(f"explore: {default_explore_path()}")
    say(
        f"\ndemo finished in {time.perf_counter() - start:.1f}s. Explore it: make dagster (then open http://127.0.0.1:3000)"
    )
    return code


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="persona-pipeline", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    seed = sub.add_parser("seed", help="write a seeded, realistic customer base to the warehouse")
    seed.add_argument("--contacts", type=int, default=20_000)
    seed.add_argument("--days", type=int, default=90, help="days of trait history")
    seed.add_argument("--seed", type=int, default=0)
    seed.add_argument("--end-date", help="last day of the history, YYYY-MM-DD (default: today)")
    seed.set_defaults(func=cmd_seed)

    load = sub.add_parser("load", help="load your own contacts (CSV or Parquet) with a trait catalog")
    load.add_argument("contacts", help="contacts file (.csv, .tsv, .txt or .parquet)")
    load.add_argument("--traits", required=True, help="trait catalog YAML declaring each trait's kind")
    load.add_argument(
        "--orders", help="orders file: order_id, contact_id, ordered_at, amount, product_category"
    )
    load.add_argument("--delimiter", help="field delimiter (default: detected)")
    load.add_argument("--decimal", help="decimal mark, '.' or ',' (default: detected)")
    load.add_argument("--date-format", help="strftime format of dates, e.g. %%d/%%m/%%Y (default: detected)")
    load.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    load.add_argument(
        "--rejects", help="where to write rejected rows as CSV (default: beside the home folder)"
    )
    load.set_defaults(func=cmd_load)

    models = sub.add_parser("models", help="list or run the SQL models in dbt_like_sql/")
    models.add_argument("action", choices=["run", "list", "delete"])
    models.add_argument(
        "--only", nargs="*", help="run: these models and what they need; delete: these cohorts"
    )
    models.set_defaults(func=cmd_models)

    ps = sub.add_parser("persona-set", help="create, list, show and build persona sets")
    ps_sub = ps.add_subparsers(dest="action", required=True)
    create = ps_sub.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--cohort", required=True, help="a model in dbt_like_sql/cohorts/")
    create.add_argument("--traits", help="clustering traits, comma separated (default: the catalog's)")
    create.add_argument("--personas", type=int, help="number of personas, 2..8 (default: chosen by the data)")
    create.add_argument("--seed", type=int, default=0)
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
        "update", help="change the cohort, traits or number of personas; queues a rebuild"
    )
    update.add_argument("name")
    update.add_argument("--cohort")
    update.add_argument("--traits", help="clustering traits, comma separated")
    update.add_argument(
        "--default-traits", action="store_true", help="reset to the catalog's clustering traits"
    )
    update.add_argument("--personas", type=int)
    update.add_argument("--auto-personas", action="store_true", help="let the data choose the number again")
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
        type=float,
        default=None,
        help=f"stop the build when more than this share of rows fails validation (default {DEFAULT_MAX_QUARANTINE_SHARE})",
    )
    ps.set_defaults(func=cmd_persona_set)

    analyse = sub.add_parser("analyse", help="refresh a ready persona set's Analysis and print its summary")
    analyse.add_argument("name")
    analyse.add_argument(
        "--window-days", type=int, default=None, help="orders window, days up to the latest order"
    )
    analyse.set_defaults(func=cmd_analyse)

    flow = sub.add_parser("flow", help="membership snapshots over time, and the flow between days")
    flow_sub = flow.add_subparsers(dest="action", required=True)
    snap = flow_sub.add_parser(
        "snapshot", help="snapshot every ready persona set for a day or a range of days"
    )
    snap.add_argument("--day", help="the last day, YYYY-MM-DD (default: today or the history's last day)")
    snap.add_argument("--days", type=int, default=1, help="how many days up to --day (a backfill)")
    show_flow = flow_sub.add_parser("show", help="members per persona per day, and the from -> to matrix")
    show_flow.add_argument("name")
    show_flow.add_argument("--from", dest="from_day")
    show_flow.add_argument("--to", dest="to_day")
    flow.set_defaults(func=cmd_flow)

    report = sub.add_parser("report", help="write the persona set's HTML report and print its path")
    report.add_argument("name")
    report.add_argument("--out", help="where to write it (default: PERSONA_HOME/reports/)")
    report.set_defaults(func=cmd_report)

    explore = sub.add_parser("explore", help="compare the persona sets shown in Explore, side by side")
    explore.add_argument("--out", help="where to write the page (default: PERSONA_HOME/reports/explore.html)")
    explore.set_defaults(func=cmd_explore)

    export = sub.add_parser("export", help="stream memberships, analysis, flow or history to CSV")
    export.add_argument("name")
    export.add_argument("--what", required=True, choices=["memberships", "analysis", "flow", "history"])
    export.add_argument("--out", required=True)
    export.set_defaults(func=cmd_export)

    score = sub.add_parser("score", help="assign one contact, given as JSON, to a persona of a ready set")
    score.add_argument("--persona-set", required=True)
    score.add_argument(
        "--json", required=True, help='the contact\'s traits, e.g. \'{"age": 34, "dog_owner": true}\''
    )
    score.set_defaults(func=cmd_score)

    pipe = sub.add_parser("pipeline", help="scoring pipelines: create, list, run, delete")
    pipe_sub = pipe.add_subparsers(dest="action", required=True)
    pipe_create = pipe_sub.add_parser("create")
    pipe_create.add_argument("name")
    pipe_create.add_argument("--population", required=True, help="cohorts, comma separated (unioned)")
    pipe_create.add_argument("--payload", required=True, help="persona sets, comma separated")
    pipe_create.add_argument("--trigger", default="ad_hoc", choices=["ad_hoc", "schedule", "on_change"])
    pipe_create.add_argument("--cron", help="with --trigger schedule, e.g. '0 2 * * *' (UTC)")
    pipe_create.add_argument("--table", help="destination warehouse table")
    pipe_create.add_argument("--csv", help="destination CSV file, inside PERSONA_EXPORT_DIR")
    pipe_sub.add_parser("list")
    for action in ("run", "delete"):
        pipe_sub.add_parser(action).add_argument("name")
    pipe.set_defaults(func=cmd_pipeline)

    demo = sub.add_parser("demo", help="seed 20,000 contacts, build a persona set and print it")
    demo.add_argument("--contacts", type=int, default=20_000)
    demo.add_argument("--days", type=int, default=90)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    from persona_pipeline.core.clustering import ClusteringError
    from persona_pipeline.core.model import FeatureError
    from persona_pipeline.core.validation import ValidationError
    from persona_pipeline.loading import LoadError
    from persona_pipeline.persona_build import BuildError
    from persona_pipeline.pipelines import PipelineError
    from persona_pipeline.sql_models import SqlModelError
    from persona_pipeline.studies import AnalysisError, FlowError
    from persona_pipeline.warehouse.persona_sets import PersonaSetError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        CatalogError,
        PersonaSetError,
        SqlModelError,
        LoadError,
        BuildError,
        ValidationError,
        FeatureError,
        ClusteringError,
        AnalysisError,
        FlowError,
        ScoringError,
        LineageError,
        PipelineError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
