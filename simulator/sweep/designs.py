"""Designs: which points a sweep runs.

* ``grid``: every combination of the factors' values (first factor slowest); a range gives ``steps`` evenly spaced
  values.
* ``latin_hypercube``: ``samples`` points; each factor's unit interval is cut into ``samples`` strata and each
  stratum is used once (independent random permutations per factor). A range maps the stratum's random position
  onto [min, max]; a list of values picks the value whose share of the interval holds it (so every value is used
  equally often, ± 1).
* ``sobol``: SALib's Saltelli/Sobol' sample, ``samples`` = N base points, N × (D + 2) points without second-order
  terms; analysed by ``SALib.analyze.sobol`` (first-order and total indices).
* ``morris``: SALib's Morris trajectories, ``samples`` = r trajectories on a ``levels``-level grid, r × (D + 1)
  points; analysed by ``SALib.analyze.morris`` (μ*, σ).

All randomness comes from the sweep's root seed through :func:`design_seed_sequence` (spawn keys of length two, so
they never coincide with a replicate's key ``(r,)`` nor with the streams a world spawns from it). Integer fields
sampled from a range are rounded to the nearest integer; the analysis uses the unrounded design row.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

from .spec import Factor, SweepSpec, field_kind, value_text

#: First element of the spawn keys the design and the sensitivity analysis draw from (never a replicate number:
#: replicates are at most 10,000).
DESIGN_KEY = 2**32 - 1


def design_seed_sequence(root_seed: int, purpose: int) -> np.random.SeedSequence:
    """Seed of the design (purpose 0) or of the sensitivity bootstrap (purpose 1) of a sweep seeded ``root_seed``."""
    return np.random.SeedSequence(root_seed, spawn_key=(DESIGN_KEY, purpose))


def design_int_seed(root_seed: int, purpose: int) -> int:
    return int(design_seed_sequence(root_seed, purpose).generate_state(1, dtype=np.uint32)[0])


def salib_problem(factors: tuple[Factor, ...]) -> dict:
    return {"num_vars": len(factors), "names": [f.name for f in factors],
            "bounds": [[f.low, f.high] for f in factors]}


def _level_choice(f: Factor, i: int) -> tuple[list, list]:
    values = f.levels[i]
    settings = list(zip(f.paths, values))
    cells = [(f.name, f.labels[i])]
    if f.linked:
        cells += [(p, value_text(v, field_kind(p))) for p, v in zip(f.paths, values)]
    return settings, cells


def _range_choice(f: Factor, v: Any) -> tuple[list, list]:
    return [(f.paths[0], v)], [(f.name, value_text(v))]


def _row(choices: list[tuple[list, list]], x: list[float]) -> tuple[list, list, list]:
    settings, cells = [], []
    for s, c in choices:
        settings += s
        cells += c
    return settings, cells, [float(v) for v in x]


def grid(spec: SweepSpec) -> list:
    options = []
    for f in spec.factors:
        if f.kind == "range":
            options.append([("range", v) for v in f.grid_values()])
        else:
            options.append([("level", i) for i in range(len(f.levels))])
    rows = []
    for combo in itertools.product(*options):
        choices, x = [], []
        for f, (what, v) in zip(spec.factors, combo):
            choices.append(_range_choice(f, v) if what == "range" else _level_choice(f, v))
            x.append(v if what == "range" else float(v))
        rows.append(_row(choices, x))
    return rows


def latin_hypercube_unit(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """(n, d) points in [0, 1): column j holds one random position in each of the n strata, in random order."""
    u = np.empty((n, d))
    for j in range(d):
        u[:, j] = (rng.permutation(n) + rng.random(n)) / n
    return u


def latin_hypercube(spec: SweepSpec) -> list:
    rng = np.random.default_rng(design_seed_sequence(spec.seed, 0))
    u = latin_hypercube_unit(spec.samples, len(spec.factors), rng)
    rows = []
    for i in range(spec.samples):
        choices = []
        for j, f in enumerate(spec.factors):
            if f.kind == "range":
                choices.append(_range_choice(f, f.range_value(f.low + u[i, j] * (f.high - f.low))))
            else:
                k = len(f.levels)
                choices.append(_level_choice(f, min(int(u[i, j] * k), k - 1)))
        rows.append(_row(choices, u[i]))
    return rows


def _salib_rows(spec: SweepSpec, x: np.ndarray) -> list:
    rows = []
    for i in range(x.shape[0]):
        choices = [_range_choice(f, f.range_value(x[i, j])) for j, f in enumerate(spec.factors)]
        rows.append(_row(choices, x[i]))
    return rows


def sobol(spec: SweepSpec) -> list:
    from SALib.sample import sobol as sobol_sample

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = sobol_sample.sample(salib_problem(spec.factors), spec.samples, calc_second_order=False,
                                seed=design_int_seed(spec.seed, 0))
    return _salib_rows(spec, x)


def morris(spec: SweepSpec) -> list:
    from SALib.sample import morris as morris_sample

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = morris_sample.sample(salib_problem(spec.factors), spec.samples, num_levels=spec.levels,
                                 seed=design_int_seed(spec.seed, 0))
    return _salib_rows(spec, x)


DESIGN_FUNCTIONS = {"grid": grid, "latin_hypercube": latin_hypercube, "sobol": sobol, "morris": morris}


def design_points(spec: SweepSpec) -> list[tuple[list, list, list]]:
    """[(settings, cells, x)] for each point, in point_id order."""
    return DESIGN_FUNCTIONS[spec.design](spec)


def expected_points(spec: SweepSpec) -> int:
    d = len(spec.factors)
    if spec.design == "grid":
        n = 1
        for f in spec.factors:
            n *= f.steps if f.kind == "range" else len(f.levels)
        return n
    return {"latin_hypercube": spec.samples, "sobol": (spec.samples or 0) * (d + 2),
            "morris": (spec.samples or 0) * (d + 1)}[spec.design]
