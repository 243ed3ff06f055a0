"""Independent, reproducible random streams.

Every actor-day and every episode draws from its own stream, keyed by the
seed and a name. So the routine of one actor does not shift when a scenario
is added or another actor changes, and labels can regenerate an episode's
events (and their ids) without replaying the whole month.
"""

from __future__ import annotations

import hashlib
import random


def stream_rng(seed: int, *key: object) -> random.Random:
    # repr of ints and strings is stable across runs and platforms, unlike hash().
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


def lognormal_multiplier(rng: random.Random, sigma: float) -> float:
    """A positive factor with mean 1: individual and day-to-day variation."""
    return rng.lognormvariate(-0.5 * sigma * sigma, sigma)


def split_total(rng: random.Random, total: int, parts: int, minimum: int) -> list[int]:
    """Split total into `parts` positive shares of at least `minimum` each."""
    spare = total - parts * minimum
    if spare < 0:
        raise ValueError(f"cannot split {total} into {parts} parts of at least {minimum}")
    weights = [rng.random() + 0.2 for _ in range(parts)]
    scale = spare / sum(weights)
    shares = [minimum + int(w * scale) for w in weights]
    shares[-1] += total - sum(shares)  # rounding remainder
    return shares
