"""Engagement-velocity circuit breaker (spec §4): a post whose first-hour engagement is anomalous is held from
graduating to wider distribution until a delayed re-check."""

from __future__ import annotations

import numpy as np

from ..content import COMMENT, LIKE, SHARE
from .. import kernels
from .base import ACTIVE, Evidence, StageContext, Verdict

ACTIVE_TYPES = np.array([LIKE, COMMENT, SHARE], dtype=np.int64)
MINUTES_PER_HOUR = 60.0


class CircuitBreaker:
    """A post with at least ``min_engagements`` likes, comments and shares in its first hour, at more than
    ``max_engagements_per_view`` per first-hour view, is held for ``hold_hours``. At the re-check it is released if
    the engagement it earned from feed impressions (not from visits straight to the post) reaches ``release_rate``
    per feed-served view; otherwise it is kept out of out-of-network distribution and its author is flagged."""

    def __init__(self, context: StageContext):
        self.s = context.settings
        self.held = np.zeros(0, np.int64)
        self.held_until = np.zeros(0)

    def review(self, evidence: Evidence, view, rng: np.random.Generator) -> Verdict:
        verdict = Verdict()
        self._recheck(evidence, view, verdict)
        self._check_velocity(evidence, view, verdict)
        return verdict

    def _check_velocity(self, evidence: Evidence, view, verdict: Verdict) -> None:
        s = self.s
        now = evidence.now
        # Posts whose first hour had ended before this step began were judged in an earlier step.
        lo = int(np.searchsorted(view.post_created[: view.n_posts], now - MINUTES_PER_HOUR - view.step_minutes))
        young = np.arange(lo, view.n_posts)
        if young.size == 0:
            return
        # The first-hour counts, with this step's first-hour events (not counted yet) at the earlier stages'
        # weights (one compiled pass).
        eng, views = kernels.first_hour_velocity(lo, view.n_posts, view.post_first_hour_engagements,
                                                 view.post_first_hour_views, ACTIVE_TYPES, evidence.post,
                                                 evidence.time, evidence.weight, evidence.types, int(ACTIVE),
                                                 view.post_created, MINUTES_PER_HOUR)
        anomalous = (eng >= s.min_engagements) & (eng > s.max_engagements_per_view * np.maximum(views, 1.0))
        anomalous &= (view.post_held_until[young] <= 0.0) & ~view.post_oon_blocked[young]
        trip = young[anomalous]
        if trip.size:
            until = now + s.hold_hours * MINUTES_PER_HOUR
            verdict.hold_posts = trip
            verdict.hold_until = until
            self.held = np.concatenate([self.held, trip])
            self.held_until = np.concatenate([self.held_until, np.full(trip.size, until)])

    def _recheck(self, evidence: Evidence, view, verdict: Verdict) -> None:
        due = self.held_until <= evidence.now
        if not due.any():
            return
        posts = self.held[due]
        self.held, self.held_until = self.held[~due], self.held_until[~due]
        served = view.post_served_views[posts].astype(np.float64)
        eng = view.post_served_engagements[posts][:, ACTIVE_TYPES].sum(axis=1).astype(np.float64)
        rate = np.divide(eng, served, out=np.zeros(posts.size), where=served > 0)
        ok = rate >= self.s.release_rate
        verdict.release_posts = posts[ok]
        bad = posts[~ok]
        verdict.block_posts = bad
        authors = view.post_author[bad].astype(np.int64)
        verdict.flag = authors
        verdict.reason = np.array([f"post {int(p)}: anomalous first-hour engagement; {r:.3f} engagements per "
                                   f"feed view at re-check" for p, r in zip(bad, rate[~ok])], dtype=object)

