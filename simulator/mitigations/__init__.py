"""Mitigation stages (spec §4): the interface (:mod:`.base`), the pipeline the platform runs (:mod:`.pipeline`) and
one module per built-in stage."""

from __future__ import annotations

from .base import (ACTIVE, TYPE_BITS, Evidence, StageContext, StageContractError, Verdict, load_stage_class,
                   make_stage)

BUILTIN: dict[str, type] = {}

__all__ = ["ACTIVE", "BUILTIN", "TYPE_BITS", "Evidence", "StageContext", "StageContractError", "Verdict",
           "load_stage_class", "make_stage"]
