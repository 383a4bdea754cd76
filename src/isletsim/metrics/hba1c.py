"""HbA1c from mean glucose and back: ADAG estimated average glucose and the GMI.

Static (steady-state) relations only; the dynamic glycation model lives elsewhere.

Sources (science reference §5.1):

* ADAG: eAG (mg/dL) = 28.7 x A1c (%) - 46.7, Nathan DM et al. *Diabetes Care*
  2008;31:1473-1478 [V].
* GMI (%) = 3.31 + 0.02392 x mean CGM glucose (mg/dL), Bergenstal RM et al. *Diabetes Care*
  2018;41:2275-2280 [V].
* GMI (mmol/mol) = 12.71 + 4.70587 x mean CGM glucose (mmol/L), same paper [U: coefficients
  not checked against the paper's text].

All functions accept a scalar, a sequence, a numpy array or a pandas Series and return the
same kind (a scalar gives a ``float``, a Series keeps its index and gets a new name). Missing
values (NaN) propagate. Values that cannot be in the stated unit raise ``ValueError`` (e.g. a
mean glucose of 8 "mg/dL" is almost certainly mmol/L).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from isletsim.units import MGDL_PER_MMOLL

ArrayLike: TypeAlias = float | int | Sequence[float] | np.ndarray | pd.Series

#: ADAG regression (Nathan 2008): eAG = ADAG_SLOPE * A1c + ADAG_INTERCEPT (mg/dL, %).
ADAG_SLOPE_MGDL_PER_PCT: float = 28.7
ADAG_INTERCEPT_MGDL: float = -46.7

#: GMI (Bergenstal 2018): GMI % = GMI_INTERCEPT_PCT + GMI_SLOPE_PCT_PER_MGDL * mean mg/dL.
GMI_INTERCEPT_PCT: float = 3.31
GMI_SLOPE_PCT_PER_MGDL: float = 0.02392
#: GMI (Bergenstal 2018), IFCC form: mmol/mol = intercept + slope * mean mmol/L [U].
GMI_INTERCEPT_MMOL_MOL: float = 12.71
GMI_SLOPE_MMOL_MOL_PER_MMOLL: float = 4.70587

# Plausibility ranges used to catch unit mix-ups (not clinical limits).
_MEAN_GLUCOSE_MGDL_RANGE: tuple[float, float] = (20.0, 800.0)
_HBA1C_PCT_RANGE: tuple[float, float] = (2.0, 25.0)


def _to_float(x: ArrayLike, name: str) -> float | np.ndarray | pd.Series:
    """Coerce *x* to float while keeping its kind (scalar, ndarray or Series)."""
    if isinstance(x, pd.Series):
        try:
            return x.astype(float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: values must be numeric") from exc
    if np.isscalar(x):
        if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.number):
            raise ValueError(f"{name}: expected a number, got {x!r}")
        return float(x)
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: values must be numeric") from exc


def _check_range(
    x: float | np.ndarray | pd.Series, name: str, unit: str, lo: float, hi: float, hint: str
) -> None:
    """Raise ``ValueError`` if any non-missing value of *x* lies outside ``[lo, hi]``."""
    arr = np.asarray(x, dtype=float)
    finite = arr[~np.isnan(arr)]
    if np.isinf(finite).any():
        raise ValueError(f"{name}: infinite values are not allowed")
    bad = finite[(finite < lo) | (finite > hi)]
    if bad.size:
        raise ValueError(
            f"{name}: value(s) {bad[:3].tolist()} outside the plausible range [{lo}, {hi}] {unit}"
            f" ({hint})"
        )


def _named(result: float | np.ndarray | pd.Series, name: str) -> float | np.ndarray | pd.Series:
    if isinstance(result, pd.Series):
        return result.rename(name)
    return result


def gmi(mean_mg_dl: ArrayLike) -> float | np.ndarray | pd.Series:
    """Glucose management indicator (GMI) in NGSP %, from mean CGM glucose.

    ``GMI (%) = 3.31 + 0.02392 x mean glucose (mg/dL)`` (Bergenstal et al. *Diabetes Care*
    2018;41:2275) [V]. Example: mean 150 mg/dL -> 6.9%.

    Parameters
    ----------
    mean_mg_dl
        Mean sensor glucose in mg/dL (scalar, array or Series). Should cover >= 14 days of CGM
        with >= 70% data for the GMI to be meaningful (consensus; not checked here).

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        GMI in %, same kind as the input (a Series is renamed ``"gmi_pct"``).

    Raises
    ------
    ValueError
        If a value is not numeric or lies outside 20-800 mg/dL (most likely mmol/L).
    """
    g = _to_float(mean_mg_dl, "mean_mg_dl")
    _check_range(g, "mean_mg_dl", "mg/dL", *_MEAN_GLUCOSE_MGDL_RANGE, hint="mmol/L given?")
    return _named(GMI_INTERCEPT_PCT + GMI_SLOPE_PCT_PER_MGDL * g, "gmi_pct")


def gmi_mmol_mol(mean_mg_dl: ArrayLike) -> float | np.ndarray | pd.Series:
    """Glucose management indicator in IFCC mmol/mol, from mean CGM glucose in mg/dL.

    ``GMI (mmol/mol) = 12.71 + 4.70587 x mean glucose (mmol/L)`` (Bergenstal et al.
    *Diabetes Care* 2018;41:2275) [U: coefficients as quoted in the science reference, not
    checked against the paper]. The mean is converted with :data:`isletsim.units.MGDL_PER_MMOLL`.
    It agrees with ``hba1c_ngsp_to_ifcc(gmi(x))`` to within 0.1 mmol/mol over 70-300 mg/dL.

    Parameters
    ----------
    mean_mg_dl
        Mean sensor glucose in mg/dL.

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        GMI in mmol/mol (a Series is renamed ``"gmi_mmol_mol"``).

    Raises
    ------
    ValueError
        If a value is not numeric or lies outside 20-800 mg/dL.
    """
    g = _to_float(mean_mg_dl, "mean_mg_dl")
    _check_range(g, "mean_mg_dl", "mg/dL", *_MEAN_GLUCOSE_MGDL_RANGE, hint="mmol/L given?")
    mean_mmol = g / MGDL_PER_MMOLL
    return _named(GMI_INTERCEPT_MMOL_MOL + GMI_SLOPE_MMOL_MOL_PER_MMOLL * mean_mmol, "gmi_mmol_mol")


def estimated_average_glucose(hba1c_pct: ArrayLike) -> float | np.ndarray | pd.Series:
    """Estimated average glucose (eAG, mg/dL) from HbA1c (NGSP %).

    ADAG regression ``eAG = 28.7 x A1c - 46.7`` (Nathan et al. *Diabetes Care*
    2008;31:1473) [V]. Published table: 6% -> 126, 7% -> 154, 8% -> 183 mg/dL.

    Parameters
    ----------
    hba1c_pct
        HbA1c in NGSP % (convert IFCC mmol/mol with
        :func:`isletsim.units.hba1c_ifcc_to_ngsp` first).

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        eAG in mg/dL (a Series is renamed ``"eag_mg_dl"``).

    Raises
    ------
    ValueError
        If a value is not numeric or lies outside 2-25 % (mmol/mol given?).
    """
    a = _to_float(hba1c_pct, "hba1c_pct")
    _check_range(a, "hba1c_pct", "%", *_HBA1C_PCT_RANGE, hint="IFCC mmol/mol given?")
    return _named(ADAG_SLOPE_MGDL_PER_PCT * a + ADAG_INTERCEPT_MGDL, "eag_mg_dl")


def hba1c_from_mean_glucose(mean_mg_dl: ArrayLike) -> float | np.ndarray | pd.Series:
    """HbA1c (NGSP %) expected at steady state for a mean glucose, by inverting ADAG.

    ``A1c = (mean + 46.7) / 28.7`` (Nathan et al. *Diabetes Care* 2008;31:1473) [V]; the
    regression was fitted with A1c as predictor, so this inverse is the conventional "eA1c"
    (as in iglu ``ea1c``), not a separate fit. For CGM data prefer :func:`gmi`.

    Parameters
    ----------
    mean_mg_dl
        Mean glucose in mg/dL.

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        HbA1c in % (a Series is renamed ``"ea1c_pct"``).

    Raises
    ------
    ValueError
        If a value is not numeric or lies outside 20-800 mg/dL (mmol/L given?).
    """
    g = _to_float(mean_mg_dl, "mean_mg_dl")
    _check_range(g, "mean_mg_dl", "mg/dL", *_MEAN_GLUCOSE_MGDL_RANGE, hint="mmol/L given?")
    return _named((g - ADAG_INTERCEPT_MGDL) / ADAG_SLOPE_MGDL_PER_PCT, "ea1c_pct")


__all__ = [
    "ADAG_INTERCEPT_MGDL",
    "ADAG_SLOPE_MGDL_PER_PCT",
    "GMI_INTERCEPT_PCT",
    "GMI_SLOPE_PCT_PER_MGDL",
    "estimated_average_glucose",
    "gmi",
    "gmi_mmol_mol",
    "hba1c_from_mean_glucose",
]
