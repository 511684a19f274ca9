"""TikTok-style For-You feed (spec §3, §6): interest-graph retrieval plus staged distribution.

Every new post is tried on a first test batch of ``b0 = test_batch`` served
impressions, delivered through ``test_slots`` reserved feed slots to users whose interests match its topic. When the
batch is delivered, the post's weighted engagement rate over the stage (score weights × engagements observed since
the stage began ÷ views since then, bot plays included: the platform cannot tell them apart) is compared with
``graduation_threshold``: above it the post graduates to a batch ``growth`` times larger, otherwise it leaves
out-of-network distribution. Graduated posts compete for the remaining feed slots with in-network posts, drawn by
interest with probability ∝ their undelivered batch and ordered by score = Σ_e w_e · P̂(e | user, post).
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from .base import (FeedRequest, Feeds, PostScores, RankerContext, Route, empty_feeds,
                   in_network, InterestRetrieval, rank_candidates, weight_vector)

RETIRED = -1


class ForYouRanker(InterestRetrieval):
    def __init__(self, context: RankerContext):
        self.context = context
        s = context.settings
        self.weights = weight_vector(s)
        self.first_batch = float(s.test_batch)
        # growth^stage of each stage, by the C library's pow (NumPy's vectorised power differs between CPUs).
        self.stage_growth = np.array([math.pow(s.growth, stage) for stage in range(s.max_stage + 1)])
        self.known = 0
        self.aged = 0   # posts below this id have left the distribution window
        cap = 1024
        self.stage = np.zeros(cap, dtype=np.int8)          # RETIRED, 0 = test batch, 1.. = graduated stages
        self.quota = np.zeros(cap, dtype=np.float64)       # impressions of the current batch
        self.served = np.zeros(cap, dtype=np.float64)      # impressions served in the current batch
        self.views_at_stage = np.zeros(cap, dtype=np.float64)
        self.score_at_stage = np.zeros(cap, dtype=np.float64)

    # -------------------------------------------------------------------------------------------------- state
    def _register_new_posts(self, view) -> None:
        n = view.n_posts
        if n > self.stage.size:
            cap = max(n, 2 * self.stage.size)
            for name in ("stage", "quota", "served", "views_at_stage", "score_at_stage"):
                old = getattr(self, name)
                new = np.zeros(cap, dtype=old.dtype)
                new[: old.size] = old
                setattr(self, name, new)
        new = slice(self.known, n)
        self.stage[new] = 0
        self.quota[new] = self.first_batch
        self.served[new] = 0.0
        self.views_at_stage[new] = 0.0   # a first batch counts everything since creation
        self.score_at_stage[new] = 0.0
        self.known = n

    def _evaluate(self, view, lo: int, hi: int) -> np.ndarray:
        """Judge the posts among ids ``lo .. hi - 1`` whose batch is delivered (a mitigation's hold: judged when it
        is lifted); returns the ids that graduated now (:func:`kernels.judge_batches`)."""
        s = self.context.settings
        up = kernels.judge_batches(lo, hi, self.stage, self.quota, self.served, RETIRED, s.max_stage,
                                   view.post_held_until, float(view.now), view.post_views, view.post_engagements,
                                   self.weights, self.views_at_stage, self.score_at_stage,
                                   float(s.graduation_threshold))
        if up.size:
            self.quota[up] = self.first_batch * self.stage_growth[self.stage[up]]
        return up

    # --------------------------------------------------------------------------------------------------- rank
    def rank(self, request: FeedRequest, view, rng: np.random.Generator) -> Feeds:
        s, feed = self.context.settings, self.context.feed
        users, k = request.users, request.feed_size
        self._register_new_posts(view)
        if view.n_posts == 0:
            return empty_feeds(request.users.size, request.feed_size)
        lo, hi = view.recent_range()
        window_start = lo if hi > lo else view.n_posts
        if window_start > self.aged:
            self.stage[self.aged:window_start] = RETIRED   # aged out of distribution
            self.aged = window_start
        graduated = self._evaluate(view, lo, hi)
        # The distributable recent posts; of them, those in distribution that may go out of network, by stage,
        # with the impressions their batch still needs (none while a mitigation holds a graduation).
        distributable, testing, testing_left, grown, grown_left = kernels.for_you_pools(
            lo, hi, self.stage, self.quota, self.served, RETIRED, view.post_removed, view.post_author,
            view.account_removed, view.post_created, float(view.now), view.post_oon_blocked, view.account_demoted,
            view.post_held_until)

        # Reserved test slots: new posts to interest-matched users, never more than a batch still needs.
        sampler = self.interest_sampler(view)
        test = sampler.draw(view, users, testing, testing_left, s.test_slots, rng)
        test = kernels.cap_by_quota(test, self.quota, self.served)
        # Ranked slots: in-network posts and graduated posts drawn by interest ∝ undelivered batch.
        grown = sampler.draw(view, users, grown, grown_left, feed.candidates_per_feed, rng)
        inn, _ = in_network(view, users, feed.in_network_per_feed, trim=True, distributable=distributable)
        scores = PostScores(view, np.arange(lo, hi), self.weights, s.prior_views)
        posts, all_routes = rank_candidates(view, users, inn, grown, test, scores, s.follow_boost, k + s.test_slots,
                                            k)
        # A post shown in-network to a follower does not use its out-of-network batch.
        kernels.count_out_of_network(posts, all_routes, self.served, int(Route.FOLLOWED))
        return Feeds(posts, all_routes, graduated)

