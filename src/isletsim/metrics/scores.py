"""Composite beta-cell graft function scores: beta-score and BETA-2.

Sources (science reference §8.3):

* beta-score: Ryan EA et al. *Diabetes Care* 2005;28:343-347, Table 1 [V].
* BETA-2: Forbes S et al. *Am J Transplant* 2016;16(9):2704-2713 [V: inputs and purpose;
  formula U]. The formula below is the one quoted in the science reference and has **not**
  been checked against the paper: see :data:`BETA2_FORMULA_VERIFIED`.

Inputs use the same column names as :mod:`isletsim.metrics.igls` (a DataFrame or keyword
arrays). Both scores return a float ``pandas.Series`` (NaN where an input needed for the
score is missing) with the input's index.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

from isletsim.metrics.igls import ArrayLike, _boolean, _frame_from_inputs, _numeric
from isletsim.units import cpeptide_ng_ml_to_nmol_l, mg_dl_to_mmol

GlucoseUnit: TypeAlias = Literal["mmol/L", "mg/dL"]
CpeptideUnit: TypeAlias = Literal["nmol/L", "ng/mL"]

#: BETA-2 formula status: quoted from a secondary description, not checked against
#: Forbes et al. 2016 (science reference tag [U]). Flip only after checking the paper.
BETA2_FORMULA_VERIFIED: bool = False
#: BETA-2 < 20 suggests glucose intolerance (90-min MMTT glucose >= 8 mmol/L) [U].
BETA2_GLUCOSE_INTOLERANCE_BELOW: float = 20.0
#: BETA-2 >= 15 associated with insulin independence [U].
BETA2_INSULIN_INDEPENDENCE_AT_LEAST: float = 15.0

_GLUCOSE_LIMITS: dict[str, tuple[float, float, str]] = {
    "mmol/L": (0.5, 50.0, "mmol/L (mg/dL given?)"),
    "mg/dL": (10.0, 900.0, "mg/dL (mmol/L given?)"),
}
_CPEP_LIMITS: dict[str, tuple[float, float, str]] = {
    "nmol/L": (0.0, 10.0, "nmol/L (pmol/L given?)"),
    "ng/mL": (0.0, 30.0, "ng/mL"),
}


def _glucose_mmol(df: pd.DataFrame, col: str, unit: str) -> np.ndarray:
    if unit not in _GLUCOSE_LIMITS:
        raise ValueError(f"glucose_unit must be 'mmol/L' or 'mg/dL', got {unit!r}")
    g = _numeric(df, col, limits=_GLUCOSE_LIMITS[unit])
    return g if unit == "mmol/L" else mg_dl_to_mmol(g)


def _cpeptide_nmol(df: pd.DataFrame, col: str, unit: str) -> np.ndarray:
    if unit not in _CPEP_LIMITS:
        raise ValueError(f"cpeptide_unit must be 'nmol/L' or 'ng/mL', got {unit!r}")
    if col not in df.columns:
        return np.full(len(df), np.nan)
    c = _numeric(df, col, limits=_CPEP_LIMITS[unit])
    return c if unit == "nmol/L" else cpeptide_ng_ml_to_nmol_l(c)


def beta_score(
    data: pd.DataFrame | None = None,
    *,
    fasting_glucose: ArrayLike | None = None,
    hba1c_pct: ArrayLike | None = None,
    insulin_u_kg_day: ArrayLike | None = None,
    cpeptide_stimulated: ArrayLike | None = None,
    cpeptide_fasting: ArrayLike | None = None,
    non_insulin_therapy: ArrayLike | None = None,
    glucose_unit: GlucoseUnit = "mmol/L",
    cpeptide_unit: CpeptideUnit = "nmol/L",
) -> pd.Series:
    """Beta-score (0-8) of islet graft function.

    Ryan EA et al. *Diabetes Care* 2005;28:343, Table 1 [V]. Two, one or zero points each:

    ==============================  ============  =====================  =========
    component                       2 points      1 point                0 points
    ==============================  ============  =====================  =========
    fasting glucose (mmol/L)        <= 5.5        5.6-6.9                >= 7.0
    HbA1c (%)                       <= 6.1        6.2-6.9                >= 7.0
    insulin (U/kg/day) / oral agent none          0.01-0.24 and/or OHA   >= 0.25
    stimulated C-peptide (nmol/L)   >= 0.3        0.1-0.29               < 0.1
    ==============================  ============  =====================  =========

    Fasting C-peptide >= 0.3 nmol/L counts as stimulated >= 0.3; stimulated < 0.1 nmol/L
    gives a total score of 0. If the two conflict (fasting >= 0.3 but stimulated < 0.1), the
    fasting rule wins: C-peptide is evidently present (our reading).

    Continuous values between the printed (rounded) bands are assigned explicitly: the
    2-point bands are closed (``<= 5.5``, ``<= 6.1``, insulin exactly 0 and no oral agent,
    C-peptide ``>= 0.3``), the 0-point bands are as printed (``>= 7.0``, ``>= 0.25``,
    ``< 0.1``) and everything in between scores 1 (e.g. glucose 5.55, HbA1c 6.95, insulin
    0.005 U/kg/day, C-peptide 0.295 nmol/L). Glucose and C-peptide in other units are
    converted with :mod:`isletsim.units` before banding.

    Parameters
    ----------
    data
        DataFrame with the column names below, or give them as keyword arrays.
    fasting_glucose
        Fasting plasma glucose in ``glucose_unit``. Required.
    hba1c_pct
        HbA1c, NGSP %. Required.
    insulin_u_kg_day
        Exogenous insulin, U/kg/day (0 = none). Required.
    cpeptide_stimulated
        Stimulated (MMTT) C-peptide in ``cpeptide_unit``. Required input; a missing value
        is scored from the fasting value if that is >= 0.3 nmol/L, else the score is NaN.
    cpeptide_fasting
        Optional fasting C-peptide in ``cpeptide_unit``.
    non_insulin_therapy
        Optional boolean: oral hypoglycaemic agent (OHA) use. Absent = no OHA.
    glucose_unit, cpeptide_unit
        Units of the glucose and C-peptide inputs.

    Returns
    -------
    pandas.Series
        ``"beta_score"``, float 0-8 (NaN where a required value is missing).

    Raises
    ------
    ValueError
        Missing columns, unknown units, negative or implausible values.
    """
    cols = {
        "fasting_glucose": fasting_glucose,
        "hba1c_pct": hba1c_pct,
        "insulin_u_kg_day": insulin_u_kg_day,
        "cpeptide_stimulated": cpeptide_stimulated,
        "cpeptide_fasting": cpeptide_fasting,
        "non_insulin_therapy": non_insulin_therapy,
    }
    df = _frame_from_inputs(data, cols, list(cols)[:4])
    glu = _glucose_mmol(df, "fasting_glucose", glucose_unit)
    a1c = _numeric(df, "hba1c_pct")
    ins = _numeric(df, "insulin_u_kg_day")
    stim = _cpeptide_nmol(df, "cpeptide_stimulated", cpeptide_unit)
    fast = _cpeptide_nmol(df, "cpeptide_fasting", cpeptide_unit)
    oha = _boolean(df, "non_insulin_therapy", default=False)

    with np.errstate(invalid="ignore"):
        p_glu = np.where(glu <= 5.5, 2.0, np.where(glu < 7.0, 1.0, 0.0))
        p_a1c = np.where(a1c <= 6.1, 2.0, np.where(a1c < 7.0, 1.0, 0.0))
        p_ins = np.where((ins == 0) & ~oha, 2.0, np.where(ins < 0.25, 1.0, 0.0))
        fasting_high = fast >= 0.3  # NaN -> False
        p_cp = np.where(fasting_high | (stim >= 0.3), 2.0, np.where(stim >= 0.1, 1.0, 0.0))
        absent = ~fasting_high & (stim < 0.1)
    total = p_glu + p_a1c + p_ins + p_cp
    total = np.where(absent, 0.0, total)
    unknown = np.isnan(glu) | np.isnan(a1c) | np.isnan(ins) | (np.isnan(stim) & ~fasting_high)
    # a known absent C-peptide gives 0 whatever else is missing
    total = np.where(unknown & ~absent, np.nan, total)
    return pd.Series(total, index=df.index, name="beta_score")


def beta2_score(
    data: pd.DataFrame | None = None,
    *,
    cpeptide_fasting: ArrayLike | None = None,
    insulin_u_kg_day: ArrayLike | None = None,
    fasting_glucose: ArrayLike | None = None,
    hba1c_pct: ArrayLike | None = None,
    glucose_unit: GlucoseUnit = "mmol/L",
    cpeptide_unit: CpeptideUnit = "nmol/L",
) -> pd.Series:
    """BETA-2 score from a single fasting sample.

    Forbes S et al. *Am J Transplant* 2016;16:2704 [V: inputs and purpose; **formula U**]::

        BETA-2 = 1000 * sqrt(C_f * (1 - D)) / (G_f * A1c)

    with fasting C-peptide C_f (nmol/L), insulin dose D (U/kg/day), fasting glucose G_f
    (mmol/L) and HbA1c A1c (%). **Caveat:** this formula is taken from the science
    reference, where it is tagged unverified; it has not been checked against the paper
    (:data:`BETA2_FORMULA_VERIFIED` is ``False``; the function carries the same flag as
    ``beta2_score.formula_verified``). Reported cut-offs (also [U]): < 20 suggests glucose
    intolerance, >= 15 is associated with insulin independence.

    Decision for doses >= 1 U/kg/day (negative radicand, undefined in the formula): the score
    is set to 0, the same as an undetectable C-peptide (our choice [U]).

    Parameters
    ----------
    data
        DataFrame with the column names below, or keyword arrays.
    cpeptide_fasting
        Fasting C-peptide in ``cpeptide_unit``.
    insulin_u_kg_day
        Exogenous insulin, U/kg/day.
    fasting_glucose
        Fasting glucose in ``glucose_unit``.
    hba1c_pct
        HbA1c, NGSP %.
    glucose_unit, cpeptide_unit
        Units of glucose and C-peptide (converted with :mod:`isletsim.units`).

    Returns
    -------
    pandas.Series
        ``"beta2_score"`` (float, >= 0; NaN where an input is missing).

    Raises
    ------
    ValueError
        Missing columns, unknown units, negative or implausible values.
    """
    cols = {
        "cpeptide_fasting": cpeptide_fasting,
        "insulin_u_kg_day": insulin_u_kg_day,
        "fasting_glucose": fasting_glucose,
        "hba1c_pct": hba1c_pct,
    }
    df = _frame_from_inputs(data, cols, list(cols))
    cp = _cpeptide_nmol(df, "cpeptide_fasting", cpeptide_unit)
    ins = _numeric(df, "insulin_u_kg_day")
    glu = _glucose_mmol(df, "fasting_glucose", glucose_unit)
    a1c = _numeric(df, "hba1c_pct")
    radicand = np.clip(cp * (1.0 - ins), 0.0, None)
    score = 1000.0 * np.sqrt(radicand) / (glu * a1c)
    return pd.Series(score, index=df.index, name="beta2_score")


beta2_score.formula_verified = BETA2_FORMULA_VERIFIED  # type: ignore[attr-defined]


__all__ = [
    "BETA2_FORMULA_VERIFIED",
    "BETA2_GLUCOSE_INTOLERANCE_BELOW",
    "BETA2_INSULIN_INDEPENDENCE_AT_LEAST",
    "beta2_score",
    "beta_score",
]
