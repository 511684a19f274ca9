"""Periodic takedowns (spec §4): at a fixed cadence the platform removes the accounts its detection found (in the
real case, networks of 78 and 12 accounts)."""

from __future__ import annotations

import numpy as np

from .base import Evidence, StageContext, Verdict
from .coordination import Cadence, CoEngagementLog, co_engagement_links, coordinated_groups


class Takedown:
    """Every ``every_hours`` from ``start_day`` (the first takedown comes ``every_hours`` after it), removes the
    accounts flagged by the stages named in ``remove_flagged_by`` and the co-engagement groups of at least
    ``min_cluster_size`` it finds itself (``detect``: by default only when none of those stages is in the pipeline),
    largest first, at most ``max_accounts`` per takedown when set."""

    def __init__(self, context: StageContext):
        self.context = context
        self.s = context.settings
        self.source_bits = np.int64(context.stage_bits(self.s.remove_flagged_by))
        detect = self.s.detect == "always" or (self.s.detect == "auto" and not self.source_bits)
        self.log = CoEngagementLog(self.s.window_hours * 60.0) if detect else None
        self.cadence = Cadence(self.s.every_hours)

    def review(self, evidence: Evidence, view, rng: np.random.Generator) -> Verdict | None:
        if self.log is not None:
            self.log.add(evidence)
        if not self.cadence.due(evidence.now):
            return None
        live = ~view.account_removed
        flagged = np.flatnonzero(((view.account_flag_stages & self.source_bits) != 0) & live)
        groups = np.zeros(0, np.int64)
        sizes = np.zeros(0, np.int64)
        if self.log is not None:
            acc, post, t = self.log.events(view.account_removed)
            a, b, _ = co_engagement_links(acc, post, t, view.n_accounts, self.s.pair_window_minutes,
                                          self.s.neighbours, self.s.min_shared_posts)
            groups, sizes = coordinated_groups(a, b, view.n_accounts, self.s.min_cluster_size, self.s.min_links)
        by_group = np.isin(flagged, groups)
        accounts = np.concatenate([groups, flagged[~by_group]])
        weight = np.concatenate([sizes, np.zeros(int((~by_group).sum()), np.int64)])
        if accounts.size == 0:
            return None
        if self.s.max_accounts and accounts.size > self.s.max_accounts:
            keep = np.lexsort((accounts, -weight))[: self.s.max_accounts]   # largest groups first, then by row
            accounts, weight = accounts[keep], weight[keep]
        reasons = np.array([f"takedown: coordinated group of {int(z)} accounts" if z else
                            "takedown: flagged by " + "/".join(self.s.remove_flagged_by) for z in weight],
                           dtype=object)
        return Verdict(flag=accounts, reason=reasons, remove=accounts)
