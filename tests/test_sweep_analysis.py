"""The tables and sensitivity indices of a sweep, from hand-made unit records (no simulation): closed-form cases for
Sobol' and Morris, the per-point summary against ``simulator.metrics.summary``, the tidy table's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.metrics import summary
from simulator.sweep.analysis import point_summaries, points_table, sensitivity, sensitivity_table, summary_table
from simulator.sweep.designs import design_points
from simulator.sweep.spec import Point, parse_sweep

ROOT = Path(__file__).resolve().parent.parent
BASE = f'scenario = "{ROOT}/experiments/romania_2024.toml"\n'
RANGES = ('[parameters]\n"campaign.bots.bot_share" = {min = 0.0, max = 0.02}\n'
          '"campaign.bots.burst_window" = {min = 5.0, max = 245.0}\n"campaign.bots.burst_jitter" = {min = 0.0, max = 60.0}\n')


def spec_with_points(body: str):
    """A parsed sweep with its design points (scenarios are not needed here)."""
    spec = parse_sweep(ROOT / "virtual.toml", BASE + body)
    spec.points = [Point(i, tuple(s), tuple(c), tuple(x)) for i, (s, c, x) in enumerate(design_points(spec))]
    return spec


def records_from(spec, f, replicates=1, noise=0.0):
    """Unit records whose metric 'reach_share' is f(normalised design row) (+ replicate noise)."""
    lows = np.array([fa.low for fa in spec.factors])
    span = np.array([fa.high - fa.low for fa in spec.factors])
    rng = np.random.default_rng(0)
    recs = {}
    for p in spec.points:
        u = (np.array(p.x) - lows) / span
        for r in range(replicates):
            recs[(p.point_id, r)] = {"status": "ok", "error": "",
                                     "metrics": {"reach_share": float(f(u) + noise * rng.standard_normal())}}
    return recs


def test_sobol_indices_of_a_linear_function():
    # y = 4 u1 + u2 (+ 0 u3) with u uniform: Var = (16 + 1)/12, S1 = ST = (16/17, 1/17, 0)
    spec = spec_with_points('design = "sobol"\nsamples = 1024\nmetrics = ["reach_share"]\n' + RANGES)
    sums = point_summaries(spec, records_from(spec, lambda u: 4 * u[0] + u[1]), ["reach_share"])
    res = sensitivity(spec, sums)["metrics"]["reach_share"]
    assert res["status"] == "ok"
    idx = res["indices"]
    expected = {"campaign.bots.bot_share": 16 / 17, "campaign.bots.burst_window": 1 / 17,
                "campaign.bots.burst_jitter": 0.0}
    for name, value in expected.items():
        assert idx[name]["S1"] == pytest.approx(value, abs=0.05)
        assert idx[name]["ST"] == pytest.approx(value, abs=0.05)
        assert idx[name]["S1_conf"] > 0 or value == 0.0
    again = sensitivity(spec, sums)
    assert again["metrics"]["reach_share"] == res                       # seeded bootstrap: deterministic
    header, rows = sensitivity_table(again)
    assert header == ["metric", "parameter", "S1", "S1_conf", "ST", "ST_conf"] and len(rows) == 3


def test_morris_mu_star_of_a_linear_function():
    # elementary effects on the unit-normalised grid are the slopes: mu* = (3, 1, 0), sigma = 0
    spec = spec_with_points('design = "morris"\nsamples = 10\nlevels = 4\nmetrics = ["reach_share"]\n' + RANGES)
    sums = point_summaries(spec, records_from(spec, lambda u: 3 * u[0] - u[1]), ["reach_share"])
    idx = sensitivity(spec, sums)["metrics"]["reach_share"]["indices"]
    assert idx["campaign.bots.bot_share"]["mu_star"] == pytest.approx(3.0)
    assert idx["campaign.bots.burst_window"]["mu_star"] == pytest.approx(1.0)
    assert idx["campaign.bots.burst_window"]["mu"] == pytest.approx(-1.0)
    assert idx["campaign.bots.burst_jitter"]["mu_star"] == pytest.approx(0.0, abs=1e-12)
    assert idx["campaign.bots.bot_share"]["sigma"] == pytest.approx(0.0, abs=1e-9)


def test_sensitivity_skips_metrics_with_gaps_or_no_variation():
    spec = spec_with_points('design = "sobol"\nsamples = 4\nmetrics = ["reach_share"]\n' + RANGES)
    recs = records_from(spec, lambda u: 1.0)
    res = sensitivity(spec, point_summaries(spec, recs, ["reach_share"]))["metrics"]["reach_share"]
    assert res == {"status": "skipped", "reason": "the metric has the same value at every point"}
    recs = records_from(spec, lambda u: u[0])
    recs[(3, 0)] = {"status": "failed", "error": "RuntimeError: x", "metrics": {}}
    res = sensitivity(spec, point_summaries(spec, recs, ["reach_share"]))["metrics"]["reach_share"]
    assert res["status"] == "skipped" and res["reason"].startswith("1 of 20 points have no value")


def test_summary_and_points_tables():
    spec = spec_with_points('replicates = 3\n[parameters]\n"ranker.name" = ["random", "for_you"]\n')
    recs = {(0, 0): {"status": "ok", "metrics": {"reach_share": 0.5, "gini": None}},
            (0, 1): {"status": "ok", "metrics": {"reach_share": 0.25, "gini": 0.4}},
            (0, 2): {"status": "ok", "metrics": {"reach_share": 0.125, "gini": 0.5}},
            (1, 0): {"status": "failed", "error": "ValueError: bad\nthing", "metrics": {}},
            (1, 1): {"status": "ok", "metrics": {"reach_share": 0.75, "impressions": 3.0}},
            (1, 2): {"status": "ok", "metrics": {"reach_share": 0.5}}}
    header, rows = points_table(spec, recs)
    assert header == ["point_id", "replicate", "seed", "status", "error", "ranker.name", "gini", "impressions",
                      "reach_share"]
    assert rows[0] == [0, 0, "2024/0", "ok", "", "random", "", "", "0.5"]
    assert rows[3] == [1, 0, "2024/0", "failed", "ValueError: bad thing", "for_you", "", "", ""]
    metrics = ["gini", "impressions", "reach_share"]
    sums = point_summaries(spec, recs, metrics)
    assert (sums[0]["ok"], sums[1]["ok"], sums[1]["failed"]) == (3, 2, 1)
    assert sums[0]["metrics"]["reach_share"] == summary([0.5, 0.25, 0.125])
    header, rows = summary_table(spec, sums, metrics)
    assert header[:4] == ["point_id", "ranker.name", "replicates_ok", "replicates_failed"]
    ref = summary([0.75, 0.5])
    i = header.index("reach_share.mean")
    assert rows[1][i:i + 4] == [repr(ref["mean"]), repr(ref["ci_low"]), repr(ref["ci_high"]), 2]
    j = header.index("impressions.mean")
    assert rows[1][j:j + 4] == ["3.0", "", "", 1]                      # n < 2: no CI


def test_summary_ci_is_the_student_t_interval():
    """The CI is mean ± t(0.975, n − 1) · sd / √n, its quantile exactly scipy.stats' (computed without importing
    scipy.stats, which would cost every sweep worker about a second)."""
    from scipy import stats

    from simulator.metrics import t_quantile_975

    assert all(t_quantile_975(df) == float(stats.t.ppf(0.975, df)) for df in range(1, 200))
    values = [0.5, 0.25, 0.125, 0.3]
    s = summary(values)
    half = float(stats.t.ppf(0.975, 3)) * float(np.std(values, ddof=1)) / 2.0
    assert s["ci_low"] == pytest.approx(np.mean(values) - half, rel=1e-14)
    assert s["ci_high"] == pytest.approx(np.mean(values) + half, rel=1e-14)
    assert summary([0.5])["ci_low"] is None and summary([0.5])["n"] == 1
