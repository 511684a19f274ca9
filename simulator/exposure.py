"""What each world served to whom, recorded against the ground truth for the metrics of spec §5."""

from __future__ import annotations

import numpy as np

from . import kernels
from .content import N_ROUTES
from .population import ROUTE_OF_KIND, Kind
from .ranking.base import Route


class ExposureLedger:
    """Running totals of one world: impressions of the target's posts to the audience O, reach, attribution by
    route, impressions per candidate and per author. O = organic audience users who were not recruited."""

    def __init__(self, population, n_candidates: int, target: int):
        self.in_o = population.kind[: population.n_audience] == Kind.ORGANIC
        self.n_o = int(self.in_o.sum())
        start = population.start_support
        # Persuadable: users in O whose largest support mass at day 0 is `undecided`.
        self.persuadable = self.in_o & (np.argmax(start, axis=1) == start.shape[1] - 1)
        self.target = target
        self.target_impressions = 0
        self.reached = np.zeros(population.n_audience, dtype=bool)
        self.route_impressions = np.zeros(N_ROUTES)
        self.candidate_impressions = np.zeros(n_candidates, dtype=np.int64)
        self.impressions_o = 0

    def record(self, users: np.ndarray, posts: np.ndarray, routes: np.ndarray, table,
               route_of_account: np.ndarray) -> None:
        """One step's impressions: ``users``, ``posts`` and ``routes`` are aligned flat arrays; ``route_of_account``
        is the attribution route of each account's true kind (``ROUTE_OF_KIND[kind]``).

        The impressions served to O are counted per post (``table.impressions_o``) and per candidate; those of the
        target's posts add to the target's impressions, mark their users reached, and add their attribution
        (:func:`credit_routes`, one row per impression, rows summed in impression order) to ``route_impressions``.
        One compiled pass (:func:`simulator.kernels.record_impressions`).
        """
        n_o, n_target = kernels.record_impressions(
            np.ascontiguousarray(users, dtype=np.int64), np.ascontiguousarray(posts, dtype=np.int64),
            np.ascontiguousarray(routes, dtype=np.int8), self.in_o, table.candidate, self.target, table.author,
            np.ascontiguousarray(route_of_account, dtype=np.int8), table.has_credit, table.credit,
            table.engagement_by_route, table.impressions_o, self.reached, self.candidate_impressions,
            self.route_impressions)
        self.impressions_o += n_o
        self.target_impressions += n_target

    def author_impressions(self, table, n_accounts: int) -> np.ndarray:
        """Impressions served to O per author account."""
        return np.bincount(table.author[: table.n], weights=table.impressions_o[: table.n], minlength=n_accounts)

    @property
    def reach(self) -> int:
        return int(self.reached.sum())

    @property
    def persuadable_reach(self) -> int:
        return int((self.reached & self.persuadable).sum())


def credit_routes(posts: np.ndarray, routes: np.ndarray, table, kind: np.ndarray) -> np.ndarray:
    """Attribution of spec §5, one row per impression, columns organic/recruited/bot/paid summing to 1.

    In-network (FOLLOWED) and own-merit out-of-network (DISCOVERY) impressions go to the author's true kind.
    ENGAGEMENT impressions go pro rata to the true kinds of the engagers of the stage that made the post eligible
    (``credit``, set at graduation); a ranker that reports no graduation gets the post's whole engagement history;
    a post with no engagement at all falls back to its author.
    """
    out = np.zeros((posts.size, N_ROUTES))
    author_route = ROUTE_OF_KIND[kind[table.author[posts]]]
    out[np.arange(posts.size), author_route] = 1.0
    eng = routes == Route.ENGAGEMENT
    if eng.any():
        p = posts[eng]
        shares = np.where(table.has_credit[p][:, None], table.credit[p], table.engagement_by_route[p]).astype(float)
        total = shares.sum(axis=1, keepdims=True)
        ok = total[:, 0] > 0
        rows = np.flatnonzero(eng)[ok]
        out[rows] = shares[ok] / total[ok]
    return out


def note_graduations(table, posts: np.ndarray, kind: np.ndarray) -> None:
    """Snapshot the engagers of the stage that just made ``posts`` eligible (ground-truth side of attribution)."""
    if posts.size == 0:
        return
    # Each post's engagers by route since its previous graduation, as shares (float32, in place; the NumPy steps:
    # tests/test_kernels.py, _reference_note_graduations).
    kernels.note_graduations(np.ascontiguousarray(posts, dtype=np.int64), table.engagement_by_route,
                             table.route_at_credit, table.credit, table.has_credit, table.author,
                             np.ascontiguousarray(kind, dtype=np.int8), ROUTE_OF_KIND)
