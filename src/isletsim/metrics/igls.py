"""Igls 1.0 and Igls 2.0 outcome classification for beta-cell replacement therapy.

Sources (science reference §8.1-8.2):

* Igls 1.0: Rickels MR et al. *Transplantation* 2018;102:1479-1486 and *Transpl Int*
  2018;31:343-352 (joint publication), Table 3 [V: table via PMC].
* Igls 2.0 (proposed): Landstra CP et al. *J Clin Endocrinol Metab* 2021;106(10):3049-3059,
  Table 2 [V: table via PMC8571711].

The published tables are partly descriptive ("baseline", "~baseline"). This module turns each
cell into an explicit, testable rule; every interpretation is listed in the docstring of the
classifier that makes it, and the fuzzy ones are parameterised. Footnotes that cannot be
decided from the inputs (awareness of hypoglycaemia after recurrent severe events, uraemia,
pre-existing C-peptide, anaemia -> use :func:`isletsim.metrics.hba1c.gmi`) are left to the
caller and noted.

Inputs are per-participant (one row = one participant at one assessment): either a
``pandas.DataFrame`` with the documented column names or the same names as keyword arguments
(scalars, arrays or Series). The output is a DataFrame with one row per input row, same
index, holding the outcome as an ordered categorical (``failure < marginal < good < optimal``,
the string values of the enums below, so ``Igls1Outcome(value)`` gives the member; missing
when not evaluable), ``treatment_success`` and the individual criteria so each classification
can be audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

ArrayLike: TypeAlias = float | int | bool | Sequence[float] | np.ndarray | pd.Series
CpeptideUnit: TypeAlias = Literal["ng/mL", "nmol/L"]

_RANK = {"failure": 0, "marginal": 1, "good": 2, "optimal": 3}
#: Category order of the ``outcome`` / ``graft_function`` columns (worst to best).
OUTCOME_LEVELS: tuple[str, ...] = ("failure", "marginal", "good", "optimal")


class _RankedOutcome(StrEnum):
    """Ordered four-level outcome shared by the Igls result types."""

    @property
    def rank(self) -> int:
        """0 = failure, 1 = marginal, 2 = good, 3 = optimal (higher is better)."""
        return _RANK[self.value]

    @property
    def treatment_success(self) -> bool:
        """``True`` for optimal and good (Igls: "treatment success: yes")."""
        return self.rank >= 2

    @classmethod
    def from_rank(cls, rank: int) -> _RankedOutcome:
        for member in cls:
            if member.rank == rank:
                return member
        raise ValueError(f"no {cls.__name__} with rank {rank}")


class Igls1Outcome(_RankedOutcome):
    """Igls 1.0 beta-cell graft functional status (Rickels et al. 2018) [V]."""

    OPTIMAL = "optimal"
    GOOD = "good"
    MARGINAL = "marginal"
    FAILURE = "failure"


class Igls2Outcome(_RankedOutcome):
    """Igls 2.0 treatment outcome (Landstra et al. 2021, Table 2) [V]."""

    OPTIMAL = "optimal"
    GOOD = "good"
    MARGINAL = "marginal"
    FAILURE = "failure"


class Igls2GraftFunction(_RankedOutcome):
    """Igls 2.0 beta-cell graft function (Landstra et al. 2021, Table 2, lower part) [V].

    ``treatment_success`` is inherited for symmetry; the paper attaches success to the
    treatment outcome, not to graft function.
    """

    OPTIMAL = "optimal"
    GOOD = "good"
    MARGINAL = "marginal"
    FAILURE = "failure"


# --------------------------------------------------------------------------------------------
# Thresholds (published values, in both units as printed in the tables).

#: Igls 1.0 HbA1c thresholds (%): optimal <= 6.5, good < 7.0.
HBA1C_OPTIMAL_MAX_PCT: float = 6.5
HBA1C_GOOD_LT_PCT: float = 7.0
#: Igls 1.0 footnote (b): C-peptide should also be > 0.5 ng/mL (> 0.17 nmol/L).
CPEPTIDE_MIN: dict[str, float] = {"ng/mL": 0.5, "nmol/L": 0.17}
#: Igls 1.0 footnote (c): insulin should also be < 0.5 U/kg/day.
INSULIN_GOOD_LT_U_KG_DAY: float = 0.5
#: Igls 1.0 "good": insulin < 50% of baseline.
INSULIN_GOOD_LT_FRACTION_OF_BASELINE: float = 0.5
#: Igls 2.0 CGM thresholds (%): optimal TIR >= 80 and TBR<54 == 0; good TIR >= 70, TBR<54 < 1.
TIR_OPTIMAL_MIN_PCT: float = 80.0
TIR_GOOD_MIN_PCT: float = 70.0
TBR54_OPTIMAL_MAX_PCT: float = 0.0
TBR54_GOOD_LT_PCT: float = 1.0
#: Igls 2.0 graft function C-peptide thresholds, per unit as printed (ng/mL (nmol/L)).
#: good: stimulated > 0.5 (0.17) or fasting >= 0.2 (0.07);
#: marginal: stimulated 0.3-0.5 (0.10-0.17) or fasting 0.1-<0.2 (0.04-<0.07).
GRAFT_STIM_GOOD_GT: dict[str, float] = {"ng/mL": 0.5, "nmol/L": 0.17}
GRAFT_STIM_MARGINAL_GE: dict[str, float] = {"ng/mL": 0.3, "nmol/L": 0.10}
GRAFT_FAST_GOOD_GE: dict[str, float] = {"ng/mL": 0.2, "nmol/L": 0.07}
GRAFT_FAST_MARGINAL_GE: dict[str, float] = {"ng/mL": 0.1, "nmol/L": 0.04}

# Plausibility limits to catch unit mix-ups (not clinical limits).
_LIMITS: dict[str, tuple[float, float, str]] = {
    "hba1c_pct": (2.0, 25.0, "% (IFCC mmol/mol given?)"),
    "insulin_u_kg_day": (0.0, 5.0, "U/kg/day (U/day given?)"),
    "she_per_year": (0.0, 1000.0, "events/year"),
    "tir_pct": (0.0, 100.0, "%"),
    "tbr54_pct": (0.0, 100.0, "%"),
    "cpeptide:ng/mL": (0.0, 30.0, "ng/mL"),
    "cpeptide:nmol/L": (0.0, 10.0, "nmol/L"),
}


# --------------------------------------------------------------------------------------------
# Input handling (also used by isletsim.metrics.scores).


def _frame_from_inputs(
    data: pd.DataFrame | None,
    columns: Mapping[str, ArrayLike | None],
    required: Sequence[str],
) -> pd.DataFrame:
    """Build a float/bool frame from either *data* or keyword *columns*.

    Only the columns named in *columns* are kept. With *data*, keyword values must all be
    ``None``; missing *required* columns raise ``ValueError`` naming them.
    """
    given = {k: v for k, v in columns.items() if v is not None}
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        if given:
            raise ValueError(
                "pass either a DataFrame or keyword arrays, not both "
                f"(got keywords {sorted(given)})"
            )
        missing = [c for c in required if c not in data.columns]
        if missing:
            raise ValueError(f"missing required column(s): {missing}")
        return data[[c for c in columns if c in data.columns]].copy()

    missing = [c for c in required if c not in given]
    if missing:
        raise ValueError(f"missing required input(s): {missing}")
    index: pd.Index | None = None
    length: int | None = None
    for name, value in given.items():
        if isinstance(value, pd.Series):
            if index is None:
                index = value.index
            elif not value.index.equals(index):
                raise ValueError(f"{name}: Series index differs from the other inputs")
        if not np.isscalar(value):
            n = len(value)  # type: ignore[arg-type]
            if length is not None and n != length:
                raise ValueError(f"{name}: length {n} differs from the other inputs ({length})")
            length = n
    if index is None:
        index = pd.RangeIndex(1 if length is None else length)
    out = {}
    for name, value in given.items():
        if isinstance(value, pd.Series):
            out[name] = value.to_numpy()
        elif np.isscalar(value):
            out[name] = np.repeat(value, len(index))
        else:
            out[name] = np.asarray(value)
    return pd.DataFrame(out, index=index)


def _numeric(
    df: pd.DataFrame,
    col: str,
    limit_key: str | None = None,
    limits: tuple[float, float, str] | None = None,
) -> np.ndarray:
    """Column *col* as a float array (NaN = missing), range-checked.

    The plausible range is *limits* ``(lo, hi, unit)`` or ``_LIMITS[limit_key or col]``.
    """
    try:
        arr = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {col!r}: values must be numeric") from exc
    if np.isinf(arr).any():
        raise ValueError(f"column {col!r}: infinite values are not allowed")
    lo, hi, unit = limits if limits is not None else _LIMITS[limit_key or col]
    finite = arr[~np.isnan(arr)]
    if (finite < lo).any():
        what = "negative values are not allowed" if lo == 0 else f"values below {lo} {unit}"
        raise ValueError(f"column {col!r}: {what} (got {finite[finite < lo][:3].tolist()})")
    if (finite > hi).any():
        raise ValueError(
            f"column {col!r}: value(s) {finite[finite > hi][:3].tolist()} above the plausible "
            f"maximum {hi} {unit}"
        )
    return arr


def _boolean(df: pd.DataFrame, col: str, default: bool) -> np.ndarray:
    """Optional boolean column (missing column -> *default*; NaN not allowed)."""
    if col not in df.columns:
        return np.full(len(df), default)
    s = df[col]
    if s.isna().any():
        raise ValueError(f"column {col!r}: missing values are not allowed (use True/False)")
    values = s.to_numpy()
    if not all(isinstance(v, bool | np.bool_) or v in (0, 1) for v in values):
        raise ValueError(f"column {col!r}: values must be boolean")
    return values.astype(bool)


def _check_unit(unit: str) -> str:
    if unit not in CPEPTIDE_MIN:
        raise ValueError(f"cpeptide_unit must be 'ng/mL' or 'nmol/L', got {unit!r}")
    return unit


def _tri_and(*parts: np.ndarray) -> np.ndarray:
    """Three-valued AND over float arrays holding 1.0 / 0.0 / NaN (unknown)."""
    stacked = np.vstack(parts)
    any_false = (stacked == 0.0).any(axis=0)
    any_nan = np.isnan(stacked).any(axis=0)
    return np.where(any_false, 0.0, np.where(any_nan, np.nan, 1.0))


def _cmp(mask: np.ndarray, *operands: np.ndarray) -> np.ndarray:
    """Boolean *mask* as 1.0/0.0, NaN where any operand is missing."""
    missing = np.zeros(mask.shape, dtype=bool)
    for op in operands:
        missing |= np.isnan(op)
    return np.where(missing, np.nan, mask.astype(float))


def _to_bool_column(x: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.array([pd.NA if np.isnan(v) else bool(v) for v in x], dtype="boolean")


def _cpeptide_above_baseline(df: pd.DataFrame, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Igls 1.0 C-peptide column with footnote (b).

    Returns (criterion, n_pairs) where criterion is 1/0/NaN. A pair (fasting or stimulated)
    counts when both its follow-up and baseline values are present; the criterion holds if
    for at least one pair the follow-up is > baseline AND > 0.5 ng/mL (0.17 nmol/L).
    """
    threshold = CPEPTIDE_MIN[unit]
    hit = np.zeros(len(df), dtype=bool)
    complete = np.zeros(len(df), dtype=bool)
    for kind in ("fasting", "stimulated"):
        f_col, b_col = f"cpeptide_{kind}", f"cpeptide_{kind}_baseline"
        if f_col not in df.columns or b_col not in df.columns:
            continue
        follow = _numeric(df, f_col, f"cpeptide:{unit}")
        base = _numeric(df, b_col, f"cpeptide:{unit}")
        ok = ~np.isnan(follow) & ~np.isnan(base)
        complete |= ok
        hit |= ok & (follow > base) & (follow > threshold)
    return np.where(hit, 1.0, np.where(complete, 0.0, np.nan)), complete


def _classify(levels: Sequence[np.ndarray]) -> np.ndarray:
    """Top-down classification from 1/0/NaN criteria for optimal, good, marginal.

    Returns the rank (3..0) or NaN when an unknown criterion could change the result.
    """
    optimal, good, marginal = levels
    rank = np.full(optimal.shape, np.nan)
    decided = np.zeros(optimal.shape, dtype=bool)
    for r, crit in ((3, optimal), (2, good), (1, marginal)):
        take = ~decided & (crit == 1.0)
        rank[take] = r
        decided |= take
        # unknown at this level and not yet decided -> cannot tell
        decided |= ~decided & np.isnan(crit)
    rank[~decided] = 0
    return rank


def _outcome_column(rank: np.ndarray, enum: type[_RankedOutcome]) -> pd.Categorical:
    """Ordered categorical (failure < marginal < good < optimal) of the enum's values."""
    labels = [None if np.isnan(r) else enum.from_rank(int(r)).value for r in rank]
    return pd.Categorical(labels, categories=OUTCOME_LEVELS, ordered=True)


# --------------------------------------------------------------------------------------------
# Igls 1.0


def classify_igls1(
    data: pd.DataFrame | None = None,
    *,
    hba1c_pct: ArrayLike | None = None,
    hba1c_pct_baseline: ArrayLike | None = None,
    she_per_year: ArrayLike | None = None,
    she_per_year_baseline: ArrayLike | None = None,
    insulin_u_kg_day: ArrayLike | None = None,
    insulin_u_kg_day_baseline: ArrayLike | None = None,
    cpeptide_fasting: ArrayLike | None = None,
    cpeptide_fasting_baseline: ArrayLike | None = None,
    cpeptide_stimulated: ArrayLike | None = None,
    cpeptide_stimulated_baseline: ArrayLike | None = None,
    non_insulin_therapy: ArrayLike | None = None,
    cpeptide_unit: CpeptideUnit = "ng/mL",
    hba1c_tolerance: float = 0.0,
) -> pd.DataFrame:
    """Classify beta-cell graft functional status by the Igls 1.0 criteria.

    Rickels MR et al. *Transplantation* 2018;102:1479 / *Transpl Int* 2018;31:343, Table 3
    [V]. "Baseline" is the pre-transplant assessment.

    Rules (the table read row by row, top-down: the first row whose criteria all hold wins):

    * **Optimal**: HbA1c <= 6.5%; no severe hypoglycaemia (``she_per_year == 0``); no insulin
      (``insulin_u_kg_day == 0``) and no non-insulin antihyperglycaemic agent (Rickels 2018
      abstract: "without ... requirement for insulin or other antihyperglycemic therapy");
      C-peptide criterion (below).
    * **Good**: HbA1c < 7.0%; no severe hypoglycaemia; insulin < 50% of baseline AND
      < 0.5 U/kg/day (footnote c; non-insulin agents allowed); C-peptide criterion.
    * **Marginal**: severe hypoglycaemia < baseline (strict); C-peptide criterion; HbA1c
      "baseline" read as *not worse than baseline*: ``hba1c <= baseline + hba1c_tolerance``
      (Igls 2.0 prints this cell as "<= baseline"). The insulin cell "≥50% of baseline" is
      descriptive (it is the complement of Good's insulin rule), *not* a requirement:
      otherwise a participant with a larger insulin reduction but HbA1c >= 7% would be a
      failure, which would make the classification non-monotone.
    * **Failure**: everything else (the row's "baseline" entries are descriptive).

    C-peptide criterion (column ">baseline" with footnote b): for at least one of the
    fasting or stimulated pairs with both values present, follow-up > baseline AND
    > 0.5 ng/mL (0.17 nmol/L; compared in the unit given, with the threshold as printed).
    Enter an undetectable baseline as 0 (or the assay LoD); a missing baseline is not
    assumed to be 0.

    Not decidable here, left to the caller: footnote (a) (use GMI,
    :func:`isletsim.metrics.hba1c.gmi`, instead of HbA1c with disordered red-cell
    lifespan), (d) (recurrent severe hypoglycaemia with restored
    awareness), (e) (clinical value of a marginal graft), (f) (indication other than severe
    hypoglycaemia), (g) (C-peptide unreliable in uraemia or with pre-existing C-peptide).

    Parameters
    ----------
    data
        DataFrame with the column names below (extra columns are ignored). Give either
        ``data`` or the keyword arrays, not both.
    hba1c_pct, hba1c_pct_baseline
        HbA1c (NGSP %) at follow-up and baseline. Required.
    she_per_year, she_per_year_baseline
        Severe (level 3) hypoglycaemic events per year. Required.
    insulin_u_kg_day, insulin_u_kg_day_baseline
        Exogenous insulin dose, U/kg/day (0 = none). Required.
    cpeptide_fasting, cpeptide_fasting_baseline, cpeptide_stimulated,
    cpeptide_stimulated_baseline
        C-peptide in ``cpeptide_unit``; at least one complete pair is needed per row.
    non_insulin_therapy
        Optional boolean: participant takes a non-insulin antihyperglycaemic agent at
        follow-up. Absent column = ``False`` for everyone.
    cpeptide_unit
        ``"ng/mL"`` (default) or ``"nmol/L"``.
    hba1c_tolerance
        Percentage points within which a follow-up HbA1c counts as "at baseline" for the
        Marginal row (default 0: literal ``<= baseline``). Must be >= 0.

    Returns
    -------
    pandas.DataFrame
        Same index as the input, columns ``outcome`` (ordered categorical of
        :class:`Igls1Outcome` values; missing when a missing input could change the
        result), ``treatment_success`` (nullable boolean), ``evaluable`` and the criteria
        ``crit_optimal``, ``crit_good``, ``crit_marginal``, ``cpeptide_criterion``
        (nullable booleans).

    Raises
    ------
    ValueError
        Missing required columns, non-numeric or negative values, implausible units
        (e.g. HbA1c > 25 %, insulin > 5 U/kg/day), unknown ``cpeptide_unit``.
    """
    unit = _check_unit(cpeptide_unit)
    if not hba1c_tolerance >= 0:
        raise ValueError(f"hba1c_tolerance must be >= 0, got {hba1c_tolerance}")
    cols = {
        "hba1c_pct": hba1c_pct,
        "hba1c_pct_baseline": hba1c_pct_baseline,
        "she_per_year": she_per_year,
        "she_per_year_baseline": she_per_year_baseline,
        "insulin_u_kg_day": insulin_u_kg_day,
        "insulin_u_kg_day_baseline": insulin_u_kg_day_baseline,
        "cpeptide_fasting": cpeptide_fasting,
        "cpeptide_fasting_baseline": cpeptide_fasting_baseline,
        "cpeptide_stimulated": cpeptide_stimulated,
        "cpeptide_stimulated_baseline": cpeptide_stimulated_baseline,
        "non_insulin_therapy": non_insulin_therapy,
    }
    required = list(cols)[:6]
    df = _frame_from_inputs(data, cols, required)
    has_pair = any(
        f"cpeptide_{k}" in df.columns and f"cpeptide_{k}_baseline" in df.columns
        for k in ("fasting", "stimulated")
    )
    if not has_pair:
        raise ValueError(
            "missing C-peptide: need cpeptide_fasting + cpeptide_fasting_baseline and/or "
            "cpeptide_stimulated + cpeptide_stimulated_baseline"
        )

    a1c = _numeric(df, "hba1c_pct")
    a1c0 = _numeric(df, "hba1c_pct_baseline", "hba1c_pct")
    she = _numeric(df, "she_per_year")
    she0 = _numeric(df, "she_per_year_baseline", "she_per_year")
    ins = _numeric(df, "insulin_u_kg_day")
    ins0 = _numeric(df, "insulin_u_kg_day_baseline", "insulin_u_kg_day")
    oha = _boolean(df, "non_insulin_therapy", default=False)
    cpep, _ = _cpeptide_above_baseline(df, unit)

    no_she = _cmp(she == 0, she)
    optimal = _tri_and(
        _cmp(a1c <= HBA1C_OPTIMAL_MAX_PCT, a1c),
        no_she,
        _cmp((ins == 0) & ~oha, ins),
        cpep,
    )
    with np.errstate(invalid="ignore"):
        ins_reduced = (ins < INSULIN_GOOD_LT_FRACTION_OF_BASELINE * ins0) & (
            ins < INSULIN_GOOD_LT_U_KG_DAY
        )
    good = _tri_and(
        _cmp(a1c < HBA1C_GOOD_LT_PCT, a1c),
        no_she,
        _cmp(ins_reduced, ins, ins0),
        cpep,
    )
    marginal = _tri_and(
        _cmp(she < she0, she, she0),
        _cmp(a1c <= a1c0 + hba1c_tolerance, a1c, a1c0),
        cpep,
    )
    rank = _classify([optimal, good, marginal])
    return _result(df.index, rank, Igls1Outcome, optimal, good, marginal, cpeptide=cpep)


def _result(
    index: pd.Index,
    rank: np.ndarray,
    enum: type[_RankedOutcome],
    optimal: np.ndarray,
    good: np.ndarray,
    marginal: np.ndarray,
    **extra: np.ndarray,
) -> pd.DataFrame:
    outcome = _outcome_column(rank, enum)
    success = np.where(np.isnan(rank), np.nan, (rank >= 2).astype(float))
    out = pd.DataFrame(
        {
            "outcome": outcome,
            "treatment_success": _to_bool_column(success),
            "evaluable": ~np.isnan(rank),
            "crit_optimal": _to_bool_column(optimal),
            "crit_good": _to_bool_column(good),
            "crit_marginal": _to_bool_column(marginal),
        },
        index=index,
    )
    for name, values in extra.items():
        out[f"{name}_criterion"] = _to_bool_column(values)
    return out


# --------------------------------------------------------------------------------------------
# Igls 2.0


def classify_igls2(
    data: pd.DataFrame | None = None,
    *,
    hba1c_pct: ArrayLike | None = None,
    hba1c_pct_baseline: ArrayLike | None = None,
    tir_pct: ArrayLike | None = None,
    tir_pct_baseline: ArrayLike | None = None,
    she_per_year: ArrayLike | None = None,
    she_per_year_baseline: ArrayLike | None = None,
    tbr54_pct: ArrayLike | None = None,
    tbr54_pct_baseline: ArrayLike | None = None,
    insulin_u_kg_day: ArrayLike | None = None,
    cpeptide_fasting: ArrayLike | None = None,
    cpeptide_stimulated: ArrayLike | None = None,
    non_insulin_therapy: ArrayLike | None = None,
    cpeptide_unit: CpeptideUnit = "ng/mL",
    hba1c_tolerance: float = 0.0,
    tir_tolerance: float = 0.0,
    tbr54_tolerance: float = 0.0,
) -> pd.DataFrame:
    """Classify the Igls 2.0 treatment outcome (and graft function when possible).

    Landstra CP et al. *J Clin Endocrinol Metab* 2021;106:3049, Table 2 [V]. Top-down rules:

    * **Optimal**: HbA1c <= 6.5%, CGM time in range (70-180 mg/dL) >= 80%, no severe
      hypoglycaemia, CGM time < 54 mg/dL == 0%.
    * **Good**: HbA1c < 7.0%, TIR >= 70%, no severe hypoglycaemia, TBR<54 < 1%.
    * **Marginal**: HbA1c <= baseline, TIR > baseline, severe hypoglycaemia < baseline,
      TBR<54 < baseline.
    * **Failure** ("~baseline" in every column): everything else.

    The "~baseline" row is made explicit with tolerances: a follow-up value within the
    tolerance of its baseline counts as *equal to* baseline. Hence Marginal needs
    ``hba1c <= baseline + hba1c_tolerance``, ``tir > baseline + tir_tolerance`` and
    ``tbr54 < baseline - tbr54_tolerance`` (severe events: strict ``<``, no tolerance).
    All tolerances default to 0, i.e. the literal table. The CGM metrics are required (the
    proposal is built on them; use :func:`classify_igls1` for data without CGM). The
    evaluation windows (e.g. 14-day CGM window before the visit, severe events annualised
    over the preceding 12 months) are the caller's choice [U].

    If ``insulin_u_kg_day`` and at least one C-peptide value are supplied, the beta-cell
    graft function is added (:func:`igls2_graft_function`, capped by this treatment
    outcome, footnote e).

    Parameters
    ----------
    data
        DataFrame with the column names below, or give them as keyword arrays.
    hba1c_pct, hba1c_pct_baseline
        HbA1c (NGSP %). Required.
    tir_pct, tir_pct_baseline
        CGM % time 70-180 mg/dL. Required.
    she_per_year, she_per_year_baseline
        Severe hypoglycaemic events per year. Required.
    tbr54_pct, tbr54_pct_baseline
        CGM % time < 54 mg/dL. Required.
    insulin_u_kg_day, cpeptide_fasting, cpeptide_stimulated, non_insulin_therapy
        Optional, for the graft function (see :func:`igls2_graft_function`).
    cpeptide_unit
        ``"ng/mL"`` or ``"nmol/L"``.
    hba1c_tolerance, tir_tolerance, tbr54_tolerance
        ">= 0"; see above.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome`` (ordered categorical of :class:`Igls2Outcome` values, missing when
        not evaluable), ``treatment_success``,
        ``evaluable``, ``crit_optimal``, ``crit_good``, ``crit_marginal`` and, when the
        inputs allow it, ``graft_function`` (ordered categorical of
        :class:`Igls2GraftFunction` values).

    Raises
    ------
    ValueError
        Missing required columns, non-numeric, negative or out-of-range values, negative
        tolerances.
    """
    for name, tol in (
        ("hba1c_tolerance", hba1c_tolerance),
        ("tir_tolerance", tir_tolerance),
        ("tbr54_tolerance", tbr54_tolerance),
    ):
        if not tol >= 0:
            raise ValueError(f"{name} must be >= 0, got {tol}")
    unit = _check_unit(cpeptide_unit)
    cols = {
        "hba1c_pct": hba1c_pct,
        "hba1c_pct_baseline": hba1c_pct_baseline,
        "tir_pct": tir_pct,
        "tir_pct_baseline": tir_pct_baseline,
        "she_per_year": she_per_year,
        "she_per_year_baseline": she_per_year_baseline,
        "tbr54_pct": tbr54_pct,
        "tbr54_pct_baseline": tbr54_pct_baseline,
        "insulin_u_kg_day": insulin_u_kg_day,
        "cpeptide_fasting": cpeptide_fasting,
        "cpeptide_stimulated": cpeptide_stimulated,
        "non_insulin_therapy": non_insulin_therapy,
    }
    df = _frame_from_inputs(data, cols, list(cols)[:8])
    a1c = _numeric(df, "hba1c_pct")
    a1c0 = _numeric(df, "hba1c_pct_baseline", "hba1c_pct")
    tir = _numeric(df, "tir_pct")
    tir0 = _numeric(df, "tir_pct_baseline", "tir_pct")
    she = _numeric(df, "she_per_year")
    she0 = _numeric(df, "she_per_year_baseline", "she_per_year")
    tbr = _numeric(df, "tbr54_pct")
    tbr0 = _numeric(df, "tbr54_pct_baseline", "tbr54_pct")

    no_she = _cmp(she == 0, she)
    optimal = _tri_and(
        _cmp(a1c <= HBA1C_OPTIMAL_MAX_PCT, a1c),
        _cmp(tir >= TIR_OPTIMAL_MIN_PCT, tir),
        no_she,
        _cmp(tbr <= TBR54_OPTIMAL_MAX_PCT, tbr),
    )
    good = _tri_and(
        _cmp(a1c < HBA1C_GOOD_LT_PCT, a1c),
        _cmp(tir >= TIR_GOOD_MIN_PCT, tir),
        no_she,
        _cmp(tbr < TBR54_GOOD_LT_PCT, tbr),
    )
    marginal = _tri_and(
        _cmp(a1c <= a1c0 + hba1c_tolerance, a1c, a1c0),
        _cmp(tir > tir0 + tir_tolerance, tir, tir0),
        _cmp(she < she0, she, she0),
        _cmp(tbr < tbr0 - tbr54_tolerance, tbr, tbr0),
    )
    rank = _classify([optimal, good, marginal])
    out = _result(df.index, rank, Igls2Outcome, optimal, good, marginal)

    has_cpep = any(c in df.columns for c in ("cpeptide_fasting", "cpeptide_stimulated"))
    if "insulin_u_kg_day" in df.columns and has_cpep:
        graft = igls2_graft_function(
            df.drop(columns=[c for c in df.columns if c not in _GRAFT_COLUMNS]),
            cpeptide_unit=unit,
            treatment_outcome=out["outcome"],
        )
        out["graft_function"] = graft["graft_function"]
    return out


_GRAFT_COLUMNS = (
    "insulin_u_kg_day",
    "cpeptide_fasting",
    "cpeptide_stimulated",
    "non_insulin_therapy",
)


def igls2_graft_function(
    data: pd.DataFrame | None = None,
    *,
    insulin_u_kg_day: ArrayLike | None = None,
    cpeptide_fasting: ArrayLike | None = None,
    cpeptide_stimulated: ArrayLike | None = None,
    non_insulin_therapy: ArrayLike | None = None,
    cpeptide_unit: CpeptideUnit = "ng/mL",
    treatment_outcome: Sequence[Igls2Outcome | str | None] | pd.Series | None = None,
) -> pd.DataFrame:
    """Igls 2.0 beta-cell graft function from C-peptide and therapy.

    Landstra CP et al. *J Clin Endocrinol Metab* 2021;106:3049, Table 2 (lower part) [V]:

    * **Optimal**: any C-peptide, *no* insulin and no non-insulin antihyperglycaemic therapy.
    * **Good**: stimulated > 0.5 ng/mL (0.17 nmol/L) or fasting >= 0.2 (0.07); any therapy.
    * **Marginal**: stimulated 0.3-0.5 (0.10-0.17) or fasting 0.1-<0.2 (0.04-<0.07).
    * **Failure**: stimulated < 0.3 (0.10) or fasting < 0.1 (0.04).

    Decision rules made explicit here:

    * Thresholds are applied in the unit given, with the values printed for that unit, so
      exactly 0.5 ng/mL and exactly 0.17 nmol/L stimulated are both Marginal.
    * With both fasting and stimulated values, the better category wins (the table's "or").
      A missing value is ignored if the other one is present; with neither -> not evaluable.
    * Footnote (e), "categorisation of beta-cell graft function must first meet treatment
      outcome": when ``treatment_outcome`` is given, the graft function is capped at the
      treatment outcome's level (Optimal graft function needs an Optimal treatment outcome
      *and* no therapy; a Failure treatment outcome gives Failure). Without it, Optimal
      only needs "no therapy" (literal table).
    * Footnote (f) (C-peptide unreliable in uraemia / with pre-existing C-peptide) is left
      to the caller.

    Parameters
    ----------
    data
        DataFrame with columns ``insulin_u_kg_day`` (required), ``cpeptide_fasting`` and/or
        ``cpeptide_stimulated``, optional boolean ``non_insulin_therapy``; or keyword arrays.
    cpeptide_unit
        ``"ng/mL"`` or ``"nmol/L"``.
    treatment_outcome
        Optional Igls 2.0 treatment outcome per row (enum members or their string values;
        ``None`` = unknown -> graft function unknown), e.g. ``classify_igls2(...)["outcome"]``.

    Returns
    -------
    pandas.DataFrame
        Columns ``graft_function`` (ordered categorical of :class:`Igls2GraftFunction`
        values, missing when not evaluable), ``no_therapy`` (nullable boolean) and
        ``cpeptide_category`` (the C-peptide-only category, same type).

    Raises
    ------
    ValueError
        Missing ``insulin_u_kg_day`` or both C-peptide columns, negative or implausible
        values, unknown outcome labels, length mismatch with ``treatment_outcome``.
    """
    unit = _check_unit(cpeptide_unit)
    cols = {
        "insulin_u_kg_day": insulin_u_kg_day,
        "cpeptide_fasting": cpeptide_fasting,
        "cpeptide_stimulated": cpeptide_stimulated,
        "non_insulin_therapy": non_insulin_therapy,
    }
    df = _frame_from_inputs(data, cols, ["insulin_u_kg_day"])
    if not any(c in df.columns for c in ("cpeptide_fasting", "cpeptide_stimulated")):
        raise ValueError("missing C-peptide: need cpeptide_fasting and/or cpeptide_stimulated")
    n = len(df)
    ins = _numeric(df, "insulin_u_kg_day")
    oha = _boolean(df, "non_insulin_therapy", default=False)
    nan = np.full(n, np.nan)
    fast = (
        _numeric(df, "cpeptide_fasting", f"cpeptide:{unit}")
        if ("cpeptide_fasting" in df.columns)
        else nan
    )
    stim = (
        _numeric(df, "cpeptide_stimulated", f"cpeptide:{unit}")
        if ("cpeptide_stimulated" in df.columns)
        else nan
    )

    def cat(x: np.ndarray, good_ok: np.ndarray, marg_ok: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x), np.nan, np.where(good_ok, 2.0, np.where(marg_ok, 1.0, 0.0)))

    with np.errstate(invalid="ignore"):
        stim_cat = cat(stim, stim > GRAFT_STIM_GOOD_GT[unit], stim >= GRAFT_STIM_MARGINAL_GE[unit])
        fast_cat = cat(fast, fast >= GRAFT_FAST_GOOD_GE[unit], fast >= GRAFT_FAST_MARGINAL_GE[unit])
    cpep_cat = np.fmax(stim_cat, fast_cat)  # NaN only if both missing

    no_therapy = np.where(np.isnan(ins), np.nan, ((ins == 0) & ~oha).astype(float))
    rank = np.where(no_therapy == 1.0, 3.0, cpep_cat)
    rank = np.where(np.isnan(no_therapy), np.nan, rank)

    if treatment_outcome is not None:
        values = list(treatment_outcome)
        if len(values) != n:
            raise ValueError(
                f"treatment_outcome: length {len(values)} differs from the other inputs ({n})"
            )
        bad = [v for v in values if not (_is_missing(v) or v in _RANK)]
        if bad:
            raise ValueError(
                f"treatment_outcome: unknown label(s) {bad[:3]}; expected {list(_RANK)}"
            )
        cap = np.array([np.nan if _is_missing(v) else float(_RANK[v]) for v in values])
        # unknown graft inputs still give Failure under a Failure treatment outcome
        rank = np.where(np.isnan(rank), np.where(cap == 0, 0.0, np.nan), np.minimum(rank, cap))
        rank = np.where(np.isnan(cap), np.nan, rank)

    return pd.DataFrame(
        {
            "graft_function": _outcome_column(rank, Igls2GraftFunction),
            "no_therapy": _to_bool_column(no_therapy),
            "cpeptide_category": _outcome_column(cpep_cat, Igls2GraftFunction),
        },
        index=df.index,
    )


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA


__all__ = [
    "Igls1Outcome",
    "Igls2GraftFunction",
    "Igls2Outcome",
    "classify_igls1",
    "classify_igls2",
    "igls2_graft_function",
]
