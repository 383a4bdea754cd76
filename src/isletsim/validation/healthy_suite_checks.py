"""Checks of the healthy configuration and of the islet graft, for the ``physiology`` suite.

:func:`healthy_checks` — the Dalla Man 2007 normal subject (cohort
``dalla-man-2007-normal``) with a whole pancreas (graft fraction 1) and no exogenous insulin:

* fasting plasma glucose (0-min sample of an MMTT after a day of usual meals and an overnight
  fast) within 70-100 mg/dL. Upper limit: normal fasting plasma glucose < 100 mg/dL (ADA
  diagnostic criteria, impaired fasting glucose starts at 100 mg/dL) [U: not in the science
  reference]; lower limit: 70 mg/dL, the level-1 hypoglycaemia threshold (science reference
  §6.1, ADA Standards §6) [V];
* 2-h plasma glucose after a 75 g OGTT < 140 mg/dL (WHO/ADA normal glucose tolerance;
  impaired glucose tolerance 140-199 mg/dL) [U: not in the science reference];
* MMTT fasting C-peptide: the science reference gives no healthy MMTT C-peptide range, so
  the check uses the Van Cauter sanity value of a normal fasting C-peptide, ≈0.54 nmol/L
  (science reference §3.2 [V citation; coefficients I]), with a ±20 % band (0.43-0.65 nmol/L)
  [U: our tolerance];
* MMTT peak C-peptide: no published healthy range in the science reference either; checked
  only against the DCCT threshold of clinically meaningful stimulated C-peptide, >= 0.2
  nmol/L (science reference §3.4 [V]), and that the meal stimulates secretion (peak above
  fasting; structural).

:func:`graft_checks` — the 10 S2008 adults (cohort ``uva-padova-2008``):

* insulin secretion (portal secretion into the liver, ``S = gamma Ipo`` integrated over a
  day) and C-peptide (mean plasma concentration over the day) increase with the graft
  fraction 0 < 0.25 < 0.5 < 1 for every adult, on their usual basal-bolus therapy
  (structural property of the Dalla Man 2007 secretion model scaled by phi, science
  reference §2.3 [U: modelling choice]);
* with a graft fraction of 1 and no exogenous insulin, plasma glucose stays in 70-180
  mg/dL at least 90 % of day 2 (after a 1-day run-in from the T1D basal state), for each
  adult [U: acceptance criterion of the project brief; 70-180 mg/dL is the consensus target
  range, science reference §7].

Every check is expressed so that :meth:`Check.at_most` fits: a distance outside a band, a
largest decrease, or a shortfall, that must be at most 0 (or a tolerance).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from isletsim.engine import MINUTES_PER_DAY, simulate
from isletsim.mmtt import mmtt, ogtt
from isletsim.model import uva_padova as model
from isletsim.params import load_cohort, select_patients
from isletsim.therapy import BasalBolus, NoInsulin
from isletsim.validation.checks import Check

HEALTHY_COHORT = "dalla-man-2007-normal"
ADULTS: tuple[str, ...] = tuple(f"adult#{i:03d}" for i in range(1, 11))
USUAL_MEALS = "07:00=45,12:00=70,18:00=80"
GRAFT_FRACTIONS: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)

FASTING_GLUCOSE_BAND_MG_DL = (70.0, 100.0)
OGTT_2H_LIMIT_MG_DL = 140.0
FASTING_CPEPTIDE_NMOL_L = 0.54
FASTING_CPEPTIDE_REL_TOL = 0.20
DCCT_STIMULATED_NMOL_L = 0.2
TARGET_RANGE_MG_DL = (70.0, 180.0)
MIN_TIME_IN_RANGE_PCT = 90.0

FASTING_GLUCOSE_SOURCE = (
    "ADA diagnostic criteria: normal fasting plasma glucose < 100 mg/dL [U: not in the science "
    "reference]; 70 mg/dL level-1 hypoglycaemia threshold, science reference 6.1 (ADA "
    "Standards 6) [V]"
)
OGTT_SOURCE = (
    "WHO/ADA normal glucose tolerance: 2-h plasma glucose < 140 mg/dL after 75 g [U: not in "
    "the science reference]"
)
CPEPTIDE_FASTING_SOURCE = (
    "science reference 3.2: Van Cauter 1992 steady state ≈0.54 nmol/L, 'a normal fasting "
    "value' [V citation; coefficients I]; no healthy MMTT range in the science reference; "
    "band ±20 % [U: tolerance]"
)
DCCT_SOURCE = "science reference 3.4: DCCT, stimulated C-peptide >= 0.2 nmol/L meaningful [V]"
GRAFT_SOURCE = (
    "Dalla Man 2007 secretion scaled by the graft fraction (science reference 2.3) [U: "
    "modelling choice]; structural property"
)
INDEPENDENCE_SOURCE = (
    "project brief acceptance criterion [U]; 70-180 mg/dL consensus target range (science "
    "reference 7)"
)


def distance_outside(value: float, low: float, high: float) -> float:
    """Distance of ``value`` outside ``[low, high]`` (0 inside; NaN stays NaN)."""
    if math.isnan(value):
        return math.nan
    return max(low - value, value - high, 0.0)


def largest_decrease(series: np.ndarray) -> float:
    """Largest drop between consecutive columns of ``series`` (participants x levels).

    Negative when every row strictly increases (then it is minus the smallest rise); NaN if
    any value is not finite.
    """
    s = np.atleast_2d(np.asarray(series, dtype=float))
    if not np.isfinite(s).all():
        return math.nan
    return float(np.max(s[:, :-1] - s[:, 1:]))


# ----------------------------------------------------------------------------- healthy
def healthy_checks() -> list[Check]:
    """Normal subject, graft fraction 1, no exogenous insulin: glucose and C-peptide."""
    normal = load_cohort(HEALTHY_COHORT)
    name = str(normal["Name"].iloc[0])
    test = mmtt(normal, day=1, graft_fraction=1.0, therapy=NoInsulin()).summary().loc[name]
    tol = ogtt(normal, day=1, graft_fraction=1.0, therapy=NoInsulin())
    g2h = float(tol.two_hour_glucose()[name])
    fpg = float(test["fasting_glucose_mg_dl"])
    fcp = float(test["fasting_cpeptide_nmol_l"])
    peak = float(test["peak_cpeptide_nmol_l"])
    lo, hi = FASTING_GLUCOSE_BAND_MG_DL
    cp_tol = FASTING_CPEPTIDE_REL_TOL * FASTING_CPEPTIDE_NMOL_L
    return [
        Check.at_most(
            "healthy/fasting_plasma_glucose",
            f"distance of fasting plasma glucose (MMTT 0 min after an overnight fast; "
            f"{fpg:.1f} mg/dL) outside {lo:.0f}-{hi:.0f} mg/dL, normal subject, no insulin",
            distance_outside(fpg, lo, hi), 0.0,
            units="mg/dL", source=FASTING_GLUCOSE_SOURCE, reference=f"{lo:.0f}-{hi:.0f} mg/dL",
        ),
        Check.at_most(
            "healthy/ogtt_2h_glucose",
            f"plasma glucose 120 min after a 75 g OGTT (eaten at 5 g/min), normal subject "
            f"(got {g2h:.1f} mg/dL)",
            g2h, OGTT_2H_LIMIT_MG_DL,
            units="mg/dL", source=OGTT_SOURCE, reference="< 140 mg/dL",
        ),
        Check.at_most(
            "healthy/mmtt_fasting_cpeptide",
            f"|MMTT fasting C-peptide - 0.54| (got {fcp:.3f} nmol/L; accepted "
            f"{FASTING_CPEPTIDE_NMOL_L - cp_tol:.2f}-{FASTING_CPEPTIDE_NMOL_L + cp_tol:.2f})",
            abs(fcp - FASTING_CPEPTIDE_NMOL_L), cp_tol,
            units="nmol/L", source=CPEPTIDE_FASTING_SOURCE, reference=FASTING_CPEPTIDE_NMOL_L,
        ),
        Check.at_most(
            "healthy/mmtt_peak_cpeptide_dcct",
            f"shortfall of MMTT peak C-peptide below 0.2 nmol/L (peak {peak:.3f} nmol/L)",
            DCCT_STIMULATED_NMOL_L - peak, 0.0,
            units="nmol/L", source=DCCT_SOURCE, reference=">= 0.2 nmol/L",
        ),
        Check.at_most(
            "healthy/mmtt_stimulation",
            f"fasting minus peak MMTT C-peptide (fasting {fcp:.3f}, peak {peak:.3f} nmol/L); "
            "negative when the meal stimulates secretion",
            fcp - peak, 0.0,
            units="nmol/L", source="structural: glucose-stimulated secretion (Dalla Man 2007)",
            reference="peak > fasting",
        ),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- graft
def secretion_by_graft_fraction(
    names: tuple[str, ...] = ADULTS, fractions: tuple[float, ...] = GRAFT_FRACTIONS
) -> tuple[np.ndarray, np.ndarray]:
    """Daily insulin secretion and mean C-peptide per participant and graft fraction.

    One day of usual meals on basal-bolus therapy from the S2008 basal state.

    Returns
    -------
    secretion : (n, k) portal insulin secretion into the liver, ``∫ gamma Ipo dt`` over the
        day, pmol/kg.
    cpeptide : (n, k) mean plasma C-peptide over the day, pmol/L.
    """
    base = select_patients(list(names))
    k = len(fractions)
    table = pd.concat([base] * k, ignore_index=True)
    phi = np.repeat(np.asarray(fractions, dtype=float), len(base))
    res = simulate(table, days=1, meals=USUAL_MEALS, therapy=BasalBolus(),
                   graft_fraction=phi, record=True, record_states=True)  # fmt: skip
    assert res.states is not None
    gamma = model.parameter_matrix(table)[:, model.P_SGAMMA]
    s_liver = gamma[:, None] * res.states[:, :, model.IPO]
    secretion = np.sum((s_liver[:, 1:] + s_liver[:, :-1]) / 2.0, axis=1)
    cpep = res.trace["cpeptide_pmol_l"].mean(axis=1)
    n = len(base)
    return secretion.reshape(k, n).T, cpep.reshape(k, n).T


def day2_time_in_range(names: tuple[str, ...] = ADULTS, fraction: float = 1.0) -> pd.Series:
    """% of day 2 with plasma glucose in 70-180 mg/dL, graft ``fraction``, no insulin."""
    table = select_patients(list(names))
    res = simulate(table, days=2, meals=USUAL_MEALS, therapy=NoInsulin(),
                   graft_fraction=np.full(len(table), fraction), record=True)  # fmt: skip
    g = res.trace["glucose_plasma_mg_dl"][:, MINUTES_PER_DAY : 2 * MINUTES_PER_DAY]
    lo, hi = TARGET_RANGE_MG_DL
    return pd.Series(100.0 * ((g >= lo) & (g <= hi)).mean(axis=1), index=list(names))


def graft_checks() -> list[Check]:
    """Secretion monotone in graft fraction; a full graft keeps S2008 adults in range."""
    secretion, cpep = secretion_by_graft_fraction()
    fr = ", ".join(f"{f:g}" for f in GRAFT_FRACTIONS)
    checks = [
        Check.at_most(
            "graft/insulin_secretion_monotone",
            f"largest drop of daily portal insulin secretion between consecutive graft "
            f"fractions ({fr}) over the 10 S2008 adults (<= 0: increasing; per-fraction "
            f"means {np.round(secretion.mean(axis=0), 1).tolist()} pmol/kg)",
            largest_decrease(secretion), 0.0,
            units="pmol/kg", source=GRAFT_SOURCE, reference="increasing in graft fraction",
        ),
        Check.at_most(
            "graft/cpeptide_monotone",
            f"largest drop of mean daily plasma C-peptide between consecutive graft fractions "
            f"({fr}) over the 10 S2008 adults (per-fraction means "
            f"{np.round(cpep.mean(axis=0), 1).tolist()} pmol/L)",
            largest_decrease(cpep), 0.0,
            units="pmol/L", source=GRAFT_SOURCE, reference="increasing in graft fraction",
        ),
    ]  # fmt: skip
    tir = day2_time_in_range()
    for name, pct in tir.items():
        checks.append(
            Check.at_most(
                f"graft/insulin_independent/{name}",
                f"shortfall of day-2 plasma-glucose time in 70-180 mg/dL below 90 % with graft "
                f"fraction 1 and no exogenous insulin (got {pct:.1f} %)",
                MIN_TIME_IN_RANGE_PCT - float(pct), 0.0,
                units="% of day", source=INDEPENDENCE_SOURCE, reference=">= 90 % of day 2",
            )
        )
    return checks


__all__ = [
    "day2_time_in_range",
    "distance_outside",
    "graft_checks",
    "healthy_checks",
    "largest_decrease",
    "secretion_by_graft_fraction",
]
