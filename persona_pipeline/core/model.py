"""A persona model: the fitted feature transform, the centroids and their persona ids; built, stored, applied."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from persona_pipeline.core import clustering, identity, latent_class
from persona_pipeline.core.domain import ClusteringMethod
from persona_pipeline.core.features import FeatureTransform, numbers
from persona_pipeline.core.traits import Trait, TraitKind
from persona_pipeline.errors import FeatureError


@dataclass
class PersonaModel:
    """centroids: (k, d) each persona's mean feature row (k-means assigns by them); latent: the latent-class
    model when the set uses one (it then assigns, and the centroids only describe)."""

    transform: FeatureTransform
    centroids: np.ndarray
    persona_ids: list[int]
    seed: int
    latent: latent_class.LatentClasses | None = None

    @property
    def k(self) -> int:
        return len(self.persona_ids)

    @property
    def method(self) -> ClusteringMethod:
        return ClusteringMethod.KMEANS if self.latent is None else ClusteringMethod.LATENT_CLASS

    def traits_missing_from(self, names: Collection[str]) -> list[str]:
        """The traits it assigns by that `names` lacks (say, a --replace dropped them): until it is rebuilt,
        contacts described by `names` alone cannot be assigned."""
        return [t for t in self.transform.trait_names if t not in names]

    def assign(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Persona id (n,) and confidence (n,) for each row: k-means' 1 - d_nearest / d_second, or the
        latent-class posterior of the persona chosen."""
        if self.latent is not None:
            labels, confidence = latent_class.assign(
                latent_class.costs(self.transform.trait_values(frame), self.latent)
            )
        else:
            widths = [e.width for e in self.transform.encodings]  # exact ties are decided trait by trait
            labels, confidence = clustering.nearest_two(
                self.transform.transform(frame), self.centroids, widths=widths
            )
        return np.asarray(self.persona_ids, dtype=np.int32)[labels], confidence

    def to_dict(self, decimals: int | None = 6) -> dict[str, Any]:
        """As plain data: numbers rounded for storage, or exact (decimals=None) to hand between steps."""
        centroids = self.centroids.astype(float)
        data = {
            "transform": self.transform.to_dict(),
            "centroids": (centroids if decimals is None else centroids.round(decimals)).tolist(),
            "persona_ids": self.persona_ids,
            "seed": self.seed,
            "method": str(self.method),
        }
        if self.latent is not None:
            data["latent_class"] = self.latent.to_dict(decimals)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PersonaModel:
        return PersonaModel(
            FeatureTransform.from_dict(data["transform"]),
            np.asarray(data["centroids"], dtype=np.float64),
            [int(i) for i in data["persona_ids"]],
            int(data["seed"]),
            latent_class.LatentClasses.from_dict(data["latent_class"]) if "latent_class" in data else None,
        )

    @staticmethod
    def from_json(text: str) -> PersonaModel:
        return PersonaModel.from_dict(json.loads(text))


OPTIONAL_ARRAYS = ("contact_ids", "fingerprints", "previous_ids", "trait_states")


@dataclass
class BuildOutcome:
    model: PersonaModel
    persona_ids: np.ndarray  # (n,) int: each row's persona, in the order of the frame
    confidence: np.ndarray  # (n,) float in [0, 1]
    k_choice: clustering.KChoice
    stability: float
    dropped_traits: list[str] = field(default_factory=list)  # "name (why)": traits it could not cluster on
    contact_ids: np.ndarray | None = None  # (n,) int64: each row's contact (set by the build step)
    # Against the previous build's stored memberships (see core/identity.py); None on a first build.
    fingerprints: np.ndarray | None = None  # (n,) int64: the clustering traits each membership was built from
    previous_ids: np.ndarray | None = None  # (n,) int32: the persona each row had, 0 when it was not there
    trait_states: np.ndarray | None = None  # (n,) int8 identity.TraitState
    left_previous: int = 0  # contacts of the previous build that are not in this one
    previous_traits: list[str] = field(default_factory=list)  # the previous build's clustering traits

    def to_parts(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """As data, not code: a JSON-able description and the (n,) arrays (steps hand these to each other)."""
        meta = {
            "model": self.model.to_dict(decimals=None),
            "k_choice": {
                "k": self.k_choice.k,
                "reason": self.k_choice.reason,
                "scores": self.k_choice.scores,
            },
            "stability": self.stability,
            "dropped_traits": self.dropped_traits,
            "left_previous": self.left_previous,
            "previous_traits": self.previous_traits,
        }
        arrays = {"persona_ids": np.asarray(self.persona_ids), "confidence": np.asarray(self.confidence)}
        for name in OPTIONAL_ARRAYS:
            if getattr(self, name) is not None:
                arrays[name] = np.asarray(getattr(self, name))
        return meta, arrays

    @staticmethod
    def from_parts(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> BuildOutcome:
        choice = meta["k_choice"]
        return BuildOutcome(
            model=PersonaModel.from_dict(meta["model"]),
            persona_ids=arrays["persona_ids"],
            confidence=arrays["confidence"],
            k_choice=clustering.KChoice(int(choice["k"]), choice["reason"], list(choice["scores"])),
            stability=float(meta["stability"]),
            dropped_traits=list(meta["dropped_traits"]),
            left_previous=int(meta.get("left_previous", 0)),
            previous_traits=list(meta.get("previous_traits", [])),
            **{name: arrays[name] for name in OPTIONAL_ARRAYS if name in arrays},
        )


def one_thread() -> threadpool_limits:
    """k-means on one OpenMP thread: on samples this size a second thread gains little, and when another
    process holds the other core (a daemon step, a test worker) OpenMP's spinning threads made the same fits
    10x slower (benchmarks/choose_k.py)."""
    return threadpool_limits(limits=1, user_api="openmp")


MIN_KNOWN_TO_CLUSTER = 0.5  # a trait known for fewer of the cohort would cluster mostly on filled-in values


def usable_traits(frame: pd.DataFrame, traits: list[Trait], explicit: bool) -> tuple[list[Trait], list[str]]:
    """Drop traits that cannot separate anyone (one value for the whole cohort) and traits known for under
    half of it (a trial merged a second table's traits file: its traits, known for 3% of the cohort, were
    clustered on with the rest filled in); an explicit choice of either is an error. Returns the traits kept
    and 'name (why)' for each left out."""
    constant, unknown = [], []
    for trait in traits:
        column = frame[trait.name]
        known = float(column.notna().mean()) if len(column) else 1.0
        if known < MIN_KNOWN_TO_CLUSTER:
            unknown.append((trait.name, known))
            continue
        if trait.kind is TraitKind.NUMERIC:  # min == max: no hashing of a million floats
            values = numbers(column)
            values = values[~np.isnan(values)]
            single = values.size == 0 or values.min() == values.max()
        else:
            single = column.nunique(dropna=True) <= 1
        if single:
            constant.append(trait.name)
    if constant and explicit:
        raise FeatureError(
            f"trait(s) {', '.join(constant)} have a single value across the whole cohort, so they cannot separate "
            "personas: remove them from --traits"
        )
    if unknown and explicit:
        raise FeatureError(
            f"trait(s) {', '.join(f'{name} (known for {share:.0%})' for name, share in unknown)} are known for "
            f"under {MIN_KNOWN_TO_CLUSTER:.0%} of the cohort: personas clustered on them would rest on filled-in "
            "values; remove them from --traits, or load their values"
        )
    left_out = {name for name, _ in unknown} | set(constant)
    kept = [t for t in traits if t.name not in left_out]
    if not kept:
        raise FeatureError(
            "every clustering trait has a single value across the cohort or is known for under "
            f"{MIN_KNOWN_TO_CLUSTER:.0%} of it; choose other traits"
        )
    why = [f"{name} (known for {share:.0%} of the cohort)" for name, share in unknown]
    return kept, why + [f"{name} (one value for the whole cohort)" for name in constant]


def build_model(
    frame: pd.DataFrame,
    traits: list[Trait],
    seed: int,
    k: int | None = None,
    previous: PersonaModel | None = None,
    explicit_traits: bool = False,
    progress: clustering.Progress | None = None,
    previous_ids: np.ndarray | None = None,
    fingerprint: bool = False,
    method: ClusteringMethod = ClusteringMethod.KMEANS,
    same_traits: bool = True,
) -> BuildOutcome:
    """Encode, choose k (or take the user's), fit, and keep persona identities from the previous build.

    previous_ids: (n,) the persona each row had in the previous build as stored (0 for rows it did not have);
    without it, the previous model applied to these rows stands in. With `fingerprint`, each row's hash of the
    traits it is clustered on is computed on a second thread meanwhile (k-means holds one core; at 10M
    contacts the hashes take 5 s: BENCHMARKS.md) and returned as the outcome's fingerprints.
    method: k-means, or a latent-class model with its own rule for k (core/latent_class.py).
    same_traits: False when the previous build clustered on other traits: its k is not kept nor its model
    reused, but persona ids still follow the contacts (previous_ids), so a persona that carries on keeps its id.
    """
    traits, dropped = usable_traits(frame, traits, explicit_traits)
    with ThreadPoolExecutor(1) as beside:
        hashing = beside.submit(identity.fingerprints, frame, traits) if fingerprint else None
        outcome = _fit(frame, traits, seed, k, previous, progress, previous_ids, dropped, method, same_traits)
        outcome.fingerprints = hashing.result() if hashing is not None else None
    return outcome


def _fit(
    frame: pd.DataFrame,
    traits: list[Trait],
    seed: int,
    k: int | None,
    previous: PersonaModel | None,
    progress: clustering.Progress | None,
    previous_ids: np.ndarray | None,
    dropped: list[str],
    method: ClusteringMethod,
    same_traits: bool = True,
) -> BuildOutcome:
    transform = FeatureTransform.fit(frame, traits)
    x = transform.transform(frame)
    if progress:
        left_out = f"; left out {', '.join(dropped)}" if dropped else ""
        progress(
            f"features: {x.shape[0]:,} contacts x {x.shape[1]} columns from {len(traits)} traits{left_out}"
        )
    latent = method is ClusteringMethod.LATENT_CLASS
    values = transform.trait_values(frame) if latent else []
    previous_k = previous.k if previous is not None and same_traits else None
    # the latent-class EM's matrix products on one BLAS thread too, as the quality panel measured it
    with one_thread(), threadpool_limits(limits=1, user_api="blas") if latent else contextlib.nullcontext():
        if k is not None and len(x) < k:
            raise clustering.ClusteringError(
                f"the cohort has {len(x)} valid contacts, fewer than the {k} personas asked for; lower --personas"
            )
        if latent:
            choice = latent_class.choose_k(transform, values, x, seed, progress, previous_k)
        else:
            choice = clustering.choose_k(x, seed, progress, previous_k)
        if k is not None:  # what the data would choose stays beside the user's k: how reproducible theirs is
            choice = clustering.KChoice(
                k,
                f"set by the user; the data would choose k={choice.k} ({choice.reason})",
                [_users_row(s, k) for s in choice.scores],
                choice.centres if choice.k == k else None,
                choice.latent if choice.k == k else None,
            )
        previous_labels = None
        if previous is not None and (previous_ids is not None or same_traits):
            previous_labels = previous_ids if previous_ids is not None else previous.assign(frame)[0]
        if latent:
            # the previous latent classes start a fit only over the same traits
            result = _fit_latent(
                frame,
                x,
                values,
                transform,
                seed,
                choice,
                previous if same_traits else None,
                previous_labels,
                previous.persona_ids if previous is not None else None,
            )
        else:
            result = clustering.fit(
                x,
                choice.k,
                seed,
                previous_labels,
                previous.persona_ids if previous is not None else None,
                start=choice.centres,
            )
        if progress:
            how = "latent-class EM" if latent else "k-means"
            start = "warm start from the previous build" if result.warm_started else "fresh"
            progress(f"fitted {len(result.persona_ids)} personas by {how} ({start})")
        stability = next((s["stability"] for s in choice.scores if s["k"] == choice.k), None)
        if stability is None and latent:
            stability = latent_class.split_half(transform, values, x, seed, choice.k)
        elif stability is None:
            stability = clustering.stability_on_sample(x, choice.k, seed)
        for row in choice.scores:  # the user's k: its stability in its row too, as the table's header says
            if row["k"] == choice.k and row["stability"] is None:
                row["stability"] = stability
    fitted = result.latent if isinstance(result, _LatentFit) else None
    # The model as it is stored (its numbers rounded) assigns the cohort: every later path (a score, a
    # pipeline, the warehouse's SQL, a Flow snapshot) reads that one, so the memberships agree with them on
    # every row, a contact tied between two personas included (a trial's tie went to another persona).
    model = PersonaModel.from_dict(
        PersonaModel(transform, result.centroids, result.persona_ids, seed, fitted).to_dict()
    )
    if latent:
        labels, confidence = latent_class.assign(latent_class.costs(values, model.latent))
    else:
        widths = [e.width for e in transform.encodings]
        labels, confidence = clustering.nearest_two(x, model.centroids, widths=widths)
    ids = np.asarray(model.persona_ids, dtype=np.int32)[labels]
    return BuildOutcome(model, ids, confidence, choice, stability, dropped)


def _users_row(score: dict[str, Any], k: int) -> dict[str, Any]:
    """A per-k row beside a k the user set: theirs is marked, the data's own pick says it is only that."""
    if score["k"] == k:
        return score | {"verdict": "set by the user"}
    if score["verdict"] == "chosen":
        return score | {"verdict": "the data's choice"}
    return score


LATENT_SAMPLE = 30_000  # rows the final EM fits on (then every contact is assigned)
LATENT_STARTS = 24  # k-means++ draws the final EM starts from, 10 iterations each ...
LATENT_SHORT_RUNS = 10
LATENT_FINALISTS = 3  # ... then the best 3 run on to convergence (seed spread: BENCHMARKS.md)
KEEP_PREVIOUS_NATS = (
    0.01  # a fresh fit must beat the previous build's personas by this log-likelihood per contact
)


@dataclass
class _LatentFit:
    """What _fit_latent hands back, shaped as clustering.FitResult where both are read."""

    centroids: np.ndarray  # (k, d) each persona's mean feature row
    persona_ids: list[int]
    labels: np.ndarray  # (n,) index into persona_ids
    confidence: np.ndarray  # (n,) posterior of the persona chosen
    warm_started: bool
    latent: latent_class.LatentClasses


def _fit_latent(
    frame: pd.DataFrame,
    x: np.ndarray,
    values: list[np.ndarray],
    transform: FeatureTransform,
    seed: int,
    choice: clustering.KChoice,
    previous: PersonaModel | None,
    previous_labels: np.ndarray | None,
    previous_persona_ids: list[int] | None,
) -> _LatentFit:
    """EM on a sample from many short starts (k-means++ draws, and the fit found while choosing k), and from
    the previous build's personas when it had the same k (kept unless a fresh fit is clearly better); then
    every contact assigned.

    x: (n, d) the k-means features (starts and the descriptive centroids); values: per trait (n,);
    previous: the previous model, to start from (None over other traits); previous_labels: (n,) persona ids;
    previous_persona_ids: the previous build's ids, which the new personas take where they match."""
    k = choice.k
    rng = np.random.default_rng(seed)
    rows = clustering.sample_rows(len(x), LATENT_SAMPLE, rng)
    sample = [v[rows] for v in values]
    starts = latent_class.starts_from(x[rows], k, LATENT_STARTS, rng)
    if choice.latent is not None:
        starts.insert(0, latent_class.costs(sample, choice.latent).argmin(axis=1))
    keep = None
    if previous is not None and previous_labels is not None and previous.k == k:
        keep = _previous_start(frame.iloc[rows], previous, previous_labels[rows])
    fitted, warm = latent_class.fit(
        transform, sample, k, starts, keep, KEEP_PREVIOUS_NATS, LATENT_SHORT_RUNS, LATENT_FINALISTS
    )
    model = fitted.model
    labels, confidence = latent_class.assign(latent_class.costs(values, model))
    joined = np.flatnonzero(np.bincount(labels, minlength=k))
    if len(joined) < k:  # a class EM kept alive on the sample that no contact joins: not a persona
        model = latent_class.keep_classes(model, joined)
        labels, confidence = latent_class.assign(latent_class.costs(values, model))
        k = len(joined)
    ids = clustering.number_personas(labels, k, previous_labels, previous_persona_ids)
    centroids = np.vstack([x[labels == c].mean(axis=0) for c in range(k)])
    return _LatentFit(centroids, ids, labels, confidence, warm, model)


def _previous_start(frame: pd.DataFrame, previous: PersonaModel, previous_ids: np.ndarray) -> np.ndarray:
    """(n,) index into previous.persona_ids of each row's previous persona; rows the previous build did not
    have take the persona its model gives them."""
    start = clustering.id_positions(previous_ids, previous.persona_ids)
    unknown = np.flatnonzero(start < 0)
    if unknown.size:
        start[unknown] = clustering.id_positions(
            previous.assign(frame.iloc[unknown])[0], previous.persona_ids
        )
    return start
