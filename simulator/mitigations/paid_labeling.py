"""Paid-content detection and labelling (spec §4), from observables only: a political post by a high-reach
creator whose earlier posts were apolitical looks like paid promotion. Labelled political paid content — inferred,
or disclosed by the creator — is not promoted out of network."""

from __future__ import annotations

import numpy as np

from .. import kernels
from .base import Evidence, StageContext, Verdict

MINUTES_PER_DAY = 1440.0


class PaidLabeling:
    """Judges each new post when it is created. Authors followed by at least ``min_follower_share`` of all accounts,
    with at least ``min_history_posts`` earlier posts in the run of which less than ``max_political_share`` were
    political, have their political posts labelled as paid and kept in network; the author is flagged. Posts with
    a creator's paid-partnership label that promote a candidate are kept in network too (no flag: disclosed)."""

    def __init__(self, context: StageContext):
        self.s = context.settings
        n = context.n_accounts
        self.history_posts = np.zeros(n, np.int32)
        self.history_political = np.zeros(n, np.int32)
        self._followers = None
        self._followers_day = -1

    def review(self, evidence: Evidence, view, rng: np.random.Generator) -> Verdict | None:
        new = evidence.new_posts
        if new.size == 0:
            return None
        s = self.s
        day = int(evidence.now // MINUTES_PER_DAY)
        if day != self._followers_day:   # follower counts, refreshed daily (the graph changes daily)
            self._followers = kernels.follower_counts(view.follows.indices, view.n_accounts)
            self._followers_day = day
        author = view.post_author[new].astype(np.int64)
        political = view.post_candidate[new] >= 0
        history = self.history_posts[author]
        share = np.divide(self.history_political[author], history, out=np.zeros(new.size), where=history > 0)
        suspicious = (political & (history >= s.min_history_posts)
                      & (self._followers[author] >= s.min_follower_share * view.n_accounts)
                      & (share < s.max_political_share))
        disclosed = political & view.post_paid_label[new]
        np.add.at(self.history_posts, author, 1)
        np.add.at(self.history_political, author[political], 1)
        labelled = new[suspicious]
        reasons = np.array([f"post {int(p)}: political post by a creator followed by {int(self._followers[a])} "
                            f"accounts, {100 * sh:.0f}% of {int(h)} earlier posts political"
                            for p, a, sh, h in zip(labelled, author[suspicious], share[suspicious],
                                                   history[suspicious])], dtype=object)
        return Verdict(label_posts=labelled, block_posts=new[suspicious | disclosed], flag=author[suspicious],
                       reason=reasons)
