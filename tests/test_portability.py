"""A world's results do not depend on which SIMD code paths NumPy picks for this CPU.

NumPy selects, at run time, vectorised implementations of ``log10``, ``exp``, ``cos``, powers and sorts for the
CPU's widest vector units (AVX-512, AVX2, or SSE4 only), and these differ from one another in the last bits of a
transcendental function and in the order a non-stable sort leaves equal keys. ``NPY_DISABLE_CPU_FEATURES`` makes
NumPy use the narrower paths, as on an older CPU: worlds run under each must be identical bit for bit. (Worlds of
this size did differ before the model stopped calling those NumPy functions, which is what makes the test bite.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from simulator.results import numpy_simd

#: Runs one world per configuration and prints a hash of everything it counted (posts' counters and flags, the
#: audience's support, who was reached, the impressions served).
WORLDS = r"""
import hashlib, json, sys
import numpy as np
from simulator.config import load_scenario
from simulator.model import AuditWorld
BASE = ["population.organic_users=8000", "days=4", "campaign.bots.activation_day=1",
        "campaign.recruits.recruit_day=1"]
CASES = {
    "for_you": [],
    "engagement": ["ranker.name=engagement", "engagement.interest_weight=0.7"],
    "chronological": ["ranker.name=chronological"],
    "random": ["ranker.name=random"],
    "mitigations": ['mitigations=[{name="dormancy_dampening"}, {name="rate_limit"}, '
                    '{name="coordination_detection"}, {name="circuit_breaker"}, {name="paid_labeling"}, '
                    '{name="takedown"}]'],
}
COLUMNS = ("views", "served_views", "engagements", "trusted_views", "impressions_o", "engagement_by_route",
           "trusted_engagements", "trusted_served_engagements", "held_until", "oon_blocked", "removed")
out = {}
for name, extra in CASES.items():
    world = AuditWorld(load_scenario("romania_2024", BASE + extra), np.random.SeedSequence(5)).run()
    h = hashlib.sha256()
    for column in COLUMNS:
        h.update(np.ascontiguousarray(getattr(world.posts, column)[: world.posts.n]).tobytes())
    h.update(world.population.support.tobytes())
    h.update(world.ledger.reached.tobytes())
    h.update(np.int64(world.impressions_served).tobytes())
    out[name] = h.hexdigest()
print(json.dumps(out))
"""


def _worlds(disabled: list[str]) -> dict:
    env = dict(os.environ)
    env.pop("NPY_DISABLE_CPU_FEATURES", None)
    if disabled:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(disabled)
    proc = subprocess.run([sys.executable, "-c", WORLDS], capture_output=True, text=True, cwd=str(REPO_ROOT),
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_worlds_are_identical_whatever_simd_paths_numpy_uses():
    enabled = numpy_simd().get("enabled", [])   # the SIMD targets NumPy dispatches to on this CPU
    if not enabled:
        pytest.skip("NumPy dispatches to no SIMD target above its baseline on this CPU: nothing to switch off")
    full = _worlds([])
    # Every target but the lowest (e.g. no AVX-512 paths on an AVX-512 machine), then none above the baseline.
    for disabled in ([enabled[1:]] if len(enabled) > 1 else []) + [enabled]:
        assert _worlds(disabled) == full, f"NPY_DISABLE_CPU_FEATURES={' '.join(disabled)}"
