"""A null model: posts drawn uniformly from everything distributable (spec §3)."""

from __future__ import annotations

import numpy as np

from .base import EMPTY, Feeds, FeedRequest, RankerContext, Route, compact_rows, dedupe_rows


class RandomRanker:
    """Each slot is a uniform draw among distributable recent posts; repeats within a feed are dropped."""

    def __init__(self, context: RankerContext):
        self.context = context

    def rank(self, request: FeedRequest, view, rng: np.random.Generator) -> Feeds:
        n, k = request.users.size, request.feed_size
        pool = view.recent_posts()
        pool = pool[view.distributable(pool)]
        pool = pool[view.promotable(pool)]   # random picks are out-of-network: mitigations' blocks apply
        if pool.size == 0 or n == 0:
            posts = np.full((n, k), EMPTY, dtype=np.int64)
        else:
            posts = pool[rng.integers(0, pool.size, size=(n, k))]
            (posts,) = compact_rows(dedupe_rows(posts))
        return Feeds(posts, np.full(posts.shape, Route.DISCOVERY, dtype=np.int8))
