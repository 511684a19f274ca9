"""Compiled (Numba) kernels of the hot path: one pass per feed or event, no temporaries.

Each kernel computes exactly what its NumPy definition computes — the same float operations in the same order, on
the same random draws — so a world's trajectory is bit for bit the one the NumPy code gives. The definitions are
named in each docstring; where the simulator no longer runs one (it runs the kernel), it is kept in
``tests/test_kernels.py``, which compares kernel and definition on random inputs. The kernels change speed, never
results: the per-step cost of a feed no longer depends on how many NumPy calls it takes (which dominated small
worlds) nor on the temporaries streamed through memory (which dominated large ones).

Kernels are compiled once per machine and cached on disk next to this file (``cache=True``). :func:`load` loads
them for the argument types the simulator passes (:data:`HOT_PATH_SIGNATURES`, about 0.3 s from the cache); a world
does this when it is built, so no run pays for it in its first step. Floating point is strict IEEE (no
``fastmath``): results do not depend on the machine's vector width. :func:`prefetch` only hints the CPU's caches.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .kernel_threads import run_blocks

EMPTY = -1
FOLLOWED, DISCOVERY, ENGAGEMENT = 0, 1, 2

_JIT = dict(cache=True, nogil=True, boundscheck=False)


def blocks_jit() -> dict:
    """The ``*_blocks`` kernels' options: their ``prange`` of blocks runs on Numba's threads
    (:mod:`simulator.kernel_threads`), and nothing else does. Numba would otherwise turn array expressions
    (``np.zeros``, whole-array sums) into parallel regions of their own, run on every thread even when the call
    asks for one block. (A fresh dict each time: Numba consumes it.)"""
    return dict(_JIT, parallel=dict(prange=True, comprehension=False, reduction=False, inplace_binop=False,
                                    setitem=False, numpy=False, stencil=False, fusion=False))


def _prefetch_codegen(context, builder, signature, args):
    array_type = signature.args[0]
    a = context.make_array(array_type)(context, builder, args[0])
    ptr = cgutils.get_item_pointer(context, builder, array_type, a, list(args[1:]), wraparound=False)
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0")
    builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    return context.get_dummy_value()


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to start loading ``array[index]`` into its caches (LLVM's prefetch: read, high locality); no
    effect on results. Lets a loop overlap the cache misses of rows a few iterations ahead."""
    return types.void(array, index), _prefetch_codegen


@intrinsic
def prefetch_cell(typingctx, array, row, col):
    """:func:`prefetch` of ``array[row, col]`` (a 2-D array)."""
    def codegen(context, builder, signature, args):
        sig = types.void(signature.args[0], types.intp, types.intp)
        return _prefetch_codegen(context, builder, sig, list(args))

    return types.void(array, row, col), codegen


@njit(inline="always")
def prefetch_row(array, row):
    """:func:`prefetch` of the first and the last cell of ``array[row]`` (a 2-D C-ordered array): a row of 64 bytes
    or less spans at most these two cache lines (rows start anywhere in a line)."""
    prefetch_cell(array, row, 0)
    prefetch_cell(array, row, array.shape[1] - 1)


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of a uint64 (LLVM's ctpop: one instruction on current CPUs)."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]), "llvm.ctpop.i64")
        return builder.call(fn, [args[0]])

    return types.uint64(types.uint64), codegen


#: Users ahead of the current one whose follow rows are prefetched (their row pointers twice as far ahead).
PREFETCH_AHEAD = 16


@njit(**_JIT)
def sample_by_interest(users, prob, alias, alias_u, explore_u, segment_u, explore, width, start, cum, guide, scale,
                       pool, draws):
    """The draws of :meth:`InterestSampler.draw`: for each (user, draw), an alias-table topic (or the whole pool
    when the draw explores), then the post whose cumulative-weight segment holds the uniform.

    ``prob`` (float32) and ``alias`` (int16) are the (audience, topics) alias tables, read at each of ``users``'
    rows (prefetched a few users ahead); the three uniforms arrays
    hold ``len(users) * draws`` values in row-major (user, draw) order; ``width``/``start`` (2·topics) give each
    topic's segment of ``cum`` (topics ≥ ``k`` stand for an exploring draw); ``pool`` the post ids in ``cum``
    order; ``guide`` (from :func:`guide_table`, with its ``scale``) makes each search O(1) on average. Returns a
    (len(users), draws) int32 matrix."""
    n = users.size
    k = prob.shape[1]
    kf = np.float32(k)
    out = np.empty((n, draws), dtype=np.int32)
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            prefetch_row(prob, users[i + PREFETCH_AHEAD])
            prefetch_row(alias, users[i + PREFETCH_AHEAD])
        row = users[i]
        for d in range(draws):
            c = i * draws + d
            u = alias_u[c] * kf                     # float32, as NumPy computes it
            col = int(u)
            if col > k - 1:
                col = k - 1
            coin = u - np.float32(col)
            a = int(alias[row, col])                # both read, then selected: no unpredictable branch
            t = col if coin < prob[row, col] else a
            t += k * (explore_u[c] < explore)
            x = segment_u[c] * width[t]
            x += start[t]
            out[i, d] = pool[guided_search(cum, guide, scale, x)]
    return out


#: Guide-table bins per post of an interest-sampling pool, and the most bins (4 MiB of int32) a finer table gets.
GUIDE_BINS_PER_POST, GUIDE_MAX_BINS = 8, 1 << 20


@njit(**_JIT)
def interest_pool(pool, weights, post_topic, k):
    """The pool of :meth:`InterestSampler.draw` in one pass: the posts of positive weight grouped by topic (a
    stable counting sort), their cumulative weights, each topic's segment of them, and the guide table.

    Returns (posts int32, cum, width, start, guide, scale): ``width``/``start`` have ``2 k`` entries, topic ``t``'s
    segment (or the whole pool when the topic has no weight) then, at ``k + t``, the whole pool (an exploring draw);
    ``guide`` (int32) and ``scale`` are a guide table of ``cum`` like :func:`guide_table`'s, with
    :data:`GUIDE_BINS_PER_POST` bins per post (at most :data:`GUIDE_MAX_BINS`, at least 2 per post): a finer guide
    leaves fewer steps to each search (the answer does not depend on it). Sums run in NumPy's order: ``cumsum`` and weighted
    ``bincount`` add sequentially, so the values are those of the NumPy steps in ``draw``'s docstring."""
    counts = np.zeros(k, dtype=np.int64)
    m = 0
    for i in range(pool.size):
        if weights[i] > 0:
            counts[post_topic[pool[i]]] += 1
            m += 1
    at = np.empty(k, dtype=np.int64)
    acc_n = 0
    for t in range(k):
        at[t] = acc_n
        acc_n += counts[t]
    posts = np.empty(m, dtype=np.int32)
    sorted_w = np.empty(m, dtype=np.float64)
    for i in range(pool.size):
        if weights[i] > 0:
            t = post_topic[pool[i]]
            posts[at[t]] = pool[i]
            sorted_w[at[t]] = weights[i]
            at[t] += 1
    cum = np.empty(m, dtype=np.float64)
    t_total = np.zeros(k, dtype=np.float64)
    acc = 0.0
    j = 0
    for t in range(k):
        for _ in range(counts[t]):
            acc += sorted_w[j]
            cum[j] = acc
            t_total[t] += sorted_w[j]
            j += 1
    width = np.empty(2 * k, dtype=np.float64)
    start = np.zeros(2 * k, dtype=np.float64)
    total = cum[m - 1] if m > 0 else 0.0
    t_start = 0.0
    for t in range(k):
        themed = t_total[t] > 0
        width[t] = t_total[t] if themed else total
        start[t] = t_start if themed else 0.0
        width[k + t] = total
        t_start += t_total[t]
    bins = max(2 * m, min(GUIDE_BINS_PER_POST * m, GUIDE_MAX_BINS))
    guide = np.empty(bins, dtype=np.int32)
    step = total / bins if bins > 0 else 0.0
    j = 0
    for b in range(bins):
        edge = np.float64(b) * step
        while j < m and cum[j] <= edge:
            j += 1
        guide[b] = j
    scale = bins / total if bins > 0 else 0.0
    return posts, cum, width, start, guide, scale


@njit(**_JIT)
def vose_alias(q):
    """Walker/Vose alias tables of each row of ``q`` (probabilities × row length), the loop of
    :func:`simulator.ranking.base.alias_tables`: repeatedly pair the first unfinished column below 1 with the first
    unfinished column at or above 1. Returns (prob float32, alias int16); ``q`` is consumed."""
    n, k = q.shape
    prob = np.ones((n, k), dtype=np.float32)
    alias = np.empty((n, k), dtype=np.int16)
    done = np.zeros(k, dtype=np.bool_)
    for r in range(n):
        for j in range(k):
            alias[r, j] = j
            done[j] = False
        for _ in range(k - 1):
            si = -1
            li = -1
            for j in range(k):
                if not done[j]:
                    if q[r, j] < 1.0:
                        if si < 0:
                            si = j
                    elif li < 0:
                        li = j
            if si < 0 or li < 0:
                break
            prob[r, si] = np.float32(q[r, si])
            alias[r, si] = li
            done[si] = True
            q[r, li] -= 1.0 - q[r, si]
    return prob, alias


@njit(**_JIT)
def guided_search(cum, guide, scale, x):
    """The first j with cum[j] > x (``searchsorted(cum, x, "right")``), at most len(cum) - 1: from the guide's
    entry, a step back in the rare case where rounding put x in the next bin, then up (half a step on average)."""
    size = cum.size
    b = int(x * scale)
    if b > guide.size - 1:
        b = guide.size - 1
    j = guide[b]
    while j > 0 and cum[j - 1] > x:
        j -= 1
    while j < size and cum[j] <= x:
        j += 1
    return j if j < size else size - 1


@njit(**_JIT)
def guided_search_many(cum, guide, scale, xs):
    """:func:`guided_search` for each of ``xs``."""
    out = np.empty(xs.size, dtype=np.int64)
    for i in range(xs.size):
        out[i] = guided_search(cum, guide, scale, xs[i])
    return out


def guide_table(cum: np.ndarray) -> tuple[np.ndarray, float]:
    """A guide table for searches in the increasing ``cum`` (Chen & Asau): entry b is the first index whose value
    exceeds the left edge of bin b of ``2 · len(cum)`` equal bins, a lower bound of every answer in that bin."""
    bins = 2 * cum.size
    total = cum[-1]
    return np.searchsorted(cum, np.arange(bins) * (total / bins), "right"), bins / total


@njit(**_JIT)
def _holds(row, m, p):
    """Whether ``p`` is among the first ``m`` entries of ``row``."""
    for q in range(m):
        if row[q] == p:
            return True
    return False


@njit(**_JIT)
def assemble_feeds(users, profiles, inn, oon, test, values, window_topic, lo, kf, boost, post_factor,
                   has_post_factor, keep, feed_size):
    """Feeds from each user's candidates: the work of ``dedupe_rows`` → ``PostScores.with_interest`` → ``top_k``
    → (with test posts) ``dedupe_ahead`` → ``compact_rows``, one row at a time.

    ``profiles`` holds the interest profiles, read at each of ``users``' rows (prefetched a few users ahead).
    Candidates are ``inn`` (in-network, FOLLOWED, score × ``boost``) then ``oon`` (ENGAGEMENT); a repeat of a post
    is dropped. Score = window value × interest match (× post factor); a post outside the window (or EMPTY) scores
    -inf. The ``keep`` best, ties by column as in ``top_k``, follow the user's ``test`` posts (DISCOVERY); repeats
    of a test post are dropped, EMPTY slots moved last, ``feed_size`` kept. Returns (posts, routes).
    """
    n = users.size
    wi, wo, ts = inn.shape[1], oon.shape[1], test.shape[1]
    c = wi + wo
    size = values.size
    posts_out = np.full((n, feed_size), EMPTY, dtype=np.int32)
    routes_out = np.zeros((n, feed_size), dtype=np.int8)
    kk = keep if keep < c else c
    cand = np.empty(c, dtype=np.int64)
    score = np.empty(c, dtype=np.float64)
    key = np.empty(c, dtype=np.int64)
    key_col = np.empty(c, dtype=np.int64)
    top = np.empty(c, dtype=np.int64)
    fbuf = np.empty(1, dtype=np.float64)
    ibuf = fbuf.view(np.int64)
    seen_at = np.full(size, -1, dtype=np.int32)   # the last row (of this call) that had each window post
    row_posts = np.empty(ts + kk, dtype=np.int32)
    row_routes = np.empty(ts + kk, dtype=np.int8)
    ninf = -np.inf
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            prefetch_row(profiles, users[i + PREFETCH_AHEAD])
        u = users[i]
        # Scores first, without branches (the loads of a row overlap); -inf outside the window (EMPTY included).
        for j in range(wi):
            cand[j] = inn[i, j]
        for j in range(wo):
            cand[wi + j] = oon[i, j]
        for j in range(c if size > 0 else 0):
            rel = cand[j] - lo
            ok = (rel >= 0) & (rel < size)
            rc = rel if ok else 0
            f = np.float64(profiles[u, window_topic[rc]] * kf)
            if j < wi:
                f *= boost
            if has_post_factor:
                f *= post_factor[rc]
            sc = values[rc] * f
            score[j] = sc if ok else ninf
        # Repeats dropped (the first slot kept); each finite candidate becomes an int64 key, -score's
        # order-preserving bits (keys in column order).
        m_keys = 0
        for j in range(c if size > 0 else 0):
            sc = score[j]
            if sc == ninf:
                continue
            rel = cand[j] - lo      # in the window: finite scores are
            last = seen_at[rel]
            seen_at[rel] = i
            if last == i:
                continue
            neg = 0.0 - sc                   # +0.0 for either zero
            fbuf[0] = neg
            bits = ibuf[0]
            bits ^= (bits >> 63) & 0x7FFFFFFFFFFFFFFF
            key[m_keys] = bits
            key_col[m_keys] = j
            m_keys += 1
        # Each key's rank among the row's keys, an equal key ranked by column (a permutation); the best kk kept.
        ranked = m_keys if m_keys < kk else kk
        for a in range(m_keys):
            ka = key[a]
            r = 0
            for q in range(m_keys):
                kq = key[q]
                r += (kq < ka) | ((kq == ka) & (q < a))
            if r < ranked:
                top[r] = key_col[a]
        # Test posts first (a repeat of an earlier one dropped), then the ranked ones not already shown.
        m = 0
        for j in range(ts):
            p = test[i, j]
            if p != EMPTY and not _holds(row_posts, m, p):
                row_posts[m] = p
                row_routes[m] = DISCOVERY
                m += 1
        m_test = m
        for q in range(ranked):
            col = top[q]
            p = cand[col]
            if not _holds(row_posts, m_test, p):
                row_posts[m] = p
                row_routes[m] = FOLLOWED if col < wi else ENGAGEMENT
                m += 1
        for j in range(min(m, feed_size)):
            posts_out[i, j] = row_posts[j]
            routes_out[i, j] = row_routes[j]
    return posts_out, routes_out


@njit(**_JIT)
def author_groups(keys, recent, post_created, n_accounts):
    """The recent posts grouped by author for :func:`newest_followed`, from ``keys`` = ``author << 32 | i`` sorted
    (``i`` indexes ``recent``, so each author's posts stay in creation order).

    Returns (``by_author``: the post ids in that order, int32; their creation times; ``posting``: a bitset of the
    authors with posts, uint64 words; ``word_rank``: for each word, how many authors with posts the earlier words
    hold; ``group_start``: where the groups of the authors with posts start, in author order, and where the last
    ends). The group of author ``a`` (whose bit is set) is number ``word_rank[a >> 6]`` + the set bits below ``a``'s
    in its word: every array a lookup touches stays small enough for the CPU's caches, whatever the accounts."""
    m = keys.size
    by_author = np.empty(m, dtype=np.int32)
    created = np.empty(m, dtype=np.float64)
    n_words = (n_accounts + 63) // 64
    posting = np.zeros(n_words, dtype=np.uint64)
    group_start = np.empty(m + 1, dtype=np.int32)
    prev = -1
    g = 0
    for q in range(m):
        a = keys[q] >> 32
        p = recent[keys[q] & 0xFFFFFFFF]
        by_author[q] = p
        created[q] = post_created[p]
        if a != prev:
            posting[a >> 6] |= np.uint64(1) << np.uint64(a & 63)
            group_start[g] = q
            g += 1
            prev = a
    group_start[g] = m
    word_rank = np.empty(n_words, dtype=np.int32)
    acc = 0
    for w in range(n_words):
        word_rank[w] = acc
        acc += popcount(posting[w])
    return by_author, created, posting, word_rank, group_start[:g + 1].copy()


@njit(**_JIT)
def newest_followed(indptr, indices, users, since, posting, word_rank, group_start, by_author, created, limit):
    """The ``limit`` newest posts by the accounts each user follows, created at or after ``since`` of the user
    (newest first, ties by post id): the work of :func:`simulator.ranking.base.in_network`.

    ``indptr``/``indices`` are the follow graph's canonical CSR arrays (sorted, no repeated edge); ``posting``,
    ``word_rank``, ``group_start``, ``by_author`` and ``created`` come from :func:`author_groups`. Returns (posts,
    times, counts): EMPTY/-inf padded (len(users), limit) matrices and each row's number of posts."""
    n = users.size
    posts = np.full((n, limit), EMPTY, dtype=np.int32)
    times = np.full((n, limit), -np.inf)
    counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        if i + 2 * PREFETCH_AHEAD < n:
            prefetch(indptr, users[i + 2 * PREFETCH_AHEAD])
        if i + PREFETCH_AHEAD < n:   # the follow row's first three cache lines (30 follows on average)
            row_start = indptr[users[i + PREFETCH_AHEAD]]
            prefetch(indices, row_start)
            prefetch(indices, row_start + 16)
            prefetch(indices, row_start + 32)
        u = users[i]
        t_min = since[i]
        m = 0
        for e in range(indptr[u], indptr[u + 1]):
            a = indices[e]
            word = posting[a >> 6]
            bit = np.uint64(a & 63)
            if not (word >> bit) & np.uint64(1):
                continue
            g = word_rank[a >> 6] + np.int64(popcount(word & ((np.uint64(1) << bit) - np.uint64(1))))
            lo = group_start[g]
            j = group_start[g + 1] - 1
            # The author's posts, newest first, while they are new to the user and can still enter the feed.
            while j >= lo:
                c = created[j]
                if c < t_min:
                    break
                p = by_author[j]
                if m == limit:
                    wc = times[i, m - 1]
                    if c < wc:
                        break
                    if c == wc and p > posts[i, m - 1]:
                        j -= 1
                        continue
                    q = m - 1
                else:
                    q = m
                    m += 1
                while q > 0 and (times[i, q - 1] < c or (times[i, q - 1] == c and posts[i, q - 1] > p)):
                    times[i, q] = times[i, q - 1]
                    posts[i, q] = posts[i, q - 1]
                    q -= 1
                times[i, q] = c
                posts[i, q] = p
                j -= 1
        counts[i] = m
    return posts, times, counts


@njit(**_JIT)
def follower_counts(indices, n_accounts):
    """How many times each account ``0 .. n_accounts - 1`` appears in ``indices`` (a CSR graph's columns: its
    followers): ``numpy.bincount(indices, minlength=n_accounts)`` without converting the int32 indices first."""
    counts = np.zeros(n_accounts, dtype=np.int64)
    for e in range(indices.size):
        counts[indices[e]] += 1
    return counts


@njit(**_JIT)
def csr_union(indptr_a, indices_a, indptr_b, indices_b):
    """The union of two graphs held as canonical CSR arrays (each row's columns sorted, none repeated), as canonical
    CSR arrays (indptr, indices; int32): each row's two sorted column lists merged, a column in both kept once. Runs
    of rows without edges in ``b`` (most rows, when ``b`` is a day's new follows) are copied as one block."""
    n = indptr_a.size - 1
    repeated = 0   # columns in both: counted first, so the result is allocated at its size
    for r in range(n):
        j, j_end = indptr_b[r], indptr_b[r + 1]
        if j == j_end:
            continue
        i, i_end = indptr_a[r], indptr_a[r + 1]
        while i < i_end and j < j_end:
            a, b = indices_a[i], indices_b[j]
            repeated += a == b
            i += a <= b
            j += b <= a
    indptr = np.empty(n + 1, dtype=np.int32)
    indices = np.empty(indices_a.size + indices_b.size - repeated, dtype=np.int32)
    indptr[0] = 0
    m = 0
    done = 0   # rows before this one are written
    for r in range(n + 1):
        if r < n and indptr_b[r] == indptr_b[r + 1]:
            continue
        # Rows done .. r - 1 have no new edge: one block copy, their row pointers shifted.
        lo, hi = indptr_a[done], indptr_a[r]
        indices[m: m + hi - lo] = indices_a[lo: hi]
        shift = m - lo
        for q in range(done, r):
            indptr[q + 1] = indptr_a[q + 1] + shift
        m += hi - lo
        if r == n:
            break
        i, i_end = indptr_a[r], indptr_a[r + 1]
        j, j_end = indptr_b[r], indptr_b[r + 1]
        while i < i_end and j < j_end:
            a, b = indices_a[i], indices_b[j]
            if a <= b:
                indices[m] = a
                i += 1
                j += a == b
            else:
                indices[m] = b
                j += 1
            m += 1
        while i < i_end:
            indices[m] = indices_a[i]
            i += 1
            m += 1
        while j < j_end:
            indices[m] = indices_b[j]
            j += 1
            m += 1
        indptr[r + 1] = m
        done = r + 1
    return indptr, indices


@njit(**_JIT)
def record_impressions(users, posts, routes, in_o, post_candidate, target, post_author, route_of_account,
                       has_credit, credit, engagement_by_route, impressions_o, reached, candidate_impressions,
                       route_impressions):
    """One step's impressions in the exposure ledger, in place: the work of
    :meth:`simulator.exposure.ExposureLedger.record` (whose docstring gives the definition). Counts the impressions
    served to the audience O per post (``impressions_o``) and per candidate, marks the users reached by the target's
    posts and adds each target impression's attribution (:func:`simulator.exposure.credit_routes`: one row summing
    to 1, rows added in impression order) to ``route_impressions``. Returns (impressions to O, of them the target's).
    """
    nr = route_impressions.size
    acc = np.zeros(nr)
    shares = np.empty(nr)
    n_o = 0
    n_target = 0
    for i in range(posts.size):
        u = users[i]
        if not in_o[u]:
            continue
        p = posts[i]
        n_o += 1
        impressions_o[p] += 1
        c = post_candidate[p]
        if c < 0:
            continue
        candidate_impressions[c] += 1
        if c != target:
            continue
        n_target += 1
        reached[u] = True
        total = 0.0
        if routes[i] == ENGAGEMENT:
            for r in range(nr):
                shares[r] = np.float64(credit[p, r] if has_credit[p] else engagement_by_route[p, r])
                total += shares[r]
        if total > 0:
            for r in range(nr):
                acc[r] += shares[r] / total
        else:   # the author's own route (and an engagement route with no engagement on record)
            own = route_of_account[post_author[p]]
            for r in range(nr):
                acc[r] += 1.0 if r == own else 0.0
    for r in range(nr):
        route_impressions[r] += acc[r]
    return n_o, n_target


@njit(**_JIT)
def _pairwise_block(a, lo, n):
    """NumPy's sum of at most 128 values: eight interleaved partial sums (fewer than 8 values: in order)."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += np.float64(a[i])
        return res
    r0, r1, r2, r3 = np.float64(a[lo]), np.float64(a[lo + 1]), np.float64(a[lo + 2]), np.float64(a[lo + 3])
    r4, r5, r6, r7 = np.float64(a[lo + 4]), np.float64(a[lo + 5]), np.float64(a[lo + 6]), np.float64(a[lo + 7])
    i = 8
    while i < n - n % 8:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += np.float64(a[lo + i])
        i += 1
    return res


@njit(**_JIT)
def pairwise_sum(a, lo, n):
    """``a[lo:lo + n]`` summed as float64 exactly as NumPy sums a contiguous float64 array (``numpy.add.reduce``'s
    pairwise summation): blocks of up to 128 values (:func:`_pairwise_block`), a longer run split in two at a
    multiple of 8 below its middle and the halves' sums added. The recursion runs on an explicit stack (Numba's
    on-disk cache does not keep recursive functions)."""
    if n <= 128:
        return _pairwise_block(a, lo, n)
    seg_lo = np.empty(64, dtype=np.int64)
    seg_n = np.empty(64, dtype=np.int64)
    left = np.empty(64, dtype=np.float64)
    has_left = np.zeros(64, dtype=np.bool_)
    depth = 0
    seg_lo[0] = lo
    seg_n[0] = n
    while True:
        while seg_n[depth] > 128:   # down the left halves to a block
            half = seg_n[depth] // 2
            half -= half % 8
            seg_lo[depth + 1] = seg_lo[depth]
            seg_n[depth + 1] = half
            has_left[depth + 1] = False
            depth += 1
        v = _pairwise_block(a, seg_lo[depth], seg_n[depth])
        while True:   # up: a left half's sum waits for its right half; a right half's completes its parent
            if depth == 0:
                return v
            parent = depth - 1
            if not has_left[parent]:
                left[parent] = v
                has_left[parent] = True
                half = seg_n[parent] // 2
                half -= half % 8
                seg_lo[depth] = seg_lo[parent] + half
                seg_n[depth] = seg_n[parent] - half
                has_left[depth] = False
                break
            v = left[parent] + v
            depth = parent


@njit(**_JIT)
def post_scores(views, engagements, weights, prior_views, default_rates):
    """The window values of :class:`simulator.ranking.base.PostScores`: Σ_e w_e · (engagements_e + prior_views ·
    mean_e) / (views + prior_views), mean_e = the window's engagements_e ÷ its views (``default_rates`` until it
    holds 100 views), in the order and float64 arithmetic of its NumPy definition (``_reference_post_scores`` in
    tests/test_kernels.py): the window's views summed as NumPy sums, each type's engagements added in row order."""
    m = views.size
    nt = engagements.shape[1]
    total = 0.0 + pairwise_sum(views, 0, m)
    prior = np.empty(nt)
    if total >= 100:
        column = np.zeros(nt)
        for i in range(m):
            for j in range(nt):
                column[j] += np.float64(engagements[i, j])
        for j in range(nt):
            prior[j] = prior_views * (column[j] / total)
    else:
        for j in range(nt):
            prior[j] = prior_views * default_rates[j]
    out = np.empty(m)
    for i in range(m):
        acc = (np.float64(engagements[i, 0]) + prior[0]) * weights[0]
        for j in range(1, nt):
            acc += (np.float64(engagements[i, j]) + prior[j]) * weights[j]
        out[i] = acc / (np.float64(views[i]) + prior_views)
    return out


@njit(**_JIT)
def cap_by_quota(draws, quota, served):
    """A copy of the (users, slots) draw matrix with EMPTY in every draw of a post beyond the impressions its batch
    still needs, ``ceil(quota - served)``, counting the post's draws in row-major order (the work of
    ``_reference_cap_by_quota`` in tests/test_kernels.py)."""
    out = draws.copy()
    n, k = draws.shape
    lo = np.iinfo(np.int64).max
    hi = -1
    for i in range(n):
        for j in range(k):
            p = draws[i, j]
            if p != EMPTY:
                lo = min(lo, p)
                hi = max(hi, p)
    if hi < 0:
        return out
    drawn = np.zeros(hi - lo + 1, dtype=np.int64)
    for i in range(n):
        for j in range(k):
            p = draws[i, j]
            if p == EMPTY:
                continue
            if np.float64(drawn[p - lo]) >= np.ceil(quota[p] - served[p]):
                out[i, j] = EMPTY
            drawn[p - lo] += 1
    return out


@njit(**_JIT)
def count_out_of_network(posts, routes, served, followed):
    """``served[p] += 1`` for each feed slot showing post ``p`` by a route other than ``followed`` (float64 counts of
    whole numbers, added one by one: the sums NumPy's per-post counts give)."""
    n, k = posts.shape
    for i in range(n):
        for j in range(k):
            p = posts[i, j]
            if p != EMPTY and routes[i, j] != followed:
                served[p] += 1.0


@njit(**_JIT)
def flatten_feeds(users, posts, routes, session_time):
    """The impressions of a step's feeds as aligned flat arrays, in row-major order of the feed matrices (EMPTY slots
    skipped): (user int64, post int64, route int8, time float64: the session's)."""
    n, k = posts.shape
    m = 0
    for i in range(n):
        for j in range(k):
            m += posts[i, j] != EMPTY
    imp_users = np.empty(m, dtype=np.int64)
    imp_posts = np.empty(m, dtype=np.int64)
    imp_routes = np.empty(m, dtype=np.int8)
    imp_times = np.empty(m, dtype=np.float64)
    q = 0
    for i in range(n):
        for j in range(k):
            p = posts[i, j]
            if p != EMPTY:
                imp_users[q] = users[i]
                imp_posts[q] = p
                imp_routes[q] = routes[i, j]
                imp_times[q] = session_time[i]
                q += 1
    return imp_users, imp_posts, imp_routes, imp_times


@njit(**_JIT)
def for_you_pools(lo, hi, stage, quota, served, retired, post_removed, post_author, account_removed, post_created,
                  now, oon_blocked, account_demoted, held_until):
    """The posts For You may distribute among the recent ids ``lo .. hi - 1``, in id order: (the distributable
    ones — :meth:`PlatformView.distributable` —; the test-batch pool and the graduated pool, each as post ids and the
    impressions their batch still needs, ``max(quota - served, 0)``, 0 for a graduated post whose graduation is held
    — :meth:`PlatformView.graduation_held`). A pool holds the distributable posts still in distribution (stage not
    ``retired``) that may go out of network (:meth:`PlatformView.promotable`); stage 0 is the test batch."""
    m = hi - lo
    dist = np.empty(m, dtype=np.int64)
    test_posts = np.empty(m, dtype=np.int64)
    test_left = np.empty(m, dtype=np.float64)
    grown_posts = np.empty(m, dtype=np.int64)
    grown_left = np.empty(m, dtype=np.float64)
    nd = nt = ng = 0
    for p in range(lo, hi):
        a = post_author[p]
        if post_removed[p] or account_removed[a] or not post_created[p] < now:
            continue
        dist[nd] = p
        nd += 1
        st = stage[p]
        if st == retired or oon_blocked[p] or account_demoted[a]:
            continue
        left = max(quota[p] - served[p], 0.0)
        if st == 0:
            test_posts[nt] = p
            test_left[nt] = left
            nt += 1
        else:
            grown_posts[ng] = p
            grown_left[ng] = 0.0 if held_until[p] > now else left
            ng += 1
    return dist[:nd], test_posts[:nt], test_left[:nt], grown_posts[:ng], grown_left[:ng]


@njit(**_JIT)
def judge_batches(lo, hi, stage, quota, served, retired, max_stage, held_until, now, post_views, post_engagements,
                  weights, views_at_stage, score_at_stage, threshold):
    """For You's judgement of the posts among ids ``lo .. hi - 1`` whose batch is delivered (``served >= quota``,
    still in distribution, graduation not held): the stage's weighted engagement rate — (Σ_e w_e · engagements_e
    now, minus at the stage's start) ÷ (views now, minus at the stage's start), 0 without new views — above
    ``threshold`` graduates the post (stage + 1, at most ``max_stage``; served reset; the stage's start noted),
    otherwise it retires. Updates the arrays in place except ``quota``; returns the graduated ids, whose new quotas
    the caller sets."""
    up = np.empty(hi - lo, dtype=np.int64)
    n_up = 0
    nt = weights.size
    for p in range(lo, hi):
        if stage[p] == retired or not served[p] >= quota[p] or held_until[p] > now:
            continue
        views = np.float64(post_views[p])
        score = -0.0
        for j in range(nt):
            score += np.float64(post_engagements[p, j]) * weights[j]
        d_views = views - views_at_stage[p]
        rate = (score - score_at_stage[p]) / d_views if d_views > 0 else 0.0
        if rate > threshold:
            stage[p] = min(stage[p] + 1, max_stage)
            served[p] = 0.0
            views_at_stage[p] = views
            score_at_stage[p] = score
            up[n_up] = p
            n_up += 1
        else:
            stage[p] = retired
    return up[:n_up].copy()


@njit(**_JIT)
def is_sorted(a):
    """Whether ``a`` is in non-decreasing order."""
    for i in range(1, a.size):
        if a[i] < a[i - 1]:
            return False
    return True


@njit(**_JIT)
def persuasion_pulls(users, candidates, n_cols):
    """For engaged political impressions sorted by user: (each distinct user, their number of such impressions as
    float64, and the (users, n_cols) matrix of the share of them promoting each candidate), as
    :func:`simulator.opinion.persuade` computes them with ``numpy.unique`` and ``bincount``."""
    n = users.size
    m = 0
    for i in range(n):
        m += i == 0 or users[i] != users[i - 1]
    uniq = np.empty(m, dtype=np.int64)
    counts = np.zeros(m, dtype=np.float64)
    pulls = np.zeros((m, n_cols), dtype=np.int64)
    q = -1
    for i in range(n):
        if i == 0 or users[i] != users[i - 1]:
            q += 1
            uniq[q] = users[i]
        counts[q] += 1.0
        pulls[q, candidates[i]] += 1
    share = np.empty((m, n_cols), dtype=np.float64)
    for q in range(m):
        for c in range(n_cols):
            share[q, c] = np.float64(pulls[q, c]) / counts[q]
    return uniq, counts, share


@njit(**_JIT)
def move_support(support, users, counts, persuasion, pulls):
    """``support[u] = (1 - moved) · support[u] + moved · pull`` for each user's row, in place, with
    ``moved = 1 - (1 - persuasion)^count`` by the C library's ``pow`` (the same on every CPU)."""
    n_cols = support.shape[1]
    for q in range(users.size):
        u = users[q]
        moved = 1.0 - math.pow(1.0 - persuasion, counts[q])
        keep = 1.0 - moved
        for c in range(n_cols):
            support[u, c] = keep * support[u, c] + moved * pulls[q, c]


@njit(**_JIT)
def powers(base, exponent):
    """``base[i] ** exponent`` for each entry, by the C library's ``pow`` (as :func:`math.pow`): the same on every
    CPU, where NumPy's vectorised power may differ between CPUs in its last bits."""
    out = np.empty(base.size, dtype=np.float64)
    for i in range(base.size):
        out[i] = math.pow(base[i], exponent)
    return out


@njit(**_JIT)
def half_life_decay(now, created, half_life):
    """``2^(-(now - created) / half_life)`` for each creation time, by the C library's ``exp2`` (as
    :func:`math.exp2`; a compiled scalar ``np.exp2`` calls it): the recency decay of the engagement ranker, the same
    on every CPU. (``math.pow(2.0, x)`` would not do: LLVM turns a compiled ``pow(2, x)`` into ``exp2(x)``, which
    differs from ``pow`` in a few last bits.)"""
    out = np.empty(created.size, dtype=np.float64)
    for i in range(created.size):
        out[i] = np.exp2(-(now - created[i]) / half_life)
    return out


@njit(**_JIT)
def engaged_political(users, posts, types, post_candidate):
    """The impressions that drew engagement (``types`` ≠ 0) on posts promoting a candidate: (their users, the
    candidates), in impression order."""
    n = posts.size
    m = 0
    out_users = np.empty(n, dtype=np.int64)
    out_candidates = np.empty(n, dtype=np.int64)
    for i in range(n):   # written unconditionally, kept by advancing (no unpredictable branch)
        c = post_candidate[posts[i]]
        out_users[m] = users[i]
        out_candidates[m] = c
        m += (types[i] != 0) & (c >= 0)
    return out_users[:m].copy(), out_candidates[:m].copy()


@njit(**_JIT)
def step_events(imp_users, imp_posts, imp_types, imp_times, probe_users, probe_posts, probe_time, acc, acc_posts,
                acc_types, acc_times):
    """One step's plays as aligned arrays (account, post, type mask, time, served): the feed impressions, then the
    probes' impressions (no engagement, at ``probe_time``), then the directed visits (not served)."""
    n1, n2, n3 = imp_posts.size, probe_posts.size, acc_posts.size
    n = n1 + n2 + n3
    account = np.empty(n, dtype=np.int64)
    post = np.empty(n, dtype=np.int64)
    types = np.empty(n, dtype=np.uint8)
    time = np.empty(n, dtype=np.float64)
    served = np.empty(n, dtype=np.bool_)
    for i in range(n1):
        account[i] = imp_users[i]
        post[i] = imp_posts[i]
        types[i] = imp_types[i]
        time[i] = imp_times[i]
        served[i] = True
    for i in range(n2):
        account[n1 + i] = probe_users[i]
        post[n1 + i] = probe_posts[i]
        types[n1 + i] = 0
        time[n1 + i] = probe_time
        served[n1 + i] = True
    for i in range(n3):
        e = n1 + n2 + i
        account[e] = acc[i]
        post[e] = acc_posts[i]
        types[e] = acc_types[i]
        time[e] = acc_times[i]
        served[e] = False
    return account, post, types, time, served


@njit(**_JIT)
def note_graduations(posts, engagement_by_route, route_at_credit, credit, has_credit, post_author, kind,
                     route_of_kind):
    """The work of :func:`simulator.exposure.note_graduations`, in its float32 arithmetic: each post's engagers by
    route since its previous graduation, as shares (their author's route when there were none), become its credit;
    the snapshot moves on."""
    nr = credit.shape[1]
    delta = np.empty(nr, dtype=np.float32)
    floor = np.float32(1e-12)
    for p in posts:
        total = np.float32(-0.0)
        for r in range(nr):
            delta[r] = engagement_by_route[p, r] - route_at_credit[p, r]
            total += delta[r]
        if total > 0:
            denominator = max(total, floor)
            for r in range(nr):
                credit[p, r] = delta[r] / denominator
        else:
            own = route_of_kind[kind[post_author[p]]]
            for r in range(nr):
                credit[p, r] = np.float32(1.0) if r == own else np.float32(0.0)
        for r in range(nr):
            route_at_credit[p, r] = engagement_by_route[p, r]
        has_credit[p] = True


@njit(**_JIT)
def post_slots(post):
    """Compact slots for the posts of a batch of events, numbered in order of first appearance: (the slot of each
    event, the post of each slot). A step's events touch a few of the recent posts: per-slot sums then fit in cache
    where per-post arrays over the span of ids would not."""
    n = post.size
    lo = post.min()
    span = post.max() - lo + 1
    slot_of = np.full(span, -1, dtype=np.int32)
    slot = np.empty(n, dtype=np.int32)
    posts = np.empty(n, dtype=np.int64)
    m = 0
    for e in range(n):
        q = post[e] - lo
        s = slot_of[q]
        if s < 0:
            s = m
            slot_of[q] = m
            posts[m] = post[e]
            m += 1
        slot[e] = s
    return slot, posts[:m]


@njit(**_JIT)
def _add_trusted_sums(posts, v_all, v_early, e_all, e_early, e_served, any_engagement, trusted_views,
                      trusted_first_hour_views, trusted_engagements, trusted_first_hour_engagements,
                      trusted_served_engagements):
    """Add each slot's float64 sums (of :func:`post_slots`' ``posts``) to the platform's float32 columns, once."""
    for q in range(posts.size):
        p = posts[q]
        trusted_views[p] += np.float32(v_all[q])
        trusted_first_hour_views[p] += np.float32(v_early[q])
        if any_engagement:
            for b in range(e_all.shape[1]):
                trusted_engagements[p, b] += np.float32(e_all[q, b])
                trusted_first_hour_engagements[p, b] += np.float32(e_early[q, b])
                trusted_served_engagements[p, b] += np.float32(e_served[q, b])


@njit(**_JIT)
def count_served(post, served, served_views):
    """Count one step's feed impressions in ``served_views`` (int32, per post), in place: the one count a mitigation
    stage reads (the circuit breaker's re-check) that includes the step it reviews."""
    for e in range(post.size):
        if served[e]:
            served_views[post[e]] += 1


@njit(**_JIT)
def count_reviewed(account, post, types, time, served, weights, unit, slot, posts, route_of_account, created,
                   early_minutes, views, engagements, engagement_by_route, trusted_views, trusted_first_hour_views,
                   trusted_engagements, trusted_first_hour_engagements, trusted_served_engagements):
    """Count one step's plays once the mitigation stages have weighed them (``served_views`` is counted before the
    review, :func:`count_served`), in place, in one pass over the events in event order:

    * as they happened: ``views`` (int32, per post), ``engagements`` (int32, per post and type: the mask bits of
      ``types``) and ``engagement_by_route`` (float32, per post and the engager's route, each post's count added
      once);
    * as the platform weighs them (float32 columns): every play and engagement counts its event's weight (``unit``:
      all weights are 1); first-hour columns take the events less than ``early_minutes`` after the post's creation,
      the served column the feed impressions. Each post's (and type's) sum is made in float64 in event order and
      added to its column once, as NumPy's ``bincount`` sums would be.

    ``slot``, ``posts``: :func:`post_slots` of ``post``. Returns (engagements counted, the event rows that carry a
    follow, in order)."""
    n = post.size
    m = posts.size
    nt = engagements.shape[1]
    nr = engagement_by_route.shape[1]
    plays = np.zeros(m, dtype=np.int32)
    eng = np.zeros((m, nt), dtype=np.int32)
    by_route = np.zeros((m, nr), dtype=np.int32)
    v_all = np.zeros(m)
    v_early = np.zeros(m)
    e_all = np.zeros((m, nt))
    e_early = np.zeros((m, nt))
    e_served = np.zeros((m, nt))
    follow_bit = 1 << (nt - 1)   # follow is the last engagement type (content.FOLLOW)
    follows = np.empty(n, dtype=np.int64)
    n_eng = 0
    n_follow = 0
    any_engagement = False
    for e in range(n):
        q = slot[e]
        w = 1.0 if unit else weights[e]
        early = time[e] - created[post[e]] < early_minutes
        plays[q] += 1
        v_all[q] += w
        if early:
            v_early[q] += w
        t = types[e]
        if t == 0:
            continue
        any_engagement = True
        r = route_of_account[account[e]]
        for b in range(nt):
            if t & (1 << b):
                eng[q, b] += 1
                by_route[q, r] += 1
                n_eng += 1
                e_all[q, b] += w
                if early:
                    e_early[q, b] += w
                if served[e]:
                    e_served[q, b] += w
        if t & follow_bit:
            follows[n_follow] = e
            n_follow += 1
    for q in range(m):
        p = posts[q]
        views[p] += plays[q]
        for b in range(nt):
            engagements[p, b] += eng[q, b]
        for r in range(nr):
            if by_route[q, r]:
                engagement_by_route[p, r] += np.float32(by_route[q, r])
    _add_trusted_sums(posts, v_all, v_early, e_all, e_early, e_served, any_engagement, trusted_views,
                      trusted_first_hour_views, trusted_engagements, trusted_first_hour_engagements,
                      trusted_served_engagements)
    return n_eng, follows[:n_follow].copy()


@njit(**_JIT)
def slot_counts(account, post, types, time, served, slot, n_slots, route_of_account, created, early_minutes, n_types,
                n_routes, first_event):
    """The unit-weight counts of a block of a step's events (event ``first_event`` onwards), per slot of
    :func:`post_slots`: (plays, first-hour plays, served plays; engagements by type, first-hour and served ones; the
    engagers' routes; each as int32 per slot), the block's engagement count and its follow events (ascending event
    numbers). Counting only into slots, blocks of events can be counted on several threads and their counts added
    (integers: the order does not matter, :func:`slot_counts_blocks`); :func:`add_play_counts` and
    :func:`add_unit_trusted` then apply them to the post table once."""
    plays = np.zeros(n_slots, dtype=np.int32)
    early_plays = np.zeros(n_slots, dtype=np.int32)
    served_plays = np.zeros(n_slots, dtype=np.int32)
    eng = np.zeros((n_slots, n_types), dtype=np.int32)
    eng_early = np.zeros((n_slots, n_types), dtype=np.int32)
    eng_served = np.zeros((n_slots, n_types), dtype=np.int32)
    by_route = np.zeros((n_slots, n_routes), dtype=np.int32)
    follows = np.empty(post.size, dtype=np.int64)
    n_eng, n_follow = _count_slots(account, post, types, time, served, slot, route_of_account, created, early_minutes,
                                   first_event, plays, early_plays, served_plays, eng, eng_early, eng_served, by_route,
                                   follows)
    return (plays, early_plays, served_plays, eng, eng_early, eng_served, by_route, np.array([n_eng], np.int64),
            follows[:n_follow].copy())


@njit(**_JIT)
def _count_slots(account, post, types, time, served, slot, route_of_account, created, early_minutes, first_event,
                 plays, early_plays, served_plays, eng, eng_early, eng_served, by_route, follows):
    """:func:`slot_counts`' loop, adding into the given (zeroed) per-slot counts and writing the follow events from
    ``follows[0]`` on; returns (engagements, follow events)."""
    n_types = eng.shape[1]
    follow_bit = 1 << (n_types - 1)   # follow is the last engagement type (content.FOLLOW)
    n_eng = 0
    n_follow = 0
    for e in range(post.size):
        q = slot[e]
        early = time[e] - created[post[e]] < early_minutes
        srv = served[e]
        plays[q] += 1
        early_plays[q] += early
        served_plays[q] += srv
        t = types[e]
        if t == 0:
            continue
        r = route_of_account[account[e]]
        for b in range(n_types):
            if t & (1 << b):
                eng[q, b] += 1
                by_route[q, r] += 1
                n_eng += 1
                if early:
                    eng_early[q, b] += 1
                if srv:
                    eng_served[q, b] += 1
        if t & follow_bit:
            follows[n_follow] = first_event + e
            n_follow += 1
    return n_eng, n_follow


@njit(**blocks_jit())
def slot_counts_blocks(blocks, account, post, types, time, served, slot, n_slots, route_of_account, created,
                       early_minutes, n_types, n_routes):
    """:func:`slot_counts` of all the step's events (``first_event`` 0), its blocks of events counted on Numba's
    threads and their integer counts added: the same counts, and the follow events in order, for any number of
    blocks."""
    if blocks <= 1:
        return slot_counts(account, post, types, time, served, slot, n_slots, route_of_account, created,
                           early_minutes, n_types, n_routes, 0)
    n = post.size
    plays = np.zeros((blocks, n_slots), dtype=np.int32)
    early_plays = np.zeros((blocks, n_slots), dtype=np.int32)
    served_plays = np.zeros((blocks, n_slots), dtype=np.int32)
    eng = np.zeros((blocks, n_slots, n_types), dtype=np.int32)
    eng_early = np.zeros((blocks, n_slots, n_types), dtype=np.int32)
    eng_served = np.zeros((blocks, n_slots, n_types), dtype=np.int32)
    by_route = np.zeros((blocks, n_slots, n_routes), dtype=np.int32)
    follows = np.empty(n, dtype=np.int64)
    n_eng = np.zeros(blocks, dtype=np.int64)
    n_follow = np.zeros(blocks, dtype=np.int64)
    for b in prange(blocks):
        a, e = n * b // blocks, n * (b + 1) // blocks
        n_eng[b], n_follow[b] = _count_slots(account[a:e], post[a:e], types[a:e], time[a:e], served[a:e], slot[a:e],
                                             route_of_account, created, early_minutes, a, plays[b], early_plays[b],
                                             served_plays[b], eng[b], eng_early[b], eng_served[b], by_route[b],
                                             follows[a:e])
    m = 0
    for b in range(blocks):   # each block's follow events, in event order
        a = n * b // blocks
        for j in range(n_follow[b]):
            follows[m] = follows[a + j]
            m += 1
    for b in range(1, blocks):
        plays[0] += plays[b]
        early_plays[0] += early_plays[b]
        served_plays[0] += served_plays[b]
        eng[0] += eng[b]
        eng_early[0] += eng_early[b]
        eng_served[0] += eng_served[b]
        by_route[0] += by_route[b]
    return (plays[0].copy(), early_plays[0].copy(), served_plays[0].copy(), eng[0].copy(), eng_early[0].copy(),
            eng_served[0].copy(), by_route[0].copy(), np.array([n_eng.sum()], np.int64), follows[:m].copy())


@njit(**_JIT)
def add_unit_trusted(posts, plays, early_plays, eng, eng_early, eng_served, trusted_views, trusted_first_hour_views,
                     trusted_engagements, trusted_first_hour_engagements, trusted_served_engagements):
    """The platform's float32 signals when every weight is 1: each slot's counts (:func:`slot_counts`, summed over
    blocks) added to its post's columns as one float32 addition each, what :func:`count_reviewed` adds with unit
    weights."""
    for q in range(posts.size):
        p = posts[q]
        trusted_views[p] += np.float32(plays[q])
        trusted_first_hour_views[p] += np.float32(early_plays[q])
        for b in range(eng.shape[1]):
            trusted_engagements[p, b] += np.float32(eng[q, b])
            trusted_first_hour_engagements[p, b] += np.float32(eng_early[q, b])
            trusted_served_engagements[p, b] += np.float32(eng_served[q, b])


#: The fewest events a block of :func:`slot_counts_blocks` counts: each block's per-slot counts are zeroed and then
#: added, so a block must count well over a hundred microseconds' worth (at 10^4 users a step's ~10^4 events gain
#: nothing from two blocks).
EVENTS_PER_THREAD = 16384


def count_step(account, post, types, time, served, route_of_account, created, early_minutes, views, served_views,
               engagements, engagement_by_route, trusted_views, trusted_first_hour_views, trusted_engagements,
               trusted_first_hour_engagements, trusted_served_engagements):
    """:func:`count_served` then :func:`count_reviewed` with every weight 1 (no mitigation stage): the same counts,
    in place; returns what :func:`count_reviewed` returns. The events are counted per post slot, blocks of them on
    Numba's threads for a large step (:func:`slot_counts_blocks`), and each post's counts are added once
    (:func:`add_play_counts`, :func:`add_unit_trusted`)."""
    n = post.size
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    slot, posts = post_slots(post)
    plays, early_plays, served_plays, eng, eng_early, eng_served, by_route, n_eng, follows = run_blocks(
        slot_counts_blocks, n, EVENTS_PER_THREAD, account, post, types, time, served, slot, posts.size, route_of_account,
        created, float(early_minutes), engagements.shape[1], engagement_by_route.shape[1])
    add_play_counts(posts, plays, served_plays, eng, by_route, views, served_views, engagements, engagement_by_route)
    add_unit_trusted(posts, plays, early_plays, eng, eng_early, eng_served, trusted_views, trusted_first_hour_views,
                     trusted_engagements, trusted_first_hour_engagements, trusted_served_engagements)
    return int(n_eng[0]), follows


@njit(**_JIT)
def add_play_counts(posts, plays, served_plays, eng, by_route, views, served_views, engagements,
                    engagement_by_route):
    """Add the step's counts as they happened of each slot (:func:`slot_counts`, summed over blocks) to its post's
    int32 columns, and the engagers' routes to the float32 ``engagement_by_route`` (one addition per post)."""
    for q in range(posts.size):
        p = posts[q]
        views[p] += plays[q]
        served_views[p] += served_plays[q]
        for b in range(eng.shape[1]):
            engagements[p, b] += eng[q, b]
        for r in range(by_route.shape[1]):
            if by_route[q, r]:
                engagement_by_route[p, r] += np.float32(by_route[q, r])


@njit(**_JIT)
def note_first_times(first, accounts, times, marked):
    """Record in ``first`` (one entry per account, inf = never seen) the earliest of ``times`` of each account not
    seen before this call; returns those accounts, ascending. ``marked`` is a scratch flag per account, all False
    on entry and on return. (The work of :func:`simulator.mitigations.base.note_first_times`.)"""
    seen = np.empty(accounts.size, dtype=np.int64)
    m = 0
    for i in range(accounts.size):
        a = accounts[i]
        if marked[a]:
            if times[i] < first[a]:
                first[a] = times[i]
        elif np.isinf(first[a]):
            marked[a] = True
            first[a] = times[i]
            seen[m] = a
            m += 1
    seen = np.sort(seen[:m])
    for a in seen:
        marked[a] = False
    return seen


@njit(**_JIT)
def first_hour_velocity(lo, n_posts, first_hour_engagements, first_hour_views, active_columns, post, time, weight,
                        types, active_bits, created, hour):
    """The circuit breaker's first-hour counts of posts ``lo .. n_posts - 1``, this step's events included: (active
    engagements, views), float64, as :meth:`CircuitBreaker._check_velocity` computes them — the counted columns
    (float32 sums of the ``active_columns``), plus each event less than ``hour`` after its post's creation, with its
    weight (times its number of ``active_bits``), summed per post in event order."""
    m = n_posts - lo
    eng = np.empty(m, dtype=np.float64)
    views = np.empty(m, dtype=np.float64)
    add_views = np.zeros(m, dtype=np.float64)
    add_eng = np.zeros(m, dtype=np.float64)
    for q in range(m):
        total = np.float32(-0.0)
        for c in active_columns:
            total += first_hour_engagements[lo + q, c]
        eng[q] = np.float64(total)
        views[q] = np.float64(first_hour_views[lo + q])
    for e in range(post.size):
        p = post[e]
        if p < lo or not time[e] - created[p] < hour:
            continue
        w = np.float64(weight[e])
        bits = types[e] & active_bits
        n_active = 0
        while bits:
            n_active += bits & 1
            bits >>= 1
        add_views[p - lo] += w
        add_eng[p - lo] += w * n_active
    for q in range(m):
        views[q] += add_views[q]
        eng[q] += add_eng[q]
    return eng, views


@njit(**_JIT)
def dampened(account, time, damped_until, weight, flag_stages, bit, marked):
    """Dormancy dampening's weights: ``weight`` for an event before its account's ``damped_until``, 1 otherwise
    (float32); and the dampened accounts not yet flagged by this stage (``flag_stages & bit`` clear), ascending
    and once each. ``marked``: a scratch flag per account, all False on entry and on return."""
    n = account.size
    out = np.empty(n, dtype=np.float32)
    flagged = np.empty(n, dtype=np.int64)
    m = 0
    for e in range(n):
        a = account[e]
        if time[e] < damped_until[a]:
            out[e] = weight
            if not marked[a] and (flag_stages[a] & bit) == 0:
                marked[a] = True
                flagged[m] = a
                m += 1
        else:
            out[e] = np.float32(1.0)
    flagged = np.sort(flagged[:m])
    for a in flagged:
        marked[a] = False
    return out, flagged


@njit(**_JIT)
def dormancy_weights(account, time, authors, created, first_seen, dormant, damped_until, probation_minutes, weight,
                     flag_stages, bit, marked):
    """Dormancy dampening's step, one compiled call: :func:`note_first_times` of the events' accounts followed by
    the new posts' ``authors`` (at their ``created`` times), as if the two were one array; a ``dormant`` account
    seen for the first time is dampened until ``probation_minutes`` after its first activity (or later, if its
    ``damped_until`` says so); then :func:`dampened` of the events. Returns what :func:`dampened` returns."""
    n, k = account.size, authors.size
    seen = np.empty(n + k, dtype=np.int64)
    m = 0
    for i in range(n + k):   # (note_first_times' loop over the two arrays as one; a shared helper measured slower)
        a = account[i] if i < n else authors[i - n]
        t = time[i] if i < n else created[i - n]
        if marked[a]:
            if t < first_seen[a]:
                first_seen[a] = t
        elif np.isinf(first_seen[a]):
            marked[a] = True
            first_seen[a] = t
            seen[m] = a
            m += 1
    for i in range(m):
        a = seen[i]
        marked[a] = False
        if dormant[a]:
            damped_until[a] = max(damped_until[a], first_seen[a] + probation_minutes)
    return dampened(account, time, damped_until, weight, flag_stages, bit, marked)


@njit(**_JIT)
def weighed(weights, event_weight):
    """``weights × event_weight`` (float32, elementwise) and whether every ``event_weight`` lies in [0, 1] (NaN does
    not): a stage verdict's event weights checked and applied in one pass."""
    n = weights.size
    out = np.empty(n, dtype=np.float32)
    ok = True
    for e in range(n):
        x = event_weight[e]
        if not (x >= 0.0 and x <= 1.0):
            ok = False
        out[e] = weights[e] * x
    return out, ok


@njit(**_JIT)
def over_allowance(account, types, active_bits, cap, counts):
    """The events (indices, in event order) carrying an engagement of ``active_bits`` whose account has more than
    ``cap`` such events in the batch: the ones the rate limit must order. ``counts``: a scratch count per account,
    all zero on entry and on return."""
    n = account.size
    for e in range(n):
        if types[e] & active_bits:
            counts[account[e]] += 1
    out = np.empty(n, dtype=np.int64)
    m = 0
    for e in range(n):
        if types[e] & active_bits and counts[account[e]] > cap:
            out[m] = e
            m += 1
    for e in range(n):
        if types[e] & active_bits:
            counts[account[e]] = 0
    return out[:m].copy()


@njit(**_JIT)
def organic_post_content(who, topic_u, interests, political_u, political_share, pick_u, support, cols, topics):
    """Topic and candidate of each organic post by the people ``who``: the topic by inverse CDF of the author's
    interests (float32 running sums, as ``numpy.cumsum``), political with ``political_share``, then a candidate by
    inverse CDF of the author's support over ``cols`` columns (the last, undecided, means none); a political post's
    topic is 0, and an apolitical post drawn on topic 0 gets the author's fixed other topic ``1 + who % (topics - 1)``.
    The work of :meth:`simulator.audience.Audience.post` on its draws."""
    k = who.size
    nt = interests.shape[1]
    ns = support.shape[1]
    topic = np.empty(k, dtype=np.int64)
    cand = np.empty(k, dtype=np.int64)
    cdf = np.empty(nt, dtype=np.float32)
    scdf = np.empty(ns, dtype=np.float64)
    for i in range(k):
        a = who[i]
        acc = np.float32(0.0)
        for j in range(nt):
            acc += interests[a, j]
            cdf[j] = acc
        x = topic_u[i] * np.float64(cdf[nt - 1])
        t = 0
        for j in range(nt):
            t += x > np.float64(cdf[j])
        t = min(t, topics - 1)
        sacc = 0.0
        for j in range(ns):
            sacc += support[a, j]
            scdf[j] = sacc
        y = pick_u[i] * scdf[ns - 1]
        pick = 0
        for j in range(ns):
            pick += y > scdf[j]
        pick = min(pick, cols - 1)
        c = pick if political_u[i] < political_share and pick < cols - 1 else -1
        cand[i] = c
        if c >= 0:
            topic[i] = 0
        elif t == 0:
            topic[i] = 1 + a % (topics - 1)
        else:
            topic[i] = t
    return topic, cand


@njit(**_JIT)
def opening_sessions(u, active_today, session_rate, diurnal_weight):
    """The rows ``i`` (ascending) active today whose uniform ``u[i]`` falls below ``session_rate[i] ×
    diurnal_weight``: who opens the app this step (:meth:`simulator.audience.Audience.sessions`)."""
    n = u.size
    out = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):   # written unconditionally, kept by advancing (no unpredictable branch)
        out[m] = i
        m += active_today[i] & (u[i] < session_rate[i] * diurnal_weight)
    return out[:m].copy()


@njit(**_JIT)
def mix64(x):
    """SplitMix64's finaliser: a fixed, well-mixed 64-bit hash of an integer (no random stream used)."""
    z = np.uint64(x) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(**_JIT)
def mix64_each(x):
    """:func:`mix64` of each element of an int64 array (uint64 results)."""
    out = np.empty(x.size, dtype=np.uint64)
    for i in range(x.size):
        out[i] = mix64(x[i])
    return out


@njit(**_JIT)
def co_engagement_order_keys(acc, post, t, n_accounts):
    """One int64 key per event that orders events by post, time to 1/8 minute, then a fixed hash of (account,
    post): ``post << 36 | eighths << 13 | hash & 0x1FFF`` (post < 2^27, eighths capped at 2^23 - 1), the hash being
    :func:`mix64` of ``post · n_accounts + account``."""
    n = acc.size
    out = np.empty(n, dtype=np.int64)
    for e in range(n):
        z = mix64(post[e] * n_accounts + acc[e])
        tq = np.int64(np.floor(t[e] * 8.0))
        if tq > (1 << 23) - 1:
            tq = (1 << 23) - 1
        out[e] = (post[e] << 36) | (tq << 13) | np.int64(z & np.uint64(0x1FFF))
    return out


@njit(**_JIT)
def _bit_length(x):
    """Bits needed to write the non-negative ``x`` (0 for 0)."""
    b = 0
    while x > 0:
        b += 1
        x >>= 1
    return b


@njit(**_JIT)
def _packed_key(account, post, post_rel, tq_rel, n_accounts, t_bits, width, number):
    """One key of :func:`co_engagement_packed_keys`: the post and eighth fields (relative to the window's least),
    the hash of (post, account) and the event's number in its ``width`` low bits."""
    z = np.int64(mix64(post * n_accounts + account) & np.uint64(0x1FFF))
    return ((((post_rel << t_bits) | tq_rel) << 13 | z) << width) | number


@njit(**_JIT)
def co_engagement_packed_keys(acc, post, t, n_accounts, max_bits):
    """The order of :func:`co_engagement_order_keys` (post, time in eighths, hash, then event) as unique int64 keys
    below ``2^max_bits``, so that one sort of values gives a stable order: ``(post - min post)``, ``(eighths - min
    eighths)``, the 13-bit hash and an event number, each field as wide as its range needs.

    The event number is the event's index, or, when that does not fit, its rank (in event order) within its bucket
    of post ids: buckets of ``2^shift`` consecutive ids, as few as leave every bucket's events numberable in the bits
    that remain. Returns (keys, event number bits, time bits, min post, min eighths, shift, each bucket's first
    position in ``bucket_acc``, the events' accounts grouped by bucket in event order; both empty when there is one
    bucket), or an empty key array when no bucketing fits (one post with more events than the bits can number, or
    ranges too wide; or far more post ids than events): the caller then sorts the composite keys."""
    n = acc.size
    none = np.empty(0, dtype=np.int64)
    tq = np.empty(n, dtype=np.int64)
    p_lo, p_hi, t_lo, t_hi = np.int64(1) << 62, np.int64(-1), np.int64(1) << 62, np.int64(-1)
    for e in range(n):
        q = np.int64(np.floor(t[e] * 8.0))
        if q > (1 << 23) - 1:
            q = (1 << 23) - 1
        tq[e] = q
        p_lo = min(p_lo, post[e])
        p_hi = max(p_hi, post[e])
        t_lo = min(t_lo, q)
        t_hi = max(t_hi, q)
    t_bits = _bit_length(t_hi - t_lo) if n else 0
    p_bits = _bit_length(p_hi - p_lo) if n else 0
    room = max_bits - p_bits - t_bits - 13   # bits left for the event number
    if n == 0 or room < 1:
        return none, 0, t_bits, np.int64(0), np.int64(0), 0, none, none
    limit = np.int64(1) << room
    if n <= limit:   # the event's index fits: one bucket
        width = _bit_length(np.int64(n - 1)) if n > 1 else 1
        shift, start, fill, bucket_acc = p_bits, none, none, none
    else:
        # Buckets: the widest span of ids (2^shift) that leaves at most 2^room events in each, found by merging
        # neighbouring buckets from one per post id while the fullest still fits (a post's events cannot be split:
        # a post too full alone means no bucketing fits).
        span = p_hi - p_lo + 1
        if span > max(2 * n, 1 << 16):   # far more post ids than events: not worth it
            return none, 0, t_bits, np.int64(0), np.int64(0), 0, none, none
        counts = np.zeros(span, dtype=np.int64)
        for e in range(n):
            counts[post[e] - p_lo] += 1
        if counts.max() > limit:
            return none, 0, t_bits, np.int64(0), np.int64(0), 0, none, none
        shift = 0
        while counts.size > 1:
            coarser = np.zeros((counts.size + 1) // 2, dtype=np.int64)
            coarser += counts[0::2]
            coarser[: counts.size // 2] += counts[1::2]
            if coarser.max() > limit:
                break
            counts = coarser
            shift += 1
        width = room
        start = np.empty(counts.size + 1, dtype=np.int64)
        start[0] = 0
        for b in range(counts.size):
            start[b + 1] = start[b] + counts[b]
        fill = start[:-1].copy()
        bucket_acc = np.empty(n, dtype=np.int64)   # the accounts, grouped by bucket in event order
    out = np.empty(n, dtype=np.int64)
    if bucket_acc.size:
        for e in range(n):
            b = (post[e] - p_lo) >> shift
            number = fill[b] - start[b]
            bucket_acc[fill[b]] = acc[e]
            fill[b] += 1
            out[e] = _packed_key(acc[e], post[e], post[e] - p_lo, tq[e] - t_lo, n_accounts, t_bits, width, number)
    else:   # (a loop of its own: the common case, and a faster loop)
        for e in range(n):
            out[e] = _packed_key(acc[e], post[e], post[e] - p_lo, tq[e] - t_lo, n_accounts, t_bits, width, e)
    return out, width, t_bits, p_lo, t_lo, shift, start, bucket_acc


@njit(**_JIT)
def co_engagement_unpacked(keys, acc, i_bits, t_bits, p_lo, t_lo, shift, bucket_start, bucket_acc):
    """The window's events in the order of the sorted :func:`co_engagement_packed_keys`: (account, post, time in
    eighths of a minute), as :func:`co_engagement_sorted` gives them."""
    n = keys.size
    acc_sorted = np.empty(n, dtype=np.int64)
    post = np.empty(n, dtype=np.int64)
    tq = np.empty(n, dtype=np.int64)
    i_mask = (np.int64(1) << i_bits) - 1
    t_mask = (np.int64(1) << t_bits) - 1
    bucketed = bucket_acc.size > 0
    for i in range(n):
        key = keys[i]
        high = key >> (i_bits + 13)
        rel = high >> t_bits
        number = key & i_mask
        # (A bucket's events are read within its own stretch of bucket_acc: near one another.)
        acc_sorted[i] = bucket_acc[bucket_start[rel >> shift] + number] if bucketed else acc[number]
        tq[i] = t_lo + (high & t_mask)
        post[i] = p_lo + rel
    return acc_sorted, post, tq


@njit(**_JIT)
def co_engagement_sorted(composite, order, acc):
    """The window's events in the order of their :func:`co_engagement_order_keys`, equal keys in event order (a
    stable sort's order, whatever order ``order`` gives them): (account, post, time in eighths of a minute), read
    off the keys (post = key >> 36, time = bits 13..35) in one pass.

    ``order`` is an argsort of ``composite`` made by any algorithm (NumPy's default sort is the fastest, and the
    order it leaves equal keys in depends on the CPU's vector units); it is put right in place."""
    n = order.size
    i = 0
    while i < n:   # runs of equal keys (rare, short): insertion-sorted by event
        j = i + 1
        key = composite[order[i]]
        while j < n and composite[order[j]] == key:
            j += 1
        for a in range(i + 1, j):
            e = order[a]
            b = a - 1
            while b >= i and order[b] > e:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = e
        i = j
    acc_sorted = np.empty(n, dtype=np.int64)
    post = np.empty(n, dtype=np.int64)
    tq = np.empty(n, dtype=np.int64)
    for i in range(n):
        e = order[i]
        key = composite[e]
        acc_sorted[i] = acc[e]
        post[i] = key >> 36
        tq[i] = (key >> 13) & ((1 << 23) - 1)
    return acc_sorted, post, tq


@njit(**_JIT)
def strong_pairs(pairs, n_accounts, min_shared):
    """From sorted pair codes (``a · n_accounts + b``): each distinct pair seen at least ``min_shared`` times, as
    (a, b, count), in code order."""
    n = pairs.size
    a = np.empty(n, dtype=np.int64)
    b = np.empty(n, dtype=np.int64)
    count = np.empty(n, dtype=np.int64)
    m = 0
    i = 0
    while i < n:
        j = i + 1
        while j < n and pairs[j] == pairs[i]:
            j += 1
        if j - i >= min_shared:
            a[m] = pairs[i] // n_accounts
            b[m] = pairs[i] % n_accounts
            count[m] = j - i
            m += 1
        i = j
    return a[:m].copy(), b[:m].copy(), count[:m].copy()


@njit(**_JIT)
def merge_sorted(x, y):
    """The sorted merge of the sorted int64 arrays ``x`` and ``y`` (one branch-free pass)."""
    n, m = x.size, y.size
    out = np.empty(n + m, dtype=np.int64)
    i = 0
    j = 0
    k = 0
    while i < n and j < m:
        a = x[i]
        b = y[j]
        take_x = a <= b
        out[k] = a if take_x else b
        i += take_x
        j += 1 - take_x
        k += 1
    out[k: k + n - i] = x[i:]   # (one of the two is empty)
    out[k + n - i:] = y[j:]
    return out


@njit(**_JIT)
def co_engagement_pairs(acc, post, tq, n_accounts, pair_window, neighbours):
    """The co-engagement pairs of events sorted by (post, time): the first event of each (account, post) in that
    order is kept, and paired with each of the next ``neighbours`` kept events of the same post at most
    ``pair_window`` later (in ``tq``'s unit). Returns each pair as ``min(a, b) · n_accounts + max(a, b)`` (int64,
    unsorted): the work of :func:`simulator.mitigations.coordination.co_engagement_links` before it counts pairs."""
    n = acc.size
    keep = np.empty(n, dtype=np.int64)
    last_post = np.full(n_accounts, -1, dtype=np.int64)
    m = 0
    for e in range(n):
        a = acc[e]
        if last_post[a] != post[e]:   # events of a post are contiguous: an account seen on it already repeats
            last_post[a] = post[e]
            keep[m] = e
            m += 1
    # How many of the next kept events each one pairs with (the run stops at another post or beyond the window).
    partners = np.zeros(m, dtype=np.int64)
    for i in range(m):
        e = keep[i]
        d = 1
        while d <= neighbours and i + d < m:
            f = keep[i + d]
            if post[f] != post[e] or tq[f] - tq[e] > pair_window:
                break
            d += 1
        partners[i] = d - 1
    pairs = np.empty(partners.sum(), dtype=np.int64)
    q = 0
    for i in range(m):
        e = keep[i]
        for d in range(1, partners[i] + 1):
            f = keep[i + d]
            a, b = acc[e], acc[f]
            pairs[q] = min(a, b) * n_accounts + max(a, b)
            q += 1
    return pairs


@njit(**_JIT)
def moderated(posts, routes, oon_blocked, author_demoted, post_author, held_until, now, followed, engagement):
    """A copy of the feed matrix ``posts`` with EMPTY in every slot that breaks a mitigation's decision: an
    out-of-network slot (route not ``followed``) of a post kept in network or by a demoted author, and an
    ``engagement``-route slot of a post whose graduation is held past ``now`` (the work of
    :func:`simulator.platform.enforce_moderation`)."""
    out = posts.copy()
    n, k = posts.shape
    for i in range(n):
        for j in range(k):
            p = posts[i, j]
            if p < 0:
                continue
            r = routes[i, j]
            if r != followed and (oon_blocked[p] or author_demoted[post_author[p]]):
                out[i, j] = -1
            elif r == engagement and held_until[p] > now:
                out[i, j] = -1
    return out


#: What :func:`feed_violation` returns.
FEED_OK, FEED_BAD_ID, FEED_NOT_DISTRIBUTABLE, FEED_REPEAT, FEED_BAD_ROUTE = 0, 1, 2, 3, 4


@njit(**_JIT)
def feed_violation(posts, routes, route_min, route_max, post_removed, post_author, account_removed, post_created,
                   now):
    """The first breach of the feed contract in ``posts`` (EMPTY-padded rows), as one of the ``FEED_*`` codes:
    a post id that does not exist, a post that is removed, by a removed account or not yet created, a post twice in
    a row, or a shown slot whose route is outside [route_min, route_max]."""
    n, k = posts.shape
    n_posts = post_removed.size
    for i in range(n):
        for j in range(k):
            p = posts[i, j]
            if p == EMPTY:
                continue
            if p < 0 or p >= n_posts:
                return FEED_BAD_ID
            if routes[i, j] < route_min or routes[i, j] > route_max:
                return FEED_BAD_ROUTE
            if post_removed[p] or account_removed[post_author[p]] or not post_created[p] < now:
                return FEED_NOT_DISTRIBUTABLE
            for q in range(j):
                if posts[i, q] == p:
                    return FEED_REPEAT
    return FEED_OK


@njit(**_JIT)
def log10_1p_table(size):
    """``log10(1 + k)`` for k = 0 .. size - 1, each from the C library's ``log10`` (as :func:`math.log10`)."""
    out = np.empty(size, dtype=np.float64)
    for k in range(size):
        out[k] = math.log10(1.0 + np.float64(k))
    return out


@njit(**_JIT)
def engagement_types(users, posts, interest_weight, interests, inv_top_interest, post_topic, post_candidate,
                     support, alignment_weight, post_engagements, like, social_proof, log10_1p, quality, is_recruit,
                     target, recruit_boost, base, draws):
    """The engagement of each impression (users[i] shown posts[i]) as a type mask, bit b set when ``draws[i, b]``
    falls below P(type b): the work of :meth:`simulator.audience.Audience.respond`, in its dtypes and order.

    The relative interest ``interests[user, topic] × inv_top_interest[user]`` (float32) is raised to
    ``interest_weight`` by the C library's ``pow`` in float64 and rounded to float32 (not at all when the weight is
    1); the post's social proof is ``1 + social_proof · log10(1 + likes)``, with likes from column ``like`` of
    ``post_engagements`` and the logarithm from the table ``log10_1p`` (:func:`log10_1p_table`) or, beyond it, the C
    library's ``log10``: the same values on every CPU, where NumPy's vectorised ``log10`` and float32 power differ
    between CPUs in their last bits. ``recruit_boost`` multiplies a recruit's P on the ``target``'s posts (1 when
    recruits are not active)."""
    n = posts.size
    nb = base.size
    cap = np.float32(0.95)
    powered = interest_weight != 1.0
    n_table = log10_1p.size
    out = np.zeros(n, dtype=np.uint8)
    ahead = 4 * PREFETCH_AHEAD   # impressions come in feeds of one user: a few users ahead
    for i in range(n):
        if i + ahead < n:
            w = users[i + ahead]
            prefetch_row(interests, w)
            prefetch_row(support, w)
            prefetch(inv_top_interest, w)
            prefetch(is_recruit, w)
        u = users[i]
        p = posts[i]
        m = interests[u, post_topic[p]] * inv_top_interest[u]
        if powered:
            m = np.float32(math.pow(np.float64(m), interest_weight))
        c = post_candidate[p]
        if c >= 0:
            m = m * np.float32(0.2 + alignment_weight * support[u, c])
        likes = post_engagements[p, like]
        lg = log10_1p[likes] if likes < n_table else math.log10(1.0 + np.float64(likes))
        mm = np.float64(m) * (1.0 + social_proof * lg)
        mm *= np.float64(quality[p])
        if c == target and is_recruit[u]:
            mm *= recruit_boost
        mf = np.float32(mm)
        t = 0
        for b in range(nb):
            q = base[b] * mf
            if q > cap:
                q = cap
            if draws[i, b] < q:
                t |= 1 << b
        out[i] = t
    return out


# --------------------------------------------------------------------------------------------------------------
# Row blocks on Numba's threads. Each ``*_blocks`` kernel is its kernel run on ``blocks`` contiguous blocks of rows
# (block b: rows n·b // blocks .. n·(b+1) // blocks - 1), each block's rows of the result written in place: the
# kernel's rows depend on those rows alone, so the result is the kernel's, bit for bit, for any number of blocks
# (tests/test_kernel_threads.py). ``blocks`` ≤ 1 calls the kernel on this thread (no parallel region).
# kernel_threads.run_blocks calls them with the blocks kernel_threads.row_blocks says to cut.
# --------------------------------------------------------------------------------------------------------------


@njit(**blocks_jit())
def sample_by_interest_blocks(blocks, users, prob, alias, alias_u, explore_u, segment_u, explore, width, start, cum,
                              guide, scale, pool, draws):
    """:func:`sample_by_interest` over ``blocks`` blocks of users."""
    if blocks <= 1:
        return sample_by_interest(users, prob, alias, alias_u, explore_u, segment_u, explore, width, start, cum, guide,
                                  scale, pool, draws)
    n = users.size
    out = np.empty((n, draws), dtype=np.int32)
    for b in prange(blocks):
        a, e = n * b // blocks, n * (b + 1) // blocks
        out[a:e] = sample_by_interest(users[a:e], prob, alias, alias_u[a * draws: e * draws],
                                      explore_u[a * draws: e * draws], segment_u[a * draws: e * draws], explore,
                                      width, start, cum, guide, scale, pool, draws)
    return out


@njit(**blocks_jit())
def assemble_feeds_blocks(blocks, users, profiles, inn, oon, test, values, window_topic, lo, kf, boost, post_factor,
                          has_post_factor, keep, feed_size):
    """:func:`assemble_feeds` over ``blocks`` blocks of users."""
    if blocks <= 1:
        return assemble_feeds(users, profiles, inn, oon, test, values, window_topic, lo, kf, boost, post_factor,
                              has_post_factor, keep, feed_size)
    n = users.size
    posts = np.empty((n, feed_size), dtype=np.int32)
    routes = np.empty((n, feed_size), dtype=np.int8)
    for b in prange(blocks):
        a, e = n * b // blocks, n * (b + 1) // blocks
        block_posts, block_routes = assemble_feeds(users[a:e], profiles, inn[a:e], oon[a:e], test[a:e], values,
                                                   window_topic, lo, kf, boost, post_factor, has_post_factor, keep,
                                                   feed_size)
        posts[a:e] = block_posts
        routes[a:e] = block_routes
    return posts, routes


@njit(**blocks_jit())
def newest_followed_blocks(blocks, indptr, indices, users, since, posting, word_rank, group_start, by_author,
                           created, limit):
    """:func:`newest_followed` over ``blocks`` blocks of users."""
    if blocks <= 1:
        return newest_followed(indptr, indices, users, since, posting, word_rank, group_start, by_author, created,
                               limit)
    n = users.size
    posts = np.empty((n, limit), dtype=np.int32)
    times = np.empty((n, limit), dtype=np.float64)
    counts = np.empty(n, dtype=np.int64)
    for b in prange(blocks):
        a, e = n * b // blocks, n * (b + 1) // blocks
        block_posts, block_times, block_counts = newest_followed(indptr, indices, users[a:e], since[a:e], posting,
                                                                 word_rank, group_start, by_author, created, limit)
        posts[a:e] = block_posts
        times[a:e] = block_times
        counts[a:e] = block_counts
    return posts, times, counts


@njit(**blocks_jit())
def engagement_types_blocks(blocks, users, posts, interest_weight, interests, inv_top_interest, post_topic,
                            post_candidate, support, alignment_weight, post_engagements, like, social_proof, log10_1p,
                            quality, is_recruit, target, recruit_boost, base, draws):
    """:func:`engagement_types` over ``blocks`` blocks of impressions."""
    if blocks <= 1:
        return engagement_types(users, posts, interest_weight, interests, inv_top_interest, post_topic, post_candidate,
                                support, alignment_weight, post_engagements, like, social_proof, log10_1p, quality,
                                is_recruit, target, recruit_boost, base, draws)
    n = posts.size
    out = np.empty(n, dtype=np.uint8)
    for b in prange(blocks):
        a, e = n * b // blocks, n * (b + 1) // blocks
        out[a:e] = engagement_types(users[a:e], posts[a:e], interest_weight, interests, inv_top_interest, post_topic,
                                    post_candidate, support, alignment_weight, post_engagements, like, social_proof,
                                    log10_1p, quality, is_recruit, target, recruit_boost, base, draws[a:e])
    return out


@njit(**blocks_jit())
def feed_violation_blocks(blocks, posts, routes, route_min, route_max, post_removed, post_author, account_removed,
                          post_created, now):
    """:func:`feed_violation` over ``blocks`` blocks of feeds: the first block's breach that has one (so the first
    breach in row order)."""
    if blocks <= 1:
        return feed_violation(posts, routes, route_min, route_max, post_removed, post_author, account_removed,
                              post_created, now)
    n = posts.shape[0]
    codes = np.empty(blocks, dtype=np.int64)
    for b in prange(blocks):
        a, e = n * b // blocks, n * (b + 1) // blocks
        codes[b] = feed_violation(posts[a:e], routes[a:e], route_min, route_max, post_removed, post_author,
                                  account_removed, post_created, now)
    for b in range(blocks):
        if codes[b] != FEED_OK:
            return codes[b]
    return FEED_OK


def _array(dtype, ndim: int = 1, readonly: bool = False):
    return types.Array(dtype, ndim, "C", readonly=readonly)


_f32, _f64, _i16, _i32, _i64 = types.float32, types.float64, types.int16, types.int32, types.int64
#: The argument types of each kernel's calls in the simulator (tests/test_kernels.py checks that a world's run adds
#: none): :func:`load` prepares exactly these.
HOT_PATH_SIGNATURES = {
    sample_by_interest: [(_array(_i64), _array(_f32, 2), _array(_i16, 2), _array(_f32), _array(_f32), _array(_f64), _f32,
                          _array(_f64), _array(_f64), _array(_f64), _array(_i32), _f64, _array(_i32), _i64)],
    assemble_feeds: [(_array(_i64), _array(_f32, 2, readonly=True), _array(_i32, 2), _array(_i32, 2), _array(_i32, 2), _array(_f64),
                      _array(_i16, readonly=True), _i64, _f32, _f64, _array(_f64), types.boolean, _i64, _i64)],
    follower_counts: [(_array(_i32, readonly=True), _i64)],
    csr_union: [(_array(_i32, readonly=True), _array(_i32, readonly=True), _array(_i32, readonly=True),
                 _array(_i32, readonly=True))],
    record_impressions: [(_array(_i64), _array(_i64), _array(types.int8), _array(types.boolean), _array(types.int8),
                          _i64, _array(_i32), _array(types.int8), _array(types.boolean), _array(_f32, 2),
                          _array(_f32, 2), _array(_i32), _array(types.boolean), _array(_i64), _array(_f64))],
    post_scores: [(_array(_f32, readonly=True), _array(_f32, 2, readonly=True), _array(_f64), _f64, _array(_f64))],
    cap_by_quota: [(_array(_i32, 2), _array(_f64), _array(_f64))],
    count_out_of_network: [(_array(_i32, 2), _array(types.int8, 2), _array(_f64), _i64)],
    flatten_feeds: [(_array(_i64), _array(_i64, 2), _array(types.int8, 2), _array(_f64))],
    for_you_pools: [(_i64, _i64, _array(types.int8), _array(_f64), _array(_f64), _i64, _array(types.boolean, readonly=True),
                      _array(_i32, readonly=True), _array(types.boolean, readonly=True), _array(_f64, readonly=True),
                      _f64, _array(types.boolean, readonly=True), _array(types.boolean, readonly=True),
                      _array(_f64, readonly=True))],
    judge_batches: [(_i64, _i64, _array(types.int8), _array(_f64), _array(_f64), _i64, _i64,
                     _array(_f64, readonly=True), _f64, _array(_f32, readonly=True), _array(_f32, 2, readonly=True),
                     _array(_f64), _array(_f64), _array(_f64), _f64)],
    is_sorted: [(_array(_i64),)],
    engaged_political: [(_array(_i64), _array(_i64), _array(types.uint8), _array(types.int8))],
    step_events: [(_array(_i64), _array(_i64), _array(types.uint8), _array(_f64), _array(_i64), _array(_i64), _f64,
                   _array(_i64), _array(_i64), _array(types.uint8), _array(_f64))],
    note_graduations: [(_array(_i64), _array(_f32, 2), _array(_f32, 2), _array(_f32, 2), _array(types.boolean),
                         _array(_i32), _array(types.int8), _array(types.int8))],
    persuasion_pulls: [(_array(_i64), _array(_i64), _i64)],
    move_support: [(_array(_f64, 2), _array(_i64), _array(_f64), _f64, _array(_f64, 2))],
    powers: [(_array(_f64), _f64)],
    half_life_decay: [(_f64, _array(_f64), _f64), (_f64, _array(_f64, readonly=True), _f64)],
    log10_1p_table: [(_i64,)],
    author_groups: [(_array(_i64), _array(_i64), _array(_f64, readonly=True), _i64)],
    newest_followed: [(_array(_i32, readonly=True), _array(_i32, readonly=True), _array(_i64), _array(_f64),
                       _array(types.uint64), _array(_i32), _array(_i32), _array(_i32), _array(_f64), _i64)],
    vose_alias: [(_array(_f64, 2),)],
    interest_pool: [(_array(_i64), _array(_f64), _array(_i16, readonly=True), _i64)],
    mix64_each: [(_array(_i64),)],
    co_engagement_order_keys: [(_array(_i64), _array(_i64), _array(_f64), _i64)],
    co_engagement_sorted: [(_array(_i64), _array(_i64), _array(_i64))],
    strong_pairs: [(_array(_i64), _i64, _i64)],
    merge_sorted: [(_array(_i64), _array(_i64))],
    co_engagement_packed_keys: [(_array(_i64), _array(_i64), _array(_f64), _i64, _i64)],
    co_engagement_unpacked: [(_array(_i64), _array(_i64), _i64, _i64, _i64, _i64, _i64, _array(_i64), _array(_i64))],
    co_engagement_pairs: [(_array(_i64), _array(_i64), _array(_i64), _i64, _f64, _i64)],
    moderated: [(_array(_i64, 2), _array(types.int8, 2), _array(types.boolean, readonly=True),
                 _array(types.boolean, readonly=True), _array(_i32, readonly=True), _array(_f64, readonly=True), _f64,
                 _i64, _i64)],
    add_play_counts: [(_array(_i64), _array(_i32), _array(_i32), _array(_i32, 2), _array(_i32, 2), _array(_i32),
                       _array(_i32), _array(_i32, 2), _array(_f32, 2))],
    post_slots: [(_array(_i64),)],
    slot_counts: [(_array(_i64), _array(_i64), _array(types.uint8), _array(_f64), _array(types.boolean), _array(_i32),
                   _i64, _array(types.int8), _array(_f64), _f64, _i64, _i64, _i64)],
    add_unit_trusted: [(_array(_i64), _array(_i32), _array(_i32), _array(_i32, 2), _array(_i32, 2), _array(_i32, 2),
                        _array(_f32), _array(_f32), _array(_f32, 2), _array(_f32, 2), _array(_f32, 2))],
    note_first_times: [(_array(_f64), _array(_i64), _array(_f64), _array(types.boolean))],
    first_hour_velocity: [(_i64, _i64, _array(_f32, 2, readonly=True), _array(_f32, readonly=True), _array(_i64), _array(_i64, readonly=True),
                           _array(_f64, readonly=True), _array(_f32, readonly=True), _array(types.uint8, readonly=True),
                           _i64, _array(_f64, readonly=True), _f64)],
    dormancy_weights: [(_array(_i64, readonly=True), _array(_f64, readonly=True), _array(_i64), _array(_f64),
                         _array(_f64), _array(types.boolean), _array(_f64), _f64, _f32, _array(_i64, readonly=True),
                         _i64, _array(types.boolean))],
    weighed: [(_array(_f32), _array(_f32)),
              (_array(_f32), _array(_f32, readonly=True))],   # (a stage may hand back read-only weights)
    over_allowance: [(_array(_i64, readonly=True), _array(types.uint8, readonly=True), _i64, _i64, _array(_i32))],
    organic_post_content: [(_array(_i64), _array(_f64), _array(_f32, 2), _array(_f64), _f64, _array(_f64), _array(_f64, 2),
                             _i64, _i64)],
    opening_sessions: [(_array(_f64), _array(types.boolean), _array(_f32), _f64)],
    count_served: [(_array(_i64), _array(types.boolean), _array(_i32))],
    count_reviewed: [(_array(_i64), _array(_i64), _array(types.uint8), _array(_f64), _array(types.boolean),
                      _array(_f32), types.boolean, _array(_i32), _array(_i64), _array(types.int8), _array(_f64), _f64,
                      _array(_i32), _array(_i32, 2), _array(_f32, 2), _array(_f32), _array(_f32), _array(_f32, 2),
                      _array(_f32, 2), _array(_f32, 2))],
    feed_violation: [(_array(_i64, 2), _array(types.int8, 2), _i64, _i64, _array(types.boolean, readonly=True),
                      _array(_i32, readonly=True), _array(types.boolean, readonly=True), _array(_f64, readonly=True),
                      _f64)],
    engagement_types: [(_array(_i64), _array(_i64), _f64, _array(_f32, 2), _array(_f32), _array(_i16),
                        _array(types.int8), _array(_f64, 2), _f64, _array(_i32, 2), _i64, _f64,
                        _array(_f64, readonly=True), _array(_f32), _array(types.boolean), _i64, _f64, _array(_f32),
                        _array(_f32, 2))],
}
#: Each ``*_blocks`` kernel is called as its kernel is, with the number of blocks first.
HOT_PATH_SIGNATURES.update({
    blocked: [(_i64,) + signature for signature in HOT_PATH_SIGNATURES[kernel]]
    for blocked, kernel in ((sample_by_interest_blocks, sample_by_interest), (assemble_feeds_blocks, assemble_feeds),
                            (newest_followed_blocks, newest_followed), (engagement_types_blocks, engagement_types),
                            (feed_violation_blocks, feed_violation))
})
# (slot_counts_blocks counts from event 0: slot_counts' last argument, first_event, is not passed)
HOT_PATH_SIGNATURES[slot_counts_blocks] = [(_i64,) + signature[:-1] for signature in HOT_PATH_SIGNATURES[slot_counts]]
_loaded = False


def load() -> None:
    """Load (compiling once per machine) every kernel for :data:`HOT_PATH_SIGNATURES`; later calls do nothing."""
    global _loaded
    if not _loaded:
        for kernel, signatures in HOT_PATH_SIGNATURES.items():
            for signature in signatures:
                kernel.compile(signature)
        _loaded = True
