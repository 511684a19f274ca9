"""Scenario configuration: loading, frozen dataclasses, validation errors, ``--set`` overrides and the config hash."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from simulator.config import (
    Scenario,
    ScenarioError,
    apply_overrides,
    bundled_scenarios,
    config_hash,
    load_scenario,
    parse_override,
    resolve_scenario_path,
    scenario_from_dict,
    scenario_to_dict,
)

# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------


def leaf_fields(cls: type = Scenario, prefix: str = "") -> list[tuple[str, typing.Any, typing.Any]]:
    """(dotted path, type, default) of every non-section field, found by walking the dataclasses directly."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out += leaf_fields(t, prefix + f.name + ".")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append((prefix + f.name, t, default))
    return out


def toml_literal(v: typing.Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_literal(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def get_path(obj: typing.Any, path: str) -> typing.Any:
    for p in path.split("."):
        obj = getattr(obj, p)
    return obj


def diff_paths(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += diff_paths(a[k], b[k], prefix + k + ".")
        elif a.get(k, object()) != b.get(k, object()):
            out.append(prefix + k)
    return out


@pytest.fixture(scope="module")
def bundled_path(repo_root) -> Path:
    return repo_root / "experiments" / "romania_2024.toml"


# ----------------------------------------------------------------------------------------------------------------
# the bundled scenario
# ----------------------------------------------------------------------------------------------------------------


def test_bundled_scenario_is_listed(bundled_path):
    assert "romania_2024" in bundled_scenarios()
    assert resolve_scenario_path("romania_2024").resolve() == bundled_path.resolve()
    assert resolve_scenario_path("romania_2024.toml").resolve() == bundled_path.resolve()


def test_bundled_scenario_loads_by_name_and_by_path(bundled_path):
    by_name = load_scenario("romania_2024")
    assert isinstance(by_name, Scenario)
    assert by_name == load_scenario(bundled_path)
    assert by_name == load_scenario(str(bundled_path))
    assert by_name == load_scenario()  # the default scenario
    assert by_name.name == "romania_2024"


def test_bundled_scenario_loads_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_scenario("romania_2024") == load_scenario("romania_2024.toml")


def test_scenario_is_frozen():
    s = load_scenario("romania_2024")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.days = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.population.organic_users = 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.campaign.bots.burst_window = 1.0
    # lists come back as tuples, so they cannot be changed in place either
    assert isinstance(s.candidates.names, tuple)
    assert isinstance(s.candidates.baseline_support, tuple)


def test_every_section_is_a_frozen_dataclass():
    def walk(obj, path="scenario"):
        assert dataclasses.is_dataclass(obj), path
        assert type(obj).__dataclass_params__.frozen, f"{path} is not frozen"
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                walk(v, f"{path}.{f.name}")

    walk(load_scenario("romania_2024"))


def test_bundled_file_equals_dataclass_defaults(bundled_path):
    assert scenario_to_dict(load_scenario(bundled_path)) == scenario_to_dict(Scenario())


def test_bundled_file_equals_dataclass_defaults_except_description(bundled_path):
    """Every model parameter in the bundled file is the dataclass default (the free-text description aside)."""
    differing = diff_paths(scenario_to_dict(load_scenario(bundled_path)), scenario_to_dict(Scenario()))
    assert [p for p in differing if p != "description"] == []


def test_bundled_file_lists_every_field(bundled_path):
    """The bundled scenario spells out every field (so the file documents the defaults it runs with)."""
    import tomllib

    raw = tomllib.loads(bundled_path.read_text(encoding="utf-8"))

    def present(path):
        node = raw
        for p in path.split("."):
            if not isinstance(node, dict) or p not in node:
                return False
            node = node[p]
        return True

    # ranker.options is for user rankers only; the default scenario runs no mitigation stage, and an empty
    # `mitigations = []` would stop users from appending [[mitigations]] tables to a copy of the file.
    missing = [p for p, _, _ in leaf_fields() if not present(p) and p not in ("ranker.options", "mitigations")]
    assert missing == []


def test_dict_round_trip():
    s = load_scenario("romania_2024", ["days=5", "ranker.name=engagement"])
    d = scenario_to_dict(s)
    json.dumps(d)  # plain, JSON-able
    assert scenario_from_dict(d) == s
    assert scenario_from_dict(scenario_to_dict(Scenario())) == Scenario()


def test_int_field_given_integral_float_is_stored_as_int():
    s = load_scenario("romania_2024", ["population.organic_users=2000.0"])
    assert s.population.organic_users == 2000 and type(s.population.organic_users) is int


def test_float_field_given_int_is_stored_as_float():
    s = load_scenario("romania_2024", ["campaign.bots.burst_window=45"])
    assert s.campaign.bots.burst_window == 45.0 and type(s.campaign.bots.burst_window) is float


def test_user_ranker_by_dotted_path_is_accepted():
    path = "simulator.ranking.chronological.ChronologicalRanker"
    s = load_scenario("romania_2024", [f"ranker.name={path}"])
    assert s.ranker.name == path


# ----------------------------------------------------------------------------------------------------------------
# bad input: one ScenarioError, one line, naming file, field path, value and what is allowed
# ----------------------------------------------------------------------------------------------------------------

# (override "path=TOML literal", fragments that must all appear in the message)
BAD = [
    pytest.param('population.organic_users="abc"', ["population.organic_users = 'abc'", "an integer"], id="wrong-type"),
    pytest.param("campaign.bots.bot_share=2", ["campaign.bots.bot_share = 2", "≤ 1"], id="above-range"),
    pytest.param("population.organic_users=100", ["population.organic_users = 100", "≥ 200"], id="below-range"),
    pytest.param("seed=-1", ["seed = -1", "≥ 0"], id="negative-seed"),
    pytest.param("no_such.field=1", ["no_such", "unknown field", "population", "campaign"], id="unknown-top"),
    pytest.param("colour=1", ["colour", "unknown field", "days"], id="unknown-top-scalar"),
    pytest.param("campaign.bots.nope=1", ["campaign.bots.nope", "unknown field", "bot_share", "burst_window"],
                 id="unknown-nested"),
    pytest.param("population.organic_users={a=1}", ["population.organic_users = ", '"a"', "an integer"],
                 id="table-for-number"),
    pytest.param("campaign.bots=3", ["campaign.bots = 3", "a table"], id="number-for-table"),
    pytest.param("population=2", ["population = 2", "a table"], id="number-for-top-table"),
    pytest.param("candidates.follower_share=[0.1, 0.2]", ["candidates.follower_share = [0.1, 0.2]", "5 values"],
                 id="follower-share-length"),
    pytest.param("candidates.baseline_support=[0.05, 0.2]", ["candidates.baseline_support = [0.05, 0.2]",
                                                             "5 values"], id="baseline-length"),
    pytest.param('candidates.names=["target", "b", "c"]', ["candidates.", "3 values"], id="names-length"),
    pytest.param('candidates.names=["target"]', ["candidates.names", "at least 2"], id="one-name"),
    pytest.param('candidates.names=["target", "target", "b", "c", "d"]', ["candidates.names", "distinct"],
                 id="duplicate-names"),
    pytest.param("candidates.names=[1, 2, 3, 4, 5]", ["candidates.names[0] = 1", "string"], id="name-not-string"),
    pytest.param('candidates.target="nobody"', ["candidates.target = 'nobody'", "one of", "'front_runner_a'"],
                 id="target-not-in-names"),
    pytest.param("candidates.baseline_support=[0.4, 0.3, 0.2, 0.1, 0.1]",
                 ["candidates.baseline_support = [0.4, 0.3, 0.2, 0.1, 0.1]", "less than 1"], id="support-over-1"),
    pytest.param("candidates.baseline_support=[0.5, 0.25, 0.125, 0.0625, 0.0625]",
                 ["candidates.baseline_support = [0.5, 0.25, 0.125, 0.0625, 0.0625]", "less than 1"],
                 id="support-exactly-1"),
    pytest.param("candidates.baseline_support=[0.05, 0.2, 0.2, 0.1, true]",
                 ["candidates.baseline_support[4] = true", "number"], id="support-bool-item"),
    pytest.param("candidates.baseline_support=[0.05, 0.2, 0.2, 0.1, 1.5]",
                 ["candidates.baseline_support[4] = 1.5", "< 1"], id="support-item-range"),
    pytest.param('ranker.name="magic"', ["ranker.name = 'magic'", "chronological", "for_you", "dotted path"],
                 id="ranker-unknown"),
    pytest.param('ranker.name="no_such_pkg_xyz.rankers.MyRanker"',
                 ["ranker.name = 'no_such_pkg_xyz.rankers.MyRanker'", "importable", "no_such_pkg_xyz"],
                 id="ranker-module-missing"),
    pytest.param('ranker.name="simulator.ranking.NoSuchRanker"',
                 ["ranker.name = 'simulator.ranking.NoSuchRanker'", "importable", "NoSuchRanker"],
                 id="ranker-class-missing"),
    pytest.param('ranker.name="collections.OrderedDict"', ["ranker.name = 'collections.OrderedDict'", "rank"],
                 id="ranker-without-rank"),
    pytest.param("ranker.options={a=1}", ["ranker.options", "empty table"], id="options-for-builtin"),
    pytest.param("ranker.options=3", ["ranker.options = 3", "a table"], id="options-not-table"),
    pytest.param("campaign.enabled=1", ["campaign.enabled = 1", "true or false"], id="number-for-bool"),
    pytest.param('opinion.enabled="yes"', ["opinion.enabled = 'yes'", "true or false"], id="string-for-bool"),
    pytest.param("days=true", ["days = true", "an integer"], id="bool-for-int"),
    pytest.param("campaign.bots.bot_share=false", ["campaign.bots.bot_share = false", "a number"],
                 id="bool-for-float"),
    pytest.param("population.organic_users=2500.5", ["population.organic_users = 2500.5", "an integer"],
                 id="fractional-int"),
    pytest.param("feed.feed_size=2.5", ["feed.feed_size = 2.5", "an integer"], id="fractional-int-2"),
    pytest.param("activity.post_rate=nan", ["activity.post_rate = nan", "a number"], id="nan"),
    pytest.param("activity.post_rate=inf", ["activity.post_rate = inf", "a number"], id="inf"),
    pytest.param("activity.post_rate=-inf", ["activity.post_rate = -inf", "a number"], id="minus-inf"),
    pytest.param("population.organic_users=nan", ["population.organic_users = nan", "an integer"], id="int-nan"),
    pytest.param("population.organic_users=inf", ["population.organic_users = inf", "an integer"], id="int-inf"),
    pytest.param("step_hours=5", ["step_hours = 5", "one of"], id="not-a-choice"),
    pytest.param("name=3", ["name = 3", "a string"], id="number-for-string"),
    pytest.param("campaign.influencers.largest_followers=9e6",
                 ["campaign.influencers.largest_followers", "combined_followers"], id="largest-over-combined"),
    pytest.param("population.organic_users=9000001", ["population.real_users = 9000000",
                                                      "population.organic_users (9000001)"], id="real-below-organic"),
]


def _check_message(exc: ScenarioError, source: str, fragments: list[str]) -> None:
    msg = str(exc)
    assert "\n" not in msg and "\r" not in msg, msg
    assert source in msg, msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


@pytest.mark.parametrize("override, fragments", BAD)
def test_bad_value_in_file(tmp_path, override, fragments):
    path, _, literal = override.partition("=")
    f = tmp_path / "bad.toml"
    f.write_text(f"{path} = {literal}\n", encoding="utf-8")  # a dotted key: valid TOML for every case
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    _check_message(info.value, str(f), fragments)


@pytest.mark.parametrize("override, fragments", BAD)
def test_bad_value_in_override(bundled_path, override, fragments):
    with pytest.raises(ScenarioError) as info:
        load_scenario("romania_2024", [override])
    _check_message(info.value, str(bundled_path.resolve()), fragments)


@pytest.mark.parametrize("name, text, fragments", [
    ("tables.toml", "days = 6\n\n[campaign.bots]\nbot_share = 0.01\nnope = 2\n", ["campaign.bots.nope", "unknown field"]),
    ("broken.toml", "days = 6\n[ranker\nname = 'x'\n", ["TOML"]),
    ("dated.toml", "description = 2024-11-24\n", ["description", "a string"]),   # a TOML date is no string
], ids=["unknown-key-in-table", "invalid-toml", "toml-date"])
def test_bad_scenario_file(tmp_path, name, text, fragments):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    _check_message(info.value, str(f), fragments)


def test_missing_scenario_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(missing)
    _check_message(info.value, str(missing), ["no such scenario", "romania_2024"])
    with pytest.raises(ScenarioError) as info:
        load_scenario("no_such_scenario_name")
    _check_message(info.value, "no_such_scenario_name", ["romania_2024"])


def test_scenario_from_dict_names_its_source():
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"days": 0}, source="my-source")
    _check_message(info.value, "my-source", ["days = 0", "≥ 1"])


def test_every_field_rejects_a_wrong_type_via_set():
    """--set reaches every field and runs the same validation: a wrong type names the field."""
    for path, t, default in leaf_fields():
        if t is bool:
            bad = '"maybe"'
        elif t in (int, float):
            bad = '"lots"'
        elif t is str:
            bad = "[1]"
        else:  # lists and tables
            bad = "3"
        with pytest.raises(ScenarioError) as info:
            load_scenario("romania_2024", [f"{path}={bad}"])
        msg = str(info.value)
        assert "\n" not in msg and path in msg and "expected" in msg, (path, msg)


def test_every_field_accepts_its_default_via_set():
    base = load_scenario("romania_2024")
    for path, _, default in leaf_fields():
        current = get_path(base, path)
        s = load_scenario("romania_2024", [f"{path}={toml_literal(current)}"])
        assert s == base, path


# ----------------------------------------------------------------------------------------------------------------
# --set parsing and application
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, path, value", [
    ("days=5", "days", 5),
    ("  days =  7 ", "days", 7),
    ("population.organic_users=1_000", "population.organic_users", 1000),
    ("x=-3", "x", -3),
    ("campaign.bots.bot_share=0.5", "campaign.bots.bot_share", 0.5),
    ("x=1e3", "x", 1000.0),
    ("campaign.enabled=true", "campaign.enabled", True),
    ("campaign.enabled=false", "campaign.enabled", False),
    ('name="romania"', "name", "romania"),
    ("name='single quoted'", "name", "single quoted"),
    ("x=[1, 2, 3]", "x", [1, 2, 3]),
    ('candidates.names=["a", "b"]', "candidates.names", ["a", "b"]),
    ("x=[0.5, 0.25]", "x", [0.5, 0.25]),
    ("ranker.options={k = 2}", "ranker.options", {"k": 2}),
    ("ranker.name=chronological", "ranker.name", "chronological"),
    ("ranker.name=for_you", "ranker.name", "for_you"),
    ("ranker.name=my_pkg.rankers.MyRanker", "ranker.name", "my_pkg.rankers.MyRanker"),
    ("description=two words", "description", "two words"),
    ("description=a=b", "description", "a=b"),
])
def test_parse_override(text, path, value):
    got_path, got = parse_override(text)
    assert got_path == path
    assert got == value
    assert type(got) is type(value)


def test_parse_override_nan_and_inf():
    assert math.isnan(parse_override("x=nan")[1])
    assert parse_override("x=inf")[1] == math.inf
    assert parse_override("x=-inf")[1] == -math.inf


@pytest.mark.parametrize("text", ["days", "=5", "a..b=1", "1x=2", "a b=1", ".days=1", "days.=1"])
def test_parse_override_rejects_bad_syntax(text):
    with pytest.raises(ScenarioError) as info:
        parse_override(text)
    msg = str(info.value)
    assert "\n" not in msg and "--set" in msg


def test_override_into_a_number_is_an_error():
    with pytest.raises(ScenarioError) as info:
        load_scenario("romania_2024", ["population.organic_users.x=1"])
    msg = str(info.value)
    assert "\n" not in msg and "population.organic_users" in msg


def test_overrides_apply_in_order_and_leave_other_fields():
    base = load_scenario("romania_2024")
    s = load_scenario("romania_2024", ["days=8", "campaign.bots.burst_window=5", "days=9", "ranker.name=random"])
    assert s.days == 9
    assert s.campaign.bots.burst_window == 5.0
    assert s.ranker.name == "random"
    assert diff_paths(scenario_to_dict(s), scenario_to_dict(base)) == ["campaign.bots.burst_window", "days",
                                                                       "ranker.name"]


def test_apply_overrides_does_not_mutate_its_input():
    raw = {"campaign": {"bots": {"bot_share": 0.1}}}
    out = apply_overrides(raw, [("campaign.bots.bot_share", 0.2), ("population.topics", 4)])
    assert raw == {"campaign": {"bots": {"bot_share": 0.1}}}
    assert out == {"campaign": {"bots": {"bot_share": 0.2}}, "population": {"topics": 4}}


def test_override_source_is_marked():
    with pytest.raises(ScenarioError) as info:
        load_scenario("romania_2024", ["days=0"])
    assert "(with --set)" in str(info.value)


# ----------------------------------------------------------------------------------------------------------------
# config hash
# ----------------------------------------------------------------------------------------------------------------


def test_config_hash_is_stable_within_a_process():
    a, b = load_scenario("romania_2024"), load_scenario("romania_2024")
    assert config_hash(a) == config_hash(b)
    h = config_hash(a)
    assert len(h) == 64 and int(h, 16) >= 0


def test_config_hash_is_stable_across_processes(repo_root):
    code = "from simulator.config import config_hash, load_scenario; print(config_hash(load_scenario()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60,
                         env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == config_hash(load_scenario())


@pytest.mark.parametrize("override", ["days=31", "population.organic_users=100001", "ranker.name=engagement",
                                      "campaign.bots.burst_window=31", "campaign.enabled=false", "seed=1",
                                      'description="other"', "opinion.persuasion=0.02",
                                      'candidates.names=["target", "a", "b", "c", "d"]'])
def test_config_hash_changes_with_a_field(override):
    assert config_hash(load_scenario("romania_2024", [override])) != config_hash(load_scenario("romania_2024"))


def test_config_hash_ignores_how_a_value_was_given():
    base = load_scenario("romania_2024")
    same = load_scenario("romania_2024", ["days=30", "population.organic_users=100000.0",
                                          "campaign.bots.burst_window=30"])
    assert config_hash(same) == config_hash(base)
    assert config_hash(dataclasses.replace(base, days=6)) == config_hash(load_scenario("romania_2024", ["days=6"]))


def test_sweep_files_beside_the_scenarios_are_not_scenarios(cli, tmp_path):
    from simulator.config import bundled_scenarios, bundled_sweeps

    assert "romania_2024" in bundled_scenarios() and "mitigations" not in bundled_scenarios()
    assert {"mitigations", "ranker_comparison", "takedown_delay"} <= set(bundled_sweeps())
    res = cli(["run", "mitigations", "--out", tmp_path / "x"])
    assert res.code == 2 and "mitigations is a sweep: simulator sweep mitigations" in res.err
