"""What the platform can observe, and the platform actor that serves feeds.

:class:`PlatformView` is the structural wall of spec §3–4: it is built from *copies of references to observable
columns only*, made read-only, and holds no reference to the world, the population or the post table. A ranker or a
mitigation receives a view and nothing else, so it cannot read an account's true kind or a post's ground-truth
flags (``sponsored``, ``disclosed``, ``campaign``, ``quality``) however it is written.
"""

from __future__ import annotations

import mesa
import numpy as np
import scipy.sparse as sp

from . import kernels

MINUTES_PER_HOUR = 60.0


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (no copy)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _read_only_matrix(source: sp.csr_matrix) -> sp.csr_matrix:
    """A CSR matrix object over read-only views of ``source``'s buffers (no copy), made once per matrix: the view of
    the follow graph is rebuilt only when the graph is (once a day), not at every step (SciPy checks a new matrix's
    arrays, which costs more than the rest of a view)."""
    buffers = (source.data, source.indices, source.indptr)
    cached = getattr(source, "_platform_view", None)
    if cached is None or cached[0] != tuple(id(b) for b in buffers) + (source.shape,):
        view = sp.csr_matrix(tuple(read_only(b) for b in buffers), shape=source.shape)
        cached = (tuple(id(b) for b in buffers) + (source.shape,), view)
        source._platform_view = cached
    view = cached[1]
    view.has_canonical_format = source.has_canonical_format   # known: not checked again
    return view


class PlatformView:
    """Observable state at the start of one step. Times are minutes since the start of day 0.

    Posts (``post_*`` arrays, one row per post id ``0 .. n_posts-1``): author, creation time, topic, the candidate
    the content promotes (-1 none: content classification is something platforms do), the creator's
    paid-partnership label, whether the post was removed, views (all plays), ``served_views`` (impressions the feed
    served), engagement counts by type (columns ``watch, like, comment, share, follow``), the same counts within the
    first hour, and ``served_engagements`` (engagement that came from feed impressions, not direct visits). Views
    and engagement counts are the platform's *counted* signals: each play and engagement weighted by the
    mitigation stages (1 when there are none). The platform's own labels: ``post_oon_blocked`` (kept out of
    out-of-network distribution), ``post_held_until`` (graduation held until that minute), ``post_paid_inferred``
    (labelled as paid content by a mitigation).

    Accounts (``account_*`` arrays, one row per account): registration time (hours, negative = before day 0),
    active days in the 90 days before day 0, whether removed or demoted by a mitigation, and
    ``account_flag_stages`` (bit ``1 << i`` set when mitigation stage ``i`` flagged the account). ``follows`` is the
    CSR follow graph (row follows column; its arrays are read-only). ``interest_estimate`` is the platform's
    inferred topic profile of each audience user, ``last_session`` the start of each audience user's previous
    session (-inf if none).
    """

    __slots__ = (
        "now", "step", "step_minutes", "n_posts", "n_accounts", "n_audience", "topics", "max_post_age_minutes",
        "post_author", "post_created", "post_topic", "post_candidate", "post_paid_label", "post_removed",
        "post_views", "post_served_views", "post_engagements", "post_first_hour_views",
        "post_first_hour_engagements", "post_served_engagements",
        "post_oon_blocked", "post_held_until", "post_paid_inferred",
        "account_registered_hours", "account_prior_active_days", "account_removed", "account_demoted",
        "account_flag_stages", "follows", "interest_estimate", "last_session",
    )

    def __init__(self, **observables):
        for name in self.__slots__:
            value = observables.pop(name)
            if isinstance(value, np.ndarray):
                value = read_only(value)
            elif sp.issparse(value):
                value = _read_only_matrix(value)
            object.__setattr__(self, name, value)
        if observables:
            raise TypeError(f"not observable: {sorted(observables)}")

    def __setattr__(self, name, value):
        raise AttributeError("PlatformView is read-only")

    def recent_posts(self) -> np.ndarray:
        """Ids of posts created in ``[now - max_post_age, now)``: the posts a feed may show (before filtering)."""
        return np.arange(*self.recent_range())

    def recent_range(self) -> tuple[int, int]:
        """``(lo, hi)``: :meth:`recent_posts` are the ids ``lo .. hi - 1`` (ids follow creation times)."""
        lo = int(np.searchsorted(self.post_created[: self.n_posts], self.now - self.max_post_age_minutes, "left"))
        hi = int(np.searchsorted(self.post_created[: self.n_posts], self.now, "left"))
        return lo, hi

    def distributable(self, posts: np.ndarray) -> np.ndarray:
        """Mask of ``posts`` that may be shown: not removed, author not removed, created before now."""
        return (~self.post_removed[posts]) & (~self.account_removed[self.post_author[posts]]) & (
            self.post_created[posts] < self.now)

    def promotable(self, posts: np.ndarray) -> np.ndarray:
        """Mask of ``posts`` that may be distributed out of network: not blocked by a mitigation, author not
        demoted. (In-network delivery to followers is not affected.)"""
        return (~self.post_oon_blocked[posts]) & (~self.account_demoted[self.post_author[posts]])

    def graduation_held(self, posts: np.ndarray) -> np.ndarray:
        """Mask of ``posts`` whose graduation to wider distribution a mitigation holds at ``now``."""
        return self.post_held_until[posts] > self.now


def make_view(world, now: float) -> PlatformView:
    """Assemble the observable view of ``world`` (an :class:`simulator.model.AuditWorld`) at time ``now``."""
    posts, pop = world.posts, world.population
    n = posts.n
    follows: sp.csr_matrix = pop.follows.matrix
    return PlatformView(
        now=float(now), step=int(world.steps_done), step_minutes=world.step_minutes, n_posts=n, n_accounts=pop.n,
        n_audience=pop.n_audience, topics=world.config.population.topics,
        max_post_age_minutes=world.config.feed.max_post_age_hours * MINUTES_PER_HOUR,
        post_author=posts.author[:n], post_created=posts.created[:n], post_topic=posts.topic[:n],
        post_candidate=posts.candidate[:n], post_paid_label=posts.paid_label[:n], post_removed=posts.removed[:n],
        post_views=posts.trusted_views[:n], post_served_views=posts.served_views[:n],
        post_engagements=posts.trusted_engagements[:n],
        post_first_hour_views=posts.trusted_first_hour_views[:n],
        post_first_hour_engagements=posts.trusted_first_hour_engagements[:n],
        post_served_engagements=posts.trusted_served_engagements[:n],
        post_oon_blocked=posts.oon_blocked[:n], post_held_until=posts.held_until[:n],
        post_paid_inferred=posts.paid_inferred[:n],
        account_registered_hours=pop.registered_hours, account_prior_active_days=pop.prior_active_days,
        account_removed=world.account_removed, account_demoted=world.account_demoted,
        account_flag_stages=world.account_flag_stages, follows=follows,
        interest_estimate=pop.interest_estimate, last_session=world.audience.last_session,
    )


class Platform(mesa.Agent):
    """The platform: owns the feed ranker and serves the feeds requested in a step."""

    def __init__(self, model, ranker):
        super().__init__(model)
        kernels.load()   # the compiled hot path, loaded while the world is built rather than in its first step
        self.ranker = ranker
        self.stream = model.streams.ranker

    def serve(self, users: np.ndarray):
        from .ranking.base import FeedRequest, check_feeds

        view = make_view(self.model, self.model.now)
        feeds = self.ranker.rank(FeedRequest(users=users, feed_size=self.model.config.feed.feed_size), view,
                                 self.stream)
        feeds = check_feeds(feeds, users.size, self.model.config.feed.feed_size, view)
        return enforce_moderation(feeds, view) if self.model.mitigations.active else feeds


def enforce_moderation(feeds, view: PlatformView):
    """Empty the feed slots that break a mitigation's decision, whatever the ranker did: out-of-network slots of
    posts that are blocked or whose authors are demoted, and graduated (ENGAGEMENT-route) slots of held posts.
    The built-in rankers never produce such slots; a user ranker that ignores the labels loses them."""
    from .ranking.base import Route

    feeds.posts = kernels.moderated(np.ascontiguousarray(feeds.posts, dtype=np.int64),
                                    np.ascontiguousarray(feeds.routes, dtype=np.int8), view.post_oon_blocked,
                                    view.account_demoted, view.post_author, view.post_held_until, float(view.now),
                                    int(Route.FOLLOWED), int(Route.ENGAGEMENT))
    return feeds
