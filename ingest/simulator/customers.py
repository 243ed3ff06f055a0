"""The customer population, shuffled once per simulation.

Each span of the population (everyone, a store's catchment, a partner's
customers) is kept as a seeded shuffle of its ids, so picking k distinct,
random-looking customers is one slice at a random offset: a sample of 50 ids
costs as much as a single one.
"""

from __future__ import annotations

import random
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
        self._order: list[int] = []
        self._pools: dict[tuple[int, int], tuple[str, ...]] = {}

    def pool(self, span: tuple[int, int]) -> tuple[str, ...]:
        pool = self._pools.get(span)
        if pool is None:
            if not self._order:
                self._order = list(range(CUSTOMER_POPULATION))
                stream_rng(self._seed, "customers").shuffle(self._order)
            low, high = span
            table = customer_id_table()
            pool = self._pools[span] = tuple([table[n] for n in self._order if low <= n < high])
        return pool

    def pick(self, rng: random.Random, span: tuple[int, int], count: int) -> list[str]:
        """Exact distinct ids for small accesses, a sample of MAX_CUSTOMER_IDS for big ones."""
        pool = self.pool(span)
        wanted = min(count, MAX_CUSTOMER_IDS, len(pool))
        if wanted <= 0:
            return []
        offset = int(rng.random() * (len(pool) - wanted + 1))
        return list(pool[offset:offset + wanted])
