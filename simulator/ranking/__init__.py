"""Feed rankers: the interface (:mod:`.base`), the built-ins and loading a user ranker by dotted path."""

from __future__ import annotations

from ..plugins import load_class
from .base import EMPTY, FeedContractError, FeedRequest, Feeds, RankerContext, Route
from .chronological import ChronologicalRanker
from .engagement import EngagementRanker
from .for_you import ForYouRanker
from .random_feed import RandomRanker

BUILTIN = {
    "chronological": ChronologicalRanker,
    "engagement": EngagementRanker,
    "for_you": ForYouRanker,
    "random": RandomRanker,
}

__all__ = ["BUILTIN", "EMPTY", "FeedContractError", "FeedRequest", "Feeds", "RankerContext", "Route",
           "load_ranker_class", "make_ranker"]


def load_ranker_class(name: str) -> type:
    """A built-in ranker by name, or ``package.module.Class`` imported; it must define ``rank``."""
    return load_class(name, BUILTIN, "rank", "(request, view, rng)")


def make_ranker(context: RankerContext):
    cls = load_ranker_class(context.settings.name)
    return cls(context, **context.settings.options)
