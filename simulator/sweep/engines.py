"""Engines: where a sweep's units run.

* ``local`` (default): a process pool on this machine (``ProcessPoolExecutor``, spawned workers, one unit at a
  time each). Workers end themselves when the sweep's process dies, even by ``kill -9``.
* ``dask``: a Dask distributed cluster: a ``LocalCluster`` of ``workers`` single-threaded worker processes when no
  address is given, or the existing scheduler at ``address`` (its workers must be able to import this package and
  any user ranker or stage the sweep names). Needs the optional extra: ``pip install "simulator[dask]"``.

Each worker's compiled kernels get its share of the CPUs (``threads_per_worker``; see
:mod:`simulator.kernel_threads`), one thread each on a remote cluster; results do not depend on it.

Both call ``on_result(task, outcome)`` in this process as each unit finishes, in completion order; the records and
tables built from the outcomes do not depend on that order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from ..kernel_threads import available_cpus, kernel_threads
from .spec import SweepError
from .unit import UnitTask, exit_with_parent, one_line_error, run_unit

ENGINES = ("local", "dask")
OnResult = Callable[[UnitTask, dict], None]


class EngineError(RuntimeError):
    """The engine itself broke (not a unit): the sweep stops; finished units are kept."""


def _failed(exc: BaseException, task: UnitTask) -> dict:
    return {"status": "failed", "error": one_line_error(exc), "traceback": "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)), "spawn_key": [task.replicate],
        "metrics": {}, "compute_seconds": 0.0, "worker_pid": None}


class LocalEngine:
    name = "local"

    def __init__(self, workers: int):
        self.workers = workers

    def describe(self) -> dict:
        return {"engine": self.name, "workers": self.workers,
                "kernel_threads_per_worker": threads_per_worker(self.workers)}

    def open(self) -> None:
        """The pool starts with the first task (see run)."""

    def close(self) -> None:
        pass

    def run(self, tasks: list[UnitTask], on_result: OnResult) -> None:
        if not tasks:
            return
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=exit_with_parent, initargs=(os.getpid(),))
        try:
            threads = threads_per_worker(self.workers)
            pending = {pool.submit(run_unit, t, threads): t for t in tasks}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: (pending[f].point_id, pending[f].replicate)):
                    task = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool as exc:
                        raise EngineError("a worker process died (out of memory, or killed); the units finished "
                                          "so far are kept: rerun the same command to resume") from exc
                    except Exception as exc:  # noqa: BLE001 - e.g. a task that cannot be sent to a worker
                        outcome = _failed(exc, task)
                    on_result(task, outcome)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


class DaskEngine:
    name = "dask"

    def __init__(self, workers: int, address: str | None):
        self.workers = workers
        self.address = address
        self._cluster_workers: int | None = None
        self._client = None
        self._cluster = None

    def describe(self) -> dict:
        return {"engine": self.name, "workers": self._cluster_workers or self.workers, "address": self.address,
                "kernel_threads_per_worker": self._kernel_threads()}

    def _kernel_threads(self) -> int:
        """A LocalCluster's workers share this machine; a remote cluster's are unknown: one kernel thread each."""
        return 1 if self.address else threads_per_worker(self._cluster_workers or self.workers)

    def open(self) -> None:
        """Start the LocalCluster, or connect to the scheduler at ``address`` (SweepError if unreachable)."""
        from dask.distributed import Client, LocalCluster

        if self.address:
            try:
                self._client = Client(self.address, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise SweepError(f"--address {self.address}: cannot reach a Dask scheduler ({exc})") from None
        else:
            import dask.config

            # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc return memory to the
            # system after nearly every large NumPy array is freed: the model then runs ~1.7x slower (measured).
            # The LocalCluster's workers keep the allocator's default; its other settings (one BLAS thread) stay.
            environ = {k: v for k, v in (dask.config.get("distributed.nanny.pre-spawn-environ") or {}).items()
                       if k != "MALLOC_TRIM_THRESHOLD_"}
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.ERROR)
            self._client = Client(self._cluster)
        self._cluster_workers = len(self._client.scheduler_info().get("workers", {})) or self.workers

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def run(self, tasks: list[UnitTask], on_result: OnResult) -> None:
        from dask.distributed import as_completed

        if not tasks:
            return
        client = self._client
        threads = self._kernel_threads()
        nonce = uuid.uuid4().hex[:8]
        by_key = {}
        futures = []
        for t in tasks:
            fut = client.submit(run_unit, t, threads, key=f"simulator-unit-{nonce}-p{t.point_id}-r{t.replicate}",
                                pure=False)
            by_key[fut.key] = t
            futures.append(fut)
        try:
            for fut in as_completed(futures):
                task = by_key[fut.key]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: recorded as a failed unit
                    outcome = _failed(exc, task)
                fut.release()
                on_result(task, outcome)
        except BaseException:
            client.cancel(futures)
            raise


def make_engine(name: str, workers: int, address: str | None):
    """The engine for the command line's --engine/--workers/--address; SweepError for bad input."""
    if name not in ENGINES:
        raise SweepError(f"--engine {name}: expected one of {', '.join(ENGINES)}")
    if not 1 <= workers <= 1024:
        raise SweepError(f"--workers {workers}: expected an integer from 1 to 1024")
    if name == "local":
        if address:
            raise SweepError("--address is for --engine dask (the local engine runs on this machine)")
        return LocalEngine(workers)
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise SweepError('--engine dask needs Dask distributed, an optional extra: pip install "simulator[dask]"') \
            from None
    return DaskEngine(workers, address)


def default_workers() -> int:
    """CPUs this process may use."""
    return available_cpus()


def threads_per_worker(workers: int) -> int:
    """Kernel threads for each of ``workers`` processes on this machine: their share of this process's kernel
    threads (the CPUs, or ``SIMULATOR_THREADS``), at least one, so that the workers do not oversubscribe the CPUs."""
    return max(1, kernel_threads() // max(1, workers))
