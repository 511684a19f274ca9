"""Speed of the sweep engines: throughput of a 32-point sweep with 1 and 2 workers, local and Dask, against the
speed-up this machine gives two independent CPU-bound processes (measured in the same run, before and after).

    python benchmarks/sweep_speed.py [--days N] [--users 10000]

The sweep: 32 points (8 bot shares × 4 burst windows) of the default scenario at 10^4 simulated users, one replicate
each, over the scenario's own 30 days (the four sweeps and the machine measurements take about ten minutes here).
``--days N`` shortens the run (bots then wake on day 0.4·N, recruits on day 0.2·N): shorter units weigh each
worker's fixed start-up more. Per unit, the time spent inside the worker running it is recorded;
the engine's overhead is what is left of the workers' time: wall time × workers − Σ unit compute time (start-up,
sending tasks and results, idle workers at the end), reported as a share of Σ unit compute time.

On a machine shared with other jobs the load changes from minute to minute, so the measured speed-ups move with it;
the machine's own speed-up is measured right before and after each engine's sweeps, and the script also prints the
ratio that follows from the overheads alone, (1 + overhead with 1 worker) / (1 + overhead with 2 workers): the
2-worker sweep's speed-up relative to two independent processes running the same units under the same load.

Prints figures only; asserts nothing (the machine is shared, so timings move from run to run). It does check that
every engine and worker count gave identical metrics for every unit.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.sweep.engines import DaskEngine, LocalEngine  # noqa: E402
from simulator.sweep.runner import unit_tasks  # noqa: E402
from simulator.sweep.spec import load_sweep  # noqa: E402

SWEEP = """
scenario = "{root}/experiments/romania_2024.toml"
design = "grid"
replicates = 1
seed = 11
[parameters]
"campaign.bots.bot_share" = [0.0, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.01]
"campaign.bots.burst_window" = [10.0, 30.0, 90.0, 240.0]
[fixed]
"population.organic_users" = {users}
{schedule}"""


# ----------------------------------------------------------------------------------------------------------------
# The machine's own speed-up for two independent CPU-bound processes
# ----------------------------------------------------------------------------------------------------------------


def busy(iterations: int) -> float:
    """CPU-bound work of the model's kind: small NumPy operations driven by a Python loop."""
    rng = np.random.default_rng(0)
    x = rng.random(4096)
    acc = 0.0
    for i in range(iterations):
        y = np.sort(x * (i % 7 + 1.0))
        acc += float(y[::17].sum()) + sum(range(200))
    return acc


def _timed_busy(iterations: int, queue) -> None:
    t = time.perf_counter()
    busy(iterations)
    queue.put(time.perf_counter() - t)


def run_processes(n: int, iterations: int) -> float:
    """Wall time of n spawned processes each doing the same work at once (process start excluded)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_timed_busy, args=(iterations, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    times = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return max(times)


def machine_speedup(iterations: int) -> tuple[float, float, float]:
    one = run_processes(1, iterations)
    two = run_processes(2, iterations)
    return one, two, 2.0 * one / two


def _timed_units(task, n: int, queue) -> None:
    from simulator.sweep.unit import run_unit

    t = time.perf_counter()
    for _ in range(n):
        run_unit(task)
    queue.put(time.perf_counter() - t)


def model_speedup(task, n: int = 2) -> tuple[float, float, float]:
    """The same measure with the sweep's own work: n units in one plain process, then in two at once (no engine)."""
    ctx = multiprocessing.get_context("spawn")
    walls = []
    for k in (1, 2):
        queue = ctx.Queue()
        procs = [ctx.Process(target=_timed_units, args=(task, n, queue)) for _ in range(k)]
        for p in procs:
            p.start()
        walls.append(max(queue.get() for _ in procs))
        for p in procs:
            p.join()
    return walls[0], walls[1], 2.0 * walls[0] / walls[1]


def calibrate(target_seconds: float = 8.0) -> int:
    t = time.perf_counter()
    busy(2000)
    per = (time.perf_counter() - t) / 2000
    return max(2000, int(target_seconds / per))


# ----------------------------------------------------------------------------------------------------------------
# Sweeps
# ----------------------------------------------------------------------------------------------------------------


def run_engine(engine, tasks) -> dict:
    outcomes = {}
    t0 = time.perf_counter()
    engine.open()
    started = time.perf_counter() - t0
    try:
        engine.run(tasks, lambda task, out: outcomes.__setitem__((task.point_id, task.replicate), out))
    finally:
        engine.close()
    wall = time.perf_counter() - t0
    failed = [k for k, o in outcomes.items() if o["status"] != "ok"]
    if failed:
        raise SystemExit(f"units failed: {failed}: {outcomes[failed[0]]['error']}")
    compute = sum(o["compute_seconds"] for o in outcomes.values())
    return {"wall": wall, "open": started, "compute": compute, "outcomes": outcomes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=None,
                    help="simulated days per unit (default: the scenario's own, 30)")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    if args.days is None:
        schedule, days_text = "", "the scenario's own days and schedule"
    else:
        activation = max(1, round(args.days * 0.4))
        recruit = max(1, round(args.days * 0.2))
        schedule = (f'days = {args.days}\n"campaign.bots.activation_day" = {activation}\n'
                    f'"campaign.recruits.recruit_day" = {recruit}\n')
        days_text = f"{args.days} days (bots wake on day {activation}, recruits on day {recruit})"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(SWEEP.format(root=ROOT, users=args.users, schedule=schedule))
        spec = load_sweep(path)
    tasks = unit_tasks(spec)
    scenario = tasks[0].scenario
    print(f"sweep: {len(spec.points)} points × {spec.replicates} replicate of the default scenario at "
          f"{args.users:,} simulated users, {days_text}: {scenario.days} days, bots wake on day "
          f"{scenario.campaign.bots.activation_day:g}; For-You ranker, 3 paired worlds per unit")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")

    # Compile the kernels now if this checkout has not yet (about 20 s, cached on disk): otherwise the first process
    # measured would pay for it and the model's speed-up before the sweeps would be meaningless.
    from simulator import kernels
    kernels.load()
    iterations = calibrate()
    engines = ["local"] + ([] if args.skip_dask else ["dask"])
    results, machine, model = {}, {}, {}
    for name in engines:
        # The machine is shared: its speed-up is measured right before and right after each engine's pair of sweeps.
        before = machine_speedup(iterations)
        model_before = model_speedup(tasks[0])
        for workers in (1, 2):
            engine = LocalEngine(workers) if name == "local" else DaskEngine(workers, None)
            results[(name, workers)] = r = run_engine(engine, tasks)
            print(f"  {name} × {workers}: {r['wall']:.1f} s wall, {r['compute']:.1f} s of unit compute", flush=True)
        model_after = model_speedup(tasks[0])
        after = machine_speedup(iterations)
        machine[name] = (before[2] + after[2]) / 2
        model[name] = (model_before[2] + model_after[2]) / 2
        print(f"  machine speed-up for two CPU-bound processes around the {name} sweeps: busy loop before "
              f"{before[2]:.2f}x (1 process {before[0]:.1f} s, 2 at once {before[1]:.1f} s), after {after[2]:.2f}x "
              f"(1 process {after[0]:.1f} s, 2 at once {after[1]:.1f} s), mean {machine[name]:.2f}x; the model's "
              f"own units in plain processes before {model_before[2]:.2f}x, after {model_after[2]:.2f}x, mean "
              f"{model[name]:.2f}x", flush=True)

    ref = results[("local", 1)]["outcomes"]
    same = all({k: o["metrics"] for k, o in r["outcomes"].items()} == {k: o["metrics"] for k, o in ref.items()}
               for r in results.values())
    print(f"identical metrics for every unit across engines and worker counts: {'yes' if same else 'NO'}")

    n = len(tasks)
    print()
    print(f"{'engine':8} {'workers':>7} {'wall s':>8} {'start s':>8} {'points/min':>11} {'compute s':>10} "
          f"{'overhead':>15} {'speed-up':>9} {'machine':>8} {'÷ machine':>10} {'model':>6} {'÷ model':>8}")
    for (name, workers), r in results.items():
        speedup = results[(name, 1)]["wall"] / r["wall"]
        overhead = r["wall"] * workers - r["compute"]
        two = workers > 1
        print(f"{name:8} {workers:>7} {r['wall']:>8.1f} {r['open']:>8.1f} {n / r['wall'] * 60:>11.1f} "
              f"{r['compute']:>10.1f} {overhead:>7.1f} s {overhead / r['compute']:>5.1%} "
              f"{speedup:>8.2f}x {(f'{machine[name]:.2f}x' if two else ''):>8} "
              f"{(f'{speedup / machine[name]:.2f}' if two else ''):>10} "
              f"{(f'{model[name]:.2f}x' if two else ''):>6} {(f'{speedup / model[name]:.2f}' if two else ''):>8}")
    print()
    for name in engines:
        o1 = results[(name, 1)]
        o2 = results[(name, 2)]
        share1 = (o1["wall"] - o1["compute"]) / o1["compute"]
        share2 = (o2["wall"] * 2 - o2["compute"]) / o2["compute"]
        print(f"{name}: 2-worker speed-up ÷ that of two independent processes running the same units under the same "
              f"load, from the overheads alone: (1 + {share1:.1%}) / (1 + {share2:.1%}) = "
              f"{(1 + share1) / (1 + share2):.2f}")
    print()
    print("target: a 2-worker sweep's speed-up ≥ 90% of the machine's own (measured around the same sweeps), engine "
          "overhead < 5% of the sweep's compute time.")
    print("machine = two processes of a NumPy/Python busy loop (small arrays) vs one; model = two plain processes "
          "each running the sweep's first unit twice vs one (no engine).")
    print("overhead = wall × workers − Σ per-unit compute time measured inside the workers (start-up, transfers, "
          "workers idle at the end); 'start s' = engine start before the first unit (Dask: LocalCluster; local: "
          "the pool's processes start with the first units and count in the overhead). A unit's compute time grows "
          "when the machine is busy, so compare speed-ups with the machine figure measured in the same run.")


if __name__ == "__main__":
    main()
