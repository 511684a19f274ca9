"""Figures of a run, drawn from its daily series (the rows of ``timeseries.csv``), written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .metrics import t_quantile_975  # noqa: E402

WORLDS = ("campaign", "inert", "chronological")
MITIGATED_WORLDS = ("campaign_unmitigated", "campaign", "inert", "chronological")
WORLD_LABELS = {"campaign": "with campaign", "inert": "campaign inert", "chronological": "chronological control",
                "campaign_unmitigated": "with campaign, no mitigation"}
MITIGATED_LABELS = {"campaign": "with campaign, mitigated", "inert": "campaign inert, mitigated",
                    "chronological": "chronological control, mitigated",
                    "campaign_unmitigated": "with campaign, no mitigation"}


def save_figure(fig, path: Path) -> Path:
    """Write a Matplotlib figure as PNG, atomically, without a timestamp (equal figures give equal files)."""
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    from .results import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _mean_band(values: np.ndarray, lo_clip: float = -np.inf, hi_clip: float = np.inf):
    """Mean over replicates (rows) and a 95% Student-t band when there are several, clipped to the valid range."""
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return mean, None, None
    half = t_quantile_975(n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, np.clip(mean - half, lo_clip, hi_clip), np.clip(mean + half, lo_clip, hi_clip)


def series_by_replicate(header: list[str], rows: list[list]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(days, {column: array (replicates, days)}) from the rows of timeseries.csv."""
    table = np.array([[float(v) if v != "" else np.nan for v in row] for row in rows])
    reps = np.unique(table[:, 0])
    days = np.unique(table[:, 1]).astype(int)
    cols = {name: np.array([table[table[:, 0] == r][:, i] for r in reps]) for i, name in enumerate(header)}
    return days, cols


def plot_run(folder: Path, header: list[str], rows: list[list], *, scenario_name: str, ranker: str, target: str,
             candidates: list[str], n_o: int, activation_day: float, mitigated: bool = False) -> list[Path]:
    days, cols = series_by_replicate(header, rows)
    x = days + 1
    out = []
    worlds, labels = (MITIGATED_WORLDS, MITIGATED_LABELS) if mitigated else (WORLDS, WORLD_LABELS)
    for key, fname, ylabel, scale in (("cumulative_reach", "reach.png", "cumulative reach (share of audience O)", n_o),
                                      ("target_impressions", "impressions.png", "target impressions per day", 1)):
        fig, ax = plt.subplots(figsize=(7, 4))
        for w in worlds:
            mean, lo, hi = _mean_band(cols[f"{key}_{w}"] / scale, 0.0)
            line, = ax.plot(x, mean, label=labels[w], ls="--" if w == "campaign_unmitigated" else "-")
            if lo is not None:
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
        ax.axvline(activation_day + 1, color="grey", ls=":", lw=1, label="bots wake")
        ax.set_xlabel("day")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{scenario_name}: posts promoting '{target}' ({ranker} ranker)")
        ax.legend(fontsize=8)
        out.append(_save(fig, folder / fname))
    # Share of voice, cumulative to each day (daily shares swing with single viral posts), and vote shares.
    imps = np.stack([cols[f"candidate_impressions_{c}"] for c in candidates], axis=2)   # (rep, day, cand)
    cum = np.cumsum(imps, axis=1)
    tot = cum.sum(axis=2, keepdims=True)
    sov = np.divide(cum, tot, out=np.zeros_like(cum), where=tot > 0)
    votes = np.stack([cols[f"vote_share_{c}"] for c in candidates], axis=2)
    for values, fname, ylabel in ((sov, "share_of_voice.png", "share of voice (cumulative)"),
                                  (votes, "vote_shares.png", "expected vote share")):
        fig, ax = plt.subplots(figsize=(7, 4))
        for c, name in enumerate(candidates):
            mean, lo, hi = _mean_band(values[:, :, c], 0.0, 1.0)
            line, = ax.plot(x, mean, label=name, lw=2.5 if name == target else 1.2)
            if lo is not None:
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
        ax.axvline(activation_day + 1, color="grey", ls=":", lw=1)
        ax.set_xlabel("day")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{scenario_name}: {ylabel} by candidate (with campaign)")
        ax.legend(fontsize=8)
        out.append(_save(fig, folder / fname))
    return out
