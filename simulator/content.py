"""Posts: one row per post in growable NumPy columns.

Per-post history is bounded (spec §1): running totals by engagement type plus the counts of the first hour, never a
per-step copy. Ground-truth columns (``quality``, ``sponsored``, ``disclosed``, ``campaign``, the per-route
engagement ledger) are read by users and metrics only; the platform reads posts through
:class:`simulator.platform.PlatformView`.
"""

from __future__ import annotations

import numpy as np

#: Engagement types, in column order of every per-type array.
ENGAGEMENT_TYPES = ("watch", "like", "comment", "share", "follow")
WATCH, LIKE, COMMENT, SHARE, FOLLOW = range(5)
N_ROUTES = 4
NO_CANDIDATE = -1


class PostTable:
    """Columns of all posts created so far. ``n`` rows are valid; arrays grow by doubling."""

    _COLUMNS = {
        # observable content and the platform's own labels
        "author": np.int32, "created": np.float64, "topic": np.int16, "candidate": np.int8,
        "paid_label": np.bool_, "removed": np.bool_,
        "oon_blocked": np.bool_,      # a mitigation keeps the post out of out-of-network distribution
        "held_until": np.float64,     # a mitigation holds the post's graduation until this minute (0 = never held)
        "paid_inferred": np.bool_,    # a mitigation labelled the post as paid content
        # signals as the platform counts them: every play and engagement weighted by the mitigations (1 without)
        "views": np.int32, "served_views": np.int32,
        "trusted_views": np.float32, "trusted_first_hour_views": np.float32,
        # ground truth
        "quality": np.float32, "sponsored": np.bool_, "disclosed": np.bool_, "campaign": np.bool_,
        "has_credit": np.bool_, "impressions_o": np.int32,   # impressions served to the audience O
    }
    _MATRICES = {"engagements": (len(ENGAGEMENT_TYPES), np.int32),   # as displayed to users (raw)
                 "trusted_engagements": (len(ENGAGEMENT_TYPES), np.float32),
                 "trusted_first_hour_engagements": (len(ENGAGEMENT_TYPES), np.float32),
                 "trusted_served_engagements": (len(ENGAGEMENT_TYPES), np.float32),   # from feed impressions
                 "engagement_by_route": (N_ROUTES, np.float32),   # ground truth: engagers' routes (spec §5)
                 "credit": (N_ROUTES, np.float32),                # route shares of the latest graduation
                 "route_at_credit": (N_ROUTES, np.float32)}       # ledger snapshot at that graduation

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self._cap = max(16, capacity)
        for name, dtype in self._COLUMNS.items():
            setattr(self, name, np.zeros(self._cap, dtype=dtype))
        for name, (width, dtype) in self._MATRICES.items():
            setattr(self, name, np.zeros((self._cap, width), dtype=dtype))

    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = self._cap
        while cap < need:
            cap *= 2
        for name in list(self._COLUMNS) + list(self._MATRICES):
            old = getattr(self, name)
            new = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        self._cap = cap

    def add(self, author: np.ndarray, created: np.ndarray, topic: np.ndarray, candidate: np.ndarray,
            quality: np.ndarray, sponsored: np.ndarray | bool = False, disclosed: np.ndarray | bool = False,
            campaign: np.ndarray | bool = False) -> np.ndarray:
        """Append posts (already sorted by creation time by the caller); returns their ids."""
        k = int(np.size(author))
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        self._grow(self.n + k)
        new = slice(self.n, self.n + k)
        self.author[new] = author
        self.created[new] = created
        self.topic[new] = topic
        self.candidate[new] = candidate
        self.quality[new] = quality
        self.sponsored[new] = sponsored
        self.disclosed[new] = disclosed
        # A creator who discloses a paid partnership puts a label on the post that everyone sees.
        self.paid_label[new] = self.sponsored[new] & self.disclosed[new]
        self.campaign[new] = campaign
        self.n += k
        return np.arange(new.start, new.stop)


class PostDrafts:
    """Posts created during one step, gathered from every actor before they are added in time order."""

    #: the post columns a draft sets (arguments of :meth:`PostTable.add`), each a scalar or one value per post
    FIELDS = ("author", "created", "topic", "candidate", "quality", "sponsored", "disclosed", "campaign")
    #: who made a draft (``source``); :meth:`commit` returns each post's as its index here
    SOURCES = ("organic", "candidate", "candidate_target", "influencer_unpaid", "paid", "bot", "bot_dormant",
               "recruit")

    def __init__(self):
        self._parts: list[tuple[int, int, tuple]] = []

    def add(self, author, created, topic, candidate, quality, sponsored=False, disclosed=False, campaign=False,
            source: str = "organic") -> None:
        k = int(np.size(author))
        if k == 0:
            return
        self._parts.append((k, self.SOURCES.index(source),
                            (author, created, topic, candidate, quality, sponsored, disclosed, campaign)))

    @classmethod
    def source_codes(cls, *names: str) -> np.ndarray:
        """The codes :meth:`commit` gives the drafts of these sources."""
        return np.array([cls.SOURCES.index(n) for n in names], dtype=np.uint8)

    def commit(self, table: PostTable) -> tuple[np.ndarray, np.ndarray]:
        """Add all drafts to ``table`` sorted by creation time; returns (post ids, source of each id as its index in
        :data:`SOURCES`, uint8)."""
        if not self._parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)
        sizes = [k for k, _, _ in self._parts]
        bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        cols = {}
        for f, name in enumerate(self.FIELDS):
            # Each part's values (or scalar) written into one array of the column's dtype: what adding them would
            # store anyway, without a broadcast copy and a concatenation per part.
            col = np.empty(bounds[-1], dtype=PostTable._COLUMNS[name])
            for (_, _, values), lo, hi in zip(self._parts, bounds, bounds[1:]):
                col[lo:hi] = values[f]
            cols[name] = col
        order = np.argsort(cols["created"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        source = np.repeat(np.array([s for _, s, _ in self._parts], dtype=np.uint8), sizes)[order]
        ids = table.add(**cols)
        self._parts = []
        return ids, source
