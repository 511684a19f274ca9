"""Mitigation stages (spec §4): the interface (:mod:`.base`), the pipeline the platform runs (:mod:`.pipeline`) and
one module per built-in stage."""

from __future__ import annotations

from .base import (ACTIVE, TYPE_BITS, Evidence, StageContext, StageContractError, Verdict, load_stage_class,
                   make_stage)

from .circuit_breaker import CircuitBreaker
from .coordination import CoordinationDetection
from .dormancy import DormancyDampening
from .paid_labeling import PaidLabeling
from .rate_limit import RateLimit
from .takedown import Takedown

#: Built-in stages by the ``name`` of their ``[[mitigations]]`` table (parameters: ``config.MITIGATION_CONFIGS``).
BUILTIN: dict[str, type] = {
    "dormancy_dampening": DormancyDampening,
    "coordination_detection": CoordinationDetection,
    "circuit_breaker": CircuitBreaker,
    "paid_labeling": PaidLabeling,
    "takedown": Takedown,
    "rate_limit": RateLimit,
}

__all__ = ["ACTIVE", "BUILTIN", "CircuitBreaker", "CoordinationDetection", "DormancyDampening", "PaidLabeling",
           "RateLimit", "Takedown", "TYPE_BITS", "Evidence", "StageContext", "StageContractError", "Verdict",
           "load_stage_class", "make_stage"]
