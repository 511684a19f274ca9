"""Engagement-weighted feed (spec §3): in-network and popular out-of-network posts ordered by a weighted sum of
predicted engagement with recency decay."""

from __future__ import annotations

import numpy as np

from .base import (EMPTY, FeedRequest, Feeds, PostScores, RankerContext, Route, dedupe_rows, empty_feeds,
                   in_network, interest_match, InterestRetrieval, take_rows, top_k, weight_vector)


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
        cand = np.concatenate([inn, oon], axis=1)
        routes = np.concatenate([np.full(inn.shape, Route.FOLLOWED, np.int8),
                                 np.full(oon.shape, Route.ENGAGEMENT, np.int8)], axis=1)
        cand = dedupe_rows(cand)
        safe = np.where(cand != EMPTY, cand, 0)
        age_decay = np.exp2(-(view.now - view.post_created[safe]) / half_life)
        boost = np.where(routes == Route.FOLLOWED, s.follow_boost, 1.0)
        score = PostScores(view, recent, self.weights, s.prior_views)(
            cand, interest_match(view, users, cand) * boost * age_decay)
        best = top_k(score, request.feed_size)
        posts = take_rows(cand, best)
        out_routes = take_rows(routes, best)
        posts = np.where(take_rows(score, best) == -np.inf, EMPTY, posts)
        return Feeds(_pad(posts, request.feed_size), _pad(out_routes, request.feed_size, 0))


def _pad(a: np.ndarray, k: int, fill: int = EMPTY) -> np.ndarray:
    if a.shape[1] == k:
        return a
    return np.concatenate([a, np.full((a.shape[0], k - a.shape[1]), fill, dtype=a.dtype)], axis=1)
