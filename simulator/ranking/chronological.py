"""Reverse-chronological following feed: the control condition (spec §3, Huszár et al. 2022)."""

from __future__ import annotations

import numpy as np

from .base import Feeds, FeedRequest, RankerContext, Route, in_network


class ChronologicalRanker:
    """Newest posts from followed accounts first; only what is new since the user's previous session."""

    def __init__(self, context: RankerContext):
        self.context = context

    def rank(self, request: FeedRequest, view, rng: np.random.Generator) -> Feeds:
        posts, _ = in_network(view, request.users, request.feed_size)
        return Feeds(posts, np.full(posts.shape, Route.FOLLOWED, dtype=np.int8))
