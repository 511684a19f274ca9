"""The metrics of spec §5: what one finished world shows (:class:`WorldOutcome`), the per-replicate metrics of a
paired audit (:func:`replicate_metrics`) and their summary over replicates (:func:`summarise`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .population import ROUTES

SCHEMA_VERSION = 1

#: metric names in metrics.json, dotted for nested ones (spec §5)
METRIC_NAMES = (
    "impressions", "reach", "reach_share", "share_of_voice", "inflation_factor", "amplification_ratio",
    "amplification", "attribution.bot", "attribution.paid", "attribution.recruited", "attribution.organic",
    "persuadable_reach", "support_shift", "cost_per_1k_inflated", "gini",
    # mitigations (spec §4-5): trivial (0 effect, no flags) when the scenario lists no stage
    "mitigation_effect", "inflation_factor_unmitigated", "mitigation_effect_impressions",
    "collateral_damage.organic_creators",
    "collateral_damage.other_candidates", "collateral_damage_with_campaign.organic_creators",
    "collateral_damage_with_campaign.other_candidates", "precision",
    "recall.bot", "recall.recruited", "recall.influencer",
    "detection_delay_hours.bot", "detection_delay_hours.recruited", "detection_delay_hours.influencer",
    # sock-puppet audit: null without probes (with probes, also sock_puppet_share.<candidate name>)
    "sock_puppet_target_share", "sock_puppet_partisan_share",
)
#: Metrics named after a scenario's candidates: ``sock_puppet_share.<candidate name>`` (with probes only).
PER_CANDIDATE_PREFIXES = ("sock_puppet_share.",)


def is_metric_name(name: str) -> bool:
    """A name ``metrics.json`` can hold: one of :data:`METRIC_NAMES` or a per-candidate metric."""
    return name in METRIC_NAMES or any(name.startswith(p) and len(name) > len(p) for p in PER_CANDIDATE_PREFIXES)


def gini(values: np.ndarray) -> float | None:
    """Gini coefficient of non-negative values (0 = equal, → 1 = concentrated); None for an empty or all-zero set."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() <= 0:
        return None
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * x).sum()) / (n * x.sum()) - (n + 1.0) / n)


@dataclass
class WorldOutcome:
    """Everything the metrics need from one finished world (plain numbers, picklable)."""

    target_impressions: int
    reach: int
    n_o: int
    persuadable_reach: int
    candidate_impressions: list[int]
    route_impressions: list[float]
    gini: float | None
    start_target_share: float
    end_target_share: float
    opinion_enabled: bool
    dollars: float
    scale: float
    organic_creator_impressions: int = 0      # impressions to O of posts by organic (not recruited) accounts
    other_candidate_impressions: int = 0      # … of authentic posts (organic users, official accounts) about
    #                                           candidates other than the target
    detection: dict = field(default_factory=dict)   # detection.detection_scores of the world's flags
    probes: int = 0                                 # sock-puppet accounts
    probe_impressions: list = field(default_factory=list)   # per candidate, then not partisan
    candidate_names: list = field(default_factory=list)
    target_index: int = 0
    flagged: list = field(default_factory=list)     # rows of flagged.csv (without the world column filled)
    series: dict = field(default_factory=dict)

    @classmethod
    def of(cls, world) -> "WorldOutcome":
        from .detection import detection_scores, flag_rows
        from .population import Kind

        ledger = world.ledger
        table, pop = world.posts, world.population
        authored = np.zeros(pop.n, dtype=bool)
        authored[table.author[: table.n]] = True
        mv = world.datacollector.model_vars
        end = np.asarray(mv["vote_shares"][-1]) if mv.get("vote_shares") else world.start_vote_shares
        author_kind = pop.kind[table.author[: table.n]]
        imps = table.impressions_o[: table.n].astype(np.int64)
        cand = table.candidate[: table.n]
        authentic = (author_kind == Kind.ORGANIC) | (author_kind == Kind.CANDIDATE)
        other = authentic & (cand >= 0) & (cand != world.target)
        flags = world.mitigations.flags.arrays()
        return cls(
            target_impressions=int(ledger.target_impressions), reach=ledger.reach, n_o=ledger.n_o,
            persuadable_reach=ledger.persuadable_reach,
            candidate_impressions=[int(v) for v in ledger.candidate_impressions],
            route_impressions=[float(v) for v in ledger.route_impressions],
            gini=gini(ledger.author_impressions(world.posts, world.population.n)[authored]),
            start_target_share=float(world.start_vote_shares[world.target]),
            end_target_share=float(end[world.target]),
            opinion_enabled=world.config.opinion.enabled, dollars=float(world.operator.dollars),
            scale=world.config.scale,
            organic_creator_impressions=int(imps[author_kind == Kind.ORGANIC].sum()),
            other_candidate_impressions=int(imps[other].sum()),
            detection=detection_scores(flags["account"], flags["minute"], pop.kind, world.campaign_first_action,
                                       world.campaign_enabled),
            flagged=flag_rows("", flags, pop.kind, world.mitigations.names),
            probes=int(pop.probe_rows.size), probe_impressions=[int(v) for v in world.probe_impressions],
            candidate_names=list(world.config.candidates.names), target_index=int(world.target),
            series={k: list(v) for k, v in mv.items()},
        )


def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def _change(after: float, before: float) -> float | None:
    """Relative change after ÷ before − 1 (None when before is 0)."""
    r = _ratio(after, before)
    return None if r is None else r - 1.0


def replicate_metrics(campaign: WorldOutcome, inert: WorldOutcome, chronological: WorldOutcome,
                      campaign_unmitigated: WorldOutcome | None = None,
                      inert_unmitigated: WorldOutcome | None = None) -> dict:
    """Flat {dotted name: value or None} for one replicate's paired worlds (same seed). ``campaign``, ``inert``
    and ``chronological`` run the scenario's mitigation stages; the ``*_unmitigated`` worlds are the same without
    them (the same worlds when the scenario has none, the default)."""
    campaign_unmitigated = campaign_unmitigated or campaign
    inert_unmitigated = inert_unmitigated or inert
    a = campaign
    reach_share = _ratio(a.reach, a.n_o)
    amp = _ratio(reach_share, _ratio(chronological.reach, chronological.n_o)) if reach_share is not None and \
        chronological.reach else None
    routes = np.asarray(a.route_impressions)
    total_routes = routes.sum()
    extra = (a.target_impressions - inert.target_impressions) * a.scale / 1000.0
    out = {
        "impressions": float(a.target_impressions),
        "reach": float(a.reach),
        "reach_share": reach_share,
        "share_of_voice": _ratio(a.target_impressions, sum(a.candidate_impressions)),
        "inflation_factor": _ratio(a.reach, inert.reach),
        "amplification_ratio": amp,
        "amplification": None if amp is None else amp - 1.0,
        "persuadable_reach": float(a.persuadable_reach),
        "support_shift": (a.end_target_share - a.start_target_share) if a.opinion_enabled else None,
        # Dollars per thousand extra impressions at real scale; no extra impressions means no such price.
        "cost_per_1k_inflated": a.dollars / extra if extra > 0 else None,
        "gini": a.gini,
    }
    for i, route in enumerate(ROUTES):
        out[f"attribution.{route}"] = float(routes[i] / total_routes) if total_routes > 0 else None
    # Mitigations (spec §5): the share of the inflation removed, same seed; collateral damage to authentic
    # creators measured where the campaign is inert (the stages' cost when there is nothing to catch) and, for
    # completeness, where it is active (net of the reach the campaign's removal frees).
    if_unmitigated = _ratio(campaign_unmitigated.reach, inert_unmitigated.reach)
    if_mitigated = out["inflation_factor"]
    out["inflation_factor_unmitigated"] = if_unmitigated
    out["mitigation_effect"] = (None if if_mitigated is None or if_unmitigated is None or if_unmitigated == 1.0
                                else 1.0 - (if_mitigated - 1.0) / (if_unmitigated - 1.0))
    # The same share measured on exposure: the campaign's extra impressions of T in O that the stages removed.
    extra_unmitigated = campaign_unmitigated.target_impressions - inert_unmitigated.target_impressions
    extra_mitigated = a.target_impressions - inert.target_impressions
    out["mitigation_effect_impressions"] = (None if extra_unmitigated == 0
                                            else 1.0 - extra_mitigated / extra_unmitigated)
    for key, (after, before) in {"collateral_damage": (inert, inert_unmitigated),
                                 "collateral_damage_with_campaign": (campaign, campaign_unmitigated)}.items():
        out[f"{key}.organic_creators"] = _change(after.organic_creator_impressions,
                                                 before.organic_creator_impressions)
        out[f"{key}.other_candidates"] = _change(after.other_candidate_impressions,
                                                 before.other_candidate_impressions)
    out.update(campaign.detection)
    out.update(sock_puppet_metrics(campaign))
    return out


def sock_puppet_metrics(world: WorldOutcome) -> dict:
    """The sock-puppet audit: of the partisan impressions the probes were shown, the share promoting each candidate
    (``sock_puppet_share.<name>``, with probes only) and the target (``sock_puppet_target_share``, always present:
    null without probes or partisan impressions); the share of their impressions that were partisan."""
    out: dict = {"sock_puppet_target_share": None, "sock_puppet_partisan_share": None}
    if not world.probes:
        return out
    imps = np.asarray(world.probe_impressions, dtype=float)
    partisan = imps[:-1].sum()
    for c, name in enumerate(world.candidate_names):
        out[f"sock_puppet_share.{name}"] = float(imps[c] / partisan) if partisan else None
    out["sock_puppet_target_share"] = out[f"sock_puppet_share.{world.candidate_names[world.target_index]}"]
    out["sock_puppet_partisan_share"] = float(partisan / imps.sum()) if imps.sum() else None
    return out


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t.ppf(0.975, df)``, which
    computes it by this same ``scipy.special.stdtrit``: importing ``scipy.stats`` would cost each sweep worker
    about a second)."""
    return float(special.stdtrit(df, 0.975))


def summary(values: list) -> dict:
    """{mean, ci_low, ci_high, n, values}: Student-t 95% CI over the non-null values, CI null when n < 2."""
    clean = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(clean)
    mean = float(np.mean(clean)) if n else None
    lo = hi = None
    if n >= 2:
        sd = float(np.std(clean, ddof=1))
        half = t_quantile_975(n - 1) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "n": n,
            "values": [None if v is None or not math.isfinite(v) else float(v) for v in values]}


def summarise(per_replicate: list[dict]) -> dict:
    """Nest the per-replicate metrics into {name: summary} with dotted names as nested objects."""
    names = list(per_replicate[0]) if per_replicate else list(METRIC_NAMES)
    nested: dict = {}
    for name in names:
        node = nested
        parts = name.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = summary([r.get(name) for r in per_replicate])
    return nested
