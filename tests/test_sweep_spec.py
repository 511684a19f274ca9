"""Sweep files: the designs they describe, the syntax of factors (lists, ranges, named values, linked groups,
mitigation variants), the sweep's identity, and every kind of bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest

from simulator.sweep.designs import latin_hypercube_unit
from simulator.sweep.engines import make_engine
from simulator.sweep.spec import SweepError, load_sweep, parse_sweep, sweep_hash

ROOT = Path(__file__).resolve().parent.parent
BASE = f'scenario = "{ROOT}/experiments/romania_2024.toml"\n'


def sweep(tmp_path: Path, body: str, name: str = "s.toml", base: str = BASE) -> Path:
    p = tmp_path / name
    p.write_text(base + body, encoding="utf-8")
    return p


def test_smallest_sweep_of_the_issue(tmp_path):
    # The issue's smallest sweep, with the scenario relative to the sweep file.
    (tmp_path / "romania_2024.toml").write_text((ROOT / "experiments/romania_2024.toml").read_text())
    p = sweep(tmp_path, 'design = "grid"\nreplicates = 2\nseed = 1\n[parameters]\n'
                        '"ranker.name" = ["chronological", "for_you"]\n"population.organic_users" = [2000, 4000]\n',
              base='scenario = "romania_2024.toml"   # relative to the sweep file\n')
    s = load_sweep(p)
    assert s.scenario_path == tmp_path / "romania_2024.toml"
    assert (s.design, s.replicates, s.seed, s.units) == ("grid", 2, 1, 8)
    assert s.parameter_columns == ["ranker.name", "population.organic_users"]
    got = [(sc.ranker.name, sc.population.organic_users) for sc in s.scenarios]
    assert got == [("chronological", 2000), ("chronological", 4000), ("for_you", 2000), ("for_you", 4000)]
    assert [dict(p.cells)["population.organic_users"] for p in s.points] == ["2000", "4000", "2000", "4000"]
    assert s.metrics == ("inflation_factor", "reach_share", "amplification", "share_of_voice")


def test_seed_defaults_to_the_scenario_seed_and_fixed_applies_to_every_point(tmp_path):
    s = load_sweep(sweep(tmp_path, '[parameters]\n"ranker.name" = ["random"]\n[fixed]\ndays = 3\n'
                                   '[fixed.population]\norganic_users = 500\n'))
    assert s.seed == 2024 and s.replicates == 1
    assert s.scenarios[0].days == 3 and s.scenarios[0].population.organic_users == 500
    assert s.base.days == 3


def test_grid_range_steps_and_integer_rounding(tmp_path):
    s = load_sweep(sweep(tmp_path, '[parameters]\n"campaign.bots.bot_share" = {min = 0.0, max = 0.02, steps = 5}\n'
                                   '"population.organic_users" = {min = 300, max = 1000, steps = 4}\n'))
    shares = sorted({sc.campaign.bots.bot_share for sc in s.scenarios})
    assert shares == [0.0, 0.005, 0.01, 0.015, 0.02]
    users = sorted({sc.population.organic_users for sc in s.scenarios})
    assert users == [300, 533, 767, 1000] and all(isinstance(u, int) for u in users)
    assert len(s.points) == 20


def test_latin_hypercube_is_stratified_seeded_and_rounds_integers(tmp_path):
    body = ('design = "latin_hypercube"\nsamples = 12\nseed = 5\n[parameters]\n'
            '"campaign.bots.bot_share" = {min = 0.0, max = 0.012}\n'
            '"population.organic_users" = {min = 300, max = 1500}\n"ranker.name" = ["for_you", "random", "engagement"]\n')
    a, b = load_sweep(sweep(tmp_path, body)), load_sweep(sweep(tmp_path, body, "b.toml"))
    assert [p.cells for p in a.points] == [p.cells for p in b.points]
    shares = np.array([sc.campaign.bots.bot_share for sc in a.scenarios])
    assert sorted((shares / 0.001).astype(int)) == list(range(12))          # one point in each twelfth
    assert all(isinstance(sc.population.organic_users, int) for sc in a.scenarios)
    counts = {r: sum(sc.ranker.name == r for sc in a.scenarios) for r in ("for_you", "random", "engagement")}
    assert counts == {"for_you": 4, "random": 4, "engagement": 4}
    c = load_sweep(sweep(tmp_path, body.replace("seed = 5", "seed = 6"), "c.toml"))
    assert [p.cells for p in c.points] != [p.cells for p in a.points]
    u = latin_hypercube_unit(50, 3, np.random.default_rng(0))
    for j in range(3):
        assert sorted((u[:, j] * 50).astype(int)) == list(range(50))


def test_sobol_and_morris_point_counts(tmp_path):
    ranges = ('[parameters]\n"campaign.bots.bot_share" = {min = 0.0, max = 0.02}\n'
              '"campaign.bots.burst_window" = {min = 5.0, max = 120.0}\n"population.organic_users" = {min = 300, max = 900}\n')
    s = load_sweep(sweep(tmp_path, 'design = "sobol"\nsamples = 4\n' + ranges))
    assert len(s.points) == 4 * (3 + 2)
    assert all(300 <= sc.population.organic_users <= 900 for sc in s.scenarios)
    assert all(isinstance(sc.population.organic_users, int) for sc in s.scenarios)
    assert len(s.points[0].x) == 3 and s.points[0].x[2] != round(s.points[0].x[2])   # analysis keeps the raw row
    m = load_sweep(sweep(tmp_path, 'design = "morris"\nsamples = 3\nlevels = 4\n' + ranges, "m.toml"))
    assert len(m.points) == 3 * (3 + 1)


def test_mitigation_variants_unnamed_and_named(tmp_path):
    s = load_sweep(sweep(tmp_path, '[parameters]\n"mitigations" = [[], [{name = "dormancy_dampening"}], '
                                   '[{name = "coordination_detection"}, {name = "takedown", start_day = 1}]]\n'))
    assert [dict(p.cells)["mitigations"] for p in s.points] == [
        "none", "dormancy_dampening", "coordination_detection+takedown"]
    assert [len(sc.mitigations) for sc in s.scenarios] == [0, 1, 2]
    assert s.scenarios[2].mitigations[1].start_day == 1.0
    named = load_sweep(sweep(tmp_path, '[parameters.mitigations.values]\nplatform_as_was = []\n'
                                       'dampening = [{name = "dormancy_dampening", weight = 0.2}]\n', "n.toml"))
    assert [dict(p.cells)["mitigations"] for p in named.points] == ["platform_as_was", "dampening"]
    assert named.scenarios[1].mitigations[0].weight == 0.2


def test_linked_group_sets_its_fields_together(tmp_path):
    s = load_sweep(sweep(tmp_path, '[parameters]\n"ranker.name" = ["for_you", "chronological"]\n'
                                   '[parameters.spending]\nlabels = ["influencers", "bots"]\n'
                                   'zip = {"campaign.influencers.budget" = [381000.0, 0.0], '
                                   '"campaign.bots.bot_share" = [0.003, 0.0242]}\n'))
    assert s.parameter_columns == ["ranker.name", "spending", "campaign.influencers.budget",
                                   "campaign.bots.bot_share"]
    pairs = [(sc.campaign.influencers.budget, sc.campaign.bots.bot_share) for sc in s.scenarios]
    assert pairs == [(381000.0, 0.003), (0.0, 0.0242)] * 2
    assert dict(s.points[1].cells) == {"ranker.name": "for_you", "spending": "bots",
                                       "campaign.influencers.budget": "0.0", "campaign.bots.bot_share": "0.0242"}


def test_sweep_hash_ignores_layout_and_follows_content_and_overrides(tmp_path):
    body = '[parameters]\n"ranker.name" = ["random", "for_you"]\n'
    a = parse_sweep(tmp_path / "a.toml", BASE + body)
    b = parse_sweep(tmp_path / "b.toml", "# a comment\n" + BASE + body.replace(", ", ",   "))
    assert a.hash == b.hash
    assert parse_sweep(tmp_path / "a.toml", BASE + body.replace("random", "engagement")).hash != a.hash
    assert sweep_hash(a.raw, ["days=4"]) != a.hash
    assert sweep_hash(a.raw, ["days = 4"]) == sweep_hash(a.raw, ["days=4"])


BAD = [
    ('replicate = 2\n[parameters]\n"ranker.name" = ["random"]\n', ("replicate: unknown key",)),
    ('design = "full"\n[parameters]\n"ranker.name" = ["random"]\n', ("design = 'full'", "grid")),
    ('replicates = 0\n[parameters]\n"ranker.name" = ["random"]\n', ("replicates = 0", "integer from 1")),
    ('replicates = 2.5\n[parameters]\n"ranker.name" = ["random"]\n', ("replicates = 2.5",)),
    ('[parameters]\n"ranker.name" = []\n', ('parameters."ranker.name"', "non-empty list")),
    ('[parameters]\n', ("parameters", "at least one factor")),
    ('[parameters]\n"campaign.bots.bot_share" = {min = 0.02, max = 0.01, steps = 3}\n', ("min = 0.02", "< max")),
    ('[parameters]\n"population.nope" = [1, 2]\n', ("'population.nope' is not a scenario field",)),
    ('[parameters]\n"population" = [1, 2]\n', ("is a section",)),
    ('[parameters]\n"ranker.name" = {min = 0, max = 1, steps = 2}\n', ("ranker.name is not a number field",)),
    ('[parameters]\n"campaign.bots.bot_share" = {min = 0.0, max = 0.01}\n', ("needs steps",)),
    ('design = "sobol"\nsamples = 4\n[parameters]\n"ranker.name" = ["random", "for_you"]\n',
     ("needs every parameter as a range",)),
    ('design = "sobol"\nsamples = 6\n[parameters]\n"days" = {min = 3, max = 5}\n', ("samples = 6", "power of 2")),
    ('design = "latin_hypercube"\n[parameters]\n"days" = {min = 3, max = 5}\n', ("samples", "required")),
    ('design = "morris"\nsamples = 2\nlevels = 3\n[parameters]\n"days" = {min = 3, max = 5}\n', ("levels = 3",)),
    ('metrics = ["inflation"]\n[parameters]\n"days" = [3]\n', ("metrics[0] = 'inflation'", "inflation_factor")),
    ('[parameters]\n"days" = [3, 3]\n', ("distinct values",)),
    ('[parameters]\n"days" = [3, 4]\n[fixed]\ndays = 5\n', ('fixed."days"', "also varied")),
    ('[parameters.pair]\nzip = {"days" = [3, 4], "seed" = [1]}\n', ("same length",)),
    ('[parameters.days]\nzip = {"seed" = [1]}\n', ("new column name",)),
    ('[parameters]\n"campaign.bots.bot_share" = [0.01, 2.0]\n',
     ("point 1", "campaign.bots.bot_share = 2.0", "expected a number")),
    ('[parameters]\n"ranker.name" = ["for_you", "no_such_ranker"]\n', ("point 1", "ranker.name = 'no_such_ranker'")),
    ('[parameters]\n"mitigations" = [[{name = "no_stage"}]]\n', ("mitigations[0].name = 'no_stage'",)),
    ('[parameters]\n"days" = [3\n', ("not valid TOML",)),
]


@pytest.mark.parametrize("body,fragments", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_sweep_files_name_the_key_and_what_is_allowed(tmp_path, body, fragments):
    p = sweep(tmp_path, body)
    with pytest.raises(SweepError) as info:
        load_sweep(p)
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_bad_scenario_and_missing_file(tmp_path):
    with pytest.raises(SweepError, match="scenario = 'nope.toml'"):
        load_sweep(sweep(tmp_path, '[parameters]\n"days" = [3]\n', base='scenario = "nope.toml"\n'))
    with pytest.raises(SweepError, match="cannot read"):
        load_sweep(tmp_path / "missing.toml")


def test_set_may_not_change_a_varied_field(tmp_path):
    p = sweep(tmp_path, '[parameters]\n"days" = [3, 4]\n')
    with pytest.raises(SweepError, match="--set days=5: days is varied by the sweep"):
        load_sweep(p, ["days=5"])
    assert load_sweep(p, ["population.organic_users=400"]).scenarios[0].population.organic_users == 400


def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, cli):
    out = tmp_path / "out"
    cases = [
        [sweep(tmp_path, '[parameters]\n"campaign.bots.bot_share" = [2.0]\n')],
        [sweep(tmp_path, '[parameters]\n"days" = [3]\n', "ok.toml"), "--workers", "0"],
        [sweep(tmp_path, '[parameters]\n"days" = [3]\n', "ok2.toml"), "--address", "localhost:1"],
        [sweep(tmp_path, '[parameters]\n"days" = [3]\n', "ok3.toml"), "--set", "population.organic_users=abc"],
        [tmp_path / "missing.toml"],
    ]
    for args in cases:
        res = cli(["sweep", *args, "--out", out])
        assert res.code == 2, (args, res.err)
        lines = [ln for ln in res.err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.err, res.err
        assert not out.exists()
    res = cli(["report", tmp_path])
    assert res.code == 2 and res.err.startswith("error: ") and len(res.err.strip().splitlines()) == 1


def test_dask_engine_missing_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("dask"):
            raise ImportError("No module named 'dask'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(SweepError, match=r'pip install "simulator\[dask\]"'):
        make_engine("dask", 2, None)


def test_designs_too_large_are_refused_before_they_are_built(tmp_path):
    levels = ", ".join(str(3 + i) for i in range(40))
    p = sweep(tmp_path, f'[parameters]\n"days" = [{levels}]\n"seed" = [{levels}]\n"step_hours" = [1, 2, 3, 4, 6, 8, 12, 24]\n'
                        f'"population.topics" = [{levels}]\n')
    with pytest.raises(SweepError, match="the design has 512,000 points: at most 100,000"):
        load_sweep(p)
