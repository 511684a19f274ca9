"""Random streams of one run.

A run has one root :class:`numpy.random.SeedSequence`. Each process of the world draws from its own named child
of it, so the paired worlds of an audit (campaign vs inert, ranker vs chronological) share every stream that the
spec says they share: a campaign that does nothing visible draws from ``campaign`` exactly as an active one does,
and the organic users' sessions come from ``activity`` whatever the ranker does. Replicates get spawned children of
the root (``replicate_seeds``), never a reused integer.
"""

from __future__ import annotations

import numpy as np

#: Named streams, in spawn order. New streams are appended, never inserted: the children already listed keep their
#: spawn keys, so adding a stream does not change what the others draw.
STREAMS = ("mesa", "population", "activity", "content", "engagement", "ranker", "campaign", "mitigation",
           "session_time")


def replicate_seeds(seed: int, replicates: int) -> list[np.random.SeedSequence]:
    """The seed sequences of replicates 0..n-1 of a run seeded ``seed`` (spawn keys (0,), (1,), ...)."""
    return np.random.SeedSequence(seed).spawn(replicates)


class RunStreams:
    """Named, independent generators spawned from one run seed sequence."""

    def __init__(self, seed_sequence: np.random.SeedSequence):
        # A fresh copy: spawn() advances a SeedSequence's counter, and paired worlds must get the same children.
        self.seed_sequence = np.random.SeedSequence(seed_sequence.entropy, spawn_key=seed_sequence.spawn_key,
                                                    pool_size=seed_sequence.pool_size)
        children = self.seed_sequence.spawn(len(STREAMS))
        self._children = dict(zip(STREAMS, children))
        self._generators = {name: np.random.default_rng(child) for name, child in self._children.items()}

    def child(self, name: str) -> np.random.SeedSequence:
        return self._children[name]

    def __getattr__(self, name: str) -> np.random.Generator:
        try:
            return self._generators[name]
        except KeyError:
            raise AttributeError(name) from None
