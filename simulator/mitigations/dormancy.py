"""Account-age and dormancy dampening (spec §4): engagement from accounts that are new, or that woke after a long
dormancy, counts less in the platform's ranking signals."""

from __future__ import annotations

import numpy as np

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
        self.bit = np.int64(1) << np.int64(context.index)

    def review(self, evidence: Evidence, view, rng: np.random.Generator) -> Verdict:
        s = self.s
        acc, t = evidence.account, evidence.time
        authors = view.post_author[evidence.new_posts].astype(np.int64)
        self._note_activity(np.concatenate([acc, authors]),
                            np.concatenate([t, view.post_created[evidence.new_posts]]))
        age_days = (t / 60.0 - view.account_registered_hours[acc]) / 24.0
        new = age_days < s.new_account_days
        dormant = view.account_prior_active_days[acc] <= s.dormant_max_active_days
        woken = dormant & (t - self.first_seen[acc] < s.probation_days * MINUTES_PER_DAY)
        damp = new | woken
        weight = np.where(damp, np.float32(s.weight), np.float32(1.0))
        flag = np.unique(acc[damp])
        flag = flag[(view.account_flag_stages[flag] & self.bit) == 0]
        reasons = np.array([self._reason(int(a), view) for a in flag], dtype=object)
        return Verdict(event_weight=weight, flag=flag, reason=reasons)

    def _note_activity(self, accounts: np.ndarray, times: np.ndarray) -> None:
        unseen = np.isinf(self.first_seen[accounts])
        if unseen.any():
            a, t = accounts[unseen], times[unseen]
            order = np.lexsort((t, a))
            a, t = a[order], t[order]
            head = np.ones(a.size, bool)
            head[1:] = a[1:] != a[:-1]
            self.first_seen[a[head]] = t[head]

    def _reason(self, account: int, view) -> str:
        age = view.now / MINUTES_PER_DAY - view.account_registered_hours[account] / 24.0
        if age < self.s.new_account_days:
            return f"new account: registered {age:.1f} days ago"
        return (f"woke after dormancy: {int(view.account_prior_active_days[account])} active days in the 90 before "
                f"day 0, first seen day {self.first_seen[account] / MINUTES_PER_DAY:.2f}")
