"""The quality panel: does the build find customer segments it was not tuned on, and the right number of them?

    python benchmarks/quality.py                          # report split, 4 cases per family + public tables
    python benchmarks/quality.py --split tune --cases 4   # the seeds to tune on; never quote these
    python benchmarks/quality.py --quick                  # small cases, 1 per family: a smoke run
    python benchmarks/quality.py --only nested,wine --method all --json out.json

Cases: generated bases from five families unlike the project's own generator (quality_panel/generators.py;
each case's true k, overlap and size drawn from its seed), and public labelled tables shipped inside installed
packages (quality_panel/datasets.py). For each: the k the build chooses (build_model with k=None) and the ARI
of its personas against the truth; the ARI at the true k (build_model(k=true_k), seed 0) and its spread
(max - min) over build seeds 0..S-1; plain scikit-learn KMeans (10 inits) on the same feature matrix at the
true k; and a supervised ceiling, the ARI of 5-fold cross-validated HistGradientBoosting predictions of the
truth from that matrix (what the features allow at all). --method compares other methods at the true k.

Tuning and reporting use disjoint seeds: tune on `--split tune`, quote `--split report` (the default).
Only build_model's public interface is used, so the panel measures whatever the build does today.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from quality_panel.datasets import DATASETS
from quality_panel.generators import FAMILIES, N_RANGE, draw_spec, generate
from quality_panel.methods import METHODS, NotApplicable, available, features
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from persona_pipeline.core.domain import ClusteringMethod
from persona_pipeline.core.model import build_model

SPLITS = {"tune": 0, "report": 100_000}  # first case seed of each split: case i of a family has seed base + i
QUICK_N_RANGE = (3_000, 6_000)
CEILING_FOLDS = 5
ROOT = Path(__file__).resolve().parent.parent


def ari(truth: np.ndarray, labels: np.ndarray) -> float:
    return float(adjusted_rand_score(truth, labels))


def ceiling(x: np.ndarray, truth: np.ndarray) -> float:
    """ARI of out-of-fold HistGradientBoosting predictions: how much of the truth the (n, d) features carry."""
    smallest = int(np.bincount(truth).min())
    folds = StratifiedKFold(min(CEILING_FOLDS, max(smallest, 2)), shuffle=True, random_state=0)
    # early stopping on a held-out 10%: as good a ceiling, and the run stops once it stops learning
    model = HistGradientBoostingClassifier(early_stopping=True, random_state=0)
    return ari(truth, cross_val_predict(model, x, truth, cv=folds))


def evaluate(
    frame,
    traits,
    truth: np.ndarray,
    build_seeds: int,
    methods: list[str],
    progress: bool,
    build_method: ClusteringMethod = ClusteringMethod.KMEANS,
) -> dict[str, Any]:
    """Every figure of one case; times per part, so a slow part is visible."""
    true_k = len(np.unique(truth))
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    chosen = build_model(frame, traits, seed=0, method=build_method)
    seconds["build_choose_k"] = time.perf_counter() - start
    at_true = []
    for seed in range(build_seeds):
        start = time.perf_counter()
        at_true.append(
            ari(truth, build_model(frame, traits, seed=seed, k=true_k, method=build_method).persona_ids)
        )
        seconds.setdefault("build_true_k", time.perf_counter() - start)  # one fit's time, as for the methods
    start = time.perf_counter()
    x = features(frame, traits)
    kmeans = ari(truth, KMeans(n_clusters=true_k, n_init=10, random_state=0).fit_predict(x))
    seconds["kmeans10"] = time.perf_counter() - start
    start = time.perf_counter()
    top = ceiling(x, truth)
    seconds["ceiling"] = time.perf_counter() - start
    result: dict[str, Any] = {
        "n": len(frame),
        "traits": len(traits),
        "features": int(x.shape[1]),
        "true_k": true_k,
        "chosen_k": int(chosen.k_choice.k),
        "k_reason": chosen.k_choice.reason,
        "k_scores": chosen.k_choice.scores,
        "ari_chosen": ari(truth, chosen.persona_ids),
        "ari_true_k": at_true[0],
        "ari_true_k_seeds": at_true,
        "seed_spread": max(at_true) - min(at_true),
        "kmeans10": kmeans,
        "ceiling": top,
        "methods": {},
        "seconds": seconds,
    }
    for name in methods:
        if name == "build":  # already measured at seed 0
            result["methods"][name] = {"ari": at_true[0], "seconds": seconds["build_true_k"]}
            continue
        if name == "kmeans10":
            result["methods"][name] = {"ari": kmeans, "seconds": seconds["kmeans10"]}
            continue
        start = time.perf_counter()
        try:
            labels = METHODS[name](frame, traits, 0, true_k)
            result["methods"][name] = {"ari": ari(truth, labels), "seconds": time.perf_counter() - start}
        except NotApplicable as why:
            result["methods"][name] = {"ari": None, "note": str(why)}
        if progress:
            print(f"    {name}: {result['methods'][name]}", file=sys.stderr, flush=True)
    return result


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


HEADER = (
    "| case | kind | n | true k | chosen k | ARI chosen k | ARI true k | KMeans10 true k | ceiling | "
    "seed spread | seconds |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(case: dict[str, Any]) -> str:
    if "error" in case:
        return f"| {case['case']} | {case['kind']} | | {case.get('true_k', '')} | error: {case['error']} | | | | | | |"
    return (
        f"| {case['case']} | {case['kind']} | {case['n']:,} | {case['true_k']} | {case['chosen_k']} | "
        f"{fmt(case['ari_chosen'])} | {fmt(case['ari_true_k'])} | {fmt(case['kmeans10'])} | "
        f"{fmt(case['ceiling'])} | {fmt(case['seed_spread'], 3)} | {case['wall_seconds']:.0f} |"
    )


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(cases: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    """The panel's headline figures: k found, ARI against plain KMeans, seed spread; by family too."""
    ok = [c for c in cases if "error" not in c]
    generated = [c for c in ok if c["kind"] != "public"]
    public = [c for c in ok if c["kind"] == "public"]
    summary: dict[str, Any] = {"errors": [c["case"] for c in cases if "error" in c]}
    if generated:
        spread = max(generated, key=lambda c: c["seed_spread"])
        summary["generated"] = {
            "cases": len(generated),
            "chosen_k_exact": sum(c["chosen_k"] == c["true_k"] for c in generated),
            "chosen_k_within_1": sum(abs(c["chosen_k"] - c["true_k"]) <= 1 for c in generated),
            "chosen_k_2": sum(c["chosen_k"] == 2 for c in generated),
            "median_ari_chosen": median([c["ari_chosen"] for c in generated]),
            "median_ari_true_k": median([c["ari_true_k"] for c in generated]),
            "median_kmeans10_true_k": median([c["kmeans10"] for c in generated]),
            "median_ceiling": median([c["ceiling"] for c in generated]),
            "build_below_kmeans10": sum(c["ari_true_k"] < c["kmeans10"] - 0.05 for c in generated),
            "max_seed_spread": spread["seed_spread"],
            "max_seed_spread_case": spread["case"],
        }
        summary["families"] = {
            family: {
                "cases": len(group),
                "chosen_k_exact": sum(c["chosen_k"] == c["true_k"] for c in group),
                "chosen_k_within_1": sum(abs(c["chosen_k"] - c["true_k"]) <= 1 for c in group),
                "median_ari_chosen": median([c["ari_chosen"] for c in group]),
                "median_ari_true_k": median([c["ari_true_k"] for c in group]),
                "median_kmeans10_true_k": median([c["kmeans10"] for c in group]),
                "median_ceiling": median([c["ceiling"] for c in group]),
            }
            for family in dict.fromkeys(c["kind"] for c in generated)
            for group in [[c for c in generated if c["kind"] == family]]
        }
    if public:
        summary["public"] = {
            c["case"]: {
                "true_k": c["true_k"],
                "chosen_k": c["chosen_k"],
                "above_2": c["chosen_k"] > 2,
                "ari_chosen": c["ari_chosen"],
                "ari_true_k": c["ari_true_k"],
                "kmeans10": c["kmeans10"],
            }
            for c in public
        }
    if methods:
        summary["methods"] = {
            name: {
                "median_ari_generated": median([c["methods"][name]["ari"] for c in generated]),
                "median_ari_public": median([c["methods"][name]["ari"] for c in public]),
                "median_seconds": median([c["methods"][name].get("seconds") for c in ok]),
                "not_applicable": sum(c["methods"][name]["ari"] is None for c in ok),
            }
            for name in methods
        }
    return summary


def print_summary(summary: dict[str, Any], methods: list[str], cases: list[dict[str, Any]]) -> None:
    if "generated" in summary:
        g = summary["generated"]
        print(f"\n### Summary: {g['cases']} generated cases\n")
        print(
            f"- chosen k == true k: {g['chosen_k_exact']}/{g['cases']} ({g['chosen_k_exact'] / g['cases']:.0%})"
        )
        print(
            f"- chosen k within ±1: {g['chosen_k_within_1']}/{g['cases']} ({g['chosen_k_within_1'] / g['cases']:.0%})"
        )
        print(f"- chosen k == 2: {g['chosen_k_2']}/{g['cases']}")
        print(
            f"- median ARI at the chosen k: {fmt(g['median_ari_chosen'])}; at the true k: "
            f"{fmt(g['median_ari_true_k'])}; plain KMeans (10 inits) at the true k: "
            f"{fmt(g['median_kmeans10_true_k'])}; supervised ceiling: {fmt(g['median_ceiling'])}"
        )
        print(
            f"- build more than 0.05 ARI below plain KMeans at the true k: {g['build_below_kmeans10']} case(s)"
        )
        print(
            f"- largest seed spread of the ARI at the true k: {g['max_seed_spread']:.3f} ({g['max_seed_spread_case']})"
        )
        print("\n| family | cases | k exact | k ±1 | ARI chosen | ARI true k | KMeans10 | ceiling |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for family, f in summary["families"].items():
            print(
                f"| {family} | {f['cases']} | {f['chosen_k_exact']} | {f['chosen_k_within_1']} | "
                f"{fmt(f['median_ari_chosen'])} | {fmt(f['median_ari_true_k'])} | "
                f"{fmt(f['median_kmeans10_true_k'])} | {fmt(f['median_ceiling'])} |"
            )
    if "public" in summary:
        print("\n### Public tables\n")
        print("| table | true k | chosen k | chosen k > 2 | ARI chosen k | ARI true k | KMeans10 true k |")
        print("|---|---:|---:|---|---:|---:|---:|")
        for name, p in summary["public"].items():
            print(
                f"| {name} | {p['true_k']} | {p['chosen_k']} | {'yes' if p['above_2'] else 'no'} | "
                f"{fmt(p['ari_chosen'])} | {fmt(p['ari_true_k'])} | {fmt(p['kmeans10'])} |"
            )
    if methods:
        print("\n### Methods at the true k (seed 0)\n")
        print("| case | " + " | ".join(methods) + " |")
        print("|---|" + "---:|" * len(methods))
        for case in cases:
            if "error" not in case:
                cells = [fmt(case["methods"][m]["ari"]) for m in methods]
                print(f"| {case['case']} | " + " | ".join(cells) + " |")
        m = summary["methods"]
        print(
            "| **median, generated** | "
            + " | ".join(fmt(m[x]["median_ari_generated"]) for x in methods)
            + " |"
        )
        print("| **median, public** | " + " | ".join(fmt(m[x]["median_ari_public"]) for x in methods) + " |")
        print("| median seconds | " + " | ".join(fmt(m[x]["median_seconds"], 1) for x in methods) + " |")
        if any(m[x]["not_applicable"] for x in methods):
            print("\nn/a: the method does not apply (k-prototypes needs a categorical or boolean trait).")
    if summary["errors"]:
        print(f"\nErrors: {', '.join(summary['errors'])}")


def commit() -> str:
    """The last commit of persona_pipeline/ (the code measured), '+changes' if it has uncommitted edits."""
    try:
        last = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "persona_pipeline"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "persona_pipeline"], cwd=ROOT, capture_output=True, text=True
        )
        return last.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def run_case(
    kind: str,
    name: str,
    seed: int | None,
    n_range: tuple[int, int],
    build_seeds: int,
    methods: list[str],
    build_method: ClusteringMethod = ClusteringMethod.KMEANS,
) -> dict[str, Any]:
    """One generated case (family `name`, case seed) or public table (`name`), described and evaluated."""
    if kind == "generated":
        spec = draw_spec(name, seed, n_range)
        data = generate(spec)
        case: dict[str, Any] = {
            "case": f"{name} s{seed} k{spec.true_k} {spec.overlap_label} overlap {spec.overlap:.2f}",
            "kind": name,
            "seed": seed,
            "overlap": spec.overlap,
            "smallest_share": float(data.shares.min()),
            "max_missing": max(data.missing.values()),
            "noise_traits": list(data.noise),
        }
        frame, traits, truth = data.frame, data.traits, data.truth
    else:
        table = DATASETS[name]()
        case = {"case": name, "kind": "public", "source": table.source}
        frame, traits, truth = table.frame, table.traits, table.truth
    print(f"  {case['case']}: {len(frame):,} rows ...", file=sys.stderr, flush=True)
    try:
        case |= evaluate(frame, traits, truth, build_seeds, methods, True, build_method)
    except Exception as error:  # one failing case must not lose a long run; it is reported
        case |= {"error": f"{type(error).__name__}: {error}", "true_k": len(np.unique(truth))}
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="report")
    parser.add_argument("--cases", type=int, default=4, help="generated cases per family (default 4)")
    parser.add_argument(
        "--seeds", type=int, default=5, help="build seeds 0..S-1 for the seed spread (default 5)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="3,000-6,000 contacts, 1 case per family, 2 seeds"
    )
    parser.add_argument("--only", default="", help="comma-separated families and/or public tables")
    parser.add_argument("--no-public", action="store_true", help="generated cases only")
    parser.add_argument(
        "--method",
        default="",
        help=f"comma-separated, or 'all': compare at the true k ({', '.join(METHODS)})",
    )
    parser.add_argument(
        "--build-method",
        choices=[str(m) for m in ClusteringMethod],
        default=str(ClusteringMethod.KMEANS),
        help="the build's clustering method (persona-set create --method)",
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="native threads (OpenMP, BLAS), default 1: with the other core busy, two threads that wait on "
        "each other made choosing k 13x slower (24.8 s vs 1.9 s) and the ceiling 20x (568 s vs 29 s) on a "
        "30,000-contact case",
    )
    parser.add_argument("--merge", type=Path, nargs="+", help="print one report from these --json files")
    args = parser.parse_args()
    if args.merge:
        merge(args.merge)
        return
    if args.quick:
        args.cases, args.seeds = 1, min(args.seeds, 2)
    methods = list(METHODS) if args.method == "all" else [m for m in args.method.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    for name in [m for m in methods if not available(m)]:
        print(f"note: skipping {name}: its optional package is not installed (pip install kmodes)")
        methods.remove(name)
    only = {name for name in args.only.split(",") if name}
    unknown = only - set(FAMILIES) - set(DATASETS)
    if unknown:
        parser.error(
            f"unknown family or table {', '.join(sorted(unknown))}; choose from {', '.join([*FAMILIES, *DATASETS])}"
        )
    families = [f for f in FAMILIES if not only or f in only]
    tables = [] if args.no_public else [d for d in DATASETS if not only or d in only]
    n_range = QUICK_N_RANGE if args.quick else N_RANGE
    base = SPLITS[args.split]

    title = (
        f"## Quality panel: split {args.split}, code {commit()}, build method {args.build_method}, "
        f"{args.cases} case(s) per family, "
        f"build seeds 0..{args.seeds - 1}, {args.threads} thread(s)\n"
    )
    print(title)
    print(HEADER)
    cases: list[dict[str, Any]] = []
    panel_start = time.perf_counter()
    jobs = [("generated", family, base + i) for family in families for i in range(args.cases)]
    jobs += [("public", table, None) for table in tables]
    for kind, name, seed in jobs:
        start = time.perf_counter()
        with threadpool_limits(args.threads):
            case = run_case(
                kind, name, seed, n_range, args.seeds, methods, ClusteringMethod(args.build_method)
            )
        case["wall_seconds"] = time.perf_counter() - start
        cases.append(case)
        print(row(case), flush=True)
    total = time.perf_counter() - panel_start
    summary = summarize(cases, methods)
    print_summary(summary, methods, cases)
    print(f"\nPanel time: {total / 60:.1f} min ({len(cases)} cases)")
    if args.json:
        payload = {
            "title": title,
            "command": sys.argv[1:],
            "split": args.split,
            "commit": commit(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "methods": methods,
            "seconds": total,
            "cases": cases,
            "summary": summary,
        }
        args.json.write_text(json.dumps(payload, indent=1, default=float))


def merge(paths: list[Path]) -> None:
    """One report from runs saved with --json (a panel split into runs that each fit a time limit)."""
    runs = [json.loads(path.read_text()) for path in paths]
    for key in ("split", "commit"):
        if len({run[key] for run in runs}) > 1:
            raise SystemExit(
                f"these runs differ in {key} ({', '.join(sorted({r[key] for r in runs}))}): not merged"
            )
    methods = [m for m in runs[0]["methods"] if all(m in run["methods"] for run in runs)]
    cases = [case for run in runs for case in run["cases"]]
    total = sum(run["seconds"] for run in runs)
    print(
        f"## Quality panel: split {runs[0]['split']}, code {runs[0]['commit']}, merged from {len(runs)} runs\n"
    )
    for run in runs:
        print(f"- `python benchmarks/quality.py {' '.join(run['command'])}` ({run['seconds'] / 60:.1f} min)")
    print()
    print(HEADER)
    for case in cases:
        print(row(case))
    print_summary(summarize(cases, methods), methods, cases)
    print(f"\nPanel time: {total / 60:.1f} min ({len(cases)} cases, the runs' times added)")


if __name__ == "__main__":
    main()
