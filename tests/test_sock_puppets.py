"""The sock-puppet audit: probe accounts that scroll the feed, as independent auditors did in the real case."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.audit import run_audit
from simulator.config import load_scenario
from simulator.model import AuditWorld
from simulator.population import Kind

WORLD = ["population.organic_users=10000", "days=8", "campaign.bots.activation_day=3",
         "campaign.recruits.recruit_day=2"]


def scenario(*overrides):
    return load_scenario("romania_2024", WORLD + list(overrides))


def test_probes_are_passive_observers_inserted_without_new_draws():
    """A world with probes that never scroll is the world without probes, row for row (rows after the audience
    shifted by the number of probes)."""
    plain = AuditWorld(scenario("days=3"), np.random.SeedSequence(4)).run()
    probed = AuditWorld(scenario("days=3", "sock_puppets.count=7", "sock_puppets.start_day=100"),
                        np.random.SeedSequence(4)).run()
    assert probed.population.n == plain.population.n + 7
    assert (probed.population.kind[probed.population.probe_rows] == Kind.PROBE).all()
    assert probed.ledger.reach == plain.ledger.reach
    assert probed.ledger.target_impressions == plain.ledger.target_impressions
    n = plain.posts.n
    assert probed.posts.n == n
    np.testing.assert_array_equal(probed.posts.engagements[:n], plain.posts.engagements[:n])
    shift = lambda a: np.where(a >= plain.population.n_audience, a + 7, a)  # noqa: E731
    np.testing.assert_array_equal(probed.posts.author[:n], shift(plain.posts.author[:n]))
    assert probed.probe_impressions.sum() == 0


def test_probes_scroll_on_schedule_never_engage_and_are_not_in_the_audience():
    s = scenario("days=3", "sock_puppets.count=5", "sock_puppets.hour=20", "sock_puppets.feeds_per_session=3")
    w = AuditWorld(s, np.random.SeedSequence(2))
    probes = w.population.probe_rows
    seen = []
    serve = w.platform.serve

    def recording(users):
        feeds = serve(users)
        if np.isin(users, probes).any():
            assert np.isin(users, probes).all()      # probes are served on their own, never in a user session
            seen.append((w.steps_done % 24, feeds.posts.copy()))
        return feeds

    w.platform.serve = recording
    w.run()
    assert [h for h, _ in seen] == [20] * 9          # 3 days × 3 feeds at 20:00
    assert not w.ledger.in_o[probes].any() and not w.ledger.reached[probes].any()
    assert not np.isin(w.posts.author[: w.posts.n], probes).any()           # they never post
    total = sum(int((f >= 0).sum()) for _, f in seen)
    assert w.probe_impressions.sum() == total > 0
    assert w.population.follows.matrix[probes].nnz == 0                       # they follow nobody


def test_campaign_tilts_what_new_accounts_are_shown():
    s = scenario("sock_puppets.count=20", "sock_puppets.start_day=4")
    m = run_audit(s, seed=6, replicates=1).replicates[0].metrics
    inert = run_audit(scenario("sock_puppets.count=20", "sock_puppets.start_day=4", "campaign.enabled=false"),
                      seed=6, replicates=1).replicates[0].metrics
    shares = [m[f"sock_puppet_share.{c}"] for c in s.candidates.names]
    assert sum(shares) == pytest.approx(1.0)
    assert m["sock_puppet_target_share"] == m["sock_puppet_share.target"]
    assert m["sock_puppet_target_share"] > inert["sock_puppet_target_share"] + 0.1
    assert 0.0 < m["sock_puppet_partisan_share"] < 1.0


def test_without_probes_the_share_is_null_and_chronological_probes_see_nothing():
    m = run_audit(scenario("days=2"), seed=1, replicates=1).replicates[0].metrics
    assert m["sock_puppet_target_share"] is None and "sock_puppet_share.target" not in m
    c = run_audit(scenario("days=2", "sock_puppets.count=3", "ranker.name=chronological"), seed=1,
                  replicates=1).replicates[0].metrics
    assert c["sock_puppet_target_share"] is None      # they follow nobody: a chronological feed is empty
    assert c["sock_puppet_partisan_share"] is None
