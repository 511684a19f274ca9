"""A finished sweep's tables: the tidy per-unit table, the per-point summary and the sensitivity indices.

* ``points.csv``: one row per (point, replicate): ``point_id, replicate, seed, status, error``, each varied
  parameter by its dotted path (a linked group by its name, then its fields), then every metric (sorted by name).
  Rows sorted by point and replicate; no timing, so equal sweeps give byte-identical files.
* ``summary.csv``: one row per point: its parameters, how many replicates succeeded and failed, and for every
  metric ``mean``, ``ci_low``, ``ci_high`` (95% Student-t over the replicates that gave a value, as
  ``simulator.metrics.summary``; empty when n < 2) and ``n``.
* sensitivity (``sobol`` and ``morris`` designs): computed on each point's mean over replicates of each metric the
  sweep file lists; Sobol' first-order and total indices with 95% bootstrap confidence intervals
  (``SALib.analyze.sobol``, no second-order terms), or Morris μ*, its 95% confidence interval, σ and μ
  (``SALib.analyze.morris``). A metric with no value at some point, or that does not vary, is skipped with the
  reason.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..metrics import summary
from .designs import design_int_seed, salib_problem
from .spec import SweepSpec
from .unit import seed_text

UNIT_COLUMNS = ("point_id", "replicate", "seed", "status", "error")
SOBOL_INDICES = ("S1", "S1_conf", "ST", "ST_conf")
MORRIS_INDICES = ("mu_star", "mu_star_conf", "sigma", "mu")


def num(v) -> str:
    """A number in points.csv/summary.csv: shortest repr that round-trips; empty for no value."""
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    v = float(v)
    return repr(v) if math.isfinite(v) else ""


def metric_names(records: dict) -> list[str]:
    """Every metric any successful unit reported, sorted (the set is open: new metrics appear as columns)."""
    names: set[str] = set()
    for rec in records.values():
        if rec.get("status") == "ok":
            names.update(rec.get("metrics", {}))
    return sorted(names)


def points_table(spec: SweepSpec, records: dict) -> tuple[list[str], list[list]]:
    metrics = metric_names(records)
    header = list(UNIT_COLUMNS) + spec.parameter_columns + metrics
    rows = []
    for p in spec.points:
        cells = dict(p.cells)
        for r in range(spec.replicates):
            rec = records.get((p.point_id, r), {})
            error = " ".join(str(rec.get("error", "")).split())
            row = [p.point_id, r, seed_text(spec.seed, r), rec.get("status", "not_run"), error]
            row += [cells[c] for c in spec.parameter_columns]
            values = rec.get("metrics", {}) if rec.get("status") == "ok" else {}
            row += [num(values.get(m)) for m in metrics]
            rows.append(row)
    return header, rows


def _values(spec: SweepSpec, records: dict, point_id: int, metric: str) -> list:
    out = []
    for r in range(spec.replicates):
        rec = records.get((point_id, r), {})
        if rec.get("status") == "ok":
            out.append(rec.get("metrics", {}).get(metric))
    return out


def point_summaries(spec: SweepSpec, records: dict, metrics: list[str]) -> list[dict]:
    """Per point: {point_id, cells, ok, failed, metrics: {name: summary}}."""
    out = []
    for p in spec.points:
        statuses = [records.get((p.point_id, r), {}).get("status") for r in range(spec.replicates)]
        out.append({"point_id": p.point_id, "cells": dict(p.cells), "ok": statuses.count("ok"),
                    "failed": statuses.count("failed"),
                    "metrics": {m: summary(_values(spec, records, p.point_id, m)) for m in metrics}})
    return out


def summary_table(spec: SweepSpec, summaries: list[dict], metrics: list[str]) -> tuple[list[str], list[list]]:
    header = ["point_id"] + spec.parameter_columns + ["replicates_ok", "replicates_failed"]
    for m in metrics:
        header += [f"{m}.mean", f"{m}.ci_low", f"{m}.ci_high", f"{m}.n"]
    rows = []
    for s in summaries:
        row = [s["point_id"]] + [s["cells"][c] for c in spec.parameter_columns] + [s["ok"], s["failed"]]
        for m in metrics:
            v = s["metrics"][m]
            row += [num(v["mean"]), num(v["ci_low"]), num(v["ci_high"]), v["n"]]
        rows.append(row)
    return header, rows


def _clean(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def sensitivity(spec: SweepSpec, summaries: list[dict]) -> dict | None:
    """Sensitivity indices of each analysed metric (``sobol``/``morris`` designs); None for other designs."""
    if spec.design not in ("sobol", "morris"):
        return None
    problem = salib_problem(spec.factors)
    x = np.array([p.x for p in spec.points], dtype=float)
    out = {"design": spec.design, "on": "per-point mean over replicates", "confidence_level": 0.95,
           "parameters": problem["names"], "bounds": problem["bounds"], "metrics": {}}
    for m in spec.metrics:
        y = np.array([np.nan if s["metrics"][m]["mean"] is None else s["metrics"][m]["mean"] for s in summaries])
        missing = int(np.isnan(y).sum())
        if missing:
            out["metrics"][m] = {"status": "skipped", "reason": f"{missing} of {len(y)} points have no value "
                                                                "(failed units, or the metric is undefined there)"}
            continue
        if float(np.ptp(y)) == 0.0:
            out["metrics"][m] = {"status": "skipped", "reason": "the metric has the same value at every point"}
            continue
        seed = design_int_seed(spec.seed, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if spec.design == "sobol":
                from SALib.analyze import sobol as sobol_analyze

                res = sobol_analyze.analyze(problem, y, calc_second_order=False, conf_level=0.95, seed=seed)
                names = SOBOL_INDICES
            else:
                from SALib.analyze import morris as morris_analyze

                res = morris_analyze.analyze(problem, x, y, conf_level=0.95, num_levels=spec.levels, seed=seed)
                names = MORRIS_INDICES
        out["metrics"][m] = {"status": "ok", "indices": {
            p: {k: _clean(np.asarray(res[k])[j]) for k in names} for j, p in enumerate(problem["names"])}}
    return out


def sensitivity_table(sens: dict) -> tuple[list[str], list[list]]:
    names = SOBOL_INDICES if sens["design"] == "sobol" else MORRIS_INDICES
    header = ["metric", "parameter", *names]
    rows = []
    for m, res in sens["metrics"].items():
        if res["status"] != "ok":
            continue
        for p, idx in res["indices"].items():
            rows.append([m, p] + [num(idx[k]) for k in names])
    return header, rows


def design_table(spec: SweepSpec) -> tuple[list[str], list[list]]:
    """The design row of every point before rounding (SALib's sample for sobol/morris; the unit-cube position for
    latin_hypercube; the level index or value for grid)."""
    header = ["point_id"] + [f.name for f in spec.factors]
    return header, [[p.point_id] + [num(v) for v in p.x] for p in spec.points]
