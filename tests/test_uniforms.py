"""Compiled uniforms: the values Generator.random gives, and the generator left in the state it leaves."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import simulator.uniforms as uniforms
from simulator import kernel_threads
from simulator.uniforms import StreamUniforms

_request = st.tuples(
    st.one_of(st.integers(0, 70), st.tuples(st.integers(0, 9), st.integers(1, 5)), st.integers(2000, 40000)),
    st.sampled_from([np.float32, np.float64]))


@contextmanager
def _compiled(per_block: int = 3):
    """Every call compiled, cut into blocks of ``per_block`` values or more over three threads."""
    before = kernel_threads.kernel_threads(), uniforms.COMPILED_FROM, uniforms.UNIFORMS_PER_THREAD
    kernel_threads.set_kernel_threads(3)
    uniforms.COMPILED_FROM, uniforms.UNIFORMS_PER_THREAD = 0, per_block
    try:
        yield
    finally:
        kernel_threads.set_kernel_threads(before[0])
        uniforms.COMPILED_FROM, uniforms.UNIFORMS_PER_THREAD = before[1:]


@pytest.fixture
def small_blocks():
    with _compiled():
        yield


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), calls=st.lists(st.lists(_request, min_size=1, max_size=4), min_size=1,
                                                       max_size=4),
       kept_half=st.booleans(), per_block=st.integers(1, 40))
def test_arrays_are_numpys_draws_and_state(seed, calls, kept_half, per_block):
    """Requests of float32 and float64 of odd and even sizes, in any order, after an odd float32 draw or not (NumPy's
    kept half word), drawn in blocks of any size: the values and the state after each call are NumPy's."""
    with _compiled(per_block):
        _check_calls(seed, calls, kept_half)


def _check_calls(seed, calls, kept_half):
    numpy_rng, ours = np.random.default_rng(seed), np.random.default_rng(seed)
    compiled = StreamUniforms(ours)
    assert compiled._state is not None   # this NumPy's PCG64 layout passed the check: the compiled path runs
    if kept_half:
        numpy_rng.random(1, dtype=np.float32)
        ours.random(1, dtype=np.float32)
    for requests in calls:
        want = [numpy_rng.random(size, dtype=dtype) for size, dtype in requests]
        got = compiled.arrays(requests)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)
        assert ours.bit_generator.state == numpy_rng.bit_generator.state
        # NumPy goes on from the state the compiled draws left.
        assert np.array_equal(ours.random(3, dtype=np.float32), numpy_rng.random(3, dtype=np.float32))


def test_random_is_one_request(small_blocks):
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    got = StreamUniforms(b).random((7, 5), np.float32)
    assert got.shape == (7, 5) and np.array_equal(got, a.random((7, 5), dtype=np.float32))
    assert np.array_equal(StreamUniforms(b).random(11), a.random(11))


def test_other_bit_generators_are_asked_directly(small_blocks):
    for make in (np.random.Philox, np.random.SFC64, np.random.MT19937):
        a, b = np.random.Generator(make(5)), np.random.Generator(make(5))
        compiled = StreamUniforms(b)
        assert compiled._state is None
        got = compiled.arrays([(9, np.float32), (4, np.float64)])
        assert np.array_equal(got[0], a.random(9, dtype=np.float32)) and np.array_equal(got[1], a.random(4))


def test_small_calls_are_numpys_own(monkeypatch):
    """Below COMPILED_FROM values a call is NumPy's (the same values; no compiled set-up)."""
    calls = []
    monkeypatch.setattr(uniforms, "draw_into", lambda *args: calls.append(args))
    rng = np.random.default_rng(1)
    StreamUniforms(rng).arrays([(uniforms.COMPILED_FROM // 3, np.float32)] * 2)
    assert calls == []


def test_the_layout_check_catches_a_wrong_layout(monkeypatch):
    """A NumPy whose PCG64 state memory is laid out otherwise fails the check, and every draw is NumPy's own."""
    real_views = uniforms._state_views

    def swapped(bit_generator):   # reads the 128-bit words high first, as a PCG64 without 128-bit integers lays them
        views = real_views(bit_generator)
        return None if views is None else (views[0][[1, 0, 3, 2]], views[1])

    monkeypatch.setattr(uniforms, "_state_views", swapped)
    monkeypatch.setattr(uniforms, "_layout", None)
    assert not uniforms._layout_checked()
    assert StreamUniforms(np.random.default_rng(1))._state is None
