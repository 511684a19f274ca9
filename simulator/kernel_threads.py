"""Kernel threads: the compiled kernels whose rows are independent run on several threads at once.

A feed's candidates, a user's in-network posts, a user's interest draws and an impression's engagement depend on
that row alone (and on arrays nobody writes meanwhile). Such a kernel has a ``*_blocks`` twin in
:mod:`simulator.kernels` that cuts its rows into :func:`row_blocks` contiguous blocks, runs the kernel on each block
on Numba's threads (``prange``) and writes each block's rows of the result: the same array, bit for bit, whatever
the number of blocks. The random draws are made before the call, in the run's streams, so threads never touch a
generator. :func:`map_blocks` does the same for Python callables on a small pool of Python threads (the work must
release the GIL), handing back the blocks' results: coordination detection's sorts and pairing use it.

Why two mechanisms. A parallel region on Numba's OpenMP threading layer costs a few microseconds: its threads spin a
while before they sleep, so a step's dozen kernel calls each find them awake. Handing a block to a Python thread
pool costs about 100 µs on the virtual machines we measure (a sleeping thread is woken through the kernel, then the
GIL changes hands twice), which only a call of several milliseconds repays. With Numba's ``workqueue`` layer (no
OpenMP runtime on the machine, e.g. a slim container without ``libgomp``) a parallel region costs as much as the
pool, and :func:`row_blocks` asks blocks :data:`WORKQUEUE_ROWS_FACTOR` times larger.

**Fork.** GNU OpenMP cannot survive ``fork()``: once a process has run a parallel region, Numba terminates any child
it forks ("fork() called from a process already using GNU OpenMP, this is unsafe"). The sweep engines start their
workers with ``spawn``; a script of your own that runs worlds in a ``multiprocessing`` pool should do the same
(``multiprocessing.get_context("spawn")``), or set ``SIMULATOR_THREADS=1``: with one thread no parallel region runs.

The number of threads is the CPUs this process may use, or the ``SIMULATOR_THREADS`` environment variable (an
integer ≥ 1), or what :func:`set_kernel_threads` last set. A sweep gives each of its worker processes its share of
the machine's CPUs (one thread each when there are as many workers as CPUs). Small calls run on the calling thread
alone.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import numba
import numpy as np

T = TypeVar("T")
ENV_VARIABLE = "SIMULATOR_THREADS"
MAX_THREADS = 256

_POOL_PREFIX = "simulator-kernel"
_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def available_cpus() -> int:
    """CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not on Linux
        return max(1, os.cpu_count() or 1)


def _threads_from_environment() -> int:
    text = os.environ.get(ENV_VARIABLE, "").strip()
    if not text:
        return min(available_cpus(), MAX_THREADS)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"{ENV_VARIABLE}={text!r}: expected an integer from 1 to {MAX_THREADS}")
    return value


def kernel_threads() -> int:
    """How many threads :func:`row_blocks` and :func:`map_blocks` may use."""
    global _threads
    if _threads is None:
        _threads = _threads_from_environment()
    return _threads


def set_kernel_threads(n: int) -> None:
    """Use ``n`` threads (1 ≤ n ≤ 256) from now on in this process; results do not depend on it."""
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"kernel threads: {n!r}: expected an integer from 1 to {MAX_THREADS}")
    with _pool_lock:
        if _pool is not None and int(n) != _threads:
            _pool.shutdown(wait=True)
            _pool = None
        _threads = int(n)


def _forget_pool_in_child() -> None:
    """After ``fork``: the parent's pool threads do not exist in the child; a new pool starts on first use."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _worker_pool(threads: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix=_POOL_PREFIX)
        return _pool


#: How much larger :func:`row_blocks` makes each block when Numba's threading layer is ``workqueue`` (a parallel
#: region there costs about 100 µs, as much as the Python pool, where OpenMP's costs a few).
WORKQUEUE_ROWS_FACTOR = 16
_rows_factor: int | None = None
_numba_threads = threading.local()   # .set: what this thread last passed to numba.set_num_threads


#: Parallel regions that ran on less than this many CPU-seconds per second were contended: another process held a
#: CPU (alone, both threads work or spin through a region: about 2).
CONTENDED_CPU_PER_WALL = 1.25
#: Regions are judged once they add up to this much wall time (seconds): the CPU time of a thread running on another
#: CPU is brought up to date only every few milliseconds, so shorter spans mislead.
JUDGED_REGION_SECONDS = 0.02
#: Steps run on one thread after contended regions (doubling after each contended retry, up to the most).
FIRST_PAUSE_STEPS, MAX_PAUSE_STEPS = 6, 384
_pace = {"cpu": 0.0, "wall": 0.0, "contended": 0, "paused": 0, "pause": FIRST_PAUSE_STEPS}


def run_blocks(kernel: Callable[..., T], n_rows: int, min_rows: int, *args) -> T:
    """``kernel(row_blocks(n_rows, min_rows), *args)`` for a ``*_blocks`` kernel, its parallel regions timed for
    :func:`note_step`."""
    blocks = row_blocks(n_rows, min_rows)
    if blocks <= 1:
        return kernel(1, *args)
    cpu, wall = time.process_time(), time.perf_counter()
    out = kernel(blocks, *args)
    _pace["cpu"] += time.process_time() - cpu
    _pace["wall"] += time.perf_counter() - wall
    return out


def note_step() -> None:
    """Called by a world at the end of each step: keeps blocks on one thread while the machine is contended.

    GNU OpenMP's threads spin while they wait for each other (that is what makes a parallel region cheap), so when
    another process holds a CPU a region waits for a descheduled thread, and the world runs several times slower
    than on one thread (five times with one busy process on this 2-CPU machine). Once :func:`run_blocks`' regions
    add up to :data:`JUDGED_REGION_SECONDS`, they are judged: below :data:`CONTENDED_CPU_PER_WALL` CPU-seconds per
    second they were contended. After two contended spans in a row the next :data:`FIRST_PAUSE_STEPS` steps run on
    one thread before the threads are tried again (after a contended retry the pause doubles, up to
    :data:`MAX_PAUSE_STEPS`). Results do not depend on it."""
    if _pace["paused"] > 0:
        _pace["paused"] -= 1
        return
    if _pace["wall"] < JUDGED_REGION_SECONDS:
        return
    contended = _pace["cpu"] < CONTENDED_CPU_PER_WALL * _pace["wall"]
    _pace["cpu"] = _pace["wall"] = 0.0
    _pace["contended"] = _pace["contended"] + 1 if contended else 0
    if _pace["contended"] >= 2:   # two spans in a row: one alone can mislead (a thread's CPU time lags)
        _pace["paused"] = _pace["pause"]
        _pace["pause"] = min(2 * _pace["pause"], MAX_PAUSE_STEPS)
        _pace["contended"] = 1    # a contended retry pauses again at once
    elif not contended:
        _pace["pause"] = FIRST_PAUSE_STEPS


def _parallel_rows_factor() -> int:
    """1 on Numba's OpenMP or TBB threading layer, :data:`WORKQUEUE_ROWS_FACTOR` on ``workqueue`` (found once, by
    starting Numba's threads)."""
    global _rows_factor
    if _rows_factor is None:
        from numba.np.ufunc import parallel

        parallel._launch_threads()   # chooses the layer (NUMBA_THREADING_LAYER, else TBB, OpenMP, workqueue)
        _rows_factor = WORKQUEUE_ROWS_FACTOR if numba.threading_layer() == "workqueue" else 1
    return _rows_factor


_regions_run = False   # whether row_blocks has let a parallel region run in this process


def _warn_before_fork() -> None:
    """A fork after a parallel region on GNU OpenMP: Numba terminates the child, so say why in the parent."""
    if _regions_run and numba.threading_layer() == "omp":
        import warnings

        warnings.warn("simulator: this process ran kernels on OpenMP threads, and GNU OpenMP cannot survive fork(): "
                      "Numba will terminate the child. Start processes with multiprocessing.get_context('spawn') or "
                      "set SIMULATOR_THREADS=1 (see simulator/kernel_threads.py).", RuntimeWarning, stacklevel=2)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_warn_before_fork)


def row_blocks(n_rows: int, min_rows: int) -> int:
    """How many blocks a ``*_blocks`` kernel should cut ``n_rows`` rows into: up to :func:`kernel_threads`, none
    smaller than ``min_rows`` rows (scaled up on a slow threading layer, see :data:`WORKQUEUE_ROWS_FACTOR`); 1 runs
    the kernel on the calling thread. Also limits Numba's threads for this thread's parallel regions to
    :func:`kernel_threads` (so a sweep worker given a share of the CPUs keeps to it)."""
    threads = kernel_threads()
    if threads <= 1 or n_rows < 2 * max(1, min_rows) or _pace["paused"]:
        return 1
    blocks = min(threads, n_rows // (max(1, min_rows) * _parallel_rows_factor()))
    if blocks <= 1:
        return 1
    global _regions_run
    _regions_run = True
    wanted = min(threads, numba.config.NUMBA_NUM_THREADS)
    if getattr(_numba_threads, "set", None) != wanted:   # Numba's setting is per calling thread
        numba.set_num_threads(wanted)
        _numba_threads.set = wanted
    return blocks


def map_blocks(n_rows: int, run_block: Callable[[int, int], T], min_rows: int) -> list[T]:
    """``[run_block(start, stop), ...]`` over contiguous blocks of the rows ``0 .. n_rows - 1``, in row order, run
    on up to :func:`kernel_threads` threads (this one included); no block has fewer than ``min_rows`` rows, so a
    small call is one block on this thread."""
    blocks = min(kernel_threads(), n_rows // max(1, min_rows))
    if blocks <= 1 or threading.current_thread().name.startswith(_POOL_PREFIX):
        return [run_block(0, n_rows)]   # (a block that splits again runs whole: waiting on the pool could deadlock)
    bounds = [n_rows * b // blocks for b in range(blocks + 1)]
    pool = _worker_pool(kernel_threads())
    others = [pool.submit(run_block, bounds[b], bounds[b + 1]) for b in range(1, blocks)]
    first = run_block(bounds[0], bounds[1])
    return [first] + [f.result() for f in others]
