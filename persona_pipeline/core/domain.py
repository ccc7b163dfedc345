"""The domain's typed records: what crosses layers (catalog rows, personas, scoring buckets, change windows).

Plain dataclasses and enums over the standard library only, so every layer (and the CLI at start-up) can use
them without importing numpy, pandas, SQLAlchemy or Dagster.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from persona_pipeline.errors import PersonaPipelineError

MIN_PERSONAS = 2
MAX_PERSONAS = 12  # a user may ask for this many; the data chooses among clustering.K_MIN..K_MAX
MAX_NAME_LENGTH = 200  # persona set, persona and pipeline names
DEFAULT_MAX_QUARANTINE_SHARE = 0.05  # a build stops when more of the cohort's rows than this fail validation
MIN_STABILITY = 0.8  # split-half adjusted Rand index a k needs to be chosen (core/clustering.STABLE)
DEFAULT_WINDOW_DAYS = 365  # the Analysis's order window: days up to the latest order
EXPORT_KINDS = ("memberships", "personas", "analysis", "flow", "history")


# Control characters (terminal escapes included), format characters (bidirectional overrides, zero-width
# joiners), surrogates, private-use and unassigned code points: none belongs in a name people read.
REFUSED_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def clean_name(text: str, what: str, error: type[PersonaPipelineError]) -> str:
    """A user's name for something, in NFC and trimmed; refused (with `error`) when empty, too long or holding
    characters that could disguise it on a terminal or a page."""
    name = unicodedata.normalize("NFC", text).strip()
    if not name:
        raise error(f"{what} needs a name of 1 to {MAX_NAME_LENGTH} characters")
    if len(name) > MAX_NAME_LENGTH:
        raise error(f"the name is {len(name)} characters long; keep it to {MAX_NAME_LENGTH}")
    hidden = sorted({f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in REFUSED_IN_NAMES})
    if hidden:
        raise error(
            f"{what} name {name!r} holds {', '.join(hidden[:5])}: control characters, terminal escapes and "
            "direction overrides are not allowed in names; remove them"
        )
    return name


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """The hint for a near miss among `choices` (a typo, a letter too many): " (did you mean 'income'?)", or "".
    A choice written the same but for case, spaces, '-' and '_' ('cardholders-lc' for 'Cardholders LC') wins
    over a closer spelling."""
    options = [str(c) for c in choices]
    same = [c for c in options if _loose(c) == _loose(str(word))]
    # a name cut short ('Wag' for 'wage') is a near miss too, when only one choice starts so
    started = [c for c in options if len(_loose(str(word))) >= 3 and _loose(c).startswith(_loose(str(word)))]
    near = (
        same
        or (started if len(started) == 1 else [])
        or difflib.get_close_matches(str(word), options, n=1, cutoff=0.7)
    )
    return f" (did you mean {near[0]!r}?)" if near else ""


def _loose(text: str) -> str:
    return re.sub(r"[\s_-]+", "", text).casefold()


def name_key(name: str) -> str:
    """What makes two names the same name: Unicode composition and letter case do not ("Café" = "CAFÉ")."""
    return unicodedata.normalize("NFC", name).casefold()


class PersonaSetStatus(StrEnum):
    """Where a persona set is in its life; only persona_sets.lifecycle changes it."""

    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"
    ERRORED = "errored"


class ClusteringMethod(StrEnum):
    """How a persona set's contacts are grouped (core/model.py): nearest centroid on the standardized
    features, or a latent-class model (core/latent_class.py) that reads numbers, levels and missing values
    natively. Both choose k the same way and score exactly in Python and in the warehouse."""

    KMEANS = "k-means"
    LATENT_CLASS = "latent-class"


class Trigger(StrEnum):
    """What starts a scoring pipeline's runs."""

    AD_HOC = "ad_hoc"
    SCHEDULE = "schedule"
    ON_CHANGE = "on_change"


@dataclass(frozen=True)
class PersonaSet:
    """A persona set's catalog row: its definition and where it is in its life."""

    id: int
    name: str
    cohort: str
    traits: list[str] | None  # None: the catalog's clustering traits
    n_personas: int | None  # None: chosen by the data
    seed: int
    status: PersonaSetStatus
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    built_at: dt.datetime | None
    current_build: int | None  # the build every reader sees; None until the first build lands
    analysis_traits: list[str]
    show_in_explore: bool = True
    analysis_window_days: int | None = None  # the order window a user chose for the Analysis; None: default
    method: ClusteringMethod = ClusteringMethod.KMEANS

    @property
    def window_days(self) -> int:
        """The Analysis's order window in days, kept until the user changes it."""
        return self.analysis_window_days or DEFAULT_WINDOW_DAYS


@dataclass(frozen=True)
class IdentityFigure:
    """How many contacts of both builds kept their persona (same id and same name), split by whether their
    clustering traits changed in between. `unknown`: contacts whose previous build stored no fingerprint."""

    unchanged: int
    unchanged_kept: int
    changed: int
    changed_kept: int
    unknown: int
    unknown_kept: int
    joined: int  # contacts in this build only
    left: int  # contacts in the previous build only
    unchanged_same_id: int | None = None  # unchanged contacts whose persona id held, renamed or not
    renamed: tuple[str, ...] = ()  # 'old name -> new name' of personas whose name no longer held
    # the traits the previous build clustered on that this one does not, and the reverse: every contact's
    # clustering traits then differ, so all count as changed, and the line says why
    traits_gone: tuple[str, ...] = ()
    traits_added: tuple[str, ...] = ()

    @property
    def both(self) -> int:
        return self.unchanged + self.changed + self.unknown

    @property
    def kept_share(self) -> float | None:
        kept = self.unchanged_kept + self.changed_kept + self.unknown_kept
        return kept / self.both if self.both else None

    @property
    def unchanged_share(self) -> float | None:
        return self.unchanged_kept / self.unchanged if self.unchanged else None

    def _groups(self) -> tuple[tuple[str, int, int], ...]:
        """(label, kept, total) for unchanged, changed and untracked contacts, in that order."""
        return (
            ("unchanged", self.unchanged_kept, self.unchanged),
            ("changed", self.changed_kept, self.changed),
            ("untracked", self.unknown_kept, self.unknown),
        )

    def metadata(self) -> dict[str, str]:
        """Stable keys, values for people: what the UI shows beside a build."""
        out = {
            f"kept persona: {label} contacts": f"{kept / total:.1%} of {total:,}" if total else "none"
            for label, kept, total in self._groups()[:2]
        }
        out["contacts joined / left"] = f"{self.joined:,} / {self.left:,}"
        if self.traits_gone or self.traits_added:
            out["clustering traits changed"] = self.traits_text()
        if self.renamed:  # the line's explanation, in the UI too
            out["renamed personas (their old name no longer true)"] = "; ".join(self.renamed)
            if self.unchanged and self.unchanged_same_id is not None:
                share = self.unchanged_same_id / self.unchanged
                out["kept persona id: unchanged contacts"] = f"{share:.1%} of {self.unchanged:,}"
        return out

    def text(self) -> str:
        """One line for people: '99.9% of 47,500 unchanged contacts kept their persona; 81.2% of 2,500 changed'."""
        parts = []
        for label, kept, total in self._groups():
            if total:
                parts.append(f"{kept / total:.1%} of {total:,} {label} contacts")
        if self.unknown:
            parts[-1] += " (the previous build kept no record of their traits)"
        if not parts:
            return "no contact of the previous build is in this one"
        moves = f"; {self.joined:,} joined, {self.left:,} left" if self.joined or self.left else ""
        renames = ""
        if self.renamed and self.unchanged and self.unchanged_same_id is not None:
            renames = (
                f"; {self.unchanged_same_id / self.unchanged:.1%} of the unchanged kept the persona id, but "
                f"{len(self.renamed)} persona{'s were' if len(self.renamed) > 1 else ' was'} renamed, its old name "
                f"no longer true of it ({'; '.join(self.renamed)})"
            )
        line = f"kept their persona (id and name): {', '.join(parts)}{moves}{renames}"
        if self.traits_gone or self.traits_added:
            line = f"{self.traits_text()}; {line}"
        return line

    def traits_text(self) -> str:
        """'this build clusters on other traits than the previous one (without a, b; with c): every contact's
        traits count as changed'."""
        differences = [
            f"{word} {', '.join(names)}"
            for word, names in (("without", self.traits_gone), ("with", self.traits_added))
            if names
        ]
        return (
            f"this build clusters on other traits than the previous one ({'; '.join(differences)}): every "
            "contact's traits count as changed"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> IdentityFigure:
        data = json.loads(text)
        for key in ("renamed", "traits_gone", "traits_added"):
            data[key] = tuple(data.get(key, ()))
        return IdentityFigure(**data)


def k_rows(scores: list[dict[str, Any]], chosen: int) -> list[dict[str, str]]:
    """Per-k figures of a k choice (core/clustering.py, or core/latent_class.py for a latent-class set: its ICL
    per contact, lower is better, in place of the k-means gains) as text columns with units; see
    BuildSummary.k_table."""

    def shown(value: Any, pattern: str, missing: str = "-") -> str:
        return missing if value is None else pattern.format(value)

    latent = any("icl" in s for s in scores)  # a latent-class set's k: its ICL, not k-means' gains
    return [
        {
            "k": f"{int(s['k'])}{' (chosen)' if int(s['k']) == chosen else ''}",
            **(
                {"ICL per contact": shown(s.get("icl"), "{:.3f}")}
                if latent
                else {
                    "fit gain": shown(s.get("gain"), "{:.1%}"),
                    "gain vs finer k": shown(s.get("elbow"), "{:.1f}x"),
                }
            ),
            "smallest persona": shown(s.get("smallest"), "{:.1%}"),
            "stability": shown(s.get("stability"), "{:.2f}", missing="not measured"),
            "verdict": shown(s.get("verdict"), "{}"),
        }
        for s in scores
    ]


def stability_warning(stability: float | None) -> str | None:
    """What a build under the stability the automatic k requires means, or None (a user's k can be one)."""
    if stability is None or stability >= MIN_STABILITY:
        return None
    return (
        f"split-half stability {stability:.2f}, under {MIN_STABILITY:.2f}: another sample would draw other "
        "personas; try fewer personas or other traits"
    )


@dataclass(frozen=True)
class BuildSummary:
    """One stored build of a persona set: its model (JSON) and the figures `persona-set show` prints."""

    build: int
    k: int
    k_reason: str
    k_scores: str  # JSON list of per-k scores
    stability: float | None
    model: str  # JSON: feature transform, centroids, persona ids
    cohort_size: int
    quarantined: int
    kept_from_previous: float | None  # share of the contacts of both builds that kept persona id and name
    built_at: dt.datetime | None
    identity: str | None = None  # JSON IdentityFigure; None on a first build

    def k_table(self) -> list[dict[str, str]]:
        """Why this k: per candidate k, its fit gain, how far that stands above finer k, its smallest persona
        and its split-half stability, formatted for people (builds stored before a figure existed show '-')."""
        return k_rows(json.loads(self.k_scores or "[]"), self.k)

    @property
    def identity_figure(self) -> IdentityFigure | None:
        return IdentityFigure.from_json(self.identity) if self.identity else None

    @property
    def method(self) -> ClusteringMethod:
        """How this build grouped its contacts (a set's method may have changed since)."""
        return ClusteringMethod(json.loads(self.model).get("method", ClusteringMethod.KMEANS))

    def stability_warning(self) -> str | None:
        return stability_warning(self.stability)


@dataclass(frozen=True)
class TraitEffect:
    """One trait (or one level of it) where a persona differs from its cohort; effect is a standardized gap."""

    trait: str
    level: str | None  # the level for categorical traits, "true" for booleans, "high"/"low" for numeric
    effect: float
    persona_value: float
    cohort_value: float
    text: str
    salient: bool = False  # large and significant against the rest of the cohort (core/profiles.py)
    sensitive: bool = False  # of a trait declared sensitive: described, never a name word nor an idea
    known: float = 1.0  # the share of the persona whose value is known: the figures are of those alone

    def to_dict(self) -> dict[str, object]:
        return self.__dict__.copy()

    @staticmethod
    def from_dict(item: dict[str, Any]) -> TraitEffect:
        return TraitEffect(
            item["trait"],
            item["level"],
            item["effect"],
            item["persona_value"],
            item["cohort_value"],
            item["text"],
            bool(item.get("salient", True)),  # stored before the flag: only defining traits were stored
            bool(item.get("sensitive", False)),
            float(item.get("known", 1.0)),
        )


# what a view prints for a persona without a rule: said, not a silent gap (a trial read the gap as a fault)
NO_RULE = "none: no short rule over its traits (sensitive ones never used) picks out mostly its contacts"


@dataclass(frozen=True)
class Rule:
    conditions: list
    precision: float  # share of contacts matching the rule that are in the persona
    coverage: float  # share of the persona's contacts that match the rule

    @property
    def text(self) -> str:
        return " and ".join(self.conditions)

    @property
    def described(self) -> str:
        """'age ≤ 35 years (91% precise, covers 74%)': what every view prints."""
        return f"{self.text} ({self.precision:.0%} precise, covers {self.coverage:.0%})"

    def to_dict(self) -> dict[str, object]:
        return {
            "conditions": self.conditions,
            "precision": self.precision,
            "coverage": self.coverage,
            "text": self.text,
        }

    @staticmethod
    def from_dict(item: dict[str, Any]) -> Rule:
        return Rule(list(item["conditions"]), item["precision"], item["coverage"])


@dataclass(frozen=True)
class Interpretation:
    """A persona in plain language (core/interpretation.py): a short summary and marketing ideas."""

    summary: str
    ideas: tuple[str, ...]
    prose: str = ""  # the summary retold by an optional language model (studies/prose.py), checked
    prose_by: str = ""  # that model's name
    prose_note: str = ""  # why no prose was added, when an endpoint was asked and it was not

    def to_json(self) -> str:
        data = {"summary": self.summary, "ideas": list(self.ideas)}
        extra = {"prose": self.prose, "prose_by": self.prose_by, "prose_note": self.prose_note}
        return json.dumps(data | {k: v for k, v in extra.items() if v})

    @staticmethod
    def from_json(text: str) -> Interpretation:
        data = json.loads(text)
        return Interpretation(
            data["summary"],
            tuple(data["ideas"]),
            prose=data.get("prose", ""),
            prose_by=data.get("prose_by", ""),
            prose_note=data.get("prose_note", ""),
        )


@dataclass(frozen=True)
class Persona:
    """One persona of a build: who it is (name, avatar), how many, and what sets it apart."""

    persona_id: int
    name: str
    population: int
    share: float
    defining: list[TraitEffect]
    rules: list[Rule]
    avatar_svg: str
    named_by_user: bool = False  # a user's name is never replaced by a rebuild
    interpretation: Interpretation | None = None
    # beside a name a user gave: the one its traits give it now (when it moves, so did the persona's meaning)
    data_name: str = ""

    def to_row(self) -> dict[str, Any]:
        """As a row of the personas table (defining traits and rules as JSON text)."""
        return {
            "persona_id": self.persona_id,
            "name": self.name,
            "avatar_svg": self.avatar_svg,
            "population": self.population,
            "share": self.share,
            "defining_traits": json.dumps([d.to_dict() for d in self.defining]),
            "rules": json.dumps([r.to_dict() for r in self.rules]),
            "named_by_user": self.named_by_user,
            "data_name": self.data_name or None,
            "interpretation": self.interpretation.to_json() if self.interpretation else None,
        }

    @staticmethod
    def from_row(row: Any) -> Persona:
        """From a row of the personas table (anything with its columns as attributes)."""
        return Persona(
            persona_id=int(row.persona_id),
            name=row.name,
            population=int(row.population),
            share=float(row.share),
            defining=[TraitEffect.from_dict(d) for d in json.loads(row.defining_traits)],
            rules=[Rule.from_dict(r) for r in json.loads(row.rules)],
            avatar_svg=row.avatar_svg,
            named_by_user=bool(getattr(row, "named_by_user", False)),
            data_name=str(getattr(row, "data_name", None) or ""),
            interpretation=Interpretation.from_json(text)
            if (text := getattr(row, "interpretation", None))
            else None,
        )


def names_by_id(personas: list[Persona]) -> dict[int, str]:
    return {p.persona_id: p.name for p in personas}


@dataclass(frozen=True)
class ScoringBucket:
    """A range of contact ids scored as one step of a run: [low, high), None meaning open on that side."""

    index: int
    low: int | None
    high: int | None

    def to_list(self) -> list[int | None]:
        return [self.index, self.low, self.high]

    @staticmethod
    def from_list(values: list[int | None]) -> ScoringBucket:
        index, low, high = values
        return ScoringBucket(int(index), low, high)


@dataclass(frozen=True)
class ChangeWindow:
    """Contacts changed after (after_time, after_id) up to and including (upto_time, upto_id).

    Ordered by (updated_at, contact_id), so contacts changed in the same second are split without gaps.
    """

    after_time: dt.datetime
    after_id: int
    upto_time: dt.datetime
    upto_id: int

    def as_params(self) -> dict[str, Any]:
        return {
            "after_time": self.after_time,
            "after_id": self.after_id,
            "upto_time": self.upto_time,
            "upto_id": self.upto_id,
        }


@dataclass(frozen=True)
class Watermark:
    """The last change a sensor has seen: contacts are ordered by (updated_at, contact_id)."""

    time: dt.datetime
    contact_id: int


class ScoringEngine(StrEnum):
    """Where a pipeline's contacts are assigned: in Python (read out, assigned, written back) or inside the
    warehouse by SQL generated from the model (no contact leaves it; PostgreSQL)."""

    PYTHON = "python"
    WAREHOUSE = "warehouse"


@dataclass(frozen=True)
class Pipeline:
    """A scoring pipeline's catalog row."""

    id: int
    name: str
    population: list[str]  # cohorts, unioned
    payload: list[int]  # persona set ids
    trigger: Trigger
    cron: str | None
    destination_table: str | None
    destination_csv: str | None
    created_at: dt.datetime
    last_run_at: dt.datetime | None = field(default=None)
    score_in: ScoringEngine = ScoringEngine.PYTHON
