"""The customer population, shuffled once per simulation.

The population is kept as one seeded shuffle of all ids. A span [low, high)
of that shuffle is a random-looking set of customers: a store's catchment, a
partner's clientele. Picking k distinct customers is then one slice at a
random offset, so a sample of 50 ids costs as much as a single one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import lru_cache

from .fields import CUSTOMER_POPULATION, MAX_CUSTOMER_IDS
from .randomness import stream_rng


def customer_id(number: int) -> str:
    """Population index 0..199999 -> c-000001..c-200000."""
    return f"c-{number + 1:06d}"


@lru_cache(maxsize=1)
def customer_id_table() -> tuple[str, ...]:
    """Every customer id, formatted once (about 13 MB, shared by all simulations)."""
    return tuple(customer_id(n) for n in range(CUSTOMER_POPULATION))


class CustomerPools:
    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._everyone: tuple[str, ...] = ()
        self._pools: dict[tuple[int, int], tuple[str, ...]] = {}

    def pool(self, span: tuple[int, int]) -> tuple[str, ...]:
        """The customers at positions [low, high) of the shuffled population."""
        pool = self._pools.get(span)
        if pool is None:
            if not self._everyone:
                ids = list(customer_id_table())
                stream_rng(self._seed, "customers").shuffle(ids)
                self._everyone = tuple(ids)
            pool = self._pools[span] = self._everyone[span[0]:span[1]]
        return pool

    def pick(self, rng: random.Random, span: tuple[int, int], count: int) -> list[str]:
        return take(self.pool(span), rng.random, count)


def take(pool: tuple[str, ...], draw: Callable[[], float], count: int) -> list[str]:
    """Exact distinct ids for small accesses, a sample of MAX_CUSTOMER_IDS for big ones."""
    size = len(pool)
    wanted = count if count < MAX_CUSTOMER_IDS else MAX_CUSTOMER_IDS
    if wanted > size:
        wanted = size
    if wanted <= 0:
        return []
    offset = int(draw() * (size - wanted + 1))
    return list(pool[offset:offset + wanted])
