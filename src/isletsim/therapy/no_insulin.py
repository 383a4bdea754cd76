"""No exogenous insulin (e.g. an insulin-independent graft recipient)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy


@dataclass(frozen=True)
class NoInsulin(Therapy):
    """Deliver no insulin at all."""

    control_period_min: int = 1440

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind to ``len(patients)`` participants."""
        return _BoundNoInsulin(self.control_period_min, len(patients))


class _BoundNoInsulin(BoundTherapy):
    def __init__(self, period: int, n: int) -> None:
        self.control_period_min = period
        zeros = np.zeros(n)
        self._action = InsulinAction(zeros, zeros, np.zeros(n, dtype=np.int64), zeros)

    def decide(self, obs: Observation) -> InsulinAction:
        return self._action
