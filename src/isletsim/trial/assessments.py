"""Visit assessments inside a trial run: the mixed-meal tolerance test and the CGM window.

The MMTT of a visit happens in the participant's simulated life: on the visit day the usual
meals from ``min_fast_h`` hours before the drink until the last sample are dropped, the drink
(Boost 6 mL/kg, at most 360 mL; science reference §3.4 [U]) is taken at 08:00 and its meal
bolus is withheld (basal continues), as in the MMTT protocol of islet trials (Rickels MR et
al. *Transplantation* 2018;102:1479; the Igls criteria use the MMTT peak C-peptide).
C-peptide is sampled from the simulated plasma concentration at -10, 0, 15, 30, 60, 90 and
120 minutes and measured with the assay model of :func:`isletsim.model.cpeptide.measure_cpeptide`
(detection limit; fasting = mean of the detectable samples at or before 0 min, peak = the
largest detectable sample).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from isletsim.engine import MINUTES_PER_DAY
from isletsim.meals import MealEvents
from isletsim.mmtt import BOOST_CARBS_G_PER_ML, MMTT_SAMPLES_MIN
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy

#: Clock minute of the MMTT drink (08:00).
MMTT_CLOCK_MIN = 8 * 60
#: Boost dose of the MMTT: 6 mL/kg, at most 360 mL (science reference §3.4 [U]).
BOOST_ML_PER_KG = 6.0
BOOST_MAX_ML = 360.0
#: Overnight fast before the drink, hours.
MIN_FAST_H = 8.0


def mmtt_drink_g(body_weight_kg: np.ndarray) -> np.ndarray:
    """Carbohydrate of the MMTT drink, g: Boost 6 mL/kg up to 360 mL at 41 g / 237 mL."""
    ml = np.minimum(BOOST_ML_PER_KG * np.asarray(body_weight_kg, dtype=float), BOOST_MAX_ML)
    return ml * BOOST_CARBS_G_PER_ML


def with_test_drinks(
    meals: MealEvents, drink_minutes: Sequence[int], drink_g: np.ndarray
) -> MealEvents:
    """Usual meals with a fasting window and a test drink at each of ``drink_minutes``.

    Meals from ``MIN_FAST_H`` hours before a drink until its last sample (120 min) are
    dropped; the drink is added at the drink minute for every participant.

    Parameters
    ----------
    meals
        Usual meals of N participants (absolute minutes of the run).
    drink_minutes
        Absolute minutes of the test drinks (the same for everyone).
    drink_g
        (N,) carbohydrate of each participant's drink, g.
    """
    n = meals.ptr.shape[0] - 1
    fast = round(MIN_FAST_H * 60)
    last = max(MMTT_SAMPLES_MIN)
    minute, grams = meals.minute, meals.grams
    keep = np.ones(minute.shape[0], dtype=bool)
    for m in drink_minutes:
        keep &= ~((minute >= m - fast) & (minute <= m + last))
    lists = []
    for i in range(n):
        a, b = int(meals.ptr[i]), int(meals.ptr[i + 1])
        sel = keep[a:b]
        rows = list(zip(minute[a:b][sel].tolist(), grams[a:b][sel].tolist(), strict=True))
        rows += [(int(m), float(drink_g[i])) for m in drink_minutes]
        rows.sort()
        lists.append(rows)
    return MealEvents.from_lists(lists)


class WithholdTestBolus(Therapy):
    """A therapy that gives no meal bolus for the test drinks; everything else unchanged.

    The drink is hidden from the wrapped therapy: its announced grams are removed from the
    observation (so no late or missed-bolus logic sees it) and the meal bolus is zero for
    the control step in which the drink is taken.

    Parameters
    ----------
    inner
        The participant's usual therapy.
    drink_minutes
        Absolute minutes of the test drinks (the same for every participant).
    drink_g
        Mapping from participant name to drink carbohydrate, g.
    """

    def __init__(self, inner: Therapy, drink_minutes: Sequence[int], drink_g: dict[str, float]):
        self.inner = inner
        self.drink_minutes = np.asarray(sorted(int(m) for m in drink_minutes), dtype=np.int64)
        self.drink_g = dict(drink_g)
        self.control_period_min = int(inner.control_period_min)

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind the wrapped therapy to ``patients``."""
        names = [str(s) for s in patients["Name"]]
        grams = np.array([self.drink_g[n] for n in names], dtype=float)
        return _BoundWithholdTestBolus(self.inner.bind(patients), self.drink_minutes, grams)


class _BoundWithholdTestBolus(BoundTherapy):
    def __init__(self, inner: BoundTherapy, minutes: np.ndarray, grams: np.ndarray) -> None:
        self.inner = inner
        self.minutes = minutes
        self.grams = grams
        self.control_period_min = int(inner.control_period_min)
        self.minutes_list = minutes.tolist()
        self._next = 0

    def _any_in(self, lo: int, hi: int) -> bool:
        """A drink at a minute in [lo, hi); calls come with non-decreasing ``lo``."""
        m = self.minutes_list
        while self._next < len(m) and m[self._next] < lo:
            self._next += 1
        return self._next < len(m) and m[self._next] < hi

    def decide(self, obs: Observation) -> InsulinAction:
        t, period = int(obs.t), self.control_period_min
        if self._any_in(t - period, t):  # announced during the last period: hide it
            announced = np.maximum(np.asarray(obs.announced_g, dtype=float) - self.grams, 0.0)
            obs = Observation(obs.t, obs.cgm_mg_dl, announced, obs.glucose_plasma_mg_dl)
        action = self.inner.decide(obs)
        if self._any_in(t, t + period):  # taken during the coming period: no meal bolus
            action = InsulinAction(
                action.basal_u_per_min,
                action.bolus_u_per_min,
                action.bolus_minutes,
                np.zeros_like(np.asarray(action.meal_bolus_u_per_g, dtype=float)),
                action.carbs_g,
            )
        return action


def study_minute(day: int, run_in_days: int) -> int:
    """Absolute simulation minute of the start of study day ``day``."""
    return (int(day) + int(run_in_days)) * MINUTES_PER_DAY


__all__ = [
    "BOOST_MAX_ML",
    "BOOST_ML_PER_KG",
    "MIN_FAST_H",
    "MMTT_CLOCK_MIN",
    "WithholdTestBolus",
    "mmtt_drink_g",
    "study_minute",
    "with_test_drinks",
]
