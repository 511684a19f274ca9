"""Account-age and dormancy dampening (spec §4): engagement from accounts that are new, or that woke after a long
dormancy, counts less in the platform's ranking signals."""

from __future__ import annotations

import numpy as np

from .. import kernels

from .base import Evidence, StageContext, Verdict

MINUTES_PER_DAY = 1440.0


class DormancyDampening:
    """Weights every play and engagement of a *new* account (registered less than ``new_account_days`` ago) or of a
    *woken* one (at most ``dormant_max_active_days`` active days in the 90 days before day 0, within
    ``probation_days`` of its first activity seen in the run) at ``weight``; flags each such account once."""

    def __init__(self, context: StageContext):
        self.context = context
        self.s = context.settings
        self.first_seen = np.full(context.n_accounts, np.inf)   # first activity seen by the stage (minutes)
        self.damped_until: np.ndarray | None = None   # per account: its engagement is dampened before this minute
        self.dormant: np.ndarray | None = None
        self.bit = np.int64(1) << np.int64(context.index)
        self.marked = np.zeros(context.n_accounts, dtype=bool)   # scratch of the compiled passes (all False)

    def review(self, evidence: Evidence, view, rng: np.random.Generator) -> Verdict:
        s = self.s
        acc, t = evidence.account, evidence.time
        if self.damped_until is None:   # accounts are new until registration + new_account_days (minutes)
            self.damped_until = view.account_registered_hours * 60.0 + s.new_account_days * MINUTES_PER_DAY
            self.dormant = view.account_prior_active_days <= s.dormant_max_active_days
        # First activity seen (a woken account's probation runs from it), then the weights: dampened while new, or
        # woken and still on probation; and the dampened accounts not flagged yet (one compiled call).
        weight, flag = kernels.dormancy_weights(
            acc, t, view.post_author[evidence.new_posts].astype(np.int64),
            view.post_created[evidence.new_posts].astype(np.float64), self.first_seen, self.dormant,
            self.damped_until, float(s.probation_days * MINUTES_PER_DAY), np.float32(s.weight),
            view.account_flag_stages, int(self.bit), self.marked)
        reasons = np.array([self._reason(int(a), view) for a in flag], dtype=object)
        return Verdict(event_weight=weight, flag=flag, reason=reasons)

    def _reason(self, account: int, view) -> str:
        age = view.now / MINUTES_PER_DAY - view.account_registered_hours[account] / 24.0
        if age < self.s.new_account_days:
            return f"new account: registered {age:.1f} days ago"
        return (f"woke after dormancy: {int(view.account_prior_active_days[account])} active days in the 90 before "
                f"day 0, first seen day {self.first_seen[account] / MINUTES_PER_DAY:.2f}")
