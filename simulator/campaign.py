"""The coordinated campaign (spec §2): the operator, its paid influencers, its dormant bots and its recruits.

The campaign draws every random number from its own ``campaign`` stream, and the number of draws never depends on
what the rest of the world did. An inert campaign (``campaign.enabled = false``) makes exactly the same draws and
applies none of them: no posts, no engagement, no follows, no payments. So a paired inert world differs from the
active one only by what the campaign did.
"""

from __future__ import annotations

from collections import defaultdict

import mesa
import numpy as np

from .content import COMMENT, FOLLOW, LIKE, SHARE, WATCH, PostDrafts

MINUTES_PER_DAY = 1440.0
#: source code (PostDrafts.commit) of the target's official posts
_OFFICIAL_TARGET = PostDrafts.source_codes("candidate_target")[0]
#: Whether a post of each source code (PostDrafts.SOURCES) is one of the campaign's own target posts.
_CAMPAIGN_TARGET = np.zeros(len(PostDrafts.SOURCES), dtype=bool)
_CAMPAIGN_TARGET[PostDrafts.source_codes("bot", "paid", "recruit")] = True
#: bit of each engagement type in a directed event's type mask
TYPE_BITS = np.array([1 << WATCH, 1 << LIKE, 1 << COMMENT, 1 << SHARE, 1 << FOLLOW], dtype=np.uint8)


def buy_influencer_posts(real_followers: np.ndarray, budget: float, cpm: float) -> np.ndarray:
    """Paid posts bought from each influencer (no randomness): the budget is spread in proportion to followers
    (equal posts each, since the price grows with followers), then the remainder buys one more post at a time from
    the largest influencer still affordable."""
    n = real_followers.size
    if n == 0 or budget <= 0:
        return np.zeros(n, dtype=np.int64)
    price = cpm * real_followers / 1000.0
    posts = np.floor(budget / price.sum() + 1e-12).astype(np.int64) * np.ones(n, dtype=np.int64)
    left = budget - float((posts * price).sum())
    for i in np.argsort(-real_followers, kind="stable"):
        if price[i] <= left:
            posts[i] += 1
            left -= price[i]
    return posts


class DirectedEngagement:
    """Engagement the campaign directs at posts (bots' bursts, recruits' answers to the call), queued by the step
    in which it happens. Each event: account, post, time (minutes) and a bit mask of engagement types."""

    def __init__(self, step_minutes: float):
        self.step_minutes = step_minutes
        self._due: dict[int, list[tuple]] = defaultdict(list)

    def schedule(self, accounts, posts, times, masks) -> None:
        if accounts.size == 0:
            return
        steps = np.floor(times / self.step_minutes).astype(np.int64)
        order = np.argsort(steps, kind="stable")
        steps, accounts, posts, times, masks = (a[order] for a in (steps, accounts, posts, times, masks))
        cuts = np.flatnonzero(np.diff(steps)) + 1
        for chunk in np.split(np.arange(steps.size), cuts):
            self._due[int(steps[chunk[0]])].append((accounts[chunk], posts[chunk], times[chunk], masks[chunk]))

    def pop(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        parts = self._due.pop(step, [])
        if not parts:
            e = np.zeros(0, dtype=np.int64)
            return e, e, np.zeros(0), np.zeros(0, dtype=np.uint8)
        acc, post, t, m = (np.concatenate(x) for x in zip(*parts))
        order = np.argsort(t, kind="stable")
        return acc[order], post[order], t[order], m[order]


class Influencer(mesa.Agent):
    """A real account with a large following; sells paid posts to the campaign on a schedule fixed at purchase."""

    def __init__(self, model, row: int, real_followers: float, paid_times: np.ndarray, disclosed: np.ndarray,
                 price: float):
        super().__init__(model)
        self.row = row
        self.real_followers = real_followers
        self.paid_times = paid_times
        self.disclosed = disclosed
        self.price = price
        self.next_paid = 0
        self.earned = 0.0

    def step(self) -> None:
        """Post the paid target posts due this step (planned in both worlds, created only if the campaign is on)."""
        m = self.model
        t1 = m.now + m.step_minutes
        while self.next_paid < self.paid_times.size and self.paid_times[self.next_paid] < t1:
            j = self.next_paid
            self.next_paid += 1
            m.operator.planned_target_posts += 1
            if m.campaign_enabled:
                m.drafts.add(self.row, self.paid_times[j], 0, m.target, m.operator.paid_quality[self.row_index, j],
                             sponsored=True, disclosed=bool(self.disclosed[j]), campaign=True, source="paid")
                self.earned += self.price

    @property
    def row_index(self) -> int:
        return int(self.row - self.model.population.influencer_rows[0])


class CampaignOperator(mesa.Agent):
    """Runs the campaign: buys influencer posts, wakes and directs the bots, calls on the recruits."""

    def __init__(self, model):
        super().__init__(model)
        s = model.config
        c = s.campaign
        pop = model.population
        rng = model.streams.campaign
        self.enabled = c.enabled
        self.bots = pop.bot_rows
        self.recruits = pop.recruit_rows
        days = s.days
        # Influencer purchases and their schedule, evenly spread from start_day to the vote (with jitter).
        posts = buy_influencer_posts(pop.influencer_real_followers, c.influencers.budget, c.influencers.cpm)
        prices = c.influencers.cpm * pop.influencer_real_followers / 1000.0
        start = min(c.influencers.start_day, days) * MINUTES_PER_DAY
        span = days * MINUTES_PER_DAY - start
        most = int(posts.max()) if posts.size else 0
        jitter = rng.random((posts.size, max(most, 1)))
        disclosed = rng.random((posts.size, max(most, 1))) >= c.influencers.undisclosed_share
        self.paid_quality = rng.lognormal(0.0, s.activity.post_quality_sigma, size=(posts.size, max(most, 1)))
        self.influencers: list[Influencer] = []   # in agent (row) order
        for i, row in enumerate(pop.influencer_rows):
            n = int(posts[i])
            times = np.sort(start + (np.arange(n) + jitter[i, :n]) / max(n, 1) * span)
            self.influencers.append(Influencer(model, int(row), float(pop.influencer_real_followers[i]), times,
                                               disclosed[i, :n], float(prices[i])))
        # Every paid post's time and influencer, in time order: the influencers with a post due in a step are a
        # slice of it (a few a step), so only their agents need to step.
        times = np.concatenate([a.paid_times for a in self.influencers] + [np.zeros(0)])
        owner = np.repeat(np.arange(len(self.influencers)), [a.paid_times.size for a in self.influencers])
        order = np.argsort(times, kind="stable")
        self._paid_times, self._paid_owner = times[order], owner[order]
        self._paid_cursor = 0
        self.bot_dollars_real = (c.bots.bot_share * s.population.real_users * c.bots.bot_cost) if c.enabled else 0.0
        self.directed = DirectedEngagement(model.step_minutes)
        self.planned_target_posts = 0   # campaign target posts due this step, counted in both worlds

    def influencers_due(self, end: float) -> list[Influencer]:
        """The influencer agents with a paid post due before ``end`` (minutes) that they have not posted yet, in
        agent order. Called once per step with the step's end: every other influencer's step would do nothing."""
        stop = int(np.searchsorted(self._paid_times, end, side="left"))   # posts due: time < end
        due = np.unique(self._paid_owner[self._paid_cursor: stop])
        self._paid_cursor = stop
        return [self.influencers[i] for i in due]

    @property
    def influencer_dollars(self) -> float:
        return float(sum(a.earned for a in self.model.agents_by_type.get(Influencer, [])))

    @property
    def dollars(self) -> float:
        """Campaign money spent so far, real-world dollars."""
        return self.influencer_dollars + self.bot_dollars_real

    def post(self) -> None:
        """Bots' and recruits' posts for this step (drawn in both worlds, created only if the campaign is on)."""
        m = self.model
        s = m.config
        c = s.campaign
        rng = m.streams.campaign
        t0, dt = m.now, m.step_minutes
        frac = s.step_hours / 24.0
        awake = t0 >= c.bots.activation_day * MINUTES_PER_DAY
        nb = self.bots.size
        u = rng.random(nb)
        when = t0 + rng.random(nb) * dt
        quality = rng.lognormal(0.0, s.activity.post_quality_sigma, size=nb)
        if awake:
            who = u < c.bots.posts_per_day * frac
            topic, cand = 0, m.target
        else:   # dormant: a trickle of everyday posts at ~1% of normal activity
            who = u < c.bots.dormant_activity * s.activity.post_rate * frac
            topic, cand = 1 + (self.bots % max(1, s.population.topics - 1)), -1
        recruited = t0 >= c.recruits.recruit_day * MINUTES_PER_DAY
        nr = self.recruits.size
        ur = rng.random(nr)
        when_r = t0 + rng.random(nr) * dt
        quality_r = rng.lognormal(0.0, s.activity.post_quality_sigma, size=nr)
        w = (ur < c.recruits.posts_per_day * frac) & recruited
        self.planned_target_posts += int(w.sum()) + (int(who.sum()) if awake else 0)
        if not self.enabled:
            return
        topic_b = topic if np.isscalar(topic) else topic[who]
        m.drafts.add(self.bots[who], when[who], topic_b, cand, quality[who], campaign=True,
                     source="bot" if awake else "bot_dormant")
        m.drafts.add(self.recruits[w], when_r[w], 0, m.target, quality_r[w], campaign=True, source="recruit")

    def direct(self, post_ids: np.ndarray, sources: np.ndarray) -> None:
        """Order bursts and recruits' engagement on the target posts created this step.

        Targets: the campaign's own target posts and the target candidate's official posts. The draws are made
        for every such post in both worlds; official posts exist in both, campaign posts only in the active one,
        so the draws for campaign posts come from a plan made before the posts (counted by source).
        """
        m = self.model
        c = m.config.campaign
        posts = m.posts
        rng = m.streams.campaign
        official = post_ids[sources == _OFFICIAL_TARGET]
        own = post_ids[_CAMPAIGN_TARGET[sources]]
        # Rows [0, official) of every draw are for official posts, the rest for the campaign's own posts, which
        # the inert world plans but never creates: it draws for them all the same.
        k = official.size + self.planned_target_posts
        assert not self.enabled or own.size == self.planned_target_posts
        ids = np.concatenate([official, own]) if self.enabled else official
        created = posts.created[ids] if ids.size else np.zeros(0)
        nb, nr = self.bots.size, self.recruits.size
        # Bot bursts.
        b_join = rng.random((k, nb)) < c.bots.burst_fraction
        b_delay = rng.random((k, nb)) * c.bots.burst_window + rng.exponential(max(c.bots.burst_jitter, 1e-12),
                                                                                 (k, nb)) * (c.bots.burst_jitter > 0)
        b_types = rng.random((k, nb, 3)) < np.array([c.bots.like_rate, c.bots.comment_rate, c.bots.share_rate])
        # Recruits' answers to the call.
        r_join = rng.random((k, nr)) < c.recruits.directed_share
        r_delay = rng.exponential(c.recruits.response_hours * 60.0, (k, nr))
        r_types = rng.random((k, nr, 3)) < np.array([0.9, 0.3, 0.2])
        if not self.enabled or k == 0:
            return
        t = m.now
        if t >= c.bots.activation_day * MINUTES_PER_DAY and nb:
            self._queue(ids, created, self.bots, b_join, b_delay, b_types)
        if t >= c.recruits.recruit_day * MINUTES_PER_DAY and nr:
            self._queue(ids, created, self.recruits, r_join, r_delay, r_types)

    def _queue(self, ids, created, accounts, join, delay, types) -> None:
        pi, ai = np.nonzero(join)
        mask = TYPE_BITS[WATCH] | (types[pi, ai] * TYPE_BITS[[LIKE, COMMENT, SHARE]]).sum(axis=1).astype(np.uint8)
        self.directed.schedule(accounts[ai].astype(np.int64), ids[pi].astype(np.int64), created[pi] + delay[pi, ai],
                               mask.astype(np.uint8))
