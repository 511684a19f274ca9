"""The mitigation comparison of a sweep that varies the list of mitigation stages (docs/mitigations.md §6).

From the sweep's ``summary.csv`` (one row per point: its parameters, then ``<metric>.mean``, ``.ci_low``,
``.ci_high`` and ``.n``) it writes, into the sweep folder:

* ``mitigations.csv``: one row per point with its parameters and, for each compared metric, mean and 95% CI;
* ``mitigations.md``: the same as a Markdown table (``mean [ci_low, ci_high]``);
* ``mitigation_tradeoff.png``: the share of the inflation removed (of reach and of extra impressions) against the
  collateral damage on organic creators, one labelled point per stage set, with 95% CI bars.
"""

from __future__ import annotations

import csv
from pathlib import Path

#: Metrics of the comparison, in column order, with their Markdown headers.
COMPARED = (
    ("inflation_factor_unmitigated", "inflation factor, no mitigation"),
    ("inflation_factor", "inflation factor, mitigated"),
    ("mitigation_effect", "inflation removed (reach)"),
    ("mitigation_effect_impressions", "inflation removed (impressions)"),
    ("collateral_damage.organic_creators", "collateral: organic creators"),
    ("collateral_damage.other_candidates", "collateral: other candidates"),
    ("precision", "precision"),
    ("recall.bot", "recall: bots"),
    ("recall.recruited", "recall: recruits"),
    ("recall.influencer", "recall: influencers"),
    ("detection_delay_hours.bot", "bot detection delay (h)"),
)
FACTOR = "mitigations"


def _read_summary(folder: Path) -> tuple[list[str], list[dict]]:
    with open(folder / "summary.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    stop = header.index("replicates_ok") if "replicates_ok" in header else len(header)
    params = [h for h in header[:stop] if h != "point_id"]
    return params, rows


def _num(text: str | None) -> float | None:
    return None if text in (None, "") else float(text)


def comparison_rows(folder: Path) -> tuple[list[str], list[str], list[list]]:
    """(parameter columns, CSV header, CSV rows) of the comparison, one row per point of the sweep."""
    params, rows = _read_summary(folder)
    header = ["point_id"] + params
    for name, _ in COMPARED:
        header += [f"{name}.mean", f"{name}.ci_low", f"{name}.ci_high", f"{name}.n"]
    out = []
    for r in rows:
        line = [r.get("point_id", "")] + [r[p] for p in params]
        for name, _ in COMPARED:
            line += [r.get(f"{name}.{k}", "") for k in ("mean", "ci_low", "ci_high", "n")]
        out.append(line)
    return params, header, out


def _cell(mean: float | None, lo: float | None, hi: float | None, digits: int = 3) -> str:
    if mean is None:
        return "—"
    text = f"{mean:.{digits}g}"
    if lo is not None and hi is not None:
        text += f" [{lo:.{digits}g}, {hi:.{digits}g}]"
    return text


def markdown_table(params: list[str], header: list[str], rows: list[list]) -> str:
    cols = params + [label for _, label in COMPARED]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [str(v) for v in row[1: 1 + len(params)]]
        base = 1 + len(params)
        for i in range(len(COMPARED)):
            mean, lo, hi = (_num(row[base + 4 * i + k]) for k in range(3))
            cells.append(_cell(mean, lo, hi))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_mitigation_comparison(folder: Path) -> list[Path]:
    """Write mitigations.csv, mitigations.md and mitigation_tradeoff.png from ``folder/summary.csv``."""
    from ..plots import save_figure
    from ..results import atomic_write_text, csv_text

    folder = Path(folder)
    params, header, rows = comparison_rows(folder)
    atomic_write_text(folder / "mitigations.csv", csv_text(header, rows))
    intro = ("Mitigation comparison: mean over replicates with its 95% CI. 'Inflation removed' is the share of "
             "the campaign's inflation of reach (mitigation_effect) and of its extra impressions of the target "
             "(mitigation_effect_impressions) that the stages removed; collateral damage is the relative change "
             "in impressions of authentic creators' posts when the campaign is inert (negative = reach lost). "
             "Definitions: docs/mitigations.md §3.\n\n")
    atomic_write_text(folder / "mitigations.md", intro + markdown_table(params, header, rows))
    return [folder / "mitigations.csv", folder / "mitigations.md",
            save_figure(_tradeoff_figure(params, header, rows), folder / "mitigation_tradeoff.png")]


def _tradeoff_figure(params: list[str], header: list[str], rows: list[list]):
    import matplotlib.pyplot as plt

    col = {h: i for i, h in enumerate(header)}

    def get(row, name):
        return tuple(_num(row[col[f"{name}.{k}"]]) for k in ("mean", "ci_low", "ci_high"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    for ax, effect, title in ((axes[0], "mitigation_effect", "share of the reach inflation removed"),
                              (axes[1], "mitigation_effect_impressions", "share of the extra impressions removed")):
        for row in rows:
            x, xlo, xhi = get(row, "collateral_damage.organic_creators")
            y, ylo, yhi = get(row, effect)
            if x is None or y is None:
                continue
            label = " / ".join(str(row[1 + i]) for i in range(len(params))) or str(row[0])
            xerr = [[x - xlo], [xhi - x]] if xlo is not None else None
            yerr = [[y - ylo], [yhi - y]] if ylo is not None else None
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=3)
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("collateral damage: change in organic creators' impressions (no campaign)")
        ax.set_ylabel(title)
        ax.set_title(title)
    fig.suptitle("Mitigations: inflation removed vs collateral damage (mean, 95% CI over replicates)")
    fig.tight_layout()
    return fig
