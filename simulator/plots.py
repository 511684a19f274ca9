"""Figures of a run: daily series of the paired worlds (PNG, written atomically)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .audit import WORLDS  # noqa: E402

WORLD_LABELS = {"campaign": "with campaign", "inert": "campaign inert", "chronological": "chronological control"}


def _save(fig, path: Path) -> Path:
    from .results import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _mean_band(values: np.ndarray):
    """Mean over replicates (rows) and a 95% t band when there are several."""
    from scipy import stats

    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return mean, None, None
    half = stats.t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def plot_run(folder: Path, result) -> list[Path]:
    s = result.scenario
    reps = result.replicates
    days = np.asarray(reps[0].outcomes["campaign"].series["day"]) + 1
    n_o = reps[0].outcomes["campaign"].n_o
    out = []
    for key, fname, ylabel, scale in (("cumulative_reach", "reach.png", "cumulative reach (share of audience O)", n_o),
                                      ("target_impressions", "impressions.png", "target impressions per day", 1)):
        fig, ax = plt.subplots(figsize=(7, 4))
        for w in WORLDS:
            vals = np.array([r.outcomes[w].series[key] for r in reps], dtype=float) / scale
            mean, lo, hi = _mean_band(vals)
            line, = ax.plot(days, mean, label=WORLD_LABELS[w])
            if lo is not None:
                ax.fill_between(days, lo, hi, color=line.get_color(), alpha=0.2)
        ax.axvline(s.campaign.bots.activation_day + 1, color="grey", ls=":", lw=1, label="bots wake")
        ax.set_xlabel("day")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{s.name}: posts promoting '{s.candidates.target}' ({s.ranker.name} ranker)")
        ax.legend(fontsize=8)
        out.append(_save(fig, folder / fname))
    names = s.candidates.names
    for key, fname, ylabel in (("candidate_impressions", "share_of_voice.png", "share of voice"),
                               ("vote_shares", "vote_shares.png", "expected vote share")):
        fig, ax = plt.subplots(figsize=(7, 4))
        vals = np.array([r.outcomes["campaign"].series[key] for r in reps], dtype=float)  # (rep, day, cand)
        if key == "candidate_impressions":
            tot = vals.sum(axis=2, keepdims=True)
            vals = np.divide(vals, tot, out=np.zeros_like(vals), where=tot > 0)
        for c, name in enumerate(names):
            mean, lo, hi = _mean_band(vals[:, :, c])
            line, = ax.plot(days, mean, label=name, lw=2.5 if name == s.candidates.target else 1.2)
            if lo is not None:
                ax.fill_between(days, lo, hi, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("day")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{s.name}: {ylabel} by candidate (with campaign)")
        ax.legend(fontsize=8)
        out.append(_save(fig, folder / fname))
    return out
