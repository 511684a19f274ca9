"""The account population: one row per account, and the follow graph as a sparse matrix.

Rows are laid out as ``[organic users (recruits among them) | candidates | influencers | bots]``. Ground truth
(true kind, real interests, support) lives here and is read by the world's actors and by the metrics; the
platform sees accounts only through :class:`simulator.platform.PlatformView`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import scipy.sparse as sp

from . import kernels
from .config import Scenario

HOURS_PER_DAY = 24.0


class Kind(IntEnum):
    """True kind of an account: ground truth for scoring, never visible to the platform."""

    ORGANIC = 0
    RECRUITED = 1
    BOT = 2
    INFLUENCER = 3
    CANDIDATE = 4
    PROBE = 5          # a sock-puppet audit account: scrolls, never engages, not in O


#: Attribution routes of spec §5, in column order of every per-route array.
ROUTES = ("organic", "recruited", "bot", "paid")
#: Route credited for an account of each kind (candidates' official accounts are authentic: organic; probes never
#: engage and are credited as organic for completeness).
ROUTE_OF_KIND = np.array([0, 1, 2, 3, 0, 0], dtype=np.int8)


def influencer_followers(count: int, combined: float, largest: float) -> np.ndarray:
    """Real-scale follower counts of ``count`` influencers: a Zipf-like law f_i = largest·(i+1)^-a whose sum is
    ``combined`` (a found by bisection), so the largest has ``largest`` followers (spec §6: 1.1M of 8M)."""
    if count == 0:
        return np.zeros(0)
    if count == 1 or largest * count <= combined:
        return np.full(count, combined / count)
    ranks = np.arange(1, count + 1, dtype=float)
    lo, hi = 0.0, 20.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if (largest * kernels.powers(ranks, -mid)).sum() > combined:
            lo = mid
        else:
            hi = mid
    return largest * kernels.powers(ranks, -hi)


@dataclass
class FollowGraph:
    """Who follows whom: CSR matrix, row = follower, column = followee. New follows are buffered and merged daily."""

    matrix: sp.csr_matrix
    _pending_rows: list
    _pending_cols: list

    @classmethod
    def from_edges(cls, n: int, rows: np.ndarray, cols: np.ndarray) -> "FollowGraph":
        g = cls(sp.csr_matrix((n, n), dtype=np.int8), [], [])
        g.matrix = _edges_to_csr(n, rows, cols)
        return g

    def add(self, followers: np.ndarray, followees: np.ndarray) -> None:
        if followers.size:
            self._pending_rows.append(followers.astype(np.int32))
            self._pending_cols.append(followees.astype(np.int32))

    def merge_pending(self) -> int:
        """Add the buffered follows to the matrix; returns how many edges were new."""
        if not self._pending_rows:
            return 0
        before = self.matrix.nnz
        n = self.matrix.shape[0]
        added = _edges_to_csr(n, np.concatenate(self._pending_rows), np.concatenate(self._pending_cols))
        self._pending_rows, self._pending_cols = [], []
        if before + added.nnz < 2**31:
            # Both are canonical (sorted rows, no repeated edge): one compiled merge of their rows gives the union.
            indptr, indices = kernels.csr_union(*_csr_int32(self.matrix), *_csr_int32(added))
            merged = sp.csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(n, n))
            merged.has_sorted_indices = True
            merged.has_canonical_format = True
        else:   # beyond int32 row pointers: SciPy's sum (an edge in both has data 2, reset to 1 below)
            merged = (self.matrix + added).tocsr()
            merged.sum_duplicates()
            merged.sort_indices()
            merged.data[:] = 1
        self.matrix = _read_only_csr(merged)
        return self.matrix.nnz - before


def _edges_to_csr(n: int, rows: np.ndarray, cols: np.ndarray) -> sp.csr_matrix:
    keep = rows != cols
    m = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.int8), (rows[keep], cols[keep])), shape=(n, n))
    m.sum_duplicates()
    m.data[:] = 1
    m.sort_indices()
    return _read_only_csr(m)


def _csr_int32(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of ``m`` as int32 arrays (SciPy's own choice below 2^31 edges), read-only."""
    out = []
    for a in (m.indptr, m.indices):
        a = a.astype(np.int32, copy=False)
        if a.flags.writeable:
            a = a.view()
            a.flags.writeable = False
        out.append(a)
    return out[0], out[1]


def _read_only_csr(m: sp.csr_matrix) -> sp.csr_matrix:
    for a in (m.data, m.indices, m.indptr):   # the platform reads this matrix; nobody writes it in place
        a.flags.writeable = False
    return m


@dataclass
class Population:
    """All accounts of one world. Arrays have one row per account unless named ``audience_*``."""

    kind: np.ndarray                 # int8 Kind, ground truth
    n_audience: int                  # rows [0, n_audience) are people who open the app (organic + recruited)
    candidate_rows: np.ndarray       # row of each candidate's official account, in candidates.names order
    influencer_rows: np.ndarray
    bot_rows: np.ndarray
    recruit_rows: np.ndarray
    interests: np.ndarray            # float32 (n, topics), rows sum to 1; ground truth tastes
    interest_estimate: np.ndarray    # float32 (n_audience, topics): the platform's inferred profile (observable)
    support: np.ndarray              # float64 (n_audience, n_candidates + 1), last column = undecided
    start_support: np.ndarray        # copy of support at day 0
    leading: np.ndarray              # int8 argmax of start support per account (-1 = undecided), homophily group
    activity_rate: np.ndarray        # float32 relative session rate of audience users (mean 1)
    registered_hours: np.ndarray     # float64 registration time in hours relative to day 0 (observable)
    prior_active_days: np.ndarray    # int16 active days in the 90 days before day 0 (observable history)
    influencer_real_followers: np.ndarray
    follows: FollowGraph
    probe_rows: np.ndarray = None    # sock-puppet accounts: the last audience rows (none by default)

    @property
    def n_people(self) -> int:
        """Audience rows that are people (organic users and recruits): the rows ``[0, n_people)``."""
        return self.n_audience - (0 if self.probe_rows is None else self.probe_rows.size)

    @property
    def n(self) -> int:
        return self.kind.shape[0]

    @property
    def audience_mask_o(self) -> np.ndarray:
        """The audience O of spec §5: organic users that were not recruited (rows [0, n_audience))."""
        return self.kind[: self.n_audience] == Kind.ORGANIC


def build_population(s: Scenario, rng: np.random.Generator) -> Population:
    """Draw a world. Every draw comes from ``rng`` (the ``population`` stream) in a fixed order."""
    pop, cand = s.population, s.candidates
    n_org = pop.organic_users
    n_cand = len(cand.names)
    inf = s.campaign.influencers
    n_inf = inf.count
    n_bots = int(round(s.campaign.bots.bot_share * n_org))
    n = n_org + n_cand + n_inf + n_bots
    c0, i0, b0 = n_org, n_org + n_cand, n_org + n_cand + n_inf
    candidate_rows = np.arange(c0, i0)
    influencer_rows = np.arange(i0, b0)
    bot_rows = np.arange(b0, n)

    kind = np.zeros(n, dtype=np.int8)
    kind[candidate_rows] = Kind.CANDIDATE
    kind[influencer_rows] = Kind.INFLUENCER
    kind[bot_rows] = Kind.BOT
    n_recruits = int(round(s.campaign.recruits.recruited_share * n_org))
    recruit_rows = np.sort(rng.choice(n_org, size=n_recruits, replace=False)) if n_recruits else np.zeros(0, int)
    kind[recruit_rows] = Kind.RECRUITED

    # Interests: Dirichlet tastes for everyone; bots and candidates are political.
    k = pop.topics
    interests = rng.dirichlet(np.full(k, pop.interest_concentration), size=n).astype(np.float32)
    political = np.zeros(k, dtype=np.float32)
    political[0] = 1.0
    interests[candidate_rows] = political
    interests[bot_rows] = political
    # The platform's profile of each user: the truth seen through noise (learned from history before day 0).
    noise = rng.dirichlet(np.full(k, 1.0), size=n_org).astype(np.float32)
    interest_estimate = 0.8 * interests[:n_org] + 0.2 * noise

    # Support over candidates + undecided around the baseline; recruits lean to the target.
    base = np.array(list(cand.baseline_support) + [1.0 - sum(cand.baseline_support)])
    support = rng.dirichlet(base * cand.support_concentration, size=n_org)
    support = np.clip(support, 1e-9, None)
    support /= support.sum(axis=1, keepdims=True)
    target = cand.names.index(cand.target)
    if n_recruits:
        towards = np.zeros(n_cand + 1)
        towards[target] = 1.0
        support[recruit_rows] = 0.3 * support[recruit_rows] + 0.7 * towards
    leading = np.full(n, -1, dtype=np.int8)
    lead_org = np.argmax(support, axis=1)
    leading[:n_org] = np.where(lead_org == n_cand, -1, lead_org)
    leading[candidate_rows] = np.arange(n_cand)
    leading[bot_rows] = target

    act = s.activity
    sigma = act.activity_dispersion
    activity_rate = rng.lognormal(-0.5 * sigma * sigma, sigma, size=n_org).astype(np.float32)

    # Observable history. Organic accounts registered over the last 8 years; bots dormancy_days ago.
    registered = -rng.uniform(30, 8 * 365, size=n) * HOURS_PER_DAY
    bots = s.campaign.bots
    registered[bot_rows] = -(bots.dormancy_days + rng.uniform(0, 30, size=n_bots)) * HOURS_PER_DAY
    prior = rng.binomial(90, act.daily_active_share * np.minimum(1.0, activity_rate), size=n_org)
    prior_active = np.zeros(n, dtype=np.int16)
    prior_active[:n_org] = prior
    prior_active[candidate_rows] = 90
    prior_active[influencer_rows] = 90
    prior_active[bot_rows] = rng.binomial(90, min(1.0, act.daily_active_share * bots.dormant_activity), size=n_bots)

    # ---------------------------------------------------------------- follow graph
    rows, cols = [], []
    # 1. Ordinary follows: heavy-tailed popularity, homophilous by leading candidate.
    popularity = rng.pareto(pop.popularity_exponent, size=n_org) + 1.0
    out_deg = rng.poisson(rng.lognormal(math.log(pop.mean_follows) - 0.5, 1.0, size=n_org))
    follower = np.repeat(np.arange(n_org, dtype=np.int32), out_deg)
    m = follower.size
    groups = leading[:n_org].astype(np.int64) + 1  # 0 = undecided
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    cum = np.cumsum(popularity[order])
    n_groups = n_cand + 1
    g_start = np.searchsorted(g_sorted, np.arange(n_groups), side="left")
    g_end = np.searchsorted(g_sorted, np.arange(n_groups), side="right")
    cum0 = np.concatenate([[0.0], cum])
    same = rng.random(m) < pop.follow_homophily
    u = rng.random(m)
    g_of = groups[follower]
    lo = np.where(same, cum0[g_start[g_of]], 0.0)
    hi = np.where(same, cum0[g_end[g_of]], cum0[-1])
    pick = np.searchsorted(cum, lo + u * (hi - lo), side="right")
    pick = np.minimum(pick, n_org - 1)
    rows.append(follower)
    cols.append(order[pick].astype(np.int32))
    # 2. Candidates' official accounts, mostly followed by their supporters.
    mean_support = support[:, :n_cand].mean(axis=0)
    for c in range(n_cand):
        p = np.clip(cand.follower_share[c] * support[:, c] / mean_support[c], 0.0, 1.0)
        who = np.flatnonzero(rng.random(n_org) < p).astype(np.int32)
        rows.append(who)
        cols.append(np.full(who.size, candidate_rows[c], dtype=np.int32))
    # 3. Influencers: follower shares kept at real-scale fractions (spec §1).
    real_followers = influencer_followers(n_inf, inf.combined_followers, inf.largest_followers)
    shares = np.minimum(real_followers / pop.real_users, 1.0)
    for i in range(n_inf):
        who = np.flatnonzero(rng.random(n_org) < shares[i]).astype(np.int32)
        rows.append(who)
        cols.append(np.full(who.size, influencer_rows[i], dtype=np.int32))
    # 4. Bots follow each other, the target's account and the influencers; few organic users follow bots.
    if n_bots:
        per_bot = min(20, n_bots - 1)
        if per_bot > 0:
            rows.append(np.repeat(bot_rows, per_bot).astype(np.int32))
            cols.append(rng.choice(bot_rows, size=n_bots * per_bot).astype(np.int32))
        rows.append(bot_rows.astype(np.int32))
        cols.append(np.full(n_bots, candidate_rows[target], dtype=np.int32))
        if n_inf:
            rows.append(np.repeat(bot_rows, n_inf).astype(np.int32))
            cols.append(np.tile(influencer_rows, n_bots).astype(np.int32))
        n_org_followers = rng.poisson(0.5, size=n_bots)
        rows.append(rng.integers(0, n_org, size=int(n_org_followers.sum())).astype(np.int32))
        cols.append(np.repeat(bot_rows, n_org_followers).astype(np.int32))
    follows = FollowGraph.from_edges(n, np.concatenate(rows), np.concatenate(cols))

    # Ordinary churn in the organic history, drawn last so that every earlier draw is unchanged: recent sign-ups
    # (registered 0-60 days before day 0, active at most since then) and users returning after a dormant spell
    # (few active days in the 90 before day 0). Only mitigations read account history: they are the honest
    # false positives of age and dormancy rules.
    recent = rng.random(n_org) < pop.recent_signup_share
    age = rng.uniform(0.0, 60.0, size=n_org)
    registered[:n_org] = np.where(recent, -age * HOURS_PER_DAY, registered[:n_org])
    returning = ~recent & (rng.random(n_org) < pop.returning_share)
    dormant_days = rng.binomial(90, 0.02, size=n_org)
    history = prior_active[:n_org]
    history = np.where(recent, np.minimum(history, np.floor(age).astype(np.int16)), history)
    prior_active[:n_org] = np.where(returning, dormant_days, history)

    population = Population(
        kind=kind, n_audience=n_org, candidate_rows=candidate_rows, influencer_rows=influencer_rows,
        bot_rows=bot_rows, recruit_rows=recruit_rows, interests=interests, interest_estimate=interest_estimate,
        support=support, start_support=support.copy(), leading=leading, activity_rate=activity_rate,
        registered_hours=registered, prior_active_days=prior_active,
        influencer_real_followers=real_followers, follows=follows, probe_rows=np.zeros(0, np.int64),
    )
    return with_probes(population, s.sock_puppets.count)


def with_probes(p: Population, k: int) -> Population:
    """Insert ``k`` sock-puppet rows after the organic users (the end of the audience), shifting every later row by
    ``k``. No random draw is made, so the world is the one drawn without probes, plus passive observers: new
    accounts with no history (registered one hour before day 0, no active days), a uniform interest profile (the
    platform knows nothing about them), all support undecided, zero activity, following nobody and followed by
    nobody."""
    if k == 0:
        return p
    n0 = p.n_audience
    shift = lambda idx: np.where(idx >= n0, idx + k, idx)  # noqa: E731

    def insert(a: np.ndarray, fill) -> np.ndarray:
        block = np.empty((k,) + a.shape[1:], dtype=a.dtype)
        block[...] = fill
        return np.concatenate([a[:n0], block, a[n0:]])

    topics = p.interests.shape[1]
    coo = p.follows.matrix.tocoo()
    undecided = np.zeros(p.support.shape[1])
    undecided[-1] = 1.0
    return Population(
        kind=insert(p.kind, Kind.PROBE), n_audience=n0 + k, candidate_rows=shift(p.candidate_rows),
        influencer_rows=shift(p.influencer_rows), bot_rows=shift(p.bot_rows), recruit_rows=p.recruit_rows,
        interests=insert(p.interests, 1.0 / topics), interest_estimate=insert(p.interest_estimate, 1.0 / topics),
        support=insert(p.support, undecided), start_support=insert(p.start_support, undecided),
        leading=insert(p.leading, -1), activity_rate=insert(p.activity_rate, 0.0),
        registered_hours=insert(p.registered_hours, -1.0), prior_active_days=insert(p.prior_active_days, 0),
        influencer_real_followers=p.influencer_real_followers,
        follows=FollowGraph.from_edges(p.n + k, shift(coo.row.astype(np.int64)), shift(coo.col.astype(np.int64))),
        probe_rows=np.arange(n0, n0 + k),
    )
