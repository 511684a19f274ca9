"""Kernel threads: splitting a kernel's rows over threads (Numba's, or the Python pool) never changes a result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import simulator.audience as audience
import simulator.mitigations.coordination as coordination
import simulator.ranking.base as ranking_base
from simulator import kernel_threads, kernels
from simulator.config import load_scenario
from simulator.model import AuditWorld
from simulator.ranking import EMPTY as EMPTY_SLOT
from simulator.sweep.engines import threads_per_worker


@pytest.fixture
def threads():
    """Restore the process's kernel threads after a test changes them."""
    before = kernel_threads.kernel_threads()
    yield kernel_threads.set_kernel_threads
    kernel_threads.set_kernel_threads(before)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 60), cols=st.integers(1, 4), n_threads=st.integers(1, 5), min_rows=st.integers(1, 20))
def test_map_blocks_cover_the_rows_in_order(n, cols, n_threads, min_rows):
    """map_blocks' blocks are contiguous, in row order, cover every row once, and their results joined equal one
    call over all the rows."""
    a = np.arange(n * cols, dtype=np.int64).reshape(n, cols)
    before = kernel_threads.kernel_threads()
    try:
        kernel_threads.set_kernel_threads(n_threads)
        parts = kernel_threads.map_blocks(n, lambda s, e: (s, e, a[s:e] * 2), min_rows)
    finally:
        kernel_threads.set_kernel_threads(before)
    bounds = [(s, e) for s, e, _ in parts]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(e0 == s1 for (_, e0), (s1, _) in zip(bounds, bounds[1:]))
    assert len(parts) == 1 or all(e - s >= min_rows for s, e in bounds)
    assert np.array_equal(np.concatenate([block for *_, block in parts]), a * 2)


def test_map_blocks_uses_blocks_of_at_least_min_rows(threads):
    threads(4)
    seen = []
    kernel_threads.map_blocks(10, lambda s, e: seen.append((s, e)), 3)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]   # 10 // 3 = 3 blocks, not 4
    seen.clear()
    kernel_threads.map_blocks(5, lambda s, e: seen.append((s, e)), 3)
    assert seen == [(0, 5)]   # too few rows for two blocks: one call on this thread


def test_map_blocks_runs_blocks_on_other_threads(threads):
    import threading

    threads(2)
    names = set()

    def run(s, e):
        names.add(threading.current_thread().name)
        return np.arange(s, e)

    assert np.array_equal(np.concatenate(kernel_threads.map_blocks(8, run, 1)), np.arange(8))
    assert len(names) == 2 and any(n.startswith("simulator-kernel") for n in names)


@pytest.mark.parametrize("bad", [0, -1, 257, 2.0, True, "2"])
def test_set_kernel_threads_rejects_bad_values(threads, bad):
    with pytest.raises(ValueError, match="expected an integer from 1 to 256"):
        threads(bad)


@pytest.mark.parametrize("text, expected", [("3", 3), (" 1 ", 1), ("", None)])
def test_threads_from_environment(monkeypatch, text, expected):
    monkeypatch.setenv(kernel_threads.ENV_VARIABLE, text)
    want = expected if expected is not None else min(kernel_threads.available_cpus(), kernel_threads.MAX_THREADS)
    assert kernel_threads._threads_from_environment() == want


@pytest.mark.parametrize("text", ["0", "many", "1.5", "999"])
def test_bad_threads_environment_names_the_variable(monkeypatch, text):
    monkeypatch.setenv(kernel_threads.ENV_VARIABLE, text)
    with pytest.raises(ValueError, match=f"SIMULATOR_THREADS={text!r}: expected an integer from 1 to 256"):
        kernel_threads._threads_from_environment()


def test_threads_per_worker_shares_the_kernel_threads(threads):
    threads(4)
    assert [threads_per_worker(w) for w in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    threads(1)
    assert threads_per_worker(1) == 1


def _world_state(world: AuditWorld) -> list[np.ndarray]:
    t, n = world.posts, world.posts.n
    return [t.views[:n], t.engagements[:n], t.trusted_views[:n], t.engagement_by_route[:n], t.credit[:n],
            world.population.support, world.ledger.reached, np.array([world.impressions_served])]


@pytest.mark.parametrize("mitigations", [[], ['mitigations=[{name="dormancy_dampening"}, '
                                                 '{name="coordination_detection"}]']], ids=["plain", "mitigated"])
def test_worlds_split_over_threads_are_identical(threads, monkeypatch, mitigations):
    """Every split call site (feeds, in-network posts, interest draws, engagement draws, the step's counting,
    coordination detection's sorts and pairing) cut into many small blocks over three threads gives the world of
    one thread, bit for bit, with the campaign active, with and without mitigation stages."""
    overrides = ["population.organic_users=2500", "days=3", "campaign.bots.activation_day=1",
                 "campaign.recruits.recruit_day=1"] + mitigations
    s = load_scenario("romania_2024", overrides)
    threads(1)
    one = AuditWorld(s, np.random.SeedSequence(5)).run()
    calls = []
    real_row_blocks = kernel_threads.row_blocks

    def counting_row_blocks(n, min_rows):
        blocks = real_row_blocks(n, min_rows)
        calls.append(blocks)
        return blocks

    real_blocks = kernel_threads.map_blocks

    def counting_blocks(n, run, min_rows):
        calls.append(min(kernel_threads.kernel_threads(), n // max(1, min_rows)))
        return real_blocks(n, run, min_rows)

    monkeypatch.setattr(kernel_threads, "row_blocks", counting_row_blocks)
    monkeypatch.setattr(kernel_threads, "CONTENDED_CPU_PER_WALL", 0.0)   # never paused (a busy machine's CI too)
    monkeypatch.setattr(coordination, "map_blocks", counting_blocks)
    monkeypatch.setattr(kernels, "EVENTS_PER_THREAD", 13)
    monkeypatch.setattr(coordination, "PAIRING_EVENTS_PER_THREAD", 19)
    monkeypatch.setattr(ranking_base, "ROWS_PER_THREAD", 5)
    monkeypatch.setattr(ranking_base, "CHECKED_FEEDS_PER_THREAD", 9)
    monkeypatch.setattr(ranking_base, "DRAWS_PER_THREAD", 7)
    monkeypatch.setattr(audience, "IMPRESSIONS_PER_THREAD", 11)
    threads(3)
    split = AuditWorld(s, np.random.SeedSequence(5)).run()
    assert calls and max(calls) == 3   # blocks were in fact cut
    for a, b in zip(_world_state(one), _world_state(split)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("breaches, message", [
    ({}, None),
    ({5: [1, 0, 1], 9: [0, 5, EMPTY_SLOT]}, "twice"),            # the first breach in row order is reported
    ({2: [0, 5, EMPTY_SLOT], 9: [1, 0, 1]}, "does not exist"),
    ({11: [4, EMPTY_SLOT, EMPTY_SLOT]}, "future"),                # a breach in the last block only
])
def test_check_feeds_over_blocks_reports_the_first_breach(threads, monkeypatch, breaches, message):
    from worldkit import build_world

    from simulator.ranking import FeedContractError, Feeds
    from simulator.ranking.base import check_feeds

    world = build_world(n_accounts=3, n_audience=1, topics=1, author=[1, 1, 1, 2, 1],
                        created=[10.0, 20.0, 30.0, 40.0, 100.0], removed=[False, False, True, False, False],
                        account_removed=[False, False, True])
    view = world.view(100.0)
    posts = np.tile(np.array([0, 1, EMPTY_SLOT], dtype=np.int32), (12, 1))
    for row, feed in breaches.items():
        posts[row] = feed
    feeds = Feeds(posts, np.zeros(posts.shape, dtype=np.int8))
    monkeypatch.setattr(ranking_base, "CHECKED_FEEDS_PER_THREAD", 4)   # blocks of 4 rows: three blocks on three threads
    threads(3)
    if message is None:
        assert np.array_equal(check_feeds(feeds, 12, 3, view).posts, posts)
    else:
        with pytest.raises(FeedContractError, match=message):
            check_feeds(feeds, 12, 3, view)


_FORKED_CHILD_SCRIPT = """
import multiprocessing, warnings
import numpy as np
from simulator import kernel_threads

def split_in_child():
    return np.concatenate(kernel_threads.map_blocks(8, lambda s, e: np.arange(s, e), 1)).tolist()

if __name__ == "__main__":
    warnings.simplefilter("ignore", DeprecationWarning)   # Python 3.12+: fork() of a multi-threaded process
    from simulator.config import load_scenario
    from simulator.model import AuditWorld
    kernel_threads.set_kernel_threads(1)   # one kernel thread: no parallel region, so fork stays possible
    AuditWorld(load_scenario("romania_2024", ["population.organic_users=20000", "days=1"]),
               np.random.SeedSequence(1)).run()
    kernel_threads.set_kernel_threads(2)
    assert np.concatenate(kernel_threads.map_blocks(8, lambda s, e: np.arange(s, e), 1)).tolist() == list(range(8))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print(pool.apply_async(split_in_child).get(timeout=60))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_pool(tmp_path):
    """A process that ran a world on one kernel thread, then started the Python pool, can fork (e.g. a user's
    multiprocessing script), and the child still splits rows: the parent's pool threads do not exist in the child,
    so it starts its own instead of waiting on them forever. (In a fresh interpreter: a process that has run a
    parallel region on GNU OpenMP cannot fork at all, see simulator.kernel_threads.)"""
    import subprocess
    import sys

    script = tmp_path / "forked_child.py"
    script.write_text(_FORKED_CHILD_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(list(range(8)))


def test_a_block_that_splits_again_runs_whole(threads):
    """map_blocks called from a pool thread (a block whose work splits again) runs as one block there: with one
    pool worker, waiting on the pool from inside it would never end."""
    threads(2)

    def outer(start, stop):
        inner = np.concatenate(kernel_threads.map_blocks(6, lambda s, e: np.arange(s, e), 1))
        return np.full(stop - start, inner.sum())

    import threading

    result = []
    caller = threading.Thread(target=lambda: result.append(np.concatenate(kernel_threads.map_blocks(4, outer, 1))),
                              daemon=True)
    caller.start()
    caller.join(timeout=30)
    assert result, "map_blocks inside a pool thread waited on the pool forever"
    assert np.array_equal(result[0], np.full(4, 15))


def test_row_blocks_cuts_blocks_of_at_least_min_rows(threads, monkeypatch):
    threads(4)
    monkeypatch.setattr(kernel_threads, "_rows_factor", 1)
    assert [kernel_threads.row_blocks(n, 3) for n in (0, 5, 6, 9, 11, 12, 100)] == [1, 1, 2, 3, 3, 4, 4]
    monkeypatch.setattr(kernel_threads, "_rows_factor", kernel_threads.WORKQUEUE_ROWS_FACTOR)   # a slow layer
    assert kernel_threads.row_blocks(100, 3) == 2 and kernel_threads.row_blocks(95, 3) == 1
    threads(1)
    assert kernel_threads.row_blocks(10**6, 1) == 1


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), blocks=st.integers(1, 5))
def test_slot_counts_over_blocks_are_one_block(seed, n, blocks):
    """slot_counts_blocks: each block's integer counts added, follow events in event order, as one slot_counts."""
    rng = np.random.default_rng(seed)
    n_posts, n_accounts = 40, 30
    post = rng.integers(0, n_posts, n).astype(np.int64)
    account = rng.integers(0, n_accounts, n).astype(np.int64)
    types = (rng.integers(0, 32, n) * (rng.random(n) < 0.4)).astype(np.uint8)
    time = rng.random(n) * 300.0
    served = rng.random(n) < 0.7
    route = rng.integers(0, 4, n_accounts).astype(np.int8)
    created = rng.random(n_posts) * 200.0
    slot, posts = kernels.post_slots(post) if n else (np.zeros(0, np.int32), np.zeros(0, np.int64))
    args = (account, post, types, time, served, slot, posts.size, route, created, 60.0, 5, 4)
    want = kernels.slot_counts(*args, 0)
    got = kernels.slot_counts_blocks(blocks, *args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), blocks=st.integers(1, 5),
       breaches=st.lists(st.tuples(st.integers(0, 59), st.sampled_from(["repeat", "missing", "future", "route"])),
                         max_size=3))
def test_feed_violation_over_blocks_is_the_first_breach(seed, n, blocks, breaches):
    """feed_violation_blocks reports the breach feed_violation finds first in row order, whatever the blocks."""
    rng = np.random.default_rng(seed)
    k, n_posts = 4, 50
    posts = np.stack([rng.permutation(n_posts)[:k] for _ in range(n)]) if n else np.zeros((0, k), np.int64)
    posts = posts.astype(np.int64)
    routes = rng.integers(0, 3, posts.shape).astype(np.int8)
    created = np.zeros(n_posts)
    created[n_posts - 1] = 1e9   # the last post is not yet created
    for row, kind in breaches:
        if row < n:
            if kind == "repeat":
                posts[row, 1] = posts[row, 0]
            elif kind == "missing":
                posts[row, 2] = n_posts + 3
            elif kind == "future":
                posts[row, 3] = n_posts - 1
            else:
                routes[row, 0] = 7
    removed, author, account_removed = np.zeros(n_posts, bool), np.zeros(n_posts, np.int32), np.zeros(1, bool)
    args = (posts, routes, 0, 2, removed, author, account_removed, created, 100.0)
    assert kernels.feed_violation_blocks(blocks, *args) == kernels.feed_violation(*args)


_FORK_AFTER_REGION_SCRIPT = """
import os, warnings
import numpy as np
from simulator import kernels, kernel_threads

kernel_threads.set_kernel_threads(2)
blocks = kernel_threads.row_blocks(10**6, 1)
out = kernels.feed_violation_blocks(blocks, np.zeros((4, 2), np.int64), np.zeros((4, 2), np.int8), 0, 2,
                                    np.zeros(1, bool), np.zeros(1, np.int32), np.zeros(1, bool), np.zeros(1), 1.0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
import numba
print(numba.threading_layer(), [str(w.message)[:40] for w in caught if issubclass(w.category, RuntimeWarning)])
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_fork_after_a_parallel_region_warns_on_gnu_openmp(tmp_path):
    """After a parallel region on GNU OpenMP (which cannot survive fork), a fork warns in the parent, naming the
    remedies; on any other threading layer it does not."""
    import subprocess
    import sys

    script = tmp_path / "fork_after_region.py"
    script.write_text(_FORK_AFTER_REGION_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    layer, _, warned = done.stdout.strip().partition(" ")
    if layer == "omp":
        assert "simulator: this process ran kernels on" in warned
    else:
        assert warned == "[]"


def test_contended_regions_pause_the_threads(threads, monkeypatch):
    """note_step: two contended spans of parallel regions in a row (too little CPU per second of wall time) put the
    next steps on one thread; the threads are tried again after the pause, which doubles after a contended retry
    and starts over once a span is not contended."""
    threads(2)
    monkeypatch.setattr(kernel_threads, "_rows_factor", 1)
    pace = {"cpu": 0.0, "wall": 0.0, "contended": 0, "paused": 0, "pause": kernel_threads.FIRST_PAUSE_STEPS}
    monkeypatch.setattr(kernel_threads, "_pace", pace)
    span = kernel_threads.JUDGED_REGION_SECONDS

    def step(cpu_per_wall):
        pace["cpu"], pace["wall"] = cpu_per_wall * span, span
        kernel_threads.note_step()
        return kernel_threads.row_blocks(10**6, 1)

    assert step(1.9) == 2 and step(1.0) == 2   # one contended span alone changes nothing
    assert step(1.0) == 1                       # two in a row: paused
    first = kernel_threads.FIRST_PAUSE_STEPS
    for _ in range(first - 1):
        assert step(1.0) == 1                   # (spans during a pause are not judged)
    assert step(1.0) == 2                       # tried again
    assert step(1.0) == 1 and pace["paused"] == 2 * first   # contended again at once: the pause doubled
    for _ in range(2 * first):
        step(1.9)
    assert kernel_threads.row_blocks(10**6, 1) == 2
    assert step(1.9) == 2 and pace["pause"] == first   # a calm span starts the pauses over
    pace["cpu"], pace["wall"] = 0.0, span / 2   # too short a span is not judged yet
    kernel_threads.note_step()
    assert pace["wall"] == span / 2 and kernel_threads.row_blocks(10**6, 1) == 2
