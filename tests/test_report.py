"""The HTML audit report: made for a run folder and a sweep folder, self-contained (figures embedded, no external
resource), showing the key numbers, escaping every text it copies, and refusing folders it cannot read."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from simulator.report import fmt

ROOT = Path(__file__).resolve().parent.parent
TINY_SET = ["population.organic_users=300", "days=3", "campaign.bots.activation_day=1",
            "campaign.recruits.recruit_day=1"]


def set_args(overrides):
    out = []
    for o in overrides:
        out += ["--set", o]
    return out


def assert_self_contained(html: str, folder: Path, pngs: list[Path]) -> None:
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html and "<link" not in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(pngs) > 0
    assert {base64.b64decode(i) for i in images} == {p.read_bytes() for p in pngs}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from conftest import invoke_cli

    folder = tmp_path_factory.mktemp("run") / "run"
    res = invoke_cli(["run", *set_args(TINY_SET), "--seed", "5", "--replicates", "2", "--out", folder, "--quiet"])
    assert res.code == 0, res.err
    return folder


def test_run_report(run_folder, cli):
    res = cli(["report", run_folder])
    assert res.code == 0 and res.out.strip() == f"wrote {run_folder / 'report.html'}"
    html = (run_folder / "report.html").read_text(encoding="utf-8")
    assert_self_contained(html, run_folder, sorted(run_folder.glob("*.png")))
    metrics = json.loads((run_folder / "metrics.json").read_text())["metrics"]
    manifest = json.loads((run_folder / "manifest.json").read_text())
    for name in ("inflation_factor", "reach_share", "share_of_voice"):
        m = metrics[name]
        assert f"<td>{name}</td><td class=\"n\">{fmt(m['mean'])}</td>" in html
        assert f"[{fmt(m['ci_low'])}, {fmt(m['ci_high'])}]" in html
    for text in ("What was run", "Headline results", "Reproduction", "docs/model.md", manifest["config_hash"],
                 str(manifest["git_commit"]), "--replicates 2", "spawn keys", "with the campaign inert"):
        assert text in html, text
    assert "Mitigation stages</h2>" not in html        # the default scenario runs none


def test_run_report_with_mitigations_summarises_flagged_accounts(run_folder, tmp_path, cli):
    folder = tmp_path / "mitigated"
    shutil.copytree(run_folder, folder)
    man = json.loads((folder / "manifest.json").read_text())
    man["config"]["mitigations"] = [{"name": "coordination_detection", "start_day": 1.0}]
    (folder / "manifest.json").write_text(json.dumps(man))
    rows = [["replicate", "world", "account", "true_kind", "stage", "stage_index", "flagged_at_hours", "reason"],
            [0, "campaign", 12, "bot", "coordination_detection", 0, 30.0, "cluster <b>7</b>"],
            [0, "campaign", 13, "bot", "coordination_detection", 0, 36.0, "cluster 7"],
            [1, "campaign", 40, "organic", "coordination_detection", 0, 50.0, "cluster 2"],
            [1, "inert", 41, "organic", "coordination_detection", 0, 60.0, "cluster 3"]]
    with open(folder / "flagged.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    assert cli(["report", folder]).code == 0
    html = (folder / "report.html").read_text()
    assert "Mitigation stages</h2>" in html and "Flagged accounts" in html
    assert ("<tr><td>campaign</td><td>coordination_detection</td><td>bot</td><td class=\"n\">2</td>"
            "<td class=\"n\">30</td>") in html
    assert "<td>inert</td><td>coordination_detection</td><td>organic</td><td class=\"n\">1</td>" in html
    assert "coordination_detection (from day 1)" in html


def test_sweep_report_escapes_text_and_shows_the_point_means(tmp_path, cli):
    sweep = tmp_path / "esc.toml"
    sweep.write_text(f'scenario = "{ROOT}/experiments/romania_2024.toml"\n'
                     'description = "Does <script>alert(1)</script> & co. get escaped?"\nreplicates = 2\nseed = 4\n'
                     'metrics = ["reach_share"]\n[parameters.mitigations.values]\n"none <i>" = []\n'
                     'dampening = [{name = "dormancy_dampening"}]\n'
                     '[fixed]\n"population.organic_users" = 300\ndays = 3\n"campaign.bots.activation_day" = 1\n'
                     '"campaign.recruits.recruit_day" = 1\n')
    out = tmp_path / "out"
    assert cli(["sweep", sweep, "--workers", "1", "--out", out, "--quiet"]).code == 0
    assert cli(["report", out]).code == 0
    html = (out / "report.html").read_text()
    assert_self_contained(html, out, sorted(out.glob("*.png")) + sorted((out / "plots").glob("*.png")))
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co." in html
    assert "none <i>" not in html and "none &lt;i&gt;" in html
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        assert f"{fmt(r['reach_share.mean'])} [{fmt(r['reach_share.ci_low'])}, {fmt(r['reach_share.ci_high'])}]" in html
    man = json.loads((out / "manifest.json").read_text())
    for text in ("Varied parameters", "Results per point", man["sweep_hash"], "SeedSequence(4).spawn(R)[r]",
                 "dormancy_dampening", "Sweep file"):
        assert text in html, text


def test_report_refuses_unfinished_sweeps_and_other_folders(tmp_path, cli):
    (tmp_path / "sweep.json").write_text("{}")
    res = cli(["report", tmp_path])
    assert res.code == 2 and "has not finished" in res.err and len(res.err.strip().splitlines()) == 1
    res = cli(["report", tmp_path / "nope"])
    assert res.code == 2 and "no such folder" in res.err
    assert not (tmp_path / "report.html").exists()
