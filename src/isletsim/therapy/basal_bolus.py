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

import numba as nb
import numpy as np
import pandas as pd

from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy, basal_u_per_min
from isletsim.therapy.pump import Pump, deliver_rate

#: The native float64 dtype (an identity check is cheaper than ``==`` on hot paths; a
#: float64 array with another dtype object just takes the general path).
_F64 = np.dtype(np.float64)


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
        pump = policy.pump
        # scalars of the compiled per-step kernel (see bolus_rate)
        self._kernel_args = (
            float(policy.target_mg_dl), float(policy.correction_threshold_mg_dl),
            int(policy.control_period_min), float(pump.increment), float(pump.max_u_per_min),
            bool(pump.round_in_pmol),
        )  # fmt: skip

    def decide(self, obs: Observation) -> InsulinAction:
        rate = self.bolus_rate(obs.cgm_mg_dl, obs.announced_g)
        return InsulinAction(self.basal, rate, self.bolus_minutes, self.no_meal_bolus)

    def bolus_rate(self, cgm: np.ndarray, announced_g: np.ndarray) -> np.ndarray:
        """Bolus rate (U/min, through the pump) for CGM and announced grams (arrays (N,))."""
        n = self.cr.shape[0]
        if (
            type(cgm) is np.ndarray and type(announced_g) is np.ndarray
            and cgm.dtype is _F64 and announced_g.dtype is _F64
            and cgm.shape == (n,) and announced_g.shape == (n,)
        ):  # fmt: skip
            out = np.empty(n)
            _bolus_kernel(cgm, announced_g, self.cr, self.cf, *self._kernel_args, out)
            return out
        pol = self.policy
        correction = np.where(
            cgm > pol.correction_threshold_mg_dl, (cgm - pol.target_mg_dl) / self.cf, 0.0
        )
        bolus_u = np.where(announced_g > 0, announced_g / self.cr + correction, 0.0)
        return pol.pump.deliver(bolus_u / self.control_period_min)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _bolus_kernel(
    cgm, announced, cr, cf, target, threshold, period, increment, max_rate, round_in_pmol, out
):  # fmt: skip
    """``BasalBolus`` bolus rate per participant, the operations of the array version."""
    for i in range(out.shape[0]):
        correction = (cgm[i] - target) / cf[i] if cgm[i] > threshold else 0.0
        bolus_u = announced[i] / cr[i] + correction if announced[i] > 0 else 0.0
        out[i] = deliver_rate(bolus_u / period, increment, max_rate, round_in_pmol)
