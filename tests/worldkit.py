"""Hand-built worlds for ranker, attribution and platform-wall tests.

A :class:`World` holds the observable columns of a small world as plain NumPy arrays (posts sorted by creation
time, as the post table keeps them) and builds a :class:`simulator.platform.PlatformView` from them at any time
``now``, passing every slot of the view explicitly. Nothing here reads the simulator's world model: rankers are
tested on exactly what a platform could see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from simulator.config import FeedConfig, RankerConfig
from simulator.content import ENGAGEMENT_TYPES
from simulator.platform import PlatformView
from simulator.ranking import EMPTY, FeedRequest, RankerContext, make_ranker

N_TYPES = len(ENGAGEMENT_TYPES)
OBSERVABLES = tuple(PlatformView.__slots__)


def follow_matrix(n_accounts: int, edges=()) -> sp.csr_matrix:
    """CSR follow graph (row follows column) from ``(follower, followee)`` pairs, one int8 1 per distinct edge."""
    edges = np.asarray(list(edges), dtype=np.int64).reshape(-1, 2)
    m = sp.csr_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])),
                      shape=(n_accounts, n_accounts))
    m.sum_duplicates()
    m.data[:] = 1
    m.sort_indices()
    return m


def follow_matrix_from_dense(dense: np.ndarray) -> sp.csr_matrix:
    r, c = np.nonzero(np.asarray(dense, dtype=bool))
    return follow_matrix(dense.shape[0], zip(r, c))


@dataclass
class World:
    """Observable columns of a small world. Post arrays have one row per post, sorted by ``post_created``."""

    n_accounts: int
    n_audience: int
    topics: int
    post_author: np.ndarray
    post_created: np.ndarray
    post_topic: np.ndarray
    post_candidate: np.ndarray
    post_paid_label: np.ndarray
    post_removed: np.ndarray
    post_views: np.ndarray
    post_served_views: np.ndarray
    post_engagements: np.ndarray
    post_first_hour_views: np.ndarray
    post_first_hour_engagements: np.ndarray
    post_served_engagements: np.ndarray
    post_oon_blocked: np.ndarray
    post_held_until: np.ndarray
    post_paid_inferred: np.ndarray
    account_registered_hours: np.ndarray
    account_prior_active_days: np.ndarray
    account_removed: np.ndarray
    account_demoted: np.ndarray
    account_flag_stages: np.ndarray
    follows: sp.csr_matrix
    interest_estimate: np.ndarray
    last_session: np.ndarray
    max_post_age_minutes: float = 72 * 60.0
    step_minutes: float = 60.0
    extra: dict = field(default_factory=dict)

    @property
    def n_posts(self) -> int:
        return int(self.post_author.size)

    def observables(self, now: float, n_posts: int | None = None, step: int | None = None) -> dict:
        """Every slot of :class:`PlatformView`, for a view at ``now`` showing the first ``n_posts`` posts."""
        n = self.n_posts if n_posts is None else int(n_posts)
        cut = lambda a: a[:n]  # noqa: E731
        obs = dict(
            now=float(now), step=int(now // self.step_minutes) if step is None else int(step),
            step_minutes=float(self.step_minutes), n_posts=n, n_accounts=int(self.n_accounts),
            n_audience=int(self.n_audience), topics=int(self.topics),
            max_post_age_minutes=float(self.max_post_age_minutes),
            post_author=cut(self.post_author), post_created=cut(self.post_created), post_topic=cut(self.post_topic),
            post_candidate=cut(self.post_candidate), post_paid_label=cut(self.post_paid_label),
            post_removed=cut(self.post_removed), post_views=cut(self.post_views),
            post_served_views=cut(self.post_served_views), post_engagements=cut(self.post_engagements),
            post_first_hour_views=cut(self.post_first_hour_views),
            post_first_hour_engagements=cut(self.post_first_hour_engagements),
            post_served_engagements=cut(self.post_served_engagements),
            post_oon_blocked=cut(self.post_oon_blocked), post_held_until=cut(self.post_held_until),
            post_paid_inferred=cut(self.post_paid_inferred),
            account_registered_hours=self.account_registered_hours,
            account_prior_active_days=self.account_prior_active_days, account_removed=self.account_removed,
            account_demoted=self.account_demoted, account_flag_stages=self.account_flag_stages,
            follows=self.follows, interest_estimate=self.interest_estimate, last_session=self.last_session,
        )
        assert set(obs) == set(OBSERVABLES), "worldkit is out of date with PlatformView.__slots__"
        return obs

    def view(self, now: float, n_posts: int | None = None, step: int | None = None) -> PlatformView:
        return PlatformView(**self.observables(now, n_posts, step))

    def copy(self, **changes) -> "World":
        """A deep copy of every array (so a later view can differ from an earlier one), with ``changes``."""
        out = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = v.copy() if isinstance(v, (np.ndarray, sp.spmatrix, dict)) else v
        out.update(changes)
        return World(**out)


def build_world(*, n_accounts: int, n_audience: int, topics: int, author, created, topic=None, candidate=None,
                removed=None, views=None, engagements=None, first_hour_views=None, first_hour_engagements=None,
                served_views=None, paid_label=None, account_removed=None, follows=None, interest_estimate=None,
                last_session=None, registered_hours=None, prior_active_days=None, served_engagements=None,
                oon_blocked=None, held_until=None, paid_inferred=None, account_demoted=None,
                account_flag_stages=None,
                max_post_age_minutes: float = 72 * 60.0, step_minutes: float = 60.0) -> World:
    """A :class:`World` from post columns (``created`` must be non-decreasing); every omitted column gets a
    neutral default: no engagement, topic 0, no candidate, nothing removed, nobody follows anybody, uniform
    interests, no previous session, no mitigation label."""
    author = np.asarray(author, dtype=np.int32)
    n = author.size
    created = np.asarray(created, dtype=np.float64).reshape(n)
    if n and np.any(np.diff(created) < 0):
        raise ValueError("posts must be sorted by creation time")
    col = lambda v, dtype, default=0: (np.full(n, default, dtype=dtype) if v is None  # noqa: E731
                                       else np.asarray(v, dtype=dtype).reshape(n))
    mat = lambda v: (np.zeros((n, N_TYPES), np.int32) if v is None  # noqa: E731
                     else np.asarray(v, dtype=np.int32).reshape(n, N_TYPES))
    if follows is None:
        follows = follow_matrix(n_accounts)
    elif not sp.issparse(follows):
        follows = follow_matrix(n_accounts, follows)
    if interest_estimate is None:
        interest_estimate = np.full((n_audience, topics), 1.0 / topics, dtype=np.float32)
    return World(
        n_accounts=n_accounts, n_audience=n_audience, topics=topics,
        post_author=author, post_created=created, post_topic=col(topic, np.int16),
        post_candidate=col(candidate, np.int8, -1), post_paid_label=col(paid_label, np.bool_, False),
        post_removed=col(removed, np.bool_, False), post_views=col(views, np.int32),
        post_served_views=col(served_views, np.int32), post_engagements=mat(engagements),
        post_first_hour_views=col(first_hour_views, np.int32),
        post_first_hour_engagements=mat(first_hour_engagements),
        post_served_engagements=mat(served_engagements),
        post_oon_blocked=col(oon_blocked, np.bool_, False), post_held_until=col(held_until, np.float64, 0.0),
        post_paid_inferred=col(paid_inferred, np.bool_, False),
        account_demoted=(np.zeros(n_accounts, dtype=bool) if account_demoted is None
                         else np.asarray(account_demoted, dtype=bool)),
        account_flag_stages=(np.zeros(n_accounts, dtype=np.int64) if account_flag_stages is None
                             else np.asarray(account_flag_stages, dtype=np.int64)),
        account_registered_hours=(np.full(n_accounts, -24.0 * 365) if registered_hours is None
                                  else np.asarray(registered_hours, dtype=np.float64)),
        account_prior_active_days=(np.full(n_accounts, 45, dtype=np.int16) if prior_active_days is None
                                   else np.asarray(prior_active_days, dtype=np.int16)),
        account_removed=(np.zeros(n_accounts, dtype=bool) if account_removed is None
                         else np.asarray(account_removed, dtype=bool)),
        follows=follows, interest_estimate=np.asarray(interest_estimate, dtype=np.float32),
        last_session=(np.full(n_audience, -np.inf) if last_session is None
                      else np.asarray(last_session, dtype=np.float64)),
        max_post_age_minutes=float(max_post_age_minutes), step_minutes=float(step_minutes),
    )


# ------------------------------------------------------------------------------------------------ rankers


def ranker_context(name: str, *, n_audience: int, topics: int, feed_size: int = 10, candidates_per_feed: int = 20,
                   in_network_per_feed: int = 20, max_post_age_hours: float = 72.0, **settings) -> RankerContext:
    return RankerContext(
        settings=RankerConfig(name=name, **settings),
        feed=FeedConfig(feed_size=feed_size, max_post_age_hours=max_post_age_hours,
                        candidates_per_feed=candidates_per_feed, in_network_per_feed=in_network_per_feed),
        n_audience=n_audience, topics=topics)


def new_ranker(name: str, world: World, **kw):
    return make_ranker(ranker_context(name, n_audience=world.n_audience, topics=world.topics,
                                      max_post_age_hours=world.max_post_age_minutes / 60.0, **kw))


def request(users, feed_size: int) -> FeedRequest:
    return FeedRequest(users=np.asarray(users, dtype=np.int64), feed_size=int(feed_size))


def eligible_mask(view: PlatformView) -> np.ndarray:
    """Per post id: may a feed show it (exists, created before now, not removed, author not removed)?"""
    n = view.n_posts
    return ((view.post_created[:n] < view.now) & ~view.post_removed[:n]
            & ~view.account_removed[view.post_author[:n]])


def shown(row: np.ndarray) -> np.ndarray:
    return row[row != EMPTY]
