"""An example mitigation stage written the way a platform team would write its own (docs/mitigations.md §5).

Engagement that arrives by a visit straight to a post (a shared link, a search, a profile) rather than from a feed
impression is a weaker signal of what a feed audience likes, and it is how a coordinated network reaches the posts
it boosts. This stage counts such plays and engagement at ``factor`` in the ranking signals and flags accounts that
engaged ``flag_after`` posts that way. Run it with::

    PYTHONPATH=experiments simulator run --set 'mitigations=[{name="example_mitigation.DirectTrafficDiscount"}]'
    PYTHONPATH=experiments simulator run --set 'mitigations=[{name="example_mitigation.DirectTrafficDiscount",
                                                              options={factor=0.0, flag_after=20}}]'
"""

from __future__ import annotations

import numpy as np

from simulator.mitigations import Verdict


class DirectTrafficDiscount:
    def __init__(self, context, factor: float = 0.2, flag_after: int = 10):
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"factor = {factor}: expected a number from 0 to 1")
        self.factor = np.float32(factor)
        self.flag_after = int(flag_after)
        self.direct = np.zeros(context.n_accounts, dtype=np.int64)   # direct active engagements so far
        self.flagged = np.zeros(context.n_accounts, dtype=bool)

    def review(self, evidence, view, rng):
        direct = ~evidence.served
        weight = np.where(direct, self.factor, np.float32(1.0))
        engaged = direct & evidence.active()
        np.add.at(self.direct, evidence.account[engaged], 1)
        new = np.unique(evidence.account[engaged])
        new = new[(self.direct[new] >= self.flag_after) & ~self.flagged[new]]
        self.flagged[new] = True
        return Verdict(event_weight=weight, flag=new, reason=f"{self.flag_after}+ engagements by direct visits")
