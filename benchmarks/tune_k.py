"""Choose the k rule's thresholds on the quality panel's TUNE seeds (never the report seeds).

    .venv/bin/python benchmarks/tune_k.py --cases 6 [--cache tune_k.json]

Per case (6 per family by default: 30 cases), every k's figures once, stability included (KScores.measure_all);
then every rule of a small grid offline, from the cache: the share of cases where the rule picks the true k and
where it lands within one. The thresholds in core/clustering.py are the grid's best here; BENCHMARKS.md quotes
the report split.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from quality_panel.generators import FAMILIES, draw_spec, generate
from threadpoolctl import threadpool_limits

from persona_pipeline.core import clustering
from persona_pipeline.core.features import FeatureTransform

GRID = {
    "clear_elbow": [1.5, 1.75, 2.0, 2.5],
    "relative_elbow": [0.0, 0.3, 0.5, 0.6],
    "stable": [0.7, 0.8, 0.9],
}


def cached_cases(cases: int, cache: Path, figures: Callable[[Any, Any], dict]) -> dict[str, dict]:
    """{"family:seed": {"true_k", **figures(frame, traits)}} for the first `cases` tune cases of every family,
    each computed once on one native thread and kept in `cache` (a long run can be resumed)."""
    found = json.loads(cache.read_text()) if cache.exists() else {}
    for family in FAMILIES:
        for seed in range(cases):
            key = f"{family}:{seed}"
            if key in found:
                continue
            spec = draw_spec(family, seed)
            case = generate(spec)
            with threadpool_limits(limits=1):
                found[key] = {"true_k": spec.true_k, **figures(case.frame, case.traits)}
            print(f"{key}: true k {spec.true_k}", flush=True)
            cache.write_text(json.dumps(found))
    return found


def _kmeans_figures(frame: Any, traits: Any) -> dict:  # noqa: ANN401 - a case's frame and traits
    """Every k's gain, elbow, smallest persona and stability (KScores.measure_all)."""
    x = FeatureTransform.fit(frame, traits).transform(frame)
    return {"by_k": {str(k): v for k, v in clustering.k_scores(x, 0).measure_all().by_k.items()}}


def pick(by_k: dict[int, dict], rule: clustering.KRule) -> int:
    """What pick_k chooses from cached figures (first builds: no previous k)."""
    clearest = max(s["elbow"] for s in by_k.values())
    chosen = [
        k
        for k, s in by_k.items()
        if s["elbow"] >= rule.clear_elbow
        and s["elbow"] >= rule.relative_elbow * clearest
        and s["smallest"] >= rule.min_share
        and s["stability"] >= rule.stable
    ]
    if chosen:
        return max(chosen)
    sized = [k for k, s in by_k.items() if s["smallest"] >= rule.min_share] or [clustering.K_MIN]
    return max(sized, key=lambda k: (round(by_k[k]["stability"], 2), k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--cache", type=Path, default=Path("tune_k.json"))
    args = parser.parse_args()
    cases = cached_cases(args.cases, args.cache, _kmeans_figures)
    results = []
    for values in itertools.product(*GRID.values()):
        rule = clustering.KRule(**dict(zip(GRID, values, strict=True)))
        picks = [(c["true_k"], pick({int(k): v for k, v in c["by_k"].items()}, rule)) for c in cases.values()]
        exact = float(np.mean([t == p for t, p in picks]))
        within = float(np.mean([abs(t - p) <= 1 for t, p in picks]))
        results.append((exact, within, values))
    print(f"\n{len(cases)} tuning cases; best rules (exact, within one):")
    for exact, within, values in sorted(results, reverse=True)[:10]:
        print(
            f"  {exact:.0%} {within:.0%}  " + ", ".join(f"{n}={v}" for n, v in zip(GRID, values, strict=True))
        )


if __name__ == "__main__":
    main()
