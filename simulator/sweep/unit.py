"""One unit of work: a point's scenario, one replicate, in a worker process.

A unit gets replicate r's seed sequence from the sweep's root seed (``replicate_seeds(root, R)[r]``, spawn key
``(r,)``) whatever its point: common random numbers, so points compare pairwise, and the same result whatever the
engine, worker count or order of completion. A unit that raises comes back as a ``failed`` record with its error
and traceback; it never stops the others.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from dataclasses import dataclass

from ..config import Scenario


@dataclass(frozen=True)
class UnitTask:
    point_id: int
    replicate: int
    replicates: int
    root_seed: int
    scenario: Scenario


def seed_text(root_seed: int, replicate: int) -> str:
    """The seed column of points.csv: root seed / replicate, i.e. ``SeedSequence(root).spawn(R)[replicate]``."""
    return f"{root_seed}/{replicate}"


def one_line_error(exc: BaseException) -> str:
    """``Type: message`` on one line (the first line of the message)."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _clean(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def run_unit(task: UnitTask, kernel_threads: int | None = None) -> dict:
    """Run one replicate of one point; return the outcome part of its record (status, error, metrics, timing).
    ``kernel_threads``: the threads this worker's kernels may use (its share of the machine; results do not depend
    on it), or None to keep the process's setting."""
    from ..audit import WORLD_CACHE, run_replicate
    from ..kernel_threads import set_kernel_threads
    from ..seeding import replicate_seeds

    if kernel_threads is not None:
        set_kernel_threads(kernel_threads)
    t0 = time.perf_counter()
    try:
        seed = replicate_seeds(task.root_seed, task.replicates)[task.replicate]
        result = run_replicate(task.scenario, task.replicate, seed, cache=WORLD_CACHE)
        out = {"status": "ok", "error": "", "traceback": "",
               "spawn_key": [int(k) for k in result.spawn_key],
               "metrics": {k: _clean(v) for k, v in sorted(result.metrics.items())}}
    except Exception as exc:  # noqa: BLE001 - a failing point is recorded, not fatal
        out = {"status": "failed", "error": one_line_error(exc), "traceback": traceback.format_exc(),
               "spawn_key": [task.replicate], "metrics": {}}
    out["compute_seconds"] = time.perf_counter() - t0
    out["worker_pid"] = os.getpid()
    return out


def exit_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Worker initializer: end this process when the sweep's parent process is gone (e.g. ``kill -9``), so no
    orphaned worker keeps computing or holds the machine."""

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
