"""Scenario configuration: frozen dataclasses, TOML loading, validation and ``--set`` overrides.

Every field carries its unit, description and allowed range in ``dataclasses.field(metadata=...)``; the loader
walks the dataclasses, so a wrong type, a value out of range, a missing required field or an unknown key ends the
load with a :class:`ScenarioError` naming the file, the field path, the value and what is allowed.
``docs/scenario-reference.md`` is generated from the same metadata (``simulator reference``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ScenarioError",
    "Scenario",
    "load_scenario",
    "scenario_from_dict",
    "scenario_to_dict",
    "apply_overrides",
    "parse_override",
    "config_hash",
    "resolve_scenario_path",
    "bundled_scenarios",
    "bundled_sweeps",
]


class ScenarioError(ValueError):
    """A scenario (or an override) is invalid. The message is one line meant for the user."""


def spec(default: Any = dataclasses.MISSING, *, unit: str = "", doc: str, ge: float | None = None,
         le: float | None = None, gt: float | None = None, lt: float | None = None,
         choices: tuple | None = None, default_factory: Any = dataclasses.MISSING, min_len: int = 0) -> Any:
    """A dataclass field with the metadata the validator and the reference generator read."""
    meta = {"unit": unit, "doc": doc, "ge": ge, "le": le, "gt": gt, "lt": lt, "choices": choices, "min_len": min_len}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


# ----------------------------------------------------------------------------------------------------------------
# The scenario schema. Field names follow ../shared/model-spec.md.
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PopulationConfig:
    real_users: int = spec(9_000_000, unit="accounts", ge=1_000, le=2_000_000_000,
                           doc="Size of the real user population the scenario stands for (spec §1 scale). Shares "
                               "(bots, recruits) and follower fractions are taken of this world; money is reported "
                               "at this scale.")
    organic_users: int = spec(100_000, unit="accounts", ge=200, le=20_000_000,
                              doc="Organic users actually simulated (one row each). Recruited users are drawn from "
                                  "them; bots scale with this number, influencers and candidates do not.")
    topics: int = spec(16, unit="topics", ge=2, le=256,
                       doc="Number of content topics. Topic 0 is politics: every candidate-promoting post has it.")
    interest_concentration: float = spec(0.3, ge=0.01, le=100.0,
                                         doc="Dirichlet concentration of each user's interest vector over topics "
                                             "(small = a few strong interests).")
    mean_follows: float = spec(30.0, unit="accounts per user", ge=1.0, le=2_000.0,
                               doc="Mean number of ordinary accounts each user follows (candidates and influencers "
                                   "come on top, by their follower shares).")
    follow_homophily: float = spec(0.7, ge=0.0, le=1.0,
                                   doc="Probability that a follow edge goes to an account with the same leading "
                                       "candidate (homophily by leaning).")
    popularity_exponent: float = spec(1.5, ge=1.05, le=10.0,
                                      doc="Pareto shape of account popularity; smaller = heavier-tailed in-degree.")
    recent_signup_share: float = spec(0.02, unit="share of organic users", ge=0.0, le=1.0,
                                      doc="Organic users who signed up in the 60 days before day 0 (their history "
                                          "is short). Seen only by mitigations.")
    returning_share: float = spec(0.03, unit="share of organic users", ge=0.0, le=1.0,
                                  doc="Organic users returning after a dormant spell (≈2% of the 90 days before "
                                      "day 0 active). Seen only by mitigations.")


@dataclass(frozen=True)
class CandidatesConfig:
    names: tuple[str, ...] = spec(("target", "front_runner_a", "front_runner_b", "front_runner_c", "other"),
                                  doc="Candidate names, one official account each.", min_len=2)
    target: str = spec("target", doc="Name of the niche candidate the campaign promotes (must be in `names`).")
    baseline_support: tuple[float, ...] = spec((0.05, 0.22, 0.20, 0.16, 0.12), unit="share", gt=0.0, lt=1.0,
                                               doc="Mean support per candidate at day 0 (spec §2, §6); the rest of "
                                                   "the mass (here 0.25) is `undecided`. Sum must be < 1.")
    support_concentration: float = spec(3.0, ge=0.05, le=1_000.0,
                                        doc="Dirichlet concentration of individual support vectors around the "
                                            "baseline (small = polarised users).")
    follower_share: tuple[float, ...] = spec((0.02, 0.05, 0.05, 0.04, 0.02), unit="share of users", ge=0.0,
                                             le=1.0,
                                             doc="Followers of each candidate's official account as a share of "
                                                 "users, drawn mostly among its supporters.")
    posts_per_day: float = spec(2.0, unit="posts/day", ge=0.0, le=100.0,
                                doc="Posts per day by each official candidate account.")


@dataclass(frozen=True)
class ActivityConfig:
    daily_active_share: float = spec(0.6, unit="share", gt=0.0, le=1.0,
                                     doc="Probability that a user is active on a given day.")
    sessions_per_active_day: float = spec(4.0, unit="sessions/day", gt=0.0, le=48.0,
                                          doc="Mean app sessions of a user on an active day (spec §1: ≈4).")
    activity_dispersion: float = spec(0.5, ge=0.0, le=3.0,
                                      doc="Log-normal sigma of per-user activity rates (mean kept at 1).")
    diurnal_amplitude: float = spec(0.6, ge=0.0, le=0.95,
                                    doc="Amplitude of the daily activity cycle (0 = flat; peak at 21:00, trough at "
                                        "09:00 local time).")
    post_rate: float = spec(0.05, unit="posts/user/day", ge=0.0, le=50.0,
                            doc="Mean rate at which organic users post (spec §2: low).")
    political_post_share: float = spec(0.1, unit="share", ge=0.0, le=1.0,
                                       doc="Share of organic posts that promote a candidate, chosen from the "
                                           "author's support.")
    post_quality_sigma: float = spec(0.6, ge=0.0, le=3.0,
                                     doc="Log-normal sigma of a post's latent appeal (median 1); drives organic "
                                         "virality. Hidden from the platform.")


@dataclass(frozen=True)
class FeedConfig:
    feed_size: int = spec(10, unit="posts", ge=1, le=100, doc="Posts in one feed (one session).")
    max_post_age_hours: float = spec(72.0, unit="hours", gt=0.0, le=24.0 * 60,
                                     doc="Posts older than this are no longer distributed.")
    candidates_per_feed: int = spec(16, unit="posts", ge=1, le=1_000,
                                    doc="Out-of-network candidates retrieved per feed before ranking.")
    in_network_per_feed: int = spec(10, unit="posts", ge=0, le=1_000,
                                    doc="Newest in-network posts (new since the user's last session) considered "
                                        "per feed.")


@dataclass(frozen=True)
class EngagementConfig:
    watch: float = spec(0.30, unit="probability", ge=0.0, le=1.0,
                        doc="Base probability that an impression is watched to completion.")
    like: float = spec(0.06, unit="probability", ge=0.0, le=1.0, doc="Base probability of a like.")
    comment: float = spec(0.010, unit="probability", ge=0.0, le=1.0, doc="Base probability of a comment.")
    share: float = spec(0.008, unit="probability", ge=0.0, le=1.0, doc="Base probability of a share.")
    follow: float = spec(0.004, unit="probability", ge=0.0, le=1.0,
                         doc="Base probability of following the author.")
    interest_weight: float = spec(1.0, ge=0.0, le=5.0,
                                  doc="Exponent on the user's interest in the post's topic relative to their favourite topic "
                                      "(base rates are those of a post on the favourite topic).")
    alignment_weight: float = spec(3.0, ge=0.0, le=50.0,
                                   doc="Political posts: engagement multiplier is 0.2 + weight × the user's "
                                       "support for the post's candidate.")
    social_proof: float = spec(0.15, ge=0.0, le=5.0,
                               doc="Engagement multiplier grows by this much per decade of visible likes.")


@dataclass(frozen=True)
class RankerConfig:
    name: str = spec("for_you",
                     doc="`chronological`, `engagement`, `for_you`, `random`, or a dotted path "
                         "`package.module.Class` to a user ranker (see docs/rankers.md).")
    weight_watch: float = spec(0.5, ge=0.0, le=100.0, doc="Score weight of P(watch to completion).")
    weight_like: float = spec(1.0, ge=0.0, le=100.0, doc="Score weight of P(like).")
    weight_comment: float = spec(2.0, ge=0.0, le=100.0, doc="Score weight of P(comment).")
    weight_share: float = spec(3.0, ge=0.0, le=100.0, doc="Score weight of P(share).")
    prior_views: float = spec(20.0, unit="views", gt=0.0, le=1e6,
                              doc="Smoothing: pseudo-views at the population mean rate added to every post's "
                                  "observed rates.")
    follow_boost: float = spec(1.5, ge=0.0, le=100.0,
                               doc="`for_you`/`engagement`: score multiplier for in-network posts.")
    recency_half_life_hours: float = spec(12.0, unit="hours", gt=0.0, le=1e4,
                                          doc="`engagement`: half-life of the recency decay.")
    test_batch: int = spec(50, unit="impressions", ge=1, le=10_000_000,
                           doc="`for_you`: impressions of a new post's first test batch. The same at every world size: "
                               "a simulated post stands for `scale` real posts and a simulated impression for `scale` "
                               "real ones, so impressions per post do not scale (docs/model.md §2.4).")
    growth: float = spec(4.0, ge=1.0, le=100.0,
                         doc="`for_you`: each graduation multiplies the batch size by this.")
    graduation_threshold: float = spec(0.28, unit="weighted engagements/view", ge=0.0, le=100.0,
                                       doc="`for_you`: a batch graduates when its weighted engagement rate "
                                           "(score weights × observed engagements ÷ views in the stage) beats this.")
    max_stage: int = spec(6, unit="stages", ge=1, le=30,
                          doc="`for_you`: highest stage; a post that passes it keeps its last batch size.")
    test_slots: int = spec(2, unit="posts", ge=0, le=100,
                           doc="`for_you`: feed slots reserved for posts in their first test batch.")
    options: dict = spec(default_factory=dict,
                         doc="Free-form table passed as keyword arguments to a user ranker's constructor.")


@dataclass(frozen=True)
class BotConfig:
    bot_share: float = spec(0.003, unit="bots per organic user", ge=0.0, le=1.0,
                            doc="Bots per organic user (spec §2: 25,000 among ~9M ≈ 0.003).")
    dormancy_days: float = spec(2900.0, unit="days", ge=0.0, le=20_000.0,
                                doc="Age of the bot accounts at day 0 (registered in 2016).")
    dormant_activity: float = spec(0.01, unit="share of normal activity", ge=0.0, le=1.0,
                                   doc="Activity of a bot before activation, relative to an ordinary user.")
    activation_day: float = spec(17.0, unit="day", ge=0.0, le=10_000.0,
                                 doc="Day the bots wake up (17 = 13 days before the vote in a 30-day run).")
    posts_per_day: float = spec(0.5, unit="posts/bot/day", ge=0.0, le=100.0,
                                doc="Target posts per active bot per day.")
    burst_fraction: float = spec(0.5, unit="share of bots", ge=0.0, le=1.0,
                                 doc="Share of the bot network that engages each campaign post.")
    burst_window: float = spec(30.0, unit="minutes", gt=0.0, le=43_200.0,
                               doc="Bots engage uniformly within this many minutes of a post's creation.")
    burst_jitter: float = spec(10.0, unit="minutes", ge=0.0, le=43_200.0,
                               doc="Extra exponential delay (mean, minutes) added to each bot engagement.")
    like_rate: float = spec(1.0, unit="probability", ge=0.0, le=1.0, doc="A bursting bot likes with this probability.")
    comment_rate: float = spec(0.3, unit="probability", ge=0.0, le=1.0, doc="… comments with this probability.")
    share_rate: float = spec(0.3, unit="probability", ge=0.0, le=1.0, doc="… shares with this probability.")
    bot_cost: float = spec(2.0, unit="USD per bot", ge=0.0, le=1e6,
                           doc="Price of one bot account (real scale), counted in campaign spending.")


@dataclass(frozen=True)
class InfluencerConfig:
    count: int = spec(100, unit="accounts", ge=0, le=100_000,
                      doc="Paid influencers (kept as a count at every scale, spec §1).")
    combined_followers: float = spec(8_000_000.0, unit="followers (real scale)", ge=0.0, le=1e10,
                                     doc="Followers of all influencers together at real scale.")
    largest_followers: float = spec(1_100_000.0, unit="followers (real scale)", ge=0.0, le=1e10,
                                    doc="Followers of the largest influencer at real scale.")
    budget: float = spec(381_000.0, unit="USD", ge=0.0, le=1e10,
                         doc="Money spent on influencer posts over the run (spec §6).")
    cpm: float = spec(12.0, unit="USD per 1,000 followers per post", gt=0.0, le=1e5,
                      doc="Price of one paid post per thousand followers of the influencer.")
    undisclosed_share: float = spec(1.0, unit="share", ge=0.0, le=1.0,
                                    doc="Probability that a paid post carries no paid-partnership label.")
    start_day: float = spec(0.0, unit="day", ge=0.0, le=10_000.0,
                            doc="First day of paid posts; they are spread evenly until the vote.")
    posts_per_day: float = spec(1.0, unit="posts/day", ge=0.0, le=100.0,
                                doc="Unpaid (non-political) posts per influencer per day.")


@dataclass(frozen=True)
class RecruitConfig:
    recruited_share: float = spec(0.002, unit="share of organic users", ge=0.0, le=0.5,
                                  doc="Share of organic users recruited off-platform (spec §2).")
    recruit_day: float = spec(10.0, unit="day", ge=0.0, le=10_000.0, doc="Day the off-platform channel opens.")
    posts_per_day: float = spec(0.5, unit="posts/recruit/day", ge=0.0, le=100.0,
                                doc="Target posts per recruited user per day.")
    engagement_boost: float = spec(6.0, ge=1.0, le=1_000.0,
                                   doc="Multiplier on a recruit's engagement with target posts in its feed.")
    directed_share: float = spec(0.1, unit="share of recruits", ge=0.0, le=1.0,
                                 doc="Share of recruits who answer the call to engage each campaign post.")
    response_hours: float = spec(6.0, unit="hours", gt=0.0, le=720.0,
                                 doc="Mean (exponential) delay of a recruit's directed engagement.")


@dataclass(frozen=True)
class CampaignConfig:
    enabled: bool = spec(True, doc="false makes the campaign inert: its actors exist and draw the same random "
                                   "numbers but do nothing visible (spec §2).")
    bots: BotConfig = spec(default_factory=BotConfig, doc="Dormant bot accounts.")
    influencers: InfluencerConfig = spec(default_factory=InfluencerConfig, doc="Paid influencers.")
    recruits: RecruitConfig = spec(default_factory=RecruitConfig, doc="Recruited real users.")


@dataclass(frozen=True)
class SockPuppetConfig:
    count: int = spec(0, unit="accounts", ge=0, le=100_000,
                      doc="Sock-puppet probe accounts (an independent audit, as in the real case): new accounts with no "
                          "history, following nobody, that only scroll the feed and never engage, post or count in "
                          "the audience O. A count at every scale. 0 = no audit.")
    start_day: float = spec(0.0, unit="day", ge=0.0, le=10_000.0, doc="First day the probes scroll.")
    every_days: int = spec(1, unit="days", ge=1, le=10_000, doc="Days between two scrolling sessions.")
    hour: int = spec(20, unit="hour of day", ge=0, le=23, doc="Local hour of each scrolling session.")
    feeds_per_session: int = spec(3, unit="feeds", ge=1, le=1_000,
                                  doc="Feeds each probe scrolls through per session (3 feeds of 10 ≈ 10 minutes at "
                                      "20 s a video).")


@dataclass(frozen=True)
class OpinionConfig:
    enabled: bool = spec(True, doc="Whether engaged impressions move support (false makes support_shift null).")
    persuasion: float = spec(0.01, ge=0.0, le=1.0,
                             doc="Share of the remaining distance to the post's candidate moved per engaged "
                                 "political impression.")


# ----------------------------------------------------------------------------------------------------------------
# Mitigation stages (spec §4). One ``[[mitigations]]`` table each, in pipeline order; ``name`` picks the stage.
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MitigationConfig:
    """Fields every stage has. Subclasses add the parameters of one built-in stage."""

    name: str = spec("", doc="Built-in stage name or dotted path `package.module.Class` of a team's own stage.")
    start_day: float = spec(0.0, unit="day", ge=0.0, le=10_000.0,
                            doc="Day from which the stage runs (before it, it sees nothing and does nothing).")


@dataclass(frozen=True)
class DormancyDampeningConfig(MitigationConfig):
    new_account_days: float = spec(30.0, unit="days", ge=0.0, le=10_000.0,
                                   doc="An account registered less than this long ago is new: its engagement "
                                       "counts at `weight`.")
    dormant_max_active_days: int = spec(3, unit="days of 90", ge=0, le=90,
                                        doc="An account with at most this many active days in the 90 days before "
                                            "day 0 is dormant; from its first activity in the run it is on "
                                            "probation.")
    probation_days: float = spec(14.0, unit="days", gt=0.0, le=10_000.0,
                                 doc="How long after waking a dormant account's engagement counts at `weight`.")
    weight: float = spec(0.1, ge=0.0, le=1.0,
                         doc="How much a new or woken account's engagement (and play) counts in the platform's "
                             "ranking signals (0 = ignored, 1 = no dampening).")


@dataclass(frozen=True)
class CoordinationDetectionConfig(MitigationConfig):
    every_hours: float = spec(12.0, unit="hours", gt=0.0, le=24.0 * 30,
                              doc="How often the co-engagement graph is rebuilt and clustered (a batch job; the "
                                  "first run is one period after `start_day`).")
    window_hours: float = spec(24.0, unit="hours", gt=0.0, le=24.0 * 30,
                               doc="Engagement events (likes, comments, shares) of the last this many hours are "
                                   "used.")
    pair_window_minutes: float = spec(5.0, unit="minutes", gt=0.0, le=24.0 * 60,
                                      doc="Two accounts engaging the same post less than this far apart form a "
                                          "co-engagement pair.")
    neighbours: int = spec(8, unit="pairs per engagement", ge=1, le=1_000,
                           doc="Each engagement is paired with at most this many of the next engagements of the "
                               "same post (time order): a post with k engagers yields at most k × neighbours "
                               "pairs, never k².")
    min_shared_posts: int = spec(3, unit="posts", ge=1, le=10_000,
                                 doc="Two accounts are linked when they co-engaged at least this many distinct "
                                     "posts within the window.")
    min_links: int = spec(3, unit="accounts", ge=1, le=10_000,
                          doc="An account must be linked to at least this many others in its group (the group is "
                              "the `min_links`-core of the links): a chain of chance pairs is not a network.")
    min_cluster_size: int = spec(5, unit="accounts", ge=2, le=10_000_000,
                                 doc="Connected groups of linked accounts at least this large are flagged.")
    action: str = spec("demote", choices=("demote", "remove", "flag"),
                       doc="What happens to a flagged account: `demote` (its engagement stops counting and its "
                           "posts are not promoted out of network), `remove` (taken down), `flag` (recorded only).")


@dataclass(frozen=True)
class CircuitBreakerConfig(MitigationConfig):
    min_engagements: int = spec(20, unit="engagements", ge=1, le=10_000_000,
                                doc="A post needs at least this many first-hour likes, comments and shares before "
                                    "its velocity can trip the breaker.")
    max_engagements_per_view: float = spec(0.5, unit="engagements/view", gt=0.0, le=100.0,
                                           doc="First-hour likes + comments + shares per first-hour view above "
                                               "which a post's velocity is anomalous and it is held.")
    hold_hours: float = spec(6.0, unit="hours", gt=0.0, le=24.0 * 30,
                             doc="How long a held post waits before its delayed re-check; meanwhile it cannot "
                                 "graduate to wider (out-of-network) distribution.")
    release_rate: float = spec(0.08, unit="engagements/view", ge=0.0, le=100.0,
                               doc="At the re-check, a post is released if its likes + comments + shares per "
                                   "feed-served view (engagement from feed impressions only) reach this; otherwise "
                                   "it is kept out of out-of-network distribution and its author flagged.")


@dataclass(frozen=True)
class PaidLabelingConfig(MitigationConfig):
    min_follower_share: float = spec(0.0025, unit="share of accounts", ge=0.0, le=1.0,
                                     doc="Authors followed by at least this share of all accounts are high-reach "
                                         "creators whose political posts are checked (0.0025 ≈ 22,000 of 9M).")
    max_political_share: float = spec(0.5, unit="share of posts", ge=0.0, le=1.0,
                                      doc="A political post by a high-reach author whose earlier posts in the run "
                                          "were less political than this looks paid (a sudden political post by an "
                                          "apolitical creator).")
    min_history_posts: int = spec(5, unit="posts", ge=0, le=100_000,
                                  doc="Authors with fewer earlier posts in the run are not judged.")


@dataclass(frozen=True)
class TakedownConfig(MitigationConfig):
    every_hours: float = spec(24.0, unit="hours", gt=0.0, le=24.0 * 30,
                              doc="Takedowns happen this often (from `start_day`).")
    remove_flagged_by: tuple[str, ...] = spec(("coordination_detection",),
                                              doc="Stages whose flagged accounts each takedown removes (besides the "
                                                  "clusters it detects itself).")
    detect: str = spec("auto", choices=("auto", "always", "never"),
                       doc="Its own co-engagement clustering at each takedown (with the parameters below): `auto` "
                           "runs it only when no stage named in `remove_flagged_by` is in the pipeline (so the "
                           "stage works alone, and does not repeat a detector's work), `always`, or `never`.")
    window_hours: float = spec(24.0, unit="hours", gt=0.0, le=24.0 * 30,
                               doc="Own detection: engagement events of the last this many hours.")
    pair_window_minutes: float = spec(5.0, unit="minutes", gt=0.0, le=24.0 * 60,
                                      doc="Own detection: pair window (as in coordination_detection).")
    neighbours: int = spec(8, unit="pairs per engagement", ge=1, le=1_000,
                           doc="Own detection: pairs per engagement (as in coordination_detection).")
    min_shared_posts: int = spec(3, unit="posts", ge=1, le=10_000,
                                 doc="Own detection: shared posts that link two accounts.")
    min_links: int = spec(3, unit="accounts", ge=1, le=10_000,
                          doc="Own detection: links each account needs within its group (as in "
                              "coordination_detection).")
    min_cluster_size: int = spec(10, unit="accounts", ge=2, le=10_000_000,
                                 doc="Own detection: smallest network taken down.")
    max_accounts: int = spec(0, unit="accounts", ge=0, le=1_000_000_000,
                             doc="Most accounts removed per takedown, largest clusters first (0 = no limit).")


@dataclass(frozen=True)
class RateLimitConfig(MitigationConfig):
    max_per_hour: int = spec(6, unit="engagements/hour", ge=1, le=1_000_000,
                             doc="Likes, comments and shares per account per hour that count; the rest are ignored "
                                 "by the platform (simulated scale: a bot's rate grows with the world, "
                                 "docs/model.md).")
    flag_after: int = spec(3, unit="hours", ge=1, le=100_000,
                           doc="An account that hits the limit in this many separate hours is flagged.")


@dataclass(frozen=True)
class UserMitigationConfig(MitigationConfig):
    """A team's own stage, loaded from the dotted path in `name` (docs/mitigations.md)."""

    options: dict = spec(default_factory=dict,
                         doc="Keyword arguments passed to a team's own stage class (see docs/mitigations.md).")


#: Built-in stages by name: the parameter dataclass each ``[[mitigations]]`` table is validated against.
MITIGATION_CONFIGS: dict[str, type] = {
    "dormancy_dampening": DormancyDampeningConfig,
    "coordination_detection": CoordinationDetectionConfig,
    "circuit_breaker": CircuitBreakerConfig,
    "paid_labeling": PaidLabelingConfig,
    "takedown": TakedownConfig,
    "rate_limit": RateLimitConfig,
}


@dataclass(frozen=True)
class Scenario:
    name: str = spec("romania_2024", doc="Scenario name, used for the default results folder.")
    description: str = spec("TikTok campaign for a niche candidate: dormant bots woken 13 days before the vote, "
                            "$381,000 of undisclosed influencer posts, recruited real users.", doc="Free text.")
    days: int = spec(30, unit="days", ge=1, le=365, doc="Length of the run; the vote is at the end of the last day.")
    step_hours: int = spec(1, unit="hours", choices=(1, 2, 3, 4, 6, 8, 12, 24), doc="Length of one step.")
    seed: int = spec(2024, ge=0, le=2**63 - 1, doc="Root seed when the command line gives none.")
    population: PopulationConfig = spec(default_factory=PopulationConfig, doc="The simulated world.")
    candidates: CandidatesConfig = spec(default_factory=CandidatesConfig, doc="Candidates and their support.")
    activity: ActivityConfig = spec(default_factory=ActivityConfig, doc="How often users open the app and post.")
    feed: FeedConfig = spec(default_factory=FeedConfig, doc="Feed size and candidate retrieval.")
    engagement: EngagementConfig = spec(default_factory=EngagementConfig, doc="User responses to impressions.")
    ranker: RankerConfig = spec(default_factory=RankerConfig, doc="The feed ranker.")
    campaign: CampaignConfig = spec(default_factory=CampaignConfig, doc="The coordinated campaign.")
    opinion: OpinionConfig = spec(default_factory=OpinionConfig, doc="Opinion dynamics.")
    sock_puppets: SockPuppetConfig = spec(default_factory=SockPuppetConfig,
                                          doc="A sock-puppet audit: probe accounts that scroll the feed and record "
                                              "what partisan content it shows them.")
    mitigations: tuple[MitigationConfig, ...] = spec(
        default_factory=tuple,
        doc="Mitigation stages, one `[[mitigations]]` table each, applied in this order (spec §4). `name` is "
            "`dormancy_dampening`, `coordination_detection`, `circuit_breaker`, `paid_labeling`, `takedown`, "
            "`rate_limit` or a dotted path to a team's own stage; every other key is a parameter of that stage "
            "(see the stage sections below and docs/mitigations.md).")

    # ------------------------------------------------------------------ derived quantities (not config fields)
    @property
    def scale(self) -> float:
        """Real accounts represented by one simulated organic user."""
        return self.population.real_users / self.population.organic_users

    @property
    def steps_per_day(self) -> int:
        return 24 // self.step_hours

    @property
    def n_steps(self) -> int:
        return self.days * self.steps_per_day


BUILTIN_RANKERS = ("chronological", "engagement", "for_you", "random")

# ----------------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, default=str) if isinstance(value, (list, tuple, dict)) else str(value)


def _bound(x: float) -> str:
    """A bound written exactly: integers in full (with _ separators), other numbers in shortest repr."""
    if float(x).is_integer() and abs(x) < 2**63:
        return f"{int(x):_}"
    return repr(float(x))


def _range_text(meta: dict) -> str:
    parts = []
    if meta.get("ge") is not None:
        parts.append(f"≥ {_bound(meta['ge'])}")
    if meta.get("gt") is not None:
        parts.append(f"> {_bound(meta['gt'])}")
    if meta.get("le") is not None:
        parts.append(f"≤ {_bound(meta['le'])}")
    if meta.get("lt") is not None:
        parts.append(f"< {_bound(meta['lt'])}")
    if meta.get("choices") is not None:
        parts.append("one of " + ", ".join(_fmt(c) for c in meta["choices"]))
    return " and ".join(parts)


def allowed_text(f: dataclasses.Field, t: Any) -> str:
    """Human-readable 'what is allowed' for a field of type ``t``, shared by errors and the reference."""
    kind, inner = _kind(t)
    base = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
            "dict": "a table", "list": f"a list of {'numbers' if inner is float else 'strings'}",
            "stages": "a list of tables ([[mitigations]]), each with a `name`"}.get(kind, kind)
    rng = _range_text(f.metadata)
    if kind == "list" and rng:
        rng = "each " + rng
    return f"{base} {rng}".strip()


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """The dataclass fields of ``cls`` with their resolved types."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _kind(t: Any) -> tuple[str, Any]:
    if dataclasses.is_dataclass(t):
        return "section", t
    origin = typing.get_origin(t)
    if origin is tuple:
        inner = typing.get_args(t)[0]
        if isinstance(inner, type) and issubclass(inner, MitigationConfig):
            return "stages", inner
        return "list", inner
    if t is dict or origin is dict:
        return "dict", None
    return {int: "int", float: "float", bool: "bool", str: "str"}[t], None


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, value: Any, allowed: str) -> typing.NoReturn:
        raise ScenarioError(f"{self.source}: {path} = {_fmt(value)}: expected {allowed}")


def _check_number(ctx: _Ctx, path: str, value: Any, want: Any, f: dataclasses.Field, t: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        ctx.fail(path, value, allowed_text(f, t))
    if want is int:
        if isinstance(value, float):
            if not value.is_integer():
                ctx.fail(path, value, allowed_text(f, t))
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            ctx.fail(path, value, allowed_text(f, t))
    m = f.metadata
    ok = ((m.get("ge") is None or value >= m["ge"]) and (m.get("gt") is None or value > m["gt"])
          and (m.get("le") is None or value <= m["le"]) and (m.get("lt") is None or value < m["lt"])
          and (m.get("choices") is None or value in m["choices"]))
    if not ok:
        ctx.fail(path, value, allowed_text(f, t))
    return value


def _build(cls: type, raw: Any, ctx: _Ctx, prefix: str) -> Any:
    if not isinstance(raw, dict):
        ctx.fail(prefix.rstrip(".") or "(top level)", raw, "a table")
    fields = {f.name: (f, t) for f, t in _fields(cls)}
    for key in raw:
        if key not in fields:
            known = ", ".join(sorted(fields))
            path, value = prefix + key, raw[key]
            while isinstance(value, dict) and len(value) == 1:   # name the full path of a --set into nowhere
                (sub, value), = value.items()
                path += "." + sub
            raise ScenarioError(f"{ctx.source}: {path}: unknown field ({prefix}{key} is not a field; allowed at "
                                f"this level: {known})")
    kwargs = {}
    for name, (f, t) in fields.items():
        path = prefix + name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ScenarioError(f"{ctx.source}: {path}: required field missing ({allowed_text(f, t)})")
            continue
        value = raw[name]
        kind, inner = _kind(t)
        if kind == "section":
            kwargs[name] = _build(inner, value, ctx, path + ".")
        elif kind in ("int", "float"):
            kwargs[name] = _check_number(ctx, path, value, int if kind == "int" else float, f, t)
        elif kind == "bool":
            if not isinstance(value, bool):
                ctx.fail(path, value, "true or false")
            kwargs[name] = value
        elif kind == "str":
            if not isinstance(value, str) or (f.metadata.get("choices") and value not in f.metadata["choices"]):
                ctx.fail(path, value, allowed_text(f, t))
            kwargs[name] = value
        elif kind == "dict":
            if not isinstance(value, dict):
                ctx.fail(path, value, "a table")
            kwargs[name] = dict(value)
        elif kind == "stages":
            kwargs[name] = _build_stages(value, ctx, path)
        elif kind == "list":
            if not isinstance(value, (list, tuple)) or len(value) < f.metadata.get("min_len", 0):
                ctx.fail(path, value, allowed_text(f, t) + (f" with at least {f.metadata['min_len']} items"
                                                        if f.metadata.get("min_len") else ""))
            items = []
            for i, item in enumerate(value):
                if inner is str:
                    if not isinstance(item, str) or not item:
                        ctx.fail(f"{path}[{i}]", item, "a non-empty string")
                    items.append(item)
                else:
                    items.append(_check_number(ctx, f"{path}[{i}]", item, inner, f, t))
            kwargs[name] = tuple(items)
    return cls(**kwargs)


def _build_stages(value: Any, ctx: _Ctx, path: str) -> tuple:
    """``[[mitigations]]`` tables: each validated against the parameters of the stage its ``name`` picks."""
    if not isinstance(value, (list, tuple)):
        ctx.fail(path, value, "a list of tables ([[mitigations]]), each with a `name`")
    allowed = "one of " + ", ".join(MITIGATION_CONFIGS) + " or a dotted path package.module.Class"
    stages = []
    for i, table in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(table, dict):
            ctx.fail(where, table, "a table with a `name`")
        if "name" not in table:
            raise ScenarioError(f"{ctx.source}: {where}.name: required field missing ({allowed})")
        name = table["name"]
        if not isinstance(name, str) or not (name in MITIGATION_CONFIGS or _is_dotted_path(name)):
            ctx.fail(f"{where}.name", name, allowed)
        cls = MITIGATION_CONFIGS.get(name, UserMitigationConfig)
        stage = _build(cls, table, ctx, where + ".")
        if cls is UserMitigationConfig:
            _check_user_stage(stage, ctx, where)
        if isinstance(stage, TakedownConfig):
            for j, source in enumerate(stage.remove_flagged_by):
                if not (source in MITIGATION_CONFIGS or _is_dotted_path(source)):
                    ctx.fail(f"{where}.remove_flagged_by[{j}]", source, allowed)
        stages.append(stage)
    return tuple(stages)


def _check_user_stage(stage: "UserMitigationConfig", ctx: _Ctx, where: str) -> None:
    from .mitigations import load_stage_class  # a team's stage must import and have the documented method

    try:
        cls = load_stage_class(stage.name)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        ctx.fail(f"{where}.name", stage.name, f"an importable mitigation stage class ({exc})")
    _check_options(cls, stage.options, ctx, f"{where}.options", stage.name)


def _check_options(cls: type, options: dict, ctx: _Ctx, path: str, name: str) -> None:
    """A user class must accept ``(context, **options)``."""
    import inspect

    try:
        inspect.signature(cls).bind(None, **options)
    except TypeError as exc:
        ctx.fail(path, options, f"keyword arguments {name} accepts ({exc})")
    except ValueError:
        pass   # no introspectable signature: the constructor will judge


def _cross_checks(s: Scenario, ctx: _Ctx) -> None:
    c = s.candidates
    n = len(c.names)
    if len(set(c.names)) != n:
        ctx.fail("candidates.names", list(c.names), "distinct names")
    if c.target not in c.names:
        ctx.fail("candidates.target", c.target, "one of " + ", ".join(map(repr, c.names)))
    for fname in ("baseline_support", "follower_share"):
        v = getattr(c, fname)
        if len(v) != n:
            ctx.fail(f"candidates.{fname}", list(v), f"{n} values, one per name in candidates.names")
    if sum(c.baseline_support) >= 1.0:
        ctx.fail("candidates.baseline_support", list(c.baseline_support), "values summing to less than 1 "
                                                                           "(the rest is undecided)")
    if s.campaign.influencers.largest_followers > s.campaign.influencers.combined_followers:
        ctx.fail("campaign.influencers.largest_followers", s.campaign.influencers.largest_followers,
                 f"a number ≤ campaign.influencers.combined_followers ({s.campaign.influencers.combined_followers:g})")
    if s.campaign.influencers.largest_followers > s.population.real_users:
        ctx.fail("campaign.influencers.largest_followers", s.campaign.influencers.largest_followers,
                 f"a number ≤ population.real_users ({s.population.real_users})")
    if s.population.real_users < s.population.organic_users:
        ctx.fail("population.real_users", s.population.real_users,
                 f"an integer ≥ population.organic_users ({s.population.organic_users})")
    name = s.ranker.name
    if name not in BUILTIN_RANKERS and not _is_dotted_path(name):
        ctx.fail("ranker.name", name, "one of " + ", ".join(BUILTIN_RANKERS) + " or a dotted path package.module.Class")
    if s.ranker.options and name in BUILTIN_RANKERS:
        ctx.fail("ranker.options", s.ranker.options, "an empty table for a built-in ranker")
    if not _is_dotted_path(name) or name in BUILTIN_RANKERS:
        return
    from .ranking import load_ranker_class  # a user ranker must import and have the documented method

    try:
        cls = load_ranker_class(name)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        ctx.fail("ranker.name", name, f"an importable ranker class ({exc})")
    _check_options(cls, s.ranker.options, ctx, "ranker.options", name)


def _is_dotted_path(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and all(p.isidentifier() for p in parts)


def scenario_from_dict(raw: dict, source: str = "scenario") -> Scenario:
    ctx = _Ctx(source)
    s = _build(Scenario, raw, ctx, "")
    _cross_checks(s, ctx)
    return s


def scenario_to_dict(s: Any) -> Any:
    """Plain (JSON/TOML-able) nested dict of a scenario, every field present."""
    if dataclasses.is_dataclass(s):
        return {f.name: scenario_to_dict(getattr(s, f.name)) for f in dataclasses.fields(s)}
    if isinstance(s, tuple):
        return [scenario_to_dict(v) for v in s]
    if isinstance(s, dict):
        return {k: scenario_to_dict(v) for k, v in s.items()}
    return s


def config_hash(s: Scenario) -> str:
    text = json.dumps(scenario_to_dict(s), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Overrides
# ----------------------------------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """``path=value`` with the value parsed as a TOML literal; a bare word that is not one is a string."""
    if "=" not in text:
        raise ScenarioError(f"--set {text!r}: expected path=value, e.g. --set population.organic_users=20000")
    path, _, literal = text.partition("=")
    path = path.strip()
    if not path or not all(p.isidentifier() for p in path.split(".")):
        raise ScenarioError(f"--set {text!r}: {path!r} is not a field path like section.field")
    literal = literal.strip()
    try:
        value = tomllib.loads(f"v = {literal}")["v"]
    except tomllib.TOMLDecodeError:
        value = literal
    if isinstance(value, (datetime.date, datetime.time)):   # no field is a date: a date-like word is text
        value = literal
    return path, value


def apply_overrides(raw: dict, overrides: list[tuple[str, Any]]) -> dict:
    """Return a copy of ``raw`` with each dotted path set. Unknown paths are caught by validation."""
    out = copy.deepcopy(raw)
    for path, value in overrides:
        node = out
        parts = path.split(".")
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:   # an unknown section is reported by validation, with the file and the full path
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ScenarioError(f"--set {path}: {'.'.join(parts[: i + 1])} is a field, not a section")
            node = nxt
        node[parts[-1]] = value
    return out


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------


def _bundled_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    # Installed wheels carry experiments/*.toml as simulator/scenarios/ (pyproject force-include); a source
    # checkout or an editable install reads the repository's experiments/ folder itself.
    return [here / "scenarios", here.parent / "experiments"]


def _bundled_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in _bundled_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                found.setdefault(p.stem, p)
    return found


def _is_sweep_file(path: Path) -> bool:
    """Sweep files (docs/sweeps.md) live beside the scenarios in experiments/; they have a [parameters] table."""
    try:
        with open(path, "rb") as fh:
            return "parameters" in tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return False


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario files by name (``experiments/*.toml`` that are not sweep files)."""
    return {name: p for name, p in _bundled_files().items() if not _is_sweep_file(p)}


def bundled_sweeps() -> dict[str, Path]:
    """Bundled sweep files (the named experiments) by name."""
    return {name: p for name, p in _bundled_files().items() if _is_sweep_file(p)}


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    stem = p.name[:-5] if p.name.endswith(".toml") else p.name
    bundled = bundled_scenarios()
    if stem in bundled and (p.parent == Path(".") or not p.exists()):
        return bundled[stem]
    names = ", ".join(sorted(bundled)) or "none"
    hint = f"; {stem} is a sweep: simulator sweep {stem}" if stem in bundled_sweeps() else ""
    raise ScenarioError(f"{name_or_path}: no such scenario file (bundled scenarios: {names}){hint}")


def read_scenario_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror})") from None


def load_scenario(name_or_path: str | Path = "romania_2024", overrides: list[str] | None = None) -> Scenario:
    path = resolve_scenario_path(name_or_path)
    raw = read_scenario_toml(path)
    parsed = [parse_override(o) for o in overrides or []]
    raw = apply_overrides(raw, parsed)
    source = str(path) + (" (with --set)" if parsed else "")
    return scenario_from_dict(raw, source)


def field_reference_rows(cls: type = Scenario, prefix: str = "") -> list[dict]:
    """Flattened (path, unit, default, allowed, doc) rows for the generated reference."""
    rows = []
    for f, t in _fields(cls):
        kind, inner = _kind(t)
        path = prefix + f.name
        if kind == "section":
            rows.append({"path": path, "section": True, "doc": f.metadata["doc"]})
            rows.extend(field_reference_rows(inner, path + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append({"path": path, "section": False, "unit": f.metadata["unit"], "default": scenario_to_dict(default),
                     "allowed": allowed_text(f, t), "doc": f.metadata["doc"]})
        if kind == "stages":   # one section per built-in stage: the keys its [[mitigations]] table takes
            for name, stage_cls in list(MITIGATION_CONFIGS.items()) + [("package.module.Class",
                                                                         UserMitigationConfig)]:
                rows.append({"path": path, "section": True, "heading": f'[[{path}]] name = "{name}"',
                             "doc": (stage_cls.__doc__ or "").strip() if stage_cls is UserMitigationConfig
                             else f"Parameters of the `{name}` stage (docs/mitigations.md)."})
                rows.extend(r for r in field_reference_rows(stage_cls, "") if r["path"] != "name")
    return rows
