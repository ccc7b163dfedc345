"""Bring your own data: contacts (and orders) from CSV or Parquet, typed and mapped by a traits file.

A load merges by default: contacts in the file are inserted or updated (a change opens a new trait-history
version), contacts not in it stay; replacing the whole base (`replace`) and removing contacts
(`delete_missing`, a file of ids) are explicit. Every row that cannot be taken is reported with its line, column
and reason and written to a rejects file; above `max_reject_share` of a file's rows rejected, nothing is
written. One transaction either way: a load that fails, or a dry run, leaves the warehouse as it was.

Files stream: a survey pass reads the key and date columns of the whole file (repeated ids, each date column's
one format), then chunks are typed and staged in temporary tables, and the merge runs in SQL.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from persona_pipeline import files
from persona_pipeline.config import persona_home
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.traits import (
    ORDER_OPTIONAL,
    ContactIds,
    OrderIds,
    TraitCatalog,
    TraitKind,
    TraitsFile,
    read_traits_file,
)
from persona_pipeline.errors import LoadError
from persona_pipeline.loading.cells import (
    REJECT_COLUMNS,
    OrderIdMaker,
    Outcome,
    Survey,
    joined,
    parse_contacts,
    parse_orders,
    survey,
    whole_ids,
)
from persona_pipeline.loading.reading import TableSource, detect_decimal, map_columns, open_table
from persona_pipeline.warehouse import persona_sets as set_store
from persona_pipeline.warehouse import sources

DEFAULT_MAX_REJECT_SHARE = 0.05
STALE = "older than the stored contact's updated_at"


@dataclass
class LoadReport:
    """What a load read, did (or in a dry run would do), and left out."""

    contacts: int  # contacts taken from the file (new, changed or unchanged)
    orders: int  # orders taken from the orders file
    rejects: pd.DataFrame
    rejects_path: Path | None
    changes: sources.SourceChanges = field(default_factory=sources.SourceChanges)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    replaced: bool = False
    kept_absent: int = 0  # stored contacts not in the file, kept
    orders_given: bool = False

    def lines(self) -> list[str]:
        c = self.changes
        out = [*self.notes]
        if self.replaced:
            verb = "would replace" if self.dry_run else "replaced"
            out.append(f"{verb} the base: {self.contacts:,} contacts and {self.orders:,} orders")
        else:
            out.append(
                f"contacts: {c.contacts_new:,} new, {c.contacts_changed:,} changed, "
                f"{c.contacts_unchanged:,} unchanged"
                + (f", {c.contacts_removed:,} removed" if c.contacts_removed else "")
            )
            if self.kept_absent:
                out.append(
                    f"  {self.kept_absent:,} stored contact{'s' if self.kept_absent != 1 else ''} not in this file "
                    f"{'were' if self.kept_absent != 1 else 'was'} kept "
                    "(--delete-missing removes them; --replace replaces the whole base)"
                )
            if c.dated_before_version:
                out.append(
                    f"  {c.dated_before_version:,} changed row{'s were' if c.dated_before_version != 1 else ' was'} "
                    "dated before the stored version of the contact began: recorded at the load time, so the "
                    "history never runs backwards"
                )
            if c.contacts_returned:
                out.append(
                    f"  {c.contacts_returned:,} of the new contacts had been removed earlier: their history "
                    "resumes at the load time"
                )
            if c.stale_lines:
                out.append(
                    f"  {len(c.stale_lines):,} rows older than the stored contact (updated_at) were not applied"
                )
            if self.orders_given:  # without an orders file, the stored orders were not touched
                out.append(
                    f"orders: {c.orders_new:,} new, {c.orders_changed:,} updated, {c.orders_unchanged:,} unchanged"
                )
        if not self.rejects.empty:
            rows = self.rejects.groupby(["file", "line"]).ngroups
            out.append(
                f"rejected {rows:,} row{'s' if rows != 1 else ''} ({len(self.rejects):,} "
                f"problem{'s' if len(self.rejects) != 1 else ''}); all of them are in {self.rejects_path}"
            )
            out += _reject_groups(self.rejects)
        if self.dry_run:
            out.append("dry run: nothing was written; run the same command without --dry-run to load")
        return out


SHOWN_REJECT_GROUPS = 12


def _reject_groups(rejects: pd.DataFrame) -> list[str]:
    """The rejects by problem, most frequent first, each with its first line and value: 55 rows with one
    misspelt level read as one line, not 55 (the file lists every row)."""
    frame = rejects.assign(line=pd.to_numeric(rejects["line"], errors="coerce")).sort_values(["file", "line"])
    groups = frame.groupby(["file", "column", "reason"], sort=False, dropna=False)
    summary = groups.agg(rows=("line", "size"), line=("line", "first"), value=("value", "first"))
    summary = summary.reset_index().sort_values(["rows", "file", "line"], ascending=[False, True, True])
    out = []
    for r in summary.head(SHOWN_REJECT_GROUPS).itertuples(index=False):
        first = "" if pd.isna(r.line) else f", first on line {int(r.line)}"
        count = f"{r.rows:,} rows" if r.rows != 1 else "1 row"
        out.append(f"  {count} of {r.file}, column {r.column!r}: {r.reason} (value {r.value!r}{first})")
    if len(summary) > SHOWN_REJECT_GROUPS:
        out.append(f"  ... and {len(summary) - SHOWN_REJECT_GROUPS:,} more kinds of problem")
    return out


@dataclass(frozen=True)
class LoadOptions:
    delimiter: str | None = None
    decimal: str | None = None
    date_format: str | None = None
    encoding: str = "utf-8"
    rejects_path: str | Path | None = None
    replace: bool = False
    delete_missing: bool = False
    remove_path: str | Path | None = None
    dry_run: bool = False
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE


def _contact_columns(traits_file: TraitsFile) -> dict[str, tuple[str, str]]:
    layout = traits_file.contacts
    wanted: dict[str, tuple[str, str]] = {}
    if layout.ids is not ContactIds.GENERATED:
        wanted["contact_id"] = (
            layout.id_column,
            "set `contacts: {{id_column: {header}}}` in the traits file "
            "(or `contacts: {{ids: generated}}` for a file without ids)",
        )
    for trait in traits_file.catalog.traits:
        wanted[trait.name] = (
            trait.source_column,
            f"set `column: {{header}}` on trait {trait.name} in the traits file",  # to add, or to change
        )
    return wanted


def _order_columns(traits_file: TraitsFile, headers: list[str]) -> dict[str, tuple[str, str]]:
    layout = traits_file.orders
    wanted = {}
    for name, header in layout.columns.items():
        if name == "order_id" and layout.order_ids is OrderIds.GENERATED:
            continue
        if name in ORDER_OPTIONAL and header == name and header not in headers:
            continue  # an optional field the file does not have and the traits file does not map
        wanted[name] = (header, f"set `orders: {{{{{name}: {{header}}}}}}` in the traits file")
    return wanted


def _share_check(file: str, rows: int, rejects: pd.DataFrame, limit: float, path: Path | None) -> None:
    if not rows or rejects.empty:
        return
    bad = rejects[(rejects["file"] == file) & ~rejects["reason"].astype(str).str.startswith(STALE)]
    rejected = bad.groupby("line").ngroups  # rows superseded by newer stored data are not bad input
    share = rejected / rows
    if share > limit:
        raise LoadError(
            f"{file}: {rejected:,} of {rows:,} rows ({share:.1%}) rejected, above the limit of {limit:.0%}; nothing "
            f"was changed. {_commonest_reasons(bad)}. Every rejected row and its reason is in {path}; fix them, "
            f"or pass --max-reject-share {min(1.0, np.ceil(share * 100) / 100):g} to load the rest"
        )


def _commonest_reasons(bad: pd.DataFrame, shown: int = 3) -> str:
    """'Most often: income not a number (380 rows, first on line 4, 'abc')': what to fix first, in the one
    line a refused load gets (the printed rejects of a load that went ahead are not printed for one refused)."""
    counts = bad.groupby(["column", "reason"], sort=False, dropna=False).agg(
        rows=("line", "size"), line=("line", "min")
    )
    counts = counts.sort_values(["rows", "line"], ascending=[False, True]).head(shown)
    parts = []
    for (column, reason), row in counts.iterrows():
        first = bad[(bad["column"] == column) & (bad["reason"] == reason) & (bad["line"] == row["line"])]
        value = first["value"].iloc[0] if len(first) else None
        shown_value = f", {str(value)[:40]!r}" if value is not None and not pd.isna(value) else ""
        what = reason if pd.isna(column) or not str(column) else f"{column} {reason}"  # a whole row's reason
        parts.append(f"{what} ({int(row['rows']):,} rows, first on line {int(row['line']):,}{shown_value})")
    return "Most often: " + "; ".join(parts)


def _moment(values: pd.Series) -> np.ndarray:
    """Stored datetimes as a person reads them: '2026-11-01 00:00:00', without the storage's microseconds."""
    moments = pd.to_datetime(values)
    return np.where(moments.dt.microsecond > 0, moments.astype(str), moments.dt.strftime("%Y-%m-%d %H:%M:%S"))


def _write_rejects(rejected: pd.DataFrame, path: Path) -> Path | None:
    """The rejected rows, written atomically (the same path before and inside the transaction)."""
    if rejected.empty:
        return None
    files.write_text(path, rejected.to_csv(index=False))
    return path


def _stored_ids(conn: Connection, keys: pd.Series, ids_kind: ContactIds) -> pd.Series:
    """The stored contact_id of each of a file's keys (<NA> where none); keys: (n,) as the file wrote them."""
    if ids_kind is ContactIds.TEXT:
        return sources.external_ids(conn, keys.astype(str).str.strip())
    ints, bad = whole_ids(keys)
    found = np.isin(ints.to_numpy(), sources.stored_contact_ids(conn)) & ~bad
    # nullable integers: a float would round ids above 2^53 onto other contacts
    return pd.Series(pd.arrays.IntegerArray(ints.to_numpy(), ~found), index=keys.index)


def _ids_file(path: Path, traits_file: TraitsFile, options: LoadOptions) -> pd.Series:
    """The ids of a --remove file: its id column (as the traits file names it), or its only column (a list of
    ids with no header: its first line is an id too)."""
    source = open_table(path, options.delimiter, options.encoding)
    column = traits_file.contacts.id_column
    if column not in source.headers:
        if len(source.headers) != 1:
            raise LoadError(
                f"{path}: no column {column!r} among {', '.join(source.headers)}; give a file with one "
                "column of contact ids, or name the id column as the traits file does"
            )
        column = source.headers[0]
        parts = [pd.Series([column])]
    else:
        parts = []
    source.columns["id"] = column
    parts += [chunk["id"] for chunk in source.chunks(["id"])]
    return pd.concat(parts, ignore_index=True)


def _dated(contacts: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """created_at and updated_at (the load time where the file gives neither), and `dated`: whether the
    file gave updated_at."""
    out = contacts.copy()
    out["dated"] = out["updated_at"].notna() if "updated_at" in out else False
    out["updated_at"] = out["updated_at"].fillna(now) if "updated_at" in out else now
    # a new contact's first version is valid from its creation, else from the change the file dates
    out["created_at"] = (
        out["created_at"].fillna(out["updated_at"]) if "created_at" in out else out["updated_at"]
    )
    return out


def _reject_rows(file: str, lines: np.ndarray, keys: np.ndarray, column: str, values: np.ndarray,
                 reason: str) -> pd.DataFrame:  # fmt: skip
    return pd.DataFrame({"file": file, "line": lines, "contact_id": keys, "column": column,
                         "value": values, "reason": reason})  # fmt: skip


@dataclass
class _Plan:
    """One load, read and surveyed, before the transaction."""

    traits_file: TraitsFile
    stored: TraitCatalog | None
    options: LoadOptions
    now: pd.Timestamp
    contacts: TableSource | None = None
    contacts_survey: Survey | None = None
    orders: TableSource | None = None
    orders_survey: Survey | None = None
    removals: pd.Series | None = None
    traits_given: bool = False  # a traits file was given: its layout is stored for later loads
    orders_decimal: str | None = None
    decimal: str | None = None  # the contacts file's decimal mark, read from its first chunk
    outcome: dict[str, Outcome] = field(default_factory=dict)  # "contacts", "orders"
    extra: list[pd.DataFrame] = field(default_factory=list)  # rejects found in the warehouse (stale, unknown)

    @property
    def ids_kind(self) -> ContactIds:
        return self.traits_file.contacts.ids

    def rejects(self) -> pd.DataFrame:
        """Every rejected cell, in the order of the files' lines (bad cells and rows older than the stored
        contact were found in different passes)."""
        found = joined([r for o in self.outcome.values() for r in o.rejects] + self.extra)
        return (
            found.sort_values(["file", "line"], kind="stable").reset_index(drop=True) if len(found) else found
        )


def _date_columns(traits_file: TraitsFile, source: TableSource, given: str | None) -> dict[str, str | None]:
    """The contacts file's date columns and the format each is read in (None: inferred from the column)."""
    named = set(source.columns)
    dates = {c: given for c in ("created_at", "updated_at") if c in named}
    for trait in traits_file.catalog.traits:
        if trait.kind is TraitKind.DATE:
            dates[trait.name] = trait.date_format or given
    return dates


def _open_contacts(plan: _Plan, path: Path) -> None:
    options, layout = plan.options, plan.traits_file.contacts
    source = open_table(path, options.delimiter, options.encoding)
    for name, header in (("created_at", layout.created_at), ("updated_at", layout.updated_at)):
        if header in source.headers:
            source.columns[name] = header
    map_columns(source, _contact_columns(plan.traits_file))
    key = None if plan.ids_kind is ContactIds.GENERATED else "contact_id"
    dates = _date_columns(plan.traits_file, source, options.date_format)
    plan.contacts_survey = survey(
        source.chunks([c for c in (key, *dates) if c]),
        key,
        plan.ids_kind is ContactIds.TEXT,
        dates,
        source.columns,
    )
    if not plan.contacts_survey.rows:
        raise LoadError(f"{path}: the file has a header but no rows of data; nothing was changed")
    plan.contacts = source
    plan.outcome["contacts"] = Outcome()


def _open_orders(plan: _Plan, path: Path) -> None:
    if plan.ids_kind is ContactIds.GENERATED:
        raise LoadError(
            f"{path}: contacts loaded without ids (ids: generated) cannot be matched to orders; give "
            "the contacts file an id column that the orders file uses too"
        )
    source = open_table(path, plan.options.delimiter, plan.options.encoding)
    map_columns(source, _order_columns(plan.traits_file, source.headers))
    given_ids = plan.traits_file.orders.order_ids is OrderIds.GIVEN
    key = "order_id" if given_ids else None
    dates = {"ordered_at": plan.options.date_format}
    plan.orders_survey = survey(
        source.chunks([c for c in (key, "ordered_at") if c]), key, False, dates, source.columns
    )
    plan.orders = source
    plan.outcome["orders"] = Outcome()


def load_files(
    engine: Engine,
    contacts_path: str | Path | None,
    traits_path: str | Path | None,
    orders_path: str | Path | None = None,
    options: LoadOptions | None = None,
    say: Callable[[str], None] = lambda _line: None,
    **overrides: object,
) -> LoadReport:
    """Load a contacts file (and orders, and ids to remove) into the warehouse; see the module docstring."""
    options = options or LoadOptions()
    if overrides:
        options = LoadOptions(**{**options.__dict__, **overrides})
    if not 0 <= options.max_reject_share <= 1:
        raise LoadError(f"--max-reject-share must be between 0 and 1, not {options.max_reject_share}")
    if contacts_path is None and orders_path is None and options.remove_path is None:
        raise LoadError("nothing to load: give a contacts file, --orders, or --remove")
    if options.replace and contacts_path is None:
        raise LoadError("--replace needs a contacts file: it replaces the whole base with that file")
    if options.replace and options.delete_missing:
        raise LoadError(
            "--replace and --delete-missing are alternatives: --replace already keeps only the file's contacts"
        )
    if options.delete_missing and contacts_path is None:
        raise LoadError(
            "--delete-missing needs a contacts file: it removes the contacts that file does not hold"
        )
    if contacts_path is not None and traits_path is None:
        raise LoadError("a contacts file needs --traits, the traits file that declares each trait's kind")
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
    if (
        traits_path is not None
    ):  # read before the warehouse is opened: a bad file leaves no trace (no new file)
        traits_file, stored = read_traits_file(traits_path), None
    else:
        stored = sources.stored_catalog(engine)
        if stored is None:
            raise LoadError("the warehouse has no contacts yet: load a contacts file (with --traits) first")
        traits_file = TraitsFile.with_layout(stored, sources.stored_layout(engine))
    plan = _Plan(traits_file, stored, options, now, traits_given=traits_path is not None)
    # everything read and surveyed before the transaction: a file that cannot be read changes nothing
    if contacts_path is not None:
        _open_contacts(plan, Path(contacts_path))
    if orders_path is not None:
        _open_orders(plan, Path(orders_path))
    if options.remove_path:
        plan.removals = _ids_file(Path(options.remove_path), traits_file, options)
    if traits_path is not None:
        plan.stored = sources.stored_catalog(engine)
    stranded: list[str] = []  # what a traits file changes for the persona sets built before it
    if traits_path is not None and plan.stored is not None:
        stranded = _what_the_traits_file_leaves(engine, traits_file, options.replace)
        stranded += _flag_changes(plan.stored, traits_file.catalog)
    target = (
        Path(options.rejects_path)
        if options.rejects_path
        else persona_home() / f"load_rejects_{dt.datetime.now():%Y%m%d_%H%M%S}.csv"
    )
    report = LoadReport(0, 0, pd.DataFrame(columns=REJECT_COLUMNS), None, dry_run=options.dry_run)
    report.orders_given = orders_path is not None
    report.notes += stranded
    for found in (plan.contacts_survey, plan.orders_survey):
        report.notes += found.notes if found else []
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            _apply(conn, plan, report, say, target)
            report.rejects = plan.rejects()
            report.rejects_path = _write_rejects(report.rejects, target)
            for source, found in ((plan.contacts, plan.contacts_survey), (plan.orders, plan.orders_survey)):
                if source is not None:
                    _share_check(source.name, found.rows, report.rejects, options.max_reject_share, target)
            sources.drop_staging(conn)
            if options.dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        except BaseException:
            transaction.rollback()
            raise
    if not options.dry_run:
        sources.analyze(engine)
    return report


def _flag_changes(stored: TraitCatalog, catalog: TraitCatalog) -> list[str]:
    """A line per trait declared sensitive or no longer so, and per trait joining or leaving the default
    clustering traits (a sensitive one leaves them unless `cluster: true`): built sets change only when they
    are rebuilt."""
    lines = []
    for trait in catalog.traits:
        before = stored[trait.name] if trait.name in stored else None
        if before is None:
            continue
        if before.sensitive != trait.sensitive:
            lines.append(
                f"trait {trait.name!r} is {'now' if trait.sensitive else 'no longer'} sensitive: the names, ideas "
                "and rules of persona sets built before change when they are rebuilt (persona-pipeline "
                "persona-set build NAME)"
            )
        if before.cluster != trait.cluster:
            lines.append(
                f"trait {trait.name!r} is {'now' if trait.cluster else 'no longer'} one of the default clustering "
                "traits: persona sets on the default traits "
                f"{'cluster on it' if trait.cluster else 'stop clustering on it'} from their next build"
            )
    return lines


def _what_the_traits_file_leaves(engine: Engine, traits_file: TraitsFile, replace: bool) -> list[str]:
    """A line per persona set that a traits file leaving traits out affects: a set built on them keeps its
    personas as built, but (after a --replace) Flow snapshots skip it, and its next build needs its --traits
    updated or, on the catalog's default traits, clusters on other ones; a set that studies them in its
    Analysis stops there. And, after a --replace, a line per set with snapshotted days: the next snapshot reads
    the new history, which rewrites the days it covers."""
    keeps = {t.name for t in traits_file.catalog.traits}
    lines = []
    for record in set_store.list_all(engine):
        name = shlex.quote(record.name)
        days = set_store.snapshotted_day_range(engine, record.id) if replace else None
        if days is not None:
            lines.append(
                f"persona set {record.name!r} has Flow snapshots from {days[0]} to {days[1]}: the replaced base "
                "brings its own trait history, so the next snapshot counts the days it covers from that history "
                "(contacts this file leaves out drop from them); export them before the next snapshot to keep them "
                f"(persona-pipeline export {name} --what flow --out flow.csv)"
            )
        studied = [t for t in record.analysis_traits or [] if t not in keeps]
        if studied:
            lines.append(
                f"persona set {record.name!r} studies {', '.join(studied)} in its Analysis, which this traits file "
                f"leaves out: its Analysis stops until they are set again (persona-pipeline persona-set "
                f"analysis-traits {name} --set ...)"
            )
        build = set_store.current_build(engine, record)
        if build is None:
            continue
        missing = PersonaModel.from_json(build.model).traits_missing_from(keeps)
        if not missing:
            continue
        now = (
            "Flow snapshots skip it until it is rebuilt"
            if replace
            else "its personas, memberships and Flow stay as built until it is rebuilt"
        )
        if set(missing) & set(record.traits or []):
            after = f"update its --traits before building it again (persona-pipeline persona-set update {name} --traits ...)"
        else:
            after = (
                "its next build clusters on the traits the catalog has then, with other personas (choose them with "
                f"persona-pipeline persona-set update {name} --traits ...)"
            )
        lines.append(
            f"persona set {record.name!r} was built on {', '.join(missing)}, which this traits file leaves "
            f"out: {now}; {after}"
        )
    return lines


def _stage_contacts(conn: Connection, plan: _Plan, fresh: bool) -> int:
    """Type the contacts file chunk by chunk into the staging table, or, into an empty base, straight into
    `contacts` (numbered here: nothing stored to match); returns the rows written."""
    source, found = plan.contacts, plan.contacts_survey
    outcome = plan.outcome["contacts"]
    staged, decimal = 0, plan.options.decimal
    numbered = fresh and plan.ids_kind is not ContactIds.INTEGER
    for chunk in source.chunks():
        if decimal is None:  # read from the first chunk, for the whole file
            numeric = [t.name for t in plan.traits_file.catalog.traits if t.kind is TraitKind.NUMERIC]
            decimal = detect_decimal(chunk, numeric, file=source.name)
        plan.decimal = decimal
        typed = _dated(
            parse_contacts(chunk, plan.traits_file, source.name, decimal, found, outcome), plan.now
        )
        if numbered:
            typed["contact_id"] = np.arange(staged + 1, staged + 1 + len(typed), dtype="int64")
        if fresh:
            staged += sources.stage(conn, "contacts", typed.drop(columns=["line"]))
        else:
            staged += sources.stage(conn, "load_contacts", typed)
    return staged


def _stage_orders(conn: Connection, plan: _Plan) -> int:
    source, found = plan.orders, plan.orders_survey
    outcome = plan.outcome["orders"]
    make_ids = OrderIdMaker() if plan.traits_file.orders.order_ids is OrderIds.GENERATED else None
    staged, decimal = 0, plan.options.decimal
    key = "key_text" if plan.ids_kind is ContactIds.TEXT else "key_id"
    for chunk in source.chunks():
        if decimal is None:  # each file its own mark; whole numbers say nothing: the contacts file's then
            decimal = detect_decimal(chunk, ["amount", "refunded"], plan.decimal or ".", source.name)
        if plan.orders_decimal is None:
            plan.orders_decimal = decimal
        typed = parse_orders(chunk, plan.traits_file, source.name, decimal, found, outcome, make_ids)
        staged += sources.stage(conn, "load_orders", typed.rename(columns={"key": key}))
    return staged


def _apply(
    conn: Connection, plan: _Plan, report: LoadReport, say: Callable[[str], None], target: Path
) -> None:
    """Every write of one load, in the caller's transaction."""
    catalog, ids_kind, options = plan.traits_file.catalog, plan.ids_kind, plan.options
    changes = report.changes
    fresh = plan.stored is None or options.replace
    # a replaced base keyed by text (or without ids) keeps each stored key's id and never reuses one: builds
    # made before still name the right contacts. Its rows are staged and numbered before the tables go.
    renumber = options.replace and plan.stored is not None and ids_kind is not ContactIds.INTEGER
    if fresh:
        before = sources.source_counts(conn)
        if options.replace and (before["contacts"] or before["orders"]):
            say(
                f"--replace: the stored {before['contacts']:,} contacts, their trait history and "
                f"{before['orders']:,} orders {'would be' if options.dry_run else 'are'} replaced by this load's "
                f"file of {plan.contacts_survey.rows:,} rows" + (" and its orders" if plan.orders else "")
            )
        if not renumber:
            sources.recreate(conn, catalog)
        report.replaced = options.replace
        changes.replaced_contacts, changes.replaced_orders = before["contacts"], before["orders"]
    elif plan.contacts is not None:
        report.notes += sources.align_catalog(conn, plan.stored, catalog)
        stored_kind = sources.key_kind(conn)
        if {ids_kind.value, stored_kind} == {"integer", "text"}:
            raise LoadError(
                f"the stored contacts are keyed by {stored_kind} ids and the traits file declares {ids_kind} ids: "
                "they cannot be matched; declare `contacts: {ids: "
                + stored_kind
                + "}` or load with --replace"
            )
    else:
        catalog = plan.stored or catalog
        sources.ensure_sources(conn, catalog)
    if plan.traits_given:
        sources.write_layout(conn, plan.traits_file.layout_json())
    sources.start_staging(conn, catalog)
    if plan.contacts is not None:
        report.contacts = _stage_contacts(conn, plan, fresh and not renumber)
        source = plan.contacts
        report.notes.insert(
            0,
            f"read {source.name}: {plan.contacts_survey.rows:,} rows"
            + (f", delimiter {source.delimiter!r}" if source.delimiter else " (Parquet)")
            + f", decimal mark {plan.decimal or '.'!r}",
        )
        report.notes += plan.outcome["contacts"].notes()
        rejected = plan.rejects()
        if not report.contacts:  # the line says what is wrong; no rejects file for a file with no good row
            first = "; ".join(f"line {r.line} {r.column}: {r.reason}" for r in rejected.head(3).itertuples())
            raise LoadError(f"{source.path}: no row could be loaded ({first}); nothing was changed")
        try:
            _share_check(source.name, plan.contacts_survey.rows, rejected, options.max_reject_share, target)
        except LoadError:
            _write_rejects(rejected, target)  # the rejected rows are kept for the user to fix
            raise
        if renumber:
            sources.assign_contact_ids(conn, ids_kind is ContactIds.TEXT)  # against the base still stored
            sources.recreate(conn, catalog)
            sources.insert_staged(conn, catalog)
        if fresh:  # an empty base: every contact is new, its first version copied inside the warehouse
            changes.contacts_new = sources.open_history(conn, catalog)
        else:
            _merge_staged(conn, plan, changes, catalog)
    named_ids = np.zeros(0, dtype="int64")
    if not fresh and plan.contacts is not None and ids_kind is not ContactIds.GENERATED:
        # a row rejected for a bad cell, or older than the stored contact, still names a contact: it is in the
        # file, and stays as stored
        keys = plan.outcome["contacts"].rejects + [
            r for r in plan.extra if (r["file"] == plan.contacts.name).all()
        ]
        named = joined(keys)["contact_id"].dropna().drop_duplicates() if keys else pd.Series([], dtype=object)
        named_ids = _stored_ids(conn, named.reset_index(drop=True), ids_kind).dropna().to_numpy(dtype="int64")
    if options.delete_missing and not fresh:
        missing = np.setdiff1d(sources.unstaged_contact_ids(conn), named_ids)
        changes.contacts_removed += sources.remove_contacts(conn, missing, plan.now)
    if plan.removals is not None:
        found = _stored_ids(conn, plan.removals, ids_kind)
        if found.isna().any():
            absent = plan.removals[found.isna().to_numpy()].astype(str)
            shown = ", ".join(repr(v) for v in absent.head(5)) + (", ..." if len(absent) > 5 else "")
            ids = (
                "id in the remove file is not a stored contact"
                if len(absent) == 1
                else "ids in the remove file are not stored contacts"
            )
            report.notes.append(f"{len(absent):,} {ids} ({shown})")
        changes.contacts_removed += sources.remove_contacts(
            conn, found.dropna().to_numpy(dtype="int64"), plan.now
        )
    if plan.orders is not None:
        _stage_orders(conn, plan)
        unknown = sources.link_orders(conn, ids_kind is ContactIds.TEXT)
        if len(unknown):
            keys = unknown["key"].astype(str).to_numpy()
            plan.extra.append(_reject_rows(plan.orders.name, unknown["line"].to_numpy(), keys, "contact_id", keys,
                                           "no stored or loaded contact has this contact id"))  # fmt: skip
        report.notes.append(
            f"read {plan.orders.name}: {plan.orders_survey.rows:,} rows"
            + (f", delimiter {plan.orders.delimiter!r}" if plan.orders.delimiter else " (Parquet)")
            + f", decimal mark {plan.orders_decimal or '.'!r}"
        )
        changes.orders_new, changes.orders_changed, changes.orders_unchanged = sources.merge_orders(conn)
        report.orders = changes.orders_new + changes.orders_changed + changes.orders_unchanged
    if not fresh and not options.delete_missing and plan.contacts is not None:
        if len(named_ids):
            report.kept_absent = len(np.setdiff1d(sources.unstaged_contact_ids(conn), named_ids))
        else:  # a count, not a read of every stored id
            report.kept_absent = max(0, sources.source_counts(conn)["contacts"] - report.contacts)


def _merge_staged(
    conn: Connection, plan: _Plan, changes: sources.SourceChanges, catalog: TraitCatalog
) -> None:
    """Staged contacts into a stored base: ids matched or numbered, older rows left out, the rest merged."""
    source, ids_kind = plan.contacts, plan.ids_kind
    sources.assign_contact_ids(conn, ids_kind is ContactIds.TEXT)
    if "updated_at" in source.columns:
        stale = sources.take_stale(conn)
        if len(stale):
            keys = stale["external_id"] if ids_kind is ContactIds.TEXT else stale["contact_id"]
            plan.extra.append(_reject_rows(source.name, stale["line"].to_numpy(), keys.astype(str).to_numpy(),
                                           "updated_at", _moment(stale["updated_at"]),
                                           f"{STALE}: not applied"))  # fmt: skip
            changes.stale_lines = stale["line"].astype(int).tolist()
    merged = sources.merge_contacts(conn, catalog, plan.now)
    changes.contacts_new, changes.contacts_changed = merged.contacts_new, merged.contacts_changed
    changes.contacts_unchanged = merged.contacts_unchanged
    changes.dated_before_version = merged.dated_before_version
    changes.contacts_returned = merged.contacts_returned
