"""The Mesa model: one world, stepped hour by hour.

One step = sessions → feeds (the platform's ranker) → impressions and engagement → opinion → new posts (organic,
candidates, influencers, bots, recruits) → directed engagement due this step → the step's plays and engagement
counted, reviewed by the platform's mitigation stages and counted again as the platform weighs them → end of day:
follows merged and the daily series collected. Mesa owns the clock (``steps``), the model generator (``rng``), the
agents (platform, campaign operator, influencers) and the :class:`mesa.DataCollector`; the accounts and posts are
arrays.
"""

from __future__ import annotations

import mesa
import numpy as np

from . import kernel_threads, kernels
from .audience import Audience
from .campaign import CampaignOperator
from .config import Scenario
from .content import PostDrafts, PostTable
from .exposure import ExposureLedger, note_graduations
from .mitigations.base import note_first_times
from .mitigations.pipeline import MitigationPipeline
from .opinion import expected_vote_shares, persuade
from .platform import Platform
from .population import ROUTE_OF_KIND, build_population
from .ranking import RankerContext, make_ranker
from .seeding import RunStreams

MINUTES_PER_HOUR = 60.0


class AuditWorld(mesa.Model):
    """One simulated world of a scenario, seeded by one :class:`numpy.random.SeedSequence`."""

    def __init__(self, scenario: Scenario, seed_sequence: np.random.SeedSequence):
        self.streams = RunStreams(seed_sequence)
        super().__init__(rng=self.streams.child("mesa"))
        self.config = s = scenario
        self.step_minutes = s.step_hours * MINUTES_PER_HOUR
        self.campaign_enabled = s.campaign.enabled
        self.target = s.candidates.names.index(s.candidates.target)
        self.population = pop = build_population(s, self.streams.population)
        self.posts = PostTable(capacity=int(s.population.organic_users * s.activity.post_rate * s.days * 1.3) + 1024)
        # The platform's decisions about accounts (observable to rankers and mitigations).
        self.account_removed = np.zeros(pop.n, dtype=bool)
        self.account_demoted = np.zeros(pop.n, dtype=bool)
        self.account_flag_stages = np.zeros(pop.n, dtype=np.int64)
        # Ground truth for scoring detection: when each account first acted for the campaign (minutes).
        self.campaign_first_action = np.full(pop.n, np.inf)
        self._first_action_marks = np.zeros(pop.n, dtype=bool)   # scratch of note_first_times (all False)
        self.audience = Audience(s, pop, self.streams.activity, self.streams.engagement, self.streams.content)
        self.ledger = ExposureLedger(pop, len(s.candidates.names), self.target)
        # Ground truth: the attribution route of each account's engagement (its kind never changes).
        self.route_of_account = ROUTE_OF_KIND[pop.kind]
        self.drafts = PostDrafts()
        ctx = RankerContext(settings=s.ranker, feed=s.feed, n_audience=pop.n_audience, topics=s.population.topics)
        self.platform = Platform(self, make_ranker(ctx))
        self.operator = CampaignOperator(self)
        self.mitigations = MitigationPipeline(self, s.mitigations, self.streams.mitigation)
        self.start_vote_shares = expected_vote_shares(pop.support, self.ledger.in_o)
        self.impressions_served = 0
        # Sock-puppet audit: impressions shown to probes by the promoted candidate (last column: not partisan).
        self.probe_impressions = np.zeros(len(s.candidates.names) + 1, dtype=np.int64)
        self.engagements = 0
        reporters = {
            "day": lambda m: m.day,
            "target_impressions": lambda m: m.ledger.target_impressions - m._day_target_start,
            "cumulative_reach": lambda m: m.ledger.reach,
            "candidate_impressions": lambda m: (m.ledger.candidate_impressions - m._day_candidates_start).tolist(),
            "vote_shares": lambda m: expected_vote_shares(m.population.support, m.ledger.in_o).tolist(),
            "campaign_dollars": lambda m: m.operator.dollars,
        }
        self.datacollector = mesa.DataCollector(model_reporters=reporters)
        self._day_target_start = 0
        self._day_candidates_start = np.zeros(len(s.candidates.names), dtype=np.int64)

    # ------------------------------------------------------------------------------------------------ clock
    @property
    def now(self) -> float:
        """Start of the current step in minutes since day 0 (``steps`` counts completed steps)."""
        return self.steps_done * self.step_minutes

    @property
    def steps_done(self) -> int:
        return self.steps - 1 if self._in_step else self.steps

    @property
    def day(self) -> int:
        return int(self.steps_done // self.config.steps_per_day)

    _in_step = False

    def run(self, progress=None) -> "AuditWorld":
        for _ in range(self.config.n_steps):
            self.step()
            if progress is not None:
                progress.update(1)
        return self

    # ------------------------------------------------------------------------------------------------- step
    def step(self) -> None:
        self._in_step = True
        try:
            self._step()
        finally:
            self._in_step = False

    def _step(self) -> None:
        s = self.config
        step = self.steps_done
        t0 = self.now
        table, pop = self.posts, self.population
        # 1-2. Sessions (accounts a mitigation took down no longer open the app) and feeds.
        users = self.audience.sessions(step)
        if self.mitigations.active:
            users = users[~self.account_removed[users]]
        feeds = self.platform.serve(users)
        note_graduations(table, feeds.graduated, pop.kind)
        self.audience.last_session[users] = t0
        # When in the step each session happens (its own stream: the other streams draw as they would without it).
        session_time = t0 + self.streams.session_time.random(users.size) * self.step_minutes
        # The impressions: every shown slot, in row-major order of the feeds.
        imp_users, imp_posts, imp_routes, imp_times = kernels.flatten_feeds(
            users.astype(np.int64, copy=False), feeds.posts, feeds.routes, session_time)
        # 3. Impressions and engagement.
        self.ledger.record(imp_users, imp_posts, imp_routes, table, self.route_of_account)
        self.impressions_served += imp_posts.size
        recruits_active = self.campaign_enabled and t0 >= s.campaign.recruits.recruit_day * 1440.0
        served_types = self.audience.respond(imp_users, imp_posts, table, self.target, recruits_active)
        probe_users, probe_posts = self._probe_scroll(step, t0)
        # 4. Opinion: engaged political impressions persuade (organic audience and recruits alike).
        if s.opinion.enabled:
            persuade(pop.support, *kernels.engaged_political(imp_users, imp_posts, served_types, table.candidate),
                     s.opinion.persuasion)
        # 5. New posts this step.
        self._post(t0)
        ids, sources = self.drafts.commit(table)
        self._note_campaign_posts(ids)
        self.operator.direct(ids, sources)
        # 6. Directed engagement due this step (accounts taken down can no longer act).
        acc, posts, times, masks = self.operator.directed.pop(step)
        if acc.size and self.mitigations.active:
            ok = ~self.account_removed[acc]
            acc, posts, times, masks = acc[ok], posts[ok], times[ok], masks[ok]
        self._note_campaign_actions(acc, times)
        # 7. The step's plays: feed impressions, then directed visits. Counted as they happened (what users see,
        # ground truth) and as the platform weighs them, after the mitigation stages' review when there are stages.
        events = StepEvents(*kernels.step_events(
            imp_users, imp_posts, served_types, imp_times, probe_users, probe_posts, t0 + 0.5 * self.step_minutes,
            np.ascontiguousarray(acc, dtype=np.int64), np.ascontiguousarray(posts, dtype=np.int64),
            np.ascontiguousarray(masks, dtype=np.uint8), np.ascontiguousarray(times, dtype=np.float64)))
        if self.mitigations.active:
            # The feed impressions first (the circuit breaker's re-check reads them); the rest once weighed.
            kernels.count_served(events.post, events.served, self.posts.served_views)
            weights = self.mitigations.review(events, ids)
            self._count_reviewed(events, weights)
        else:   # every weight is 1: one counting pass
            self._count_step(events)
        kernel_threads.note_step()   # (one thread while another process holds a CPU; results do not depend on it)
        # 8. End of day.
        if (step + 1) % s.steps_per_day == 0:
            pop.follows.merge_pending()
            self.datacollector.collect(self)
            self._day_target_start = self.ledger.target_impressions
            self._day_candidates_start = self.ledger.candidate_impressions.copy()

    def _post(self, t0: float) -> None:
        s = self.config
        self.operator.planned_target_posts = 0
        self.audience.post(self.drafts, t0, self.step_minutes, len(s.candidates.names) + 1)
        # Official candidate accounts post on a steady schedule.
        rng = self.streams.content
        n_c = len(s.candidates.names)
        u = rng.random(n_c)
        when = t0 + rng.random(n_c) * self.step_minutes
        quality = rng.lognormal(0.0, s.activity.post_quality_sigma, size=n_c)
        who = np.flatnonzero(u < s.candidates.posts_per_day * s.step_hours / 24.0)
        for c in who:
            self.drafts.add(self.population.candidate_rows[c], when[c], 0, c, quality[c],
                            source="candidate_target" if c == self.target else "candidate")
        # Influencers' everyday (unpaid, non-political) posts: real accounts, so also in the inert world.
        inf = self.population.influencer_rows
        u = rng.random(inf.size)
        when = t0 + rng.random(inf.size) * self.step_minutes
        topic = 1 + rng.integers(0, s.population.topics - 1, size=inf.size)
        quality = rng.lognormal(0.0, s.activity.post_quality_sigma, size=inf.size)
        who = u < s.campaign.influencers.posts_per_day * s.step_hours / 24.0
        self.drafts.add(inf[who], when[who], topic[who], -1, quality[who], source="influencer_unpaid")
        # The Influencer agents step in agent order; only those with a paid post due this step have anything to do.
        for influencer in self.operator.influencers_due(t0 + self.step_minutes):
            influencer.step()
        self.operator.post()

    def _probe_scroll(self, step: int, t0: float) -> tuple[np.ndarray, np.ndarray]:
        """The sock-puppet audit: at the scheduled hour, every probe scrolls ``feeds_per_session`` feeds. Their
        impressions are plays the platform served (no engagement); what partisan content they show is recorded.
        Returns the impressions as aligned (account, post) arrays."""
        sp = self.config.sock_puppets
        rows = self.population.probe_rows
        empty = np.zeros(0, np.int64)
        spd = self.config.steps_per_day
        day = step // spd
        due = (rows.size and step % spd == sp.hour // self.config.step_hours and t0 >= sp.start_day * 1440.0
               and (day - int(np.ceil(sp.start_day))) % sp.every_days == 0)
        if not due:
            return empty, empty
        users, posts = [], []
        for _ in range(sp.feeds_per_session):
            feeds = self.platform.serve(rows)
            note_graduations(self.posts, feeds.graduated, self.population.kind)
            self.audience.last_session[rows] = t0
            shown = feeds.posts != -1
            users.append(np.broadcast_to(rows[:, None], feeds.posts.shape)[shown])
            posts.append(feeds.posts[shown])
        users, posts = np.concatenate(users).astype(np.int64), np.concatenate(posts).astype(np.int64)
        cand = self.posts.candidate[posts].astype(np.int64)
        self.probe_impressions += np.bincount(np.where(cand >= 0, cand, self.probe_impressions.size - 1),
                                              minlength=self.probe_impressions.size)
        return users, posts

    def _note_plays(self, n_engagements: int, follow_rows: np.ndarray, events: "StepEvents") -> None:
        """The step's engagement count, and its follows (event rows ``follow_rows``) queued for the day's merge."""
        self.engagements += n_engagements
        if follow_rows.size:
            engagers = events.account.take(follow_rows)
            self.population.follows.add(engagers, self.posts.author[events.post.take(follow_rows)])

    def _count_step(self, events: "StepEvents") -> None:
        """:meth:`_count_reviewed` with unit weights, the feed impressions included, in one counting of the
        events."""
        table = self.posts
        n_engagements, follow_rows = kernels.count_step(
            events.account, events.post, events.types, events.time, events.served, self.route_of_account,
            table.created, MINUTES_PER_HOUR, table.views, table.served_views, table.engagements,
            table.engagement_by_route, table.trusted_views, table.trusted_first_hour_views, table.trusted_engagements,
            table.trusted_first_hour_engagements, table.trusted_served_engagements)
        self._note_plays(n_engagements, follow_rows, events)

    def _count_reviewed(self, events: "StepEvents", weights: np.ndarray) -> None:
        """Count the step's plays (all but the feed impressions, counted before the review) as they happened (views,
        the engagement users see, the engagers' routes: ground truth; new follows), and as the platform weighs them:
        each play and engagement with its mitigation weight in the ranking signals (when every weight is 1 — no
        stage, or none weighed anything this step — the counts are integers, as without mitigations)."""
        if events.size == 0:
            return
        table = self.posts
        slot, posts = kernels.post_slots(events.post)
        n_engagements, follow_rows = kernels.count_reviewed(
            events.account, events.post, events.types, events.time, events.served, weights,
            bool((weights == 1.0).all()), slot, posts, self.route_of_account, table.created, MINUTES_PER_HOUR,
            table.views, table.engagements, table.engagement_by_route, table.trusted_views,
            table.trusted_first_hour_views, table.trusted_engagements, table.trusted_first_hour_engagements,
            table.trusted_served_engagements)
        self._note_plays(n_engagements, follow_rows, events)

    def _note_campaign_posts(self, ids: np.ndarray) -> None:
        camp = ids[self.posts.campaign[ids]] if ids.size else ids
        if camp.size:
            self._note_campaign_actions(self.posts.author[camp].astype(np.int64), self.posts.created[camp])

    def _note_campaign_actions(self, accounts: np.ndarray, times: np.ndarray) -> None:
        """Ground truth: the first campaign action (a campaign post or a directed visit) of each account."""
        if accounts.size:
            note_first_times(self.campaign_first_action, accounts, times, self._first_action_marks)


class StepEvents:
    """One step's plays, aligned arrays: account, post, engagement type mask (bit i = type i of
    ``content.ENGAGEMENT_TYPES``; 0 = a play with no engagement), time, and whether the play was a feed impression."""

    __slots__ = ("account", "post", "types", "time", "served")

    def __init__(self, account, post, types, time, served):
        self.account, self.post, self.types, self.time, self.served = account, post, types, time, served

    @property
    def size(self) -> int:
        return int(self.account.size)
