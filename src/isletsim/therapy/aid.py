"""Automated insulin delivery: a hybrid closed loop, PID with insulin feedback (PID-IFB).

The algorithm is the proportional-integral-derivative controller with model-predicted
insulin feedback of Steil et al. (Diabetes 2006;55:3344-3350; J Clin Endocrinol Metab
2011;96:1402-1408), the family that runs the Medtronic MiniMed 670G "Auto Mode", used as a
*hybrid* loop: the participant still announces meals and gets a bolus of carbs / CR.
Every ``control_period_min`` (5) minutes, on CGM only (never the true plasma glucose), for
each participant (arrays over participants, no loop over them):

1. Insulin model update with what was delivered over the previous period, ``u`` (U/h,
   automatic rate + correction bolus + meal bolus spread over the period)::

       I_sc <- a_sc * I_sc + (1 - a_sc) * u          a_sc = exp(-T / tau_sc)
       I_p  <- a_p  * I_p  + (1 - a_p)  * I_sc       a_p  = exp(-T / tau_p)

   two first-order compartments in series with unit steady-state gain, so that ``I_p``
   (plasma insulin expressed as a delivery rate) equals ``u`` at steady state.
2. PID on the CGM error ``e = CGM - target`` (mg/dL), with gains from the total daily
   insulin ``TDI`` (U/day, Quest column)::

       KP = (TDI / 24) / kp_excursion_mg_dl                       U/h per mg/dL
       I  <- clip(I + KP / TI * e * T, 0, max_rate)               U/h  (anti-windup)
       D  =  KP * TD * (CGM - CGM_prev) / T
       PID = KP * e + I + D

   ``I`` starts at the participant's basal rate (``u2ss * BW / 6000`` U/min x 60), so that at
   target the loop delivers basal.
3. Insulin feedback: ``rate = clip((1 + gamma) * PID - gamma * I_p, 0, max_rate)`` with
   ``max_rate = max_rate_x_basal * basal``; then, with ``iob_guard`` on,
   when the eventual glucose ``CGM - CF * IOB`` (IOB as in 5, counting everything delivered
   up to now, meal boluses included) is below target, the rate is capped at
   ``basal * clip((eventual - suspend_mg_dl) / (target - suspend_mg_dl), 0, 1)``, so the
   loop does not stack automatic insulin on a meal bolus (a modelling choice after the
   OpenAPS "eventual BG"; not in the published PID-IFB).
4. Suspend: ``rate = 0`` while ``CGM < suspend_mg_dl`` or the linear projection
   ``CGM + dCGM/dt * suspend_horizon_min < predicted_suspend_mg_dl``.
5. Meals (hybrid): a bolus of ``grams / CR`` in the minute a meal is announced; at the next
   decision, if ``CGM > correction_threshold_mg_dl``, a correction
   ``max(0, (CGM - target) / CF - IOB)`` over the next period, where the insulin on board
   ``IOB = tau_sc * (I_sc - basal) + tau_p * (I_p - basal)`` (U, the insulin above basal
   still in the model's compartments, before the meal bolus is added).
   With a :class:`~isletsim.therapy.regimens.BolusBehaviour` (``behaviour``; carb-counting
   error, missed and late boluses, as for injections and pumps, science reference 10.1 [U])
   the participant boluses for the *estimated* grams ``G'`` that the behaviour returns at a
   decision (0 for a missed bolus; a late bolus when it is given): ``G' / CR`` plus the
   correction above (only when ``G' > 0``) over the next period, as
   :class:`~isletsim.therapy.regimens.PumpTherapy` does, and the insulin model counts it
   with the automatic rate in ``u``. With the default ``BolusBehaviour.perfect()``
   (``G' = G``) nothing changes: the meal bolus stays at the minute of the meal. The
   automatic part of the loop does not know about the error: it reacts to the CGM only.

Rates pass through the pump (rounding and limits), and the insulin model is fed with what
the pump delivers. The loop's basal reference (start of the integral term, cap of the
automatic rate, IOB baseline) is the model-optimal basal ``u2ss * BW / 6000``, not a
participant's mis-set ``basal_setting_factor`` (:mod:`isletsim.population`): a hybrid loop
learns the basal from the insulin it delivers (the 670G derives its limits from the total
daily dose, Garg 2017 [U]), which the integral term stands in for.

All constants are in ``isletsim/params/aid/pid_ifb.toml`` (every one unverified; see the
README there). Known simplifications: one set of gains day and night (Steil 2006 used a
more aggressive night-time TI/TD), no meal-time "pre-bolus", the derivative is the
difference of two successive 5-minute CGM means, and the insulin on board is the content of
the two feedback compartments (mean residence ``tau_sc + tau_p`` = 2 h), shorter than the
3-5 h insulin action of bolus calculators. CGM noise was not exercised (the shipped sensor
is noise-free); the derivative term would amplify it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType

import numba as nb
import numpy as np
import pandas as pd

from isletsim.params.toml_file import (
    ParameterEntry,
    ParameterFileError,
    load_parameter_path,
    numeric_values,
    sources,
)
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy, basal_u_per_min
from isletsim.therapy.pump import Pump, deliver_rate
from isletsim.therapy.regimens import BolusBehaviour, participant_keys

#: Package-relative name of the parameter file (in error messages).
PARAM_FILE = "isletsim/params/aid/pid_ifb.toml"
#: Parameters of ``pid_ifb.toml``.
PID_IFB_NAMES: tuple[str, ...] = (
    "target_mg_dl",
    "kp_excursion_mg_dl",
    "ti_min",
    "td_min",
    "ifb_gamma",
    "ifb_tau_sc_min",
    "ifb_tau_plasma_min",
    "max_rate_x_basal",
    "iob_guard",
    "suspend_mg_dl",
    "predicted_suspend_mg_dl",
    "suspend_horizon_min",
    "correction_threshold_mg_dl",
)
#: Parameters that must be > 0 (the others must be >= 0).
_POSITIVE: frozenset[str] = frozenset(
    {"target_mg_dl", "kp_excursion_mg_dl", "ti_min", "ifb_tau_sc_min", "ifb_tau_plasma_min",
     "max_rate_x_basal"}
)  # fmt: skip


@cache
def _pid_ifb_file() -> dict[str, ParameterEntry]:
    return load_parameter_path(
        resources.files("isletsim.params") / "aid" / "pid_ifb.toml",
        label=PARAM_FILE,
        expected=PID_IFB_NAMES,
        required_keys=("value", "unit", "source", "verified"),
    )


def load_pid_ifb() -> dict[str, float]:
    """Values of ``pid_ifb.toml`` by name (see the file for units and sources).

    Returns
    -------
    dict of str to float
        A fresh dict on every call.

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        If the file lacks or has an unknown parameter or field, or a value is not finite.
    """
    values = numeric_values(_pid_ifb_file(), file=PARAM_FILE)
    _check_values(values, PARAM_FILE)
    return values


def pid_ifb_sources() -> pd.DataFrame:
    """The PID-IFB parameters with unit, source and whether the value was verified."""
    return sources(_pid_ifb_file())


def _check_values(values: Mapping[str, float], where: str) -> None:
    for name, v in values.items():
        if not np.isfinite(v) or v < 0 or (name in _POSITIVE and v == 0):
            bound = "> 0" if name in _POSITIVE else ">= 0"
            raise ParameterFileError(
                where, f"must be finite and {bound}, got {v!r}", parameter=name, field="value"
            )


@dataclass(frozen=True)
class AutomatedInsulinDelivery(Therapy):
    """Hybrid closed loop: PID with insulin feedback on CGM plus announced meal boluses.

    Parameters
    ----------
    overrides
        Values replacing those of ``pid_ifb.toml`` (same names, e.g. ``{"target_mg_dl": 110}``).
    control_period_min
        Minutes between decisions (5, the CGM cadence of commercial systems).
    pump
        Pump that rounds and clips the rates (default: the one of
        :class:`~isletsim.therapy.BasalBolus`, simglucose's Insulet).
    behaviour
        Meal-bolus behaviour of the participant (carb-counting error, missed and late
        boluses; module docstring, item 5). Default :meth:`BolusBehaviour.perfect`: every
        meal bolused at the minute of the meal for its true carbohydrate. Use
        ``BolusBehaviour.from_parameters(seed=...)`` for the behaviour of ``regimens.toml``
        shared with :class:`~isletsim.therapy.regimens.PumpTherapy` and
        :class:`~isletsim.therapy.regimens.MultipleDailyInjections`.

    Notes
    -----
    Binding needs the patient columns ``u2ss``, ``BW`` (basal), ``TDI`` (gains), ``CR`` and
    ``CF``. The equations are in the module docstring.
    """

    overrides: Mapping[str, float] = field(default_factory=dict)
    control_period_min: int = 5
    pump: Pump = field(default_factory=Pump.simglucose_insulet)
    behaviour: BolusBehaviour = field(default_factory=BolusBehaviour.perfect)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.overrides) - set(PID_IFB_NAMES))
        if unknown:
            raise ValueError(
                f"unknown PID-IFB parameter(s) {unknown}; known: {', '.join(PID_IFB_NAMES)}"
            )
        values = {k: float(v) for k, v in self.overrides.items()}
        _check_values(values, "AutomatedInsulinDelivery(overrides=...)")
        object.__setattr__(self, "overrides", MappingProxyType(values))
        if int(self.control_period_min) < 1:
            raise ValueError(f"control_period_min must be >= 1, got {self.control_period_min}")

    @property
    def parameters(self) -> dict[str, float]:
        """The parameter values in use (file values with ``overrides`` applied)."""
        return {**load_pid_ifb(), **self.overrides}

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind to participants (uses ``u2ss``, ``BW``, ``TDI``, ``CR`` and ``CF``).

        Raises
        ------
        ValueError
            If a column is missing, or ``TDI``, ``CR`` or ``CF`` is not finite and positive.
        """
        return _BoundAID(self, patients)


def _positive_column(patients: pd.DataFrame, name: str) -> np.ndarray:
    if name not in patients:
        raise ValueError(f"AutomatedInsulinDelivery needs the patient column {name!r}")
    col = patients[name].to_numpy(float)
    if not np.all(np.isfinite(col)) or (col <= 0).any():
        raise ValueError(f"patient column {name!r} must be finite and > 0 for every participant")
    return col


class _BoundAID(BoundTherapy):
    """PID-IFB state for N participants (all arrays of shape (N,))."""

    def __init__(self, policy: AutomatedInsulinDelivery, patients: pd.DataFrame) -> None:
        prm = policy.parameters
        self.pump = policy.pump
        self.control_period_min = int(policy.control_period_min)
        period = float(self.control_period_min)
        n = len(patients)
        tdi = _positive_column(patients, "TDI")
        self.cr = _positive_column(patients, "CR")
        self.cf = _positive_column(patients, "CF")
        self.target = prm["target_mg_dl"]
        self.kp = tdi / 24.0 / prm["kp_excursion_mg_dl"]  # U/h per mg/dL
        self.ki = self.kp / prm["ti_min"]  # U/h per mg/dL per min
        self.kd = self.kp * prm["td_min"]  # U/h per (mg/dL/min)
        self.gamma = prm["ifb_gamma"]
        self.tau_sc = prm["ifb_tau_sc_min"]
        self.tau_p = prm["ifb_tau_plasma_min"]
        self.a_sc = np.exp(-period / self.tau_sc)
        self.a_p = np.exp(-period / self.tau_p)
        self.suspend = prm["suspend_mg_dl"]
        self.predicted_suspend = prm["predicted_suspend_mg_dl"]
        self.horizon = prm["suspend_horizon_min"]
        self.correction_threshold = prm["correction_threshold_mg_dl"]
        self.basal = 60.0 * basal_u_per_min(patients)  # U/h
        self.max_rate = prm["max_rate_x_basal"] * self.basal  # U/h
        self.iob_guard = prm["iob_guard"] > 0
        if self.iob_guard and prm["target_mg_dl"] <= prm["suspend_mg_dl"]:
            raise ValueError(
                f"target_mg_dl ({prm['target_mg_dl']}) must exceed suspend_mg_dl "
                f"({prm['suspend_mg_dl']}) when iob_guard is on"
            )
        # controller state, at steady state on basal
        self.i_term = np.minimum(self.basal, self.max_rate)
        self.i_sc = self.basal.copy()
        self.i_p = self.basal.copy()
        self.prev_cgm: np.ndarray | None = None
        self.last_u_per_h = np.zeros(n)  # automatic rate + correction delivered last period
        self.bolus_minutes = np.full(n, self.control_period_min, dtype=np.int64)
        self.behaviour = policy.behaviour.bind(participant_keys(patients))
        if self.behaviour.active:
            # the participant's (estimated, possibly late) meal bolus at the decision
            self.meal_u_per_g = np.zeros(n)
            self.decision_u_per_g = 1.0 / self.cr
        else:
            # the exact meal bolus at the minute of the meal (engine channel)
            self.meal_u_per_g = 1.0 / self.cr
            self.decision_u_per_g = np.zeros(n)
        #: Whether automatic delivery was suspended at the last decision (for inspection).
        self.suspended = np.zeros(n, dtype=bool)
        # scalar parameters of the compiled decide, in the order _pid_ifb_kernel reads them
        self._kernel_scalars = np.array([
            self.target, self.gamma, self.tau_sc, self.tau_p, self.a_sc, self.a_p,
            self.suspend, self.predicted_suspend, self.horizon, self.correction_threshold,
        ], dtype=np.float64)  # fmt: skip

    def insulin_on_board(self) -> np.ndarray:
        """Insulin above basal still in the model's compartments (U, may be negative)."""
        return (
            self.tau_sc * (self.i_sc - self.basal) + self.tau_p * (self.i_p - self.basal)
        ) / 60.0

    def decide(self, obs: Observation) -> InsulinAction:
        cgm = np.asarray(obs.cgm_mg_dl, dtype=np.float64)
        announced = np.asarray(obs.announced_g, dtype=np.float64)
        n = self.basal.shape[0]
        if announced.shape != (n,):
            announced = np.broadcast_to(announced, (n,)).astype(np.float64)
        bolus_g = np.asarray(self.behaviour.grams_to_bolus(obs.t, announced), dtype=np.float64)
        if cgm.shape == (n,):
            return self._decide_compiled(cgm, announced, bolus_g)
        period = float(self.control_period_min)
        iob = self.insulin_on_board()  # before the last period's meal bolus is counted
        if self.prev_cgm is None:
            slope = np.zeros_like(cgm)
        else:
            slope = (cgm - self.prev_cgm) / period  # mg/dL/min
            # insulin model: what was delivered over the previous period, as a mean rate
            u = self.last_u_per_h + announced * self.meal_u_per_g * 60.0 / period
            i_sc_prev = self.i_sc
            self.i_sc = self.a_sc * self.i_sc + (1.0 - self.a_sc) * u
            self.i_p = self.a_p * self.i_p + (1.0 - self.a_p) * i_sc_prev
        self.prev_cgm = cgm.copy()

        err = cgm - self.target
        self.i_term = np.clip(self.i_term + self.ki * err * period, 0.0, self.max_rate)
        pid = self.kp * err + self.i_term + self.kd * slope
        rate = np.clip((1.0 + self.gamma) * pid - self.gamma * self.i_p, 0.0, self.max_rate)
        if self.iob_guard:
            eventual = cgm - self.cf * self.insulin_on_board()
            frac = np.clip((eventual - self.suspend) / (self.target - self.suspend), 0.0, 1.0)
            rate = np.where(eventual < self.target, np.minimum(rate, frac * self.basal), rate)
        self.suspended = (cgm < self.suspend) | (
            cgm + slope * self.horizon < self.predicted_suspend
        )
        rate = np.where(self.suspended, 0.0, rate)

        correction = np.where(
            (bolus_g > 0) & (cgm > self.correction_threshold),
            np.maximum(0.0, err / self.cf - np.maximum(iob, 0.0)),
            0.0,
        )
        basal = self.pump.deliver(rate / 60.0)
        bolus = self.pump.deliver((correction + bolus_g * self.decision_u_per_g) / period)
        self.last_u_per_h = 60.0 * (basal + bolus)
        return InsulinAction(basal, bolus, self.bolus_minutes, self.meal_u_per_g)

    def _decide_compiled(
        self, cgm: np.ndarray, announced: np.ndarray, bolus_g: np.ndarray
    ) -> InsulinAction:
        """``decide`` in one compiled pass (same operations in the same order)."""
        n = cgm.shape[0]
        first = self.prev_cgm is None
        if first:
            self.prev_cgm = np.empty(n)
        basal = np.empty(n)
        bolus = np.empty(n)
        suspended = np.empty(n, dtype=bool)
        pump = self.pump
        _pid_ifb_kernel(
            cgm, announced, bolus_g, first, float(self.control_period_min),
            self.basal, self.max_rate, self.kp, self.ki, self.kd, self.cf, self.meal_u_per_g,
            self.decision_u_per_g,
            self._kernel_scalars, bool(self.iob_guard),
            float(pump.increment), float(pump.max_u_per_min), bool(pump.round_in_pmol),
            self.i_sc, self.i_p, self.i_term, self.prev_cgm, self.last_u_per_h,
            basal, bolus, suspended,
        )  # fmt: skip
        self.suspended = suspended
        return InsulinAction(basal, bolus, self.bolus_minutes, self.meal_u_per_g)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _max(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN propagates; of two equal zeros, ``b``)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a > b else b


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _min(a: float, b: float) -> float:
    """``np.minimum`` of two floats (NaN propagates; of two equal zeros, ``b``)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _clip(v: float, lo: float, hi: float) -> float:
    """``np.clip`` of a float (NaN and -0.0 kept)."""
    if v < lo:
        v = lo
    if v > hi:
        v = hi
    return v


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _pid_ifb_kernel(
    cgm, announced, bolus_g, first, period, basal_u_h, max_rate, kp, ki, kd, cf, meal_u_per_g,
    decision_u_per_g, scalars, iob_guard, increment, pump_max, round_in_pmol,
    i_sc, i_p, i_term, prev_cgm, last_u_per_h,
    basal_out, bolus_out, suspended,
):  # fmt: skip
    """``_BoundAID.decide`` per participant, state arrays updated in place."""
    target, gamma, tau_sc, tau_p, a_sc, a_p = scalars[0], scalars[1], scalars[2], scalars[3], \
        scalars[4], scalars[5]  # fmt: skip
    suspend, predicted, horizon, threshold = scalars[6], scalars[7], scalars[8], scalars[9]
    for i in range(cgm.shape[0]):
        c = cgm[i]
        b = basal_u_h[i]
        iob = (tau_sc * (i_sc[i] - b) + tau_p * (i_p[i] - b)) / 60.0
        if first:
            slope = 0.0
        else:
            slope = (c - prev_cgm[i]) / period
            u = last_u_per_h[i] + announced[i] * meal_u_per_g[i] * 60.0 / period
            i_sc_prev = i_sc[i]
            i_sc[i] = a_sc * i_sc[i] + (1.0 - a_sc) * u
            i_p[i] = a_p * i_p[i] + (1.0 - a_p) * i_sc_prev
        prev_cgm[i] = c
        err = c - target
        i_term[i] = _clip(i_term[i] + ki[i] * err * period, 0.0, max_rate[i])
        pid = kp[i] * err + i_term[i] + kd[i] * slope
        rate = _clip((1.0 + gamma) * pid - gamma * i_p[i], 0.0, max_rate[i])
        if iob_guard:
            eventual = c - cf[i] * ((tau_sc * (i_sc[i] - b) + tau_p * (i_p[i] - b)) / 60.0)
            frac = _clip((eventual - suspend) / (target - suspend), 0.0, 1.0)
            if eventual < target:
                rate = _min(rate, frac * b)
        susp = (c < suspend) | (c + slope * horizon < predicted)
        suspended[i] = susp
        if susp:
            rate = 0.0
        if bolus_g[i] > 0 and c > threshold:
            correction = _max(0.0, err / cf[i] - _max(iob, 0.0))
        else:
            correction = 0.0
        basal = deliver_rate(rate / 60.0, increment, pump_max, round_in_pmol)
        bolus = deliver_rate(
            (correction + bolus_g[i] * decision_u_per_g[i]) / period,
            increment,
            pump_max,
            round_in_pmol,
        )
        basal_out[i] = basal
        bolus_out[i] = bolus
        last_u_per_h[i] = 60.0 * (basal + bolus)


__all__ = ["PID_IFB_NAMES", "AutomatedInsulinDelivery", "load_pid_ifb", "pid_ifb_sources"]
