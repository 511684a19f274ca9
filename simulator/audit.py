"""Paired worlds and replicates: the audit of one scenario.

Each replicate r runs, from the same seed sequence (spawn key (r,) of the run seed), up to five worlds:
``campaign`` (the scenario as given), ``inert`` (the same with ``campaign.enabled = false``), ``chronological``
(the same with the reverse-chronological control ranker), and, when the scenario lists mitigation stages,
``campaign_unmitigated`` and ``inert_unmitigated`` (the first two without them). Worlds whose resolved
configuration is identical (e.g. the chronological world of a scenario that already uses ``chronological``, or the
unmitigated worlds of a scenario without mitigations) are the same world, by determinism, and are run once.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .config import Scenario, config_hash
from .metrics import WorldOutcome, replicate_metrics, summarise
from .model import AuditWorld
from .seeding import replicate_seeds

WORLDS = ("campaign", "inert", "chronological", "campaign_unmitigated", "inert_unmitigated")


def _inert(s: Scenario) -> Scenario:
    return dataclasses.replace(s, campaign=dataclasses.replace(s.campaign, enabled=False))


def paired_scenarios(s: Scenario) -> dict[str, Scenario]:
    unmitigated = dataclasses.replace(s, mitigations=())
    return {
        "campaign": s,
        "inert": _inert(s),
        "chronological": dataclasses.replace(s, ranker=dataclasses.replace(s.ranker, name="chronological",
                                                                           options={})),
        "campaign_unmitigated": unmitigated,
        "inert_unmitigated": _inert(unmitigated),
    }


def distinct_worlds(s: Scenario) -> dict[str, str]:
    """Map each paired world to the world that actually runs it (itself, or an identical earlier one)."""
    seen: dict[str, str] = {}
    out = {}
    for name, sc in paired_scenarios(s).items():
        h = config_hash(sc)
        out[name] = seen.setdefault(h, name)
    return out


def run_world(s: Scenario, seed_sequence: np.random.SeedSequence, progress=None) -> WorldOutcome:
    return WorldOutcome.of(AuditWorld(s, seed_sequence).run(progress))


class WorldCache:
    """Outcomes of recently run worlds, by (resolved configuration hash, seed entropy, spawn key). A world is a
    deterministic function of its configuration and seed, so a sweep whose points share a world (e.g. the
    unmitigated pair of every point of a mitigation comparison, same replicate) runs it once per process. Bounded:
    the least recently used outcome is dropped first."""

    def __init__(self, size: int = 16):
        self.size = size
        self._items: OrderedDict = OrderedDict()

    def get(self, s: Scenario, seed_sequence: np.random.SeedSequence, progress=None) -> WorldOutcome:
        key = (config_hash(s), str(seed_sequence.entropy), tuple(seed_sequence.spawn_key))
        if key in self._items:
            self._items.move_to_end(key)
            if progress is not None:
                progress.update(s.n_steps)
            return self._items[key]
        outcome = run_world(s, seed_sequence, progress)
        self._items[key] = outcome
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return outcome


#: The process's world cache for sweeps (each worker process has its own); ``simulator run`` does not use it.
WORLD_CACHE = WorldCache(size=32)


@dataclass
class ReplicateResult:
    replicate: int
    spawn_key: tuple
    outcomes: dict[str, WorldOutcome]
    metrics: dict


def run_replicate(s: Scenario, replicate: int, seed_sequence: np.random.SeedSequence, progress=None,
                  cache: WorldCache | None = None) -> ReplicateResult:
    """The paired worlds of one replicate and their metrics. With a ``cache`` (sweeps pass the process's
    :data:`WORLD_CACHE`), a world already run with the same configuration and seed is reused."""
    scenarios = paired_scenarios(s)
    runs = distinct_worlds(s)
    outcomes: dict[str, WorldOutcome] = {}
    for name in WORLDS:
        source = runs[name]
        if source not in outcomes:
            outcomes[source] = (cache.get(scenarios[source], seed_sequence, progress) if cache is not None
                                else run_world(scenarios[source], seed_sequence, progress))
        outcomes[name] = outcomes[source]
    metrics = replicate_metrics(*(outcomes[w] for w in WORLDS))
    return ReplicateResult(replicate, tuple(seed_sequence.spawn_key), outcomes, metrics)


def steps_per_replicate(s: Scenario) -> int:
    return s.n_steps * len(set(distinct_worlds(s).values()))


@dataclass
class AuditResult:
    scenario: Scenario
    seed: int
    replicates: list[ReplicateResult]

    @property
    def metrics(self) -> dict:
        return summarise([r.metrics for r in self.replicates])


def run_audit(s: Scenario, seed: int, replicates: int = 1, progress=None) -> AuditResult:
    seeds = replicate_seeds(seed, replicates)
    return AuditResult(s, seed, [run_replicate(s, r, seeds[r], progress) for r in range(replicates)])
