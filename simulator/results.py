"""Run folders: atomic writes, the manifest, metrics.json and timeseries.csv."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from . import __version__
from .audit import WORLDS, AuditResult, distinct_worlds
from .config import config_hash, scenario_to_dict
from .kernel_threads import kernel_threads
from .metrics import SCHEMA_VERSION

DEPENDENCIES = ("numpy", "scipy", "mesa", "matplotlib", "tqdm", "networkx")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename: never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj) -> str:
    """Canonical JSON: sorted keys, fixed separators, so equal results give byte-identical files."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    """Commit of the source that ran: the checkout the package is imported from or, for an installed package, the
    checkout in the working directory if its package sources are byte-identical to the installed ones; "-dirty"
    when tracked files differ from that commit; None when neither applies."""
    package = Path(__file__).resolve().parent
    for folder in (package.parent, Path.cwd()):
        top = _git(folder, "rev-parse", "--show-toplevel")
        if top is None:
            continue
        source = Path(top) / "simulator"
        if source.resolve() != package and not _same_sources(source, package):
            continue
        commit = _git(Path(top), "rev-parse", "HEAD")
        if commit is None:
            return None
        dirty = _git(Path(top), "status", "--porcelain", "--untracked-files=no")
        return commit + ("-dirty" if dirty else "")
    return None


def _same_sources(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.py"))
    files_b = sorted(p.relative_to(b) for p in b.rglob("*.py"))
    return bool(files_a) and files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def dependency_versions(extra: tuple[str, ...] = ()) -> dict:
    """Python's version and each dependency's (None when not installed), plus ``extra`` packages."""
    out = {"python": platform.python_version()}
    for name in DEPENDENCIES + tuple(extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def numpy_simd() -> dict:
    """NumPy's SIMD baseline and the dispatched targets it enables on this CPU. Some NumPy results (``log10``,
    ``exp``, powers, the order of ties in an unstable sort) depend on them; the model avoids those calls where they
    would change a result (``tests/test_portability.py``), and the manifest records the features all the same."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:   # NumPy 1.x
        try:
            from numpy.core import _multiarray_umath as umath
        except ImportError:
            return {}
    features = getattr(umath, "__cpu_features__", {})
    return {"baseline": list(getattr(umath, "__cpu_baseline__", [])),
            "enabled": [f for f in getattr(umath, "__cpu_dispatch__", []) if features.get(f)]}


def platform_facts() -> dict:
    """The machine facts a manifest records: system, architecture, CPUs, kernel threads, NumPy's SIMD features."""
    return {"system": platform.system(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "kernel_threads": kernel_threads(), "numpy_simd": numpy_simd()}


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def metrics_document(result: AuditResult) -> dict:
    s = result.scenario
    return {
        "schema_version": SCHEMA_VERSION,
        "scenario": s.name,
        "config_hash": config_hash(s),
        "seed": result.seed,
        "replicates": len(result.replicates),
        "worlds": {w: distinct_worlds(s)[w] for w in WORLDS},
        "metrics": result.metrics,
        "per_replicate": [dict(sorted(r.metrics.items())) for r in result.replicates],
    }


def manifest_document(result: AuditResult, *, scenario_path: str, argv: list[str], started_at: str,
                      wall_time: float, extra: dict | None = None) -> dict:
    s = result.scenario
    doc = {
        "schema_version": SCHEMA_VERSION,
        "scenario": s.name,
        "scenario_path": scenario_path,
        "config": scenario_to_dict(s),
        "config_hash": config_hash(s),
        "seed": result.seed,
        "replicates": len(result.replicates),
        "spawn_keys": [list(r.spawn_key) for r in result.replicates],
        "worlds": {w: distinct_worlds(s)[w] for w in WORLDS},
        "command": argv,
        "package": {"name": "simulator", "version": __version__},
        "dependencies": dependency_versions(),
        "git_commit": git_commit(),
        "platform": platform_facts(),
        "started_at": started_at,
        "wall_time_seconds": round(wall_time, 3),
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    if extra:
        doc.update(extra)
    return doc


def timeseries_rows(result: AuditResult) -> tuple[list[str], list[list]]:
    """Per replicate and day: target impressions and cumulative reach in each paired world, share of voice per
    candidate, expected vote shares and impressions per candidate (campaign world; to the audience O)."""
    names = list(result.scenario.candidates.names)
    header = ["replicate", "day"]
    header += [f"target_impressions_{w}" for w in WORLDS] + [f"cumulative_reach_{w}" for w in WORLDS]
    header += [f"share_of_voice_{c}" for c in names] + [f"vote_share_{c}" for c in names]
    header += [f"candidate_impressions_{c}" for c in names]
    rows = []
    for r in result.replicates:
        series = {w: r.outcomes[w].series for w in WORLDS}
        days = series["campaign"]["day"]
        for i, day in enumerate(days):
            row = [r.replicate, int(day)]
            row += [int(series[w]["target_impressions"][i]) for w in WORLDS]
            row += [int(series[w]["cumulative_reach"][i]) for w in WORLDS]
            cand = series["campaign"]["candidate_impressions"][i]
            total = sum(cand)
            row += [_num(c / total) if total else "" for c in cand]
            row += [_num(v) for v in series["campaign"]["vote_shares"][i]]
            row += [int(c) for c in cand]
            rows.append(row)
    return header, rows


def _num(x: float) -> str:
    return repr(float(x))


def csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


FLAGGED_COLUMNS = ("replicate", "world", "account", "true_kind", "stage", "stage_index", "flagged_at_hours",
                   "reason")


def flagged_rows(result: AuditResult) -> list[list]:
    """Every account a mitigation stage flagged (first flag per account and stage), with its true kind: in the
    mitigated world with the campaign and in the mitigated inert world (false positives when nothing is there to
    catch), per replicate; sorted by replicate, world, time, stage, account."""
    rows = []
    for r in result.replicates:
        for world in ("campaign", "inert"):
            for f in r.outcomes[world].flagged:
                rows.append([r.replicate, world, f["account"], f["true_kind"], f["stage"], f["stage_index"],
                             _num(f["flagged_at_hours"]), f["reason"]])
    order = {"campaign": 0, "inert": 1}
    rows.sort(key=lambda row: (row[0], order[row[1]], float(row[6]), row[5], row[2]))
    return rows


def write_run(folder: Path, result: AuditResult, manifest: dict) -> list[Path]:
    """Write metrics.json, timeseries.csv, flagged.csv (with mitigation stages), plots and (last) manifest.json
    into ``folder``."""
    from .plots import plot_run

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    header, rows = timeseries_rows(result)
    atomic_write_text(folder / "timeseries.csv", csv_text(header, rows))
    written = [folder / "timeseries.csv"]
    s = result.scenario
    if s.mitigations:
        atomic_write_text(folder / "flagged.csv", csv_text(list(FLAGGED_COLUMNS), flagged_rows(result)))
        written.append(folder / "flagged.csv")
    written += plot_run(folder, header, rows, scenario_name=s.name, ranker=s.ranker.name, target=s.candidates.target,
                        candidates=list(s.candidates.names), n_o=result.replicates[0].outcomes["campaign"].n_o,
                        activation_day=s.campaign.bots.activation_day, mitigated=bool(s.mitigations))
    atomic_write_text(folder / "metrics.json", dumps_json(metrics_document(result)))
    atomic_write_text(folder / "manifest.json", dumps_json(manifest))
    return written + [folder / "metrics.json", folder / "manifest.json"]


def default_run_folder(scenario_name: str, seed: int) -> Path:
    return Path("results") / f"{scenario_name}-seed{seed}"


def command_line(argv: list[str] | None = None) -> list[str]:
    """The command as the user would type it."""
    return ["simulator"] + list(sys.argv[1:] if argv is None else argv)
