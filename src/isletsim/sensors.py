"""Sensors: the continuous glucose monitor.

The CGM samples subcutaneous glucose (``Gs / Vg``, what simglucose calls "BG") every
``sample_period_min`` minutes, holds the value in between and clips it to the sensor's range
(simglucose 0.2.11 ``CGMSensor.measure``; Dexcom row of ``sensor_params.csv``: 3-min sampling,
range 39-600 mg/dL). This version is noise-free: the Breton & Kovatchev (2008) error model with
simglucose's Johnson S_U parameters is not yet implemented, so ``cgm_mg_dl`` equals the clipped,
sampled-and-held subcutaneous glucose (the reference trajectories were made the same way, with
the noise removed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CGM:
    """A noise-free CGM: sampling period and reporting range.

    Parameters
    ----------
    sample_period_min
        Minutes between readings (Dexcom 3, Guardian 5, Navigator 1 in simglucose).
    low_mg_dl, high_mg_dl
        Reporting range; readings are clipped to it.
    """

    sample_period_min: int = 3
    low_mg_dl: float = 39.0
    high_mg_dl: float = 600.0

    def __post_init__(self) -> None:
        if self.sample_period_min < 1:
            raise ValueError(f"sample_period_min must be >= 1, got {self.sample_period_min}")
        if not self.low_mg_dl < self.high_mg_dl:
            raise ValueError("CGM range must have low_mg_dl < high_mg_dl")

    @classmethod
    def dexcom(cls) -> CGM:
        """simglucose's 'Dexcom' sensor without noise (3 min, 39-600 mg/dL)."""
        return cls(3, 39.0, 600.0)
