"""Suite ``care``: a standard-care population with impaired awareness against published figures.

Population (the trial's eligibility as far as the model allows). Virtual adults from
:func:`isletsim.population.sample_population` (names ``C0001`` ...; S2008 physiology, traits,
and mis-set CR, CF and basal linked to a latent hypoglycaemia propensity, see that module and
``isletsim/params/population/``), living ``days`` days of random meals
(:mod:`isletsim.scenarios`, simglucose pattern with personal habits; meals by position, so
arms of equal size share them: common random numbers) on standard care, with
:class:`~isletsim.therapy.hypoglycemia.HypoglycemiaSelfCare` around the insulin therapy
(15-15 self-treatment, CGM alarms, severe events; awareness from each person's Gold score).

* *IAH arm*: the first ``participants`` candidates meeting the trial's criteria (age 18-65,
  Gold >= 4, >= 2 severe events in the prior year, undetectable fasting C-peptide;
  :func:`isletsim.population.eligible_iah`), alternately on
  :class:`~isletsim.therapy.regimens.PumpTherapy` (``iah_pump``) and
  :class:`~isletsim.therapy.regimens.MultipleDailyInjections` (``iah_mdi``), each with the
  carb-counting error and missed/late boluses of ``regimens.toml`` (:class:`BolusBehaviour`)
  and the person's own settings. The population's ``therapy`` trait is not used: the
  published ranges are of MDI/CSII standard care (HypoCOMPaSS, IN CONTROL).
* *intact arm* (``intact_pump``, ``intact_mdi``): the first ``participants`` adults 18-65 with
  intact awareness (Gold 1-3) and no C-peptide, not selected on their event history (Gold
  1994's 0.5 events/person-year is of an unselected group), split the same way.
* ``iah_aid``: the ``iah_mdi`` participants (same names, meals and bolus-behaviour streams:
  the same carb-counting errors, missed and late boluses) on
  :class:`~isletsim.therapy.aid.AutomatedInsulinDelivery` (hybrid loop; the participant
  boluses ``estimated carbs / CR`` with their own CR and the :class:`BolusBehaviour` of
  ``regimens.toml``, as on injections and pumps; the loop's basal reference is the
  model-optimal basal, see that module).

The population's setting spreads (``basal_log_mean``, ``basal_log_sd``) are fitted by
``tools/calibrate_care_population.py`` to the centres of the ranges below (the
standard-care population is an input of the trial, not its outcome), averaged over several
seeds other than the suite's; the severe-event hazard is fitted by
``tools/calibrate_severe_hypo.py`` to Gold 1994 on that population, pooled over several
other seeds. The band checks below have no Monte Carlo allowance: a population whose mean
lies near an end of a range fails on some draws (the between-seed SD of the IAH arm's mean
TIR at 100 participants is about 2 % points). Not modelled: long diabetes duration has no
physiological effect.
Glucose metrics are on the subcutaneous glucose every minute (``SimulationResult.summary``),
the population value is the mean over participants.

Checks (each one :meth:`~isletsim.validation.checks.Check.at_most`; a published range
``[lo, hi]`` is checked as ``|value - (lo + hi) / 2| <= (hi - lo) / 2``):

* ``care/iah/hba1c``: HbA1c (dynamic glycation model, :meth:`SimulationResult.hba1c`, from
  the steady state of each participant's mean glucose, at the last day) in 6.9-8.2 %:
  T1D Exchange problematic-hypoglycaemia cohort 6.9 % (ADA 2024 abstract 367-P [V]) to the
  HypoCOMPaSS baseline 8.2 % (Little et al. *Diabetes Care* 2018;41:1600 [V]); the
  zimislecel baseline 7.8 % (Reichman et al. *NEJM* 2025 [V]) lies inside.
* ``care/iah/tir_70_180``: TIR 49.5-65.0 %: zimislecel baseline 49.5 % (Reichman 2025 [V])
  to IN CONTROL with real-time CGM 65.0 % (van Beers et al. *Lancet Diabetes Endocrinol*
  2016;4:893 [V]; SMBG 55.4 % inside).
* ``care/iah/tbr_54``: time < 54 mg/dL 1.4-3.7 %: HypoCOMPaSS predictors at 24 months
  1.4-3.0 % of time <= 3.0 mmol/L (Flatt et al. *Diabetes Care* 2020;43:44 [V]) to the
  HypoCOMPaSS baseline 53 min/day = 3.7 % (Little et al. *Diabetes Care* 2014;37:2114 [V]).
* ``care/iah/tbr_70``: no published time < 70 mg/dL for this population (science reference
  11: "not found" [U]); the range 3.3-8.8 % is *derived* [U] from the TBR54 range divided by
  the ratio T<54 : T<70 = 0.42 of CGM users with T<70 >= 7 % (Beck RW et al. *Diabetes
  Technol Ther* 2023, doi 10.1089/dia.2022.0462 [V: abstract]).
* ``care/iah/severe_rate``: severe events per person-year of the IAH arm against 2.8 (Gold
  AE et al. *Diabetes Care* 1994;17:697 [V]); tolerance ``t(0.975, n - 1) sqrt(phi 2.8 /
  PY)``, the 95 % half-width of the simulated rate over the arm's ``PY`` person-years if the
  model's rate were the published one, with the quasi-Poisson dispersion ``phi`` (Pearson,
  floored at 1) of the arm's ``n`` per-person counts (:func:`rate_estimate`). The counts are
  overdispersed between people (each has their own hazard: awareness, settings, the latent
  propensity), so a plain Poisson tolerance (``phi = 1``) understates the Monte Carlo error
  of the simulated rate. The tolerance is that Monte Carlo error only, not the uncertainty
  of the published figure (Gold 1994: 2.8 in a small cohort).
* ``care/intact/severe_rate``: the same for the intact arm against 0.5 (Gold 1994 [V]).
* ``care/severe_rate/intact_below_impaired``: the upper end of the 95 % interval of
  ``rate_intact - rate_impaired`` (quasi-Poisson variance ``phi r / PY`` of each arm at its
  observed rate, equal to the cluster-robust between-person variance) must be <= 0: intact
  awareness gives significantly fewer severe events.
* ``care/tir/aid_above_mdi``: the upper end of the 95 % interval of the paired mean
  ``TIR_mdi - TIR_aid`` (same participants and meals) must be <= 0: the automated delivery
  arm has more time in range than injections.

An honest suite: figures outside their published range fail; model parameters are not tuned
here to pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import t as student_t

from isletsim.engine import SimulationResult, simulate
from isletsim.meals import MealEvents
from isletsim.population import eligible_iah, intact_adults, sample_population
from isletsim.scenarios import random_meals, sample_habits
from isletsim.therapy.aid import AutomatedInsulinDelivery
from isletsim.therapy.base import Therapy
from isletsim.therapy.graft import participant_streams
from isletsim.therapy.hypoglycemia import HypoglycemiaParameters, HypoglycemiaSelfCare
from isletsim.therapy.regimens import BolusBehaviour, MultipleDailyInjections, PumpTherapy
from isletsim.validation.checks import Check, register
from isletsim.variability import InsulinSensitivity

DAYS_PER_YEAR = 365.25
Z95 = 1.959963984540054

HBA1C_RANGE_PCT = (6.9, 8.2)
HBA1C_SOURCE = (
    "T1D Exchange problematic-hypoglycaemia cohort, ADA 2024 abstract 367-P [V] (6.9 %); "
    "HypoCOMPaSS baseline, Little SA et al. Diabetes Care 2018;41:1600 [V] (8.2 %); "
    "zimislecel baseline 7.8 %, Reichman TW et al. NEJM 2025;393:858 [V] (inside)"
)
TIR_RANGE_PCT = (49.5, 65.0)
TIR_SOURCE = (
    "zimislecel baseline, Reichman TW et al. NEJM 2025;393:858 [V] (49.5 %); IN CONTROL, "
    "van Beers CAJ et al. Lancet Diabetes Endocrinol 2016;4:893 [V] (65.0 % rt-CGM, "
    "55.4 % SMBG)"
)
TBR54_RANGE_PCT = (1.4, 3.7)
TBR54_SOURCE = (
    "Flatt AJS et al. Diabetes Care 2020;43:44 [V] (1.4-3.0 % <= 3.0 mmol/L at 24 months); "
    "HypoCOMPaSS baseline 53 min/day = 3.7 %, Little SA et al. Diabetes Care 2014;37:2114 [V]"
)
#: Ratio T<54 : T<70 of CGM users with T<70 >= 7 % (Beck 2023).
TBR54_TO_TBR70_RATIO = 0.42
TBR70_RANGE_PCT = (
    round(TBR54_RANGE_PCT[0] / TBR54_TO_TBR70_RATIO, 1),
    round(TBR54_RANGE_PCT[1] / TBR54_TO_TBR70_RATIO, 1),
)
TBR70_SOURCE = (
    "derived [U]: TBR54 range (Flatt 2020; Little 2014 [V]) / 0.42, the T<54 : T<70 ratio "
    "at T<70 >= 7 % in Beck RW et al. Diabetes Technol Ther 2023, doi 10.1089/dia.2022.0462 "
    "[V: abstract]; no published TBR70 for this population (science reference 11)"
)
SEVERE_RATE_IMPAIRED = 2.8
SEVERE_RATE_INTACT = 0.5
SEVERE_SOURCE = "Gold AE et al. Diabetes Care 1994;17:697 [V] (prospective 12 months)"
#: Arms of the suite.
ARMS: tuple[str, ...] = ("iah_pump", "iah_mdi", "intact_pump", "intact_mdi", "iah_aid")
#: Names of the suite's virtual participants: ``C0001`` ...
NAME_PREFIX = "C"


@dataclass(frozen=True)
class CareConfig:
    """Size of the virtual population of the ``care`` suite.

    Attributes
    ----------
    participants : int
        Participants of the IAH arm and of the intact arm each (>= 2; half on the pump,
        half on injections; the AID arm is the injection half).
    days : int
        Simulated days per participant.
    seed : int
        Root of the population draw and of the meal, bolus-behaviour and self-care streams.
    """

    participants: int = 100
    days: int = 56
    seed: int = 2026

    def __post_init__(self) -> None:
        for name, least in (("participants", 2), ("days", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"CareConfig.{name} must be an integer >= {least}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"CareConfig.seed must be an integer >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class ArmResult:
    """Outcome of one arm.

    Attributes
    ----------
    name : str
        Arm name (``iah_pump`` ...).
    summary : pandas.DataFrame
        :meth:`SimulationResult.summary` plus the columns ``hba1c_pct`` and
        ``severe_events`` (severe events of each participant).
    severe_events : int
        Severe (level 3) events of the arm.
    person_years : float
        Simulated person-years.
    """

    name: str
    summary: pd.DataFrame
    severe_events: int
    person_years: float


def care_population(
    participants: int, seed: int, spec: Mapping[str, float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The IAH and intact participants of the suite (module docstring), in draw order.

    Draws :func:`~isletsim.population.sample_population` (names ``C0001`` ...) in growing
    batches until ``participants`` candidates meet each arm's criteria; participant ``i``
    does not depend on the batch size, so the result depends only on the arguments.
    """
    n = max(64, 12 * participants)
    while True:
        pop = sample_population(n, seed, spec=spec, prefix=NAME_PREFIX)
        iah, intact = pop[eligible_iah(pop)], pop[intact_adults(pop)]
        if len(iah) >= participants and len(intact) >= participants:
            return iah.iloc[:participants].copy(), intact.iloc[:participants].copy()
        if n > 1_000_000:  # pragma: no cover - a spec that selects nobody
            raise ValueError("the population spec gives too few eligible participants")
        n *= 2


def _hba1c_last_day(result: SimulationResult) -> np.ndarray:
    """HbA1c (%) at the last day, started from the steady state of each mean glucose."""
    daily = np.asarray(result.daily_mean_glucose, dtype=float)
    return np.asarray(result.hba1c(baseline_glucose=daily.mean(axis=1)))[:, -1]


def run_arm(
    name: str, rows: pd.DataFrame, meals: MealEvents, therapy: Therapy, config: CareConfig,
    parameters: HypoglycemiaParameters | None = None,
) -> ArmResult:  # fmt: skip
    """Simulate one arm with ``HypoglycemiaSelfCare(therapy)`` around it.

    Awareness comes from each participant's ``gold_score``; insulin sensitivity varies from
    day to day and over the day (:class:`isletsim.variability.InsulinSensitivity`).
    """
    policy = HypoglycemiaSelfCare(
        therapy, awareness="sample", seed=config.seed, parameters=parameters
    )
    sensitivity = InsulinSensitivity(len(rows), config.days, seed=config.seed)
    result = simulate(rows, config.days, meals, policy, record=False,
                      insulin_sensitivity=sensitivity)  # fmt: skip
    summary = result.summary()
    summary["hba1c_pct"] = _hba1c_last_day(result)
    per_person = policy.participants["severe_events"].reindex(summary.index)
    summary["severe_events"] = per_person.fillna(0).to_numpy(np.int64)
    return ArmResult(name, summary, len(policy.events), len(rows) * config.days / DAYS_PER_YEAR)


def arm_meals(size: int, config: CareConfig) -> MealEvents:
    """Random meals of an arm of ``size`` participants (streams by position: common meals)."""
    streams = participant_streams(config.seed, size)
    return random_meals(sample_habits("simglucose_random", streams), config.days, streams)


def run_arms(
    config: CareConfig,
    *,
    spec: Mapping[str, float] | None = None,
    parameters: HypoglycemiaParameters | None = None,
    arms: tuple[str, ...] = ARMS,
) -> dict[str, ArmResult]:
    """Simulate the arms of the suite (module docstring).

    ``spec`` replaces population parameters and ``parameters`` the self-care parameters
    (calibration tools); ``arms`` picks a subset of :data:`ARMS`.
    """
    iah, intact = care_population(config.participants, config.seed, spec)

    def behaviour() -> BolusBehaviour:
        return BolusBehaviour.from_parameters(seed=config.seed)

    out = {}
    for tag, rows in (("iah", iah), ("intact", intact)):
        pump_rows, mdi_rows = rows.iloc[0::2], rows.iloc[1::2]
        if f"{tag}_pump" in arms:
            out[f"{tag}_pump"] = run_arm(
                f"{tag}_pump", pump_rows, arm_meals(len(pump_rows), config),
                PumpTherapy(behaviour=behaviour()), config, parameters,
            )  # fmt: skip
        if f"{tag}_mdi" in arms:
            out[f"{tag}_mdi"] = run_arm(
                f"{tag}_mdi", mdi_rows, arm_meals(len(mdi_rows), config),
                MultipleDailyInjections(behaviour=behaviour()), config, parameters,
            )  # fmt: skip
    if "iah_aid" in arms:
        mdi_rows = iah.iloc[1::2]
        out["iah_aid"] = run_arm(
            "iah_aid", mdi_rows, arm_meals(len(mdi_rows), config),
            AutomatedInsulinDelivery(behaviour=behaviour()), config, parameters,
        )  # fmt: skip
    return out


def _band(name: str, what: str, value: float, band: tuple[float, float], units: str,
          source: str) -> Check:  # fmt: skip
    lo, hi = band
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    return Check.at_most(
        name,
        f"|{what} - {centre:g}| (value {value:.3g} {units}; published range {lo:g}-{hi:g})",
        abs(value - centre),
        half,
        units=units,
        source=source,
        reference=f"{lo:g}-{hi:g} {units}",
    )


@dataclass(frozen=True)
class RateEstimate:
    """Severe-event rate of an arm with its quasi-Poisson dispersion (:func:`rate_estimate`).

    Attributes
    ----------
    events : int
        Severe events of the arm.
    person_years : float
        Simulated person-years ``PY``.
    participants : int
        Participants ``n``.
    dispersion_raw : float
        Pearson dispersion ``phi`` of the per-person counts (1 when there is no event).
    dispersion : float
        ``max(1, dispersion_raw)``, the one the tolerances use.
    """

    events: int
    person_years: float
    participants: int
    dispersion_raw: float
    dispersion: float

    @property
    def rate(self) -> float:
        """Events per person-year."""
        return self.events / self.person_years

    def se(self, rate: float) -> float:
        """Standard error ``sqrt(phi rate / PY)`` of the simulated rate at ``rate``."""
        return math.sqrt(self.dispersion * rate / self.person_years)


def rate_estimate(counts: ArrayLike, person_years: float) -> RateEstimate:
    """Rate and quasi-Poisson dispersion of per-person event counts (equal follow-up).

    The severe-event counts ``y_i`` of the ``n`` participants of an arm (each followed for
    ``t = PY / n`` years) are overdispersed: every participant has their own hazard (awareness,
    settings, the latent propensity of :mod:`isletsim.population`), so the counts are a
    Poisson mixture and ``Var(y_i) > E(y_i)``. The quasi-Poisson model
    ``Var(y_i) = phi mu t`` (Wedderburn RWM, *Biometrika* 1974;61:439) with ``phi`` estimated
    by the Pearson statistic, ``phi = sum_i (y_i - mu t)^2 / (mu t) / (n - 1)`` with
    ``mu = sum y / PY`` (McCullagh P, Nelder JA, *Generalized Linear Models*, 2nd ed. 1989,
    sections 4.5 and 9.2 [U: as remembered]), gives ``Var(rate) = phi rate / PY``; with
    equal follow-up this equals the cluster-robust (between-person) variance
    ``s_y^2 / (n t^2)`` of the mean of the per-person rates, ``s_y^2`` the sample variance
    of the counts. ``phi`` is floored at 1: a Poisson mixture has a variance at least its
    mean, so an estimate below 1 is sampling noise, and the floor keeps every tolerance at
    least the Poisson one.

    Parameters
    ----------
    counts
        Events of each participant.
    person_years
        Follow-up of the arm, all participants together (> 0).

    Returns
    -------
    RateEstimate
    """
    y = np.asarray(counts, dtype=float)
    n = y.size
    total = float(y.sum())
    if n < 2 or total <= 0:
        raw = 1.0
    else:
        expected = total / n  # mu t, equal follow-up
        raw = float(((y - expected) ** 2).sum() / expected / (n - 1))
    return RateEstimate(round(total), float(person_years), n, raw, max(1.0, raw))


def _t95(df: int) -> float:
    """Two-sided 95 % quantile of Student's t with ``df`` degrees of freedom."""
    return float(student_t.ppf(0.975, max(df, 1)))


def _rate_check(name: str, label: str, est: RateEstimate, target: float) -> Check:
    """``|rate - target| <= t_{0.975, n-1} sqrt(phi target / PY)`` (quasi-Poisson, see
    :func:`rate_estimate`): the 95 % Monte Carlo error of the simulated rate if the model's
    rate were the published one, with the dispersion of the simulated counts. It does not
    include the uncertainty of the published figure itself."""
    q = _t95(est.participants - 1)
    tol = q * est.se(target)
    return Check.at_most(
        name,
        f"|severe events per person-year of the {label} arm - {target:g}| ({est.events} events "
        f"in {est.person_years:.1f} person-years of {est.participants} participants = "
        f"{est.rate:.2f}/py); tolerance quasi-Poisson t(0.975, {est.participants - 1}) "
        f"sqrt(phi {target:g} / PY) = {q:.3f} x sqrt({est.dispersion:.2f} x {target:g} / "
        f"{est.person_years:.1f}) = {tol:.3f}, phi the Pearson dispersion of the per-person "
        f"counts ({est.dispersion_raw:.2f}, floored at 1): the Monte Carlo error of the "
        "simulated rate with between-person overdispersion, not the uncertainty of the "
        "published figure",
        abs(est.rate - target),
        tol,
        units="events/person-year",
        source=SEVERE_SOURCE,
        reference=f"{target:g} (tolerance: quasi-Poisson, phi {est.dispersion:.2f})",
    )


def _difference_check(intact: RateEstimate, impaired: RateEstimate) -> Check:
    """Upper 95 % bound of ``rate_intact - rate_impaired`` (quasi-Poisson variances at the
    observed rates, :func:`rate_estimate`; ``t`` with the smaller arm's ``n - 1`` degrees of
    freedom, the conservative bound of the Welch-Satterthwaite ones) must be <= 0."""
    r_int, r_iah = intact.rate, impaired.rate
    se = math.sqrt(intact.se(r_int) ** 2 + impaired.se(r_iah) ** 2)
    df = min(intact.participants, impaired.participants) - 1
    q = _t95(df)
    return Check.at_most(
        "care/severe_rate/intact_below_impaired",
        f"upper 95 % bound of rate_intact - rate_impaired ({r_int:.2f} - {r_iah:.2f} "
        f"events/person-year) must be <= 0; quasi-Poisson standard error sqrt(phi_int r_int / "
        f"PY_int + phi_imp r_imp / PY_imp) = sqrt({intact.dispersion:.2f} x {r_int:.2f} / "
        f"{intact.person_years:.1f} + {impaired.dispersion:.2f} x {r_iah:.2f} / "
        f"{impaired.person_years:.1f}) = {se:.3f}, times t(0.975, {df}) = {q:.3f} "
        "(phi: Pearson dispersion of each arm's per-person counts, floored at 1; Monte Carlo "
        "error of the simulated rates only)",
        (r_int - r_iah) + q * se,
        0.0,
        units="events/person-year",
        source=f"{SEVERE_SOURCE}: 0.5 intact vs 2.8 impaired; ~6-fold risk with IAH "
        "(Yeoh E et al. Diabetes Care 2015;38:1592 [V])",
        reference=f"intact < impaired (quasi-Poisson, phi {intact.dispersion:.2f} / "
        f"{impaired.dispersion:.2f})",
    )


def care_checks(config: CareConfig | None = None) -> list[Check]:
    """Run the arms and return the checks (module docstring).

    Parameters
    ----------
    config
        Population size (default :class:`CareConfig`: 100 participants per arm, 56 days).

    Returns
    -------
    list of Check
    """
    config = CareConfig() if config is None else config
    arms = run_arms(config)
    iah = pd.concat([arms["iah_pump"].summary, arms["iah_mdi"].summary])
    intact = pd.concat([arms["intact_pump"].summary, arms["intact_mdi"].summary])
    py_iah = arms["iah_pump"].person_years + arms["iah_mdi"].person_years
    py_int = arms["intact_pump"].person_years + arms["intact_mdi"].person_years
    est_iah = rate_estimate(iah["severe_events"], py_iah)
    est_int = rate_estimate(intact["severe_events"], py_int)
    size = f"{len(iah)} participants x {config.days} d"

    checks = [
        _band("care/iah/hba1c", f"mean HbA1c of the IAH arm ({size})",
              float(iah["hba1c_pct"].mean()), HBA1C_RANGE_PCT, "%", HBA1C_SOURCE),
        _band("care/iah/tir_70_180", f"mean time 70-180 mg/dL of the IAH arm ({size})",
              float(iah["tir_70_180_pct"].mean()), TIR_RANGE_PCT, "%", TIR_SOURCE),
        _band("care/iah/tbr_54", f"mean time < 54 mg/dL of the IAH arm ({size})",
              float(iah["tbr_54_pct"].mean()), TBR54_RANGE_PCT, "%", TBR54_SOURCE),
        _band("care/iah/tbr_70", f"mean time < 70 mg/dL of the IAH arm ({size})",
              float(iah["tbr_70_pct"].mean()), TBR70_RANGE_PCT, "%", TBR70_SOURCE),
        _rate_check("care/iah/severe_rate", "impaired-awareness", est_iah,
                    SEVERE_RATE_IMPAIRED),
        _rate_check("care/intact/severe_rate", "intact-awareness", est_int, SEVERE_RATE_INTACT),
        _difference_check(est_int, est_iah),
    ]  # fmt: skip

    tir_mdi = arms["iah_mdi"].summary["tir_70_180_pct"].to_numpy()
    tir_aid = arms["iah_aid"].summary["tir_70_180_pct"].to_numpy()
    diff = tir_mdi - tir_aid
    se_d = float(np.std(diff, ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else math.inf
    checks.append(
        Check.at_most(
            "care/tir/aid_above_mdi",
            f"upper 95 % bound of the paired mean TIR_injections - TIR_AID (injections "
            f"{tir_mdi.mean():.1f} %, AID {tir_aid.mean():.1f} %, same {diff.size} "
            "participants and meals, impaired awareness) must be <= 0",
            float(diff.mean()) + Z95 * se_d,
            0.0,
            units="% points",
            source="issue 5 item 7 (AID gives more time in range than injections); "
            "science reference 11: no published TIR under AID for this population [U]",
            reference="TIR_AID > TIR_injections",
        )
    )
    return checks


@register("care", "Standard care with impaired awareness vs published HbA1c, TIR, TBR, severe rate")
def care_suite() -> list[Check]:
    """Run all checks of the ``care`` suite (default :class:`CareConfig`)."""
    return care_checks()


__all__ = [
    "ARMS",
    "ArmResult",
    "CareConfig",
    "RateEstimate",
    "arm_meals",
    "care_checks",
    "care_population",
    "care_suite",
    "rate_estimate",
    "run_arm",
    "run_arms",
]
