"""Independent pieces of work side by side on the machine's two cores, answers as one thread gives them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from threadpoolctl import ThreadpoolController

# scikit-learn's k-means and tree loops, numpy's and scipy's release the GIL: two fits run side by side
THREADS = 2


@functools.cache
def _controller() -> ThreadpoolController:
    """The native thread pools loaded (scanning them takes 3 ms; the fits that come here have loaded theirs)."""
    return ThreadpoolController()


def in_parallel(work: Callable[[Any], Any], items: list) -> list:
    """work(item) for every item on THREADS threads, results in the items' order: each item carries its own
    seed, so the answer is the one a single thread would give. Each thread runs OpenMP on one thread, as
    the build's own does (model.one_thread): OpenMP's thread count is per thread, and scikit-learn's k-means
    sums its chunks in another order on two (another inertia, on one panel case other personas)."""
    if len(items) < 2 or THREADS < 2:
        return [work(item) for item in items]

    def on_one_openmp_thread(item: Any) -> Any:
        with _controller().limit(limits=1, user_api="openmp"):
            return work(item)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(on_one_openmp_thread, items))
