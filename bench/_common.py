"""What the benchmark scripts share: interleaved rounds of samples.

The scripts run as ``python bench/bench_x.py``, so this directory is on ``sys.path``.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol


class Sampled(Protocol):
    """One thing to time: a callable, how many calls make a sample, and the samples so far."""

    @property
    def fn(self) -> Callable[[], object]:
        """What one call times."""

    @property
    def batch(self) -> int:
        """How many calls make one sample."""

    @property
    def samples(self) -> list[float]:
        """Seconds per call, one per round (appended to)."""


def run_rounds(
    variants: Sequence[Sampled],
    profile_rounds: int,
    budget: float,
    min_rounds: int,
    rng: random.Random,
) -> None:
    """Time *variants* in interleaved rounds: each round takes one sample of each, in random order.

    Stops after *profile_rounds* rounds, or earlier once *budget* seconds have passed and at least
    *min_rounds* are done.  The garbage collector runs between samples, never inside one.
    """
    order = list(variants)
    started = time.perf_counter()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for done in range(profile_rounds):
            if done >= min_rounds and time.perf_counter() - started > budget:
                break
            rng.shuffle(order)
            for variant in order:
                gc.collect()
                fn, n = variant.fn, variant.batch
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    fn()
                t1 = time.perf_counter_ns()
                variant.samples.append((t1 - t0) / n / 1e9)
    finally:
        if was_enabled:
            gc.enable()
