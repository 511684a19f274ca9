"""The compiled kernels (simulator/kernels.py) against their NumPy definitions, bit for bit, on random inputs built to
hit the awkward cases: EMPTY slots, repeated posts, posts outside the score window, exact score ties, empty pools,
non-canonical follow graphs. And: a world's run uses only the kernel specialisations that ``kernels.load`` prepares
(so no run compiles in its first step)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import kernels
from simulator.config import load_scenario
from simulator.model import AuditWorld
from simulator.ranking import EMPTY
from simulator.ranking.base import (POST_ID, InterestSampler, PostScores, _sort_by, in_network, rank_candidate_rows,
                                    rank_candidates)

from conftest import REPO_ROOT

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------------------- feed assembly


def _scores(lo: int, values: np.ndarray) -> PostScores:
    scores = object.__new__(PostScores)
    scores.lo, scores.values = lo, values
    return scores


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), wi=st.integers(0, 12), wo=st.integers(0, 20),
       ts=st.integers(0, 6), feed_size=st.integers(1, 12), extra=st.integers(0, 4),
       distinct_values=st.sampled_from([2, 5, 1000]), with_factor=st.booleans())
def test_feed_assembly_kernel_is_the_numpy_definition(seed, n, wi, wo, ts, feed_size, extra, distinct_values,
                                                      with_factor):
    rng = np.random.default_rng(seed)
    topics, lo, size = 4, 30, 25
    ids = np.arange(lo - 5, lo + size + 5)      # some ids outside the window [lo, lo + size)

    def slots(shape, p_empty):
        m = rng.choice(ids, size=shape).astype(POST_ID)
        m[rng.random(shape) < p_empty] = EMPTY
        return m

    inn, oon, test = slots((n, wi), 0.4), slots((n, wo), 0.2), slots((n, ts), 0.3)
    # Few distinct values: exact score ties (the rows the kernel hands back to NumPy) are common.
    values = rng.integers(1, distinct_values + 1, size).astype(np.float64) / distinct_values
    profiles = rng.integers(0, 3, (n + 3, topics)).astype(np.float32) / 4
    view = SimpleNamespace(interest_estimate=profiles, topics=topics,
                           post_topic=rng.integers(0, topics, lo + size + 10).astype(np.int16))
    users = np.sort(rng.choice(n + 3, size=n, replace=False)) if n else np.zeros(0, np.int64)
    factor = rng.integers(1, 3, size).astype(np.float64) if with_factor else None
    keep = feed_size + extra
    got_posts, got_routes = rank_candidates(view, users, inn, oon, test, _scores(lo, values), 1.5, keep, feed_size,
                                            factor)
    want_posts, want_routes = rank_candidate_rows(view, users, inn, oon, test, _scores(lo, values), 1.5, keep,
                                                  feed_size, factor)
    want = np.full((n, feed_size), EMPTY, dtype=POST_ID)
    want[:, :want_posts.shape[1]] = want_posts
    assert np.array_equal(got_posts, want)
    shown = want != EMPTY
    assert np.array_equal(got_routes[:, :want_routes.shape[1]][shown[:, :want_routes.shape[1]]],
                          want_routes[shown[:, :want_routes.shape[1]]])


# -------------------------------------------------------------------------------------- interest sampling


def _reference_draw(sampler, view, users, pool, weights, draws, rng):
    """InterestSampler.draw in NumPy: alias-table topic, exploration, searchsorted in the cumulative weights."""
    k = sampler.topics
    ok = weights > 0
    pool, weights = pool[ok], weights[ok].astype(np.float64)
    if draws == 0 or users.size == 0 or pool.size == 0:
        return np.full((users.size, draws), EMPTY, dtype=POST_ID)
    topic = view.post_topic[pool].astype(np.int64)
    order = _sort_by(topic, np.arange(topic.size)) & 0xFFFFFFFF
    pool, weights, topic = pool[order], weights[order], topic[order]
    cum = np.cumsum(weights)
    t_total = np.bincount(topic, weights=weights, minlength=k)
    t_start = np.concatenate([[0.0], np.cumsum(t_total)])[:-1]
    m = users.size * draws
    alias_u, explore_u, segment_u = rng.random(m, dtype=np.float32), rng.random(m, dtype=np.float32), rng.random(m)
    themed = t_total[:k] > 0
    width = np.concatenate([np.where(themed, t_total[:k], cum[-1]), np.full(k, cum[-1])])
    start = np.concatenate([np.where(themed, t_start[:k], 0.0), np.zeros(k)])
    prob, alias = sampler.prob_flat.reshape(-1, k), sampler.alias_flat.reshape(-1, k)
    u = alias_u * k
    col = np.minimum(u.astype(np.intp), k - 1)
    who = np.repeat(users, draws)
    t = np.where(u - col.astype(np.float32) < prob[who, col], col, alias[who, col].astype(np.intp))
    t = t + (explore_u < sampler.explore) * k
    x = segment_u * width[t] + start[t]
    j = np.minimum(np.searchsorted(cum, x, "right"), cum.size - 1)
    return pool[j].astype(POST_ID).reshape(users.size, draws)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n_users=st.integers(0, 30), n_pool=st.integers(0, 60),
       draws=st.integers(0, 18), topics=st.integers(1, 6), explore=st.sampled_from([0.0, 0.15, 1.0]))
def test_interest_sampling_kernel_is_the_numpy_definition(seed, n_users, n_pool, draws, topics, explore):
    rng = np.random.default_rng(seed)
    profiles = rng.dirichlet(np.ones(topics), size=40).astype(np.float32)
    profiles[rng.random(profiles.shape) < 0.3] = 0.0
    view = SimpleNamespace(post_topic=rng.integers(0, topics, 200).astype(np.int16))
    sampler = InterestSampler(profiles, explore=explore)
    users = np.sort(rng.choice(40, size=n_users, replace=False))
    pool = np.sort(rng.choice(200, size=n_pool, replace=False))
    weights = np.where(rng.random(n_pool) < 0.3, 0.0, rng.exponential(1.0, n_pool) * 10.0 ** rng.integers(-3, 4))
    got = sampler.draw(view, users, pool, weights, draws, np.random.default_rng(seed + 1))
    want = _reference_draw(sampler, view, users, pool, weights, draws, np.random.default_rng(seed + 1))
    assert got.dtype == want.dtype and np.array_equal(got, want)


# ------------------------------------------------------------------------------------- in-network retrieval


def test_in_network_counts_a_repeated_follow_edge_once():
    """A non-canonical graph (an edge stored twice, unsorted columns) gives the feed of its canonical form."""
    created = np.array([10.0, 20.0, 20.0, 30.0, 40.0])
    author = np.array([2, 3, 2, 3, 4], dtype=np.int32)
    rows, cols = np.array([0, 0, 0, 0, 1]), np.array([3, 2, 3, 4, 2])
    raw = sp.csr_matrix((np.ones(5, np.int8), (rows, cols)), shape=(5, 5))   # (0, 3) stored twice
    raw.has_canonical_format = False
    canonical = raw.copy()
    canonical.sum_duplicates()
    canonical.data[:] = 1

    def view(follows):
        return SimpleNamespace(
            now=50.0, max_post_age_minutes=1e9, n_posts=5, n_accounts=5, post_author=author, post_created=created,
            post_removed=np.zeros(5, bool), account_removed=np.zeros(5, bool), follows=follows,
            last_session=np.array([15.0, -np.inf]),
            recent_posts=lambda: np.arange(5), distributable=lambda p: np.ones(p.size, bool))

    got, times = in_network(view(raw), np.array([0, 1]), 10)
    want, want_times = in_network(view(canonical), np.array([0, 1]), 10)
    assert np.array_equal(got, want) and np.array_equal(times, want_times)
    # User 0 follows 2, 3, 4: posts since 15.0, newest first, the tie at 20.0 by post id.
    assert got[0, :4].tolist() == [4, 3, 1, 2] and got[0, 4] == EMPTY
    assert got[1, :2].tolist() == [2, 0]


# ---------------------------------------------------------------------------------------- engagement draws


def _reference_respond(audience, users, posts, table, target, recruits_active, rng):
    """Audience.respond in NumPy (its definition before the kernel), on the same draws."""
    s, pop = audience.s, audience.pop
    e = s.engagement
    users, posts = users.astype(np.int64), posts.astype(np.int64)
    m = audience.interests[users, table.topic[posts]] * audience.inv_top_interest[users]
    if e.interest_weight != 1.0:   # the C library's pow in float64, rounded to float32 (the same on every CPU)
        m = np.array([math.pow(float(x), e.interest_weight) for x in m], dtype=np.float32)
    cand = table.candidate[posts]
    political = np.flatnonzero(cand >= 0)
    align = 0.2 + e.alignment_weight * pop.support[users[political], cand[political].astype(np.int64)]
    m[political] *= align.astype(np.float32)
    lo = int(posts.min())
    likes = table.engagements[lo: int(posts.max()) + 1, 1]
    social_proof = 1.0 + e.social_proof * np.array([math.log10(1.0 + float(k)) for k in likes])
    m = m * social_proof[posts - lo]
    m *= table.quality[posts]
    if recruits_active:
        boost = audience.is_recruit[users] & (cand == target)
        m[boost] *= s.campaign.recruits.engagement_boost
    p = np.minimum(audience.base[:, None] * m.astype(np.float32), 0.95)
    draws = rng.random((posts.size, audience.base.size), dtype=np.float32)
    engaged = draws.T < p
    return (engaged.astype(np.uint8) << np.arange(audience.base.size, dtype=np.uint8)[:, None]).sum(
        axis=0, dtype=np.uint8)


@pytest.mark.parametrize("interest_weight,log10_table", [(1.0, None), (0.7, None), (1.0, 2)])
@pytest.mark.parametrize("recruits_active", [False, True])
def test_engagement_kernel_is_the_numpy_definition(interest_weight, log10_table, recruits_active):
    """The kernel against its NumPy definition; with a 2-entry table of log10(1 + likes), most posts' social
    proof takes the kernel's other branch (the C library's log10 computed in place)."""
    scenario = load_scenario("romania_2024", ["population.organic_users=1500", "days=3",
                                              "campaign.bots.activation_day=1", "campaign.recruits.recruit_day=0",
                                              f"engagement.interest_weight={interest_weight}"])
    world = AuditWorld(scenario, np.random.SeedSequence(3))
    for _ in range(40):
        world.step()
    table, audience = world.posts, world.audience
    if log10_table is not None:
        audience.log10_1p = kernels.log10_1p_table(log10_table)
    rng = np.random.default_rng(11)
    users = rng.choice(world.population.n_audience, 5000)
    posts = rng.integers(max(table.n - 400, 0), table.n, 5000)
    assert (table.candidate[posts] == world.target).any() and audience.is_recruit[users].any()
    assert (table.engagements[posts, 1] >= 2).any() and (table.engagements[posts, 1] < 2).any()
    state = audience.engagement_rng.bit_generator.state
    got = audience.respond(users, posts, table, world.target, recruits_active)
    want = _reference_respond(audience, users, posts, table, world.target, recruits_active,
                              np.random.Generator(_restored(audience.engagement_rng, state)))
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    assert 0 < np.count_nonzero(got) < got.size


def test_log10_table_and_the_portable_powers_are_the_c_librarys():
    """The tabulated log10(1 + k), the powers and the recency decay are exactly :mod:`math`'s (the C library's),
    which do not depend on the CPU's vector units."""
    table = kernels.log10_1p_table(70000)
    assert table.tobytes() == np.array([math.log10(1.0 + k) for k in range(70000)]).tobytes()
    x = np.random.default_rng(2).uniform(0.0, 50.0, 2000)
    assert kernels.powers(x, -1.37).tobytes() == np.array([math.pow(v, -1.37) for v in x]).tobytes()
    got = kernels.half_life_decay(900.0, x * 20.0, 720.0)
    assert got.tobytes() == np.array([math.exp2(-(900.0 - v * 20.0) / 720.0) for v in x]).tobytes()


def _restored(rng: np.random.Generator, state: dict):
    bit_generator = type(rng.bit_generator)()
    bit_generator.state = state
    return bit_generator


# ------------------------------------------------------------------------------------------ specialisations


def test_a_run_uses_only_the_specialisations_that_load_prepares():
    """In a fresh process: after ``kernels.load()``, running small worlds under each built-in ranker (and the
    mitigation pipeline) compiles nothing more, so no run pays for compilation inside its steps."""
    code = """
import json, numpy as np
from simulator import kernels
from simulator.config import load_scenario
from simulator.model import AuditWorld
kernels.load()
before = {k.__name__: len(k.signatures) for k in kernels.HOT_PATH_SIGNATURES}
for extra in ([], ["ranker.name=engagement"], ["ranker.name=chronological"], ["ranker.name=random"],
              ['mitigations=[{name="dormancy_dampening"}, {name="takedown"}]']):
    s = load_scenario("romania_2024", ["population.organic_users=1500", "days=2"] + extra)
    AuditWorld(s, np.random.SeedSequence(1)).run()
after = {k.__name__: len(k.signatures) for k in kernels.HOT_PATH_SIGNATURES}
print(json.dumps([before, after]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO_ROOT),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    before, after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before == after
    assert all(count == len(kernels.HOT_PATH_SIGNATURES[getattr(kernels, name)])
               for name, count in before.items())


# ------------------------------------------------------------------------------------------------ alias tables


def _reference_alias_tables(p):
    """alias_tables in NumPy (its definition before the kernel): all rows at once, one pairing per pass."""
    n, k = p.shape
    q = p / p.sum(axis=1, keepdims=True) * k
    prob = np.ones((n, k), dtype=np.float32)
    alias = np.broadcast_to(np.arange(k, dtype=np.int16), (n, k)).copy()
    done = np.zeros((n, k), dtype=bool)
    for _ in range(k - 1):
        small, large = (~done) & (q < 1.0), (~done) & (q >= 1.0)
        r = np.flatnonzero(small.any(axis=1) & large.any(axis=1))
        if r.size == 0:
            break
        si, li = np.argmax(small[r], axis=1), np.argmax(large[r], axis=1)
        prob[r, si] = q[r, si]
        alias[r, si] = li
        done[r, si] = True
        q[r, li] -= 1.0 - q[r, si]
    return prob, alias


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 50), k=st.integers(1, 20),
       zeros=st.sampled_from([0.0, 0.3, 0.8]))
def test_alias_kernel_is_the_numpy_definition(seed, rows, k, zeros):
    from simulator.ranking.base import alias_tables

    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.5), size=rows)
    p[rng.random(p.shape) < zeros] = 0.0
    p = np.maximum(p, 1e-12)
    got, want = alias_tables(p), _reference_alias_tables(p)
    assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


# -------------------------------------------------------------------------------------------- feed contract


@pytest.mark.parametrize("row, routes, message", [
    ([0, 1, EMPTY], [0, 2, 0], None),                                   # a valid feed
    ([0, 5, EMPTY], [0, 0, 0], "does not exist"),                       # no post 5
    ([0, 2, EMPTY], [0, 0, 0], "removed post"),                         # post 2 is removed
    ([3, EMPTY, EMPTY], [0, 0, 0], "removed post, or a removed account"),   # post 3's author is removed
    ([4, EMPTY, EMPTY], [0, 0, 0], "future"),                           # post 4 is created at `now`
    ([1, 0, 1], [0, 0, 0], "twice"),
    ([0, 1, EMPTY], [0, 3, 0], "route"),
    ([0, EMPTY, EMPTY], [0, 7, 9], None),                                # routes of EMPTY slots are ignored
])
def test_check_feeds_rejects_each_breach_of_the_contract(row, routes, message):
    from simulator.ranking import FeedContractError, Feeds
    from simulator.ranking.base import check_feeds
    from worldkit import build_world

    world = build_world(n_accounts=3, n_audience=1, topics=1, author=[1, 1, 1, 2, 1],
                        created=[10.0, 20.0, 30.0, 40.0, 100.0], removed=[False, False, True, False, False],
                        account_removed=[False, False, True])
    view = world.view(100.0)
    feeds = Feeds(np.array([row], dtype=np.int32), np.array([routes], dtype=np.int8))
    if message is None:
        assert np.array_equal(check_feeds(feeds, 1, 3, view).posts, feeds.posts)
    else:
        with pytest.raises(FeedContractError, match=message):
            check_feeds(feeds, 1, 3, view)


# ----------------------------------------------------------------------------------------------- step counting


class _PostBins:
    """A batch of events binned by post (and optionally by a column such as the engagement type) over the span of
    post ids they touch, counted or summed (float64, in event order) over any subset: the NumPy counting the
    kernels replaced, kept here as their definition."""

    def __init__(self, ids, cols=None, width=1):
        self.lo = int(ids.min()) if ids.size else 0
        self.span = int(ids.max()) - self.lo + 1 if ids.size else 0
        self.width = width
        self.key = np.subtract(ids, self.lo, dtype=np.int64)   # bin of each event: (id - lo) * width + col
        if cols is not None:
            self.key *= width
            self.key += cols

    def counts(self, select=None):
        key = self.key if select is None else self.key[select]
        return np.bincount(key, minlength=self.span * self.width)

    def sums(self, weights, select=None):
        if select is not None:
            return np.bincount(self.key[select], weights=weights[select], minlength=self.span * self.width)
        return np.bincount(self.key, weights=weights, minlength=self.span * self.width)


def _add_bins(table, column, bins, values):
    """Add per-bin ``values`` to ``column`` of ``table`` over the span of ``bins``, cast to the column's dtype."""
    arr = getattr(table, column)
    part = arr[bins.lo: bins.lo + bins.span]
    part += values.reshape(part.shape).astype(arr.dtype)


def _count(table, column, ids, cols=None):
    """``column[id] += 1`` (or ``column[id, col] += 1``) per occurrence."""
    if ids.size:
        bins = _PostBins(ids, cols, getattr(table, column).shape[1] if cols is not None else 1)
        _add_bins(table, column, bins, bins.counts())


def _reference_counts(table, account, post, types, time, served, weights, route_of_account):
    """The counting of a step's events (AuditWorld._count_reviewed after count_served, or _count_step) in NumPy
    (their definition before the kernels): per-post bins over the span of ids touched, counts or float64 sums in
    event order, added once per bin."""
    bits = np.unpackbits(types[:, None], axis=1, bitorder="little")[:, :5].astype(bool)
    rows, kinds = np.nonzero(bits)
    plays = _PostBins(post)
    _add_bins(table, "views", plays, plays.counts())
    _add_bins(table, "served_views", plays, plays.counts(served))
    follows = rows[kinds == 4]
    if rows.size:
        by_type = _PostBins(post[rows], kinds, 5)
        _add_bins(table, "engagements", by_type, by_type.counts())
        _count(table, "engagement_by_route", post[rows], route_of_account[account[rows]])
    early = time - table.created[post] < 60.0
    unit = bool((weights == 1.0).all())
    _add_bins(table, "trusted_views", plays, plays.counts() if unit else plays.sums(weights))
    _add_bins(table, "trusted_first_hour_views", plays, plays.counts(early) if unit else plays.sums(weights, early))
    if rows.size:
        w = weights[rows]
        for column, select in (("trusted_engagements", None), ("trusted_first_hour_engagements", early[rows]),
                               ("trusted_served_engagements", served[rows])):
            _add_bins(table, column, by_type, (by_type.counts(select) if unit else by_type.sums(w, select)))
    return rows.size, follows


@pytest.mark.parametrize("unit", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("blocks", [1, 3], ids=["one-block", "three-blocks"])
def test_step_counting_kernels_are_the_numpy_definition(unit, seed, blocks, monkeypatch):
    """count_served + count_reviewed (the mitigated step's counting), and count_step (unit weights; its events
    counted in one block, or in three blocks on three threads), against the NumPy definition."""
    from simulator import kernel_threads
    from simulator.content import PostTable

    if blocks > 1:
        monkeypatch.setattr(kernels, "EVENTS_PER_THREAD", 1000)
        monkeypatch.setattr(kernel_threads, "_threads", 3)
        monkeypatch.setattr(kernel_threads, "_pool", None)

    rng = np.random.default_rng(seed)
    n_posts, n_accounts, n_events = 300, 50, 4000
    author, created = rng.integers(0, n_accounts, n_posts), np.sort(rng.random(n_posts)) * 500
    tables = []
    for _ in range(3):
        t = PostTable(capacity=n_posts)
        t.add(author, created, np.zeros(n_posts), np.full(n_posts, -1), np.ones(n_posts))
        tables.append(t)
    route_of_account = rng.integers(0, 4, n_accounts).astype(np.int8)
    got, want, fused = tables   # fused: count_step, the one-pass count of both with unit weights
    for step in range(3):
        account = rng.integers(0, n_accounts, n_events)
        post = rng.integers(step * 50, step * 50 + 150, n_events)
        types = np.where(rng.random(n_events) < 0.5, 0, rng.integers(0, 32, n_events)).astype(np.uint8)
        time = got.created[post] + rng.random(n_events) * 120
        served = rng.random(n_events) < 0.8
        weights = (np.ones(n_events, np.float32) if unit
                   else rng.choice(np.array([1.0, 0.1, 0.37, 0.0], np.float32), n_events))
        kernels.count_served(post, served, got.served_views)
        slot, posts = kernels.post_slots(post)
        n_eng, follows = kernels.count_reviewed(account, post, types, time, served, weights, unit, slot, posts,
                                                route_of_account, got.created, 60.0, got.views, got.engagements,
                                                got.engagement_by_route, got.trusted_views,
                                                got.trusted_first_hour_views, got.trusted_engagements,
                                                got.trusted_first_hour_engagements, got.trusted_served_engagements)
        want_eng, want_follows = _reference_counts(want, account, post, types, time, served, weights,
                                                   route_of_account)
        assert n_eng == want_eng and np.array_equal(follows, want_follows)
        if unit:
            fused_eng, fused_follows = kernels.count_step(
                account, post, types, time, served, route_of_account, fused.created, 60.0, fused.views,
                fused.served_views, fused.engagements, fused.engagement_by_route, fused.trusted_views,
                fused.trusted_first_hour_views, fused.trusted_engagements, fused.trusted_first_hour_engagements,
                fused.trusted_served_engagements)
            assert fused_eng == want_eng and np.array_equal(fused_follows, want_follows)
    for column in ("views", "served_views", "engagements", "engagement_by_route", "trusted_views",
                   "trusted_first_hour_views", "trusted_engagements", "trusted_first_hour_engagements",
                   "trusted_served_engagements"):
        a, b = getattr(got, column)[:n_posts], getattr(want, column)[:n_posts]
        assert a.dtype == b.dtype and np.array_equal(a, b), column
        if unit:
            assert getattr(fused, column)[:n_posts].tobytes() == b.tobytes(), column
    assert got.trusted_engagements[:n_posts].sum() > 0


# ------------------------------------------------------------------------------------- co-engagement pairs


def _reference_pairs(acc, post, tq, n_accounts, pair_window, neighbours):
    """The pairing of co_engagement_links in NumPy (its definition before the kernel): first event of each
    (account, post) in sorted order, then pairs at distance d = 1, 2, ... while any pair remains."""
    _, first = np.unique(post * np.int64(n_accounts) + acc, return_index=True)
    first = np.sort(first)
    acc, post, tq = acc[first], post[first], tq[first]
    parts = []
    for d in range(1, min(neighbours, acc.size - 1) + 1):
        same = (post[d:] == post[:-d]) & (tq[d:] - tq[:-d] <= pair_window)
        if not same.any():
            break
        a, b = acc[:-d][same], acc[d:][same]
        parts.append(np.minimum(a, b) * n_accounts + np.maximum(a, b))
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), accounts=st.integers(1, 60),
       posts=st.integers(1, 12), spread=st.sampled_from([4, 40, 400]), neighbours=st.integers(1, 10))
def test_co_engagement_pairs_kernel_is_the_numpy_definition(seed, n, accounts, posts, spread, neighbours):
    rng = np.random.default_rng(seed)
    acc, post = rng.integers(0, accounts, n), rng.integers(0, posts, n)
    tq = rng.integers(0, spread, n)
    order = np.lexsort((tq, post))                     # sorted by post, then time, as the stage sorts them
    acc, post, tq = acc[order], post[order], tq[order]
    got = np.sort(kernels.co_engagement_pairs(acc, post, tq, accounts, 40.0, neighbours))
    assert np.array_equal(got, _reference_pairs(acc, post, tq, accounts, 40.0, neighbours))


# ---------------------------------------------------------------------------------------------- moderation


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 30), k=st.integers(1, 12))
def test_moderation_kernel_is_the_numpy_definition(seed, n, k):
    """enforce_moderation against its NumPy definition: out-of-network slots of blocked posts or demoted authors'
    posts, and ENGAGEMENT slots of held posts, are emptied; nothing else changes."""
    from simulator.platform import enforce_moderation
    from simulator.ranking import Feeds, Route

    rng = np.random.default_rng(seed)
    n_posts, n_accounts, now = 40, 8, 500.0
    view = SimpleNamespace(post_oon_blocked=rng.random(n_posts) < 0.3, account_demoted=rng.random(n_accounts) < 0.3,
                           post_author=rng.integers(0, n_accounts, n_posts).astype(np.int32),
                           post_held_until=np.where(rng.random(n_posts) < 0.3, now + rng.choice([-1.0, 0.0, 1.0]),
                                                    0.0), now=now)
    posts = np.where(rng.random((n, k)) < 0.2, EMPTY, rng.integers(0, n_posts, (n, k)))
    routes = rng.integers(0, 3, (n, k)).astype(np.int8)
    shown = posts != EMPTY
    safe = np.where(shown, posts, 0)
    promotable = ~view.post_oon_blocked[safe] & ~view.account_demoted[view.post_author[safe]]
    bad = shown & (routes != Route.FOLLOWED) & ~promotable
    bad |= shown & (routes == Route.ENGAGEMENT) & (view.post_held_until[safe] > now)
    got = enforce_moderation(Feeds(posts.copy(), routes), view).posts
    assert np.array_equal(got, np.where(bad, EMPTY, posts))


# ------------------------------------------------------------------------------------------- follow merges


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), old=st.integers(0, 300), new=st.integers(0, 200))
def test_follow_merge_is_the_union_of_edges(seed, n, old, new):
    """FollowGraph.merge_pending (a compiled merge of sorted rows) gives SciPy's union of the two edge sets,
    canonical and read-only, and counts the edges that were new; self-follows and repeats are dropped."""
    from simulator.population import FollowGraph

    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n, old), rng.integers(0, n, old)
    graph = FollowGraph.from_edges(n, rows, cols)
    before = {(int(r), int(c)) for r, c in zip(rows, cols) if r != c}
    added_rows, added_cols = rng.integers(0, n, new), rng.integers(0, n, new)
    half = new // 2   # two batches, as a day's follows arrive step by step
    graph.add(added_rows[:half], added_cols[:half])
    graph.add(added_rows[half:], added_cols[half:])
    after = before | {(int(r), int(c)) for r, c in zip(added_rows, added_cols) if r != c}
    assert graph.merge_pending() == (len(after) - len(before) if new else 0)
    m = graph.matrix
    coo = m.tocoo()
    assert {(int(r), int(c)) for r, c in zip(coo.row, coo.col)} == after
    assert m.nnz == len(after) and set(np.unique(m.data).tolist()) <= {1}
    assert all(np.all(np.diff(m.indices[m.indptr[r]: m.indptr[r + 1]]) > 0) for r in range(n))
    assert m.has_canonical_format and not m.indices.flags.writeable and not m.indptr.flags.writeable


# ------------------------------------------------------------------------------------------- exposure ledger


def _reference_record(ledger, users, posts, routes, table, kind):
    """ExposureLedger.record in NumPy (its definition): O's impressions counted per post and candidate; the target's
    reach and their attribution rows (credit_routes) summed."""
    from simulator.exposure import credit_routes

    o = np.flatnonzero(ledger.in_o.take(users))
    posts_o = posts.take(o)
    ledger.impressions_o += posts_o.size
    _count(table, "impressions_o", posts_o)
    cand = table.candidate.take(posts_o)
    political = cand >= 0
    ledger.candidate_impressions += np.bincount(cand[political], minlength=ledger.candidate_impressions.size)
    t = o.take(np.flatnonzero(cand == ledger.target))
    if t.size == 0:
        return
    ledger.target_impressions += t.size
    ledger.reached[users.take(t)] = True
    ledger.route_impressions += credit_routes(posts.take(t), routes.take(t), table, kind).sum(axis=0)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_exposure_ledger_kernel_is_the_numpy_definition(seed):
    from simulator.content import PostTable
    from simulator.exposure import ExposureLedger, note_graduations
    from simulator.population import ROUTE_OF_KIND, Kind

    rng = np.random.default_rng(seed)
    n_accounts, n_audience, n_posts, n_cand = 60, 40, 50, 4
    kind = rng.choice([Kind.ORGANIC, Kind.RECRUITED, Kind.BOT, Kind.INFLUENCER, Kind.CANDIDATE], n_accounts,
                      p=[0.5, 0.1, 0.2, 0.1, 0.1]).astype(np.int8)
    kind[:n_audience] = np.where(rng.random(n_audience) < 0.8, Kind.ORGANIC, Kind.RECRUITED)
    population = SimpleNamespace(kind=kind, n_audience=n_audience,
                                 start_support=rng.dirichlet(np.ones(n_cand + 1), n_audience))
    tables, ledgers = [], []
    for _ in range(2):
        table = PostTable(capacity=64)
        r = np.random.default_rng(seed + 100)
        table.add(author=r.integers(0, n_accounts, n_posts), created=np.arange(n_posts, dtype=float),
                  topic=np.zeros(n_posts, np.int16), candidate=r.integers(-1, n_cand, n_posts),
                  quality=np.ones(n_posts))
        table.engagement_by_route[:n_posts] = np.where(r.random((n_posts, 4)) < 0.5, 0,
                                                       r.integers(0, 9, (n_posts, 4)))
        note_graduations(table, np.flatnonzero(r.random(n_posts) < 0.4), kind)
        table.engagement_by_route[:n_posts] += r.integers(0, 3, (n_posts, 4))
        tables.append(table)
        ledgers.append(ExposureLedger(population, n_cand, target=0))
    for _ in range(3):   # a few steps
        m = int(rng.integers(0, 300))
        users, posts = rng.integers(0, n_audience, m), rng.integers(0, n_posts, m)
        routes = rng.integers(0, 3, m).astype(np.int8)
        ledgers[0].record(users, posts, routes, tables[0], ROUTE_OF_KIND[kind])
        _reference_record(ledgers[1], users, posts, routes, tables[1], kind)
    got, want = ledgers
    assert got.impressions_o == want.impressions_o and got.target_impressions == want.target_impressions
    assert np.array_equal(got.reached, want.reached)
    assert np.array_equal(got.candidate_impressions, want.candidate_impressions)
    assert got.route_impressions.tobytes() == want.route_impressions.tobytes()
    assert np.array_equal(tables[0].impressions_o, tables[1].impressions_o)


# ------------------------------------------------------------------------------------------------ post scores


def _reference_post_scores(views32, eng32, weights, prior_views):
    """PostScores' window values in NumPy (their definition)."""
    from simulator.ranking.base import DEFAULT_RATES

    views = views32.astype(np.float64)
    eng = eng32.astype(np.float64)
    total = views.sum()
    mean = eng.sum(axis=0) / total if total >= 100 else DEFAULT_RATES
    terms = (eng + prior_views * mean) * weights
    acc = terms[:, 0].copy()
    for j in range(1, terms.shape[1]):
        acc += terms[:, j]
    return acc / (views + prior_views)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), m=st.sampled_from([0, 1, 5, 8, 9, 127, 128, 129, 300, 1000, 9000, 20001]),
       scale=st.sampled_from([0.01, 1.0, 50.0]))
def test_post_score_kernel_is_the_numpy_definition(seed, m, scale):
    """Including NumPy's pairwise summation of the window's views (short windows below the 100-view prior too)."""
    from simulator.ranking.base import DEFAULT_RATES

    rng = np.random.default_rng(seed)
    views = (rng.exponential(scale, m) * 10.0 ** rng.integers(-2, 3, m)).astype(np.float32)
    eng = (rng.random((m, 5)) * views[:, None] * [0.3, 0.06, 0.01, 0.008, 0.004]).astype(np.float32)
    weights = np.array([0.5, 1.0, 2.0, 3.0, 0.0])
    got = kernels.post_scores(views, eng, weights, 20.0, DEFAULT_RATES)
    assert got.tobytes() == _reference_post_scores(views, eng, weights, 20.0).tobytes()


# ----------------------------------------------------------------------------------------- test-batch quotas


def _reference_cap_by_quota(draws, quota, served):
    """For You's cap on test draws in NumPy (its definition): EMPTY every draw of a post beyond the impressions its
    batch still needs, the post's draws taken in row-major order."""
    flat = draws.ravel().copy()
    idx = np.flatnonzero(flat != EMPTY)
    if idx.size == 0:
        return draws.copy()
    key = flat[idx].astype(np.int64) << 32
    key |= np.arange(idx.size)
    key.sort()
    ps = key >> 32
    at = key & 0xFFFFFFFF
    head = np.ones(ps.size, dtype=bool)
    head[1:] = ps[1:] != ps[:-1]
    first = np.maximum.accumulate(np.where(head, np.arange(ps.size), 0))
    occurrence = np.arange(ps.size) - first
    over = occurrence >= np.ceil(quota.take(ps) - served.take(ps))
    flat[idx.take(at[over])] = EMPTY
    return flat.reshape(draws.shape)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), k=st.integers(0, 4), posts=st.integers(1, 30))
def test_quota_kernels_are_the_numpy_definition(seed, n, k, posts):
    """cap_by_quota against its definition; count_out_of_network against a per-post count of the slots whose route
    is not FOLLOWED."""
    rng = np.random.default_rng(seed)
    lo = int(rng.integers(0, 50))
    draws = np.where(rng.random((n, k)) < 0.2, EMPTY, lo + rng.integers(0, posts, (n, k))).astype(np.int32)
    quota = rng.choice([50.0, 200.0, 800.0], lo + posts)
    served = quota - rng.choice([0.0, 0.5, 1.0, 2.0, 3.0, 7.5], lo + posts)
    got = kernels.cap_by_quota(draws, quota, served)
    assert got.dtype == draws.dtype and np.array_equal(got, _reference_cap_by_quota(draws, quota, served))
    routes = rng.integers(0, 3, (n, k)).astype(np.int8)
    counted = served.copy()
    kernels.count_out_of_network(draws, routes, counted, 0)
    shown = draws[(draws != EMPTY) & (routes != 0)]
    assert np.array_equal(counted - served, np.bincount(shown, minlength=lo + posts).astype(float))


# ---------------------------------------------------------------------------------------- For You's batches


def _for_you_state(rng, n):
    stage = rng.choice([-1, 0, 0, 1, 2, 6], n).astype(np.int8)
    quota = 50.0 * 4.0 ** np.maximum(stage, 0)
    served = np.where(rng.random(n) < 0.4, quota, quota * rng.random(n)).round()
    return stage, quota, served


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), accounts=st.integers(1, 20))
def test_for_you_batch_kernels_are_the_numpy_definition(seed, n, accounts):
    """judge_batches and for_you_pools against For You's NumPy steps: judge the delivered batches (graduate on the
    stage's weighted engagement rate, else retire), then the distributable posts and the two pools with the
    impressions their batch still needs."""
    rng = np.random.default_rng(seed)
    now = 1000.0
    author = rng.integers(0, accounts, n).astype(np.int32)
    created = np.sort(rng.uniform(900.0, 1010.0, n))
    removed, account_removed = rng.random(n) < 0.1, rng.random(accounts) < 0.1
    blocked, demoted = rng.random(n) < 0.1, rng.random(accounts) < 0.1
    held = np.where(rng.random(n) < 0.2, now + 5.0, np.where(rng.random(n) < 0.5, now - 5.0, 0.0))
    views = rng.integers(0, 300, n).astype(np.float32)
    eng = (views[:, None] * rng.random((n, 5)) * 0.4).round().astype(np.float32)
    weights = np.array([0.5, 1.0, 2.0, 3.0, 0.0])
    stage, quota, served = _for_you_state(rng, n)
    views_at, score_at = views * rng.random(n) * 0.8, (eng.astype(float) * weights).sum(axis=1) * rng.random(n)
    lo, hi = int(rng.integers(0, n)), n
    # NumPy definition (the steps For You ran before the kernels).
    want = [a.copy() for a in (stage, quota, served, views_at, score_at)]
    w_stage, w_quota, w_served, w_views_at, w_score_at = want
    active = np.arange(lo, hi)
    done = active[(w_stage[active] != -1) & (w_served[active] >= w_quota[active])]
    done = done[~(held[done] > now)]
    v = views[done].astype(np.float64)
    score = (eng[done] * weights).sum(axis=1)
    d_views = v - w_views_at[done]
    rate = np.divide(score - w_score_at[done], d_views, out=np.zeros(done.size), where=d_views > 0)
    passed = rate > 0.28
    up, out = done[passed], done[~passed]
    w_stage[out] = -1
    w_stage[up] = np.minimum(w_stage[up] + 1, 6)
    w_quota[up] = 50.0 * 4.0 ** w_stage[up].astype(np.float64)
    w_served[up] = 0.0
    w_views_at[up], w_score_at[up] = v[passed], score[passed]
    dist = (~removed[active]) & (~account_removed[author[active]]) & (created[active] < now)
    live = active[dist & (w_stage[active] != -1)]
    live = live[(~blocked[live]) & (~demoted[author[live]])]
    left = np.maximum(w_quota[live] - w_served[live], 0.0)
    testing = w_stage[live] == 0
    left[~testing & (held[live] > now)] = 0.0
    # The kernels.
    got = [a.copy() for a in (stage, quota, served, views_at, score_at)]
    g_stage, g_quota, g_served, g_views_at, g_score_at = got
    graduated = kernels.judge_batches(lo, hi, g_stage, g_quota, g_served, -1, 6, held, now, views, eng, weights,
                                      g_views_at, g_score_at, 0.28)
    g_quota[graduated] = 50.0 * 4.0 ** g_stage[graduated].astype(np.float64)
    assert np.array_equal(graduated, up)
    for g, w in zip(got, want):
        assert g.tobytes() == w.tobytes()
    pools = kernels.for_you_pools(lo, hi, g_stage, g_quota, g_served, -1, removed, author, account_removed,
                                  created, now, blocked, demoted, held)
    for g, w in zip(pools, (active[dist], live[testing], left[testing], live[~testing], left[~testing])):
        assert g.tobytes() == w.tobytes()


# ---------------------------------------------------------------------------------------------------- opinion


def _reference_persuade(support, users, candidates, persuasion):
    """persuade in NumPy (its definition)."""
    n_cols = support.shape[1]
    uniq, inv = np.unique(users, return_inverse=True)
    counts = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    pull = np.bincount(inv * n_cols + candidates, minlength=uniq.size * n_cols).reshape(uniq.size, n_cols)
    pull = pull.astype(np.float64)
    pull /= counts[:, None]
    moved = np.array([1.0 - math.pow(1.0 - persuasion, k) for k in counts])
    support[uniq] = (1.0 - moved)[:, None] * support[uniq] + moved[:, None] * pull


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), sort=st.booleans())
def test_persuasion_kernels_are_the_numpy_definition(seed, n, sort):
    from simulator.opinion import persuade

    rng = np.random.default_rng(seed)
    support = rng.dirichlet(np.ones(6), 50)
    users, candidates = rng.integers(0, 50, n), rng.integers(0, 5, n)
    if sort:
        users = np.sort(users)
    got, want = support.copy(), support.copy()
    persuade(got, users, candidates, 0.01)
    _reference_persuade(want, users, candidates, 0.01)
    assert got.tobytes() == want.tobytes()


# ------------------------------------------------------------------------------------------- step bookkeeping


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 30), k=st.integers(0, 6), probes=st.integers(0, 10),
       directed=st.integers(0, 10))
def test_step_bookkeeping_kernels_are_the_numpy_definition(seed, n, k, probes, directed):
    """flatten_feeds, engaged_political and step_events against the NumPy masks and concatenations they replace."""
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(100, n, replace=False)).astype(np.int64)
    posts = np.where(rng.random((n, k)) < 0.3, EMPTY, rng.integers(0, 40, (n, k)))
    routes = rng.integers(0, 3, (n, k)).astype(np.int8)
    session_time = rng.uniform(0, 60, n)
    shown = posts != EMPTY
    want = (np.broadcast_to(users[:, None], posts.shape)[shown], posts[shown], routes[shown],
            np.broadcast_to(session_time[:, None], posts.shape)[shown])
    got = kernels.flatten_feeds(users, posts, routes, session_time)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)
    imp_users, imp_posts, _, imp_times = got
    types = np.where(rng.random(imp_posts.size) < 0.5, 0, rng.integers(1, 32, imp_posts.size)).astype(np.uint8)
    candidate = rng.integers(-1, 5, 40).astype(np.int8)
    cand = candidate[imp_posts]
    sel = (types != 0) & (cand >= 0)
    e_users, e_cands = kernels.engaged_political(imp_users, imp_posts, types, candidate)
    assert np.array_equal(e_users, imp_users[sel]) and np.array_equal(e_cands, cand[sel].astype(np.int64))
    p_users, p_posts = rng.integers(0, 100, probes), rng.integers(0, 40, probes)
    acc, acc_posts = rng.integers(0, 100, directed), rng.integers(0, 40, directed)
    masks, times = rng.integers(1, 32, directed).astype(np.uint8), rng.uniform(0, 60, directed)
    events = kernels.step_events(imp_users, imp_posts, types, imp_times, p_users, p_posts, 30.0, acc, acc_posts,
                                 masks, times)
    want = (np.concatenate([imp_users, p_users, acc]), np.concatenate([imp_posts, p_posts, acc_posts]),
            np.concatenate([types, np.zeros(probes, np.uint8), masks]),
            np.concatenate([imp_times, np.full(probes, 30.0), times]),
            np.concatenate([np.ones(imp_posts.size + probes, bool), np.zeros(directed, bool)]))
    for g, w in zip(events, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)


def _reference_note_graduations(table, posts, kind):
    """note_graduations in NumPy (its definition)."""
    from simulator.population import ROUTE_OF_KIND

    delta = table.engagement_by_route[posts] - table.route_at_credit[posts]
    total = delta.sum(axis=1, keepdims=True)
    author = np.zeros_like(delta)
    author[np.arange(posts.size), ROUTE_OF_KIND[kind[table.author[posts]]]] = 1.0
    table.credit[posts] = np.where(total > 0, delta / np.maximum(total, 1e-12), author)
    table.route_at_credit[posts] = table.engagement_by_route[posts]
    table.has_credit[posts] = True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_graduation_credit_kernel_is_the_numpy_definition(seed):
    from simulator.content import PostTable
    from simulator.exposure import note_graduations

    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 6, 30).astype(np.int8)
    tables = []
    for _ in range(2):
        table = PostTable(capacity=64)
        r = np.random.default_rng(seed)
        table.add(author=r.integers(0, 30, 50), created=np.arange(50, dtype=float), topic=np.zeros(50, np.int16),
                  candidate=np.zeros(50, np.int8), quality=np.ones(50))
        tables.append(table)
    for step in range(4):
        grown = np.where(rng.random((50, 4)) < 0.6, 0.0, rng.exponential(3.0, (50, 4))).astype(np.float32)
        posts = np.flatnonzero(rng.random(50) < 0.5)
        for i, table in enumerate(tables):
            table.engagement_by_route[:50] += grown
            (note_graduations if i == 0 else _reference_note_graduations)(table, posts, kind)
    for column in ("credit", "route_at_credit", "has_credit"):
        assert getattr(tables[0], column).tobytes() == getattr(tables[1], column).tobytes()


# ------------------------------------------------------------------------------------------ mitigation stages


def _reference_note_first_times(first, accounts, times):
    """note_first_times in NumPy (its definition)."""
    unseen = np.isinf(first[accounts])
    if not unseen.any():
        return np.zeros(0, np.int64)
    acc, t = accounts[unseen], times[unseen]
    order = np.lexsort((t, acc))
    acc, t = acc[order], t[order]
    head = np.ones(acc.size, bool)
    head[1:] = acc[1:] != acc[:-1]
    first[acc[head]] = t[head]
    return acc[head]


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 200), accounts=st.integers(1, 40))
def test_mitigation_stage_kernels_are_the_numpy_definition(seed, n, accounts):
    """note_first_times, dampened (dormancy dampening) and first_hour_velocity (the circuit breaker) against the
    NumPy steps they replace."""
    from simulator.mitigations.base import ACTIVE, TYPE_BITS
    from simulator.mitigations.circuit_breaker import ACTIVE_TYPES

    rng = np.random.default_rng(seed)
    first = np.where(rng.random(accounts) < 0.5, np.inf, rng.uniform(0, 100, accounts))
    acc = rng.integers(0, accounts, n)
    t = rng.choice(np.arange(0.0, 120.0, 7.5), n)   # repeated times: ties between an account's events
    marked = np.zeros(accounts, dtype=bool)
    got_first, want_first = first.copy(), first.copy()
    seen = kernels.note_first_times(got_first, acc, t, marked)
    assert np.array_equal(seen, _reference_note_first_times(want_first, acc, t))
    assert got_first.tobytes() == want_first.tobytes() and not marked.any()
    # Dormancy dampening.
    damped_until = rng.uniform(0, 120, accounts)
    flag_stages = rng.integers(0, 4, accounts).astype(np.int64)
    weight, flagged = kernels.dampened(acc, t, damped_until, np.float32(0.25), flag_stages, 2, marked)
    damp = t < damped_until[acc]
    want_flag = np.unique(acc[damp])
    want_flag = want_flag[(flag_stages[want_flag] & 2) == 0]
    assert np.array_equal(weight, np.where(damp, np.float32(0.25), np.float32(1.0)))
    assert weight.dtype == np.float32 and np.array_equal(flagged, want_flag) and not marked.any()
    # The stage's whole step in one call: first activity of the events' accounts and of new posts' authors (one
    # array), a dormant account's probation from it, then the weights.
    authors, created_at = rng.integers(0, accounts, n // 3), rng.choice(np.arange(0.0, 120.0, 7.5), n // 3)
    dormant = rng.random(accounts) < 0.5
    got_first, got_until, want_first, want_until = first.copy(), damped_until.copy(), first.copy(), damped_until.copy()
    got = kernels.dormancy_weights(acc, t, authors, created_at, got_first, dormant, got_until, 30.0, np.float32(0.25),
                                   flag_stages, 2, marked)
    seen = kernels.note_first_times(want_first, np.r_[acc, authors], np.r_[t, created_at], marked)
    woken = seen[dormant[seen]]
    want_until[woken] = np.maximum(want_until[woken], want_first[woken] + 30.0)
    want = kernels.dampened(acc, t, want_until, np.float32(0.25), flag_stages, 2, marked)
    assert got_first.tobytes() == want_first.tobytes() and got_until.tobytes() == want_until.tobytes()
    assert all(np.array_equal(g, w) and g.dtype == w.dtype for g, w in zip(got, want)) and not marked.any()
    # A verdict's event weights checked and applied.
    base = rng.choice(np.array([1.0, 0.25, 0.0], np.float32), n)
    ew = rng.choice(np.array([1.0, 0.5, 0.1, 0.0], np.float32), n)
    product, ok = kernels.weighed(base, ew)
    assert ok and product.dtype == np.float32 and np.array_equal(product, base * ew)
    frozen = ew.copy()
    frozen.flags.writeable = False   # (a stage may hand back read-only weights: a signature of its own)
    assert np.array_equal(kernels.weighed(base, frozen)[0], product)
    if n:
        for bad in (np.nan, -0.5, 1.5):
            ew[rng.integers(0, n)] = bad
            assert not kernels.weighed(base, ew)[1]
            ew = np.clip(np.nan_to_num(ew), 0, 1).astype(np.float32)
    # Circuit breaker: first-hour counts of posts lo.., this step's first-hour events added.
    n_posts = 30
    created = np.sort(rng.uniform(0, 120, n_posts))
    fh_eng = rng.integers(0, 20, (n_posts, 5)).astype(np.float32)
    fh_views = rng.integers(0, 60, n_posts).astype(np.float32)
    post = rng.integers(0, n_posts, n)
    time = created[post] + rng.uniform(0, 90, n)
    types = rng.integers(0, 32, n).astype(np.uint8)
    w = rng.choice(np.array([1.0, 0.25, 0.0], np.float32), n)
    lo = int(rng.integers(0, n_posts))
    eng, views = kernels.first_hour_velocity(lo, n_posts, fh_eng, fh_views, ACTIVE_TYPES, post, time, w, types,
                                             int(ACTIVE), created, 60.0)
    young = np.arange(lo, n_posts)
    want_eng = fh_eng[young][:, ACTIVE_TYPES].sum(axis=1).astype(np.float64)
    want_views = fh_views[young].astype(np.float64)
    ok = post >= lo
    ok[ok] = time[ok] - created[post[ok]] < 60.0
    if ok.any():
        rel = post[ok] - lo
        wt = w[ok].astype(np.float64)
        want_views += np.bincount(rel, weights=wt, minlength=young.size)
        n_active = ((types[ok, None] & TYPE_BITS[ACTIVE_TYPES][None, :]) != 0).sum(axis=1)
        want_eng += np.bincount(rel, weights=wt * n_active, minlength=young.size)
    assert eng.tobytes() == want_eng.tobytes() and views.tobytes() == want_views.tobytes()


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), accounts=st.integers(1, 30), cap=st.integers(1, 12))
def test_rate_limit_kernel_is_the_numpy_definition(seed, n, accounts, cap):
    from simulator.mitigations.base import ACTIVE

    rng = np.random.default_rng(seed)
    account = rng.integers(0, accounts, n)
    types = np.where(rng.random(n) < 0.4, 0, rng.integers(0, 32, n)).astype(np.uint8)
    counts = np.zeros(accounts, dtype=np.int32)
    got = kernels.over_allowance(account, types, int(ACTIVE), cap, counts)
    active = np.flatnonzero((types & ACTIVE) != 0)
    per_account = np.bincount(account[active], minlength=accounts)
    assert np.array_equal(got, active[per_account[account[active]] > cap]) and not counts.any()


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), accounts=st.integers(1, 30),
       min_shared=st.integers(1, 4))
def test_co_engagement_bookkeeping_kernels_are_the_numpy_definition(seed, n, accounts, min_shared):
    """co_engagement_sorted (the sorted window read off its keys, equal keys in event order whatever order the
    sort left them in) and strong_pairs (pairs counted over the sorted codes) against the NumPy gathers and run
    counts they replace."""
    rng = np.random.default_rng(seed)
    acc, post = rng.integers(0, accounts, n), rng.integers(0, 8, n)
    t = rng.integers(0, 3, n) * 0.05 if n % 2 else rng.uniform(0, 2000, n)   # odd n: repeated keys are common
    composite = kernels.co_engagement_order_keys(acc, post, t, accounts)
    stable = np.argsort(composite, kind="stable")
    reversed_ties = np.lexsort((-np.arange(n), composite))   # a sort that left equal keys in reverse event order
    got = kernels.co_engagement_sorted(composite, reversed_ties, acc)
    assert np.array_equal(reversed_ties, stable)   # put right in place
    c = composite[stable]
    for g, w in zip(got, (acc[stable], c >> 36, (c >> 13) & ((1 << 23) - 1))):
        assert np.array_equal(g, w)
    pair = np.sort(rng.integers(0, accounts * accounts, n))
    a, b, count = kernels.strong_pairs(pair, accounts, min_shared)
    if pair.size:
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        runs = np.diff(np.r_[starts, pair.size])
        strong = runs >= min_shared
        want = pair[starts[strong]]
        assert np.array_equal(a, want // accounts) and np.array_equal(b, want % accounts)
        assert np.array_equal(count, runs[strong])
    else:
        assert a.size == b.size == count.size == 0


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), accounts=st.integers(1, 30),
       post_base=st.sampled_from([0, 5_000, (1 << 27) - 300]), time_base=st.sampled_from([0.0, 40_000.0]),
       posts=st.sampled_from([8, 200]), spare_bits=st.sampled_from([None, 3, 6]))
def test_packed_co_engagement_keys_give_the_composite_order(seed, n, accounts, post_base, time_base, posts,
                                                           spare_bits):
    """co_engagement_packed_keys sorted by value, read back by co_engagement_unpacked, gives the window in the order
    of the composite keys with equal keys in event order (co_engagement_sorted over a stable argsort). With few
    bits to spare (``spare_bits`` beyond the post, time and hash fields) events are numbered within buckets of post
    ids; the kernel declines only when a bucket of one post would still be too full."""
    rng = np.random.default_rng(seed)
    acc, post = rng.integers(0, accounts, n), post_base + rng.integers(0, posts, n)
    t = time_base + (rng.integers(0, 3, n) * 0.05 if n % 2 else rng.uniform(0, 2000, n))   # odd n: ties common
    max_bits = 63
    if spare_bits is not None and n:
        tq = np.floor(t * 8.0).astype(np.int64)
        max_bits = (int(post.max() - post.min()).bit_length() + int(tq.max() - tq.min()).bit_length() + 13
                    + spare_bits)
    keys, *layout = kernels.co_engagement_packed_keys(acc, post, t, accounts, max_bits)
    if n == 0:
        assert keys.size == 0
        return
    if keys.size == 0:   # declined: some post has more events than the spare bits can number
        assert spare_bits is not None and np.bincount(post - post.min()).max() > 1 << spare_bits
        return
    assert keys.size == n and np.unique(keys).size == n and keys.max() < 1 << max_bits
    got = kernels.co_engagement_unpacked(np.sort(keys), acc, *layout)
    composite = kernels.co_engagement_order_keys(acc, post, t, accounts)
    want = kernels.co_engagement_sorted(composite, np.argsort(composite, kind="stable"), acc)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def test_packed_co_engagement_keys_number_events_within_buckets_or_decline():
    """Post ids spanning 1000 (10 bits), one eighth of a minute (0 bits) and the 13-bit hash leave 2 bits of 25 for
    the event number. Forty events cannot be numbered in one go, but in buckets of post ids they can while no post
    holds more than four; when one post holds five, nothing fits and the caller sorts composite keys."""
    acc = np.arange(40, dtype=np.int64) % 7
    t = np.zeros(40)
    spread = np.linspace(0, 1000, 40).astype(np.int64)
    crowded = spread.copy()
    crowded[1:5] = 0
    for post, fits in ((spread, True), (crowded, False)):
        keys, *layout = kernels.co_engagement_packed_keys(acc, post, t, 7, 25)
        assert (keys.size == 40) == fits
        if fits:
            i_bits, t_bits, *_, bucket_acc = layout
            assert (i_bits, t_bits) == (2, 0) and bucket_acc.size == 40 and keys.max() < 1 << 25
            got = kernels.co_engagement_unpacked(np.sort(keys), acc, *layout)
            composite = kernels.co_engagement_order_keys(acc, post, t, 7)
            want = kernels.co_engagement_sorted(composite, np.argsort(composite, kind="stable"), acc)
            assert all(np.array_equal(g, w) for g, w in zip(got, want))


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(0, 300), min_size=1, max_size=5),
       codes=st.integers(1, 400), min_shared=st.integers(1, 4))
def test_strong_pairs_of_sorted_parts_are_those_of_their_union(seed, sizes, codes, min_shared):
    """strong_pairs_of_parts (the parts cut into value ranges, each range merged and counted on a thread) gives
    strong_pairs of the sorted union, whatever the parts' sizes and however a code's copies are spread over them."""
    from simulator.mitigations.coordination import strong_pairs_of_parts

    rng = np.random.default_rng(seed)
    accounts = 20
    parts = [np.sort(rng.integers(0, codes, z)) for z in sizes]
    got = strong_pairs_of_parts(parts, accounts, min_shared)
    want = kernels.strong_pairs(np.sort(np.concatenate(parts)), accounts, min_shared)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)
    merged = kernels.merge_sorted(parts[0], parts[-1])
    assert np.array_equal(merged, np.sort(np.concatenate([parts[0], parts[-1]])))


# -------------------------------------------------------------------------------------------- organic posts


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(0, 60), topics=st.integers(2, 20))
def test_organic_post_kernel_is_the_numpy_definition(seed, k, topics):
    rng = np.random.default_rng(seed)
    interests = rng.dirichlet(np.full(topics, 0.3), 80).astype(np.float32)
    support = np.clip(rng.dirichlet(np.ones(6), 80), 1e-9, None)
    who = np.sort(rng.choice(80, k, replace=False)).astype(np.int64)
    topic_u, political_u, pick_u = rng.random(k), rng.random(k), rng.random(k)
    got_topic, got_cand = kernels.organic_post_content(who, topic_u, interests, political_u, 0.3, pick_u, support, 6,
                                                       topics)
    # Audience.post's NumPy steps.
    cdf = np.cumsum(interests[who], axis=1)
    topic = np.minimum((topic_u[:, None] * cdf[:, -1:] > cdf).sum(axis=1), topics - 1)
    political = political_u < 0.3
    scdf = np.cumsum(support[who], axis=1)
    pick = np.minimum((pick_u[:, None] * scdf[:, -1:] > scdf).sum(axis=1), 5)
    cand = np.where(political & (pick < 5), pick, -1)
    topic = np.where(cand >= 0, 0, np.where(topic == 0, 1 + (who % (topics - 1)), topic))
    assert np.array_equal(got_topic, topic) and np.array_equal(got_cand, cand)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 200))
def test_session_kernel_is_the_numpy_definition(seed, n):
    rng = np.random.default_rng(seed)
    u, active = rng.random(n), rng.random(n + 3) < 0.6
    rate = rng.lognormal(0, 0.5, n + 3).astype(np.float32)
    w = float(rng.random())
    want = np.flatnonzero(active[:n] & (u < rate[:n] * np.float64(w)))
    assert np.array_equal(kernels.opening_sessions(u, active, rate, w), want)
