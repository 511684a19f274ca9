"""Running a sweep: the units still to do, their records as they finish, then the tables, figures and manifest."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..config import config_hash, scenario_to_dict
from ..results import atomic_write_text, csv_text, dependency_versions, dumps_json, git_commit, platform_facts
from .analysis import (design_table, metric_names, point_summaries, points_table, sensitivity, sensitivity_table,
                       summary_table)
from .spec import SweepSpec
from .store import RECORD_SCHEMA, SweepStore, is_done
from .unit import UnitTask, seed_text

SWEEP_DEPENDENCIES = ("SALib", "pandas", "dask", "distributed")


@dataclass
class SweepOutcome:
    folder: Path
    units: int
    ran: int
    skipped: int
    ok: int
    failed: int
    failed_points: list[int] = field(default_factory=list)
    wall_time: float = 0.0
    files: list[Path] = field(default_factory=list)


def unit_tasks(spec: SweepSpec) -> list[UnitTask]:
    """Every unit, replicate by replicate: the points of one replicate share its seed, so a world that several
    points share (e.g. the unmitigated pair of a mitigation comparison) is run once per worker process and then
    found in its world cache (``audit.WORLD_CACHE``). The order never changes a result."""
    return [UnitTask(p.point_id, r, spec.replicates, spec.seed, s)
            for r in range(spec.replicates) for p, s in zip(spec.points, spec.scenarios)]


def scenario_hashes(spec: SweepSpec) -> list[str]:
    cache: dict[int, str] = {}
    for s in spec.scenarios:
        if id(s) not in cache:
            cache[id(s)] = config_hash(s)
    return [cache[id(s)] for s in spec.scenarios]


def run_sweep(spec: SweepSpec, folder: Path, engine, *, progress: bool = True, argv: list[str] | None = None
              ) -> SweepOutcome:
    """Run the units that have no ok record yet, write each record as it finishes, then write the outputs."""
    store = SweepStore(folder)
    store.check(spec)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    engine.open()       # a cluster that cannot be reached fails here, before anything is written
    try:
        return _run(spec, Path(folder), store, engine, started, t0, progress, argv)
    finally:
        engine.close()


def _run(spec: SweepSpec, folder: Path, store: SweepStore, engine, started: str, t0: float, progress: bool,
         argv: list[str] | None) -> SweepOutcome:
    from tqdm import tqdm

    store.claim(spec)
    hashes = scenario_hashes(spec)
    cells = {p.point_id: dict(p.cells) for p in spec.points}
    existing = store.read_records(spec)
    todo = [t for t in unit_tasks(spec) if not is_done(existing.get((t.point_id, t.replicate)),
                                                       hashes[t.point_id], seed_text(spec.seed, t.replicate))]
    commit = git_commit()
    failed = 0
    bar = tqdm(total=spec.units, initial=spec.units - len(todo), unit="unit", desc=f"{spec.name} ({engine.name})",
               disable=not progress, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    bar.set_postfix(failed=failed)

    def on_result(task: UnitTask, outcome: dict) -> None:
        nonlocal failed
        prev = existing.get((task.point_id, task.replicate))
        record = {
            "schema_version": RECORD_SCHEMA, "point_id": task.point_id, "replicate": task.replicate,
            "seed": seed_text(spec.seed, task.replicate), "root_seed": spec.seed,
            "parameters": cells[task.point_id], "scenario_hash": hashes[task.point_id],
            "attempts": (prev or {}).get("attempts", 0) + 1,
            "package_version": __version__, "git_commit": commit,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **outcome,
        }
        store.write_record(record)
        if record["status"] != "ok":
            failed += 1
            bar.set_postfix(failed=failed, refresh=False)
        bar.update(1)

    try:
        engine.run(todo, on_result)
    finally:
        bar.close()
    records = store.read_records(spec)
    wall = time.perf_counter() - t0
    files = write_outputs(Path(folder), spec, records, engine=engine.describe(), started=started, wall=wall,
                          ran=len(todo), argv=argv)
    n_ok = sum(1 for r in records.values() if r.get("status") == "ok")
    failed_points = sorted({k[0] for k, r in records.items() if r.get("status") != "ok"})
    return SweepOutcome(Path(folder), spec.units, len(todo), spec.units - len(todo), n_ok, spec.units - n_ok,
                        failed_points, time.perf_counter() - t0, files)


def _versions() -> dict:
    return dependency_versions(SWEEP_DEPENDENCIES)


def factor_document(f) -> dict:
    doc = {"name": f.name, "fields": list(f.paths), "kind": f.kind}
    if f.kind == "levels":
        doc["levels"] = [{"label": lb, "values": dict(zip(f.paths, vals))} for lb, vals in zip(f.labels, f.levels)]
    else:
        doc.update({"min": f.low, "max": f.high, "integer": f.integer})
        if f.steps is not None:
            doc["steps"] = f.steps
    return doc


def write_outputs(folder: Path, spec: SweepSpec, records: dict, *, engine: dict, started: str, wall: float,
                  ran: int, argv: list[str] | None) -> list[Path]:
    from .plots import plot_sweep

    files = []

    def write(name: str, text: str) -> None:
        atomic_write_text(folder / name, text)
        files.append(folder / name)

    header, rows = points_table(spec, records)
    write("points.csv", csv_text(header, rows))
    metrics = sorted(set(metric_names(records)) | set(spec.metrics))
    summaries = point_summaries(spec, records, metrics)
    header, rows = summary_table(spec, summaries, metrics)
    write("summary.csv", csv_text(header, rows))
    if spec.design != "grid":
        header, rows = design_table(spec)
        write("design.csv", csv_text(header, rows))
    sens = sensitivity(spec, summaries)
    if sens is not None:
        write("sensitivity.json", dumps_json(sens))
        header, rows = sensitivity_table(sens)
        write("sensitivity.csv", csv_text(header, rows))
    files += plot_sweep(folder, spec, summaries, records, sens)
    if any("mitigations" in f.paths for f in spec.factors):   # the stage sets compared (docs/mitigations.md §6)
        from .mitigations import write_mitigation_comparison

        files += write_mitigation_comparison(folder)

    previous = []
    try:
        import json

        previous = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("sessions", [])
    except (OSError, ValueError, AttributeError):
        previous = []
    statuses = [r.get("status") for r in records.values()]
    session = {"started_at": started, "units_run": ran, "wall_time_seconds": round(wall, 3), **engine}
    manifest = {
        "schema_version": RECORD_SCHEMA,
        "kind": "sweep",
        "sweep_file": str(spec.path),
        "sweep_text": spec.text,
        "sweep_hash": spec.hash,
        "description": spec.description,
        "overrides": list(spec.overrides),
        "fixed": {p: v for p, v in spec.fixed},
        "base_scenario": {"path": str(spec.scenario_path), "name": spec.base.name,
                          "config": scenario_to_dict(spec.base), "config_hash": config_hash(spec.base)},
        "design": spec.design,
        "samples": spec.samples,
        "levels": spec.levels if spec.design == "morris" else None,
        "factors": [factor_document(f) for f in spec.factors],
        "parameter_columns": spec.parameter_columns,
        "metrics_analysed": list(spec.metrics),
        "metric_columns": metric_names(records),
        "seed": spec.seed,
        "replicates": spec.replicates,
        "replicate_seeds": {seed_text(spec.seed, r): [r] for r in range(spec.replicates)},
        "points": len(spec.points),
        "units": spec.units,
        "units_ok": statuses.count("ok"),
        "units_failed": spec.units - statuses.count("ok"),
        "failed_points": sorted({k[0] for k, r in records.items() if r.get("status") != "ok"}),
        "point_config_hashes": sorted({r.get("scenario_hash") for r in records.values()} - {None}),
        "unit_git_commits": sorted({str(r.get("git_commit")) for r in records.values()}),
        "compute_seconds_total": round(sum(float(r.get("compute_seconds") or 0.0) for r in records.values()), 3),
        "files": sorted(str(p.relative_to(folder)) for p in files) + ["manifest.json"],
        "command": ["simulator"] + list(sys.argv[1:] if argv is None else argv),
        "package": {"name": "simulator", "version": __version__},
        "dependencies": _versions(),
        "git_commit": git_commit(),
        "platform": platform_facts(),
        "engine": engine,
        "started_at": started,
        "wall_time_seconds": round(wall, 3),
        "sessions": previous + [session],
    }
    atomic_write_text(folder / "manifest.json", dumps_json(manifest))
    files.append(folder / "manifest.json")
    return files
