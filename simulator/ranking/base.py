"""The ranker interface and the vectorised retrieval helpers every ranker shares.

A ranker is a class constructed as ``Ranker(context, **options)`` with one method::

    def rank(self, request: FeedRequest, view: PlatformView, rng: numpy.random.Generator) -> Feeds

``request.users`` are the audience rows that open the app this step; the ranker returns, for each of them, up to
``request.feed_size`` post ids (``-1`` pads an empty slot) and the route that made each post eligible (spec §5
attribution): :attr:`Route.FOLLOWED` (in-network), :attr:`Route.DISCOVERY` (out-of-network on the post's own merit:
a first test batch, a random pick) or :attr:`Route.ENGAGEMENT` (out-of-network because of engagement it received).
A ranker that made a post eligible through engagement lists it in ``Feeds.graduated`` at the call where that
happened, so the audit can credit the engagers of that stage. The ranker sees only :class:`PlatformView`.
The platform checks every returned feed (:func:`check_feeds`): no duplicates, no future posts, no removed posts or
accounts, at most ``feed_size`` posts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from ..config import FeedConfig, RankerConfig
from ..platform import PlatformView
from .. import kernels
from ..kernel_threads import run_blocks
from ..uniforms import StreamUniforms

EMPTY = -1
#: dtype of post-id matrices inside rankers (half the memory traffic of int64 in sorts and gathers)
POST_ID = np.int32
#: The fewest feeds (users) and interest draws a kernel thread takes on (kernel_threads.run_blocks): some tens of
#: microseconds of work, against a few microseconds for a parallel region.
ROWS_PER_THREAD, DRAWS_PER_THREAD = 128, 2048
#: The fewest feeds a kernel thread checks against the feed contract: a check costs about a quarter of a feed's
#: assembly, so a block holds four times as many feeds.
CHECKED_FEEDS_PER_THREAD = 4 * ROWS_PER_THREAD


class Route(IntEnum):
    FOLLOWED = 0
    DISCOVERY = 1
    ENGAGEMENT = 2


@dataclass(frozen=True)
class FeedRequest:
    users: np.ndarray   # sorted audience rows requesting a feed
    feed_size: int


@dataclass
class Feeds:
    posts: np.ndarray                     # int64 (len(users), feed_size); EMPTY pads
    routes: np.ndarray                    # int8, same shape; ignored where posts is EMPTY
    graduated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class RankerContext:
    """What a ranker is built with: its settings, the feed settings and the world's fixed sizes."""

    settings: RankerConfig
    feed: FeedConfig
    n_audience: int
    topics: int


class FeedContractError(RuntimeError):
    """A ranker returned feeds that break the contract of spec §3."""


def check_feeds(feeds: Feeds, n_users: int, feed_size: int, view: PlatformView) -> Feeds:
    posts = np.ascontiguousarray(feeds.posts, dtype=np.int64)
    if posts.shape != (n_users, feed_size):
        raise FeedContractError(f"feeds have shape {posts.shape}, expected {(n_users, feed_size)}")
    routes = np.ascontiguousarray(feeds.routes, dtype=np.int8)
    if routes.shape != posts.shape:
        raise FeedContractError("routes must have the shape of posts")
    graduated = np.asarray(feeds.graduated, dtype=np.int64)
    if graduated.size and (graduated.min() < 0 or graduated.max() >= view.n_posts):
        raise FeedContractError("graduated lists a post id that does not exist")
    # The first breach in row-major order: each block of rows finds its first, and the first block's with one counts.
    code = run_blocks(kernels.feed_violation_blocks, n_users, CHECKED_FEEDS_PER_THREAD, posts, routes, _ROUTE_MIN,
                                         _ROUTE_MAX, view.post_removed, view.post_author, view.account_removed,
                                         view.post_created, float(view.now))
    if code != kernels.FEED_OK:
        raise FeedContractError(_FEED_BREACHES[code])
    return Feeds(posts, routes, graduated)


_FEED_BREACHES = {
    kernels.FEED_BAD_ID: "feed holds a post id that does not exist",
    kernels.FEED_NOT_DISTRIBUTABLE: "feed holds a future or removed post, or a removed account's post",
    kernels.FEED_REPEAT: "a feed holds the same post twice",
    kernels.FEED_BAD_ROUTE: "a route is not one of Route.FOLLOWED, DISCOVERY, ENGAGEMENT",
}
#: Route values are consecutive: a route is valid when it lies between the smallest and the largest.
_ROUTE_MIN, _ROUTE_MAX = int(min(Route)), int(max(Route))
assert sorted(int(r) for r in Route) == list(range(_ROUTE_MIN, _ROUTE_MAX + 1))


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def empty_feeds(n_users: int, feed_size: int) -> Feeds:
    return Feeds(np.full((n_users, feed_size), EMPTY, dtype=np.int64), np.zeros((n_users, feed_size), np.int8))


def take_rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``np.take_along_axis(a, idx, axis=1)`` for 2-D arrays, as one flat gather (about twice as fast)."""
    flat = idx.astype(np.intp, copy=False) + (np.arange(a.shape[0], dtype=np.intp) * a.shape[1])[:, None]
    return a.ravel().take(flat)


def dedupe_rows(posts: np.ndarray) -> np.ndarray:
    """Copy of a (rows, k) post matrix with every repeat of a post in a row (after its first slot) set EMPTY."""
    out = posts.copy()
    n, w = out.shape
    if w < 2 or n == 0:
        return out
    # Sort each row by (post, column): keys made unique by the column, so a plain (SIMD) sort is exact; a repeat
    # is a key whose post equals its left neighbour's.
    lo = int(out.min())
    span = int(out.max()) - lo + 1
    shift = (w - 1).bit_length()
    bits = span.bit_length() + shift
    if bits > 62:
        order = np.argsort(out, axis=1, kind="stable")
        s = take_rows(out, order)
        dup = np.zeros_like(s, dtype=bool)
        dup[:, 1:] = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] != EMPTY)
        rows = np.nonzero(dup)[0]
        out[rows, order[dup]] = EMPTY
        return out
    key = out.astype(np.int32 if bits <= 31 else np.int64)
    key -= lo
    key <<= shift
    key |= np.arange(w, dtype=key.dtype)
    key.sort(axis=1)
    post = key >> shift
    dup = post[:, 1:] == post[:, :-1]
    if EMPTY - lo >= 0:
        dup &= post[:, 1:] != EMPTY - lo
    at = np.flatnonzero(dup)
    if at.size:
        col = key[:, 1:].reshape(-1)[at] & ((1 << shift) - 1)
        out.reshape(-1)[at // (w - 1) * w + col] = EMPTY
    return out


def compact_rows(posts: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Move EMPTY slots to the end of each row, keeping the order of the rest (and of aligned arrays)."""
    n, w = posts.shape
    # Sort each row by (is EMPTY, column): unique keys, so a plain (SIMD) sort is the stable partition.
    shift = max(w - 1, 1).bit_length()
    flat = (posts == EMPTY).astype(np.intp)   # int64 keys: the fastest row sort for short rows
    flat <<= shift
    flat |= np.arange(w, dtype=np.intp)
    flat.sort(axis=1)
    flat &= (1 << shift) - 1
    flat += (np.arange(n, dtype=np.intp) * w)[:, None]
    return tuple(a.ravel().take(flat) for a in (posts,) + others)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k best scores per row, best first; equal scores by column, the lower first (the
    first k columns of a stable sort of -scores, so the answer depends on the scores alone, never on the sorting
    algorithm the CPU's vector units select). NaN ranks below everything."""
    n, c = scores.shape
    if c == 0:
        return np.zeros((n, 0), dtype=np.int64)
    k = min(k, c)
    neg = np.subtract(0.0, scores)         # -score, with +0.0 for either zero
    if c <= 64 and n and scores.dtype == np.float64 and not np.isnan(scores).any():
        # A row whose k best scores are distinct and beat the next one has exactly one answer: read it off a sort
        # of unique int64 keys (the score's order-preserving bits, its lowest bits replaced by the column). Rows
        # with a tie there (or a near-tie the lost bits hide) take the stable sort below.
        shift = (c - 1).bit_length()
        bits = neg.view(np.int64)
        key = bits >> 63
        key &= 0x7FFFFFFFFFFFFFFF
        key ^= bits                        # integer order = float order
        key &= ~((1 << shift) - 1)
        key |= np.arange(c, dtype=np.int64)
        key.sort(axis=1)
        head = key[:, :k + 1] >> shift
        tied = np.flatnonzero((head[:, 1:] == head[:, :-1]).any(axis=1))
        best = key[:, :k] & ((1 << shift) - 1)
        if tied.size:
            best[tied] = np.argsort(neg[tied], axis=1, kind="stable")[:, :k]
        return best
    return np.argsort(neg, axis=1, kind="stable")[:, :k]


def rank_candidates(view: PlatformView, users: np.ndarray, inn: np.ndarray, oon: np.ndarray, test: np.ndarray,
                    scores: "PostScores", boost: float, keep: int, feed_size: int,
                    post_factor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feeds of ``users`` from their candidates, as (posts, routes) matrices of ``feed_size`` columns.

    Candidates are the in-network posts ``inn`` (FOLLOWED, score × ``boost``) then the out-of-network draws ``oon``
    (ENGAGEMENT); a repeated post keeps its first slot. Each is scored ``scores`` × interest match (× its entry of
    ``post_factor``); the ``keep`` best follow the user's ``test`` posts (DISCOVERY, may be zero columns); a post
    already shown as a test post is not repeated, EMPTY slots go last and ``feed_size`` slots are kept. The work is
    one compiled pass per feed (:func:`kernels.assemble_feeds`); :func:`rank_candidate_rows` is its NumPy
    definition. Equal scores rank by column, as in :func:`top_k`.
    """
    size = scores.values.size
    factor = np.zeros(0) if post_factor is None else np.ascontiguousarray(post_factor, dtype=np.float64)
    rows, inn32, oon32, test32 = users.astype(np.intp, copy=False), _c_int32(inn), _c_int32(oon), _c_int32(test)
    window_topic = view.post_topic[scores.lo: scores.lo + size]
    return run_blocks(kernels.assemble_feeds_blocks, rows.size, ROWS_PER_THREAD, rows, view.interest_estimate, inn32,
                                         oon32, test32, scores.values, window_topic, scores.lo,
                                         np.float32(view.topics), float(boost), factor, post_factor is not None, keep,
                                         feed_size)


def _c_int32(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous int32 array (one compiled specialisation of each kernel serves every call)."""
    return np.ascontiguousarray(a, dtype=POST_ID)


def rank_candidate_rows(view: PlatformView, users: np.ndarray, inn: np.ndarray, oon: np.ndarray, test: np.ndarray,
                        scores: "PostScores", boost: float, keep: int, feed_size: int,
                        post_factor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_candidates` in NumPy (the definition the kernel follows); returns at most ``feed_size``
    columns."""
    cand = dedupe_rows(np.concatenate([inn, oon], axis=1))   # a followed post keeps its in-network route
    score = scores.with_interest(view, users, cand, boost=boost, boosted=inn.shape[1], post_factor=post_factor)
    # Test posts may repeat ranked ones: rank a few more than needed and drop repeats after the merge.
    best = top_k(score, keep)
    ranked = take_rows(cand, best)
    ranked[take_rows(score, best) == -np.inf] = EMPTY
    ranked_routes = np.where(best < inn.shape[1], np.int8(Route.FOLLOWED), np.int8(Route.ENGAGEMENT))
    posts = np.concatenate([test, ranked], axis=1)
    routes = np.concatenate([np.full(test.shape, Route.DISCOVERY, np.int8), ranked_routes], axis=1)
    posts, routes = compact_rows(dedupe_ahead(posts, test.shape[1]), routes)
    return posts[:, :feed_size], routes[:, :feed_size]


def dedupe_ahead(posts: np.ndarray, head: int) -> np.ndarray:
    """``dedupe_rows(posts)`` for a matrix whose columns from ``head`` on hold no post twice in a row (EMPTY
    aside): only the first ``head`` columns can be repeated, so a few column comparisons replace the sort."""
    if head > 4:
        return dedupe_rows(posts)
    out = posts.copy()
    for j in range(head):
        # A slot equal to column j's post, right of j, is a repeat (an EMPTY "repeat" stays EMPTY).
        rest = out[:, j + 1:]
        rest[rest == out[:, j: j + 1]] = EMPTY
    return out


def in_network(view: PlatformView, users: np.ndarray, limit: int, trim: bool = False,
               distributable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Newest distributable posts by accounts each user follows, created since the user's previous session
    (and within the maximum post age). Returns a (len(users), limit) post matrix (EMPTY-padded), newest first,
    and the matching creation times; with ``trim``, only as many columns as the fullest row needs (most users
    have few new in-network posts, and every later step is cheaper on a narrower matrix). ``distributable``: the
    recent posts that are distributable (``recent[view.distributable(recent)]``), when the caller has them."""
    n = users.size

    def filled(width: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((n, width), EMPTY, dtype=POST_ID), np.full((n, width), -np.inf)

    if limit == 0 or n == 0:
        return filled(0 if trim else limit)
    if distributable is None:
        recent = view.recent_posts()
        recent = recent[view.distributable(recent)]
    else:
        recent = distributable
    if recent.size == 0:
        return filled(0 if trim else limit)
    # The recent posts grouped by author, each author's in creation (id) order (one sort of unique keys); each
    # user's followees' groups are then walked newest first (one compiled pass per user).
    keys = _sort_by(view.post_author[recent], np.arange(recent.size, dtype=np.int64))
    by_author, created, posting, word_rank, group_start = kernels.author_groups(
        keys, recent.astype(np.int64, copy=False), view.post_created, view.n_accounts)
    follows = view.follows
    if not follows.has_canonical_format:   # a repeated follow edge counts once
        follows = follows.copy()
        follows.sum_duplicates()
    users = users.astype(np.intp, copy=False)
    since = view.last_session[users].astype(np.float64, copy=False)
    posts, times, counts = run_blocks(kernels.newest_followed_blocks, users.size, ROWS_PER_THREAD, follows.indptr,
                                                          follows.indices, users, since, posting, word_rank,
                                                          group_start, by_author, created, limit)
    if trim:
        width = int(counts.max())
        posts, times = posts[:, :width], times[:, :width]
    return posts, times


def _sort_by(values: np.ndarray, payload: np.ndarray) -> np.ndarray:
    """``(values << 32) | payload`` sorted: a stable sort of non-negative int32 ``values`` carrying a payload below
    2^32 (e.g. their index), as one sort of unique int64 keys, many times faster than a stable argsort."""
    key = values.astype(np.int64) << 32
    key |= payload
    key.sort()
    return key


def alias_tables(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables for each row of a (rows, K) probability matrix, built for all rows at once."""
    n, k = p.shape
    q = p / p.sum(axis=1, keepdims=True) * k
    return kernels.vose_alias(np.ascontiguousarray(q, dtype=np.float64))


def weighted_draw(cum: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index i with cum[i-1] <= x < cum[i] for each x (cum increasing, cum[0] > 0; x beyond the end gives the
    last index): the search :class:`InterestSampler` makes, through a guide table (Chen & Asau) that makes each
    lookup O(1) on average where a binary search would cost a cache miss per level."""
    guide, scale = kernels.guide_table(cum)
    return kernels.guided_search_many(np.asarray(cum, dtype=np.float64), guide, scale,
                                      np.asarray(x, dtype=np.float64))


class InterestSampler:
    """Draws out-of-network candidates for users by their (platform-estimated) interests.

    Each draw explores with probability ``explore`` (a post drawn from the whole pool ∝ weight, so a post that
    spreads reaches beyond its niche); otherwise a topic is drawn from the user's profile (alias tables, O(1)) and a
    post of that topic ∝ weight (falling back to the whole pool if the topic has none).
    """

    def __init__(self, profiles: np.ndarray, explore: float = 0.15):
        self.explore = explore
        self.topics = profiles.shape[1]
        self._uniforms: StreamUniforms | None = None
        prob, alias = alias_tables(np.maximum(profiles.astype(np.float64), 1e-12))
        # float32 coins and int16 aliases: a user's row of both tables spans few cache lines.
        self.prob_flat, self.alias_flat = prob.ravel(), alias.astype(np.int16).ravel()

    def draw(self, view: PlatformView, users: np.ndarray, pool: np.ndarray, weights: np.ndarray, draws: int,
             rng: np.random.Generator) -> np.ndarray:
        n, k = users.size, self.topics
        if draws == 0 or n == 0:
            return np.full((n, draws), EMPTY, dtype=POST_ID)
        # The posts of positive weight, stably grouped by topic, with their cumulative weights; each topic's segment
        # of them (or the whole pool when it has none), then, at topics k .. 2k-1, the whole pool (an exploring
        # draw); the guide table of the cumulative weights. (The NumPy steps: tests/test_kernels.py, _reference_draw.)
        pool, cum, width, start, guide, scale = kernels.interest_pool(
            np.ascontiguousarray(pool, dtype=np.int64), np.ascontiguousarray(weights, dtype=np.float64),
            view.post_topic, k)
        if pool.size == 0:
            return np.full((n, draws), EMPTY, dtype=POST_ID)
        # The three uniforms of every draw, in the order the draws have always consumed them.
        m = n * draws
        if self._uniforms is None or self._uniforms.generator is not rng:
            self._uniforms = StreamUniforms(rng)   # (the values rng.random would give, drawn by compiled code)
        alias_u, explore_u, segment_u = self._uniforms.arrays([(m, np.float32), (m, np.float32), (m, np.float64)])
        # Draw x uniformly in [start, start + width) of the cumulative weights.
        prob, alias = self.prob_flat.reshape(-1, k), self.alias_flat.reshape(-1, k)
        rows = users.astype(np.intp, copy=False)
        return run_blocks(kernels.sample_by_interest_blocks, n, max(1, DRAWS_PER_THREAD // draws), rows, prob, alias,
                                                 alias_u, explore_u, segment_u, np.float32(self.explore), width,
                                                 start, cum, guide, scale, pool, draws)


class PostScores:
    """Σ_e w_e · P̂(e | post) for the posts of a window, P̂ = observed engagements per view smoothed with
    ``prior_views`` pseudo-views at the window's mean rates. Looked up by post id."""

    def __init__(self, view: PlatformView, window: np.ndarray, weights: np.ndarray, prior_views: float):
        self.lo = int(window[0]) if window.size else 0
        hi = int(window[-1]) + 1 if window.size else 0
        # One compiled pass (the NumPy steps: tests/test_kernels.py, _reference_post_scores).
        self.values = kernels.post_scores(view.post_views[self.lo: hi], view.post_engagements[self.lo: hi],
                                          np.ascontiguousarray(weights, dtype=np.float64), float(prior_views),
                                          DEFAULT_RATES)

    def __call__(self, posts: np.ndarray, factor: np.ndarray | float = 1.0) -> np.ndarray:
        """Scores of a post matrix times ``factor`` (e.g. an interest match); EMPTY (or any id outside the window)
        gets -inf whatever the factor."""
        rel = posts - self.lo
        ok = (posts != EMPTY) & (rel >= 0) & (rel < self.values.size)
        values = self.values[np.where(ok, rel, 0)] if self.values.size else np.zeros(posts.shape)
        return np.where(ok, values * factor, -np.inf)

    def with_interest(self, view: PlatformView, users: np.ndarray, posts: np.ndarray, boost: float = 1.0,
                      boosted: int = 0, post_factor: np.ndarray | None = None) -> np.ndarray:
        """``self(posts, interest_match(view, users, posts) * b * f)`` with ``b = boost`` in the first ``boosted``
        columns and 1 elsewhere, and ``f`` the post's entry of ``post_factor`` (one value per post of the window,
        in id order; omitted: 1), bit for bit, in one pass of lookups."""
        size = self.values.size
        if size == 0:
            return np.full(posts.shape, -np.inf)
        # Window-relative ids; anything outside the window (EMPTY included) reads a sentinel and ends up -inf.
        idx = posts.astype(np.intp)
        idx -= self.lo
        idx = idx.view(np.uintp)
        ok = idx < size
        np.minimum(idx, size, out=idx)
        idx = idx.view(np.intp)
        k = view.topics
        cell = np.append(view.post_topic[self.lo: self.lo + size], 0).astype(np.intp).take(idx)
        profiles = view.interest_estimate
        if profiles.ndim == 2 and profiles.shape[1] == k:
            # The users' profile rows first (one row copy each), then the lookups within them.
            cell += (np.arange(users.size, dtype=np.intp) * k)[:, None]
            match = profiles.take(users, axis=0).reshape(-1).take(cell)
        else:
            cell += (users.astype(np.intp) * k)[:, None]
            match = profiles.reshape(-1).take(cell)
        match *= np.float32(k)                     # interest_match, in its own dtype
        f = match.astype(np.float64)
        if boosted:
            f[:, :boosted] *= boost
        if post_factor is not None:
            f *= np.append(post_factor, 1.0).take(idx)
        values = np.append(self.values, 0.0).take(idx)
        values *= f
        return np.where(ok, values, -np.inf)


#: Cold-start prior (the default scenario's base rates) used until a window holds 100 views.
DEFAULT_RATES = np.array([0.3, 0.06, 0.01, 0.008, 0.004])


class InterestRetrieval:
    """Mixin for rankers: an :class:`InterestSampler` over the platform's interest profiles, built on first use."""

    _interest_sampler: InterestSampler | None = None

    def interest_sampler(self, view: PlatformView) -> InterestSampler:
        if self._interest_sampler is None:
            self._interest_sampler = InterestSampler(view.interest_estimate)
        return self._interest_sampler


def weight_vector(settings: RankerConfig) -> np.ndarray:
    """Score weights by engagement type (watch, like, comment, share, follow). Scores are elementwise products
    and sums, never BLAS calls, so results do not depend on BLAS threading."""
    return np.array([settings.weight_watch, settings.weight_like, settings.weight_comment, settings.weight_share,
                     0.0])


def interest_match(view: PlatformView, users: np.ndarray, posts: np.ndarray) -> np.ndarray:
    """The platform's estimate of each user's interest in each post's topic, relative to a uniform profile."""
    safe = np.where(posts == EMPTY, 0, posts)
    topic = view.post_topic[safe] if view.n_posts else np.zeros(posts.shape, np.int16)
    k = view.topics
    flat = view.interest_estimate.reshape(-1)
    return flat[users[:, None].astype(np.int64) * k + topic] * np.float32(k)


def count_by_post(ids: np.ndarray) -> tuple[int, np.ndarray]:
    """(lo, counts) with counts[i] = occurrences of post lo + i; cost bounded by the span of ids."""
    if ids.size == 0:
        return 0, np.zeros(0, dtype=np.int64)
    lo = int(ids.min())
    return lo, np.bincount(ids - lo)
