"""The mitigation stage interface (spec §4).

A stage is a class constructed once per world as ``Stage(context)`` (built-in stages) or
``Stage(context, **options)`` (a team's own stage, ``options`` from its ``[[mitigations]]`` table), with one
method::

    def review(self, evidence: Evidence, view: PlatformView, rng: numpy.random.Generator) -> Verdict | None

The platform calls it at the end of every step from the stage's ``start_day`` on, in the order the scenario lists
the stages. ``evidence`` is what the platform logged during the step: every play of a post (a feed impression or a
direct visit) with the engagement types it carried, and the posts created. ``view`` is the same
:class:`simulator.platform.PlatformView` rankers get — observable state only, never an account's true kind or a
post's ground-truth flags — and it already shows what earlier stages decided in this step (labels, holds,
removals). ``rng`` is the world's ``mitigation`` stream. The returned :class:`Verdict` says how much each of the
step's events counts in the platform's ranking signals, which accounts the stage flags (and why), and which
accounts or posts it demotes, removes, labels, holds or releases. The platform applies it before the next stage
runs; the step's events are then counted with the product of every stage's weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import kernels

from ..config import MitigationConfig
from ..content import COMMENT, FOLLOW, LIKE, SHARE, WATCH
from ..plugins import load_class

#: Bit of each engagement type in an event's ``types`` mask (watch, like, comment, share, follow).
TYPE_BITS = np.array([1 << WATCH, 1 << LIKE, 1 << COMMENT, 1 << SHARE, 1 << FOLLOW], dtype=np.uint8)
#: Likes, comments and shares: the active engagement that coordination and rate limits look at.
ACTIVE = np.uint8((1 << LIKE) | (1 << COMMENT) | (1 << SHARE))

_EMPTY_IDS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class StageContext:
    """What a stage is built with."""

    settings: MitigationConfig        # the stage's validated [[mitigations]] table (name, start_day, parameters)
    index: int                        # position in the pipeline: bit ``1 << index`` of ``view.account_flag_stages``
    stage_names: tuple[str, ...]      # names of all stages, in pipeline order
    n_accounts: int
    n_audience: int
    step_minutes: float

    def stage_bits(self, names) -> int:
        """Bit mask of the pipeline stages called by any of ``names`` (for reading ``account_flag_stages``)."""
        bits = 0
        for i, n in enumerate(self.stage_names):
            if n in names:
                bits |= 1 << i
        return bits


@dataclass(frozen=True)
class Evidence:
    """One step's logged activity. Event arrays are aligned, one row per play of a post, in time order within the
    feed impressions and then the directed visits. Times are minutes since the start of day 0."""

    now: float                 # end of the step (the time of the review)
    step: int
    account: np.ndarray        # int64 account row
    post: np.ndarray           # int64 post id
    types: np.ndarray          # uint8 mask of TYPE_BITS (0 = a play with no engagement)
    time: np.ndarray           # float64
    served: np.ndarray         # bool: the play came from a feed impression (False: the account went to the post)
    weight: np.ndarray         # float32: how much each event counts after the earlier stages (read-only)
    new_posts: np.ndarray      # ids of the posts created in the step

    @property
    def size(self) -> int:
        return int(self.account.size)

    def active(self) -> np.ndarray:
        """Mask of events carrying a like, comment or share."""
        return (self.types & ACTIVE) != 0


@dataclass
class Verdict:
    """What a stage decided in one step. Every field is optional.

    * ``event_weight``: float array aligned with the evidence events, each in [0, 1]: how much the event counts in
      the platform's ranking signals (views, engagement counts, first-hour counts). Weights of all stages multiply.
    * ``flag`` / ``reason``: accounts the stage flags and why (one reason per account, or one for all). A stage may
      flag an account again; the first flag per account and stage is what is recorded and scored.
    * ``demote``: accounts whose engagement stops counting and whose posts are no longer promoted out of network.
    * ``remove``: accounts taken down: their posts leave every later feed, they stop opening the app and engaging.
    * ``block_posts``: posts no longer distributed out of network (in-network delivery to followers continues).
    * ``label_posts``: posts the platform labels as (inferred) paid content; a label does not block by itself.
    * ``hold_posts`` with ``hold_until`` (one time or one per post): posts that cannot graduate to wider
      distribution before that time. ``release_posts`` lifts holds early.
    """

    event_weight: np.ndarray | None = None
    flag: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    reason: np.ndarray | str = ""
    demote: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    remove: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    block_posts: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    label_posts: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    hold_posts: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    hold_until: np.ndarray | float = np.inf
    release_posts: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)


def note_first_times(first: np.ndarray, accounts: np.ndarray, times: np.ndarray,
                     marked: np.ndarray | None = None) -> np.ndarray:
    """Record in ``first`` (one entry per account, inf = never) the earliest of ``times`` of every account seen
    for the first time; returns those accounts (ascending). ``marked``: an all-False scratch array of one flag per
    account that the caller keeps between calls (allocated here when omitted). One compiled pass
    (:func:`simulator.kernels.note_first_times`)."""
    if marked is None:
        marked = np.zeros(first.size, dtype=bool)
    return kernels.note_first_times(first, np.ascontiguousarray(accounts, dtype=np.int64),
                                    np.ascontiguousarray(times, dtype=np.float64), marked)


class StageContractError(RuntimeError):
    """A stage returned a verdict that breaks the interface."""


def load_stage_class(name: str) -> type:
    """A built-in stage by name, or ``package.module.Class`` imported; it must define ``review``."""
    from . import BUILTIN

    return load_class(name, BUILTIN, "review", "(evidence, view, rng)")


def make_stage(context: StageContext):
    cls = load_stage_class(context.settings.name)
    options = getattr(context.settings, "options", None)
    return cls(context, **options) if options is not None else cls(context)
