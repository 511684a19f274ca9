"""A sweep's folder: its identity, one record per finished unit, and resuming.

Layout::

    sweep.json                 the sweep's identity: content hash, sweep file text, --set overrides (written first)
    units/p000012-r0003.json   one record per finished (point, replicate): status, error, traceback, metrics,
                               scenario hash, seed and spawn key, attempts, compute time (written atomically)
    points.csv, summary.csv, sensitivity.csv/.json, design.csv, plots/*.png, manifest.json   (written at the end)

A folder belongs to one sweep: another sweep file (by content hash) is refused. On a rerun, a unit whose record is
``ok`` for the same point scenario (config hash) and seed is skipped; a failed unit, or one without a record (it was
running when the sweep was interrupted), runs again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..results import atomic_write_text, dumps_json
from .spec import SweepError, SweepSpec

IDENTITY_FILE = "sweep.json"
UNITS_DIR = "units"
RECORD_SCHEMA = 1


def default_sweep_folder(spec: SweepSpec) -> Path:
    return Path("results") / "sweeps" / spec.name


def unit_name(point_id: int, replicate: int) -> str:
    return f"p{point_id:06d}-r{replicate:04d}.json"


class SweepStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    # ------------------------------------------------------------------ identity
    def check(self, spec: SweepSpec) -> None:
        """Refuse a folder made by another sweep, or one holding something else. Writes nothing."""
        f = self.folder
        if f.exists() and not f.is_dir():
            raise SweepError(f"--out {f}: exists and is not a folder")
        ident = f / IDENTITY_FILE
        if ident.is_file():
            try:
                stored = json.loads(ident.read_text(encoding="utf-8"))["sweep_hash"]
            except (OSError, ValueError, KeyError, TypeError):
                raise SweepError(f"{ident}: unreadable sweep identity; use --out to choose another folder") from None
            if stored != spec.hash:
                raise SweepError(f"{f} holds the results of a different sweep (content hash {stored[:12]}…, this "
                                 f"sweep with its --set overrides is {spec.hash[:12]}…); use --out to choose another "
                                 "folder")
        elif f.is_dir() and any(f.iterdir()):
            raise SweepError(f"{f} is not empty and holds no sweep ({IDENTITY_FILE}); use --out to choose another "
                             "folder")

    def claim(self, spec: SweepSpec) -> None:
        """Write the identity file (first thing written) unless it is already there."""
        ident = self.folder / IDENTITY_FILE
        if not ident.is_file():
            atomic_write_text(ident, dumps_json({
                "schema_version": RECORD_SCHEMA, "sweep_hash": spec.hash, "sweep_file": str(spec.path),
                "sweep_text": spec.text, "overrides": list(spec.overrides)}))
        (self.folder / UNITS_DIR).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ records
    def record_path(self, point_id: int, replicate: int) -> Path:
        return self.folder / UNITS_DIR / unit_name(point_id, replicate)

    def read_record(self, point_id: int, replicate: int) -> dict | None:
        p = self.record_path(point_id, replicate)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None   # unreadable: treated as never run (records are written atomically, so this is rare)

    def read_records(self, spec: SweepSpec) -> dict[tuple[int, int], dict]:
        out = {}
        for p in spec.points:
            for r in range(spec.replicates):
                rec = self.read_record(p.point_id, r)
                if rec is not None:
                    out[(p.point_id, r)] = rec
        return out

    def write_record(self, record: dict) -> None:
        atomic_write_text(self.record_path(record["point_id"], record["replicate"]), dumps_json(record))


def is_done(record: dict | None, scenario_hash: str, seed: str) -> bool:
    """A unit is finished when its record is ok for the same point scenario and seed."""
    return (record is not None and record.get("status") == "ok" and record.get("scenario_hash") == scenario_hash
            and record.get("seed") == seed)
