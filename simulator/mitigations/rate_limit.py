"""Per-account engagement rate limits (spec §4): likes, comments and shares beyond a per-hour allowance are ignored
by the platform's ranking signals."""

from __future__ import annotations

import numpy as np

from .. import kernels
from .base import ACTIVE, Evidence, StageContext, Verdict


class RateLimit:
    """In each step an account's first ``max_per_hour × step hours`` active engagements (in time order) count; the
    rest get weight 0. An account that hits the limit in ``flag_after`` separate steps is flagged."""

    def __init__(self, context: StageContext):
        self.s = context.settings
        self.cap = max(1, int(round(self.s.max_per_hour * context.step_minutes / 60.0)))
        self.hits = np.zeros(context.n_accounts, dtype=np.int32)
        self.counts = np.zeros(context.n_accounts, dtype=np.int32)   # scratch of the compiled pass (all zero)

    def review(self, evidence: Evidence, view, rng: np.random.Generator) -> Verdict:
        weight = np.ones(evidence.size, dtype=np.float32)
        # Only accounts over the allowance need ordering: their active events found in one compiled pass, then
        # sorted alone.
        active = kernels.over_allowance(evidence.account, evidence.types, int(ACTIVE), self.cap, self.counts)
        if active.size == 0:
            return Verdict(event_weight=weight)
        acc = evidence.account[active]
        order = np.lexsort((evidence.time[active], acc))   # stable: ties keep event order
        acc_sorted = acc[order]
        start = np.searchsorted(acc_sorted, acc_sorted, "left")
        over = (np.arange(acc_sorted.size) - start) >= self.cap
        if not over.any():
            return Verdict(event_weight=weight)
        weight[active[order[over]]] = 0.0
        hit = np.unique(acc_sorted[over])
        self.hits[hit] += 1
        flag = hit[self.hits[hit] == self.s.flag_after]
        reasons = np.array([f"over {self.s.max_per_hour} engagements/hour in {self.s.flag_after} hours"
                            for _ in flag], dtype=object)
        return Verdict(event_weight=weight, flag=flag, reason=reasons)
