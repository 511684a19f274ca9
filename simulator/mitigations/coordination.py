"""Coordination detection (spec §4): accounts that engage the same posts within minutes of each other, again and
again, are linked in a sparse co-engagement graph; large connected groups are flagged and demoted or removed.

Pairs are built per post in time order with a cap: each engagement is paired with at most ``neighbours`` of the
next engagements of the same post that fall within ``pair_window_minutes``, so a post with k engagers yields at
most k × neighbours pairs, never k². Two accounts are linked when they were paired on at least
``min_shared_posts`` distinct posts within the window; accounts with fewer than ``min_links`` links are pruned
(repeatedly: the ``min_links``-core), and groups are the connected components of what remains
(:func:`scipy.sparse.csgraph.connected_components`). Memory and time grow with the number of engagement events in
the window, never with the square of the number of accounts.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .. import kernels
from ..kernel_threads import map_blocks
from .base import Evidence, StageContext, Verdict


class CoEngagementLog:
    """Active engagements (account, post, time) of the last ``window_minutes``, in one buffer per column: each
    step's are appended at the end, the steps that left the window dropped from the front (the live part moves back
    to the front, or into a larger buffer, only when the end is reached), so the window is read without copying."""

    def __init__(self, window_minutes: float):
        self.window = window_minutes
        self._columns = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))   # account, post, time
        self._start = self._end = 0
        self._steps: deque[tuple[float, int]] = deque()   # (step's time, where its events end), oldest first

    def add(self, evidence: Evidence) -> None:
        keep = np.flatnonzero(evidence.active())
        if keep.size:
            self._make_room(keep.size)
            stop = self._end + keep.size
            for column, source in zip(self._columns, (evidence.account, evidence.post, evidence.time)):
                np.take(source, keep, out=column[self._end: stop], mode="clip")   # (unbuffered: keep is in range)
            self._end = stop
            self._steps.append((evidence.now, stop))
        horizon = evidence.now - self.window
        while self._steps and self._steps[0][0] <= horizon:
            self._start = self._steps.popleft()[1]

    def _make_room(self, k: int) -> None:
        capacity, live = self._columns[0].size, self._end - self._start
        if self._end + k <= capacity:
            return
        if live + k > capacity // 2:   # a larger buffer
            capacity = max(1024, 2 * (live + k))
            self._columns = tuple(np.concatenate([c[self._start: self._end], np.zeros(capacity - live, c.dtype)])
                                  for c in self._columns)
        else:   # the live part moves to the front (clear of where it is now: it starts past capacity / 2)
            for c in self._columns:
                c[:live] = c[self._start: self._end]
        self._steps = deque((now, end - self._start) for now, end in self._steps)
        self._start, self._end = 0, live

    def events(self, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The window's events (views of the buffers when no account in it was removed), in the order added."""
        acc, post, t = (c[self._start: self._end] for c in self._columns)
        ok = ~removed[acc]
        if ok.all():
            return acc, post, t
        return acc[ok], post[ok], t[ok]


def co_engagement_links(acc: np.ndarray, post: np.ndarray, t: np.ndarray, n_accounts: int, pair_window: float,
                        neighbours: int, min_shared_posts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linked account pairs (a < b) and the number of distinct posts each pair co-engaged within ``pair_window``.

    Each (account, post) counts once (its first engagement). Engagements of a post are ordered by time (to 1/8
    minute; the pair window is compared at that resolution), ties broken by a fixed hash of (account, post) so that
    accounts with nearby row numbers are not systematically paired, then by the order of the events. Int64 sorts
    (the window's events; each kernel thread's pairs, merged by ranges of values) and compiled passes; no
    per-account loop."""
    if acc.size < 2:
        e = np.zeros(0, np.int64)
        return e, e, e
    # Order by post, time (1/8 min), hash, then event: one sort of unique packed keys (the event numbered within a
    # bucket of post ids when its index does not fit in 63 bits); else (one post with too many events in the window)
    # one composite key (post < 2^27, time < 2^23 eighths ≈ 2 years) argsorted, equal keys put back in event order.
    # The sorted keys give back each event's post and time (to 1/8 minute), so only accounts are gathered.
    acc, post, t = (np.ascontiguousarray(x, dtype=d) for x, d in ((acc, np.int64), (post, np.int64), (t, np.float64)))
    packed, *layout = kernels.co_engagement_packed_keys(acc, post, t, int(n_accounts), 63)
    if packed.size:
        packed.sort()   # in place: the array is this call's own
        acc, post, t = kernels.co_engagement_unpacked(packed, acc, *layout)
    elif post.max() < 1 << 27:
        composite = kernels.co_engagement_order_keys(acc, post, t, int(n_accounts))
        order = np.argsort(composite)   # equal keys put in event order by the kernel
        acc, post, t = kernels.co_engagement_sorted(composite, order, acc)
    else:   # post ids beyond the composite key's 27 bits (a very large, long run): the same order, three keys
        # (lexsort is stable)
        tq = np.minimum(np.floor(t * 8.0).astype(np.int64), (1 << 23) - 1)
        tie = (kernels.mix64_each(post.astype(np.int64) * np.int64(n_accounts) + acc.astype(np.int64))
               & np.uint64(0x1FFF)).astype(np.int64)
        order = np.lexsort((tie, tq, post))
        acc, post, t = acc[order], post[order], tq[order]
    # The first event of each (account, post), each paired with its next `neighbours` on the post within the
    # window (a compiled pass over blocks of whole posts, pairs as one int64 each), then sorted.
    acc, post, t = (np.ascontiguousarray(x, dtype=np.int64) for x in (acc, post, t))
    parts = co_engagement_pair_codes(acc, post, t, int(n_accounts), pair_window * 8.0, int(neighbours))
    # Each distinct pair and how many posts it co-engaged (one pass over the sorted pairs, or over the blocks'
    # sorted pairs merged); the strong ones kept.
    return strong_pairs_of_parts(parts, int(n_accounts), int(min_shared_posts))


#: The fewest sorted events a kernel thread pairs (:func:`co_engagement_pair_codes`).
PAIRING_EVENTS_PER_THREAD = 1 << 16


def co_engagement_pair_codes(acc: np.ndarray, post: np.ndarray, tq: np.ndarray, n_accounts: int,
                             pair_window: float, neighbours: int) -> list[np.ndarray]:
    """:func:`kernels.co_engagement_pairs` of the events sorted by post, computed on blocks of whole posts on the
    kernel threads (a post's pairs never leave it), each block's pairs sorted on its thread: one sorted array of
    pair codes per block, in block order."""
    n = acc.size

    def pairs_of(a: int, b: int) -> np.ndarray:
        # The block [a, b) of the events, its ends moved back to the first event of their posts.
        lo = int(np.searchsorted(post, post[a], "left")) if a < n else n
        hi = int(np.searchsorted(post, post[b], "left")) if b < n else n
        pairs = kernels.co_engagement_pairs(acc[lo:hi], post[lo:hi], tq[lo:hi], n_accounts, pair_window, neighbours)
        pairs.sort()   # (NumPy's sort releases the GIL: the blocks sort at once)
        return pairs

    return map_blocks(n, pairs_of, PAIRING_EVENTS_PER_THREAD)


def strong_pairs_of_parts(parts: list[np.ndarray], n_accounts: int, min_shared: int
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`kernels.strong_pairs` of the sorted union of the sorted pair-code arrays ``parts``: the codes are cut
    into as many ranges of values as there are parts (at the largest part's quantiles, so a code's copies all fall
    in one range), and each range's slices of the parts are merged and counted on a kernel thread; the ranges'
    results are joined in order."""
    if len(parts) == 1:
        return kernels.strong_pairs(parts[0], n_accounts, min_shared)
    largest = max(parts, key=lambda p: p.size)
    cuts = [largest[largest.size * r // len(parts)] for r in range(1, len(parts))] if largest.size else []
    edges = [[0] + [int(np.searchsorted(p, c, "left")) for c in cuts] + [p.size] for p in parts]

    def count_ranges(a: int, b: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        out = []
        for r in range(a, b):
            merged = parts[0][edges[0][r]: edges[0][r + 1]]
            for p, e in zip(parts[1:], edges[1:]):
                merged = kernels.merge_sorted(merged, p[e[r]: e[r + 1]])
            out.append(kernels.strong_pairs(merged, n_accounts, min_shared))
        return out

    found = [t for block in map_blocks(len(cuts) + 1, count_ranges, 1) for t in block]
    return tuple(np.concatenate(column) for column in zip(*found))


def coordinated_groups(a: np.ndarray, b: np.ndarray, n_accounts: int, min_cluster_size: int, min_links: int = 1
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(accounts, size of their group) for every account in a connected group of at least ``min_cluster_size``
    accounts of the ``min_links``-core of the links (accounts with fewer than ``min_links`` links to other
    remaining accounts are pruned, repeatedly: a chain of chance pairs is not a coordinated group)."""
    while a.size:
        deg = np.bincount(np.concatenate([a, b]), minlength=n_accounts)
        keep = (deg[a] >= min_links) & (deg[b] >= min_links)
        if keep.all():
            break
        a, b = a[keep], b[keep]
    if a.size == 0:
        e = np.zeros(0, np.int64)
        return e, e
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = nodes.size
    ia, ib = inv[: a.size], inv[a.size:]
    graph = sp.csr_matrix((np.ones(a.size, np.int8), (ia, ib)), shape=(k, k))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    big = sizes[labels] >= min_cluster_size
    return nodes[big], sizes[labels][big]


class Cadence:
    """Due every ``hours`` hours, the first time one period after the first review (the stage's start)."""

    def __init__(self, hours: float):
        self.period = hours * 60.0
        self.next_run = None

    def due(self, now: float) -> bool:
        if self.next_run is None:
            self.next_run = now + self.period - 1e-9
        if now < self.next_run:
            return False
        self.next_run += self.period
        return True


class CoordinationDetection:
    """Every ``every_hours`` (from ``start_day``), links accounts that co-engaged posts within
    ``pair_window_minutes`` on at least ``min_shared_posts`` posts in the last ``window_hours`` and flags groups of
    at least ``min_cluster_size``; ``action`` then demotes, removes or only flags them."""

    def __init__(self, context: StageContext):
        self.context = context
        self.s = context.settings
        self.log = CoEngagementLog(self.s.window_hours * 60.0)
        self.cadence = Cadence(self.s.every_hours)

    def review(self, evidence: Evidence, view, rng: np.random.Generator) -> Verdict | None:
        self.log.add(evidence)
        if not self.cadence.due(evidence.now):
            return None
        accounts, sizes = self.detect(view)
        if accounts.size == 0:
            return None
        reasons = np.array([f"coordinated group of {int(z)} accounts (co-engaged ≥{self.s.min_shared_posts} posts "
                            f"within {self.s.pair_window_minutes:g} min)" for z in sizes], dtype=object)
        verdict = Verdict(flag=accounts, reason=reasons)
        if self.s.action == "demote":
            verdict.demote = accounts
        elif self.s.action == "remove":
            verdict.remove = accounts
        return verdict

    def detect(self, view) -> tuple[np.ndarray, np.ndarray]:
        s = self.s
        acc, post, t = self.log.events(view.account_removed)
        a, b, _ = co_engagement_links(acc, post, t, view.n_accounts, s.pair_window_minutes, s.neighbours,
                                      s.min_shared_posts)
        return coordinated_groups(a, b, view.n_accounts, s.min_cluster_size, s.min_links)
