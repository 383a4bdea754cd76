"""What a therapy policy sees and returns at each control step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Observation:
    """What the policy knows at minute ``t`` (arrays over participants).

    Attributes
    ----------
    t : int
        Minute of the control step.
    cgm_mg_dl : numpy.ndarray
        CGM averaged over the previous control period (the CGM reading itself at t = 0),
        as simglucose's environment reports it.
    announced_g : numpy.ndarray
        Carbohydrate announced during the previous control period, g.
    glucose_plasma_mg_dl : numpy.ndarray or None
        True plasma glucose at minute ``t`` (for physiology-driven events such as the
        hazard of a severe hypoglycaemic event; a clinical policy should use the CGM).
    """

    t: int
    cgm_mg_dl: np.ndarray
    announced_g: np.ndarray
    glucose_plasma_mg_dl: np.ndarray | None = None


@dataclass(frozen=True)
class InsulinAction:
    """Insulin to deliver over the next control period (arrays over participants).

    Attributes
    ----------
    basal_u_per_min : basal rate, U/min.
    bolus_u_per_min : bolus rate, U/min, delivered during the first ``bolus_minutes`` minutes.
    bolus_minutes : int array, minutes over which the bolus rate runs.
    meal_bolus_u_per_g : units given at the minute a meal is announced, per gram (0 for none).
    carbs_g : carbohydrate the policy has the participant eat at the start of the period
        (g, eaten at 5 g/min; e.g. 15 g to treat a low), or None for none.
    """

    basal_u_per_min: np.ndarray
    bolus_u_per_min: np.ndarray
    bolus_minutes: np.ndarray
    meal_bolus_u_per_g: np.ndarray
    carbs_g: np.ndarray | None = None


class Therapy(ABC):
    """A therapy policy. ``bind`` it to participants, then call ``decide`` every period."""

    #: Minutes between decisions.
    control_period_min: int = 5

    @abstractmethod
    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Return the policy with per-participant settings taken from ``patients``."""


class BoundTherapy(ABC):
    """A therapy policy bound to N participants."""

    control_period_min: int

    @abstractmethod
    def decide(self, obs: Observation) -> InsulinAction:
        """Insulin for the period starting at ``obs.t``."""


def basal_u_per_min(patients: pd.DataFrame) -> np.ndarray:
    """Steady-state basal rate u2ss * BW / 6000 (U/min) of each participant."""
    return patients["u2ss"].to_numpy(float) * patients["BW"].to_numpy(float) / 6000.0
