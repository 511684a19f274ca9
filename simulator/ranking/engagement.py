"""Engagement-weighted feed (spec §3): in-network and popular out-of-network posts ordered by a weighted sum of
predicted engagement with recency decay."""

from __future__ import annotations

import numpy as np

from .. import kernels
from .base import (FeedRequest, Feeds, PostScores, RankerContext, empty_feeds, in_network, InterestRetrieval,
                   rank_candidates, weight_vector)


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
        decay = kernels.half_life_decay(float(view.now), view.post_created[recent], half_life)
        popularity = (1.0 + (view.post_engagements[recent] * self.weights).sum(axis=1)) * decay
        # Out of network only what mitigations allow: not blocked, author not demoted, graduation not held.
        popularity = np.where(view.promotable(recent) & ~view.graduation_held(recent), popularity, 0.0)
        oon = self.interest_sampler(view).draw(view, users, recent, popularity, feed.candidates_per_feed, rng)
        inn, _ = in_network(view, users, feed.in_network_per_feed, trim=True)
        # The recency decay of each post of the scores' window (ids recent[0] .. recent[-1]), looked up per slot.
        scores = PostScores(view, recent, self.weights, s.prior_views)
        window = view.post_created[scores.lo: scores.lo + scores.values.size]
        window_decay = kernels.half_life_decay(float(view.now), window, half_life)
        posts, routes = rank_candidates(view, users, inn, oon, inn[:, :0], scores, s.follow_boost,
                                        request.feed_size, request.feed_size, post_factor=window_decay)
        return Feeds(posts, routes)
