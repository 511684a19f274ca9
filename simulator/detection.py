"""Scoring what the mitigation stages flagged against the ground truth (spec §4–5), after the run.

Campaign actors are the accounts of kinds ``bot``, ``recruited`` and ``influencer`` (the paid influencers) in a
world whose campaign is active; every other flagged account (organic users, the candidates' official accounts) is
a false positive. Precision is over all distinct flagged accounts; recall and detection delay are per true kind.
A stage flagging an account is detection, whatever the stage then did (dampened, demoted, removed, labelled).
"""

from __future__ import annotations

import numpy as np

from .population import Kind

#: True kinds scored for recall and delay, by their name in metrics.json.
SCORED_KINDS = {"bot": Kind.BOT, "recruited": Kind.RECRUITED, "influencer": Kind.INFLUENCER}
KIND_NAMES = {int(k): k.name.lower() for k in Kind}
MINUTES_PER_HOUR = 60.0


def detection_scores(flag_accounts: np.ndarray, flag_minutes: np.ndarray, kind: np.ndarray,
                     first_action: np.ndarray, campaign_enabled: bool) -> dict:
    """{precision, recall.<kind>, detection_delay_hours.<kind>} (None where undefined: nothing flagged, no
    account of that kind, none of that kind detected after acting).

    ``flag_accounts``/``flag_minutes``: every recorded flag (an account may appear once per stage); an account's
    detection time is its earliest flag. ``first_action``: minute of each account's first campaign action (inf if
    none). Delay = detection time − first action, in hours, 0 for an account flagged before it acted; accounts that
    never acted are left out of the delay."""
    out: dict = {}
    if flag_accounts.size:
        order = np.lexsort((flag_minutes, flag_accounts))
        acc, minute = flag_accounts[order], flag_minutes[order]
        head = np.ones(acc.size, bool)
        head[1:] = acc[1:] != acc[:-1]
        acc, minute = acc[head], minute[head]
    else:
        acc, minute = np.zeros(0, np.int64), np.zeros(0)
    true_kind = kind[acc]
    actor = np.isin(true_kind, list(SCORED_KINDS.values())) & campaign_enabled
    out["precision"] = float(actor.mean()) if acc.size else None
    for name, k in SCORED_KINDS.items():
        total = int((kind == k).sum())
        hit = true_kind == k
        out[f"recall.{name}"] = (float(hit.sum()) / total if campaign_enabled else 0.0) if total else None
        acted = hit & np.isfinite(first_action[acc])
        delays = np.maximum(minute[acted] - first_action[acc[acted]], 0.0) / MINUTES_PER_HOUR
        out[f"detection_delay_hours.{name}"] = float(delays.mean()) if delays.size and campaign_enabled else None
    return out


def flag_rows(world_name: str, flags: dict, kind: np.ndarray, stage_names: tuple[str, ...]) -> list[dict]:
    """Rows of flagged.csv for one world: every recorded flag with the account's true kind."""
    return [{"world": world_name, "account": int(a), "true_kind": KIND_NAMES[int(kind[a])], "stage": stage_names[s],
             "stage_index": int(s), "flagged_at_hours": float(m) / MINUTES_PER_HOUR, "reason": str(r)}
            for a, s, m, r in zip(flags["account"], flags["stage"], flags["minute"], flags["reason"])]
