"""C-peptide: two-compartment kinetics with Van Cauter population parameters, and the assay.

Science reference §3. C-peptide is co-secreted with insulin one-to-one and not extracted by
the liver (Palmer et al. *Diabetes* 2004;53:250 [V]), so its secretion rate ISR (pmol/min) is
the graft/pancreatic insulin secretion before hepatic extraction.

Kinetics (Van Cauter E, Mestrez F, Sturis J, Polonsky KS. *Diabetes* 1992;41:368-377 [V:
citation; coefficients I: identical in R ``tabletools`` ``cpeptide_params.R`` and CRAN
``insulin.secretion``]), amounts in pmol, time in minutes::

    dXc/dt = ISR - (k10 + k12) Xc + k21 Xp,   dXp/dt = k12 Xc - k21 Xp,   C = Xc / Vd

with, per participant, BSA (DuBois) -> Vd (sex-specific), short half-life t1 and fraction F
(by population class; T1D adults use "normal", science reference §3.2 [U: modelling choice]),
long half-life t2 = 0.14 age + 29.16, and ``a = ln2/t1``, ``b = ln2/t2``,
``k21 = F b + (1 - F) a``, ``k10 = a b / k21``, ``k12 = a + b - k10 - k21``.

Assay (science reference §3.3): reported in nmol/L; values below the lower limit of
detection (LoD) are *censored* — returned as NaN with a flag, never substituted; LoD default
0.003 nmol/L [U] (TrialNet 0.017 nmol/L [V: Hao et al. *Diabetes Care* 2016;39:1664]);
multiplicative lognormal assay error with CV 7.5 % [U: 5-10 %].

Parameters are read from ``isletsim/params/cpeptide.toml`` (see ``README_physiology.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numba as nb
import numpy as np

from isletsim.params.toml_file import load_tagged_table
from isletsim.units import cpeptide_ng_ml_to_nmol_l, cpeptide_nmol_l_to_ng_ml

PMOL_PER_NMOL: float = 1000.0
#: Accepted spellings of sex (case-insensitive) -> canonical.
SEXES: dict[str, str] = {"m": "male", "male": "male", "f": "female", "female": "female"}
#: Van Cauter population classes ("obese": > 15 % above ideal body weight).
POPULATIONS: tuple[str, ...] = ("normal", "obese", "niddm")
#: Units :func:`measure_cpeptide` can report in.
UNITS: tuple[str, ...] = ("nmol/L", "pmol/L", "ng/mL")

_PARAM_FILE = "cpeptide.toml"
#: Entries of ``params/cpeptide.toml``.
_PARAMETER_NAMES: tuple[str, ...] = (
    "bsa_dubois_coefficient", "bsa_dubois_weight_exponent", "bsa_dubois_height_exponent",
    "vd_male_slope", "vd_male_intercept", "vd_female_slope", "vd_female_intercept",
    *(f"t_short_{p}" for p in POPULATIONS), "t_long_age_slope", "t_long_intercept",
    *(f"fraction_short_{p}" for p in POPULATIONS),
    "assay_lod_default", "assay_lod_trialnet", "assay_cv",
)  # fmt: skip


# ----------------------------------------------------------------------------- parameters
@cache
def cpeptide_parameter_table() -> Mapping[str, Mapping[str, Any]]:
    """Raw entries of ``params/cpeptide.toml``: name -> {value, unit, source, tag, verified}.

    Read with :func:`isletsim.params.toml_file.load_parameter_file` (every parameter of
    :data:`_PARAMETER_NAMES`, no other, each with a finite value, the fields above and
    optionally ``note``), then the science-reference tags are checked
    (:func:`isletsim.params.toml_file.check_tags`).

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        A :class:`ValueError` naming the file, parameter and field: a missing or unknown
        parameter or field, a non-finite value, a non-boolean ``verified``, or a tag that
        disagrees with ``verified``/``source`` (``V`` must be verified; ``U`` must have
        ``source = "unverified"``).
    """
    return load_tagged_table("isletsim.params", _PARAM_FILE, expected=_PARAMETER_NAMES)


@dataclass(frozen=True)
class CPeptideParameters:
    """Values of ``params/cpeptide.toml`` (Van Cauter 1992 [I]; assay [U]/[V]).

    Attributes
    ----------
    bsa_coefficient, bsa_weight_exponent, bsa_height_exponent : DuBois BSA, m^2 from kg, cm.
    vd_slope_l_per_m2, vd_intercept_l : by sex ("male", "female").
    t_short_min, fraction_short : by population class (:data:`POPULATIONS`).
    t_long_age_slope_min_per_year, t_long_intercept_min : long half-life vs age.
    assay_lod_nmol_l : default lower limit of detection [U].
    assay_cv : multiplicative assay CV [U].
    """

    bsa_coefficient: float
    bsa_weight_exponent: float
    bsa_height_exponent: float
    vd_slope_l_per_m2: Mapping[str, float]
    vd_intercept_l: Mapping[str, float]
    t_short_min: Mapping[str, float]
    fraction_short: Mapping[str, float]
    t_long_age_slope_min_per_year: float
    t_long_intercept_min: float
    assay_lod_nmol_l: float
    assay_cv: float


@cache
def load_cpeptide_parameters() -> CPeptideParameters:
    """The default :class:`CPeptideParameters`, read from ``params/cpeptide.toml``."""
    t = cpeptide_parameter_table()

    def v(name: str) -> float:
        return float(t[name]["value"])

    return CPeptideParameters(
        bsa_coefficient=v("bsa_dubois_coefficient"),
        bsa_weight_exponent=v("bsa_dubois_weight_exponent"),
        bsa_height_exponent=v("bsa_dubois_height_exponent"),
        vd_slope_l_per_m2={s: v(f"vd_{s}_slope") for s in ("male", "female")},
        vd_intercept_l={s: v(f"vd_{s}_intercept") for s in ("male", "female")},
        t_short_min={p: v(f"t_short_{p}") for p in POPULATIONS},
        fraction_short={p: v(f"fraction_short_{p}") for p in POPULATIONS},
        t_long_age_slope_min_per_year=v("t_long_age_slope"),
        t_long_intercept_min=v("t_long_intercept"),
        assay_lod_nmol_l=v("assay_lod_default"),
        assay_cv=v("assay_cv"),
    )


def _params(params: CPeptideParameters | None) -> CPeptideParameters:
    return load_cpeptide_parameters() if params is None else params


# ----------------------------------------------------------------------------- validation
def _positive(x: Any, name: str, *, allow_zero: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: must be numeric") from exc
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if bad.any():
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be finite and {rule}, got {arr[bad][:3].tolist()}")
    return arr


def _categories(x: Any, name: str, mapping: Mapping[str, str]) -> np.ndarray:
    arr = np.asarray(x, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for idx, val in np.ndenumerate(arr):
        key = val.strip().lower() if isinstance(val, str) else None
        if key not in mapping:
            raise ValueError(f"{name}: unknown value {val!r}; expected one of {sorted(mapping)}")
        out[idx] = mapping[key]
    return out


# ----------------------------------------------------------------------------- kinetics
def body_surface_area_dubois(
    weight_kg: Any, height_cm: Any, *, params: CPeptideParameters | None = None
) -> np.ndarray:
    """Body-surface area (m^2), DuBois: ``0.007184 W^0.425 H^0.725`` (as in Van Cauter 1992 [I]).

    Parameters
    ----------
    weight_kg, height_cm
        Weight (kg) and height (cm), > 0, broadcastable.
    """
    p = _params(params)
    w = _positive(weight_kg, "weight_kg")
    h = _positive(height_cm, "height_cm")
    return p.bsa_coefficient * w**p.bsa_weight_exponent * h**p.bsa_height_exponent


@dataclass(frozen=True)
class CPeptideKinetics:
    """Per-participant C-peptide kinetic parameters (arrays of one shape; time in min).

    Attributes
    ----------
    bsa_m2 : DuBois body-surface area, m^2.
    vd_l : distribution volume of the central compartment, L.
    t_short_min, t_long_min : short and long half-lives, min.
    fraction_short : fraction F of the short component.
    k10, k12, k21 : rate constants, 1/min.
    """

    bsa_m2: np.ndarray
    vd_l: np.ndarray
    t_short_min: np.ndarray
    t_long_min: np.ndarray
    fraction_short: np.ndarray
    k10: np.ndarray
    k12: np.ndarray
    k21: np.ndarray


def van_cauter_kinetics(
    age_years: Any,
    sex: Any,
    weight_kg: Any,
    height_cm: Any,
    population: Any = "normal",
    *,
    params: CPeptideParameters | None = None,
) -> CPeptideKinetics:
    """Van Cauter 1992 population C-peptide kinetics per participant (vectorised).

    ``Vd = 1.92 BSA + 0.64`` (men) or ``1.11 BSA + 2.04`` (women); ``t2 = 0.14 age + 29.16``;
    ``t1``, ``F`` by class (normal 4.95 min, 0.76); ``a = ln2/t1``, ``b = ln2/t2``,
    ``k21 = F b + (1 - F) a``, ``k10 = a b / k21``, ``k12 = a + b - k10 - k21`` (Van Cauter
    et al. *Diabetes* 1992;41:368 [V citation, I coefficients]). Example: male, 40 y, 75 kg,
    178 cm -> BSA 1.93 m^2, Vd 4.34 L, k10 0.0573, k12 0.0539, k21 0.0488 /min.

    Parameters
    ----------
    age_years
        Age, years, >= 0.
    sex
        ``"male"``/``"M"`` or ``"female"``/``"F"`` (case-insensitive), scalar or array.
    weight_kg, height_cm
        Weight (kg) and height (cm), > 0.
    population
        Van Cauter class, one of :data:`POPULATIONS` ("obese": > 15 % above ideal weight).
        T1D adults: "normal" (science reference §3.2 [U]).

    Returns
    -------
    CPeptideKinetics
        Arrays broadcast to the common shape of the inputs.

    Raises
    ------
    ValueError
        Naming the argument, for an unknown sex or population or a non-positive weight,
        height or negative age.
    """
    p = _params(params)
    age = _positive(age_years, "age_years", allow_zero=True)
    sx = _categories(sex, "sex", SEXES)
    pop = _categories(population, "population", {k: k for k in POPULATIONS})
    bsa = body_surface_area_dubois(weight_kg, height_cm, params=p)
    age, sx, pop, bsa = np.broadcast_arrays(age, sx, pop, bsa)
    male = sx == "male"
    vd = np.where(
        male,
        p.vd_slope_l_per_m2["male"] * bsa + p.vd_intercept_l["male"],
        p.vd_slope_l_per_m2["female"] * bsa + p.vd_intercept_l["female"],
    )
    t1 = np.vectorize(p.t_short_min.__getitem__, otypes=[float])(pop)
    frac = np.vectorize(p.fraction_short.__getitem__, otypes=[float])(pop)
    t2 = p.t_long_age_slope_min_per_year * age + p.t_long_intercept_min
    a = math.log(2.0) / t1
    b = math.log(2.0) / t2
    k21 = frac * b + (1.0 - frac) * a
    k10 = a * b / k21
    k12 = a + b - k10 - k21
    return CPeptideKinetics(
        *(np.asarray(x, dtype=float) for x in (bsa, vd, t1, t2, frac, k10, k12, k21))
    )


@nb.njit(cache=True)
def cpeptide_rhs(
    xc: float, xp: float, isr: float, k10: float, k12: float, k21: float
) -> tuple[float, float]:
    """Right-hand side of the two-compartment C-peptide model (pmol/min).

    ``dXc/dt = ISR - (k10 + k12) Xc + k21 Xp``, ``dXp/dt = k12 Xc - k21 Xp`` (Van Cauter et
    al. 1992; science reference §3.2 [V citation, I coefficients]).

    Parameters
    ----------
    xc, xp
        C-peptide in the central and peripheral compartments, pmol.
    isr
        Secretion rate, pmol/min.
    k10, k12, k21
        Rate constants, 1/min (:func:`van_cauter_kinetics`).

    Returns
    -------
    tuple of float
        ``(dXc/dt, dXp/dt)`` in pmol/min.
    """
    dxc = isr - (k10 + k12) * xc + k21 * xp
    dxp = k12 * xc - k21 * xp
    return dxc, dxp


def steady_state_amounts(
    isr_pmol_min: Any, kinetics: CPeptideKinetics
) -> tuple[np.ndarray, np.ndarray]:
    """Amounts (pmol) at steady state for a constant secretion rate.

    Setting both derivatives of :func:`cpeptide_rhs` to zero: ``Xc = ISR / k10``,
    ``Xp = (k12 / k21) Xc`` (science reference §3.2).
    """
    isr = _positive(isr_pmol_min, "isr_pmol_min", allow_zero=True)
    xc = isr / kinetics.k10
    return xc, kinetics.k12 / kinetics.k21 * xc


def steady_state_concentration(isr_pmol_min: Any, kinetics: CPeptideKinetics) -> np.ndarray:
    """Plasma C-peptide (pmol/L) at steady state: ``C = ISR / (k10 Vd)`` (science ref. §3.2).

    Example: 1.8 pmol/kg/min x 75 kg with the worked-example kinetics gives about 540 pmol/L
    (0.54 nmol/L, a normal fasting value).
    """
    xc, _ = steady_state_amounts(isr_pmol_min, kinetics)
    return xc / kinetics.vd_l


def concentration_pmol_l(xc_pmol: Any, kinetics: CPeptideKinetics) -> np.ndarray:
    """Plasma C-peptide (pmol/L) from the central amount: ``C = Xc / Vd`` (§3.2)."""
    return np.asarray(xc_pmol, dtype=float) / kinetics.vd_l


# ----------------------------------------------------------------------------- assay
def _from_nmol_l(x: np.ndarray | float, unit: str) -> Any:
    if unit == "nmol/L":
        return x
    if unit == "pmol/L":
        return x * PMOL_PER_NMOL
    return cpeptide_nmol_l_to_ng_ml(x)


def _to_nmol_l(x: Any, unit: str) -> Any:
    if unit == "nmol/L":
        return x
    if unit == "pmol/L":
        return x / PMOL_PER_NMOL
    return cpeptide_ng_ml_to_nmol_l(x)


@dataclass(frozen=True)
class CPeptideMeasurement:
    """Assay results: values with a censoring flag (science reference §3.3).

    Attributes
    ----------
    value : measured concentration in ``unit``; NaN where ``censored`` (undetectable).
    censored : True where the measured value fell below the LoD ("undetectable").
    lod : lower limit of detection, in ``unit``.
    unit : one of :data:`UNITS`.
    """

    value: np.ndarray
    censored: np.ndarray
    lod: float
    unit: str

    def to(self, unit: str) -> CPeptideMeasurement:
        """The same results in another unit (ng/mL via :mod:`isletsim.units`)."""
        if unit not in UNITS:
            raise ValueError(f"unit: unknown unit {unit!r}; expected one of {list(UNITS)}")
        value_nmol = _to_nmol_l(self.value, self.unit)
        lod_nmol = float(_to_nmol_l(self.lod, self.unit))
        return CPeptideMeasurement(
            np.asarray(_from_nmol_l(value_nmol, unit), dtype=float),
            self.censored.copy(),
            float(_from_nmol_l(lod_nmol, unit)),
            unit,
        )


def measure_cpeptide(
    conc_pmol_l: Any,
    lod_nmol_l: float | None = None,
    cv: float | None = None,
    rng: np.random.Generator | None = None,
    *,
    unit: str = "nmol/L",
    params: CPeptideParameters | None = None,
) -> CPeptideMeasurement:
    """Simulated C-peptide assay: lognormal multiplicative error, then LoD censoring.

    ``measured = C exp(sigma z - sigma^2 / 2)``, ``sigma^2 = ln(1 + cv^2)``, ``z ~ N(0, 1)``
    (mean-preserving, CV ``cv``); values ``< LoD`` are censored (science reference §3.3 [U:
    error model and default LoD; TrialNet LoD 0.017 nmol/L V]).

    Parameters
    ----------
    conc_pmol_l
        True plasma concentration, pmol/L (model units), >= 0, any shape.
    lod_nmol_l
        Lower limit of detection, nmol/L, > 0; default 0.003 (ultrasensitive assay). TrialNet:
        0.017.
    cv
        Assay coefficient of variation, >= 0; default 0.075.
    rng
        Random generator for the assay error; ``None`` gives the error-free measurement
        (censoring still applies), whatever ``cv``.
    unit
        Reporting unit, one of :data:`UNITS` (default nmol/L).

    Returns
    -------
    CPeptideMeasurement
        ``value`` (NaN where undetectable), ``censored`` flags, ``lod`` and ``unit``.
    """
    p = _params(params)
    if unit not in UNITS:
        raise ValueError(f"unit: unknown unit {unit!r}; expected one of {list(UNITS)}")
    conc = _positive(conc_pmol_l, "conc_pmol_l", allow_zero=True) / PMOL_PER_NMOL
    lod = float(_positive(p.assay_lod_nmol_l if lod_nmol_l is None else lod_nmol_l, "lod_nmol_l"))
    cv_ = float(_positive(p.assay_cv if cv is None else cv, "cv", allow_zero=True))
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
        sigma = math.sqrt(math.log1p(cv_**2))
        conc = conc * np.exp(sigma * rng.standard_normal(conc.shape) - 0.5 * sigma**2)
    censored = np.asarray(conc < lod)
    value = np.where(censored, np.nan, conc)
    return CPeptideMeasurement(
        np.asarray(_from_nmol_l(value, unit), dtype=float), censored,
        float(_from_nmol_l(lod, unit)), unit,
    )  # fmt: skip


__all__ = [
    "POPULATIONS",
    "SEXES",
    "UNITS",
    "CPeptideKinetics",
    "CPeptideMeasurement",
    "CPeptideParameters",
    "body_surface_area_dubois",
    "concentration_pmol_l",
    "cpeptide_parameter_table",
    "cpeptide_rhs",
    "load_cpeptide_parameters",
    "measure_cpeptide",
    "steady_state_amounts",
    "steady_state_concentration",
    "van_cauter_kinetics",
]
