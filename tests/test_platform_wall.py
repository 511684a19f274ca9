"""The structural wall of spec §3–4: a ranker (or a mitigation) sees a :class:`PlatformView` and nothing else. The
view exposes no true kind and no ground-truth post flag, its arrays are read-only, it cannot be given extra
(non-observable) data, and a view of a real world holds no reference to the world, its population or its post
table. A user ranker that tries to read the true kind fails."""

from __future__ import annotations

import gc
import types

import mesa
import numpy as np
import pytest

from simulator.audience import Audience
from simulator.config import Scenario, load_scenario
from simulator.content import PostTable
from simulator.exposure import ExposureLedger
from simulator.model import AuditWorld
from simulator.platform import PlatformView, make_view
from simulator.population import FollowGraph, Population
from simulator.ranking import EMPTY, Feeds, Route, make_ranker
from simulator.ranking.base import empty_feeds

from simulator.ranking.base import check_feeds
from worldkit import OBSERVABLES, build_world, ranker_context, request

SCENARIO = ["population.organic_users=500", "days=2"]

#: Names a leaky view might use for ground truth (true kinds, post flags, attribution ledger) or for the world.
FORBIDDEN = [
    "kind", "kinds", "true_kind", "account_kind", "account_kinds", "account_true_kind", "is_bot", "account_is_bot",
    "bot_rows", "recruit_rows", "influencer_rows", "candidate_rows",
    "sponsored", "post_sponsored", "disclosed", "post_disclosed", "campaign", "post_campaign", "quality",
    "post_quality", "engagement_by_route", "post_engagement_by_route", "credit", "post_credit", "has_credit",
    "post_has_credit", "route_at_credit", "post_route_at_credit", "impressions_o", "post_impressions_o",
    "interests", "support", "start_support", "leading", "activity_rate",
    "world", "model", "population", "pop", "posts", "table", "post_table", "audience", "ledger", "scenario",
    "operator", "platform", "streams", "rng",
]
GROUND_TRUTH_WORDS = ("kind", "sponsor", "disclos", "campaign", "quality", "credit", "by_route", "support",
                      "leading", "bot", "recruit", "influencer")


@pytest.fixture(scope="module")
def world():
    w = AuditWorld(load_scenario("romania_2024", SCENARIO), np.random.SeedSequence(1))
    for _ in range(12):          # half a day, so the post table and the engagement counts are not empty
        w.step()
    assert w.posts.n > 0
    return w


@pytest.fixture(scope="module")
def view(world):
    return make_view(world, world.now)


def small_view():
    world = build_world(n_accounts=4, n_audience=2, topics=2, author=[2, 3, 2], created=[0.0, 10.0, 20.0],
                        topic=[0, 1, 1], views=[5, 6, 7], engagements=np.ones((3, 5)), follows=[(0, 2), (1, 3)],
                        last_session=[-np.inf, 5.0])
    return world, world.view(30.0)


# --------------------------------------------------------------------------------------------- no ground truth


def test_view_slots_are_observables_only():
    for name in PlatformView.__slots__:
        assert not any(word in name for word in GROUND_TRUTH_WORDS), name
    assert set(PlatformView.__slots__) == set(OBSERVABLES)


@pytest.mark.parametrize("name", FORBIDDEN)
def test_view_exposes_no_ground_truth(view, name):
    assert not hasattr(view, name)
    with pytest.raises(AttributeError):
        getattr(view, name)
    assert name not in dir(view)


def test_view_has_no_instance_dict(view):
    assert not hasattr(view, "__dict__"), "a __dict__ would let anyone attach data to the view"
    with pytest.raises(AttributeError):
        object.__setattr__(view, "kind", np.zeros(3))


# --------------------------------------------------------------------------------------------------- read-only


def _array_slots(v):
    return {name: getattr(v, name) for name in PlatformView.__slots__ if isinstance(getattr(v, name), np.ndarray)}


@pytest.mark.parametrize("which", ["world", "hand-built"])
def test_view_arrays_are_read_only(which, view):
    v = view if which == "world" else small_view()[1]
    arrays = _array_slots(v)
    assert {"post_author", "post_removed", "post_engagements", "account_removed", "interest_estimate",
            "last_session"} <= set(arrays)
    for name, a in arrays.items():
        assert not a.flags.writeable, name
        assert a.size > 0, name
        with pytest.raises(ValueError):
            a[...] = a
        with pytest.raises(ValueError):
            a.flat[0] = a.flat[0]
        with pytest.raises(ValueError):
            np.copyto(a, a.copy())


def test_making_a_view_does_not_freeze_the_world(world, view):
    """The read-only flag is on the view's own array objects, not on the simulation's columns."""
    assert world.posts.author.flags.writeable and world.posts.engagements.flags.writeable
    assert world.account_removed.flags.writeable and world.audience.last_session.flags.writeable
    assert not view.post_author.flags.writeable


def test_view_follow_graph_is_read_only(view):
    """The CSR follow graph is the world's own matrix: writing through the view must fail too."""
    before = view.follows.copy()
    for name in ("data", "indices", "indptr"):
        arr = getattr(view.follows, name)
        with pytest.raises(ValueError):
            arr[:1] = arr[:1]
    assert (view.follows != before).nnz == 0


def test_view_follow_graph_cannot_be_written_even_if_built_from_a_writable_matrix():
    """The view wraps the follow matrix itself, whatever it is given."""
    world, v = small_view()
    assert world.follows.data.flags.writeable        # the hand-built source matrix is writable
    with pytest.raises(ValueError):
        v.follows.data[:] = 0
    assert world.follows.data.all()


def _fresh_world(seed=2):
    return AuditWorld(load_scenario("romania_2024", SCENARIO), np.random.SeedSequence(seed))


def test_a_ranker_cannot_write_the_worlds_follow_graph():
    w = _fresh_world()
    before = w.population.follows.matrix.copy()
    v = make_view(w, w.now)
    for name in ("data", "indices", "indptr"):
        with pytest.raises(ValueError):
            getattr(v.follows, name)[:] = 0
    assert (w.population.follows.matrix != before).nnz == 0


def test_a_ranker_cannot_replace_the_worlds_follow_graph():
    """The view holds its own matrix object over read-only views of the world's buffers (no copy): rebinding an
    attribute of it does not touch the world's matrix."""
    w = _fresh_world()
    before = w.population.follows.matrix.copy()
    v = make_view(w, w.now)
    assert v.follows is not w.population.follows.matrix
    assert np.shares_memory(v.follows.indices, w.population.follows.matrix.indices)
    v.follows.data = np.zeros_like(v.follows.data)     # rebinding, not writing: no read-only flag stops it
    assert (w.population.follows.matrix != before).nnz == 0


def test_view_attributes_cannot_be_set(view):
    for name in ("now", "post_author", "follows", "n_posts", "kind", "sponsored", "anything"):
        with pytest.raises(AttributeError):
            setattr(view, name, 0)
    with pytest.raises(AttributeError):
        view.now += 60.0
    assert isinstance(view.now, float)


# ------------------------------------------------------------------------------------------------ construction


def test_view_rejects_a_non_observable_keyword():
    world, _ = small_view()
    obs = world.observables(30.0)
    PlatformView(**obs)                                         # every slot: fine
    for extra in ({"kind": np.zeros(4, np.int8)}, {"post_sponsored": np.zeros(3, bool)},
                  {"engagement_by_route": np.zeros((3, 4))}, {"world": object()}):
        with pytest.raises(TypeError, match="not observable"):
            PlatformView(**obs, **extra)


def test_view_built_from_a_real_world_holds_only_observables(world, view):
    assert view.n_posts == world.posts.n
    assert view.n_accounts == world.population.n
    assert view.n_audience == world.population.n_audience
    assert view.now == world.now
    for name, a in _array_slots(view).items():
        if name.startswith("post_"):
            assert a.shape[0] == view.n_posts, name
    assert view.interest_estimate.shape == (view.n_audience, view.topics)
    assert view.last_session.shape == (view.n_audience,)
    assert view.account_removed.shape == (view.n_accounts,)
    assert view.follows.shape == (view.n_accounts, view.n_accounts)


def _reachable(root):
    """Every object reachable from the view's slots, following gc referents and ndarray bases, but not types,
    modules or functions (the class graph reaches everything)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    stack = [getattr(root, name) for name in PlatformView.__slots__]
    seen: dict[int, object] = {}
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, skip):
            continue
        seen[id(o)] = o
        if isinstance(o, np.ndarray):
            if o.base is not None:
                stack.append(o.base)
        stack.extend(gc.get_referents(o))
    return list(seen.values())


def test_view_of_a_real_world_holds_no_reference_to_the_world(world, view):
    reachable = _reachable(view)
    forbidden_types = (AuditWorld, mesa.Model, mesa.Agent, Population, PostTable, FollowGraph, Audience,
                       ExposureLedger, Scenario)
    offenders = [type(o).__name__ for o in reachable if isinstance(o, forbidden_types)]
    assert offenders == []
    ids = {id(o) for o in reachable}
    scenario = next(v for v in vars(world).values() if isinstance(v, Scenario))   # world.config
    for obj in (world, world.population, world.posts, world.audience, world.ledger, scenario,
                world.population.follows, world.platform, world.operator):
        assert id(obj) not in ids, type(obj).__name__
    # and no reachable array shares memory with a ground-truth column
    pop, posts = world.population, world.posts
    truth = {"kind": pop.kind, "interests": pop.interests, "support": pop.support,
             "start_support": pop.start_support, "leading": pop.leading, "activity_rate": pop.activity_rate,
             "sponsored": posts.sponsored, "disclosed": posts.disclosed, "campaign": posts.campaign,
             "quality": posts.quality, "engagement_by_route": posts.engagement_by_route, "credit": posts.credit,
             "route_at_credit": posts.route_at_credit, "has_credit": posts.has_credit}
    arrays = [o for o in reachable if isinstance(o, np.ndarray)]
    assert arrays
    for name, t in truth.items():
        for a in arrays:
            assert not np.shares_memory(a, t), f"a view array shares memory with ground truth {name!r}"


def test_view_at_the_start_of_a_run_holds_no_reference_to_the_world():
    w = _fresh_world(5)
    v = make_view(w, w.now)
    assert v.n_posts == 0
    ids = {id(o) for o in _reachable(v)}
    assert not ids & {id(w), id(w.population), id(w.posts), id(w.audience), id(w.population.follows)}


class _CarryingArray(np.ndarray):
    """An array that (like a column object with a back-reference) carries another object."""


def test_the_reference_walk_would_catch_a_leak(world):
    """The walk above is not vacuous: an observable array that is a view of an object holding the population would
    be caught, and so would an array that is a view of a ground-truth column."""
    obs = {name: getattr(make_view(world, world.now), name) for name in PlatformView.__slots__}
    carrier = np.array(world.audience.last_session).view(_CarryingArray)
    carrier.leak = world.population
    obs["last_session"] = carrier
    assert any(o is world.population for o in _reachable(PlatformView(**obs)))
    obs["last_session"] = world.audience.last_session
    obs["post_paid_label"] = world.posts.sponsored[: world.posts.n]
    arrays = [o for o in _reachable(PlatformView(**obs)) if isinstance(o, np.ndarray)]
    assert any(np.shares_memory(a, world.posts.sponsored) for a in arrays)


def test_the_model_hands_rankers_a_platform_view():
    """What the platform passes to its ranker inside the model, captured by a spying ranker."""
    world = AuditWorld(load_scenario("romania_2024", SCENARIO), np.random.SeedSequence(4))
    seen = []

    class Spy:
        def rank(self, req, v, rng):
            seen.append(v)
            return empty_feeds(req.users.size, req.feed_size)

    original = world.platform.ranker
    world.platform.ranker = Spy()
    try:
        world.step()
    finally:
        world.platform.ranker = original
    assert len(seen) == 1 and type(seen[0]) is PlatformView
    assert not any(hasattr(seen[0], name) for name in FORBIDDEN)
    assert all(not a.flags.writeable for a in _array_slots(seen[0]).values())
    ids = {id(o) for o in _reachable(seen[0])}
    assert not ids & {id(world), id(world.population), id(world.posts), id(world.audience)}


# ----------------------------------------------------------------------------------------- cheating rankers


class CheatingRanker:
    """A user ranker that tries to boost accounts by their true kind."""

    def __init__(self, context, **options):
        self.context = context

    def rank(self, request, view, rng):
        kind = view.kind                                  # must raise AttributeError
        posts = np.full((request.users.size, request.feed_size), EMPTY, dtype=np.int64)
        return Feeds(posts, np.zeros(posts.shape, np.int8) + kind[0])


class FlagPeekingRanker(CheatingRanker):
    def rank(self, request, view, rng):
        _ = view.post_sponsored
        return empty_feeds(request.users.size, request.feed_size)


class WritingRanker(CheatingRanker):
    """Tries to hide everything it does not like by marking it removed."""

    def rank(self, request, view, rng):
        view.post_removed[:] = True
        return empty_feeds(request.users.size, request.feed_size)


def test_a_cheating_ranker_cannot_read_the_true_kind():
    world, v = small_view()
    ranker = make_ranker(ranker_context(f"{__name__}.CheatingRanker", n_audience=2, topics=2))
    assert isinstance(ranker, CheatingRanker)
    with pytest.raises(AttributeError):
        ranker.rank(request([0, 1], 3), v, np.random.default_rng(0))
    with pytest.raises(AttributeError):
        FlagPeekingRanker(None).rank(request([0, 1], 3), v, np.random.default_rng(0))


def test_a_cheating_ranker_cannot_mark_posts_removed():
    world, v = small_view()
    with pytest.raises(ValueError):
        WritingRanker(None).rank(request([0, 1], 3), v, np.random.default_rng(0))
    assert not world.post_removed.any()


@pytest.mark.parametrize("cls,error", [("CheatingRanker", AttributeError), ("FlagPeekingRanker", AttributeError),
                                       ("WritingRanker", ValueError)])
def test_a_cheating_user_ranker_fails_inside_the_model(cls, error):
    scenario = load_scenario("romania_2024", SCENARIO + [f"ranker.name={__name__}.{cls}"])
    world = AuditWorld(scenario, np.random.SeedSequence(3))
    with pytest.raises(error):
        for _ in range(24):       # until somebody opens the app
            world.step()
    assert not world.posts.removed.any()


def test_an_honest_user_ranker_runs_inside_the_model():
    scenario = load_scenario("romania_2024", SCENARIO + [f"ranker.name={__name__}.HonestRanker"])
    world = AuditWorld(scenario, np.random.SeedSequence(3))
    for _ in range(6):
        world.step()
    assert world.platform.ranker.calls > 0


class HonestRanker:
    """Newest followed posts, through the observable view only."""

    def __init__(self, context, **options):
        self.calls = 0
        self.inner = make_ranker(ranker_context("chronological", n_audience=context.n_audience,
                                                topics=context.topics))

    def rank(self, request, view, rng):
        self.calls += 1
        feeds = self.inner.rank(request, view, rng)
        assert np.all(feeds.routes == Route.FOLLOWED)
        return feeds


def test_builtin_rankers_run_on_a_real_view(world, view):
    users = np.flatnonzero(np.arange(view.n_audience) % 7 == 0)
    for name in ("chronological", "engagement", "for_you", "random"):
        ranker = make_ranker(ranker_context(name, n_audience=view.n_audience, topics=view.topics))
        feeds = ranker.rank(request(users, 10), view, np.random.default_rng(0))
        assert feeds.posts.shape == (users.size, 10)
        check_feeds(feeds, users.size, 10, view)
