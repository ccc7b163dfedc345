"""The trait catalog: what each trait is, so every later step knows how to validate, encode and name it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from persona_pipeline.errors import CatalogError

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

    @property
    def title(self) -> str:
        return self.name.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        data["levels"] = list(self.levels)
        return data

    @staticmethod
    def from_dict(raw: dict[str, Any], where: str = "catalog") -> Trait:
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: each trait must be a mapping with at least 'name' and 'kind'")
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
                f"{where}: trait {name!r} has kind {raw.get('kind')!r}; use one of numeric, categorical, boolean"
            ) from None
        given_levels = raw.get("levels") or ()
        if not isinstance(given_levels, list | tuple):
            raise CatalogError(
                f"{where}: trait {name!r} has levels {given_levels!r}; write them as a list, e.g. levels: [north, south]"
            )
        levels = tuple(str(level) for level in given_levels)
        if kind is TraitKind.CATEGORICAL and len(levels) < 2:
            raise CatalogError(f"{where}: categorical trait {name!r} needs 'levels' with at least two values")
        if len(set(levels)) != len(levels):
            raise CatalogError(f"{where}: categorical trait {name!r} lists a level twice")
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
        return Trait(
            name=name,
            kind=kind,
            minimum=minimum,
            maximum=maximum,
            levels=levels,
            cluster=bool(raw.get("cluster", True)),
            labels=labels,
            noun=bool(raw.get("noun", False)),
            description=str(raw.get("description", "")),
        )


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
                f"unknown trait(s) {', '.join(repr(n) for n in unknown)}; known traits: {', '.join(self.names)}"
            )
        wanted = set(names)
        return [t for t in self.traits if t.name in wanted]

    def to_json(self) -> str:
        return json.dumps([t.to_dict() for t in self.traits], sort_keys=True)

    @staticmethod
    def from_json(text: str) -> TraitCatalog:
        return TraitCatalog(tuple(Trait.from_dict(raw) for raw in json.loads(text)))

    @staticmethod
    def from_yaml(path: str | Path) -> TraitCatalog:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read the trait catalog ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise CatalogError(
                f"{path}: the trait catalog is not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from exc
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
        entries = raw.get("traits") if isinstance(raw, dict) else raw
        if not isinstance(entries, list):
            raise CatalogError(f"{path}: expected a list of traits under the key 'traits'")
        return TraitCatalog(
            tuple(Trait.from_dict(e, f"{path}, trait #{i + 1}") for i, e in enumerate(entries))
        )
