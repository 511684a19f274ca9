"""The command line. Exit codes: 0 done, 2 bad input (nothing written), 1 failure."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors are bad input too: one line, exit 2
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="simulator", description="Recommender-system amplification audit simulator.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="audit one scenario: paired worlds, replicates, metrics and plots",
                         description="Run the audit of SCENARIO and write manifest.json, metrics.json, "
                                     "timeseries.csv and PNG plots into the run folder.")
    run.add_argument("scenario", nargs="?", default="romania_2024",
                     help="a scenario TOML file or the name of a bundled scenario (default: romania_2024)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="override a field, e.g. --set population.organic_users=20000 (repeatable)")
    run.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's `seed`)")
    run.add_argument("--replicates", type=int, default=1, help="independent replicates (spawned seeds)")
    run.add_argument("--out", type=Path, default=None,
                     help="run folder (default: results/<scenario>-seed<N>/)")
    run.add_argument("--force", action="store_true", help="overwrite a run folder that already holds metrics.json")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    ref = sub.add_parser("reference", help="write the scenario field reference (docs/scenario-reference.md)")
    ref.add_argument("--out", type=Path, default=None, help="file to write (default: print to stdout)")
    _add_experiment_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "reference":
            return cmd_reference(args)
        if args.command == "sweep":
            return cmd_sweep(args)
        if args.command == "report":
            return cmd_report(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_BAD_INPUT


def _bad(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_run(args) -> int:
    from .config import ScenarioError, load_scenario, resolve_scenario_path

    try:
        scenario = load_scenario(args.scenario, args.overrides)
        scenario_path = str(resolve_scenario_path(args.scenario))
    except ScenarioError as exc:
        return _bad(str(exc))
    if args.replicates < 1 or args.replicates > 10_000:
        return _bad(f"--replicates = {args.replicates}: expected an integer from 1 to 10000")
    seed = scenario.seed if args.seed is None else args.seed
    if not 0 <= seed < 2**63:
        return _bad(f"--seed = {seed}: expected an integer from 0 to 2^63-1")
    from .results import default_run_folder

    folder = args.out if args.out is not None else default_run_folder(scenario.name, seed)
    if (folder / "metrics.json").exists() and not args.force:
        return _bad(f"{folder} already holds a run (metrics.json); use --force to overwrite or --out elsewhere")
    if folder.exists() and not folder.is_dir():
        return _bad(f"--out {folder}: exists and is not a folder")
    try:
        return _run(scenario, scenario_path, seed, args, folder)
    except Exception:  # noqa: BLE001 - a failure is reported, with its traceback, and exit 1
        traceback.print_exc()
        print("error: the run failed (traceback above); nothing was written to metrics.json", file=sys.stderr)
        return EXIT_FAILURE


def _run(scenario, scenario_path: str, seed: int, args, folder: Path) -> int:
    from tqdm import tqdm

    from .audit import run_audit, steps_per_replicate
    from .results import command_line, manifest_document, write_run

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    total = steps_per_replicate(scenario) * args.replicates
    with tqdm(total=total, unit="step", desc=f"{scenario.name} seed {seed}", disable=args.quiet,
              file=sys.stderr, dynamic_ncols=True) as bar:
        result = run_audit(scenario, seed, args.replicates, progress=bar)
    wall = time.perf_counter() - t0
    manifest = manifest_document(result, scenario_path=scenario_path, argv=command_line(args.argv), started_at=started,
                                 wall_time=wall)
    write_run(folder, result, manifest)
    if not args.quiet:
        print(headline_table(result.metrics, mitigated=bool(scenario.mitigations)))
        extra = ", flagged.csv" if scenario.mitigations else ""
        print(f"\nwrote {folder}/ (metrics.json, manifest.json, timeseries.csv{extra}, plots) in {wall:.1f} s")
    return EXIT_OK


HEADLINE = (
    ("reach_share", "reach share of target posts (audience O)"),
    ("inflation_factor", "inflation factor (vs inert campaign)"),
    ("amplification", "amplification (vs chronological)"),
    ("share_of_voice", "share of voice of the target"),
    ("attribution.bot", "attribution: bots"),
    ("attribution.paid", "attribution: paid influencers"),
    ("attribution.recruited", "attribution: recruits"),
    ("attribution.organic", "attribution: organic"),
    ("support_shift", "support shift of the target"),
    ("cost_per_1k_inflated", "USD per 1,000 inflated impressions"),
)
#: Added to the table when the scenario lists mitigation stages.
MITIGATION_HEADLINE = (
    ("inflation_factor_unmitigated", "inflation factor without mitigations"),
    ("mitigation_effect", "mitigation effect (share of inflation removed)"),
    ("collateral_damage.organic_creators", "collateral: organic creators' reach"),
    ("collateral_damage.other_candidates", "collateral: other candidates' posts"),
    ("precision", "detection precision"),
    ("recall.bot", "recall: bots"),
    ("recall.recruited", "recall: recruits"),
    ("recall.influencer", "recall: paid influencers"),
    ("detection_delay_hours.bot", "detection delay, bots (hours)"),
)


def headline_table(metrics: dict, mitigated: bool = False) -> str:
    def get(name):
        node = metrics
        for p in name.split("."):
            node = node[p]
        return node

    def fmt(v):
        if v is None:
            return "—"
        return f"{v:.4g}"

    lines = [f"{'metric':44} {'mean':>10} {'95% CI':>24}  n"]
    for name, label in HEADLINE + (MITIGATION_HEADLINE if mitigated else ()):
        m = get(name)
        ci = f"[{fmt(m['ci_low'])}, {fmt(m['ci_high'])}]" if m["ci_low"] is not None else "—"
        lines.append(f"{label:44} {fmt(m['mean']):>10} {ci:>24}  {m['n']}")
    return "\n".join(lines)


def cmd_reference(args) -> int:
    from .reference import scenario_reference_markdown
    from .results import atomic_write_text

    text = scenario_reference_markdown()
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(args.out, text)
    return EXIT_OK


# ----------------------------------------------------------------------------------------------------------------
# Experiments: parameter sweeps and the HTML audit report (docs/sweeps.md)
# ----------------------------------------------------------------------------------------------------------------


def _add_experiment_parsers(sub) -> None:
    sw = sub.add_parser("sweep", help="run a parameter sweep: points × replicates, tables, sensitivity, plots",
                        description="Run the sweep file SWEEP (docs/sweeps.md): every point of its design and "
                                    "replicate, each recorded as it finishes; then points.csv, summary.csv, "
                                    "sensitivity indices (sobol/morris), plots and manifest.json. Rerunning the same "
                                    "command resumes an interrupted sweep and retries failed points.")
    sw.add_argument("sweep", type=Path, help="the sweep file (TOML)")
    sw.add_argument("--workers", type=int, default=None,
                    help="worker processes (default: the CPUs this process may use; with --address the "
                         "cluster's own workers are used)")
    sw.add_argument("--engine", choices=("local", "dask"), default="local",
                    help="local: a process pool on this machine (default); dask: a Dask cluster "
                         '(pip install "simulator[dask]")')
    sw.add_argument("--address", default=None, metavar="HOST:PORT",
                    help="with --engine dask: the scheduler of an existing cluster (default: a LocalCluster)")
    sw.add_argument("--out", type=Path, default=None, help="sweep folder (default: results/sweeps/<sweep file name>/)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                    help="override a field of the base scenario at every point, e.g. "
                         "--set population.organic_users=100000 (repeatable; part of the sweep's identity)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    rep = sub.add_parser("report", help="write a self-contained HTML audit report of a run or sweep folder",
                         description="Turn a run folder (simulator run) or a sweep folder (simulator sweep) into "
                                     "report.html in that folder: one self-contained file, figures embedded.")
    rep.add_argument("folder", type=Path, help="a run or sweep folder")


def cmd_sweep(args) -> int:
    from .config import ScenarioError
    from .sweep.engines import EngineError, default_workers, make_engine
    from .sweep.spec import SweepError, load_sweep
    from .sweep.store import SweepStore, default_sweep_folder

    try:
        spec = load_sweep(args.sweep, args.overrides)
        engine = make_engine(args.engine, default_workers() if args.workers is None else args.workers, args.address)
        folder = args.out if args.out is not None else default_sweep_folder(spec)
        SweepStore(folder).check(spec)
    except (SweepError, ScenarioError) as exc:
        return _bad(str(exc))
    from .sweep.runner import run_sweep

    try:
        outcome = run_sweep(spec, folder, engine, progress=not args.quiet, argv=args.argv)
    except SweepError as exc:   # e.g. no Dask scheduler at --address
        return _bad(str(exc))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"interrupted: the finished units are kept in {folder}/units/; rerun the same command to resume",
              file=sys.stderr)
        return EXIT_FAILURE
    except Exception:  # noqa: BLE001 - reported with its traceback, exit 1
        traceback.print_exc()
        print(f"error: the sweep failed (traceback above); the finished units are kept in {folder}/units/",
              file=sys.stderr)
        return EXIT_FAILURE
    if not args.quiet:
        print(f"{spec.name}: {len(spec.points)} points × {spec.replicates} replicates = {outcome.units} units "
              f"({outcome.ran} run now, {outcome.skipped} already done): {outcome.ok} ok, {outcome.failed} failed")
        names = ", ".join(sorted({p.name if p.parent == folder else p.parent.name + "/" for p in outcome.files}))
        print(f"wrote {folder}/ ({names}) in {outcome.wall_time:.1f} s; `simulator report {folder}` writes the "
              "HTML report")
    if outcome.failed:
        ids = ", ".join(map(str, outcome.failed_points[:10])) + (" …" if len(outcome.failed_points) > 10 else "")
        print(f"error: {outcome.failed} of {outcome.units} units failed (points {ids}); errors in "
              f"{folder}/points.csv, tracebacks in {folder}/units/; rerun the same command to retry them",
              file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_report(args) -> int:
    from .report import ReportError, write_report

    try:
        path = write_report(args.folder)
    except ReportError as exc:
        return _bad(str(exc))
    print(f"wrote {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())

