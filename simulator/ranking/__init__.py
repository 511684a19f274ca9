"""Feed rankers: the interface (:mod:`.base`), the built-ins and loading a user ranker by dotted path."""

from __future__ import annotations

import importlib

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
    if name in BUILTIN:
        return BUILTIN[name]
    module_name, _, class_name = name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import module {module_name!r}: {exc}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ImportError(f"module {module_name!r} has no {class_name!r}")
    if not callable(getattr(cls, "rank", None)):
        raise TypeError(f"{name} has no rank(request, view, rng) method")
    return cls


def make_ranker(context: RankerContext):
    cls = load_ranker_class(context.settings.name)
    return cls(context, **context.settings.options)
