"""Basal-bolus therapy equivalent to simglucose 0.2.11's ``BBController``.

Reference behaviour (simglucose-notes section 9): at every control step (the sensor's sample
period, 3 min for Dexcom) the basal is ``u2ss * BW / 6000`` U/min; when the previous period
announced a meal of M grams, a bolus of ``M / CR + 1[CGM > 150] * (CGM - target) / CF`` units
is delivered at ``bolus / period`` U/min over the next period. CGM is the observation averaged
over the previous period. Both rates go through the pump. No correction outside meals, no
insulin on board, no pre-bolus (the bolus arrives in the period after the meal starts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy, basal_u_per_min
from isletsim.therapy.pump import Pump


@dataclass(frozen=True)
class BasalBolus(Therapy):
    """Meal boluses by carb ratio with a correction above ``correction_threshold_mg_dl``.

    Parameters
    ----------
    target_mg_dl
        Correction target (simglucose: 140 mg/dL).
    correction_threshold_mg_dl
        A correction is added only when CGM exceeds this (simglucose: 150 mg/dL).
    control_period_min
        Minutes between decisions; simglucose acts at the sensor period (3 min, Dexcom).
    pump
        Pump that rounds and clips the rates (default: simglucose's Insulet quirk).
    """

    target_mg_dl: float = 140.0
    correction_threshold_mg_dl: float = 150.0
    control_period_min: int = 3
    pump: Pump = field(default_factory=Pump.simglucose_insulet)

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind to participants (uses ``u2ss``, ``BW``, ``CR`` and ``CF``)."""
        return _BoundBasalBolus(self, patients)


class _BoundBasalBolus(BoundTherapy):
    def __init__(self, policy: BasalBolus, patients: pd.DataFrame) -> None:
        self.policy = policy
        self.control_period_min = policy.control_period_min
        self.cr = patients["CR"].to_numpy(float)
        self.cf = patients["CF"].to_numpy(float)
        n = len(patients)
        self.basal = policy.pump.deliver(basal_u_per_min(patients))
        self.bolus_minutes = np.full(n, policy.control_period_min, dtype=np.int64)
        self.no_meal_bolus = np.zeros(n)

    def decide(self, obs: Observation) -> InsulinAction:
        pol = self.policy
        cgm = obs.cgm_mg_dl
        correction = np.where(
            cgm > pol.correction_threshold_mg_dl, (cgm - pol.target_mg_dl) / self.cf, 0.0
        )
        bolus_u = np.where(obs.announced_g > 0, obs.announced_g / self.cr + correction, 0.0)
        rate = pol.pump.deliver(bolus_u / self.control_period_min)
        return InsulinAction(self.basal, rate, self.bolus_minutes, self.no_meal_bolus)
