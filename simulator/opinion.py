"""Opinion dynamics (spec §2): engaged political impressions pull support toward the post's candidate."""

from __future__ import annotations

import numpy as np


def persuade(support: np.ndarray, users: np.ndarray, candidates: np.ndarray, persuasion: float) -> None:
    """Move ``support`` (rows = audience users, columns = candidates + undecided) in place.

    Each engaged impression of a post promoting candidate c moves the user's support vector toward the one-hot of
    c by ``persuasion`` times the remaining distance. A user with k such impressions in one step moves by
    1 - (1 - persuasion)^k toward the mean of their one-hots: exact when they all promote one candidate, and always
    a valid probability vector.
    """
    if users.size == 0 or persuasion <= 0:
        return
    n_cols = support.shape[1]
    uniq, inv = np.unique(users, return_inverse=True)
    counts = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    # Impressions per (user, candidate), as float64 counts (a bincount: the same whole numbers as adding 1.0 per
    # impression with ``np.add.at``, much faster).
    pull = np.bincount(inv * n_cols + candidates, minlength=uniq.size * n_cols).reshape(uniq.size, n_cols)
    pull = pull.astype(np.float64)
    pull /= counts[:, None]
    moved = 1.0 - (1.0 - persuasion) ** counts
    support[uniq] = (1.0 - moved)[:, None] * support[uniq] + moved[:, None] * pull


def expected_vote_shares(support: np.ndarray, audience: np.ndarray) -> np.ndarray:
    """Mean support per candidate (undecided column dropped) over the audience rows given."""
    return support[audience, :-1].mean(axis=0)
