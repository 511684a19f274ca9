"""Mitigation stages used by the tests (loaded by dotted path, as a platform team's own stage would be)."""

from __future__ import annotations

import numpy as np

from simulator.mitigations import Verdict

#: Every (evidence, view, context) a Spy stage was called with, per test (cleared by the tests).
SPY_CALLS: list = []


class Spy:
    """Records what the platform hands a stage; decides nothing."""

    def __init__(self, context):
        self.context = context

    def review(self, evidence, view, rng):
        SPY_CALLS.append((evidence, view, self.context, rng))
        return None


class RemoveAccounts:
    """Takes the accounts ``rows`` down at the first review on or after day ``day``."""

    def __init__(self, context, rows=(), day=0.0):
        self.rows = np.asarray(rows, dtype=np.int64)
        self.at = day * 1440.0
        self.done = False

    def review(self, evidence, view, rng):
        if self.done or evidence.now < self.at:
            return None
        self.done = True
        return Verdict(remove=self.rows, flag=self.rows, reason="test removal")


class ScaleWeights:
    """Multiplies every event's weight by ``factor``."""

    def __init__(self, context, factor=0.5):
        self.factor = factor

    def review(self, evidence, view, rng):
        return Verdict(event_weight=np.full(evidence.size, self.factor))


class BadWeights:
    """Breaks the contract: a weight above 1."""

    def __init__(self, context):
        pass

    def review(self, evidence, view, rng):
        return Verdict(event_weight=np.full(evidence.size, 2.0))


class ReadsTrueKind:
    """Tries to read ground truth from what it is given."""

    def __init__(self, context):
        pass

    def review(self, evidence, view, rng):
        return Verdict(flag=np.flatnonzero(view.account_kind == 2))


class NotAStage:
    """Has no review method."""

    def __init__(self, context):
        pass
