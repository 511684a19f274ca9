"""Regenerate the golden-seed regression values (tests/golden/small_audit.json).

    python tests/regenerate_golden.py

Run it only after a change that is meant to alter the model's numbers, and say why in the commit: the test
test_golden.py then pins the new values. The golden run is a small audit (2 replicates, 1,500 users, 8 days, the
campaign's calendar moved early) so it takes seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from simulator.audit import run_audit  # noqa: E402
from simulator.config import load_scenario  # noqa: E402

OVERRIDES = ["population.organic_users=1500", "days=8", "campaign.bots.activation_day=3",
             "campaign.recruits.recruit_day=2"]
SEED = 20241124
REPLICATES = 2
GOLDEN = HERE / "golden" / "small_audit.json"


def golden_values() -> dict:
    result = run_audit(load_scenario("romania_2024", OVERRIDES), seed=SEED, replicates=REPLICATES)
    return {"overrides": OVERRIDES, "seed": SEED, "replicates": REPLICATES,
            "per_replicate": [dict(sorted(r.metrics.items())) for r in result.replicates]}


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(golden_values(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
