"""Engagement-weighted feed (spec §3): in-network and popular out-of-network posts ordered by a weighted sum of
predicted engagement with recency decay."""

from __future__ import annotations

import numpy as np

from .base import (EMPTY, POST_ID, ROW_BLOCK, FeedRequest, Feeds, PostScores, RankerContext, Route, dedupe_rows,
                   empty_feeds, in_network, InterestRetrieval, take_rows, top_k, weight_vector)


class EngagementRanker(InterestRetrieval):
    """score = Σ_e w_e · P̂(e | post) · interest match · 2^(-age / half-life), × ``follow_boost`` in-network.

    Out-of-network candidates are drawn by the user's interests with probability ∝ (1 + weighted engagement
    count) · decay: popularity, as engagement-optimised feeds do. They enter feeds on the ENGAGEMENT route.
    """

    def __init__(self, context: RankerContext):
        self.context = context
        self.weights = weight_vector(context.settings)

    def rank(self, request: FeedRequest, view, rng: np.random.Generator) -> Feeds:
        s, feed = self.context.settings, self.context.feed
        users = request.users
        if view.n_posts == 0:
            return empty_feeds(request.users.size, request.feed_size)
        recent = view.recent_posts()
        recent = recent[view.distributable(recent)]
        half_life = s.recency_half_life_hours * 60.0
        decay = np.exp2(-(view.now - view.post_created[recent]) / half_life)
        popularity = (1.0 + (view.post_engagements[recent] * self.weights).sum(axis=1)) * decay
        # Out of network only what mitigations allow: not blocked, author not demoted, graduation not held.
        popularity = np.where(view.promotable(recent) & ~view.graduation_held(recent), popularity, 0.0)
        oon = self.interest_sampler(view).draw(view, users, recent, popularity, feed.candidates_per_feed, rng)
        inn, _ = in_network(view, users, feed.in_network_per_feed, trim=True)
        # The recency decay of each post of the scores' window (ids recent[0] .. recent[-1]), looked up per slot.
        scores = PostScores(view, recent, self.weights, s.prior_views)
        window = view.post_created[scores.lo: scores.lo + scores.values.size]
        window_decay = np.exp2(-(view.now - window) / half_life)
        # Every row is ranked on its own: blocks of rows keep the temporaries small (cache-resident at any size).
        k = request.feed_size
        posts = np.full((users.size, k), EMPTY, dtype=POST_ID)
        routes = np.zeros((users.size, k), dtype=np.int8)
        for a in range(0, users.size, ROW_BLOCK):
            rows = slice(a, a + ROW_BLOCK)
            cand = dedupe_rows(np.concatenate([inn[rows], oon[rows]], axis=1))
            # Columns before inn.shape[1] are FOLLOWED (score × follow_boost), the rest ENGAGEMENT.
            score = scores.with_interest(view, users[rows], cand, boost=s.follow_boost, boosted=inn.shape[1],
                                         post_factor=window_decay)
            best = top_k(score, k)
            ranked = take_rows(cand, best)
            ranked[take_rows(score, best) == -np.inf] = EMPTY
            posts[rows, :best.shape[1]] = ranked
            routes[rows, :best.shape[1]] = np.where(best < inn.shape[1], np.int8(Route.FOLLOWED),
                                                    np.int8(Route.ENGAGEMENT))
        return Feeds(posts, routes)
