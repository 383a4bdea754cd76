"""Insulin pump: rounding of requested rates and limits."""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

PMOL_PER_U = 6000.0


@dataclass(frozen=True)
class Pump:
    """Rounds and clips requested insulin rates (U/min).

    Parameters
    ----------
    increment
        Rounding step. With ``round_in_pmol`` (the simglucose 0.2.11 ``InsulinPump`` quirk,
        simglucose-notes section 8) the rate is rounded to a multiple of ``increment`` in
        **pmol/min**, which moves a basal rate by up to 0.02 % but does no real quantisation;
        otherwise it is rounded in U/min.
    max_u_per_min
        Upper limit (simglucose's Insulet: 30 U/min, compared with U/min rates).
    """

    increment: float = 0.05
    max_u_per_min: float = 30.0
    round_in_pmol: bool = True

    @classmethod
    def simglucose_insulet(cls) -> Pump:
        """simglucose's 'Insulet' pump, including its rounding in pmol/min."""
        return cls(0.05, 30.0, True)

    @classmethod
    def ideal(cls) -> Pump:
        """No rounding and no practical limit."""
        return cls(0.0, np.inf, False)

    def deliver(self, rate_u_per_min: np.ndarray) -> np.ndarray:
        """Rate the pump delivers for a requested rate (U/min), same order of operations as
        simglucose: to pmol/min, round to the increment, back to U/min, clip to limits."""
        r = np.asarray(rate_u_per_min, dtype=np.float64)
        if self.increment > 0:
            if self.round_in_pmol:
                r = np.round(r * PMOL_PER_U / self.increment) * self.increment / PMOL_PER_U
            else:
                r = np.round(r / self.increment) * self.increment
        return np.clip(r, 0.0, self.max_u_per_min)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def deliver_rate(r: float, increment: float, max_u_per_min: float, round_in_pmol: bool) -> float:
    """:meth:`Pump.deliver` of one rate (U/min), for compiled per-step kernels.

    Same operations in the same order as the array version, so the result is bit-identical:
    ``np.rint`` is what ``np.round`` does with no decimals, and the clip keeps NaN and -0.0
    as ``np.clip`` does.
    """
    if increment > 0:
        if round_in_pmol:
            r = np.rint(r * PMOL_PER_U / increment) * increment / PMOL_PER_U
        else:
            r = np.rint(r / increment) * increment
    if r < 0.0:
        r = 0.0
    if r > max_u_per_min:
        r = max_u_per_min
    return r
