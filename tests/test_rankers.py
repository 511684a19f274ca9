"""Rankers (spec §3) on hand-built worlds: the feed contract for every built-in ranker (hypothesis), the exact
behaviour of ``chronological``, interest retrieval and staged distribution of ``for_you``, and the vectorised
helpers of :mod:`simulator.ranking.base`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simulator.ranking import BUILTIN, EMPTY, Route
from simulator.ranking.base import (InterestSampler, alias_tables, check_feeds, compact_rows, dedupe_rows, in_network,
                                    top_k, weighted_draw)

from worldkit import N_TYPES, build_world, eligible_mask, follow_matrix_from_dense, new_ranker, request, shown

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NOW = 10_000.0
GRID = 30.0        # minutes: creation times and sessions on a grid, so ties and boundaries happen
MAX_AGE = 72 * 60.0
BUILTINS = sorted(BUILTIN)


# ------------------------------------------------------------------------------------------- random worlds


@st.composite
def worlds(draw, max_posts: int = 40, max_accounts: int = 12):
    """A small random world: posts created up to 85 h before ``NOW`` (some older than the 72 h distribution
    window, one possibly exactly at its edge) and up to 2 h after it (future posts, some exactly at ``NOW``),
    removed posts and accounts, a random follow graph, random engagement counts and interest estimates (with
    zeros), and previous sessions on the same time grid (ties with creation times) or none."""
    n_accounts = draw(st.integers(1, max_accounts))
    n_audience = draw(st.integers(1, n_accounts))
    topics = draw(st.integers(1, 5))
    n_posts = draw(st.integers(0, max_posts))
    author = draw(st.lists(st.integers(0, n_accounts - 1), min_size=n_posts, max_size=n_posts))
    slot = sorted(draw(st.lists(st.integers(-170, 4), min_size=n_posts, max_size=n_posts)))
    created = NOW + GRID * np.array(slot, dtype=float)
    p_removed_post = draw(st.sampled_from([0.0, 0.1, 0.3]))
    p_removed_account = draw(st.sampled_from([0.0, 0.1, 0.3]))
    density = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    who = draw(st.sampled_from(["all", "some", "some", "one", "none"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, topics, n_posts)
    views = rng.integers(0, 300, n_posts)
    engagements = np.minimum(rng.integers(0, 60, (n_posts, N_TYPES)), views[:, None])
    first_hour_views = rng.integers(0, 1 + views)
    first_hour_eng = np.minimum(engagements, first_hour_views[:, None])
    removed = rng.random(n_posts) < p_removed_post
    account_removed = rng.random(n_accounts) < p_removed_account
    follows = follow_matrix_from_dense(rng.random((n_accounts, n_accounts)) < density)
    interest = rng.dirichlet(np.ones(topics), size=n_audience)
    interest[rng.random(interest.shape) < 0.3] = 0.0
    interest[interest.sum(axis=1) == 0, 0] = 1.0
    interest /= interest.sum(axis=1, keepdims=True)
    sessions = rng.integers(-150, 1, n_audience) * GRID + NOW
    last_session = np.where(rng.random(n_audience) < 0.3, -np.inf, sessions)
    world = build_world(
        n_accounts=n_accounts, n_audience=n_audience, topics=topics, author=author, created=created, topic=topic,
        removed=removed, views=views, engagements=engagements, first_hour_views=first_hour_views,
        first_hour_engagements=first_hour_eng, served_views=views, account_removed=account_removed,
        follows=follows, interest_estimate=interest, last_session=last_session,
        candidate=rng.integers(-1, 3, n_posts), max_post_age_minutes=MAX_AGE)
    users = {"all": np.arange(n_audience), "some": np.flatnonzero(rng.random(n_audience) < 0.6),
             "one": rng.integers(0, n_audience, 1), "none": np.zeros(0, np.int64)}[who].astype(np.int64)
    feed_size = draw(st.integers(1, 12))
    return world, users, feed_size


ranker_settings = st.fixed_dictionaries({
    "candidates_per_feed": st.integers(1, 25),
    "in_network_per_feed": st.integers(0, 25),
    "test_slots": st.integers(0, 4),
    "test_batch": st.integers(1, 6),
    "graduation_threshold": st.sampled_from([0.0, 0.1, 0.28, 1.0, 5.0]),
    "growth": st.sampled_from([1.0, 2.0, 4.0]),
    "max_stage": st.integers(1, 3),
    "follow_boost": st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.0]),
})


def assert_feed_contract(feeds, view, users, feed_size):
    """Spec §3: shape, no duplicates, at most feed_size posts (EMPTY pads the end of a row), nothing from the
    future, nothing removed, no removed account's post; FOLLOWED posts come from followed accounts; and the
    platform's own check accepts the feeds."""
    posts = np.asarray(feeds.posts)
    routes = np.asarray(feeds.routes)
    assert posts.shape == (users.size, feed_size)
    assert routes.shape == posts.shape
    ok = eligible_mask(view)
    for i, u in enumerate(users):
        row = posts[i]
        s = shown(row)
        assert np.all(row[: s.size] != EMPTY) and np.all(row[s.size:] == EMPTY), f"padding not at the end: {row}"
        assert len(set(s.tolist())) == s.size, f"duplicate post in feed {row}"
        assert s.size <= feed_size
        assert np.all((s >= 0) & (s < view.n_posts))
        assert np.all(view.post_created[s] < view.now), "post from the future"
        assert not view.post_removed[s].any(), "removed post"
        assert not view.account_removed[view.post_author[s]].any(), "removed account's post"
        assert ok[s].all()
        r = routes[i, : s.size]
        assert np.isin(r, [Route.FOLLOWED, Route.DISCOVERY, Route.ENGAGEMENT]).all()
        fol = s[r == Route.FOLLOWED]
        if fol.size:
            assert view.follows[u, view.post_author[fol]].toarray().all(), "FOLLOWED post from an unfollowed account"
    checked = check_feeds(feeds, users.size, feed_size, view)
    assert np.array_equal(checked.posts, posts)
    grad = np.asarray(feeds.graduated)
    assert grad.ndim == 1 and np.all((grad >= 0) & (grad < view.n_posts))
    assert np.unique(grad).size == grad.size


@pytest.mark.parametrize("name", BUILTINS)
@PROPERTY
@given(case=worlds(), opts=ranker_settings, seed=st.integers(0, 1000))
def test_every_builtin_ranker_keeps_the_feed_contract(name, case, opts, seed):
    world, users, feed_size = case
    if name != "for_you":
        opts = {k: v for k, v in opts.items() if k in ("candidates_per_feed", "in_network_per_feed", "follow_boost")}
    ranker = new_ranker(name, world, feed_size=feed_size, **opts)
    view = world.view(NOW)
    feeds = ranker.rank(request(users, feed_size), view, np.random.default_rng(seed))
    assert_feed_contract(feeds, view, users, feed_size)
    if name in ("for_you", "engagement"):
        assert_in_network_posts_keep_the_followed_route(feeds, view, users, opts["in_network_per_feed"])


def assert_in_network_posts_keep_the_followed_route(feeds, view, users, in_network_per_feed):
    """A post that is among a user's in-network candidates (new since the last session, from an account the user
    follows) and also retrieved out of network keeps the FOLLOWED route (spec §5: in-network distribution is
    credited to the author, not to the engagers)."""
    inn, _ = in_network(view, users, in_network_per_feed)
    for i in range(users.size):
        eng = feeds.posts[i][(feeds.posts[i] != EMPTY) & (feeds.routes[i] == Route.ENGAGEMENT)]
        both = np.intersect1d(eng, shown(inn[i]))
        assert both.size == 0, f"in-network posts {both} of user {users[i]} shown on the ENGAGEMENT route"


@pytest.mark.parametrize("name", BUILTINS)
@PROPERTY
@given(case=worlds(max_accounts=30), opts=ranker_settings, seed=st.integers(0, 1000))
def test_every_builtin_ranker_keeps_the_contract_on_a_growing_world(name, case, opts, seed):
    """Several calls in a row on the same ranker (this exercises ``for_you``'s staged state): at each call the
    table has more posts (some still in the future), more engagement, more removals, and time has moved on."""
    world, users, feed_size = case
    if name != "for_you":
        opts = {k: v for k, v in opts.items() if k in ("candidates_per_feed", "in_network_per_feed", "follow_boost")}
    ranker = new_ranker(name, world, feed_size=feed_size, **opts)
    rng = np.random.default_rng(seed)
    chooser = np.random.default_rng(seed + 1)
    post_removal, account_removal = chooser.random(world.n_posts), chooser.random(world.n_accounts)  # once: monotone
    discovery = np.zeros(world.n_posts, dtype=np.int64)
    calls = 6
    for call in range(calls):
        now = NOW - (calls - 1) * 60.0 + call * 60.0
        n_visible = int(np.searchsorted(world.post_created, now + 60.0, "left"))   # includes next hour's posts
        frac = (call + 1) / calls
        w = world.copy(post_views=(world.post_views * frac).astype(np.int32),
                       post_engagements=(world.post_engagements * frac).astype(np.int32),
                       post_removed=world.post_removed & (post_removal < frac),
                       account_removed=world.account_removed & (account_removal < frac))
        view = w.view(now, n_posts=n_visible)
        feeds = ranker.rank(request(users, feed_size), view, rng)
        assert_feed_contract(feeds, view, users, feed_size)
        if name in ("for_you", "engagement"):
            assert_in_network_posts_keep_the_followed_route(feeds, view, users, opts["in_network_per_feed"])
        posts, routes = np.asarray(feeds.posts), np.asarray(feeds.routes)
        np.add.at(discovery, posts[(posts != EMPTY) & (routes == Route.DISCOVERY)], 1)
        for r in np.unique(routes[posts != EMPTY]):
            event(f"route {Route(r).name} served")
        if np.asarray(feeds.graduated).size:
            event("a post graduated")
    if name == "for_you":
        # A first test batch is never over-delivered, however many calls it is spread over.
        first_batch = float(opts["test_batch"])
        assert discovery.max(initial=0) <= math.ceil(first_batch)


# ------------------------------------------------------------------------------------------- chronological


@PROPERTY
@given(case=worlds(), seed=st.integers(0, 1000), in_network=st.integers(0, 25))
def test_chronological_is_exactly_the_newest_followed_posts_since_last_session(case, seed, in_network):
    world, users, feed_size = case
    ranker = new_ranker("chronological", world, feed_size=feed_size, in_network_per_feed=in_network)
    view = world.view(NOW)
    feeds = ranker.rank(request(users, feed_size), view, np.random.default_rng(seed))
    assert_feed_contract(feeds, view, users, feed_size)
    ok = eligible_mask(view)
    dense_follows = view.follows.toarray().astype(bool)
    for i, u in enumerate(users):
        avail = np.flatnonzero(ok & dense_follows[u, view.post_author]
                               & (view.post_created >= view.last_session[u])
                               & (view.post_created >= view.now - view.max_post_age_minutes))
        got = shown(feeds.posts[i])
        want = min(feed_size, avail.size)
        assert got.size == want, (got, avail)
        assert set(got.tolist()) <= set(avail.tolist())
        times = view.post_created[got]
        assert np.all(np.diff(times) <= 0), "not newest first"
        newest = np.sort(view.post_created[avail])[::-1][:want]
        assert np.array_equal(times, newest), "not the newest available posts"
        assert np.all(feeds.routes[i, :want] == Route.FOLLOWED)


def test_chronological_hand_built_example():
    # Accounts 0-1 are users, 2-4 authors. User 0 follows 2 and 3; user 1 follows 4 and last opened the app at
    # t=100. Post times (sorted): 50 (a2), 100 (a4), 120 (a3, removed), 150 (a3), 180 (a4), 200 (a2, at now).
    world = build_world(n_accounts=5, n_audience=2, topics=1, author=[2, 4, 3, 3, 4, 2],
                        created=[50, 100, 120, 150, 180, 200], removed=[0, 0, 1, 0, 0, 0],
                        follows=[(0, 2), (0, 3), (1, 4)], last_session=[-np.inf, 100.0])
    view = world.view(200.0)
    feeds = new_ranker("chronological", world, feed_size=3).rank(request([0, 1], 3), view,
                                                                  np.random.default_rng(0))
    assert feeds.posts.tolist() == [[3, 0, EMPTY], [4, 1, EMPTY]]
    feeds = new_ranker("chronological", world, feed_size=1).rank(request([0, 1], 1), view,
                                                                  np.random.default_rng(0))
    assert feeds.posts.tolist() == [[3], [4]]


# -------------------------------------------------------------------------------------------------- for_you


def _interest_world():
    """200 users: rows 0-99 care about topic 3 (93 % of their estimated profile), rows 100-199 about topic 5. 200
    posts with identical (zero) engagement, one fresh hour old: 40 on topic 3, 40 on topic 5, 20 on each of the
    six other topics. Nobody follows anybody, so every impression is out-of-network retrieval."""
    topics, n_users = 8, 200
    profile = np.full((n_users, topics), 0.01)
    profile[:100, 3] = 0.93
    profile[100:, 5] = 0.93
    topic = np.array([3] * 40 + [5] * 40 + [t for t in (0, 1, 2, 4, 6, 7) for _ in range(20)])
    rng = np.random.default_rng(7)
    rng.shuffle(topic)
    n = topic.size
    world = build_world(n_accounts=n_users + 10, n_audience=n_users, topics=topics,
                        author=n_users + np.arange(n) % 10, created=np.full(n, NOW - 60.0), topic=topic,
                        interest_estimate=profile)
    return world, topic


@pytest.mark.parametrize("name", ["for_you", "engagement"])
def test_retrieval_follows_the_users_interests(name):
    """Topic 3 is 20 % of the pool. A retrieval blind to interests would give the topic-3 users ~20 % topic-3
    posts (binomial sd ≈ 0.016 over these ~600 impressions). ``for_you`` draws a test-batch post from the
    profile's topic with probability 1 - explore = 0.85 and from the whole pool otherwise, so the expected share is
    0.85 × 0.93 + 0.15 × 0.20 ≈ 0.82 (a little less after within-feed repeats are dropped); ``engagement`` also
    multiplies every score by the interest match, so it does better still. The bound 0.6 is three times the pool
    share and more than ten sd below the expectation."""
    world, topic = _interest_world()
    # Huge first batch: quotas do not run out during the test, so the draw weights stay equal.
    ranker = new_ranker(name, world, feed_size=6, test_slots=6, test_batch=100_000, candidates_per_feed=20)
    users = np.arange(world.n_audience)
    view = world.view(NOW)
    feeds = ranker.rank(request(users, 6), view, np.random.default_rng(3))
    assert_feed_contract(feeds, view, users, 6)
    pool_share = {t: np.mean(topic == t) for t in (3, 5)}
    for rows, t in ((slice(0, 100), 3), (slice(100, 200), 5)):
        got = feeds.posts[rows]
        got = got[got != EMPTY]
        assert got.size >= 500, "feeds should be (nearly) full"
        share = np.mean(topic[got] == t)
        assert pool_share[t] == pytest.approx(0.2)
        assert share > 0.6, f"topic-{t} share {share:.2f} vs pool share {pool_share[t]:.2f}"


def _staged_world():
    """40 users, two new posts (A = 0 by account 40, B = 1 by account 41), nobody follows anybody."""
    return build_world(n_accounts=42, n_audience=40, topics=1, author=[40, 41], created=[NOW - 30.0] * 2)


def _count(feeds, post, route=None):
    hit = feeds.posts == post
    if route is not None:
        hit &= feeds.routes == route
    return int(hit.sum())


def _staged_ranker(world):
    return new_ranker("for_you", world, feed_size=5, test_slots=2, test_batch=5,
                      graduation_threshold=0.28, growth=4.0, candidates_per_feed=5, max_stage=6)


def _deliver_first_batches(ranker, world, users, rng, batch=5, max_calls=5):
    """Serve feeds (no engagement yet) until A and B have each had their first test batch of ``batch``
    impressions; returns the time of the next call. A batch may take more than one call but is never exceeded."""
    delivered = np.zeros(2, dtype=int)
    now = NOW
    for _ in range(max_calls):
        view = world.view(now)
        feeds = ranker.rank(request(users, 5), view, rng)
        assert_feed_contract(feeds, view, users, 5)
        assert feeds.graduated.size == 0
        for p in (0, 1):
            assert _count(feeds, p) == _count(feeds, p, Route.DISCOVERY), "a test batch is served on DISCOVERY"
            delivered[p] += _count(feeds, p, Route.DISCOVERY)
        assert np.all(delivered <= batch), "test batch over-delivered"
        now += 60.0
        if np.all(delivered == batch):
            return now
    raise AssertionError(f"first batches not delivered after {max_calls} calls: {delivered}")


def test_for_you_staged_distribution_graduates_high_rate_posts_only():
    world = _staged_world()
    users = np.arange(40)
    ranker = _staged_ranker(world)
    rng = np.random.default_rng(11)
    A, B = 0, 1
    now = _deliver_first_batches(ranker, world, users, rng)

    # The batch's response: A is engaging (0.5·5 watches + 4 likes + 2·1 comment = 8.5 per 5 views = 1.7 > 0.28),
    # B is not (0.5·1 watch per 5 views = 0.1 < 0.28).
    w2 = world.copy(post_views=np.array([5, 5], np.int32),
                    post_engagements=np.array([[5, 4, 1, 0, 0], [1, 0, 0, 0, 0]], np.int32))
    v2 = w2.view(now)
    feeds = ranker.rank(request(users, 5), v2, rng)
    assert_feed_contract(feeds, v2, users, 5)
    assert feeds.graduated.tolist() == [A]
    assert _count(feeds, A, Route.ENGAGEMENT) >= 4 * 5, "the next batch is growth (4) times the first (5)"
    assert _count(feeds, A, Route.DISCOVERY) == 0
    assert _count(feeds, B) == 0, "a post that failed its test batch leaves out-of-network distribution"

    # Later calls: B never comes back, and nothing graduates twice without new engagement.
    for step in (1, 2):
        feeds = ranker.rank(request(users, 5), w2.view(now + 60.0 * step), rng)
        assert _count(feeds, B) == 0
        assert feeds.graduated.size == 0


@pytest.mark.parametrize("new_views,new_likes,graduates", [(20, 10, True), (20, 2, False), (0, 0, False)])
def test_for_you_judges_each_stage_on_its_own_engagement(new_views, new_likes, graduates):
    """The rate that decides a graduation counts engagement and views *since the stage began*: after its first
    graduation (at 5 views, weighted score 8.5), A gets ``new_views`` more views with ``new_likes`` likes. 10 likes
    in 20 views (0.5) pass; 2 likes in 20 views (0.1) fail although A's lifetime rate (10.5 / 25 = 0.42) is above
    the threshold; a stage without new views fails."""
    world = _staged_world()
    users = np.arange(40)
    ranker = _staged_ranker(world)
    rng = np.random.default_rng(5)
    now = _deliver_first_batches(ranker, world, users, rng)
    w2 = world.copy(post_views=np.array([5, 5], np.int32),
                    post_engagements=np.array([[5, 4, 1, 0, 0], [0, 0, 0, 0, 0]], np.int32))
    feeds = ranker.rank(request(users, 5), w2.view(now), rng)
    assert feeds.graduated.tolist() == [0]
    assert _count(feeds, 0, Route.ENGAGEMENT) >= 20   # the whole stage-1 batch (5 × growth 4) is delivered
    eng = np.array([[5, 4 + new_likes, 1, 0, 0], [0, 0, 0, 0, 0]], np.int32)
    w3 = world.copy(post_views=np.array([5 + new_views, 5], np.int32), post_engagements=eng)
    feeds = ranker.rank(request(users, 5), w3.view(now + 60.0), rng)
    assert (feeds.graduated.tolist() == [0]) is graduates
    assert (_count(feeds, 0, Route.ENGAGEMENT) > 0) is graduates


def _route_of_a_graduated_followed_post(follow_boost: float):
    """User 0 follows account 1, whose post was created after the user's last session: an in-network candidate.
    The post first gets its one-impression test batch, then graduates, so at the second call it is also drawn out
    of network. Returns (posts, routes) of the second call."""
    world = build_world(n_accounts=2, n_audience=1, topics=1, author=[1], created=[NOW - 10.0],
                        follows=[(0, 1)], last_session=[NOW - 100.0])
    ranker = new_ranker("for_you", world, feed_size=3, test_slots=1, test_batch=1, graduation_threshold=0.0,
                        candidates_per_feed=1, in_network_per_feed=1, follow_boost=follow_boost)
    rng = np.random.default_rng(0)
    first = ranker.rank(request([0], 3), world.view(NOW), rng)
    assert first.posts.tolist() == [[0, EMPTY, EMPTY]]
    w2 = world.copy(post_views=np.array([1], np.int32), post_engagements=np.array([[1, 1, 0, 0, 0]], np.int32))
    second = ranker.rank(request([0], 3), w2.view(NOW + 60.0), rng)
    assert second.graduated.tolist() == [0]
    return second.posts, second.routes


@pytest.mark.parametrize("follow_boost", [0.0, 0.5, 1.0, 1.5, 3.0])
def test_for_you_in_network_repeat_keeps_the_followed_route(follow_boost):
    """Regression: the in-network copy of a repeated candidate must win whatever follow_boost is (with the
    candidates deduplicated only after top_k, follow_boost <= 1 let the ENGAGEMENT copy win)."""
    posts, routes = _route_of_a_graduated_followed_post(follow_boost)
    assert posts[0, 0] == 0
    assert routes[0, 0] == Route.FOLLOWED


def test_for_you_in_network_repeat_keeps_the_followed_route_when_scores_tie():
    """Regression: 30 users follow account 30, whose three fresh posts (topic 0) are in everyone's in-network
    candidates. The platform estimates zero interest in topic 0, so every candidate scores 0: a tie between the in-network
    copy and the out-of-network copy of the same post once the posts have graduated (follow_boost 1.5 > 1)."""
    n_users, n_posts = 30, 3
    world = build_world(n_accounts=n_users + 1, n_audience=n_users, topics=2, author=[n_users] * n_posts,
                        created=NOW - 50.0 + np.arange(n_posts), topic=[0] * n_posts,
                        follows=[(u, n_users) for u in range(n_users)], last_session=[NOW - 100.0] * n_users,
                        interest_estimate=np.tile([0.0, 1.0], (n_users, 1)))
    ranker = new_ranker("for_you", world, feed_size=1, test_slots=1, test_batch=1, graduation_threshold=0.0,
                        candidates_per_feed=5, in_network_per_feed=5, follow_boost=1.5)
    rng = np.random.default_rng(0)
    users = np.arange(n_users)
    graduated = 0
    for call in range(3):
        w = world.copy(post_views=np.full(n_posts, 1 + call, np.int32),
                       post_engagements=np.tile([1 + call, 1 + call, 0, 0, 0], (n_posts, 1)).astype(np.int32))
        view = w.view(NOW + 60.0 * call)
        feeds = ranker.rank(request(users, 1), view, rng)
        graduated += feeds.graduated.size
        assert_feed_contract(feeds, view, users, 1)
        assert_in_network_posts_keep_the_followed_route(feeds, view, users, 5)
    assert graduated > 0


# ----------------------------------------------------------------------------------------- helpers: rows


def _reference_dedupe(row):
    seen, out = set(), []
    for p in row:
        if p != EMPTY and p in seen:
            out.append(EMPTY)
        else:
            seen.add(p)
            out.append(p)
    return out


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.integers(-1, 6), min_size=0, max_size=9), min_size=1, max_size=5).flatmap(
    lambda rows: st.just([r + [EMPTY] * (max(map(len, rows)) - len(r)) for r in rows])))
def test_dedupe_rows_keeps_first_occurrence(rows):
    a = np.array(rows, dtype=np.int64).reshape(len(rows), -1)
    before = a.copy()
    out = dedupe_rows(a)
    assert np.array_equal(a, before), "input modified"
    assert out.tolist() == [_reference_dedupe(r) for r in a.tolist()]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.integers(-1, 6), min_size=4, max_size=4), min_size=1, max_size=5))
def test_compact_rows_moves_empty_to_the_end_keeping_order(rows):
    a = np.array(rows, dtype=np.int64)
    aligned = np.arange(a.size).reshape(a.shape) * 10
    out, out_aligned = compact_rows(a, aligned)
    for r in range(a.shape[0]):
        keep = a[r] != EMPTY
        n = int(keep.sum())
        assert out[r, :n].tolist() == a[r][keep].tolist()
        assert np.all(out[r, n:] == EMPTY)
        assert out_aligned[r, :n].tolist() == aligned[r][keep].tolist()
        assert sorted(out_aligned[r].tolist()) == sorted(aligned[r].tolist())


# Rows of equal width (1..30 columns) with few distinct scores, so ties are everywhere.
score_rows = st.integers(1, 30).flatmap(
    lambda c: st.lists(st.lists(st.integers(0, 2), min_size=c, max_size=c), min_size=1, max_size=3))


def _reference_top_k(row, k):
    return sorted(range(len(row)), key=lambda j: (-row[j], j))[: min(k, len(row))]


def test_top_k_orders_best_first_and_handles_k_beyond_columns():
    s = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -np.inf]])
    assert top_k(s, 2).tolist() == [[0, 2], [1, 0]]
    assert top_k(s, 3).tolist() == [[0, 2, 1], [1, 0, 2]]
    assert top_k(s, 10).tolist() == [[0, 2, 1], [1, 0, 2]]      # k > columns: all columns
    assert top_k(np.zeros((2, 0)), 4).shape == (2, 0)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(score_rows, st.integers(1, 35))
def test_top_k_selects_the_best_set_even_with_ties(rows, k):
    """Whatever the ties, the min(k, columns) selected columns are the best scores, best first, equal scores by
    column (the lower first): one answer, whatever sorting algorithm the CPU's vector units select."""
    s = np.array(rows, dtype=float)
    got = top_k(s, k)
    assert got.shape == (s.shape[0], min(k, s.shape[1]))
    for r in range(s.shape[0]):
        assert got[r].tolist() == _reference_top_k(s[r].tolist(), k)


# ------------------------------------------------------------------------------------ helpers: sampling


def _assert_frequencies(counts, p, draws):
    """Chi-square-style check: every cell within 5 binomial sd (+1 count) of its expectation, no mass where p
    is zero, and the Pearson statistic below a bound far in the tail for len(p) - 1 degrees of freedom."""
    counts = np.asarray(counts, dtype=float)
    p = np.asarray(p, dtype=float)
    p = p / p.sum()
    expected = draws * p
    assert counts.sum() == draws
    assert np.all(counts[p == 0] == 0), "drew an index of weight zero"
    sd = np.sqrt(draws * p * (1 - p))
    assert np.all(np.abs(counts - expected) <= 5 * sd + 1), (counts, expected)
    pos = expected >= 5                     # the usual validity rule for Pearson's statistic
    if pos.sum() > 1:
        chi2 = (((counts[pos] - expected[pos]) ** 2) / expected[pos]).sum()
        dof = pos.sum() - 1
        assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10, chi2


@pytest.mark.parametrize("weights", [
    [1.0],                                   # single-element pool
    [3.0, 1.0, 0.0, 6.0],
    [1e-6, 1.0, 0.0, 0.0, 5.0],             # very skewed, with zero weights
    [1000.0] + [0.001] * 50,
    list(np.arange(1, 65, dtype=float)),
])
def test_weighted_draw_frequencies_match_weights(weights):
    w = np.asarray(weights)
    cum = np.cumsum(w)
    draws = 200_000
    x = np.random.default_rng(1).random(draws) * cum[-1]
    idx = weighted_draw(cum, x)
    assert idx.min() >= 0 and idx.max() < w.size
    # exact: the index returned is the one whose cumulative interval holds x
    lo = np.concatenate([[0.0], cum[:-1]])[idx]
    assert np.all((lo <= x) & (x < cum[idx]))
    _assert_frequencies(np.bincount(idx, minlength=w.size), w, draws)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([0.0, 1e-9, 0.5, 1.0, 2.0, 1e6]), min_size=1, max_size=20)
       .filter(lambda w: sum(w) > 0), st.integers(0, 2**32 - 1))
def test_weighted_draw_returns_the_interval_holding_x(weights, seed):
    w = np.asarray(weights)
    cum = np.cumsum(w)
    x = np.random.default_rng(seed).random(500) * cum[-1]
    x = np.concatenate([x, [0.0], cum[:-1][cum[:-1] < cum[-1]]])   # boundaries: x equal to a cumulative weight
    idx = weighted_draw(cum, x)
    lo = np.concatenate([[0.0], cum[:-1]])[idx]
    assert np.all((lo <= x) & (x < cum[idx]))
    assert np.all(w[idx] > 0)


def _alias_reconstruction(prob, alias):
    """P(t) of the alias method: Σ_j [t == j] prob[j] + [alias[j] == t] (1 - prob[j]), divided by K."""
    n, k = prob.shape
    out = np.zeros((n, k))
    for r in range(n):
        for j in range(k):
            out[r, j] += prob[r, j]
            out[r, alias[r, j]] += 1.0 - prob[r, j]
    return out / k


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 12), st.integers(1, 6), st.sampled_from([0.05, 0.5, 1.0, 10.0]), st.integers(0, 2**32 - 1))
def test_alias_tables_reproduce_each_row_exactly(k, rows, alpha, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, alpha), size=rows)
    p = np.maximum(p, 1e-12)        # what InterestSampler passes in
    p[0] = np.full(k, 1.0)          # a uniform row
    prob, alias = alias_tables(p.copy())
    assert prob.shape == alias.shape == (rows, k)
    assert np.all((prob >= 0) & (prob <= 1 + 1e-6))
    assert np.all((alias >= 0) & (alias < k))
    want = p / p.sum(axis=1, keepdims=True)
    assert np.allclose(_alias_reconstruction(prob.astype(float), alias), want, atol=2e-6, rtol=0)


def test_alias_tables_sampling_reproduces_the_distribution():
    p = np.array([[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25], [1e-12, 1e-12, 1.0, 1e-12], [0.1, 0.2, 0.3, 0.4]])
    prob, alias = alias_tables(p.copy())
    rng = np.random.default_rng(2)
    draws = 100_000
    for r in range(p.shape[0]):
        col = rng.integers(0, 4, draws)
        t = np.where(rng.random(draws) < prob[r, col], col, alias[r, col])
        _assert_frequencies(np.bincount(t, minlength=4), p[r], draws)


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=worlds(max_posts=30), weights_seed=st.integers(0, 2**32 - 1), draws=st.integers(0, 8),
       explore=st.sampled_from([0.0, 0.15, 1.0]))
def test_interest_sampler_draws_only_positive_weight_pool_posts(case, weights_seed, draws, explore):
    world, users, _ = case
    view = world.view(NOW)
    rng = np.random.default_rng(weights_seed)
    pool = np.flatnonzero(rng.random(view.n_posts) < 0.6)
    weights = np.where(rng.random(pool.size) < 0.3, 0.0, rng.exponential(1.0, pool.size))
    sampler = InterestSampler(view.interest_estimate, explore=explore)
    out = sampler.draw(view, users, pool, weights, draws, rng)
    assert out.shape == (users.size, draws)
    allowed = set(pool[weights > 0].tolist())
    got = out[out != EMPTY]
    assert set(got.tolist()) <= allowed
    if allowed and draws:
        assert got.size == users.size * draws, "a non-empty pool fills every draw"
    else:
        assert got.size == 0


def test_interest_sampler_follows_the_profile_and_falls_back_to_the_pool():
    """User 0 wants topic 1 only; user 1 wants topic 2, which has no posts (draws fall back to the pool ∝ weight).
    With explore = 0 user 0 gets only topic-1 posts, in proportion to their weights."""
    world = build_world(n_accounts=3, n_audience=2, topics=3, author=[2] * 4, created=[0.0] * 4,
                        topic=[0, 1, 1, 0], interest_estimate=[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    view = world.view(100.0)
    sampler = InterestSampler(view.interest_estimate, explore=0.0)
    pool, weights = np.arange(4), np.array([1.0, 1.0, 3.0, 4.0])
    out = sampler.draw(view, np.array([0, 1]), pool, weights, 40_000, np.random.default_rng(4))
    _assert_frequencies(np.bincount(out[0], minlength=4), [0, 1, 3, 0], 40_000)
    _assert_frequencies(np.bincount(out[1], minlength=4), weights, 40_000)


@pytest.mark.parametrize("explore", [0.0, 0.15, 0.6])
def test_interest_sampler_draw_distribution_is_exact(explore):
    """P(post) = (1 - explore) · profile[topic] · w / W_topic + explore · w / W for a skewed three-topic profile,
    checked over many draws for two users (one row of the alias tables each)."""
    profiles = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    topic = np.array([0, 0, 1, 2, 2, 2, 1])
    weights = np.array([1.0, 3.0, 2.0, 0.5, 0.5, 5.0, 2.0])
    world = build_world(n_accounts=3, n_audience=2, topics=3, author=[2] * topic.size,
                        created=[0.0] * topic.size, topic=topic, interest_estimate=profiles)
    view = world.view(100.0)
    sampler = InterestSampler(view.interest_estimate, explore=explore)
    draws = 60_000
    out = sampler.draw(view, np.array([0, 1]), np.arange(topic.size), weights, draws, np.random.default_rng(9))
    w_topic = np.bincount(topic, weights=weights)
    for u in range(2):
        p = (1 - explore) * profiles[u, topic] * weights / w_topic[topic] + explore * weights / weights.sum()
        _assert_frequencies(np.bincount(out[u], minlength=topic.size), p, draws)
