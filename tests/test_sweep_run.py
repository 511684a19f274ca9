"""Running sweeps on tiny worlds: identical tables whatever the engine and worker count, common random numbers,
resuming (also after ``kill -9``), failed points, refusing another sweep's folder, and the sensitivity designs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import invoke_cli

from simulator.audit import run_replicate
from simulator.config import load_scenario
from simulator.seeding import replicate_seeds

ROOT = Path(__file__).resolve().parent.parent
TINY = ('[fixed]\n"population.organic_users" = 300\ndays = 3\n"campaign.bots.activation_day" = 1\n'
        '"campaign.recruits.recruit_day" = 1\n')
TINY_SET = ["population.organic_users=300", "days=3", "campaign.bots.activation_day=1",
            "campaign.recruits.recruit_day=1"]
GRID = ('design = "grid"\nreplicates = 2\nseed = 1\nmetrics = ["inflation_factor", "reach_share"]\n'
        '[parameters]\n"ranker.name" = ["chronological", "for_you"]\n"campaign.bots.bot_share" = [0.003, 0.01]\n')


def write_sweep(folder: Path, body: str, name: str = "tiny.toml") -> Path:
    p = folder / name
    p.write_text(f'scenario = "{ROOT}/experiments/romania_2024.toml"\n' + body + TINY, encoding="utf-8")
    return p


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory):
    """The same tiny grid sweep with 1 worker, 2 workers and the Dask engine (2 workers)."""
    d = tmp_path_factory.mktemp("grid")
    sweep = write_sweep(d, GRID)
    out = {}
    for label, args in {"w1": ["--workers", "1"], "w2": ["--workers", "2"],
                        "dask": ["--engine", "dask", "--workers", "2"]}.items():
        res = invoke_cli(["sweep", sweep, *args, "--out", d / label])
        assert res.code == 0, res.err
        out[label] = (d / label, res)
    return sweep, out


def test_points_csv_identical_for_one_two_workers_and_dask(grid_runs):
    _, runs = grid_runs
    files = ["points.csv", "summary.csv"] + [f"plots/{p.name}" for p in sorted((runs["w1"][0] / "plots").iterdir())]
    assert len(files) > 6
    for name in files:
        ref = (runs["w1"][0] / name).read_bytes()
        assert (runs["w2"][0] / name).read_bytes() == ref, name
        assert (runs["dask"][0] / name).read_bytes() == ref, name
    man = json.loads((runs["dask"][0] / "manifest.json").read_text())
    assert man["engine"]["engine"] == "dask" and man["units_ok"] == 8


def test_points_csv_layout(grid_runs):
    _, runs = grid_runs
    folder = runs["w1"][0]
    header, rows = read_csv(folder / "points.csv")
    assert header[:7] == ["point_id", "replicate", "seed", "status", "error", "ranker.name",
                          "campaign.bots.bot_share"]
    metrics = header[7:]
    assert metrics == sorted(metrics) and {"inflation_factor", "reach_share", "attribution.bot"} <= set(metrics)
    assert [(r["point_id"], r["replicate"]) for r in rows] == [(str(p), str(r)) for p in range(4) for r in range(2)]
    assert [r["seed"] for r in rows] == ["1/0", "1/1"] * 4
    assert {r["status"] for r in rows} == {"ok"} and {r["error"] for r in rows} == {""}
    assert [r["ranker.name"] for r in rows[::2]] == ["chronological", "chronological", "for_you", "for_you"]
    assert not any("time" in h or "seconds" in h for h in header)
    # chronological ranker: amplification is exactly 0 by construction
    assert {float(r["amplification"]) for r in rows if r["ranker.name"] == "chronological"} == {0.0}
    sheader, summary = read_csv(folder / "summary.csv")
    assert {"inflation_factor.mean", "inflation_factor.ci_low", "inflation_factor.ci_high",
            "inflation_factor.n"} <= set(sheader)
    assert len(summary) == 4 and {s["replicates_ok"] for s in summary} == {"2"}
    man = json.loads((folder / "manifest.json").read_text())
    for key in ("sweep_text", "sweep_hash", "seed", "replicates", "design", "points", "package", "git_commit",
                "dependencies", "engine", "wall_time_seconds", "base_scenario"):
        assert key in man, key
    assert man["points"] == 4 and man["replicates"] == 2 and man["dependencies"]["SALib"]
    assert (folder / "plots" / "inflation_factor_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "plots" / "inflation_factor_vs_ranker.name.png").is_file()


def test_units_use_common_random_numbers(grid_runs):
    """A row equals the replicate run directly with the point's scenario and replicate r's seed of the root seed."""
    _, runs = grid_runs
    _, rows = read_csv(runs["w1"][0] / "points.csv")
    row = next(r for r in rows if r["point_id"] == "3" and r["replicate"] == "1")
    s = load_scenario("romania_2024", TINY_SET + ["ranker.name=for_you", "campaign.bots.bot_share=0.01"])
    direct = run_replicate(s, 1, replicate_seeds(1, 2)[1]).metrics
    for name in ("inflation_factor", "reach", "share_of_voice", "gini"):
        assert float(row[name]) == direct[name]
    rec = json.loads((runs["w1"][0] / "units" / "p000003-r0001.json").read_text())
    assert rec["spawn_key"] == [1] and rec["seed"] == "1/1" and rec["status"] == "ok" and rec["attempts"] == 1


def test_rerun_skips_finished_units_and_refuses_another_sweep(grid_runs, cli, tmp_path):
    sweep, runs = grid_runs
    folder = runs["w2"][0]
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "units").iterdir()}
    points = (folder / "points.csv").read_bytes()
    res = cli(["sweep", sweep, "--workers", "2", "--out", folder])
    assert res.code == 0 and "(0 run now, 8 already done)" in res.out, res.out + res.err
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "units").iterdir()} == before
    assert (folder / "points.csv").read_bytes() == points
    # another sweep file (by content), or the same one with another --set, is refused: exit 2, one line
    other = write_sweep(tmp_path, GRID.replace("0.01]", "0.02]"))
    for args in ([other], [sweep, "--set", "opinion.persuasion=0.02"]):
        res = cli(["sweep", *args, "--out", folder])
        assert res.code == 2 and str(folder) in res.err and "--out" in res.err, res.err
        assert len(res.err.strip().splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "units").iterdir()} == before


FAILING_RANKER = '''
class Exploding:
    """A ranker that fails at its first feed (after passing validation)."""

    def __init__(self, context):
        pass

    def rank(self, request, view, rng):
        raise RuntimeError("ranker exploded on purpose\\nsecond line")
'''


def test_failed_points_are_recorded_and_retried(tmp_path, cli, monkeypatch):
    (tmp_path / "failing_ranker.py").write_text(FAILING_RANKER)
    monkeypatch.syspath_prepend(str(tmp_path))       # spawned workers inherit sys.path
    sweep = write_sweep(tmp_path, 'replicates = 2\nseed = 3\n[parameters]\n'
                                  '"ranker.name" = ["chronological", "failing_ranker.Exploding"]\n')
    out = tmp_path / "out"
    res = cli(["sweep", sweep, "--workers", "2", "--out", out])
    assert res.code == 1, res.err
    assert "2 of 4 units failed (points 1)" in res.err and "rerun the same command" in res.err
    _, rows = read_csv(out / "points.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"]
    assert rows[2]["error"] == "RuntimeError: ranker exploded on purpose" and rows[2]["inflation_factor"] == ""
    rec = json.loads((out / "units" / "p000001-r0000.json").read_text())
    assert "Traceback" in rec["traceback"] and "second line" in rec["traceback"] and rec["attempts"] == 1
    ok_before = (out / "units" / "p000000-r0000.json").stat().st_mtime_ns
    res = cli(["report", out])
    html = (out / "report.html").read_text()
    assert res.code == 0 and "Failed points" in html and "ranker exploded on purpose" in html
    # rerun: the failed units run again (and fail again), the finished ones are kept
    res = cli(["sweep", sweep, "--workers", "1", "--out", out])
    assert res.code == 1 and "(2 run now, 2 already done)" in res.out
    assert json.loads((out / "units" / "p000001-r0000.json").read_text())["attempts"] == 2
    assert (out / "units" / "p000000-r0000.json").stat().st_mtime_ns == ok_before


def test_kill_9_then_rerun_completes_without_loss_or_duplicates(grid_runs, tmp_path, cli):
    sweep, runs = grid_runs
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "sweep", str(sweep), "--workers", "1", "--out",
                             str(out), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if (out / "units").is_dir() and len(list((out / "units").glob("*.json"))) >= 2:
                break
            time.sleep(0.02)
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert children, "the sweep ran no worker processes"
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"orphaned workers still running: {alive}"
    first = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "units").glob("*.json")}
    assert 2 <= len(first) < 8 and not (out / "points.csv").exists()
    res = cli(["sweep", sweep, "--workers", "2", "--out", out])
    assert res.code == 0, res.err
    assert f"({8 - len(first)} run now, {len(first)} already done)" in res.out
    assert (out / "points.csv").read_bytes() == (runs["w1"][0] / "points.csv").read_bytes()
    for name, (mtime, data) in first.items():            # finished units were not run again
        p = out / "units" / name
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == data
    records = [json.loads(p.read_text()) for p in (out / "units").glob("*.json")]
    assert len(records) == 8 and {r["attempts"] for r in records} == {1}
    assert not list((out / "units").glob(".*.tmp"))


def test_sobol_sweep_writes_sensitivity(tmp_path, cli):
    sweep = write_sweep(tmp_path, 'design = "sobol"\nsamples = 2\nmetrics = ["reach_share", "impressions"]\n'
                                  '[parameters]\n"campaign.bots.bot_share" = {min = 0.0, max = 0.02}\n'
                                  '"campaign.bots.burst_window" = {min = 5.0, max = 240.0}\n')
    out = tmp_path / "sobol"
    res = cli(["sweep", sweep, "--workers", "2", "--out", out, "--quiet"])
    assert res.code == 0, res.err
    _, rows = read_csv(out / "points.csv")
    assert len(rows) == 2 * (2 + 2)
    header, sens = read_csv(out / "sensitivity.csv")
    assert header == ["metric", "parameter", "S1", "S1_conf", "ST", "ST_conf"]
    assert {(r["metric"], r["parameter"]) for r in sens} == {
        (m, p) for m in ("reach_share", "impressions") for p in ("campaign.bots.bot_share", "campaign.bots.burst_window")}
    doc = json.loads((out / "sensitivity.json").read_text())
    assert doc["design"] == "sobol" and doc["metrics"]["reach_share"]["status"] == "ok"
    assert (out / "plots" / "sensitivity_reach_share.png").is_file()
    assert (out / "plots" / "reach_share_vs_campaign.bots.burst_window.png").is_file()
    _, design_rows = read_csv(out / "design.csv")
    assert len(design_rows) == 8
    res = cli(["report", out])
    html = (out / "report.html").read_text()
    assert res.code == 0 and "Sensitivity analysis" in html and "ST_conf" in html
