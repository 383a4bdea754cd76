"""Virtual adults with type 1 diabetes before screening: physiology, traits, mis-set therapy.

:func:`sample_population` draws ``n`` virtual adults. Each one gets

* a physiological parameter set: one of the S2008 adults (``uva-padova-2008``, column
  ``model_patient``), drawn uniformly;
* traits: age (truncated normal), sex, diabetes duration (age minus a truncated-normal age at
  diagnosis), Gold awareness score (impaired with probability ``iah_prevalence``, then uniform
  on 4..7, else on 1..3), severe hypoglycaemic events in the prior year, standard-care therapy
  (``'mdi'``, ``'pump'`` or ``'aid'``) and fasting C-peptide (always 0: the model has no
  residual secretion);
* mis-set therapy settings: multiplicative lognormal factors on the carb ratio ``CR``, the
  correction factor ``CF`` and the basal rate relative to the model-optimal values (S2008
  Quest CR and CF; the basal ``u2ss`` that holds the model at its basal glucose). ``CR`` and
  ``CF`` of the table *are* the participant's settings (``cr_optimal``, ``cf_optimal`` keep
  the table values); the basal factor is the column ``basal_setting_factor``, which
  :func:`isletsim.therapy.regimens.derive_settings` applies.

Link between history and settings [U, modelling choice]: a latent hypoglycaemia propensity
``z ~ N(0, 1)`` (column ``hypo_propensity``) sets the person's severe-event rate
``rate(awareness) * exp(s z - s^2 / 2)`` (``severe_events_prior_year`` is Poisson with it)
and also pushes each setting towards over-insulinisation with correlation ``rho``:
``log f = mu + sd (sign rho z + sqrt(1 - rho^2) e)``, ``sign = +1`` for the basal and ``-1``
for CR and CF. Selecting ">= 2 severe events in the prior year" so enriches the trial's
population for over-insulinised people.

Distributions: ``isletsim/params/population/adults_t1d.toml`` (value, unit, source, tag,
verified, note per entry; see its README).

Randomness: participant ``i`` draws a fixed number (:data:`N_UNIFORMS`) of uniforms from
``numpy.random.SeedSequence(seed, spawn_key=(0x504F50, i))`` and turns them into traits by
inverse CDFs, so participant ``i``'s traits depend only on ``seed`` and ``i`` (never on
``n``), and changing a distribution parameter leaves the other traits' draws unchanged.
Names: ``f"{prefix}{i + 1:04d}"`` (``P0001``, ``P0002``, ...; ``prefix`` default ``"P"``);
they do not depend on the seed, so give populations drawn with different seeds different
prefixes when they are simulated together (random streams downstream are keyed on names).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import poisson

from isletsim.params import load_cohort
from isletsim.params.toml_file import checked_values_or_overrides, load_checked_values

#: Package-relative name of the parameter file (in error messages).
PARAM_FILE = "isletsim/params/population/adults_t1d.toml"
#: Entries of the parameter file.
SPEC_NAMES: tuple[str, ...] = (
    "age_mean_years", "age_sd_years", "age_min_years", "age_max_years", "p_male",
    "onset_age_mean_years", "onset_age_sd_years", "iah_prevalence",
    "prior_rate_impaired_per_year", "prior_rate_intact_per_year", "prior_rate_log_sd",
    "basal_log_mean", "basal_log_sd", "cr_log_mean", "cr_log_sd", "cf_log_mean", "cf_log_sd",
    "propensity_setting_correlation", "factor_min", "factor_max", "p_pump", "p_aid",
    "fasting_cpeptide_pmol_l",
)  # fmt: skip
_PROBABILITIES = frozenset({"p_male", "iah_prevalence", "p_pump", "p_aid"})
_POSITIVE = frozenset(
    {"age_sd_years", "age_min_years", "age_max_years", "onset_age_mean_years",
     "onset_age_sd_years", "prior_rate_impaired_per_year", "prior_rate_intact_per_year",
     "factor_min", "factor_max"}
)  # fmt: skip
_NONNEGATIVE = frozenset(
    {"prior_rate_log_sd", "basal_log_sd", "cr_log_sd", "cf_log_sd", "fasting_cpeptide_pmol_l"}
)
_LOG_MEANS = frozenset({"basal_log_mean", "cr_log_mean", "cf_log_mean"})
#: Purpose word of the population streams.
_PURPOSE = 0x504F50
#: Uniforms drawn per participant (fixed, whatever the parameters).
N_UNIFORMS = 12
(_U_MODEL, _U_AGE, _U_SEX, _U_ONSET, _U_IAH, _U_GOLD, _U_Z, _U_BASAL, _U_CR, _U_CF,
 _U_THERAPY, _U_EVENTS) = range(N_UNIFORMS)  # fmt: skip
#: Trait columns added to the physiological parameter set, with their dtypes.
TRAIT_COLUMNS: Mapping[str, str] = {
    "model_patient": "object",
    "age_years": "float64",
    "sex": "object",
    "body_weight_kg": "float64",
    "diabetes_duration_years": "float64",
    "gold_score": "float64",
    "impaired_awareness": "bool",
    "hypo_propensity": "float64",
    "severe_rate_per_year": "float64",
    "severe_events_prior_year": "int64",
    "therapy": "object",
    "fasting_cpeptide_pmol_l": "float64",
    "cr_optimal": "float64",
    "cf_optimal": "float64",
    "cr_setting_factor": "float64",
    "cf_setting_factor": "float64",
    "basal_setting_factor": "float64",
}
THERAPIES: tuple[str, ...] = ("mdi", "pump", "aid")


def _problem(name: str, v: float, values: Mapping[str, float]) -> str | None:
    if name in _PROBABILITIES and not 0.0 <= v <= 1.0:
        return "must be a probability in [0, 1]"
    if name in _POSITIVE and v <= 0:
        return "must be > 0"
    if name in _NONNEGATIVE and v < 0:
        return "must be >= 0"
    if name == "propensity_setting_correlation" and not -1.0 <= v <= 1.0:
        return "must be a correlation in [-1, 1]"
    if name in _LOG_MEANS and abs(v) > 3.0:
        return "must be a log factor in [-3, 3]"
    if name == "age_max_years" and v < values.get("age_min_years", 0.0) + 2.0:
        return "must be at least age_min_years + 2"
    if name == "factor_max" and v <= values.get("factor_min", 0.0):
        return "must be > factor_min"
    if name == "factor_min" and v > 1.0:
        return "must be <= 1"
    if name == "factor_max" and v < 1.0:
        return "must be >= 1"
    if name == "p_aid" and v + values.get("p_pump", 0.0) > 1.0:
        return "p_pump + p_aid must be <= 1"
    return None


@cache
def _packaged() -> dict[str, float]:
    path = resources.files("isletsim.params") / "population" / "adults_t1d.toml"
    return {k: float(v) for k, v in load_checked_values(
        path, label=PARAM_FILE, names=SPEC_NAMES, problem=_problem).items()}  # fmt: skip


def load_population_spec(
    spec: Mapping[str, float] | os.PathLike[str] | str | None = None,
) -> dict[str, float]:
    """The distribution parameters, checked.

    Parameters
    ----------
    spec
        ``None``: the packaged file; a path: another file with the same entries; a mapping:
        values replacing those of the packaged file (checked together with them).

    Returns
    -------
    dict of str to float
        A fresh dict.

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        Naming the file (or ``... (overrides)`` for a mapping), the entry and the field.
    """
    return checked_values_or_overrides(
        spec, _packaged, label=PARAM_FILE, names=SPEC_NAMES, problem=_problem
    )


def participant_uniforms(seed: int, n: int, start: int = 0) -> np.ndarray:
    """The ``(n, N_UNIFORMS)`` uniforms of participants ``start .. start + n - 1``."""
    out = np.empty((n, N_UNIFORMS))
    for j in range(n):
        ss = np.random.SeedSequence(int(seed), spawn_key=(_PURPOSE, start + j))
        out[j] = np.random.default_rng(ss).random(N_UNIFORMS)
    return out


def _truncnorm(u: np.ndarray, mean: np.ndarray | float, sd: float, lo, hi) -> np.ndarray:
    a, b = ndtr((np.asarray(lo) - mean) / sd), ndtr((np.asarray(hi) - mean) / sd)
    p = np.clip(a + u * (b - a), 1e-12, 1 - 1e-12)
    return np.clip(mean + sd * ndtri(p), lo, hi)


def _base_cohort(cohort: str) -> pd.DataFrame:
    table = load_cohort(cohort)
    adults = table[table["Name"].str.startswith("adult")]
    return (adults if len(adults) else table).reset_index(drop=True)


def sample_population(
    n: int,
    seed: int,
    *,
    cohort: str = "uva-padova-2008",
    spec: Mapping[str, float] | os.PathLike[str] | str | None = None,
    prefix: str = "P",
) -> pd.DataFrame:
    """Draw ``n`` virtual adults (module docstring).

    Parameters
    ----------
    n
        Number of participants (>= 0).
    seed
        Root of the per-participant streams (integer >= 0).
    cohort
        Physiological parameter sets (the adults of the cohort, or all of it if it has none
        named ``adult...``).
    spec
        Distribution parameters: ``None`` (the packaged file), another file, or a mapping of
        entries replacing the packaged values (:func:`load_population_spec`).
    prefix
        Start of the participant names (``f"{prefix}{i + 1:04d}"``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``Name`` (kept as a column too); the cohort's physiology columns, ``CR``
        and ``CF`` replaced by the participant's settings, ``Age`` set to ``age_years``, plus
        :data:`TRAIT_COLUMNS`.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    p = load_population_spec(spec)
    base = _base_cohort(cohort)
    u = participant_uniforms(int(seed), int(n))
    k = np.minimum((u[:, _U_MODEL] * len(base)).astype(int), len(base) - 1)
    rows = base.iloc[k].reset_index(drop=True)

    age = _truncnorm(u[:, _U_AGE], p["age_mean_years"], p["age_sd_years"],
                     p["age_min_years"], p["age_max_years"])  # fmt: skip
    sex = np.where(u[:, _U_SEX] < p["p_male"], "M", "F")
    onset = _truncnorm(u[:, _U_ONSET], p["onset_age_mean_years"], p["onset_age_sd_years"],
                       np.minimum(1.0, age - 1.0), age - 1.0)  # fmt: skip
    impaired = u[:, _U_IAH] < p["iah_prevalence"]
    g = u[:, _U_GOLD]
    gold = np.where(impaired, 4 + np.minimum((g * 4).astype(int), 3),
                    1 + np.minimum((g * 3).astype(int), 2)).astype(float)  # fmt: skip
    z = ndtri(u[:, _U_Z])
    s = p["prior_rate_log_sd"]
    rate0 = np.where(impaired, p["prior_rate_impaired_per_year"], p["prior_rate_intact_per_year"])
    rate = rate0 * np.exp(s * z - s * s / 2.0)
    events = poisson.ppf(u[:, _U_EVENTS], rate).astype(np.int64)

    rho = p["propensity_setting_correlation"]
    rest = np.sqrt(max(1.0 - rho * rho, 0.0))

    def factor(col: int, mean: float, sd: float, sign: float) -> np.ndarray:
        w = sign * rho * z + rest * ndtri(u[:, col])
        return np.clip(np.exp(mean + sd * w), p["factor_min"], p["factor_max"])

    f_basal = factor(_U_BASAL, p["basal_log_mean"], p["basal_log_sd"], 1.0)
    f_cr = factor(_U_CR, p["cr_log_mean"], p["cr_log_sd"], -1.0)
    f_cf = factor(_U_CF, p["cf_log_mean"], p["cf_log_sd"], -1.0)
    ut = u[:, _U_THERAPY]
    therapy = np.where(ut < p["p_pump"], "pump", np.where(ut < p["p_pump"] + p["p_aid"], "aid",
                                                          "mdi"))  # fmt: skip

    names = [f"{prefix}{i + 1:04d}" for i in range(n)]
    out = rows.copy()
    out["model_patient"] = rows["Name"].to_numpy(dtype=object)
    out["Name"] = names
    out["cr_optimal"] = rows["CR"].to_numpy(float)
    out["cf_optimal"] = rows["CF"].to_numpy(float)
    out["CR"] = out["cr_optimal"] * f_cr
    out["CF"] = out["cf_optimal"] * f_cf
    out["Age"] = age
    traits = {
        "age_years": age,
        "sex": sex.astype(object),
        "body_weight_kg": rows["BW"].to_numpy(float),
        "diabetes_duration_years": age - onset,
        "gold_score": gold,
        "impaired_awareness": impaired,
        "hypo_propensity": z,
        "severe_rate_per_year": rate,
        "severe_events_prior_year": events,
        "therapy": therapy.astype(object),
        "fasting_cpeptide_pmol_l": np.full(n, p["fasting_cpeptide_pmol_l"]),
        "cr_setting_factor": f_cr,
        "cf_setting_factor": f_cf,
        "basal_setting_factor": f_basal,
    }
    for col, val in traits.items():
        out[col] = val
    out = out.astype({c: t for c, t in TRAIT_COLUMNS.items()})
    out.index = pd.Index(names, name=None)
    return out


def eligible_iah(population: pd.DataFrame, *, min_prior_events: int = 2) -> pd.Series:
    """The trial's eligibility as far as the population carries it (a boolean mask).

    Age 18-65, impaired awareness (Gold >= 4), at least ``min_prior_events`` severe events in
    the prior year, undetectable fasting C-peptide (0 pmol/L). A convenience for the ``care``
    validation suite and calibration tools; the trial runner screens on its own criteria.
    """
    return (
        population["age_years"].between(18.0, 65.0)
        & (population["gold_score"] >= 4)
        & (population["severe_events_prior_year"] >= min_prior_events)
        & (population["fasting_cpeptide_pmol_l"] <= 0.0)
    )


def intact_adults(population: pd.DataFrame) -> pd.Series:
    """Adults 18-65 with intact awareness (Gold <= 3) and no C-peptide, not selected on events."""
    return (
        population["age_years"].between(18.0, 65.0)
        & (population["gold_score"] < 4)
        & (population["fasting_cpeptide_pmol_l"] <= 0.0)
    )


__all__ = [
    "N_UNIFORMS",
    "PARAM_FILE",
    "SPEC_NAMES",
    "THERAPIES",
    "TRAIT_COLUMNS",
    "eligible_iah",
    "intact_adults",
    "load_population_spec",
    "participant_uniforms",
    "sample_population",
]
