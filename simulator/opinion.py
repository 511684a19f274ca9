"""Opinion dynamics (spec §2): engaged political impressions pull support toward the post's candidate."""

from __future__ import annotations

import numpy as np

from . import kernels


def persuade(support: np.ndarray, users: np.ndarray, candidates: np.ndarray, persuasion: float) -> None:
    """Move ``support`` (rows = audience users, columns = candidates + undecided) in place.

    Each engaged impression of a post promoting candidate c moves the user's support vector toward the one-hot of
    c by ``persuasion`` times the remaining distance. A user with k such impressions in one step moves by
    1 - (1 - persuasion)^k toward the mean of their one-hots: exact when they all promote one candidate, and always
    a valid probability vector.
    """
    if users.size == 0 or persuasion <= 0:
        return
    users = np.ascontiguousarray(users, dtype=np.int64)
    candidates = np.ascontiguousarray(candidates, dtype=np.int64)
    if users.size > 1 and not kernels.is_sorted(users):   # a step's impressions come sorted by user
        order = np.argsort(users, kind="stable")
        users, candidates = users[order], candidates[order]
    # Each user's number of such impressions and the share promoting each candidate (compiled; the NumPy steps:
    # tests/test_kernels.py, _reference_persuade).
    uniq, counts, pull = kernels.persuasion_pulls(users, candidates, support.shape[1])
    kernels.move_support(support, uniq, counts, float(persuasion), pull)


def expected_vote_shares(support: np.ndarray, audience: np.ndarray) -> np.ndarray:
    """Mean support per candidate (undecided column dropped) over the audience rows given."""
    return support[audience, :-1].mean(axis=0)
