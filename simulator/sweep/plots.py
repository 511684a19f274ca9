"""A sweep's figures (PNG, written atomically into ``plots/``), for each metric the sweep file lists:

* ``<metric>_vs_<parameter>.png``: the metric against each varied parameter. In a two-parameter grid, one series per
  value of the other parameter, each point's mean over replicates with its 95% CI (a band on a numeric axis, error
  bars on a categorical one). In a grid of one or three
  and more parameters, the main effect: at each value, the mean over the other parameters' combinations, with a 95%
  CI over replicates (each replicate averaged over those combinations: the replicates share their seeds across
  points). Other designs: each point's mean with its 95% CI as an error bar.
* ``<metric>_heatmap.png``: two-parameter grids: the mean at every combination.
* ``sensitivity_<metric>.png``: Sobol' S1 and ST, or Morris μ* (with their confidence intervals), per parameter.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..metrics import summary  # noqa: E402
from ..plots import _save  # noqa: E402
from .spec import Factor, SweepSpec  # noqa: E402

PLOTS_DIR = "plots"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _levels(spec: SweepSpec, f: Factor) -> list[str]:
    """The distinct texts of the factor's column, in design order."""
    if f.kind == "levels":
        return list(f.labels)
    seen: dict[str, None] = {}
    for p in spec.points:
        seen.setdefault(dict(p.cells)[f.name], None)
    return list(seen)


def _numeric_x(spec: SweepSpec, f: Factor) -> dict[str, float] | None:
    """Numeric positions of the factor's levels when they are plain numbers (else None: categorical axis)."""
    if f.kind == "range":
        return {t: float(t) for t in _levels(spec, f)}
    if f.linked:
        return None
    vals = [lv[0] for lv in f.levels]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return {label: float(v) for label, v in zip(f.labels, vals)}
    return None


def _band(s: dict) -> tuple[float, float, float]:
    nan = float("nan")
    mean = s["mean"] if s["mean"] is not None else nan
    lo = s["ci_low"] if s["ci_low"] is not None else nan
    hi = s["ci_high"] if s["ci_high"] is not None else nan
    return mean, lo, hi


def _axis(ax, f: Factor, labels: list[str], xs: dict | None) -> list[float]:
    if xs is None:
        pos = list(range(len(labels)))
        ax.set_xticks(pos)
        ax.set_xticklabels(labels, rotation=20 if max(len(lb) for lb in labels) > 8 else 0, ha="right"
                           if max(len(lb) for lb in labels) > 8 else "center", fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        return pos
    return [xs[lb] for lb in labels]


def _line(ax, x, stats, label=None, categorical=False, offset=0.0):
    """Means with their 95% CIs: a band on a numeric axis; error bars (no connecting line) on a categorical one."""
    means, lows, highs = zip(*(_band(s) for s in stats)) if stats else ((), (), ())
    if categorical:
        err = [[m - lo if math.isfinite(lo) else 0.0 for m, lo in zip(means, lows)],
               [hi - m if math.isfinite(hi) else 0.0 for m, hi in zip(means, highs)]]
        ax.errorbar([v + offset for v in x], means, yerr=err, fmt="o", ms=5, capsize=4, label=label)
        return
    line, = ax.plot(x, means, marker="o", ms=4, label=label)
    if any(math.isfinite(v) for v in lows):
        ax.fill_between(x, lows, highs, color=line.get_color(), alpha=0.2, lw=0)


def _main_effect(spec: SweepSpec, records: dict, f: Factor, label: str, metric: str) -> dict:
    """Mean over the points at this level; CI over replicates of the per-replicate average over those points."""
    pids = [p.point_id for p in spec.points if dict(p.cells)[f.name] == label]
    per_rep = []
    for r in range(spec.replicates):
        vals = []
        for pid in pids:
            rec = records.get((pid, r), {})
            vals.append(rec.get("metrics", {}).get(metric) if rec.get("status") == "ok" else None)
        per_rep.append(None if not vals or any(v is None for v in vals) else float(np.mean(vals)))
    return summary(per_rep)


def metric_vs_factor(folder: Path, spec: SweepSpec, summaries: list[dict], records: dict, metric: str,
                     f: Factor) -> Path:
    by_id = {s["point_id"]: s for s in summaries}
    labels = _levels(spec, f)
    xs = _numeric_x(spec, f)
    fig, ax = plt.subplots(figsize=(7, 4))
    x = _axis(ax, f, labels, xs)
    reps = f"{spec.replicates} replicate{'s' if spec.replicates != 1 else ''}"
    if spec.design == "grid" and len(spec.factors) == 2:
        other = next(g for g in spec.factors if g is not f)
        olabels = _levels(spec, other)
        for k, olabel in enumerate(olabels):
            stats = []
            for lb in labels:
                p = next(p for p in spec.points if dict(p.cells)[f.name] == lb and dict(p.cells)[other.name] == olabel)
                stats.append(by_id[p.point_id]["metrics"][metric])
            _line(ax, x, stats, label=f"{other.name} = {olabel}", categorical=xs is None,
                  offset=(k - (len(olabels) - 1) / 2) * min(0.1, 0.6 / len(olabels)))
        ax.legend(fontsize=8)
        note = f"mean of {reps} with 95% CI"
    elif spec.design == "grid":
        _line(ax, x, [_main_effect(spec, records, f, lb, metric) for lb in labels], categorical=xs is None)
        note = (f"mean of {reps} with 95% CI" if len(spec.factors) == 1 else
                f"main effect: mean over the other parameters' combinations; 95% CI over {reps}")
    else:
        px, means, err_lo, err_hi = [], [], [], []
        pos = dict(zip(labels, x))
        for p in spec.points:
            cells = dict(p.cells)
            s = by_id[p.point_id]["metrics"][metric]
            if s["mean"] is None:
                continue
            px.append(pos[cells[f.name]] if xs is None else float(cells[f.name]) if f.kind == "range"
                      else xs[cells[f.name]])
            means.append(s["mean"])
            err_lo.append(s["mean"] - s["ci_low"] if s["ci_low"] is not None else 0.0)
            err_hi.append(s["ci_high"] - s["mean"] if s["ci_high"] is not None else 0.0)
        ax.errorbar(px, means, yerr=[err_lo, err_hi], fmt="o", ms=3, alpha=0.7, elinewidth=0.8, capsize=0)
        note = f"each point: mean of {reps} with 95% CI"
    ax.set_xlabel(f.name)
    ax.set_ylabel(metric)
    ax.set_title(f"{spec.name}: {metric} vs {f.name}\n({note})", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, folder / PLOTS_DIR / f"{safe_name(metric)}_vs_{safe_name(f.name)}.png")


def heatmap(folder: Path, spec: SweepSpec, summaries: list[dict], metric: str) -> Path:
    fa, fb = spec.factors
    la, lb = _levels(spec, fa), _levels(spec, fb)
    grid = np.full((len(lb), len(la)), np.nan)
    by_id = {s["point_id"]: s for s in summaries}
    for p in spec.points:
        cells = dict(p.cells)
        mean = by_id[p.point_id]["metrics"][metric]["mean"]
        if mean is not None:
            grid[lb.index(cells[fb.name]), la.index(cells[fa.name])] = mean
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(la), 1.2 + 0.6 * len(lb)))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_xticks(range(len(la)))
    ax.set_xticklabels(la, rotation=20 if max(map(len, la)) > 8 else 0, fontsize=8)
    ax.set_yticks(range(len(lb)))
    ax.set_yticklabels(lb, fontsize=8)
    ax.set_xlabel(fa.name)
    ax.set_ylabel(fb.name)
    finite = grid[np.isfinite(grid)]
    mid = float(np.mean([finite.min(), finite.max()])) if finite.size else 0.0
    for i in range(len(lb)):
        for j in range(len(la)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=8,
                        color="black" if grid[i, j] > mid else "white")
    ax.set_title(f"{spec.name}: {metric} (mean of {spec.replicates} replicates)", fontsize=10)
    return _save(fig, folder / PLOTS_DIR / f"{safe_name(metric)}_heatmap.png")


def sensitivity_chart(folder: Path, sens: dict, metric: str) -> Path | None:
    res = sens["metrics"].get(metric)
    if not res or res["status"] != "ok":
        return None
    params = list(res["indices"])
    y = np.arange(len(params))
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.5 * len(params)))

    def bars(key, conf, offset, label):
        vals = [res["indices"][p][key] or 0.0 for p in params]
        errs = [res["indices"][p][conf] or 0.0 for p in params]
        ax.barh(y + offset, vals, height=0.38 if offset else 0.6, xerr=errs, capsize=3, label=label)

    if sens["design"] == "sobol":
        bars("S1", "S1_conf", -0.2, "first-order S1")
        bars("ST", "ST_conf", 0.2, "total ST")
        ax.set_xlabel("Sobol' index (95% bootstrap CI)")
        ax.legend(fontsize=8)
    else:
        bars("mu_star", "mu_star_conf", 0.0, "μ*")
        ax.set_xlabel("Morris μ* (mean |elementary effect|, 95% CI)")
    ax.set_yticks(y)
    ax.set_yticklabels(params, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_title(f"sensitivity of {metric}", fontsize=10)
    return _save(fig, folder / PLOTS_DIR / f"sensitivity_{safe_name(metric)}.png")


def plot_sweep(folder: Path, spec: SweepSpec, summaries: list[dict], records: dict, sens: dict | None) -> list[Path]:
    out = []
    for metric in spec.metrics:
        if all(s["metrics"][metric]["mean"] is None for s in summaries):
            continue
        for f in spec.factors:
            out.append(metric_vs_factor(folder, spec, summaries, records, metric, f))
        if spec.design == "grid" and len(spec.factors) == 2:
            out.append(heatmap(folder, spec, summaries, metric))
        if sens is not None:
            p = sensitivity_chart(folder, sens, metric)
            if p is not None:
                out.append(p)
    return out
