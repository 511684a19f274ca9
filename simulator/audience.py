"""Organic behaviour of the audience (spec §2): who opens the app, how they respond to each impression, and what
they post. Every function works on arrays of users or impressions at once."""

from __future__ import annotations

import functools
import math

import numpy as np

from . import kernels
from .config import Scenario
from .kernel_threads import run_blocks
from .uniforms import StreamUniforms
from .content import ENGAGEMENT_TYPES, LIKE, PostDrafts
from .population import Kind, Population

#: The fewest impressions a kernel thread takes on when drawing engagement (kernel_threads.run_blocks).
IMPRESSIONS_PER_THREAD = 2048
#: Like counts whose log10(1 + likes) is tabulated (the rest are computed when met).
LOG10_TABLE_SIZE = 1 << 16


@functools.lru_cache(maxsize=1)
def log10_1p_table() -> np.ndarray:
    """log10(1 + k) for the tabulated like counts, computed once per process (read-only: every world shares it)."""
    table = kernels.log10_1p_table(LOG10_TABLE_SIZE)
    table.flags.writeable = False
    return table


def diurnal_weights(step_hours: int, amplitude: float) -> np.ndarray:
    """Share of a day's sessions falling in each step of the day (peak 21:00, trough 09:00)."""
    # The C library's cos (math.cos), the same on every CPU (NumPy's vectorised cos may differ in its last bits).
    w = np.array([1.0 + amplitude * math.cos(2 * math.pi * (h + 0.5 - 21.0) / 24.0) for h in range(24)])
    w = w.reshape(24 // step_hours, step_hours).sum(axis=1)
    return w / w.sum()


class Audience:
    """Sessions and responses of the audience rows ``[0, n_audience)`` (organic users, recruits among them)."""

    def __init__(self, scenario: Scenario, population: Population, activity_rng: np.random.Generator,
                 engagement_rng: np.random.Generator, content_rng: np.random.Generator):
        self.s = scenario
        self.pop = population
        self.activity_rng = activity_rng
        self.engagement_rng = engagement_rng
        # Their uniforms drawn by compiled code on the kernel threads (the values NumPy would draw).
        self.activity_uniforms = StreamUniforms(activity_rng)
        self.engagement_uniforms = StreamUniforms(engagement_rng)
        self.content_rng = content_rng
        n = population.n_audience
        self.last_session = np.full(n, -np.inf)
        self.active_today = np.zeros(n, dtype=bool)
        self.diurnal = diurnal_weights(scenario.step_hours, scenario.activity.diurnal_amplitude)
        a = scenario.activity
        self.session_rate = population.activity_rate * a.sessions_per_active_day
        self.base = np.array([getattr(scenario.engagement, t) for t in ENGAGEMENT_TYPES], dtype=np.float32)
        self.is_recruit = population.kind[:n] == Kind.RECRUITED
        self.post_weight = population.activity_rate.astype(np.float64)
        # P(post) of each person in one step (constant over the run).
        self.post_probability = a.post_rate * (scenario.step_hours / 24.0) * self.post_weight[: population.n_people]
        # Interest in a topic is taken relative to the user's favourite topic (1 = favourite).
        self.inv_top_interest = 1.0 / population.interests[:n].max(axis=1)
        self.interests = population.interests
        # log10(1 + likes) of the social proof, looked up for the like counts most posts have.
        self.log10_1p = log10_1p_table()

    def sessions(self, step: int) -> np.ndarray:
        """Sorted audience rows that open the app this step (at most one feed per user per step)."""
        spd = self.s.steps_per_day
        people = self.pop.n_people   # probes (the last audience rows) draw nothing: their sessions are scheduled
        if step % spd == 0:
            self.active_today[:people] = self.activity_rng.random(people) < self.s.activity.daily_active_share
        u = self.activity_uniforms.random(people)
        return kernels.opening_sessions(u, self.active_today, self.session_rate, float(self.diurnal[step % spd]))

    def respond(self, users: np.ndarray, posts: np.ndarray, table, target: int, recruits_active: bool) -> np.ndarray:
        """Engagement draws for aligned impressions: one uint8 type mask per impression, bit i set when the user
        engaged by type i of ``ENGAGEMENT_TYPES`` (0 = a play with no engagement).

        P(type) = base × (interest in topic ÷ interest in favourite topic)^interest_weight × alignment ×
        (1 + social_proof · log10(1 + likes)) × the post's latent appeal; alignment = 0.2 + alignment_weight ×
        support for the post's candidate on political posts, 1 otherwise. Once recruited, recruits engage target
        posts ``engagement_boost`` times more.
        """
        e = self.s.engagement
        users = users.astype(np.intp, copy=False)
        posts = posts.astype(np.intp, copy=False)
        # The draws are made (impression, type) row-major, as ever.
        draws = self.engagement_uniforms.random((posts.size, self.base.size), np.float32)
        return run_blocks(
            kernels.engagement_types_blocks, posts.size, IMPRESSIONS_PER_THREAD, users, posts, float(e.interest_weight), self.interests,
            self.inv_top_interest, table.topic, table.candidate, self.pop.support, float(e.alignment_weight),
            table.engagements, LIKE, float(e.social_proof), self.log10_1p, table.quality, self.is_recruit,
            target if recruits_active else -2, float(self.s.campaign.recruits.engagement_boost), self.base, draws)

    def post(self, drafts: PostDrafts, t0: float, step_minutes: float, target_support_cols: int) -> None:
        """Organic posts of this step: a low rate, topics from interests, political posts for a candidate drawn
        from the author's current support (undecided authors post about nothing political)."""
        rng = self.content_rng
        a = self.s.activity
        n = self.pop.n_people
        u = rng.random(n)
        who = np.flatnonzero(u < self.post_probability)
        k = who.size
        when = t0 + rng.random(k) * step_minutes
        # Topic from interests, political with political_post_share, a candidate from the author's support (the
        # draws in their order; the rest in one compiled pass).
        topic_u = rng.random(k)
        political_u = rng.random(k)
        pick_u = rng.random(k)
        topic, cand = kernels.organic_post_content(who, topic_u, self.pop.interests, political_u,
                                                   float(a.political_post_share), pick_u, self.pop.support,
                                                   int(target_support_cols), int(self.s.population.topics))
        quality = rng.lognormal(0.0, a.post_quality_sigma, size=k)
        drafts.add(who, when, topic, cand, quality, source="organic")
