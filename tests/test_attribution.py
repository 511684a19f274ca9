"""Attribution of spec §5 on a hand-built world: every impression of a target post is credited to the route that
put it in the feed. In-network (and own-merit discovery) impressions go to the author's true kind; out-of-network
impressions earned by engagement go pro rata to the true kinds of the engagers of the stage since the post's last
graduation. Shares over organic / recruited / bot / paid sum to 1."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.content import N_ROUTES, PostTable
from simulator.exposure import ExposureLedger, credit_routes, note_graduations
from simulator.population import ROUTE_OF_KIND, ROUTES, Kind
from simulator.ranking import Route

ORGANIC, RECRUITED, BOT, PAID = (ROUTES.index(r) for r in ("organic", "recruited", "bot", "paid"))

# Accounts 0-5 are the audience (organic and recruited users); 6-10 are authors of every kind.
AUDIENCE_KINDS = [Kind.ORGANIC, Kind.ORGANIC, Kind.RECRUITED, Kind.ORGANIC, Kind.RECRUITED, Kind.ORGANIC]
A_ORGANIC, A_RECRUITED, A_BOT, A_INFLUENCER, A_CANDIDATE = range(6, 11)
KIND = np.array(AUDIENCE_KINDS + [Kind.ORGANIC, Kind.RECRUITED, Kind.BOT, Kind.INFLUENCER, Kind.CANDIDATE],
                dtype=np.int8)
AUTHOR_ROUTE = {A_ORGANIC: ORGANIC, A_RECRUITED: RECRUITED, A_BOT: BOT, A_INFLUENCER: PAID, A_CANDIDATE: ORGANIC}
TARGET = 0


def one_hot(i):
    v = np.zeros(N_ROUTES)
    v[i] = 1.0
    return v


def make_table(authors, candidates=None):
    t = PostTable(capacity=16)
    n = len(authors)
    candidates = [TARGET] * n if candidates is None else candidates
    ids = t.add(author=np.array(authors), created=np.arange(n, dtype=float), topic=np.zeros(n, np.int16),
                candidate=np.array(candidates), quality=np.ones(n))
    assert ids.tolist() == list(range(n))
    return t


def engage(table, post, **by_route):
    """Add engagements to the ground-truth per-route ledger: engage(t, 0, bot=6, organic=2)."""
    for route, count in by_route.items():
        table.engagement_by_route[post, ROUTES.index(route)] += count


def credit(table, posts, routes):
    return credit_routes(np.asarray(posts, dtype=np.int64), np.asarray(routes, dtype=np.int8), table, ROUTE_OF_KIND[KIND])


def test_route_of_kind_mapping():
    assert ROUTES == ("organic", "recruited", "bot", "paid")
    assert ROUTE_OF_KIND[Kind.ORGANIC] == ORGANIC
    assert ROUTE_OF_KIND[Kind.RECRUITED] == RECRUITED
    assert ROUTE_OF_KIND[Kind.BOT] == BOT
    assert ROUTE_OF_KIND[Kind.INFLUENCER] == PAID      # paid influencers
    assert ROUTE_OF_KIND[Kind.CANDIDATE] == ORGANIC    # official accounts are authentic


@pytest.mark.parametrize("route", [Route.FOLLOWED, Route.DISCOVERY])
def test_in_network_and_discovery_credit_the_author(route):
    authors = [A_ORGANIC, A_RECRUITED, A_BOT, A_INFLUENCER, A_CANDIDATE]
    table = make_table(authors)
    for p in range(len(authors)):                   # engagement must not matter on these routes
        engage(table, p, bot=7, organic=1)
    note_graduations(table, np.array([2, 3]), KIND)
    out = credit(table, range(len(authors)), [route] * len(authors))
    for p, a in enumerate(authors):
        assert out[p].tolist() == one_hot(AUTHOR_ROUTE[a]).tolist()


def test_engagement_route_is_credited_pro_rata_to_the_engagers_of_the_stage():
    table = make_table([A_CANDIDATE, A_INFLUENCER])
    # Stage 0 of post 0: 6 bot and 2 organic engagements, then it graduates.
    engage(table, 0, bot=6, organic=2)
    note_graduations(table, np.array([0]), KIND)
    want = np.zeros(N_ROUTES)
    want[[BOT, ORGANIC]] = [0.75, 0.25]
    assert np.allclose(credit(table, [0], [Route.ENGAGEMENT])[0], want)
    # More engagement during the next stage does not change the credit until the next graduation...
    engage(table, 0, organic=3, recruited=1, paid=4)
    assert np.allclose(credit(table, [0], [Route.ENGAGEMENT])[0], want)
    # ...which credits only the engagers since the previous one: 3 organic, 1 recruited, 4 paid of 8.
    note_graduations(table, np.array([0]), KIND)
    want = np.zeros(N_ROUTES)
    want[[ORGANIC, RECRUITED, PAID]] = [3 / 8, 1 / 8, 4 / 8]
    assert np.allclose(credit(table, [0], [Route.ENGAGEMENT])[0], want)
    # The same post on the other routes still goes to its author (a candidate: organic).
    out = credit(table, [0, 0, 0], [Route.FOLLOWED, Route.DISCOVERY, Route.ENGAGEMENT])
    assert out[0].tolist() == one_hot(ORGANIC).tolist() == out[1].tolist()
    assert np.allclose(out[2], want)


def test_engagement_route_without_a_reported_graduation_uses_the_whole_history():
    table = make_table([A_ORGANIC])
    engage(table, 0, bot=1, organic=1, paid=2)
    out = credit(table, [0], [Route.ENGAGEMENT])[0]
    assert np.allclose(out, [0.25, 0.0, 0.25, 0.5])


@pytest.mark.parametrize("author", [A_ORGANIC, A_RECRUITED, A_BOT, A_INFLUENCER, A_CANDIDATE])
def test_a_post_without_engagement_falls_back_to_its_author(author):
    table = make_table([author, author])
    # Post 0: no engagement and no graduation. Post 1: graduated once with engagement, then again without any new
    # engagement: the stage had no engagers, so its credit is the author's.
    engage(table, 1, bot=5)
    note_graduations(table, np.array([1]), KIND)
    assert credit(table, [1], [Route.ENGAGEMENT])[0].tolist() == one_hot(BOT).tolist()
    note_graduations(table, np.array([1]), KIND)
    out = credit(table, [0, 1], [Route.ENGAGEMENT, Route.ENGAGEMENT])
    assert out[0].tolist() == one_hot(AUTHOR_ROUTE[author]).tolist()
    assert out[1].tolist() == one_hot(AUTHOR_ROUTE[author]).tolist()


def test_mixed_batch_rows_sum_to_one():
    table = make_table([A_BOT, A_INFLUENCER, A_ORGANIC, A_RECRUITED])
    engage(table, 0, bot=6, organic=2)
    engage(table, 1, organic=1)
    engage(table, 3, recruited=2, bot=2)
    note_graduations(table, np.array([0, 1, 2]), KIND)
    posts = [0, 1, 2, 3, 0, 1, 2, 3, 0]
    routes = [Route.ENGAGEMENT] * 4 + [Route.FOLLOWED] * 2 + [Route.DISCOVERY] * 2 + [Route.ENGAGEMENT]
    out = credit(table, posts, routes)
    assert out.shape == (len(posts), N_ROUTES)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert np.all(out >= 0)
    assert np.allclose(out[0], [0.25, 0, 0.75, 0])
    assert np.allclose(out[1], one_hot(ORGANIC))
    assert np.allclose(out[2], one_hot(ORGANIC))          # graduated with no engagement: its (organic) author
    assert np.allclose(out[3], [0, 0.5, 0.5, 0])          # never graduated: whole history
    assert np.allclose(out[4], one_hot(BOT))
    assert np.allclose(out[5], one_hot(PAID))
    assert np.allclose(out[6], one_hot(ORGANIC))
    assert np.allclose(out[7], one_hot(RECRUITED))
    assert np.allclose(out[8], out[0])
    assert credit(table, [], []).shape == (0, N_ROUTES)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 4),                                    # post
                          st.lists(st.integers(0, 5), min_size=4, max_size=4),  # engagements by route
                          st.booleans()),                                       # graduates after
                min_size=1, max_size=25),
       st.lists(st.sampled_from([A_ORGANIC, A_RECRUITED, A_BOT, A_INFLUENCER, A_CANDIDATE]), min_size=5,
                max_size=5))
def test_credit_matches_a_reference_ledger(events, authors):
    """Random engagement and graduations, checked against an independent reference of §5."""
    table = make_table(authors)
    history = np.zeros((5, N_ROUTES))
    snapshot = np.zeros((5, N_ROUTES))
    ref_credit = {}
    for post, counts, graduates in events:
        table.engagement_by_route[post] += np.array(counts, dtype=np.float32)
        history[post] += counts
        if graduates:
            note_graduations(table, np.array([post]), KIND)
            delta = history[post] - snapshot[post]
            ref_credit[post] = delta / delta.sum() if delta.sum() > 0 else one_hot(AUTHOR_ROUTE[authors[post]])
            snapshot[post] = history[post]
    posts = np.repeat(np.arange(5), 3)
    routes = np.tile([Route.FOLLOWED, Route.DISCOVERY, Route.ENGAGEMENT], 5)
    out = credit(table, posts, routes)
    assert np.allclose(out.sum(axis=1), 1.0)
    for i, (p, r) in enumerate(zip(posts, routes)):
        author = one_hot(AUTHOR_ROUTE[authors[p]])
        if r != Route.ENGAGEMENT:
            want = author
        elif p in ref_credit:
            want = ref_credit[p]
        elif history[p].sum() > 0:
            want = history[p] / history[p].sum()
        else:
            want = author
        assert np.allclose(out[i], want, atol=1e-6), (p, r, out[i], want)


# ------------------------------------------------------------------------------------------- ledger


def make_ledger(n_candidates=3):
    n_audience = len(AUDIENCE_KINDS)
    undecided = n_candidates        # last column of support
    start = np.full((n_audience, n_candidates + 1), 0.1)
    start[[1, 2, 5], undecided] = 0.9          # users 1, 5 (organic) and 2 (recruited) are undecided
    start[[0, 3, 4], 0] = 0.9
    population = SimpleNamespace(kind=KIND, n_audience=n_audience, start_support=start, n=KIND.size)
    return ExposureLedger(population, n_candidates, TARGET)


def test_ledger_counts_only_the_organic_audience():
    # Posts: 0 target by the candidate, 1 target by a bot, 2 another candidate's, 3 not political.
    table = make_table([A_CANDIDATE, A_BOT, A_ORGANIC, A_ORGANIC], candidates=[TARGET, TARGET, 1, -1])
    engage(table, 0, bot=6, organic=2)
    note_graduations(table, np.array([0]), KIND)
    ledger = make_ledger()
    assert ledger.n_o == 4
    # Step 1. Users 2 and 4 are recruited: their impressions do not count.
    users = np.array([0, 0, 1, 2, 2, 4, 3, 5])
    posts = np.array([0, 2, 1, 0, 1, 0, 3, 2])
    routes = np.array([Route.ENGAGEMENT, Route.FOLLOWED, Route.FOLLOWED, Route.ENGAGEMENT, Route.FOLLOWED,
                       Route.DISCOVERY, Route.DISCOVERY, Route.DISCOVERY], dtype=np.int8)
    ledger.record(users, posts, routes, table, ROUTE_OF_KIND[KIND])
    assert ledger.impressions_o == 5                      # users 0, 0, 1, 3, 5
    assert ledger.target_impressions == 2                 # (0, post 0), (1, post 1)
    assert ledger.reach == 2
    assert ledger.persuadable_reach == 1                  # user 1
    assert ledger.candidate_impressions.tolist() == [2, 2, 0]
    assert np.allclose(ledger.route_impressions, [0.25, 0, 0.75 + 1.0, 0])
    assert ledger.route_impressions.sum() == pytest.approx(ledger.target_impressions)
    # Step 2: repeat impressions to already-reached users add impressions but no reach; a new user adds reach.
    users = np.array([0, 0, 1, 5, 4, 2])
    posts = np.array([1, 0, 0, 0, 0, 1])
    routes = np.array([Route.FOLLOWED, Route.DISCOVERY, Route.ENGAGEMENT, Route.ENGAGEMENT, Route.ENGAGEMENT,
                       Route.FOLLOWED], dtype=np.int8)
    ledger.record(users, posts, routes, table, ROUTE_OF_KIND[KIND])
    assert ledger.target_impressions == 6
    assert ledger.reach == 3                              # users 0, 1, 5
    assert ledger.persuadable_reach == 2                  # users 1, 5
    assert np.allclose(ledger.route_impressions, [0.25 + 1 + 0.25 * 2, 0, 1.75 + 1 + 0.75 * 2, 0])
    assert ledger.route_impressions.sum() == pytest.approx(ledger.target_impressions)
    shares = ledger.route_impressions / ledger.target_impressions
    assert shares.sum() == pytest.approx(1.0)


def test_ledger_with_no_target_impressions():
    table = make_table([A_ORGANIC, A_BOT], candidates=[1, -1])
    ledger = make_ledger()
    ledger.record(np.array([0, 1, 2]), np.array([0, 1, 0]), np.zeros(3, np.int8), table, ROUTE_OF_KIND[KIND])
    ledger.record(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8), table, ROUTE_OF_KIND[KIND])
    assert ledger.target_impressions == 0 and ledger.reach == 0
    assert ledger.route_impressions.sum() == 0
    assert ledger.impressions_o == 2


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from(list(Route))), max_size=40),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 9)), max_size=6))
def test_ledger_invariants(impressions, engagement):
    table = make_table([A_CANDIDATE, A_BOT, A_INFLUENCER, A_ORGANIC], candidates=[TARGET, TARGET, TARGET, 2])
    for post, route, count in engagement:
        table.engagement_by_route[post, route] += count
    note_graduations(table, np.array([0, 2]), KIND)
    ledger = make_ledger()
    for chunk in (impressions[: len(impressions) // 2], impressions[len(impressions) // 2:]):
        users = np.array([u for u, _, _ in chunk], dtype=np.int64)
        posts = np.array([p for _, p, _ in chunk], dtype=np.int64)
        routes = np.array([r for _, _, r in chunk], dtype=np.int8)
        ledger.record(users, posts, routes, table, ROUTE_OF_KIND[KIND])
    in_o = [(u, p) for u, p, _ in impressions if KIND[u] == Kind.ORGANIC]
    target = [(u, p) for u, p in in_o if p != 3]
    assert ledger.impressions_o == len(in_o)
    assert ledger.target_impressions == len(target)
    assert ledger.reach == len({u for u, _ in target})
    assert ledger.route_impressions.sum() == pytest.approx(ledger.target_impressions)
    assert np.all(ledger.route_impressions >= -1e-9)
    # the recruited users 2 and 4 are never reached, even when they saw the target's posts
    assert not ledger.reached[[2, 4]].any()
