"""The command line: bad input (exit 2, one line, nothing written), run folders (manifest, metrics, time series,
plots), determinism, ``--force``/``--quiet``, the field reference and atomic writes."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
import typing
from datetime import datetime
from pathlib import Path

import pytest

import simulator
from simulator import results
from simulator.config import Scenario, config_hash, load_scenario, scenario_to_dict
from simulator.metrics import METRIC_NAMES, SCHEMA_VERSION

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SUMMARY_KEYS = {"mean", "ci_low", "ci_high", "n", "values"}
MANIFEST_KEYS = {"config", "config_hash", "seed", "spawn_keys", "command", "package", "dependencies", "git_commit",
                 "started_at", "wall_time_seconds", "peak_memory_mb"}
WORLDS = ("campaign", "inert", "chronological", "campaign_unmitigated", "inert_unmitigated")
SEED = 7


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------


def leaf_paths(cls: type = Scenario, prefix: str = "") -> list[str]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        out += leaf_paths(t, prefix + f.name + ".") if dataclasses.is_dataclass(t) else [prefix + f.name]
    return out


def metric_leaf(metrics: dict, dotted: str) -> dict:
    node = metrics
    for p in dotted.split("."):
        node = node[p]
    return node


def leaves(node: dict, prefix: str = "") -> dict[str, dict]:
    """{dotted name: summary} of a nested metrics object (a summary is a dict holding 'values')."""
    out = {}
    for k, v in node.items():
        if isinstance(v, dict) and "values" not in v:
            out.update(leaves(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames), rows


def assert_bad_input(res, out_dir: Path | None = None, fragments: tuple = ()) -> None:
    assert res.code == 2, (res.code, res.err)
    assert res.out == ""
    assert "Traceback" not in res.err
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1, res.err
    assert lines[0].startswith("error: "), res.err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    if out_dir is not None:
        assert not out_dir.exists(), f"{out_dir} was created by a refused run"


def run_args(small_args, out: Path, *extra) -> list[str]:
    return ["run", *small_args, "--seed", str(SEED), "--out", str(out), *extra]


# ----------------------------------------------------------------------------------------------------------------
# runs shared by the tests of this module (each takes a few seconds)
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run2(tmp_path_factory, small_args, cli):
    """Two replicates, --quiet."""
    out = tmp_path_factory.mktemp("run2") / "run"
    argv = run_args(small_args, out, "--replicates", "2", "--quiet")
    res = cli(argv)
    assert res.code == 0, res.err
    return out, res, argv


@pytest.fixture(scope="module")
def run1(tmp_path_factory, small_args, cli):
    """One replicate (default), not quiet."""
    out = tmp_path_factory.mktemp("run1") / "run"
    res = cli(run_args(small_args, out))
    assert res.code == 0, res.err
    return out, res


@pytest.fixture(scope="module")
def rerun(tmp_path_factory, small_args, cli):
    """The run of ``run1`` again into a folder already holding a (stale) metrics.json: refused, then --force."""
    out = tmp_path_factory.mktemp("rerun") / "run"
    out.mkdir()
    (out / "metrics.json").write_text("stale\n")
    refused = cli(run_args(small_args, out, "--quiet"))
    after_refusal = sorted(p.name for p in out.iterdir()), (out / "metrics.json").read_text()
    forced = cli(run_args(small_args, out, "--quiet", "--force"))
    assert forced.code == 0, forced.err
    return out, refused, after_refusal, forced


@pytest.fixture(scope="module")
def other_seed(tmp_path_factory, small_args, cli):
    out = tmp_path_factory.mktemp("seed8") / "run"
    res = cli(["run", *small_args, "--seed", str(SEED + 1), "--out", str(out), "--quiet"])
    assert res.code == 0, res.err
    return out


@pytest.fixture(scope="module")
def subprocess_run(tmp_path_factory, small_args, repo_root):
    """``python -m simulator run ...`` from an unrelated working directory."""
    cwd = tmp_path_factory.mktemp("sub")
    out = cwd / "run"
    args = run_args(small_args, out, "--quiet")
    env = dict(os.environ, PYTHONPATH=str(repo_root), PYTHONHASHSEED="4321")
    proc = subprocess.run([sys.executable, "-m", "simulator", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    return out, proc, args


# ----------------------------------------------------------------------------------------------------------------
# bad input: exit 2, one line, nothing written
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, fragments", [
    (["--set", "population.organic_users=abc"], ("population.organic_users", "'abc'", "integer")),
    (["--set", "campaign.bots.bot_share=2"], ("campaign.bots.bot_share", "≤ 1")),
    (["--set", "no_such.field=1"], ("no_such", "unknown field")),
    (["--set", "campaign.bots.nope=1"], ("campaign.bots.nope", "unknown field")),
    (["--set", "ranker.name=magic"], ("ranker.name", "'magic'")),
    (["--set", "ranker.name=no_such_pkg_xyz.mod.Ranker"], ("ranker.name", "importable")),
    (["--set", "campaign.enabled=1"], ("campaign.enabled", "true or false")),
    (["--set", "activity.post_rate=nan"], ("activity.post_rate", "nan")),
    (["--set", "days"], ("--set", "days")),
    (["--replicates", "0"], ("--replicates",)),
    (["--replicates", "-2"], ("--replicates",)),
    (["--seed", "-1"], ("--seed",)),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_exits_2_and_writes_nothing(cli, small_args, tmp_path, monkeypatch, extra, fragments):
    monkeypatch.chdir(tmp_path)  # the default run folder would be ./results/...
    out = tmp_path / "run"
    res = cli(["run", *small_args, *extra, "--out", str(out)])
    assert_bad_input(res, out, fragments)
    res = cli(["run", *small_args, *extra])  # without --out: nothing under ./results either
    assert_bad_input(res, tmp_path / "results", fragments)


def test_missing_scenario_file(cli, tmp_path):
    out = tmp_path / "run"
    missing = tmp_path / "missing.toml"
    assert_bad_input(cli(["run", str(missing), "--out", str(out)]), out, (str(missing), "romania_2024"))
    assert_bad_input(cli(["run", "no_such_scenario", "--out", str(out)]), out, ("no_such_scenario",))


def test_bad_scenario_file(cli, tmp_path):
    out = tmp_path / "run"
    broken = tmp_path / "broken.toml"
    broken.write_text("days = 6\n[ranker\n")
    assert_bad_input(cli(["run", str(broken), "--out", str(out)]), out, (str(broken),))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("days = 6\n\n[campaign.bots]\nburst_window = -5\n")
    assert_bad_input(cli(["run", str(wrong), "--out", str(out)]), out, (str(wrong), "campaign.bots.burst_window",
                                                                       "-5"))


def test_date_in_scenario_file_is_bad_input(cli, tmp_path):
    out = tmp_path / "run"
    dated = tmp_path / "dated.toml"
    dated.write_text("description = 2024-11-24\n")
    assert_bad_input(cli(["run", str(dated), "--out", str(out)]), out, ("description",))


def test_out_is_a_file(cli, small_args, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep")
    res = cli(["run", *small_args, "--out", str(target)])
    assert_bad_input(res, None, (str(target),))
    assert target.read_text() == "keep"


@pytest.mark.parametrize("argv", [["run", "--replicates", "abc"], ["run", "--bogus"], [], ["frobnicate"]])
def test_argparse_errors_exit_2_without_traceback(cli, argv):
    res = cli(argv)
    assert res.code == 2
    assert res.out == ""
    assert "Traceback" not in res.err
    assert res.err.strip().splitlines()[-1].startswith("error: ")


def test_subprocess_bad_input(repo_root, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", "--set", "population.organic_users=abc",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "population.organic_users" in lines[0]
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------------------
# an existing run folder
# ----------------------------------------------------------------------------------------------------------------


def test_existing_run_folder_is_refused_without_force(rerun):
    out, refused, (names_after_refusal, metrics_after_refusal), _ = rerun
    assert refused.code == 2
    assert "Traceback" not in refused.err
    err_lines = refused.err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("error: ") and "--force" in err_lines[0]
    assert names_after_refusal == ["metrics.json"]
    assert metrics_after_refusal == "stale\n"


def test_force_overwrites_an_existing_run(rerun):
    out, _, _, forced = rerun
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert (out / "manifest.json").exists()


def test_refused_run_leaves_an_existing_folder_alone(cli, small_args, tmp_path):
    """A folder without metrics.json is not a run; a run refused for bad input leaves its files alone."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    res = cli(["run", *small_args, "--out", str(out), "--replicates", "0"])
    assert res.code == 2 and "--replicates" in res.err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# ----------------------------------------------------------------------------------------------------------------
# the run folder
# ----------------------------------------------------------------------------------------------------------------


def test_run_writes_expected_files(run2):
    out, _, _ = run2
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json", "metrics.json", "timeseries.csv"} <= names
    pngs = sorted(out.glob("*.png"))
    assert pngs, "no plots written"
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC, png
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names  # no temp files left


def test_quiet_prints_nothing_on_stdout(run2, rerun, other_seed):
    _, res, _ = run2
    assert res.out == ""
    assert rerun[3].out == ""


def test_not_quiet_prints_a_summary(run1):
    out, res = run1
    assert res.out.strip()
    assert str(out) in res.out


def test_manifest(run2, small_overrides):
    out, _, _ = run2
    manifest = json.loads((out / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(manifest)
    expected = load_scenario("romania_2024", small_overrides)
    assert manifest["config"] == scenario_to_dict(expected)
    assert manifest["config_hash"] == config_hash(expected)
    assert manifest["seed"] == SEED
    assert manifest["spawn_keys"] == [[0], [1]]
    assert manifest["package"]["name"] == "simulator"
    assert manifest["package"]["version"] == simulator.__version__
    assert manifest["dependencies"]["numpy"] and manifest["dependencies"]["python"]
    assert manifest["git_commit"] is None or isinstance(manifest["git_commit"], str)
    assert datetime.fromisoformat(manifest["started_at"]).tzinfo is not None
    assert isinstance(manifest["wall_time_seconds"], (int, float)) and manifest["wall_time_seconds"] >= 0
    assert isinstance(manifest["peak_memory_mb"], (int, float)) and manifest["peak_memory_mb"] > 0
    assert isinstance(manifest["command"], list) and all(isinstance(a, str) for a in manifest["command"])
    machine = manifest["platform"]
    assert machine["cpus"] >= 1 and 1 <= machine["kernel_threads"] <= 256
    simd = machine["numpy_simd"]   # what NumPy dispatches on this CPU: results compare bit for bit on the same
    assert isinstance(simd["baseline"], list) and isinstance(simd["enabled"], list)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config_hash"] == manifest["config_hash"]


def test_manifest_command_of_in_process_run(run2):
    out, _, argv = run2
    command = json.loads((out / "manifest.json").read_text())["command"]
    assert command[-len(argv):] == argv


def test_metrics_schema_two_replicates(run2):
    out, _, _ = run2
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    found = leaves(doc["metrics"])
    assert set(found) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        m = metric_leaf(doc["metrics"], name)  # dotted names are nested objects
        assert set(m) == SUMMARY_KEYS, name
        assert len(m["values"]) == 2, name
        clean = [v for v in m["values"] if v is not None]
        assert m["n"] == len(clean), name
        if m["n"] == 2:
            assert m["mean"] == pytest.approx(sum(clean) / 2), name
            assert m["ci_low"] is not None and m["ci_high"] is not None, name
            assert m["ci_low"] <= m["mean"] <= m["ci_high"], name
        else:
            assert m["ci_low"] is None and m["ci_high"] is None, name
    for name in ("impressions", "reach", "reach_share", "share_of_voice", "inflation_factor"):
        assert metric_leaf(doc["metrics"], name)["n"] == 2, name


def test_metrics_schema_one_replicate(run1):
    out, _ = run1
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert set(leaves(doc["metrics"])) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        m = metric_leaf(doc["metrics"], name)
        assert set(m) == SUMMARY_KEYS, name
        assert len(m["values"]) == 1, name
        assert m["ci_low"] is None and m["ci_high"] is None, name
        assert m["n"] == (0 if m["values"][0] is None else 1), name
        assert m["mean"] == m["values"][0], name


def test_timeseries(run2, small_overrides):
    out, _, _ = run2
    s = load_scenario("romania_2024", small_overrides)
    header, rows = read_csv(out / "timeseries.csv")
    names = list(s.candidates.names)
    expected = ["replicate", "day"] + [f"target_impressions_{w}" for w in WORLDS] \
        + [f"cumulative_reach_{w}" for w in WORLDS] + [f"share_of_voice_{c}" for c in names] \
        + [f"vote_share_{c}" for c in names] + [f"candidate_impressions_{c}" for c in names]
    assert header == expected
    assert len(rows) == 2 * s.days
    for r in (0, 1):
        mine = [row for row in rows if int(row["replicate"]) == r]
        assert [int(row["day"]) for row in mine] == list(range(s.days))
        for w in WORLDS:
            reach = [int(row[f"cumulative_reach_{w}"]) for row in mine]
            assert all(b >= a for a, b in zip(reach, reach[1:])), (w, reach)
            assert all(int(row[f"target_impressions_{w}"]) >= 0 for row in mine)
        for row in mine:
            sov = [row[f"share_of_voice_{c}"] for c in names]
            if all(sov):
                assert sum(map(float, sov)) == pytest.approx(1.0)
            votes = [float(row[f"vote_share_{c}"]) for c in names]
            assert all(0.0 <= v <= 1.0 for v in votes) and sum(votes) <= 1.0 + 1e-9
            imps = [int(row[f"candidate_impressions_{c}"]) for c in names]
            if sum(imps):
                assert [float(v) for v in sov] == pytest.approx([i / sum(imps) for i in imps])


def test_timeseries_agrees_with_metrics(run2):
    """Spec §5: totals are the daily series summed (impressions) or at their last day (cumulative reach)."""
    out, _, _ = run2
    _, rows = read_csv(out / "timeseries.csv")
    m = json.loads((out / "metrics.json").read_text())["metrics"]
    for r in (0, 1):
        mine = [row for row in rows if int(row["replicate"]) == r]
        last = mine[-1]
        reach = {w: int(last[f"cumulative_reach_{w}"]) for w in WORLDS}
        assert m["impressions"]["values"][r] == sum(int(row["target_impressions_campaign"]) for row in mine)
        assert m["reach"]["values"][r] == reach["campaign"]
        if reach["inert"]:
            assert m["inflation_factor"]["values"][r] == pytest.approx(reach["campaign"] / reach["inert"])
        if reach["chronological"]:
            assert m["amplification_ratio"]["values"][r] == pytest.approx(reach["campaign"] / reach["chronological"])
            assert m["amplification"]["values"][r] == pytest.approx(reach["campaign"] / reach["chronological"] - 1)
        # Without mitigation stages the unmitigated worlds are the same worlds (run once).
        assert reach["campaign_unmitigated"] == reach["campaign"] and reach["inert_unmitigated"] == reach["inert"]
        assert m["mitigation_effect"]["values"][r] == 0.0
        assert m["precision"]["values"][r] is None


# ----------------------------------------------------------------------------------------------------------------
# determinism
# ----------------------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(run1, rerun):
    a, _ = run1
    b = rerun[0]
    for name in ("metrics.json", "timeseries.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_subprocess_run_matches_in_process_run(run1, subprocess_run):
    """``python -m simulator`` (another process, another hash seed) gives byte-identical results."""
    a, _ = run1
    b, proc, args = subprocess_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    for name in ("metrics.json", "timeseries.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    command = json.loads((b / "manifest.json").read_text())["command"]
    assert command[-len(args):] == args


def test_different_seed_gives_different_metrics(run1, other_seed):
    a = json.loads((run1[0] / "metrics.json").read_text())
    b = json.loads((other_seed / "metrics.json").read_text())
    assert a["config_hash"] == b["config_hash"]
    assert a["seed"] != b["seed"]
    assert a["metrics"] != b["metrics"]
    assert (run1[0] / "timeseries.csv").read_bytes() != (other_seed / "timeseries.csv").read_bytes()


def test_replicate_0_does_not_depend_on_the_number_of_replicates(run1, run2):
    one = json.loads((run1[0] / "metrics.json").read_text())["metrics"]
    two = json.loads((run2[0] / "metrics.json").read_text())["metrics"]
    for name in METRIC_NAMES:
        assert metric_leaf(one, name)["values"][0] == metric_leaf(two, name)["values"][0], name
    _, rows1 = read_csv(run1[0] / "timeseries.csv")
    _, rows2 = read_csv(run2[0] / "timeseries.csv")
    assert rows1 == [row for row in rows2 if row["replicate"] == "0"]


# ----------------------------------------------------------------------------------------------------------------
# the field reference
# ----------------------------------------------------------------------------------------------------------------


def test_reference_lists_every_field(cli):
    res = cli(["reference"])
    assert res.code == 0, res.err
    paths = leaf_paths()
    assert "campaign.bots.burst_window" in paths
    missing = [p for p in paths if f"`{p}`" not in res.out]
    assert missing == []


def test_reference_out_writes_the_same_text(cli, tmp_path):
    from simulator.reference import scenario_reference_markdown

    target = tmp_path / "sub" / "ref.md"
    res = cli(["reference", "--out", str(target)])
    assert res.code == 0 and res.out == ""
    assert target.read_text(encoding="utf-8") == scenario_reference_markdown() == cli(["reference"]).out


def test_committed_reference_is_current(repo_root):
    from simulator.reference import scenario_reference_markdown

    committed = repo_root / "docs" / "scenario-reference.md"
    assert committed.exists(), "run: python -m simulator reference --out docs/scenario-reference.md"
    assert committed.read_text(encoding="utf-8") == scenario_reference_markdown(), \
        "docs/scenario-reference.md is stale: python -m simulator reference --out docs/scenario-reference.md"


# ----------------------------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------------------------


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "file.txt"
    results.atomic_write_text(target, "first ✓\n")
    assert target.read_text(encoding="utf-8") == "first ✓\n"
    results.atomic_write_text(target, "second\n")
    assert target.read_text(encoding="utf-8") == "second\n"
    results.atomic_write_bytes(target, b"\x00\x01binary")
    assert target.read_bytes() == b"\x00\x01binary"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


@pytest.mark.parametrize("where, exc", [("replace", OSError("disk full")), ("fsync", OSError("io error")),
                                        ("replace", KeyboardInterrupt())])
def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch, where, exc):
    target = tmp_path / "metrics.json"
    results.atomic_write_text(target, "old\n")

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(results.os, where, boom)
    with pytest.raises(type(exc)):
        results.atomic_write_text(target, "new content that must not appear\n" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_atomic_write_failure_on_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "new.csv"

    def boom(*args, **kwargs):
        raise OSError("nope")

    monkeypatch.setattr(results.os, "replace", boom)
    with pytest.raises(OSError):
        results.atomic_write_text(target, "x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atomic = tmp_path / "atomic.txt"
        results.atomic_write_text(atomic, "x")
    finally:
        os.umask(old)
    assert (atomic.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777) == 0o644
