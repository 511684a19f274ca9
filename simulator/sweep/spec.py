"""Sweep files: parsing, validation and the points they describe.

A sweep file (TOML) names a base scenario, the factors to vary, the design that picks the points, the replicates and
the metrics to analyse (docs/sweeps.md). Loading it validates every key, builds the design and then the scenario of
every point exactly as ``simulator run`` would build it (``apply_overrides`` + ``scenario_from_dict``), so a bad
sweep fails with one line naming the file, the key or field, the value and what is allowed, before anything runs.

Overrides are applied in this order: the base scenario file, the sweep's ``[fixed]`` table, the command line's
``--set``, then the point's factor values. A field may be set by only one of ``[fixed]``/``--set`` and the factors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import (MitigationConfig, Scenario, ScenarioError, apply_overrides, parse_override, read_scenario_toml,
                      resolve_scenario_path, scenario_from_dict)
from ..metrics import METRIC_NAMES, is_metric_name

DESIGNS = ("grid", "latin_hypercube", "sobol", "morris")
TOP_LEVEL_KEYS = ("scenario", "description", "design", "replicates", "seed", "samples", "levels", "metrics",
                  "parameters", "fixed")
#: Metrics analysed and plotted when the sweep file names none.
DEFAULT_METRICS = ("inflation_factor", "reach_share", "amplification", "share_of_voice")
MAX_REPLICATES = 10_000
MAX_POINTS = 100_000


class SweepError(ValueError):
    """A sweep file (or its use) is invalid. The message is one line meant for the user."""


# ----------------------------------------------------------------------------------------------------------------
# Factors and points
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    """One varied quantity: a field (``paths`` has one dotted path) or a linked group of fields (``zip``).

    ``kind`` is ``"levels"`` (a list of values, each with a label) or ``"range"`` (``low``..``high``, sampled by
    the design; ``steps`` evenly spaced values in a grid; rounded when the field is an integer)."""

    name: str
    paths: tuple[str, ...]
    kind: str
    levels: tuple[tuple, ...] = ()      # levels: one tuple of values (one per path) per level
    labels: tuple[str, ...] = ()        # levels: the text of each level in points.csv
    low: float = 0.0
    high: float = 0.0
    steps: int | None = None
    integer: bool = False

    @property
    def linked(self) -> bool:
        return len(self.paths) > 1 or self.name != self.paths[0]

    @property
    def columns(self) -> tuple[str, ...]:
        """Its columns in points.csv: the factor (label), then each linked field's value."""
        return (self.name,) + (self.paths if self.linked else ())

    def range_value(self, x: float) -> float | int:
        v = float(f"{x:.12g}")   # 12 significant digits: clean text, far below any effect on the model
        return int(round(v)) if self.integer else v

    def grid_values(self) -> list:
        n = self.steps
        return [self.range_value(self.low + (self.high - self.low) * i / (n - 1)) for i in range(n)]


@dataclass(frozen=True)
class Point:
    """One point of the design: the field values it sets and their text in points.csv."""

    point_id: int
    settings: tuple[tuple[str, Any], ...]   # (dotted path, value) applied to the base scenario
    cells: tuple[tuple[str, str], ...]      # (column, text) in points.csv
    x: tuple[float, ...] = ()               # the design row (sobol/morris: SALib's sample, before rounding)


@dataclass
class SweepSpec:
    path: Path
    text: str
    raw: dict
    overrides: tuple[str, ...]
    scenario_path: Path
    base_raw: dict
    description: str
    design: str
    replicates: int
    seed: int
    samples: int | None
    levels: int
    metrics: tuple[str, ...]
    factors: tuple[Factor, ...]
    fixed: tuple[tuple[str, Any], ...]
    points: list[Point] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    base: Scenario | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def parameter_columns(self) -> list[str]:
        return [c for f in self.factors for c in f.columns]

    @property
    def units(self) -> int:
        return len(self.points) * self.replicates

    @property
    def hash(self) -> str:
        return sweep_hash(self.raw, self.overrides)

    def base_with_overrides(self) -> dict:
        """The base scenario's table with ``[fixed]`` and ``--set`` applied (what every point starts from)."""
        return apply_overrides(self.base_raw, list(self.fixed) + [parse_override(o) for o in self.overrides])


def sweep_hash(raw: dict, overrides: tuple[str, ...] | list[str]) -> str:
    """Content hash of a sweep: the parsed sweep file (so comments and layout do not count) and the ``--set``
    overrides (parsed), canonical JSON."""
    doc = {"sweep": raw, "set": [list(parse_override(o)) for o in overrides]}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Scenario fields by dotted path
# ----------------------------------------------------------------------------------------------------------------


def field_kind(path: str) -> str | None:
    """``int``, ``float``, ``bool``, ``str``, ``list``, ``dict``, ``stages`` or ``section`` for a dotted path of the
    scenario; None when it is not a field."""
    cls: Any = Scenario
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            return None
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        if part not in names:
            return None
        t = hints[part]
        if dataclasses.is_dataclass(t):
            cls = t
            if i == len(parts) - 1:
                return "section"
            continue
        if i != len(parts) - 1:
            return None
        origin = typing.get_origin(t)
        if origin is tuple:
            inner = typing.get_args(t)[0]
            return "stages" if isinstance(inner, type) and issubclass(inner, MitigationConfig) else "list"
        if t is dict or origin is dict:
            return "dict"
        return {int: "int", float: "float", bool: "bool", str: "str"}.get(t)
    return None


# ----------------------------------------------------------------------------------------------------------------
# Value text
# ----------------------------------------------------------------------------------------------------------------


def value_text(value: Any, kind: str | None = None) -> str:
    """How a field value appears in points.csv: numbers in shortest form, true/false, strings as they are, a list of
    mitigation stages as their names joined by '+' ('none' when empty), other lists and tables as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    if kind == "stages" and isinstance(value, list):
        names = [t.get("name", "?") if isinstance(t, dict) else "?" for t in value]
        return "+".join(str(n) for n in names) or "none"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, value: Any, allowed: str) -> typing.NoReturn:
        raise SweepError(f"{self.source}: {key} = {_fmt(value)}: expected {allowed}")

    def error(self, key: str, message: str) -> typing.NoReturn:
        raise SweepError(f"{self.source}: {key}: {message}")


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, (list, tuple, dict)) else str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _is_path(text: str) -> bool:
    return bool(text) and all(p.isidentifier() for p in text.split("."))


def _field_path(ctx: _Ctx, key: str, path: Any) -> str:
    if not isinstance(path, str) or not _is_path(path):
        ctx.fail(key, path, "a scenario field path like campaign.bots.bot_share")
    kind = field_kind(path)
    if kind is None:
        ctx.error(key, f"{path!r} is not a scenario field (every field is listed in docs/scenario-reference.md)")
    if kind == "section":
        ctx.error(key, f"{path!r} is a section, not a field: vary its fields (e.g. {path}.<field>)")
    return path


def _levels_factor(ctx: _Ctx, key: str, name: str, path: str, values: Any) -> Factor:
    kind = field_kind(path)
    if isinstance(values, dict):
        if not values:
            ctx.fail(key, values, "a non-empty table of label = value")
        labels = [str(k) for k in values]
        vals = list(values.values())
    elif isinstance(values, list):
        if not values:
            ctx.fail(key, values, "a non-empty list of values")
        vals = list(values)
        labels = [value_text(v, kind) for v in vals]
    else:
        ctx.fail(key, values, "a list of values or a table of label = value")
    _distinct(ctx, key, labels, vals)
    return Factor(name=name, paths=(path,), kind="levels", levels=tuple((v,) for v in vals), labels=tuple(labels))


def _distinct(ctx: _Ctx, key: str, labels: list[str], vals: list) -> None:
    seen = set()
    for i, (label, v) in enumerate(zip(labels, vals)):
        canon = json.dumps(v, sort_keys=True, default=str)
        if canon in seen:
            ctx.fail(f"{key}[{i}]", v, "distinct values (this one is listed twice)")
        seen.add(canon)
    if len(set(labels)) != len(labels):
        dup = next(lb for lb in labels if labels.count(lb) > 1)
        ctx.fail(key, dup, "distinct labels (name the values with a table of label = value)")


def _range_factor(ctx: _Ctx, key: str, path: str, raw: dict, design: str) -> Factor:
    kind = field_kind(path)
    allowed_keys = {"min", "max", "steps"}
    for k in raw:
        if k not in allowed_keys:
            ctx.error(f"{key}.{k}", "unknown key in a range (allowed: min, max, steps)")
    for k in ("min", "max"):
        if k not in raw:
            ctx.error(key, f"a range needs both min and max (missing {k})")
        if not _is_number(raw[k]):
            ctx.fail(f"{key}.{k}", raw[k], "a finite number")
    if kind not in ("int", "float"):
        ctx.error(key, f"{path} is not a number field ({kind}): give a list of values instead of a range")
    low, high = float(raw["min"]), float(raw["max"])
    if not low < high:
        ctx.fail(f"{key}.min", raw["min"], f"a number < max ({raw['max']})")
    steps = raw.get("steps")
    if design == "grid":
        if steps is None:
            ctx.error(key, "a range in a grid needs steps = N (evenly spaced values from min to max)")
        if not _is_int(steps) or steps < 2 or steps > 10_000:
            ctx.fail(f"{key}.steps", steps, "an integer from 2 to 10000")
    elif steps is not None:
        ctx.error(f"{key}.steps", f"steps is for design = \"grid\"; the {design} design samples the range itself")
    f = Factor(name=path, paths=(path,), kind="range", low=low, high=high, steps=steps, integer=kind == "int")
    if f.integer and math.floor(high) < math.ceil(low):
        ctx.error(key, f"the range [{low:g}, {high:g}] holds no integer ({path} is an integer field)")
    if design == "grid" and len(set(f.grid_values())) != steps:
        ctx.error(key, f"{steps} steps from {low:g} to {high:g} repeat values once rounded to integers")
    return f


def _zip_factor(ctx: _Ctx, key: str, name: str, raw: dict) -> Factor:
    for k in raw:
        if k not in ("zip", "labels"):
            ctx.error(f"{key}.{k}", "unknown key in a linked group (allowed: zip, labels)")
    if not _is_path(name) or field_kind(name) is not None:
        ctx.error(key, f"a linked group's name must be a new column name, not a scenario field ({name!r})")
    table = raw["zip"]
    if not isinstance(table, dict) or not table:
        ctx.fail(f"{key}.zip", table, "a table of field path = [values], all lists of the same length")
    paths, columns = [], []
    for p, vals in table.items():
        path = _field_path(ctx, f"{key}.zip.{p}", p)
        if not isinstance(vals, list) or not vals:
            ctx.fail(f"{key}.zip.\"{p}\"", vals, "a non-empty list of values")
        paths.append(path)
        columns.append(vals)
    n = len(columns[0])
    for p, vals in zip(paths, columns):
        if len(vals) != n:
            ctx.error(f"{key}.zip", f"the lists must have the same length ({paths[0]} has {n}, {p} has {len(vals)})")
    levels = [tuple(c[i] for c in columns) for i in range(n)]
    labels = raw.get("labels")
    if labels is None:
        labels = [str(i) for i in range(n)]
    elif not isinstance(labels, list) or len(labels) != n or not all(isinstance(x, str) and x for x in labels):
        ctx.fail(f"{key}.labels", labels, f"a list of {n} non-empty strings, one per level")
    _distinct(ctx, key, list(labels), [list(lv) for lv in levels])
    return Factor(name=name, paths=tuple(paths), kind="levels", levels=tuple(levels), labels=tuple(labels))


def _factor(ctx: _Ctx, name: str, raw: Any, design: str) -> Factor:
    key = f"parameters.\"{name}\"" if "." in name else f"parameters.{name}"
    if isinstance(raw, dict) and "zip" in raw:
        return _zip_factor(ctx, key, name, raw)
    path = _field_path(ctx, f"parameters key {name!r}", name)
    if isinstance(raw, list):
        return _levels_factor(ctx, key, name, path, raw)
    if isinstance(raw, dict):
        if "values" in raw:
            extra = [k for k in raw if k != "values"]
            if extra:
                ctx.error(f"{key}.{extra[0]}", "unknown key beside values")
            return _levels_factor(ctx, f"{key}.values", name, path, raw["values"])
        if "min" in raw or "max" in raw or "steps" in raw:
            return _range_factor(ctx, key, path, raw, design)
    ctx.fail(key, raw, "a list of values, a range {min = .., max = ..}, a table {values = {label = value, ..}} "
                       "or a linked group {zip = {path = [..], ..}}")


def _int_key(ctx: _Ctx, raw: dict, key: str, lo: int, hi: int, default: Any = None) -> Any:
    if key not in raw:
        return default
    v = raw[key]
    if not _is_int(v) or not lo <= v <= hi:
        ctx.fail(key, v, f"an integer from {lo} to {hi}")
    return v


def parse_sweep(path: Path, text: str, overrides: list[str] | tuple[str, ...] = ()) -> SweepSpec:
    """Parse and validate the sweep file's keys (not yet the points' scenarios: see :func:`build_points`)."""
    ctx = _Ctx(str(path))
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML ({exc})") from None
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            ctx.error(key, f"unknown key (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    if "scenario" not in raw:
        ctx.error("scenario", "required key missing (the base scenario: a TOML file relative to the sweep file, a "
                              "path, or a bundled scenario name)")
    scen = raw["scenario"]
    if not isinstance(scen, str) or not scen:
        ctx.fail("scenario", scen, "a scenario file path or bundled scenario name")
    relative = path.parent / scen
    try:
        scenario_path = resolve_scenario_path(relative if relative.is_file() else scen)
    except ScenarioError:
        ctx.fail("scenario", scen, f"an existing scenario file (looked for {relative}) or a bundled scenario name")
    try:
        base_raw = read_scenario_toml(scenario_path)
    except ScenarioError as exc:
        raise SweepError(f"{path}: scenario: {exc}") from None

    design = raw.get("design", "grid")
    if design not in DESIGNS:
        ctx.fail("design", design, "one of " + ", ".join(map(repr, DESIGNS)))
    description = raw.get("description", "")
    if not isinstance(description, str):
        ctx.fail("description", description, "a string")
    replicates = _int_key(ctx, raw, "replicates", 1, MAX_REPLICATES, 1)
    seed = _int_key(ctx, raw, "seed", 0, 2**63 - 1)
    samples = _int_key(ctx, raw, "samples", 1, MAX_POINTS)
    levels = _int_key(ctx, raw, "levels", 2, 1000, 4)
    if design in ("latin_hypercube", "sobol", "morris") and samples is None:
        what = {"latin_hypercube": "the number of points", "sobol": "N, a power of 2 (points = N × (parameters + 2))",
                "morris": "the number of trajectories (points = trajectories × (parameters + 1))"}[design]
        ctx.error("samples", f"required for design = \"{design}\": {what}")
    if design == "grid" and samples is not None:
        ctx.error("samples", "a grid takes every combination of the listed values; samples is for the other designs")
    if design == "sobol" and samples & (samples - 1):
        ctx.fail("samples", samples, "a power of 2 for design = \"sobol\" (Sobol' sequences balance only then)")
    if "levels" in raw and design != "morris":
        ctx.error("levels", "levels (the Morris grid) is for design = \"morris\"")
    if design == "morris" and levels % 2:
        ctx.fail("levels", levels, "an even number of Morris levels (SALib's trajectories need it)")

    metrics = raw.get("metrics", list(DEFAULT_METRICS))
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        ctx.fail("metrics", metrics, "a non-empty list of metric names")
    for i, m in enumerate(metrics):
        if not is_metric_name(m):
            ctx.fail(f"metrics[{i}]", m, "one of " + ", ".join(METRIC_NAMES) + " or sock_puppet_share.<candidate>")
    if len(set(metrics)) != len(metrics):
        ctx.fail("metrics", metrics, "distinct metric names")

    params = raw.get("parameters")
    if not isinstance(params, dict) or not params:
        ctx.fail("parameters", params if params is not None else "(missing)",
                 "a table [parameters] with at least one factor")
    factors = tuple(_factor(ctx, name, spec_, design) for name, spec_ in params.items())
    if design in ("sobol", "morris"):
        for f in factors:
            if f.kind != "range":
                ctx.error(f"parameters.\"{f.name}\"", f"design = \"{design}\" needs every parameter as a range "
                                                      "{min = .., max = ..} (lists are for grid and latin_hypercube)")
    seen: dict[str, str] = {}
    for f in factors:
        for p in f.paths:
            if p in seen:
                ctx.error(f"parameters.\"{f.name}\"", f"{p} is already varied by parameters.\"{seen[p]}\"")
            seen[p] = f.name

    fixed_raw = raw.get("fixed", {})
    if not isinstance(fixed_raw, dict):
        ctx.fail("fixed", fixed_raw, "a table of field path = value applied to every point")
    fixed = []
    for p, v in _flatten(fixed_raw):
        path_ = _field_path(ctx, f"fixed.\"{p}\"", p)
        if path_ in seen:
            ctx.error(f"fixed.\"{p}\"", f"{p} is also varied by parameters.\"{seen[path_]}\"")
        fixed.append((path_, v))
    overrides = tuple(overrides)
    for o in overrides:
        try:
            p, _ = parse_override(o)
        except ScenarioError as exc:
            raise SweepError(str(exc)) from None
        if p in seen:
            raise SweepError(f"--set {o}: {p} is varied by the sweep ({path}: parameters.\"{seen[p]}\"); a --set "
                             "may only change fields the sweep keeps fixed")

    if seed is None:
        base_seed = apply_overrides(base_raw, fixed + [parse_override(o) for o in overrides]).get("seed", 2024)
        seed = base_seed if _is_int(base_seed) and base_seed >= 0 else 2024
    return SweepSpec(path=path, text=text, raw=raw, overrides=overrides, scenario_path=scenario_path,
                     base_raw=base_raw, description=description, design=design, replicates=replicates, seed=seed,
                     samples=samples, levels=levels, metrics=tuple(metrics), factors=factors, fixed=tuple(fixed))


def _flatten(table: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """``[fixed]`` entries as (dotted path, value): quoted dotted keys and nested section tables both work."""
    out = []
    for k, v in table.items():
        path = prefix + k
        if isinstance(v, dict) and field_kind(path) == "section":
            out += _flatten(v, path + ".")
        else:
            out.append((path, v))
    return out


def build_points(spec: SweepSpec) -> None:
    """Fill ``spec.points`` from the design and ``spec.scenarios`` by validating every point's scenario."""
    from .designs import design_points, expected_points

    n = expected_points(spec)
    if n > MAX_POINTS:
        raise SweepError(f"{spec.path}: the design has {n:,} points: at most {MAX_POINTS:,} are allowed")
    rows = design_points(spec)
    base = spec.base_with_overrides()
    source = f"{spec.scenario_path} (base scenario of {spec.path}"
    try:
        spec.base = scenario_from_dict(base, source + (", with [fixed] and --set)" if spec.fixed or spec.overrides
                                                        else ")"))
    except ScenarioError as exc:
        raise SweepError(str(exc)) from None
    points, scenarios, cache = [], [], {}
    for pid, (settings, cells, x) in enumerate(rows):
        key = json.dumps(settings, sort_keys=True, default=str)
        if key not in cache:
            where = ", ".join(f"{c} = {t}" for c, t in cells)
            try:
                cache[key] = scenario_from_dict(apply_overrides(base, list(settings)),
                                                f"{spec.path}: point {pid} ({where})")
            except ScenarioError as exc:
                raise SweepError(str(exc)) from None
        points.append(Point(pid, tuple(settings), tuple(cells), tuple(x)))
        scenarios.append(cache[key])
    spec.points, spec.scenarios = points, scenarios


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepSpec:
    """Read, validate and expand a sweep file: every point's scenario is built (and so validated)."""
    path = Path(path)
    if not path.exists() and path.parent == Path("."):
        # a bundled sweep by name (experiments/<name>.toml in a checkout, simulator/scenarios/ when installed)
        from ..config import bundled_sweeps

        path = bundled_sweeps().get(path.name[:-5] if path.name.endswith(".toml") else path.name, path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the sweep file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SweepError(f"{path}: not a UTF-8 text file") from None
    spec = parse_sweep(path, text, overrides)
    build_points(spec)
    return spec
