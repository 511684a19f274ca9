"""The platform's mitigation pipeline: runs the stages of a scenario in order at the end of each step, applies
their verdicts to the platform's labels, and keeps the record of what each stage flagged (scored against the
ground truth only after the run, in :mod:`simulator.detection`)."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..platform import make_view
from ..platform import read_only as _read_only
from .base import _EMPTY_IDS, Evidence, StageContext, StageContractError, Verdict, make_stage

MINUTES_PER_DAY = 1440.0


class FlagLog:
    """First flag of each account by each stage: account, stage index, minute, reason."""

    def __init__(self):
        self._parts: list[tuple[np.ndarray, int, float, np.ndarray]] = []

    def add(self, accounts: np.ndarray, stage: int, minute: float, reasons: np.ndarray) -> None:
        if accounts.size:
            self._parts.append((accounts, stage, minute, reasons))

    def arrays(self) -> dict[str, np.ndarray]:
        if not self._parts:
            return {"account": np.zeros(0, np.int64), "stage": np.zeros(0, np.int64), "minute": np.zeros(0),
                    "reason": np.zeros(0, dtype=object)}
        return {
            "account": np.concatenate([p[0] for p in self._parts]).astype(np.int64),
            "stage": np.concatenate([np.full(p[0].size, p[1]) for p in self._parts]).astype(np.int64),
            "minute": np.concatenate([np.full(p[0].size, p[2]) for p in self._parts]),
            "reason": np.concatenate([p[3] for p in self._parts]),
        }


class MitigationPipeline:
    """The stages of one world, in scenario order. ``active`` is False when the scenario lists none; the world then
    skips every mitigation-related step (and its results are those of the unmitigated model, bit for bit)."""

    def __init__(self, world, configs: tuple, rng: np.random.Generator):
        self.world = world
        self.configs = tuple(configs)
        self.rng = rng
        names = tuple(c.name for c in self.configs)
        pop = world.population
        self.stages = [make_stage(StageContext(settings=c, index=i, stage_names=names, n_accounts=pop.n,
                                               n_audience=pop.n_audience, step_minutes=world.step_minutes))
                       for i, c in enumerate(self.configs)]
        self.active = bool(self.stages)
        self.flags = FlagLog()
        self.removed_at = np.full(pop.n, np.inf)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.configs)

    def review(self, events, new_posts: np.ndarray) -> np.ndarray:
        """Run the stages on one step's events; returns each event's counting weight (product over stages)."""
        w = self.world
        weights = np.ones(events.size, dtype=np.float32)
        if not self.active:
            return weights
        weights[w.account_demoted[events.account]] = 0.0   # a demoted account's engagement no longer counts
        t0 = w.now
        end = t0 + w.step_minutes
        due = [i for i, c in enumerate(self.configs) if t0 >= c.start_day * MINUTES_PER_DAY]
        if not due:
            return weights
        view = make_view(w, end)
        fields = dict(now=end, step=int(w.steps_done), account=_read_only(events.account),
                      post=_read_only(events.post), types=_read_only(events.types), time=_read_only(events.time),
                      served=_read_only(events.served), new_posts=_read_only(new_posts))
        for i in due:
            # (No copy: a verdict's weights replace the array, never change it in place.)
            evidence = Evidence(weight=_read_only(weights), **fields)
            verdict = self.stages[i].review(evidence, view, self.rng)
            if verdict is None:
                continue
            if not isinstance(verdict, Verdict):
                raise StageContractError(f"stage {i} ({self.configs[i].name}) returned {type(verdict).__name__}, "
                                         f"not a Verdict")
            weights = self._apply(i, verdict, weights, end)
        return weights

    # ------------------------------------------------------------------------------------------------- verdicts
    def _ids(self, i: int, name: str, ids, upper: int) -> np.ndarray:
        if ids is _EMPTY_IDS:   # the field's default: nothing to check
            return ids
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= upper):
            raise StageContractError(f"stage {i} ({self.configs[i].name}): {name} holds an id outside [0, {upper})")
        return ids

    def _apply(self, i: int, v: Verdict, weights: np.ndarray, now: float) -> np.ndarray:
        w = self.world
        n_acc, n_posts = w.population.n, w.posts.n
        if v.event_weight is not None:
            ew = np.asarray(v.event_weight, dtype=np.float32)
            product, in_range = kernels.weighed(weights, np.ascontiguousarray(ew.reshape(-1))) \
                if ew.shape == weights.shape else (None, False)
            if not in_range:   # (NaN is not in range)
                raise StageContractError(f"stage {i} ({self.configs[i].name}): event_weight must hold one number "
                                         f"in [0, 1] per event ({weights.size})")
            weights = product
        flagged = self._ids(i, "flag", v.flag, n_acc)
        if flagged.size:
            reasons = np.broadcast_to(np.asarray(v.reason, dtype=object), flagged.shape)
            _, first = np.unique(flagged, return_index=True)
            first = np.sort(first)
            flagged, reasons = flagged[first], reasons[first]
            bit = np.int64(1) << np.int64(i)
            new = (w.account_flag_stages[flagged] & bit) == 0
            self.flags.add(flagged[new], i, now, np.asarray(reasons[new], dtype=object))
            w.account_flag_stages[flagged] |= bit
        demote = self._ids(i, "demote", v.demote, n_acc)
        w.account_demoted[demote] = True
        remove = self._ids(i, "remove", v.remove, n_acc)
        if remove.size:
            fresh = remove[~w.account_removed[remove]]
            self.removed_at[fresh] = now
            w.account_removed[remove] = True
        w.posts.oon_blocked[self._ids(i, "block_posts", v.block_posts, n_posts)] = True
        w.posts.paid_inferred[self._ids(i, "label_posts", v.label_posts, n_posts)] = True
        hold = self._ids(i, "hold_posts", v.hold_posts, n_posts)
        if hold.size:
            until = np.broadcast_to(np.asarray(v.hold_until, dtype=np.float64), hold.shape)
            w.posts.held_until[hold] = np.maximum(w.posts.held_until[hold], until)
        w.posts.held_until[self._ids(i, "release_posts", v.release_posts, n_posts)] = 0.0
        return weights
