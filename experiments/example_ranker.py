"""Example user ranker: the most-liked posts of the last few hours (see docs/rankers.md).

Run it with the experiments folder on the import path, for example::

    PYTHONPATH=.:experiments python -m simulator run \
        --set ranker.name=example_ranker.MostLikedRecently --set ranker.options.hours=6

It reads only the :class:`simulator.platform.PlatformView` it is given and draws only from the generator it is
given, so it is reproducible and cannot see an account's true kind or a post's ground-truth flags.
"""

from __future__ import annotations

import numpy as np

from simulator.ranking.base import (EMPTY, Feeds, InterestSampler, Route, compact_rows, dedupe_rows, empty_feeds,
                                    in_network, top_k)

LIKE = 1   # column of view.post_engagements: watch, like, comment, share, follow


class MostLikedRecently:
    """Feed = posts created in the last ``hours`` hours, most liked first.

    Candidates per user: the newest in-network posts (new since the user's previous session, route FOLLOWED) and
    ``candidates_per_feed`` out-of-network posts drawn by the user's estimated interests with probability
    proportional to their like count (route ENGAGEMENT: they are there because of the likes they received). All
    candidates are ordered by like count, ties broken by candidate order (in-network first). Posts with no like are
    shown only in-network. No graduations are reported, so the audit credits each ENGAGEMENT impression pro rata to
    the post's whole engagement history.
    """

    def __init__(self, context, hours: float = 6.0):
        if not hours > 0:
            raise ValueError(f"ranker.options.hours = {hours!r}: expected a number > 0")
        self.context = context
        self.window_minutes = 60.0 * float(hours)
        self.sampler = None   # built on the first call, from the platform's interest profiles

    def rank(self, request, view, rng: np.random.Generator) -> Feeds:
        users, k = request.users, request.feed_size
        if view.n_posts == 0:   # the first step of a run: nothing to show yet
            return empty_feeds(users.size, k)
        feed = self.context.feed
        cutoff = view.now - self.window_minutes

        # Pool: distributable posts of the last `hours` hours (recent_posts already applies max_post_age_hours).
        pool = view.recent_posts()
        pool = pool[view.distributable(pool) & (view.post_created[pool] >= cutoff)]
        likes = view.post_engagements[:, LIKE].astype(np.float64)

        # Out-of-network: drawn by interest, weight = likes (posts with 0 likes are never drawn).
        if self.sampler is None:
            self.sampler = InterestSampler(view.interest_estimate)
        oon = self.sampler.draw(view, users, pool, likes[pool], feed.candidates_per_feed, rng)

        # In-network: newest posts of followed accounts, restricted to the same time window.
        inn, created = in_network(view, users, feed.in_network_per_feed)
        inn = np.where(created >= cutoff, inn, EMPTY)

        cand = dedupe_rows(np.concatenate([inn, oon], axis=1))   # a repeat keeps its first (in-network) slot
        routes = np.concatenate([np.full(inn.shape, Route.FOLLOWED, np.int8),
                                 np.full(oon.shape, Route.ENGAGEMENT, np.int8)], axis=1)
        score = np.where(cand == EMPTY, -np.inf, likes[np.where(cand == EMPTY, 0, cand)])

        best = top_k(score, k)
        posts = np.take_along_axis(cand, best, axis=1)
        out_routes = np.take_along_axis(routes, best, axis=1)
        posts = np.where(np.take_along_axis(score, best, axis=1) == -np.inf, EMPTY, posts)
        posts, out_routes = compact_rows(posts, out_routes)
        if posts.shape[1] < k:   # fewer candidate columns than feed slots: pad with EMPTY
            pad = k - posts.shape[1]
            posts = np.concatenate([posts, np.full((posts.shape[0], pad), EMPTY, np.int64)], axis=1)
            out_routes = np.concatenate([out_routes, np.zeros((posts.shape[0], pad), np.int8)], axis=1)
        return Feeds(posts, out_routes)
