"""Uniform draws from a run's streams by compiled code on several threads, equal to NumPy's bit for bit.

At 10^4 users a step draws about 10^5 uniforms (three per interest draw of the feeds, five per impression for
engagement, one per person for sessions), and NumPy's ``Generator.random`` makes them one at a time through a
function pointer, about 2 ns each here: a fifth of the step. :class:`StreamUniforms` makes exactly what
``Generator.random`` would (the same values, and the generator left in the same state) for a generator on NumPy's
``PCG64`` bit generator (``default_rng``, which every stream of :class:`simulator.seeding.RunStreams` is): one
compiled call reads the generator's state in place, draws the values in blocks on Numba's threads (each block jumps
ahead to its first word, PCG's O(log n) advance) and writes the state back.

NumPy's PCG64 (``pcg_setseq_128_xsl_rr_64``) is a 128-bit LCG, ``state ← state · M + inc``, each step's word
``rotr64(hi ^ lo, state >> 122)``. A float64 is ``(word >> 11) · 2^-53``; a float32 is ``(u32 >> 8) · 2^-24``, u32
the low half of a new word, whose high half is kept (``has_uint32``, ``uinteger``) for the next float32. The state
is read through the bit generator's ``ctypes.state_address`` (NumPy's ``pcg64_state``: a pointer to the 128-bit
state and increment, then ``has_uint32`` and ``uinteger``). That layout is NumPy's own: the first use checks it
against ``Generator.random`` on a scratch generator, and any other bit generator or layout simply asks NumPy.
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .kernel_threads import run_blocks
from .kernels import _JIT, blocks_jit

#: PCG64's multiplier (PCG_DEFAULT_MULTIPLIER_128), as (high, low) words.
MULTIPLIER_HIGH, MULTIPLIER_LOW = 0x2360ED051FC65DA4, 0x4385DF649FCCF645
#: The fewest uniforms a block draws (about 10 µs of work).
UNIFORMS_PER_THREAD = 8192
FLOAT64, FLOAT32 = 0, 1


@intrinsic
def _mul_wide(typingctx, a, b):
    """The 128-bit product of two uint64 as (high, low) words (one multiply instruction)."""
    def codegen(context, builder, signature, args):
        i128, i64 = ir.IntType(128), ir.IntType(64)
        product = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        high = builder.trunc(builder.lshr(product, ir.Constant(i128, 64)), i64)
        return context.make_tuple(builder, signature.return_type, (high, builder.trunc(product, i64)))

    return types.UniTuple(types.uint64, 2)(types.uint64, types.uint64), codegen


@njit(inline="always")
def _mul128(a_hi, a_lo, b_hi, b_lo):
    """(a · b) mod 2^128 of (high, low) words."""
    hi, lo = _mul_wide(a_lo, b_lo)
    return hi + a_hi * b_lo + a_lo * b_hi, lo


@njit(inline="always")
def _add128(a_hi, a_lo, b_hi, b_lo):
    """(a + b) mod 2^128 of (high, low) words."""
    lo = a_lo + b_lo
    return a_hi + b_hi + np.uint64(lo < a_lo), lo


@njit(inline="always")
def _next_word(s_hi, s_lo, i_hi, i_lo):
    """One PCG64 step: (new state high, new state low, the step's word)."""
    m_hi, m_lo = _mul128(s_hi, s_lo, np.uint64(MULTIPLIER_HIGH), np.uint64(MULTIPLIER_LOW))
    s_hi, s_lo = _add128(m_hi, m_lo, i_hi, i_lo)
    rot = s_hi >> np.uint64(58)
    x = s_hi ^ s_lo
    return s_hi, s_lo, (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))


@njit(**_JIT)
def _advance(s_hi, s_lo, i_hi, i_lo, delta):
    """The state ``delta`` steps on (pcg_advance_lcg_128: square-and-multiply of the affine step)."""
    cur_mult_hi, cur_mult_lo = np.uint64(MULTIPLIER_HIGH), np.uint64(MULTIPLIER_LOW)
    cur_plus_hi, cur_plus_lo = i_hi, i_lo
    acc_mult_hi, acc_mult_lo = np.uint64(0), np.uint64(1)
    acc_plus_hi, acc_plus_lo = np.uint64(0), np.uint64(0)
    d = np.uint64(delta)
    while d > 0:
        if d & np.uint64(1):
            acc_mult_hi, acc_mult_lo = _mul128(acc_mult_hi, acc_mult_lo, cur_mult_hi, cur_mult_lo)
            p_hi, p_lo = _mul128(acc_plus_hi, acc_plus_lo, cur_mult_hi, cur_mult_lo)
            acc_plus_hi, acc_plus_lo = _add128(p_hi, p_lo, cur_plus_hi, cur_plus_lo)
        m1_hi, m1_lo = _add128(cur_mult_hi, cur_mult_lo, np.uint64(0), np.uint64(1))
        cur_plus_hi, cur_plus_lo = _mul128(m1_hi, m1_lo, cur_plus_hi, cur_plus_lo)
        cur_mult_hi, cur_mult_lo = _mul128(cur_mult_hi, cur_mult_lo, cur_mult_hi, cur_mult_lo)
        d >>= np.uint64(1)
    x_hi, x_lo = _mul128(acc_mult_hi, acc_mult_lo, s_hi, s_lo)
    return _add128(x_hi, x_lo, acc_plus_hi, acc_plus_lo)


@njit(inline="always")
def _float64(w):
    return np.float64(w >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def _low_float32(w):
    return np.float32(np.uint32(w & np.uint64(0xFFFFFFFF)) >> np.uint32(8)) * np.float32(1.0 / 16777216.0)


@njit(inline="always")
def _high_float32(w):
    return np.float32(np.uint32(w >> np.uint64(32)) >> np.uint32(8)) * np.float32(1.0 / 16777216.0)


@njit(**_JIT)
def _fill_float64(out, a, e, first_word, s_hi, s_lo, i_hi, i_lo):
    """out[j] = word ``first_word + j`` of the stream at (s_hi, s_lo) as float64, for j in a .. e-1.

    A PCG step waits on the one before (a 128-bit multiply-add), so the words are made in four lanes at once, each
    jumped ahead to its quarter of the range; the last lane then goes on to the range's end."""
    q = (e - a) // 4
    h0, l0 = _advance(s_hi, s_lo, i_hi, i_lo, first_word + a)
    h1, l1 = _advance(s_hi, s_lo, i_hi, i_lo, first_word + a + q)
    h2, l2 = _advance(s_hi, s_lo, i_hi, i_lo, first_word + a + 2 * q)
    h3, l3 = _advance(s_hi, s_lo, i_hi, i_lo, first_word + a + 3 * q)
    for j in range(q):
        h0, l0, w0 = _next_word(h0, l0, i_hi, i_lo)
        h1, l1, w1 = _next_word(h1, l1, i_hi, i_lo)
        h2, l2, w2 = _next_word(h2, l2, i_hi, i_lo)
        h3, l3, w3 = _next_word(h3, l3, i_hi, i_lo)
        out[a + j] = _float64(w0)
        out[a + q + j] = _float64(w1)
        out[a + 2 * q + j] = _float64(w2)
        out[a + 3 * q + j] = _float64(w3)
    for j in range(a + 4 * q, e):
        h3, l3, w = _next_word(h3, l3, i_hi, i_lo)
        out[j] = _float64(w)


@njit(**_JIT)
def _fill_float32(out, a, e, first_half, s_hi, s_lo, i_hi, i_lo):
    """out[j] = half ``first_half + j`` of the stream at (s_hi, s_lo) as float32 (half 2k is word k's low half,
    2k + 1 its high half), for j in a .. e-1; whole words in four lanes, as :func:`_fill_float64`."""
    j = a
    h = first_half + a
    if j < e and h % 2 == 1:   # starting on a high half: its word's low half is not ours
        t_hi, t_lo = _advance(s_hi, s_lo, i_hi, i_lo, h // 2)
        _, _, w = _next_word(t_hi, t_lo, i_hi, i_lo)
        out[j] = _high_float32(w)
        j += 1
        h += 1
    first = h // 2              # the first whole word, at out[j], out[j + 1]
    words = (e - j) // 2
    q = words // 4
    h0, l0 = _advance(s_hi, s_lo, i_hi, i_lo, first)
    h1, l1 = _advance(s_hi, s_lo, i_hi, i_lo, first + q)
    h2, l2 = _advance(s_hi, s_lo, i_hi, i_lo, first + 2 * q)
    h3, l3 = _advance(s_hi, s_lo, i_hi, i_lo, first + 3 * q)
    for k in range(q):
        h0, l0, w0 = _next_word(h0, l0, i_hi, i_lo)
        h1, l1, w1 = _next_word(h1, l1, i_hi, i_lo)
        h2, l2, w2 = _next_word(h2, l2, i_hi, i_lo)
        h3, l3, w3 = _next_word(h3, l3, i_hi, i_lo)
        o = j + 2 * k
        out[o] = _low_float32(w0)
        out[o + 1] = _high_float32(w0)
        out[o + 2 * q] = _low_float32(w1)
        out[o + 2 * q + 1] = _high_float32(w1)
        out[o + 4 * q] = _low_float32(w2)
        out[o + 4 * q + 1] = _high_float32(w2)
        out[o + 6 * q] = _low_float32(w3)
        out[o + 6 * q + 1] = _high_float32(w3)
    o = j + 8 * q
    for k in range(4 * q, words):
        h3, l3, w = _next_word(h3, l3, i_hi, i_lo)
        out[o] = _low_float32(w)
        out[o + 1] = _high_float32(w)
        o += 2
    if o < e:                   # a last low half
        _, _, w = _next_word(h3, l3, i_hi, i_lo)
        out[o] = _low_float32(w)


@njit(**_JIT)
def _fill_values(lo, hi, cum, p_kind, p_out, p_count, p_start, out64, out32, s_hi, s_lo, i_hi, i_lo):
    """Values ``lo .. hi - 1`` of the pieces taken end to end (piece p's start at ``cum[p]``)."""
    for p in range(p_kind.size):
        a = max(lo, cum[p]) - cum[p]
        e = min(hi, cum[p + 1]) - cum[p]
        if a < e:
            o = p_out[p]
            if p_kind[p] == FLOAT64:
                _fill_float64(out64[o: o + p_count[p]], a, e, p_start[p], s_hi, s_lo, i_hi, i_lo)
            else:
                _fill_float32(out32[o: o + p_count[p]], a, e, p_start[p], s_hi, s_lo, i_hi, i_lo)


@njit(**blocks_jit())
def draw_into(blocks, pcg_words, half_word, kinds, counts, out64, out32):
    """Draw the requests (``kinds[r]`` FLOAT64 or FLOAT32, ``counts[r]`` values each, in order) from the PCG64
    state in ``pcg_words`` (state low, state high, increment low, increment high) and ``half_word`` (has_uint32,
    uinteger) as NumPy would: the float64 requests end to end into ``out64``, the float32 ones into ``out32``; the
    values cut into ``blocks`` blocks on Numba's threads. ``pcg_words`` and ``half_word`` are left in the state
    NumPy would leave."""
    s_lo, s_hi, i_lo, i_hi = pcg_words[0], pcg_words[1], pcg_words[2], pcg_words[3]
    has, uinteger = half_word[0], half_word[1]
    # Where each request's values come from, as NumPy draws them: `word` is the stream's next word, `kept` the word
    # whose high half NumPy keeps for the next float32 (-1: the state's own `uinteger`). Pieces: (kind, first
    # output index, count, first word or half).
    n_req = kinds.size
    p_kind = np.empty(2 * n_req, dtype=np.int64)
    p_out = np.empty(2 * n_req, dtype=np.int64)
    p_count = np.empty(2 * n_req, dtype=np.int64)
    p_start = np.empty(2 * n_req, dtype=np.int64)
    n_pieces = 0
    word, kept, at64, at32 = 0, -1, 0, 0
    for r in range(n_req):
        n = counts[r]
        if kinds[r] == FLOAT64:
            if n > 0:
                p_kind[n_pieces], p_out[n_pieces], p_count[n_pieces], p_start[n_pieces] = FLOAT64, at64, n, word
                n_pieces += 1
            word += n
            at64 += n
            continue
        first = 0
        if has != 0 and n > 0:
            if kept < 0:
                out32[at32] = np.float32(uinteger >> np.uint32(8)) * np.float32(1.0 / 16777216.0)
            else:
                p_kind[n_pieces], p_out[n_pieces], p_count[n_pieces], p_start[n_pieces] = FLOAT32, at32, 1, 2 * kept + 1
                n_pieces += 1
            has = 0
            first = 1
        rest = n - first
        if rest > 0:
            p_kind[n_pieces], p_out[n_pieces], p_count[n_pieces], p_start[n_pieces] = FLOAT32, at32 + first, rest, 2 * word
            n_pieces += 1
            kept = word + (rest - 1) // 2
            word = kept + 1
            has = rest % 2
        at32 += n
    p_kind, p_out, p_count, p_start = p_kind[:n_pieces], p_out[:n_pieces], p_count[:n_pieces], p_start[:n_pieces]
    cum = np.zeros(n_pieces + 1, dtype=np.int64)
    for p in range(n_pieces):
        cum[p + 1] = cum[p] + p_count[p]
    total = cum[n_pieces]
    if blocks <= 1:   # on this thread (no parallel region)
        _fill_values(0, total, cum, p_kind, p_out, p_count, p_start, out64, out32, s_hi, s_lo, i_hi, i_lo)
    else:
        for b in prange(blocks):
            _fill_values(total * b // blocks, total * (b + 1) // blocks, cum, p_kind, p_out, p_count, p_start, out64,
                         out32, s_hi, s_lo, i_hi, i_lo)
    if kept >= 0:   # NumPy keeps the last new float32 word's high half (stale once used, but kept)
        k_hi, k_lo = _advance(s_hi, s_lo, i_hi, i_lo, kept)
        _, _, w = _next_word(k_hi, k_lo, i_hi, i_lo)
        uinteger = np.uint32(w >> np.uint64(32))
    s_hi, s_lo = _advance(s_hi, s_lo, i_hi, i_lo, word)
    pcg_words[0], pcg_words[1] = s_lo, s_hi
    half_word[0], half_word[1] = has, uinteger


class StreamUniforms:
    """``generator.random`` for one generator, made by :func:`draw_into` when the generator is NumPy's PCG64 (its
    state read and written in place), else by the generator itself."""

    def __init__(self, generator: np.random.Generator):
        self.generator = generator
        self._state = _state_views(generator.bit_generator) if _layout_checked() else None

    def random(self, size: int | tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """``generator.random(size, dtype=dtype)`` (float64 or float32)."""
        return self.arrays([(size, dtype)])[0]

    def arrays(self, requests: list[tuple[int | tuple[int, ...], type]]) -> list[np.ndarray]:
        """``[generator.random(size, dtype=dtype) for size, dtype in requests]``: the same values and the same state
        after. Fewer than :data:`COMPILED_FROM` values in all are drawn by NumPy (a compiled call costs ~10 µs of
        set-up); otherwise the arrays are views of one buffer per dtype."""
        counts, kinds, total = [], [], 0
        for size, dtype in requests:
            n = size if isinstance(size, int) else int(np.prod(size, dtype=np.int64))
            kind = _KINDS.get(dtype)
            if kind is None:
                kind = _KINDS.get(np.dtype(dtype), -1)
            counts.append(n)
            kinds.append(kind)
            total += n
        if self._state is None or total < COMPILED_FROM or -1 in kinds:
            return [self.generator.random(size, dtype=dtype) for size, dtype in requests]
        n64 = sum(n for n, kind in zip(counts, kinds) if kind == FLOAT64)
        out64, out32 = np.empty(n64, dtype=np.float64), np.empty(total - n64, dtype=np.float32)
        run_blocks(draw_into, total, UNIFORMS_PER_THREAD, self._state[0], self._state[1],
                   np.array(kinds, dtype=np.int64), np.array(counts, dtype=np.int64), out64, out32)
        arrays, at64, at32 = [], 0, 0
        for (size, _), n, kind in zip(requests, counts, kinds):
            if kind == FLOAT64:
                arrays.append(out64[at64: at64 + n].reshape(size))
                at64 += n
            else:
                arrays.append(out32[at32: at32 + n].reshape(size))
                at32 += n
        return arrays


#: The fewest values in one call that :meth:`StreamUniforms.arrays` draws by compiled code.
COMPILED_FROM = 16384
_F64, _F32 = np.dtype(np.float64), np.dtype(np.float32)
_KINDS = {np.float64: FLOAT64, np.float32: FLOAT32, _F64: FLOAT64, _F32: FLOAT32, float: FLOAT64}


def _state_views(bit_generator) -> tuple[np.ndarray, np.ndarray] | None:
    """(pcg words, half word): uint64[4] and uint32[2] arrays over a PCG64 bit generator's own state memory, or None
    for any other bit generator. The views do not keep the memory alive: their user keeps the generator."""
    if type(bit_generator) is not np.random.PCG64:
        return None
    address = bit_generator.ctypes.state_address
    pcg = ctypes.c_void_p.from_address(address).value
    words = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(pcg))
    half = np.ctypeslib.as_array((ctypes.c_uint32 * 2).from_address(address + 8))
    return words, half


_layout: bool | None = None


def _layout_checked() -> bool:
    """Whether :func:`draw_into` on NumPy's PCG64 state memory gives what ``Generator.random`` gives (checked once,
    on a scratch generator, over float32 and float64 requests of odd and even sizes)."""
    global _layout
    if _layout is None:
        ours, numpy = np.random.default_rng(20241206), np.random.default_rng(20241206)
        state = _state_views(ours.bit_generator)
        ok = state is not None
        sizes = [(3, _F32), (5, _F64), (1, _F32), (40000, _F32), (2, _F32), (9, _F64), (7, _F32), (20001, _F64)]
        for size, dtype in sizes if ok else []:
            kind = np.array([FLOAT64 if dtype == _F64 else FLOAT32], dtype=np.int64)
            out64, out32 = np.empty(size if dtype == _F64 else 0), np.empty(size if dtype == _F32 else 0, np.float32)
            draw_into(1, *state, kind, np.array([size], dtype=np.int64), out64, out32)
            ok = ok and np.array_equal(out64 if dtype == _F64 else out32, numpy.random(size, dtype=dtype))
        _layout = ok and ours.bit_generator.state == numpy.bit_generator.state
    return _layout
