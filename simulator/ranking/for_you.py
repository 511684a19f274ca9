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

import numpy as np

from .. import kernels
from .base import (EMPTY, FeedRequest, Feeds, PostScores, RankerContext, Route, empty_feeds,
                   in_network, InterestRetrieval, rank_candidates, weight_vector)

RETIRED = -1


class ForYouRanker(InterestRetrieval):
    def __init__(self, context: RankerContext):
        self.context = context
        s = context.settings
        self.weights = weight_vector(s)
        self.first_batch = float(s.test_batch)
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

    def _evaluate(self, view, active: np.ndarray) -> np.ndarray:
        """Judge posts whose batch is delivered; returns the ids that graduated now."""
        s = self.context.settings
        done = active[(self.stage[active] != RETIRED) & (self.served[active] >= self.quota[active])]
        done = done[~view.graduation_held(done)]   # a mitigation's hold: judged when it is lifted
        if done.size == 0:
            return done
        views = view.post_views[done].astype(np.float64)
        score = (view.post_engagements[done] * self.weights).sum(axis=1)
        d_views = views - self.views_at_stage[done]
        rate = np.divide(score - self.score_at_stage[done], d_views, out=np.zeros(done.size), where=d_views > 0)
        passed = rate > s.graduation_threshold
        up, out = done[passed], done[~passed]
        self.stage[out] = RETIRED
        self.stage[up] = np.minimum(self.stage[up] + 1, s.max_stage)
        self.quota[up] = self.first_batch * s.growth ** self.stage[up].astype(np.float64)
        self.served[up] = 0.0
        self.views_at_stage[up] = views[passed]
        self.score_at_stage[up] = score[passed]
        return up

    # --------------------------------------------------------------------------------------------------- rank
    def rank(self, request: FeedRequest, view, rng: np.random.Generator) -> Feeds:
        s, feed = self.context.settings, self.context.feed
        users, k = request.users, request.feed_size
        self._register_new_posts(view)
        if view.n_posts == 0:
            return empty_feeds(request.users.size, request.feed_size)
        recent = view.recent_posts()
        window_start = int(recent[0]) if recent.size else view.n_posts
        if window_start > self.aged:
            self.stage[self.aged:window_start] = RETIRED   # aged out of distribution
            self.aged = window_start
        graduated = self._evaluate(view, recent)
        live = recent[view.distributable(recent) & (self.stage[recent] != RETIRED)]
        live = live[view.promotable(live)]   # mitigations may keep a post (or an author's posts) in network only
        remaining = np.maximum(self.quota[live] - self.served[live], 0.0)
        testing = self.stage[live] == 0
        remaining[~testing & view.graduation_held(live)] = 0.0   # held: no graduated distribution for now

        # Reserved test slots: new posts to interest-matched users, never more than a batch still needs.
        sampler = self.interest_sampler(view)
        test = sampler.draw(view, users, live[testing], remaining[testing], s.test_slots, rng)
        test = kernels.cap_by_quota(test, self.quota, self.served)
        # Ranked slots: in-network posts and graduated posts drawn by interest ∝ undelivered batch.
        grown = sampler.draw(view, users, live[~testing], remaining[~testing], feed.candidates_per_feed, rng)
        inn, _ = in_network(view, users, feed.in_network_per_feed, trim=True)
        scores = PostScores(view, recent, self.weights, s.prior_views)
        posts, all_routes = rank_candidates(view, users, inn, grown, test, scores, s.follow_boost, k + s.test_slots,
                                            k)
        # A post shown in-network to a follower does not use its out-of-network batch.
        kernels.count_out_of_network(posts, all_routes, self.served, int(Route.FOLLOWED))
        return Feeds(posts, all_routes, graduated)

