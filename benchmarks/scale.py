"""Scaling benchmark: one world of the default scenario per population size, against plain Mesa.

For each size in ``--sizes`` one world (no paired worlds) is built and run in a fresh child process, which reports
the build time, the run's wall and CPU time, its peak memory (``ru_maxrss`` of the child), the impressions served
and engagements, and the simulated steps per second. The child builds and runs the world ``--runs`` times (default
3, a fresh world each time, the same results) and reports its fastest run, as the Mesa baseline reports the fastest
of its three repeats; every run's time is in the JSON, a world whose run takes over a minute runs once, and the
build time is the first (cold) build's. Separately, a child process measures how many empty
``step()`` calls per second plain Mesa agents manage (``model.agents.shuffle_do("step")`` over 10^5 trivial
agents, best of 3), before the first world and again after every world: each world is compared with the faster of
the two measurements around it (the machine is shared and its speed drifts; the faster Mesa rate gives the lower,
conservative ratio). The tracked figure is (impressions per second) ÷ (empty Mesa agent-steps per second), target
≥ 2; the 10^5 world is also compared with the time plain Mesa would need to call an empty step on 10^5 agents every
simulated hour, and the 10^6 world is checked against 10 minutes and 8 GiB.

Run from the repository root::

    python benchmarks/scale.py                                  # 10^4, 10^5, 10^6 users, 30 days
    python benchmarks/scale.py --sizes 5000 20000 --days 5 --json scale.json

Every world and the Mesa baseline run in their own child process (this script, re-run with a hidden flag, printing
one JSON line). The parent stays small on purpose: on Linux a child inherits its parent's peak RSS through
``exec``, so a heavy parent would inflate every child's ``ru_maxrss``. Each row also carries ``VmHWM`` (the child's
own high-water mark) where ``/proc`` has it.

Each world's compiled kernels split their rows over ``--threads`` threads (``SIMULATOR_THREADS``; default: the CPUs
this process may use, see :mod:`simulator.kernel_threads`); plain Mesa steps its agents on one thread, as Python
does. The table prints each world's threads and CPU time; ``--threads 1`` gives the single-threaded figures.

The same world is also run with the full mitigation pipeline (all six built-in stages, default parameters) at the
sizes in ``--mitigation-sizes`` (default 10^5), and the report prints the pipeline's extra wall time next to the
unmitigated figure (target: less than 50% extra). Add a ``(label, overrides)`` entry to :data:`VARIANTS` to compare
another configuration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    # Benchmark the checkout this script lives in, even when another copy of the package is installed.
    sys.path.insert(0, str(REPO_ROOT))

#: Configurations benchmarked at every size: (label, extra ``--set`` overrides). Add a row to compare another
#: configuration (e.g. the mitigation pipeline) against the default one.
VARIANTS: list[tuple[str, list[str]]] = [
    ("default", []),
]
#: The full mitigation pipeline: every built-in stage with its default parameters, in the order a platform would
#: run them (weights first, then detection, then enforcement).
MITIGATION_STAGES = ("dormancy_dampening", "rate_limit", "coordination_detection", "circuit_breaker",
                     "paid_labeling", "takedown")
MITIGATION_VARIANT = ("all six mitigations",
                      ["mitigations=[" + ", ".join(f'{{name="{n}"}}' for n in MITIGATION_STAGES) + "]"])
MITIGATION_COST_TARGET = 0.5          # extra wall time of the full pipeline over the unmitigated world

DEFAULT_SCENARIO = "romania_2024"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
TARGET_RATIO = 2.0                    # impressions per second ÷ empty Mesa agent-steps per second
COMPARE_USERS = 100_000               # world compared with plain Mesa stepping the same number of agents hourly
LARGE_USERS = 1_000_000               # world checked against the time and memory limits below
LARGE_TIME_LIMIT_S = 600.0
LARGE_MEMORY_LIMIT_BYTES = 8 * 2**30
RESULT_MARK = "SCALE_RESULT "         # prefix of the JSON line a child prints on stdout
DEFAULT_RUNS = 3                      # runs of each world (fastest reported), as the Mesa baseline's best of 3
REPEAT_UNDER_S = 60.0                 # a world whose run takes longer runs once
MINUTES_PER_HOUR = 60

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


# ----------------------------------------------------------------------------------------------------- memory
def peak_rss_bytes() -> int:
    """``ru_maxrss`` of this process in bytes (Linux reports KiB, macOS bytes)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value) if sys.platform == "darwin" else int(value) * 1024


def vm_hwm_bytes() -> int | None:
    """This process's own resident high-water mark (``VmHWM``), which, unlike ``ru_maxrss``, exec resets."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ------------------------------------------------------------------------------------------ child: one world
def child_one_world(users: int, days: int, seed: int, overrides: list[str], scenario_name: str,
                    runs: int = 1) -> dict:
    """Build and run the world up to ``runs`` times (a fresh world each time; a run longer than
    :data:`REPEAT_UNDER_S` is not repeated); returns the figures of the fastest run, as the Mesa baseline reports
    its fastest repeat, with every run's times. Runs in a fresh process."""
    import gc

    import numpy as np

    import mesa
    import scipy
    import simulator
    from simulator.config import load_scenario
    from simulator.kernel_threads import kernel_threads
    from simulator.model import AuditWorld

    scenario = load_scenario(scenario_name, scenario_overrides(users, days, overrides))
    rss_before_build = peak_rss_bytes()
    each = []   # (build s, build CPU s, run s, run CPU s) of every run
    rss_after_build = None
    for _ in range(runs):
        world = None
        gc.collect()   # the previous run's world is gone before the next is built
        wall0, cpu0 = time.perf_counter(), time.process_time()
        world = AuditWorld(scenario, np.random.SeedSequence(seed))
        wall1, cpu1 = time.perf_counter(), time.process_time()
        rss_after_build = rss_after_build or peak_rss_bytes()
        world.run()
        wall2, cpu2 = time.perf_counter(), time.process_time()
        each.append((wall1 - wall0, cpu1 - cpu0, wall2 - wall1, cpu2 - cpu1))
        if wall2 - wall1 > REPEAT_UNDER_S:
            break
    best = min(range(len(each)), key=lambda i: each[i][2])
    run_s = each[best][2]
    impressions = int(world.impressions_served)   # the same in every run: same scenario, same seed
    return {
        "users": users,
        "accounts": int(world.population.n),
        "days": scenario.days,
        "step_hours": scenario.step_hours,
        "steps": scenario.n_steps,
        "simulated_hours": scenario.n_steps * scenario.step_hours,
        "seed": seed,
        "build_s": each[0][0],          # the first (cold) build: it loads the compiled kernels
        "build_cpu_s": each[0][1],
        "run_s": run_s,                  # the fastest run
        "run_cpu_s": each[best][3],
        "runs": len(each),
        "run_s_each": [e[2] for e in each],
        "build_s_each": [e[0] for e in each],
        "impressions": impressions,
        "impressions_per_s": impressions / run_s if run_s > 0 else None,
        "engagements": int(world.engagements),
        "steps_per_s": scenario.n_steps / run_s if run_s > 0 else None,
        "kernel_threads": kernel_threads(),
        "posts": int(world.posts.n),
        "follow_edges": int(world.population.follows.matrix.nnz),
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_before_build_bytes": rss_before_build,
        "rss_after_build_bytes": rss_after_build,
        "vm_hwm_bytes": vm_hwm_bytes(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                     "mesa": mesa.__version__, "simulator": simulator.__version__},
        "simulator_path": str(Path(simulator.__file__).resolve().parent),
    }


# ------------------------------------------------------------------------------------- child: Mesa baseline
def child_mesa_baseline(n_agents: int, seconds: float, repeats: int, seed: int) -> dict:
    """Empty ``step()`` calls per second of plain Mesa agents under ``shuffle_do``, best of ``repeats``."""
    import mesa

    class Idle(mesa.Agent):
        def step(self):
            pass

    model = mesa.Model(rng=seed)
    Idle.create_agents(model, n_agents)
    agents = model.agents
    # Calibrate: enough calls per repeat to take about `seconds`.
    agents.shuffle_do("step")   # warm-up
    t0 = time.perf_counter()
    agents.shuffle_do("step")
    agents.shuffle_do("step")
    per_call = max((time.perf_counter() - t0) / 2, 1e-9)
    calls = max(1, math.ceil(seconds / per_call))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            agents.shuffle_do("step")
        times.append(time.perf_counter() - t0)
    rates = [n_agents * calls / t for t in times]
    return {"agents": n_agents, "calls_per_repeat": calls, "repeats": repeats, "repeat_s": times,
            "rates": rates, "agent_steps_per_s": max(rates), "mesa": mesa.__version__,
            "python": platform.python_version()}


# ----------------------------------------------------------------------------------------- parent: children
def scenario_overrides(users: int, days: int, overrides: list[str]) -> list[str]:
    return [f"population.organic_users={users}", f"days={days}"] + list(overrides)


def run_child(args: list[str], threads: int | None = None) -> tuple[dict | None, str | None]:
    """Run this script with ``args`` in a fresh interpreter (with ``SIMULATOR_THREADS=threads`` when given);
    returns (its JSON result, or None, and an error)."""
    cmd = [sys.executable, str(Path(__file__).resolve())] + args
    env = dict(os.environ) if threads is None else {**os.environ, "SIMULATOR_THREADS": str(threads)}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, cwd=str(REPO_ROOT), env=env)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    if proc.returncode != 0 or result is None:
        return None, f"child exited with code {proc.returncode}" + ("" if result is not None else ", no result")
    return result, None


def world_child_args(users: int, days: int, seed: int, overrides: list[str], scenario: str,
                     runs: int = 1) -> list[str]:
    args = ["--one-size", str(users), "--days", str(days), "--seed", str(seed), "--scenario", scenario,
            "--runs", str(runs)]
    for o in overrides:
        args += ["--set", o]
    return args


# --------------------------------------------------------------------------------------------- formatting
def fmt_int(v) -> str:
    return "—" if v is None else f"{int(v):,}"


def fmt_rate(v) -> str:
    if v is None:
        return "—"
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def fmt_s(v) -> str:
    return "—" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def fmt_bytes(v) -> str:
    if v is None:
        return "—"
    return f"{v / 2**30:.2f} GiB" if v >= 2**30 else f"{v / 2**20:.0f} MiB"


def table(headers: list[str], rows: list[list[str]], left: int = 0) -> str:
    """Plain-text table; the first ``left`` columns are left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ---------------------------------------------------------------------------------------------- the report
def derive(rows: list[dict], baseline: dict | None) -> None:
    """Figures that combine a world with the Mesa baseline, added to each row in place (a row's own adjacent
    ``mesa_rate`` when it has one, else ``baseline``'s)."""
    for r in rows:
        rate = r.get("mesa_rate") or (baseline["agent_steps_per_s"] if baseline else None)
        if r["users"] == LARGE_USERS and not r.get("error"):
            r["large_under_time_limit"] = r["build_s"] + r["run_s"] < LARGE_TIME_LIMIT_S
            r["large_within_memory_limit"] = r["peak_rss_bytes"] <= LARGE_MEMORY_LIMIT_BYTES
        if r.get("error") or rate is None:
            continue
        ips = r["impressions_per_s"]
        r["ratio_to_mesa"] = ips / rate if ips is not None else None
        r["meets_target_ratio"] = r["ratio_to_mesa"] is not None and r["ratio_to_mesa"] >= TARGET_RATIO
        # Plain Mesa calling an empty step on every user once per simulated hour.
        r["mesa_rate"] = rate
        r["mesa_equivalent_s"] = r["simulated_hours"] * r["users"] / rate
        r["faster_than_mesa"] = r["run_s"] < r["mesa_equivalent_s"]


def report(rows: list[dict], baseline: dict | None, baseline_error: str | None,
           baselines: list[dict] | None = None) -> str:
    out = []
    if baseline:
        out.append(f"Plain Mesa {baseline['mesa']} (Python {baseline['python']}): {baseline['agents']:,} trivial "
                   f"agents, empty step(), agents.shuffle_do(\"step\") × {baseline['calls_per_repeat']} per repeat, "
                   f"best of {baseline['repeats']}: {fmt_rate(baseline['agent_steps_per_s'])} agent-steps/s "
                   f"(repeats: {', '.join(fmt_rate(x) for x in baseline['rates'])})")
        measured = [b["agent_steps_per_s"] for b in baselines or [] if b]
        if len(measured) > 1:
            out.append(f"Measured before the first world and after each: {', '.join(fmt_rate(x) for x in measured)} "
                       "agent-steps/s; each world uses the faster of the two around it.")
    else:
        out.append(f"Plain Mesa baseline failed: {baseline_error}")
    out.append("")
    headers = ["users", "variant", "days", "threads", "build s", "runs", "run s", "run CPU s", "peak RSS",
               "impressions", "imp/s", "engagements", "steps/s"]
    body, failures = [], []
    for r in rows:
        if r.get("error"):
            body.append([fmt_int(r["users"]), r["variant"], str(r["days"]), "failed"] + ["—"] * (len(headers) - 4))
            failures.append(f"{r['users']:,} users ({r['variant']}) failed: {r['error']} (its stderr is above)")
            continue
        body.append([fmt_int(r["users"]), r["variant"], str(r["days"]), str(r.get("kernel_threads", "—")),
                     fmt_s(r["build_s"]), str(r.get("runs", 1)), fmt_s(r["run_s"]),
                     fmt_s(r["run_cpu_s"]), fmt_bytes(r["peak_rss_bytes"]), fmt_int(r["impressions"]),
                     fmt_rate(r["impressions_per_s"]), fmt_int(r["engagements"]), f"{r['steps_per_s']:.3g}"])
    out.append(table(headers, body, left=2))
    out.extend(failures)
    out.append("")
    if baseline:
        headers = ["users", "variant", "Mesa steps/s", "imp/s ÷ Mesa steps/s", f"≥ {TARGET_RATIO:g}?",
                   "world run s", "plain Mesa s", "world vs Mesa"]
        body = []
        for r in rows:
            if r.get("error"):
                continue
            speed = r["mesa_equivalent_s"] / r["run_s"]
            body.append([fmt_int(r["users"]), r["variant"], fmt_rate(r["mesa_rate"]), f"{r['ratio_to_mesa']:.3g}",
                         "yes" if r["meets_target_ratio"] else "no", fmt_s(r["run_s"]),
                         fmt_s(r["mesa_equivalent_s"]),
                         f"{speed:.2f}× {'faster' if r['faster_than_mesa'] else 'slower'}"])
        out.append("Tracked figure: impressions per second ÷ empty Mesa agent-steps per second (target ≥ "
                   f"{TARGET_RATIO:g}). 'plain Mesa s' = simulated hours × users ÷ Mesa agent-steps/s.")
        out.append(table(headers, body, left=2))
        out.append("")
    out.extend(verdicts(rows, baseline))
    return "\n".join(out)


def verdicts(rows: list[dict], baseline: dict | None) -> list[str]:
    out = []
    compare = [r for r in rows if r["users"] == COMPARE_USERS]
    if not compare:
        out.append(f"10^5 comparison: skipped ({COMPARE_USERS} not in --sizes).")
    for r in compare:
        if r.get("error") or baseline is None:
            out.append(f"10^5 comparison ({r['variant']}): not available ({r.get('error') or 'no Mesa baseline'}).")
            continue
        rate = r["mesa_rate"]
        out.append(f"10^5 users × {r['days']} days ({r['variant']}): world run {fmt_s(r['run_s'])} s (+ build "
                   f"{fmt_s(r['build_s'])} s) vs plain Mesa empty steps {r['simulated_hours']} h × {r['users']:,} "
                   f"agents ÷ {fmt_rate(rate)}/s = {fmt_s(r['mesa_equivalent_s'])} s → the world was "
                   + ("FASTER" if r["faster_than_mesa"] else "SLOWER")
                   + f" ({r['mesa_equivalent_s'] / r['run_s']:.2f}× the plain-Mesa speed"
                   + ("; also counting its build time" if r["run_s"] + r["build_s"] < r["mesa_equivalent_s"]
                      else "; not counting its build time" if r["faster_than_mesa"] else "") + ").")
    by = {(r["users"], r["variant"]): r for r in rows if not r.get("error")}
    for (users, variant), r in sorted(by.items()):
        base = by.get((users, VARIANTS[0][0]))
        if variant != MITIGATION_VARIANT[0] or base is None:
            continue
        extra = r["run_s"] / base["run_s"] - 1.0
        r["mitigation_extra_time"] = extra
        out.append(f"Mitigation pipeline at {users:,} users × {r['days']} days: run {fmt_s(r['run_s'])} s with all six "
                   f"stages vs {fmt_s(base['run_s'])} s without → {100 * extra:+.0f}% wall time (target < "
                   f"{100 * MITIGATION_COST_TARGET:.0f}%: {'met' if extra < MITIGATION_COST_TARGET else 'NOT met'}).")
    large = [r for r in rows if r["users"] == LARGE_USERS]
    if not large:
        out.append(f"10^6 check: skipped ({LARGE_USERS} not in --sizes).")
    for r in large:
        if r.get("error"):
            out.append(f"10^6 users ({r['variant']}): did NOT finish ({r['error']}).")
            continue
        total = r["build_s"] + r["run_s"]
        in_time, in_memory = r["large_under_time_limit"], r["large_within_memory_limit"]
        out.append(f"10^6 users × {r['days']} days ({r['variant']}): build + run {fmt_s(total)} s "
                   f"({'under' if in_time else 'NOT under'} {LARGE_TIME_LIMIT_S / 60:g} min), peak RSS "
                   f"{fmt_bytes(r['peak_rss_bytes'])} ({'within' if in_memory else 'NOT within'} "
                   f"{LARGE_MEMORY_LIMIT_BYTES / 2**30:g} GiB) → "
                   + ("passes" if in_time and in_memory else "fails") + ".")
    return out


# -------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/scale.py",
        description="Scaling benchmark: one world of the default scenario per size, each in a fresh process, "
                    "against plain Mesa's empty agent-steps per second.")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), metavar="N",
                   help="organic users per world (default: %(default)s)")
    p.add_argument("--days", type=int, default=30, help="simulated days per world (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's `seed`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="scenario override applied to every world, e.g. --set ranker.name=engagement (repeatable)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario name or TOML file (default: %(default)s)")
    p.add_argument("--mitigation-sizes", type=int, nargs="*", default=[COMPARE_USERS], metavar="N",
                   help="sizes also run with all six mitigation stages (default: %(default)s; none: no values)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="kernel threads of each world (SIMULATOR_THREADS; default: that variable, else the CPUs this "
                        "process may use); results do not depend on it, plain Mesa always runs on one")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS, metavar="N",
                   help="runs of each world in its process, a fresh world each time; the fastest is reported, as "
                        "the Mesa baseline reports the fastest of its 3 repeats (a world whose run takes over "
                        f"{REPEAT_UNDER_S:g} s runs once; default: %(default)s)")
    p.add_argument("--mesa-agents", type=int, default=100_000,
                   help="agents in the plain-Mesa baseline (default: %(default)s)")
    p.add_argument("--mesa-seconds", type=float, default=3.0,
                   help="approximate length of each of the 3 baseline repeats (default: %(default)s)")
    # Internal: run one piece in this (child) process and print one JSON line.
    p.add_argument("--one-size", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--mesa-baseline", action="store_true", help=argparse.SUPPRESS)
    return p


def child_main(args) -> int:
    if args.one_size is not None:
        result = child_one_world(args.one_size, args.days, args.seed, args.overrides, args.scenario, args.runs)
    else:
        result = child_mesa_baseline(args.mesa_agents, args.mesa_seconds, 3, args.seed)
    print(RESULT_MARK + json.dumps(result), flush=True)
    return EXIT_OK


def check_inputs(args) -> tuple[int, str | None]:
    """Validate every world's scenario up front (cheap: the config module needs only the standard library)."""
    from simulator.config import ScenarioError, load_scenario

    if any(n <= 0 for n in args.sizes):
        return EXIT_BAD_INPUT, "--sizes: expected positive integers"
    if args.threads is not None and not 1 <= args.threads <= 256:
        return EXIT_BAD_INPUT, f"--threads {args.threads}: expected an integer from 1 to 256"
    if not 1 <= args.runs <= 20:
        return EXIT_BAD_INPUT, f"--runs {args.runs}: expected an integer from 1 to 20"
    if args.mesa_agents <= 0 or args.mesa_seconds <= 0:
        return EXIT_BAD_INPUT, "--mesa-agents and --mesa-seconds must be positive"
    for o in args.overrides:
        if o.partition("=")[0].strip() in ("population.organic_users", "days"):
            return EXIT_BAD_INPUT, f"--set {o}: use --sizes / --days instead"
    try:
        scenario = None
        for n in args.sizes:
            for _, extra in variants_for(n, args):
                scenario = load_scenario(args.scenario, scenario_overrides(n, args.days, args.overrides + extra))
    except ScenarioError as exc:
        return EXIT_BAD_INPUT, str(exc)
    if args.seed is None:
        args.seed = scenario.seed
    if not 0 <= args.seed < 2**63:
        return EXIT_BAD_INPUT, f"--seed = {args.seed}: expected an integer from 0 to 2^63-1"
    return EXIT_OK, None


def variants_for(n: int, args) -> list[tuple[str, list[str]]]:
    return VARIANTS + ([MITIGATION_VARIANT] if n in args.mitigation_sizes else [])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.one_size is not None or args.mesa_baseline:
        if args.seed is None:
            args.seed = 0
        return child_main(args)
    code, message = check_inputs(args)
    if code != EXIT_OK:
        print(f"error: {message}", file=sys.stderr)
        return code
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def measure_mesa():
        print(f"plain Mesa baseline: {args.mesa_agents:,} agents, ~{args.mesa_seconds:g} s × 3 ...", file=sys.stderr)
        return run_child(["--mesa-baseline", "--mesa-agents", str(args.mesa_agents),
                          "--mesa-seconds", str(args.mesa_seconds), "--seed", str(args.seed)])

    baseline, baseline_error = measure_mesa()
    baselines = [baseline]
    rows: list[dict] = []
    for n in args.sizes:
        for label, extra in variants_for(n, args):
            print(f"world: {n:,} users × {args.days} days ({label}) ...", file=sys.stderr, flush=True)
            parent_rss = peak_rss_bytes()
            t0 = time.perf_counter()
            result, error = run_child(world_child_args(n, args.days, args.seed, args.overrides + extra,
                                                       args.scenario, args.runs), args.threads)
            row = {"users": n, "variant": label, "overrides": args.overrides + extra, "days": args.days,
                   "child_wall_s": time.perf_counter() - t0, "parent_peak_rss_bytes": parent_rss}
            if result is None:
                row["error"] = error
            else:
                row.update(result)
                print(f"  build {fmt_s(result['build_s'])} s, run {fmt_s(result['run_s'])} s (runs: "
                      f"{', '.join(fmt_s(x) for x in result['run_s_each'])} s), "
                      f"{fmt_int(result['impressions'])} impressions, peak {fmt_bytes(result['peak_rss_bytes'])}",
                      file=sys.stderr, flush=True)
            after, _ = measure_mesa()
            adjacent = [b["agent_steps_per_s"] for b in (baselines[-1], after) if b]
            if adjacent:
                row["mesa_rate"] = max(adjacent)
            baselines.append(after)
            rows.append(row)
    derive(rows, baseline)
    text = report(rows, baseline, baseline_error, baselines)
    print(text)
    if args.json is not None:
        doc = {"started_at": started, "argv": sys.argv, "scenario": args.scenario, "sizes": args.sizes,
               "threads": args.threads, "runs": args.runs,
               "days": args.days, "seed": args.seed, "overrides": args.overrides,
               "variants": [{"label": label, "overrides": extra} for label, extra in VARIANTS + [MITIGATION_VARIANT]],
               "mitigation_sizes": args.mitigation_sizes,
               "target_ratio": TARGET_RATIO, "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
               "mesa_baseline": baseline, "mesa_baseline_error": baseline_error, "mesa_baselines": baselines,
               "worlds": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    failed = baseline is None or any(r.get("error") for r in rows)
    return EXIT_FAILURE if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
