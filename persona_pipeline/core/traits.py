"""The trait catalog: what each trait is, so every later step knows how to validate, encode and name it."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from persona_pipeline.core.domain import did_you_mean
from persona_pipeline.errors import CatalogError


def is_calendar_year(value: float, unit: str, name: str) -> bool:
    """A year of the calendar ('year of birth' 1978, a trait named survey_year): written without thousands
    separators. 'years' (a duration) is not one."""
    words = unit.split()
    return (
        ("year" in words or "year" in name.split("_")) and "years" not in words and 1000 <= abs(value) < 3000
    )


IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_COLUMNS = frozenset({"contact_id", "created_at", "updated_at", "valid_from", "valid_to"})
# How booleans arrive from files, warehouses and JSON as text: one list for loading, validation and scoring.
BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "t", "yes", "y", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0"), False),
}


class TraitKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATE = "date"  # clustered on as days before a reference date (tenure, recency)
    ORDINAL = "ordinal"  # ordered levels, clustered on as their rank


NUMERIC_LIKE = frozenset({TraitKind.NUMERIC, TraitKind.DATE, TraitKind.ORDINAL})


class UnknownLevels(StrEnum):
    """What a value outside a categorical or ordinal trait's levels does to its row at load."""

    REJECT = "reject"  # the row is rejected with its line: a typo never passes unseen
    MISSING = "missing"  # the value is loaded as missing and counted in the load's report


# Every key a trait may carry in a traits file (published in traits.schema.json; a test holds them equal).
TRAIT_KEYS = frozenset(
    {"name", "kind", "column", "description", "unit", "min", "max", "minimum", "maximum", "levels", "cluster",
     "labels", "noun", "unknown", "normalize", "format", "reference", "sensitive"}
)  # fmt: skip


@dataclass(frozen=True)
class Trait:
    name: str
    kind: TraitKind
    minimum: float | None = None
    maximum: float | None = None
    levels: tuple[str, ...] = ()
    cluster: bool = True
    # Words used to name personas: numeric {"high": .., "low": ..}, boolean {"true": ..},
    # categorical {level: ..}. A trait whose words are nouns ("Families") sets noun=True.
    labels: dict[str, str] = field(default_factory=dict)
    noun: bool = False
    description: str = ""
    column: str = ""  # the file's header for this trait, when it is not the trait's name
    unknown: UnknownLevels = UnknownLevels.REJECT
    normalize: bool = False  # match levels ignoring case and surrounding/double spaces
    date_format: str = ""  # a date trait's strftime format; inferred from the column when empty
    reference: str = ""  # a date trait's "days before" date (ISO); the cohort's latest date when empty
    unit: str = ""  # printed after its values ("USD a year"); numeric traits
    # protected or personal (ethnicity, religion, health): described with its figures, never a name or an idea
    sensitive: bool = False

    @property
    def source_column(self) -> str:
        return self.column or self.name

    @property
    def numeric_like(self) -> bool:
        """Clustered, summarized and binned as a number: a date as days before its reference, levels as rank."""
        return self.kind in NUMERIC_LIKE

    @property
    def has_levels(self) -> bool:
        return self.kind in (TraitKind.CATEGORICAL, TraitKind.ORDINAL)

    @property
    def title(self) -> str:
        return self.name.replace("_", " ")

    @staticmethod
    def level_title(level: str) -> str:
        """A level as text shows it: 'high school' for the file's 'high_school', as the trait's own name."""
        return level.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        data["unknown"] = str(self.unknown)
        data["levels"] = list(self.levels)
        return data

    @staticmethod
    def from_dict(raw: dict[str, Any], where: str = "catalog", stored: bool = False) -> Trait:
        """A trait from a traits file's entry; `stored`: from the warehouse's catalog, written by an earlier
        release, so checks added since (labels, keys that do not apply to the kind) are not applied to it."""
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: each trait must be a mapping with at least 'name' and 'kind'")
        raw = {("format" if k == "date_format" else k): v for k, v in raw.items()}  # stored form
        unknown_keys = sorted(str(k) for k in raw if k not in TRAIT_KEYS)
        if unknown_keys:
            raise CatalogError(
                f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown_keys)}"
                f"{did_you_mean(unknown_keys[0], TRAIT_KEYS)}; a trait may have {', '.join(sorted(TRAIT_KEYS))}"
            )
        name = str(raw.get("name", "")).strip()
        if not IDENTIFIER.match(name):
            raise CatalogError(
                f"{where}: trait name {name!r} must be lower case letters, digits and '_' starting with a letter"
            )
        if name in RESERVED_COLUMNS:
            raise CatalogError(f"{where}: {name!r} is a reserved column name; rename the trait")
        try:
            kind = TraitKind(str(raw.get("kind", "")).strip().lower())
        except ValueError:
            raise CatalogError(
                f"{where}: trait {name!r} has kind {raw.get('kind')!r}"
                f"{did_you_mean(str(raw.get('kind', '')).strip().lower(), TraitKind)}; use one of "
                f"{', '.join(TraitKind)}"
            ) from None
        given_levels = raw.get("levels") or ()
        if not isinstance(given_levels, list | tuple):
            raise CatalogError(
                f"{where}: trait {name!r} has levels {given_levels!r}; write them as a list, e.g. levels: [north, south]"
            )
        read_as_flags = [level for level in given_levels if isinstance(level, bool)]
        if read_as_flags:  # YAML 1.1 reads yes, no, on, off, true, false unquoted as booleans
            quoted = ", ".join(f'"{w}"' for w in ("yes", "no"))
            raise CatalogError(
                f"{where}: trait {name!r} has a level YAML read as {read_as_flags[0]!r}, not as a word; quote "
                f"words like yes, no, on and off in the levels, e.g. levels: [{quoted}]"
            )
        levels = tuple(str(level) for level in given_levels)
        if kind in (TraitKind.CATEGORICAL, TraitKind.ORDINAL) and len(levels) < 2:
            order = " in order, lowest first" if kind is TraitKind.ORDINAL else ""
            raise CatalogError(
                f"{where}: {kind} trait {name!r} needs 'levels' with at least two values{order}"
            )
        if len(set(levels)) != len(levels):
            twice = next(level for i, level in enumerate(levels) if level in levels[:i])
            raise CatalogError(f"{where}: {kind} trait {name!r} lists the level {twice!r} twice; keep one")
        normalize = bool(raw.get("normalize", False))
        if normalize and len({normal_level(level) for level in levels}) != len(levels):
            raise CatalogError(
                f"{where}: trait {name!r} has levels that differ only in case or spaces; with normalize: true "
                "they would read as one"
            )
        try:
            unknown = UnknownLevels(str(raw.get("unknown", "reject")).strip().lower())
        except ValueError:
            raise CatalogError(
                f"{where}: trait {name!r} has unknown: {raw.get('unknown')!r}; use reject or missing"
            ) from None
        reference = str(raw.get("reference") or "").strip()
        if reference:
            try:
                reference = dt.date.fromisoformat(reference[:10]).isoformat()
            except ValueError:
                raise CatalogError(
                    f"{where}: trait {name!r} has reference {raw.get('reference')!r}; write a date, e.g. "
                    "reference: 2026-01-01"
                ) from None
        for key, allowed in (("format", TraitKind.DATE), ("reference", TraitKind.DATE)):
            if raw.get(key) and kind is not allowed:
                raise CatalogError(f"{where}: trait {name!r} is {kind}; '{key}' applies to date traits only")
        column = str(raw.get("column") or "").strip()
        for short, long in () if stored else (("min", "minimum"), ("max", "maximum")):
            if short in raw and long in raw:
                raise CatalogError(f"{where}: trait {name!r} has both {short!r} and {long!r}; keep one")
            if raw.get(short, raw.get(long)) is not None and kind is not TraitKind.NUMERIC:
                raise CatalogError(
                    f"{where}: trait {name!r} is {kind}; {short!r} applies to numeric traits only"
                )
        if given_levels and not stored and not (kind is TraitKind.CATEGORICAL or kind is TraitKind.ORDINAL):
            raise CatalogError(
                f"{where}: trait {name!r} is {kind}; 'levels' apply to categorical and ordinal traits"
            )
        minimum = _bound(raw.get("min", raw.get("minimum")), "min", name, where)
        maximum = _bound(raw.get("max", raw.get("maximum")), "max", name, where)
        if minimum is not None and maximum is not None and minimum > maximum:
            raise CatalogError(f"{where}: trait {name!r} has min {minimum:g} above max {maximum:g}")
        given_labels = raw.get("labels") or {}
        if not isinstance(given_labels, dict):
            raise CatalogError(
                f"{where}: trait {name!r} has labels {given_labels!r}; write them as a mapping, e.g. "
                "labels: {high: Seasoned, low: Young}"
            )
        labels = {str(k).lower() if isinstance(k, bool) else str(k): str(v) for k, v in given_labels.items()}
        named = _label_keys(kind, levels)
        stray = [] if stored else [k for k in labels if k not in named]
        if stray:  # a typo ('hgih') would otherwise name no persona, silently
            raise CatalogError(
                f"{where}: trait {name!r} has labels for {', '.join(map(repr, stray))}; a {kind} trait's labels are "
                f"for {', '.join(named)}"
            )
        return Trait(
            name=name,
            kind=kind,
            minimum=minimum,
            maximum=maximum,
            levels=levels,
            # a sensitive trait is described, never clustered on unless asked: personas split by gender or
            # ethnicity by default is not what a user who marked them means
            cluster=bool(raw.get("cluster", not raw.get("sensitive", False))),
            labels=labels,
            noun=bool(raw.get("noun", False)),
            description=str(raw.get("description") or ""),
            column="" if column == name else column,
            unknown=unknown,
            normalize=normalize,
            date_format=str(raw.get("format") or ""),
            reference=reference,
            unit=str(raw.get("unit") or ""),
            sensitive=bool(raw.get("sensitive", False)),
        )


def _label_keys(kind: TraitKind, levels: tuple[str, ...]) -> tuple[str, ...]:
    """What a trait's labels may name: its levels, true/false, or high/low (the side a persona leans to)."""
    if kind is TraitKind.CATEGORICAL:
        return levels
    if kind is TraitKind.BOOLEAN:
        return ("true", "false")
    return ("high", "low", *levels) if kind is TraitKind.ORDINAL else ("high", "low")


def normal_level(value: str) -> str:
    """A level as `normalize: true` compares it: case folded, spaces trimmed and collapsed."""
    return " ".join(str(value).split()).casefold()


def _bound(value: Any, key: str, name: str, where: str) -> float | None:
    """A declared min or max: a finite number, or absent."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise CatalogError(f"{where}: trait {name!r} has {key}: {value!r}; write a number, e.g. {key}: 18")
    return number


@dataclass(frozen=True)
class TraitCatalog:
    traits: tuple[Trait, ...]

    def __post_init__(self) -> None:
        names = [t.name for t in self.traits]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CatalogError(f"trait catalog names {', '.join(duplicates)} more than once")
        if not self.traits:
            raise CatalogError("trait catalog is empty: declare at least one trait")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.traits]

    @property
    def default_clustering(self) -> list[str]:
        return [t.name for t in self.traits if t.cluster]

    def __getitem__(self, name: str) -> Trait:
        for trait in self.traits:
            if trait.name == name:
                return trait
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.traits)

    def select(self, names: list[str] | None) -> list[Trait]:
        """The traits a user asked for, in catalog order; unknown names are an error that lists the known ones."""
        if not names:
            chosen = self.default_clustering
            if not chosen:
                raise CatalogError("no trait in the catalog is marked for clustering; pass --traits a,b,c")
            return [self[n] for n in chosen]
        unknown = [n for n in names if n not in self]
        if unknown:
            raise CatalogError(
                f"unknown trait(s) {', '.join(repr(n) for n in unknown)}{did_you_mean(unknown[0], self.names)}; "
                f"known traits: {', '.join(self.names)}"
            )
        wanted = set(names)
        return [t for t in self.traits if t.name in wanted]

    def to_json(self) -> str:
        return json.dumps([t.to_dict() for t in self.traits], sort_keys=True)

    @staticmethod
    def from_json(text: str) -> TraitCatalog:
        return TraitCatalog(tuple(Trait.from_dict(raw, stored=True) for raw in json.loads(text)))

    @staticmethod
    def from_yaml(path: str | Path) -> TraitCatalog:
        return read_traits_file(path).catalog


class ContactIds(StrEnum):
    """How a file identifies its contacts."""

    INTEGER = "integer"  # positive whole numbers up to 2^63-1, used as the contact_id itself
    TEXT = "text"  # any text key ("C001"), kept as external_id beside an internal integer contact_id
    GENERATED = "generated"  # the file has no id: each row is a new contact with a new contact_id


class OrderIds(StrEnum):
    GIVEN = "given"  # the file's order ids: a reload updates those orders, never doubles them
    GENERATED = "generated"  # made from each row's content, so loading the same file twice adds nothing


ORDER_FIELDS = ("order_id", "contact_id", "ordered_at", "amount", "product_category", "status", "refunded")
ORDER_OPTIONAL = frozenset({"product_category", "status", "refunded"})
CONTACT_KEYS = frozenset({"id_column", "ids", "created_at", "updated_at"})
ORDER_KEYS = frozenset({*ORDER_FIELDS, "order_ids"})
FILE_KEYS = frozenset({"traits", "contacts", "orders"})


@dataclass(frozen=True)
class ContactLayout:
    """Where a contacts file keeps its id and dates."""

    id_column: str = "contact_id"
    ids: ContactIds = ContactIds.INTEGER
    created_at: str = "created_at"
    updated_at: str = "updated_at"


@dataclass(frozen=True)
class OrderLayout:
    """The orders file's header for each field we read (field name to header)."""

    columns: dict[str, str] = field(default_factory=lambda: {f: f for f in ORDER_FIELDS})
    order_ids: OrderIds = OrderIds.GIVEN


@dataclass(frozen=True)
class TraitsFile:
    catalog: TraitCatalog
    contacts: ContactLayout = ContactLayout()
    orders: OrderLayout = OrderLayout()

    def layout_json(self) -> str:
        """The file's `contacts:` and `orders:` sections, stored so a later load without the traits file (only
        --orders or --remove) reads its files the same way."""
        contacts = {k: str(v) for k, v in asdict(self.contacts).items()}
        return json.dumps(
            {"contacts": contacts, "orders": {**self.orders.columns, "order_ids": str(self.orders.order_ids)}}
        )

    @staticmethod
    def with_layout(catalog: TraitCatalog, stored: str | None) -> TraitsFile:
        """The stored catalog with the layout stored beside it (defaults when none was)."""
        if not stored:
            return TraitsFile(catalog)
        raw = json.loads(stored)
        return TraitsFile(
            catalog,
            _contact_layout(raw.get("contacts"), "stored layout"),
            _order_layout(raw.get("orders"), "stored layout"),
        )


def read_traits_file(path: str | Path) -> TraitsFile:
    """The traits file: the catalog and how the files map onto it; every error names its line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the trait catalog ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"{path}: the trait catalog is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    entries = raw.get("traits") if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        raise CatalogError(f"{path}: expected a list of traits under the key 'traits'")
    if isinstance(raw, dict):
        extra = sorted(str(k) for k in raw if k not in FILE_KEYS)
        if extra:
            raise CatalogError(
                f"{path} line {_line(root, extra[0])}: unknown key {extra[0]!r}; the file may have "
                f"{', '.join(sorted(FILE_KEYS))}"
            )
    lines = _item_lines(root)
    catalog = TraitCatalog(
        tuple(
            Trait.from_dict(e, f"{path} line {lines[i] if i < len(lines) else '?'} (trait #{i + 1})")
            for i, e in enumerate(entries)
        )
    )
    if not isinstance(raw, dict):
        return TraitsFile(catalog)
    return TraitsFile(
        catalog,
        _contact_layout(raw.get("contacts"), f"{path} line {_line(root, 'contacts')}"),
        _order_layout(raw.get("orders"), f"{path} line {_line(root, 'orders')}"),
    )


def _section(value: Any, keys: frozenset[str], name: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: '{name}' must be a mapping of keys {', '.join(sorted(keys))}")
    extra = sorted(str(k) for k in value if k not in keys)
    if extra:
        raise CatalogError(
            f"{where}: unknown key {extra[0]!r} under '{name}'{did_you_mean(extra[0], keys)}; it may have "
            f"{', '.join(sorted(keys))}"
        )
    return value


def _contact_layout(value: Any, where: str) -> ContactLayout:
    given = _section(value, CONTACT_KEYS, "contacts", where)
    try:
        ids = ContactIds(str(given.get("ids", "integer")).strip().lower())
    except ValueError:
        raise CatalogError(
            f"{where}: contacts: ids: {given.get('ids')!r}; use {', '.join(ContactIds)}"
        ) from None
    return ContactLayout(
        id_column=str(given.get("id_column") or "contact_id"),
        ids=ids,
        created_at=str(given.get("created_at") or "created_at"),
        updated_at=str(given.get("updated_at") or "updated_at"),
    )


def _order_layout(value: Any, where: str) -> OrderLayout:
    given = _section(value, ORDER_KEYS, "orders", where)
    try:
        order_ids = OrderIds(str(given.get("order_ids", "given")).strip().lower())
    except ValueError:
        raise CatalogError(
            f"{where}: orders: order_ids: {given.get('order_ids')!r}; use {', '.join(OrderIds)}"
        ) from None
    columns = {f: str(given.get(f) or f) for f in ORDER_FIELDS}
    return OrderLayout(columns, order_ids)


def _line(root: yaml.Node | None, key: str) -> int | str:
    """The 1-based line of a top-level key, for messages."""
    if isinstance(root, yaml.MappingNode):
        for key_node, _ in root.value:
            if key_node.value == key:
                return key_node.start_mark.line + 1
    return "?"


def _item_lines(root: yaml.Node | None) -> list[int]:
    """The 1-based line where each trait entry starts."""
    node = root
    if isinstance(root, yaml.MappingNode):
        node = next((v for k, v in root.value if k.value == "traits"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]
