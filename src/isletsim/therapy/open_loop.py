"""Open-loop therapy: constant basal and a meal bolus of grams / CR at the meal start."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy, basal_u_per_min


@dataclass(frozen=True)
class OpenLoop(Therapy):
    """Constant basal ``u2ss * BW / 6000`` U/min and, optionally, a bolus of ``grams / CR``
    units delivered in the minute a meal is announced.

    ``OpenLoop(meal_bolus=False)`` is the bare-patient run of simglucose's ``T1DPatient``
    stepped with a constant insulin rate (the raw reference runs).
    """

    meal_bolus: bool = True
    control_period_min: int = 1440

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind to participants (uses ``u2ss``, ``BW`` and ``CR``)."""
        per_g = 1.0 / patients["CR"].to_numpy(float) if self.meal_bolus else None
        return _BoundOpenLoop(self.control_period_min, basal_u_per_min(patients), per_g)


class _BoundOpenLoop(BoundTherapy):
    def __init__(self, period: int, basal: np.ndarray, per_g: np.ndarray | None) -> None:
        n = basal.shape[0]
        self.control_period_min = period
        self._action = InsulinAction(
            basal_u_per_min=basal,
            bolus_u_per_min=np.zeros(n),
            bolus_minutes=np.zeros(n, dtype=np.int64),
            meal_bolus_u_per_g=np.zeros(n) if per_g is None else per_g,
        )

    def decide(self, obs: Observation) -> InsulinAction:
        return self._action
