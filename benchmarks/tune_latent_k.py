"""Rules for k with the latent-class method, compared on the quality panel's TUNE seeds (never the report seeds).

    .venv/bin/python benchmarks/tune_latent_k.py --cases 4 [--cache /tmp/tune_latent_k.json]

Per case, for k = 2..10 once (cached), as the build measures them (latent_class.LatentKScores): the
latent-class fit's ICL per contact (BIC plus twice the posterior's entropy), its smallest persona and its
split-half stability (fits on two disjoint halves, both applied to the whole sample, compared by ARI); beside
them the k the k-means rule picks. Then each rule offline: how often it picks the true k, and within one.
Measured before the rule was written (fits of their own, 3 starts each, 20 cases): BIC alone 2/20 exact and
5/20 within one (it over-splits), ICL alone 6/20 and 12/20; BIC among k with stability >= 0.7 7/20 and 9/20.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tune_k import cached_cases

from persona_pipeline.core import clustering, latent_class
from persona_pipeline.core.features import FeatureTransform


def figures(frame, traits, seed: int = 0) -> dict[int, dict]:  # noqa: ANN001
    """Every k's ICL, smallest persona and stability as the build measures them (latent_class.LatentKScores
    on its CHOOSE_SAMPLE sample), every stability measured; beside them the k-means rule's pick."""
    transform = FeatureTransform.fit(frame, traits)
    rows = clustering.sample_rows(len(frame), latent_class.CHOOSE_SAMPLE, np.random.default_rng(seed))
    x = transform.transform(frame)
    values = [v[rows] for v in transform.trait_values(frame)]
    scores = latent_class.LatentKScores(transform, values, x[rows], seed, clustering.K_MAX)
    for k in scores.by_k:
        scores.stability(k)
    return {"by_k": scores.by_k, "kmeans_k": clustering.choose_k(x, seed).k}


def rules(stable: float) -> dict[str, Callable[[dict[int, dict]], int]]:
    """Rules from per-k figures; "lowest ICL among reproducible k" at latent_class.STABLE is the build's."""

    def sized(s: dict) -> bool:
        return s["smallest"] >= clustering.MIN_SHARE

    def steady(s: dict) -> bool:
        return sized(s) and s["stability"] >= stable

    def finest(by_k: dict[int, dict]) -> int:
        return max((k for k, s in by_k.items() if steady(s)), default=clustering.K_MIN)

    def lowest_icl(by_k: dict[int, dict], ok: Callable[[dict], bool], slack: float = 0.0) -> int:
        """The lowest ICL among k passing `ok`, or the smallest such k within `slack` per contact of it."""
        passing = {k: s for k, s in by_k.items() if ok(s)} or by_k
        best = min(s["icl"] for s in passing.values())
        return min(k for k, s in passing.items() if s["icl"] <= best + slack)

    out = {
        "lowest ICL": lambda by_k: lowest_icl(by_k, lambda s: True),
        f"finest with stability >= {stable}": finest,
        f"lowest ICL, stability >= {stable}": lambda by_k: lowest_icl(by_k, steady),
    }
    for slack in (0.02, 0.05, 0.1):
        out[f"  ... smallest k within {slack} of it"] = lambda by_k, slack=slack: lowest_icl(
            by_k, steady, slack
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tune_latent_k.json"))
    parser.add_argument(
        "--count-levels",
        type=int,
        default=latent_class.COUNT_LEVELS,
        help="numbers with at most this many values modelled by their levels (1: every number Gaussian)",
    )
    args = parser.parse_args()
    latent_class.COUNT_LEVELS = args.count_levels
    found = cached_cases(args.cases, args.cache, figures)
    cases = [(c["true_k"], {int(k): v for k, v in c["by_k"].items()}, c["kmeans_k"]) for c in found.values()]

    def report(name: str, picks: list[tuple[int, int]]) -> None:
        exact = sum(p == t for p, t in picks)
        near = sum(abs(p - t) <= 1 for p, t in picks)
        print(f"  {name:<36} {exact:>2}/{len(picks)} exact, {near:>2}/{len(picks)} within one  {picks}")

    print(f"\n{len(cases)} tune cases; per rule: true k exact, within one; (picked, true) per case")
    report("k-means rule (the k-means build's)", [(kmeans_k, t) for t, _, kmeans_k in cases])
    for stable in (0.6, 0.7, 0.8, 0.9):
        for name, rule in rules(stable).items():
            if stable != 0.6 and name == "lowest ICL":
                continue
            report(name, [(rule(by_k), t) for t, by_k, _ in cases])


if __name__ == "__main__":
    main()
