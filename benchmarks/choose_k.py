"""How well does each rule for the number of personas find the generator's hidden segments?

    python benchmarks/choose_k.py [--seeds 8] [--contacts 20000]
    python benchmarks/choose_k.py --latent --skip-million     # the latent-class method's k and ARI beside

For each seed: the k picked by silhouette, Calinski-Harabasz, Davies-Bouldin, Faraday's rule and ours (the
inertia elbow among split-half-stable k), the hidden number of segments, and the ARI of our fit at the hidden k
and on a 100,000-row fit sample versus a fit on every row (to justify FIT_SAMPLE).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from persona_pipeline.core import clustering, latent_class
from persona_pipeline.core.domain import ClusteringMethod
from persona_pipeline.core.features import FeatureTransform
from persona_pipeline.core.model import build_model
from persona_pipeline.core.synthetic import BUILTIN_CATALOG, SEGMENTS, generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--latent", action="store_true", help="also the latent-class method's k and ARI")
    parser.add_argument(
        "--skip-million", action="store_true", help="skip the 1,000,000-contact fit-sample check"
    )
    args = parser.parse_args()
    traits = BUILTIN_CATALOG.select(None)
    hidden = len(SEGMENTS)
    hits = {"silhouette": 0, "calinski_harabasz": 0, "davies_bouldin": 0, "faraday": 0, "ours": 0}
    latent_head = (
        " latent-class k | ARI latent-class at hidden k | seconds (latent k) |" if args.latent else ""
    )
    print(
        "| seed | silhouette | calinski-harabasz | davies-bouldin | faraday | ours | ARI ours at hidden k | seconds (ours) |"
        + latent_head
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if args.latent else ""))
    for seed in range(args.seeds):
        base = generate(args.contacts, 0, seed=100 + seed, end_date=dt.date(2026, 11, 1), with_orders=False)
        x = FeatureTransform.fit(base.contacts, traits).transform(base.contacts)
        rng = np.random.default_rng(seed)
        sub = rng.choice(len(x), min(len(x), 5_000), replace=False)
        scores = {"silhouette": {}, "calinski_harabasz": {}, "davies_bouldin": {}}
        for k in range(clustering.K_MIN, clustering.K_MAX + 1):
            labels = KMeans(k, n_init=3, random_state=seed).fit_predict(x)
            scores["silhouette"][k] = silhouette_score(x[sub], labels[sub])
            scores["calinski_harabasz"][k] = calinski_harabasz_score(x, labels)
            scores["davies_bouldin"][k] = -davies_bouldin_score(x, labels)
        picks = {name: max(s, key=s.get) for name, s in scores.items()}
        picks["faraday"] = clustering.faraday_rule(len(x))
        start = time.perf_counter()
        picks["ours"] = clustering.choose_k(x, seed).k
        seconds = time.perf_counter() - start
        for name, k in picks.items():
            hits[name] += k == hidden
        truth = base.segments["segment"].to_numpy()
        ari = adjusted_rand_score(truth, clustering.fit(x, hidden, seed).labels)
        latent = ""
        if args.latent:
            transform = FeatureTransform.fit(base.contacts, traits)
            start = time.perf_counter()
            latent_k = latent_class.choose_k(transform, transform.trait_values(base.contacts), x, seed).k
            latent_seconds = time.perf_counter() - start
            hits["latent-class"] = hits.get("latent-class", 0) + (latent_k == hidden)
            at_hidden = build_model(
                base.contacts, traits, seed, k=hidden, method=ClusteringMethod.LATENT_CLASS
            )
            latent = f" {latent_k} | {adjusted_rand_score(truth, at_hidden.persona_ids):.3f} | {latent_seconds:.2f} |"
        print(
            f"| {seed} | {picks['silhouette']} | {picks['calinski_harabasz']} | {picks['davies_bouldin']} | "
            f"{picks['faraday']} | {picks['ours']} | {ari:.3f} | {seconds:.2f} |{latent}",
            flush=True,
        )
    print()
    print(
        f"hidden k = {hidden}; seeds where each rule found it: "
        + ", ".join(f"{n} {h}/{args.seeds}" for n, h in hits.items())
    )
    if args.skip_million:
        return

    big = generate(1_000_000, 0, seed=7, end_date=dt.date(2026, 11, 1), with_orders=False)
    x = FeatureTransform.fit(big.contacts, traits).transform(big.contacts)
    start = time.perf_counter()
    sampled = clustering.fit(x, hidden, 0)
    sampled_seconds = time.perf_counter() - start
    start = time.perf_counter()
    full = KMeans(hidden, n_init=clustering.N_INIT, random_state=0).fit(x)
    full_seconds = time.perf_counter() - start
    print(
        f"1,000,000 contacts: fit on a {clustering.FIT_SAMPLE:,}-row sample {sampled_seconds:.1f}s vs every row "
        f"{full_seconds:.1f}s; ARI between them {adjusted_rand_score(sampled.labels, full.labels_):.3f}; "
        f"ARI vs truth {adjusted_rand_score(big.segments['segment'], sampled.labels):.3f} (sample) / "
        f"{adjusted_rand_score(big.segments['segment'], full.labels_):.3f} (every row)"
    )


if __name__ == "__main__":
    main()
