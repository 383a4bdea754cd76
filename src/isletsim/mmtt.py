"""Mixed-meal and oral glucose tolerance tests on simulated participants.

Mixed-meal tolerance test (MMTT), science reference §3.4 [V: CIT inclusion criteria;
TrialNet/ECPT protocol, Greenbaum et al. *Diabetes Care* 2008;31:1966]:

* participants live on their usual meals (default 07:00 45 g, 12:00 70 g, 18:00 80 g) and
  usual therapy up to the test day, then fast overnight: no meal in the ``min_fast_h`` hours
  before the test and none on the test day before it;
* at ``start_clock`` (default 08:00, "start before 10 a.m.") they drink Boost, 6 mL/kg up to
  360 mL; carbohydrate = volume x 41 g / 237 mL (Boost Original [U]), so 360 mL ≈ 62 g;
* the meal bolus is withheld from the start of the test; basal insulin continues ("pump basal
  may continue"; :class:`WithholdBolus`);
* plasma glucose and C-peptide are sampled at -10, 0, 15, 30, 60, 90 and 120 min;
* C-peptide goes through the assay (:func:`isletsim.model.cpeptide.measure_cpeptide`,
  science reference §3.3): values below the limit of detection (default 0.003 nmol/L [U];
  TrialNet 0.017 [V]) are *censored* (NaN with a flag), never substituted;
* scores (§3.4): fasting C-peptide, 60- and 90-min stimulated, peak, and the mean AUC
  AUC(0-120)/120 min by the trapezoid rule, in nmol/L.

Modelling limitations (documented choices, [U]):

* the engine eats every meal at 5 g/min (simglucose ``EAT_RATE``, :mod:`isletsim.meals`), so
  a 62 g Boost is ingested over ~12.5 min instead of "within 5 min", and it goes through the
  same solid-meal gastric emptying (Dalla Man 2006) as any meal; §3.4 notes a faster
  liquid-meal ``kmax``/``kabs`` would be reasonable, but no published values are used here;
* plasma glucose is reported without laboratory error.

Oral glucose tolerance test (:func:`ogtt`): the same fast, then 75 g of glucose at
``start_clock``. The engine models the glucose drink as a 75 g carbohydrate meal eaten at
its 5 g/min, i.e. over 15 min, with the participant's own gastric emptying; glucose is
sampled at 0, 30, 60, 90 and 120 min.

>>> import isletsim as isl
>>> from isletsim.therapy import NoInsulin
>>> res = mmtt("dalla-man-2007-normal", day=1, graft_fraction=1.0,
...            therapy=NoInsulin())  # doctest: +SKIP
>>> res.summary()  # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from isletsim.engine import MINUTES_PER_DAY, simulate
from isletsim.meals import DailyMeals, MealEvents
from isletsim.model.cpeptide import PMOL_PER_NMOL, measure_cpeptide
from isletsim.params import load_cohort, select_patients
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy

#: Usual meals before the test day (HH:MM=grams).
DEFAULT_MEALS = "07:00=45,12:00=70,18:00=80"
#: MMTT sample times, minutes from the start of the drink (§3.4).
MMTT_SAMPLES_MIN: tuple[int, ...] = (-10, 0, 15, 30, 60, 90, 120)
#: OGTT sample times, minutes from the start of the drink.
OGTT_SAMPLES_MIN: tuple[int, ...] = (0, 30, 60, 90, 120)
#: Boost Original: 41 g carbohydrate per 237 mL (science reference §3.4 [U]).
BOOST_CARBS_G_PER_ML = 41.0 / 237.0

_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
GraftFraction = np.ndarray | float | Callable[[float], np.ndarray] | None


# ----------------------------------------------------------------------------- therapy wrapper
@dataclass(frozen=True)
class WithholdBolus(Therapy):
    """Wrap a therapy so that it gives no bolus from ``start_min`` on; basal continues.

    The wrapped policy keeps its own decision cadence: its ``decide`` is called at its
    control period with the observation aggregated over that period (announced carbohydrate
    summed, CGM averaged). When the test start is not a multiple of that period the wrapper
    steps at the greatest common divisor, so the bolus is cut exactly at ``start_min``.

    Parameters
    ----------
    therapy
        The participant's usual therapy.
    start_min
        First minute (absolute, from the start of the run) without bolus.
    end_min
        First minute at which boluses resume (``None``: never, the default).
    """

    therapy: Therapy
    start_min: int
    end_min: int | None = None

    def __post_init__(self) -> None:
        if self.start_min < 0 or (self.end_min is not None and self.end_min <= self.start_min):
            raise ValueError(
                f"withholding window [{self.start_min}, {self.end_min}) is empty or negative"
            )

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind the wrapped therapy to ``patients`` and wrap the bound policy."""
        return _BoundWithholdBolus(self.therapy.bind(patients), self.start_min, self.end_min)


class _BoundWithholdBolus(BoundTherapy):
    def __init__(self, inner: BoundTherapy, start: int, end: int | None) -> None:
        self.inner = inner
        self.inner_period = int(inner.control_period_min)
        self.start, self.end = start, end
        self.control_period_min = math.gcd(self.inner_period, start, end or 0)
        self._action: InsulinAction | None = None
        self._t_inner = 0
        self._announced: np.ndarray | None = None
        self._cgm_sum: np.ndarray | None = None
        self._count = 0

    def _withheld(self, t: int) -> bool:
        return t >= self.start and (self.end is None or t < self.end)

    def decide(self, obs: Observation) -> InsulinAction:
        if self.control_period_min == self.inner_period:
            action = self.inner.decide(obs)
        else:
            action = self._decide_substep(obs)
        if not self._withheld(obs.t):
            return action
        zeros = np.zeros_like(action.bolus_u_per_min)
        return InsulinAction(action.basal_u_per_min, zeros,
                             np.zeros_like(action.bolus_minutes), zeros)  # fmt: skip

    def _decide_substep(self, obs: Observation) -> InsulinAction:
        """Call the wrapped policy at its own cadence with aggregated observations."""
        if obs.t > 0:
            self._announced = obs.announced_g.copy() if self._announced is None else (
                self._announced + obs.announced_g)
            self._cgm_sum = obs.cgm_mg_dl.copy() if self._cgm_sum is None else (
                self._cgm_sum + obs.cgm_mg_dl)
            self._count += 1
        if obs.t % self.inner_period == 0:
            if obs.t == 0 or self._announced is None or self._cgm_sum is None:
                inner_obs = obs
            else:
                inner_obs = Observation(obs.t, self._cgm_sum / self._count, self._announced)
            self._action = self.inner.decide(inner_obs)
            self._t_inner = obs.t
            self._announced, self._cgm_sum, self._count = None, None, 0
        assert self._action is not None
        a = self._action
        offset = obs.t - self._t_inner
        remaining = np.maximum(a.bolus_minutes - offset, 0).astype(np.int64)
        return InsulinAction(a.basal_u_per_min, a.bolus_u_per_min, remaining,
                             a.meal_bolus_u_per_g)  # fmt: skip


# ----------------------------------------------------------------------------- shared run
def _clock_minute(clock: str) -> int:
    m = _CLOCK.match(clock)
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"start_clock must be HH:MM, got {clock!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _patient_table(patients: Sequence[str] | pd.DataFrame | str) -> pd.DataFrame:
    if isinstance(patients, pd.DataFrame):
        return patients
    if isinstance(patients, str):
        return load_cohort(patients)
    return select_patients(list(patients))


def _names(table: pd.DataFrame) -> list[str]:
    return [str(s) for s in table["Name"]] if "Name" in table else [str(i) for i in table.index]


def fasting_meal_events(
    n: int, usual: DailyMeals, start_min: int, test_grams: np.ndarray, min_fast_min: int
) -> MealEvents:
    """Usual meals of the days before the test, the overnight fast, then the test drink.

    Keeps the usual meals at or before ``min(start_min - min_fast_min, midnight of the test
    day - 1)``: no meal on the test day before the drink, none within ``min_fast_min`` of it.

    Parameters
    ----------
    n
        Number of participants.
    usual
        Usual daily meals.
    start_min
        Absolute minute of the test drink.
    test_grams
        (n,) carbohydrate of the test drink per participant, g.
    min_fast_min
        Minutes of fasting required before the test.

    Returns
    -------
    MealEvents
        The same usual meals for everyone, each participant's own drink at ``start_min``.
    """
    cutoff = min(start_min - min_fast_min, (start_min // MINUTES_PER_DAY) * MINUTES_PER_DAY - 1)
    pre: list[tuple[int, float]] = []
    if cutoff >= 0:
        ev = usual.events(1, 0, cutoff + 1)
        pre = [(int(mi), float(g)) for mi, g in zip(ev.minute, ev.grams, strict=True)]
    return MealEvents.from_lists([[*pre, (start_min, float(test_grams[i]))] for i in range(n)])


@dataclass(frozen=True)
class _Run:
    names: list[str]
    start_min: int
    samples: np.ndarray
    glucose: np.ndarray  # (n, k) plasma glucose, mg/dL
    cpeptide_pmol_l: np.ndarray  # (n, k) true plasma C-peptide, pmol/L
    insulin_pmol_l: np.ndarray  # (n, k) plasma insulin, pmol/L


def _run_test(
    patients: Sequence[str] | pd.DataFrame | str,
    day: int,
    graft_fraction: GraftFraction,
    therapy: Therapy | None,
    meals: DailyMeals | str,
    grams: Callable[[pd.DataFrame], np.ndarray],
    start_clock: str,
    samples_min: Sequence[int],
    min_fast_h: float,
    withhold_bolus: bool,
) -> _Run:
    """Simulate usual days, the fast and the test drink; sample at the test times."""
    from isletsim.therapy.basal_bolus import BasalBolus

    if int(day) != day or day < 0:
        raise ValueError(f"day must be a whole number >= 0, got {day}")
    samples = np.asarray(sorted(samples_min), dtype=np.int64)
    if samples.size == 0 or len(set(samples.tolist())) != samples.size:
        raise ValueError("samples_min must be non-empty and without repeats")
    start = int(day) * MINUTES_PER_DAY + _clock_minute(start_clock)
    if start + samples[0] < 0:
        raise ValueError(f"sample at {samples[0]} min falls before the start of the run")
    if min_fast_h < 0:
        raise ValueError(f"min_fast_h must be >= 0, got {min_fast_h}")
    table = _patient_table(patients)
    n = len(table)
    usual = DailyMeals.parse(meals) if isinstance(meals, str) else meals
    test_g = np.broadcast_to(np.asarray(grams(table), dtype=float), (n,))
    events = fasting_meal_events(n, usual, start, test_g, round(min_fast_h * 60))
    base = BasalBolus() if therapy is None else therapy
    policy = WithholdBolus(base, start) if withhold_bolus else base
    phi: np.ndarray | Callable[[float], np.ndarray] | None = (
        np.full(n, float(graft_fraction))
        if isinstance(graft_fraction, float | int | np.number)
        else graft_fraction
    )
    total = start + max(int(samples[-1]), 0)
    first = start + int(samples[0])  # keep history only from the first sample on
    res = simulate(table, days=total / MINUTES_PER_DAY, meals=events, therapy=policy,
                   graft_fraction=phi, record=True, record_from_minute=first)  # fmt: skip
    idx = start + samples - first
    return _Run(
        _names(table), start, samples,
        res.trace["glucose_plasma_mg_dl"][:, idx],
        res.trace["cpeptide_pmol_l"][:, idx],
        res.trace["insulin_plasma_pmol_l"][:, idx],
    )  # fmt: skip


# ----------------------------------------------------------------------------- MMTT
def _mean_auc(t: np.ndarray, c: np.ndarray) -> float:
    """AUC(0..last)/(last) by the trapezoid rule; NaN if a value is censored (NaN)."""
    keep = t >= 0
    t, c = t[keep], c[keep]
    if t.size < 2 or np.isnan(c).any():
        return math.nan
    return float(np.sum(np.diff(t) * (c[1:] + c[:-1]) / 2.0) / (t[-1] - t[0]))


@dataclass(frozen=True)
class MMTTResult:
    """Outcome of :func:`mmtt`.

    Attributes
    ----------
    data : tidy table, one row per participant and sample: ``participant``, ``minute``
        (from the start of the drink), ``glucose_mg_dl`` (plasma), ``cpeptide_pmol_l`` and
        ``cpeptide_nmol_l`` (measured; NaN where censored), ``censored`` (below the LoD).
    lod_nmol_l : assay limit of detection, nmol/L.
    boost_ml, carbs_g : per-participant Boost volume (mL) and carbohydrate (g).
    start_minute : absolute minute of the drink in the simulated run.
    protocol : the settings used.
    """

    data: pd.DataFrame
    lod_nmol_l: float
    boost_ml: pd.Series
    carbs_g: pd.Series
    start_minute: int
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def participants(self) -> list[str]:
        """Participant names in row order."""
        return list(dict.fromkeys(self.data["participant"]))

    def summary(self) -> pd.DataFrame:
        """Scores per participant (C-peptide in nmol/L; science reference §3.4).

        Columns: ``fasting_cpeptide_nmol_l`` (mean of the detectable samples at or before
        0 min; NaN if all censored), ``cpeptide_60_nmol_l``, ``cpeptide_90_nmol_l`` (NaN if
        censored or not sampled), ``peak_cpeptide_nmol_l`` (largest detectable value),
        ``auc_mean_nmol_l`` (AUC(0-last)/last by the trapezoid rule; NaN if any sample from
        0 min on is censored, since censored values are never substituted),
        ``n_censored``, ``undetectable`` (all samples censored), ``fasting_glucose_mg_dl``
        (0 min), ``peak_glucose_mg_dl``, ``boost_ml``, ``carbs_g``.
        """
        rows = []
        for name, g in self.data.groupby("participant", sort=False, observed=True):
            t = g["minute"].to_numpy()
            c = g["cpeptide_nmol_l"].to_numpy(float)
            glu = g["glucose_mg_dl"].to_numpy(float)
            fasting = c[t <= 0]
            at = dict(zip(t.tolist(), c.tolist(), strict=True))
            rows.append({
                "participant": name,
                "fasting_cpeptide_nmol_l": (float(np.nanmean(fasting))
                                            if np.isfinite(fasting).any() else math.nan),
                "cpeptide_60_nmol_l": at.get(60, math.nan),
                "cpeptide_90_nmol_l": at.get(90, math.nan),
                "peak_cpeptide_nmol_l": float(np.nanmax(c)) if np.isfinite(c).any() else math.nan,
                "auc_mean_nmol_l": _mean_auc(t.astype(float), c),
                "n_censored": int(g["censored"].sum()),
                "undetectable": bool(g["censored"].all()),
                "fasting_glucose_mg_dl": float(glu[t == 0][0]) if (t == 0).any() else math.nan,
                "peak_glucose_mg_dl": float(glu.max()),
                "boost_ml": float(self.boost_ml[name]),
                "carbs_g": float(self.carbs_g[name]),
            })  # fmt: skip
        return pd.DataFrame(rows).set_index("participant")

    def plot(self, ax: Any = None) -> Any:
        """Glucose and C-peptide curves per participant (matplotlib, Agg backend).

        Parameters
        ----------
        ax
            Two matplotlib axes (glucose, C-peptide); new figure when ``None``.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib

        if ax is None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        else:
            fig = ax[0].figure
        for name, g in self.data.groupby("participant", sort=False, observed=True):
            ax[0].plot(g["minute"], g["glucose_mg_dl"], marker="o", label=str(name))
            ax[1].plot(g["minute"], g["cpeptide_nmol_l"], marker="o", label=str(name))
        ax[1].axhline(self.lod_nmol_l, color="grey", ls=":", label="LoD")
        ax[0].set(xlabel="minutes from drink", ylabel="plasma glucose (mg/dL)", title="MMTT")
        ax[1].set(xlabel="minutes from drink", ylabel="C-peptide (nmol/L)")
        ax[1].legend(fontsize="small")
        return fig

    def __repr__(self) -> str:
        n = len(self.participants)
        k = self.data["minute"].nunique()
        cens = int(self.data["censored"].sum())
        return (f"MMTTResult({n} participant(s), {k} samples each, {cens} censored below "
                f"LoD {self.lod_nmol_l:g} nmol/L)")  # fmt: skip


def mmtt(
    patients: Sequence[str] | pd.DataFrame | str,
    day: int = 1,
    graft_fraction: GraftFraction = None,
    therapy: Therapy | None = None,
    boost_ml_per_kg: float = 6.0,
    max_ml: float = 360.0,
    carbs_g_per_ml: float = BOOST_CARBS_G_PER_ML,
    start_clock: str = "08:00",
    samples_min: Sequence[int] = MMTT_SAMPLES_MIN,
    lod_nmol_l: float = 0.003,
    rng: np.random.Generator | None = None,
    *,
    meals: DailyMeals | str = DEFAULT_MEALS,
    min_fast_h: float = 8.0,
    withhold_bolus: bool = True,
) -> MMTTResult:
    """Simulate a mixed-meal tolerance test (science reference §3.4).

    Parameters
    ----------
    patients
        Patient names, a cohort name or a parameter table (as :func:`isletsim.simulate`).
    day
        Test day (0 = first simulated day); days ``0 .. day-1`` follow ``meals``.
    graft_fraction
        Functional graft fraction: a number, an array per participant or a function of the
        day (as :func:`isletsim.simulate`); ``None`` = no endogenous secretion.
    therapy
        Usual therapy (default :class:`~isletsim.therapy.BasalBolus`; use
        :class:`~isletsim.therapy.NoInsulin` for a healthy or insulin-independent subject).
    boost_ml_per_kg, max_ml, carbs_g_per_ml
        Boost dose: ``min(boost_ml_per_kg * BW, max_ml)`` mL at ``carbs_g_per_ml`` g/mL.
    start_clock
        Clock time of the drink (HH:MM).
    samples_min
        Sample times, minutes from the drink.
    lod_nmol_l
        Assay lower limit of detection (nmol/L; 0.003 ultrasensitive [U], TrialNet 0.017 [V]).
    rng
        Random generator for the assay's multiplicative error (CV from
        ``params/cpeptide.toml``); ``None``: no assay error (censoring still applies).
    meals
        Usual daily meals before the test day.
    min_fast_h
        Hours of fasting before the test: earlier-day meals closer than this are dropped.
    withhold_bolus
        Withhold the meal bolus from the drink on (protocol); basal continues.

    Returns
    -------
    MMTTResult
    """
    if boost_ml_per_kg <= 0 or max_ml <= 0 or carbs_g_per_ml <= 0:
        raise ValueError("boost_ml_per_kg, max_ml and carbs_g_per_ml must be > 0")
    table = _patient_table(patients)
    volume = np.minimum(boost_ml_per_kg * table["BW"].to_numpy(float), max_ml)
    run = _run_test(table, day, graft_fraction, therapy, meals,
                    lambda _t: volume * carbs_g_per_ml, start_clock, samples_min, min_fast_h,
                    withhold_bolus)  # fmt: skip
    meas = measure_cpeptide(run.cpeptide_pmol_l, lod_nmol_l, rng=rng)
    n, k = run.glucose.shape
    data = pd.DataFrame({
        "participant": pd.Categorical(np.repeat(run.names, k), categories=run.names),
        "minute": np.tile(run.samples, n),
        "glucose_mg_dl": run.glucose.reshape(-1),
        "cpeptide_pmol_l": meas.value.reshape(-1) * PMOL_PER_NMOL,
        "cpeptide_nmol_l": meas.value.reshape(-1),
        "censored": meas.censored.reshape(-1),
    })  # fmt: skip
    protocol = {"day": int(day), "start_clock": start_clock, "boost_ml_per_kg": boost_ml_per_kg,
                "max_ml": max_ml, "carbs_g_per_ml": carbs_g_per_ml, "min_fast_h": min_fast_h,
                "withhold_bolus": withhold_bolus, "samples_min": tuple(run.samples.tolist())}
    return MMTTResult(
        data, float(meas.lod), pd.Series(volume, index=run.names),
        pd.Series(volume * carbs_g_per_ml, index=run.names), run.start_min, protocol,
    )  # fmt: skip


# ----------------------------------------------------------------------------- OGTT
@dataclass(frozen=True)
class OGTTResult:
    """Outcome of :func:`ogtt`.

    Attributes
    ----------
    data : tidy table: ``participant``, ``minute``, ``glucose_mg_dl`` (plasma),
        ``insulin_pmol_l`` (plasma insulin, model value).
    glucose_g : glucose load, g.
    start_minute : absolute minute of the drink in the simulated run.
    """

    data: pd.DataFrame
    glucose_g: float
    start_minute: int

    def summary(self) -> pd.DataFrame:
        """Plasma glucose (mg/dL) per participant (rows) and sample minute (columns
        ``glucose_<m>_mg_dl``)."""
        wide = self.data.pivot(index="participant", columns="minute", values="glucose_mg_dl")
        wide.columns = [f"glucose_{m}_mg_dl" for m in wide.columns]
        wide.index = wide.index.astype(str)
        return wide

    def two_hour_glucose(self) -> pd.Series:
        """Plasma glucose at 120 min (mg/dL) per participant."""
        sel = self.data[self.data["minute"] == 120]
        if sel.empty:
            raise ValueError("the 120-min sample was not taken")
        return pd.Series(sel["glucose_mg_dl"].to_numpy(),
                         index=sel["participant"].astype(str).to_numpy())  # fmt: skip

    def __repr__(self) -> str:
        n = self.data["participant"].nunique()
        return f"OGTTResult({n} participant(s), {self.glucose_g:g} g glucose)"


def ogtt(
    patients: Sequence[str] | pd.DataFrame | str,
    glucose_g: float = 75.0,
    day: int = 1,
    graft_fraction: GraftFraction = None,
    therapy: Therapy | None = None,
    start_clock: str = "08:00",
    samples_min: Sequence[int] = OGTT_SAMPLES_MIN,
    *,
    meals: DailyMeals | str = DEFAULT_MEALS,
    min_fast_h: float = 8.0,
    withhold_bolus: bool = True,
) -> OGTTResult:
    """Simulate an oral glucose tolerance test.

    The glucose drink is modelled as a ``glucose_g`` carbohydrate meal eaten at the engine's
    5 g/min (75 g over 15 min) through the participant's gastric emptying (Dalla Man 2006);
    a real drink is taken within ~5 min [U: modelling choice]. Fasting and therapy as in
    :func:`mmtt`.

    Parameters
    ----------
    patients, day, graft_fraction, therapy, start_clock, meals, min_fast_h, withhold_bolus
        As in :func:`mmtt`.
    glucose_g
        Glucose load, g (WHO standard 75 g).
    samples_min
        Sample times, minutes from the drink (default 0, 30, 60, 90, 120).

    Returns
    -------
    OGTTResult
    """
    if glucose_g <= 0:
        raise ValueError(f"glucose_g must be > 0, got {glucose_g}")
    run = _run_test(patients, day, graft_fraction, therapy, meals,
                    lambda t: np.full(len(t), float(glucose_g)), start_clock, samples_min,
                    min_fast_h, withhold_bolus)  # fmt: skip
    n, k = run.glucose.shape
    data = pd.DataFrame({
        "participant": pd.Categorical(np.repeat(run.names, k), categories=run.names),
        "minute": np.tile(run.samples, n),
        "glucose_mg_dl": run.glucose.reshape(-1),
        "insulin_pmol_l": run.insulin_pmol_l.reshape(-1),
    })  # fmt: skip
    return OGTTResult(data, float(glucose_g), run.start_min)


__all__ = [
    "BOOST_CARBS_G_PER_ML",
    "MMTTResult",
    "OGTTResult",
    "WithholdBolus",
    "fasting_meal_events",
    "mmtt",
    "ogtt",
]
