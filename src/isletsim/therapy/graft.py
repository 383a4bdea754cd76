"""Islet graft course: from the infused dose to the functional graft fraction φ(t).

The graft enters the physiology only through φ(t), the functional fraction of a normal
pancreas (isletsim science reference §2.3, [U]): secretion of the Dalla Man 2007 normal
β-cell model is scaled by φ. This module gives φ per participant per day, vectorised over
participants, for one or more intraportal infusions.

Model (isletsim science reference §4, all [U] modelling choices unless tagged)
------------------------------------------------------------------------------
For participant ``i`` infused on trial day ``t_inf`` and ``τ = t - t_inf`` days later::

    φ_i(t) = φ_max,i · m_i(τ) · s_i(τ) · 1{t < t_loss,i}
    φ_max,i = D_i · (1 - L_i) · ρ_i / IEQ_ref
    m_i(τ)  = 1 - exp(-[(τ - t_lag) / τ_m,i]^n)   for τ > t_lag, 0 before     (§4.2)
    s_i(τ)  = exp(-λ_g,i · τ)                                                    (§4.4)

* ``D_i``: nominal infused IEQ. Stem-cell-derived islets are dosed in cells and converted
  only through the explicit potency factor ``cells_per_ieq`` (§4.3: ≈1,000–1,600, 1,560 for
  a 150-µm islet [U]); donor islets are dosed in IEQ/kg and multiplied by body weight.
* ``L_i``: early loss (IBMIR, hypoxia; §4.1, van der Windt 2007 review [V, qualitative]),
  ``L ~ Beta`` with mean 0.5 and range 0.25–0.7 [U]. We read the range as the hard bounds
  of a four-parameter Beta on ``[min, max]`` whose mean is the stated mean and whose
  concentration ``a + b`` is a data value (our choice [U]).
* ``ρ_i``: relative potency (functional IEQ per nominal IEQ), lognormal with median 1 [U].
* ``m``: maturation/revascularisation, Weibull-CDF form of §4.2 [U]; donor islets
  t_lag 3 d, τ_m 14 d, n 2; SC-islets t_lag 30 d, τ_m 120 d, n 2 [U].
* ``s``: slow attrition with ``λ_g = ln 2 / median graft survival`` (median 5.9 y for donor
  islets, Marfil-Garza et al. *Lancet Diabetes Endocrinol* 2022 [V]; its use as the median of
  ``exp(-λ_g t)`` is [U]). ``τ_m`` and ``λ_g`` vary between participants (lognormal, median =
  typical value, CVs are data values [U]).
* ``t_loss``: abrupt loss (rejection / recurrent autoimmunity, §4.4 "a small hazard" [U]),
  drawn once per participant from a constant hazard ``h = h_product · multiplier(regimen)``
  (the product's hazard holds under the reference regimen ``"standard"``, glucocorticoid-free
  maintenance, §4.5); φ is 0 from that day on.

A second infusion (e.g. the optional second half dose of zimislecel part A, Reichman et al.
*NEJM* 2025 [V]) is another course with its own ``infusion_day`` and its own draws; courses
add (``first + second``), with independent early loss and abrupt loss [U].

Randomness
----------
Every participant has its own :class:`numpy.random.Generator` (see :func:`participant_streams`,
which spawns them from one :class:`~numpy.random.SeedSequence`), and a course takes exactly
five uniforms from each, always in this order, whatever the parameters: early loss, τ_m, λ_g,
potency, abrupt loss. They are turned into the random quantities by inverse CDFs, so the
same streams give the same participant-level randomness for any dose, regimen or
variability setting (common random numbers across arms), and participant ``i``'s course
does not depend on how many others are simulated (architecture: per-participant streams).

Parameter values live in ``isletsim/params/graft/*.toml`` (each with ``source`` and
``verified``), documented in ``isletsim/params/graft/README.md``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import numba as nb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaincinv, ndtri

from isletsim.params.toml_file import (
    ParameterEntry,
    ParameterFileError,
    check_table_keys,
    parse_parameter_table,
    read_parameter_document,
)
from isletsim.seeding import assembled_entropy, generators

#: Days per year used to convert the yearly figures of the parameter files (Julian year).
DAYS_PER_YEAR: float = 365.25

#: Known islet products: name -> parameter file in ``isletsim/params/graft``.
PRODUCT_FILES: Mapping[str, str] = MappingProxyType(
    {"donor-islets": "donor_islets.toml", "sc-islets": "sc_islets.toml"}
)
#: Names of the known islet products.
ISLET_PRODUCTS: tuple[str, ...] = tuple(sorted(PRODUCT_FILES))
#: Units a product's dose may be given in.
DOSE_UNITS: tuple[str, ...] = ("cells", "IEQ/kg")

_REFERENCE_FILE = "reference.toml"
_REGIMEN_FILE = "immunosuppression.toml"
#: Uniforms taken from each participant's stream per course (see module docstring).
N_UNIFORMS_PER_COURSE: int = 5
_U_EARLY_LOSS, _U_TAU, _U_LAMBDA, _U_POTENCY, _U_ABRUPT = range(N_UNIFORMS_PER_COURSE)
#: Fields of every entry of the graft parameter files (exactly these, see the README).
_SOURCE_KEYS = ("value", "unit", "source", "verified")
_GRAFT_PACKAGE = "isletsim.params.graft"


# --------------------------------------------------------------------------------------------
# Parameter sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcedValue:
    """One parameter value with its provenance, as stored in the parameter files.

    Attributes
    ----------
    value : float
    unit : str
    source : str
        Citation, with the science reference's tag ([V], [I], [U]) in the text.
    verified : bool
        True only where the science reference tags the figure [V] (checked against the
        paper, abstract/table or an official page).
    """

    value: float
    unit: str
    source: str
    verified: bool

    def __repr__(self) -> str:
        tag = "verified" if self.verified else "unverified"
        return f"SourcedValue({self.value:g} {self.unit}, {tag})"


# Fields of IsletProduct that are numeric parameters read from the ``[parameters]`` table.
_PRODUCT_PARAMETERS = (
    "cells_per_ieq",
    "early_loss_mean",
    "early_loss_min",
    "early_loss_max",
    "early_loss_concentration",
    "maturation_lag_days",
    "maturation_tau_days",
    "maturation_shape",
    "median_graft_survival_years",
    "abrupt_loss_per_year",
    "cv_maturation_tau",
    "cv_attrition_rate",
    "cv_potency",
)


@dataclass(frozen=True, repr=False)
class IsletProduct:
    """Typical values and variability of one islet product (see the module docstring).

    Load shipped products with :func:`load_islet_product`; change values with
    :meth:`with_values`, which re-validates and marks the changed values as user-set.

    Attributes
    ----------
    name, description : str
    dose_unit : {"cells", "IEQ/kg"}
        Unit of the dose passed to :func:`sample_graft`.
    cells_per_ieq : float or None
        Potency factor, cells per IEQ (products dosed in cells only; ``None`` otherwise).
    reference_ieq : float
        IEQ of a normal pancreas (φ = 1), from ``reference.toml``.
    early_loss_mean, early_loss_min, early_loss_max : float
        Mean and hard bounds of the early-loss fraction ``L`` (Beta on ``[min, max]``).
    early_loss_concentration : float
        ``a + b`` of that Beta; ``inf`` fixes ``L`` at its mean.
    maturation_lag_days, maturation_tau_days, maturation_shape : float
        ``t_lag`` (days), typical ``τ_m`` (days) and shape ``n`` of the maturation curve.
    median_graft_survival_years : float
        Typical median of ``s(t)``; ``λ_g = ln 2 / median`` (``inf`` for no attrition).
    abrupt_loss_per_year : float
        Abrupt-loss hazard under the reference regimen ``"standard"``, 1/year.
    cv_maturation_tau, cv_attrition_rate, cv_potency : float
        Between-participant lognormal CVs of ``τ_m``, ``λ_g`` and relative potency.
    named_doses : Mapping[str, float]
        Named doses in ``dose_unit`` (e.g. zimislecel ``"full"`` = 0.8×10⁹ cells).
    sources : Mapping[str, SourcedValue]
        Provenance of every numeric value above and of each named dose (``"dose:<name>"``).
    """

    name: str
    description: str
    dose_unit: str
    cells_per_ieq: float | None
    reference_ieq: float
    early_loss_mean: float
    early_loss_min: float
    early_loss_max: float
    early_loss_concentration: float
    maturation_lag_days: float
    maturation_tau_days: float
    maturation_shape: float
    median_graft_survival_years: float
    abrupt_loss_per_year: float
    cv_maturation_tau: float
    cv_attrition_rate: float
    cv_potency: float
    named_doses: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, SourcedValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "named_doses", MappingProxyType(dict(self.named_doses)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        where = f"islet product {self.name!r}"
        if self.dose_unit not in DOSE_UNITS:
            raise ValueError(
                f"{where}: dose_unit must be one of {_quoted(DOSE_UNITS)}, got {self.dose_unit!r}"
            )
        if self.dose_unit == "cells":
            if self.cells_per_ieq is None or not (0 < self.cells_per_ieq < math.inf):
                raise ValueError(
                    f"{where}: a product dosed in cells needs cells_per_ieq > 0 (finite), "
                    f"got {self.cells_per_ieq!r}"
                )
        elif self.cells_per_ieq is not None:
            raise ValueError(f"{where}: cells_per_ieq applies only to products dosed in cells")
        _check(where, "reference_ieq", self.reference_ieq, low=0.0, strict=True)
        lo, mean, hi = self.early_loss_min, self.early_loss_mean, self.early_loss_max
        if not (0.0 <= lo <= mean <= hi < 1.0):
            raise ValueError(
                f"{where}: need 0 <= early_loss_min <= early_loss_mean <= early_loss_max < 1, "
                f"got {lo}, {mean}, {hi}"
            )
        if lo < hi and not lo < mean < hi:
            raise ValueError(
                f"{where}: early_loss_mean must lie strictly inside (early_loss_min, "
                f"early_loss_max) when they differ, got {mean} in [{lo}, {hi}]"
            )
        _check(where, "early_loss_concentration", self.early_loss_concentration, 0.0, True, True)
        _check(where, "maturation_lag_days", self.maturation_lag_days, low=0.0)
        _check(where, "maturation_tau_days", self.maturation_tau_days, low=0.0, strict=True)
        _check(where, "maturation_shape", self.maturation_shape, low=0.0, strict=True)
        _check(
            where, "median_graft_survival_years", self.median_graft_survival_years, 0.0, True, True
        )
        _check(where, "abrupt_loss_per_year", self.abrupt_loss_per_year, low=0.0)
        for cv in ("cv_maturation_tau", "cv_attrition_rate", "cv_potency"):
            _check(where, cv, getattr(self, cv), low=0.0)
        for dose_name, dose in self.named_doses.items():
            _check(where, f"named dose {dose_name!r}", dose, low=0.0)

    # -- derived values ----------------------------------------------------------------------

    @property
    def attrition_rate_per_day(self) -> float:
        """Typical ``λ_g = ln 2 / median graft survival`` in 1/day (0 for an infinite median)."""
        return math.log(2.0) / (self.median_graft_survival_years * DAYS_PER_YEAR)

    def abrupt_loss_hazard_per_day(
        self, immunosuppression: str | ImmunosuppressionRegimen
    ) -> float:
        """Abrupt-loss hazard (1/day) under a regimen: product hazard × regimen multiplier."""
        regimen = _resolve_regimen(immunosuppression)
        return self.abrupt_loss_per_year / DAYS_PER_YEAR * regimen.abrupt_loss_multiplier

    def nominal_ieq(self, dose: ArrayLike, body_weight_kg: ArrayLike) -> NDArray[np.float64]:
        """Nominal infused IEQ of ``dose`` (in :attr:`dose_unit`) for the given body weight.

        Cells are converted only through :attr:`cells_per_ieq` (:func:`ieq_from_cells`);
        IEQ/kg is multiplied by body weight (which a dose in cells does not use).
        """
        dose = np.asarray(dose, dtype=float)
        if self.dose_unit == "cells":
            assert self.cells_per_ieq is not None  # checked in __post_init__
            return ieq_from_cells(dose, self.cells_per_ieq)
        return dose * np.asarray(body_weight_kg, dtype=float)

    # -- edits ----------------------------------------------------------------------------

    def with_values(self, **changes: float) -> IsletProduct:
        """A copy with some numeric parameters changed (validated; sources marked user-set).

        Raises
        ------
        ValueError
            For a name that is not a numeric parameter (the message lists them) or an
            invalid value.
        """
        valid = (*_PRODUCT_PARAMETERS, "reference_ieq")
        unknown = [k for k in changes if k not in valid]
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {_quoted(unknown)} of IsletProduct; valid values: "
                f"{_quoted(valid)}"
            )
        sources = dict(self.sources)
        for key, value in changes.items():
            unit = sources[key].unit if key in sources else ""
            sources[key] = SourcedValue(float(value), unit, "set by the caller", False)
        return dataclasses.replace(self, **changes, sources=sources)

    def without_variability(self) -> IsletProduct:
        """A copy with every participant at the typical values.

        CVs 0 and the early loss fixed at its mean; the abrupt-loss day stays random
        (it is an event, not a parameter).
        """
        return self.with_values(
            cv_maturation_tau=0.0,
            cv_attrition_rate=0.0,
            cv_potency=0.0,
            early_loss_concentration=math.inf,
        )

    def parameter_table(self) -> pd.DataFrame:
        """Every sourced value as a table (index: parameter; value, unit, verified, source)."""
        rows = [
            {
                "parameter": k,
                "value": v.value,
                "unit": v.unit,
                "verified": v.verified,
                "source": v.source,
            }
            for k, v in self.sources.items()
        ]
        return pd.DataFrame(
            rows, columns=["parameter", "value", "unit", "verified", "source"]
        ).set_index("parameter")

    def __repr__(self) -> str:
        potency = f"{self.cells_per_ieq:g} cells/IEQ, " if self.cells_per_ieq is not None else ""
        return (
            f"IsletProduct({self.name!r}: dose in {self.dose_unit}, {potency}"
            f"L_early mean {self.early_loss_mean:g} in [{self.early_loss_min:g}, "
            f"{self.early_loss_max:g}], maturation t_lag {self.maturation_lag_days:g} d "
            f"tau_m {self.maturation_tau_days:g} d n {self.maturation_shape:g}, median graft "
            f"survival {self.median_graft_survival_years:g} y, abrupt loss "
            f"{self.abrupt_loss_per_year:g}/y, CV tau_m/lambda_g/potency "
            f"{self.cv_maturation_tau:g}/{self.cv_attrition_rate:g}/{self.cv_potency:g})"
        )


@dataclass(frozen=True, repr=False)
class ImmunosuppressionRegimen:
    """An immunosuppression regimen as it acts on the graft.

    Attributes
    ----------
    name, description : str
    abrupt_loss_multiplier : float
        Multiplies each product's abrupt-loss hazard (1 for the reference ``"standard"``).
    sources : Mapping[str, SourcedValue]
    """

    name: str
    description: str
    abrupt_loss_multiplier: float
    sources: Mapping[str, SourcedValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        _check(
            f"regimen {self.name!r}", "abrupt_loss_multiplier", self.abrupt_loss_multiplier, low=0.0
        )

    def __repr__(self) -> str:
        return (
            f"ImmunosuppressionRegimen({self.name!r}: abrupt-loss hazard x"
            f"{self.abrupt_loss_multiplier:g})"
        )


def _quoted(names: Sequence[str] | Any) -> str:
    return ", ".join(repr(n) for n in names)


def _check(
    where: str, name: str, value: float, low: float, strict: bool = False, inf_ok: bool = False
) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and not math.isnan(value)
    ok = ok and (value > low if strict else value >= low)
    ok = ok and (inf_ok or math.isfinite(value))
    if not ok:
        rel = ">" if strict else ">="
        fin = "" if inf_ok else ", finite"
        raise ValueError(f"{where}: {name} must be {rel} {low:g}{fin}, got {value!r}")


def _graft_file_label(filename: str) -> str:
    return f"{_GRAFT_PACKAGE.replace('.', '/')}/{filename}"


def _read_toml(filename: str) -> dict[str, Any]:
    return read_parameter_document(
        resources.files(_GRAFT_PACKAGE) / filename, label=_graft_file_label(filename)
    )


def sourced_values(
    table: Any, *, file: str, table_path: str, expected: Sequence[str] | None = None
) -> dict[str, SourcedValue]:
    """Entries of one sub-table of a parameter file as :class:`SourcedValue` objects.

    Validated by the shared parameter-file loader (:func:`isletsim.params.toml_file.
    parse_parameter_table`): exactly the fields ``value, unit, source, verified``; errors
    name ``file``, the parameter and the field.
    """
    entries: dict[str, ParameterEntry] = parse_parameter_table(
        table,
        file=file,
        table_path=table_path,
        expected=expected,
        required_keys=_SOURCE_KEYS,
        allowed_keys=_SOURCE_KEYS,
    )
    return {
        k: SourcedValue(float(e.value), str(e.unit), e.source, e.verified)
        for k, e in entries.items()
    }


def _sourced(
    table: Any, filename: str, table_path: str, expected: Sequence[str] | None = None
) -> dict[str, SourcedValue]:
    """:func:`sourced_values` for a file of ``params/graft``."""
    return sourced_values(
        table, file=_graft_file_label(filename), table_path=table_path, expected=expected
    )


@cache
def _reference_values() -> dict[str, SourcedValue]:
    doc = _read_toml(_REFERENCE_FILE)
    check_table_keys(
        doc, file=_graft_file_label(_REFERENCE_FILE), table_path="", required=("parameters",)
    )
    return _sourced(doc["parameters"], _REFERENCE_FILE, "parameters", ("reference_pancreas_ieq",))


@cache
def load_islet_product(name: str) -> IsletProduct:
    """The shipped parameter set of an islet product.

    Parameters
    ----------
    name
        One of :data:`ISLET_PRODUCTS` (``"donor-islets"``, ``"sc-islets"``).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a malformed file.
    """
    if name not in PRODUCT_FILES:
        raise ValueError(f"unknown product {name!r}; valid values: {_quoted(ISLET_PRODUCTS)}")
    filename = PRODUCT_FILES[name]
    label = _graft_file_label(filename)
    data = _read_toml(filename)
    check_table_keys(
        data, file=label, table_path="", required=("product", "parameters"), allowed=("doses",)
    )
    header = check_table_keys(
        data["product"],
        file=label,
        table_path="product",
        required=("name", "dose_unit"),
        allowed=("description",),
    )
    if header["name"] != name:
        raise ParameterFileError(
            label, f"product name {header['name']!r} is not {name!r}", field="name"
        )
    expected = [
        k for k in _PRODUCT_PARAMETERS if k != "cells_per_ieq" or header["dose_unit"] == "cells"
    ]
    params = _sourced(data["parameters"], filename, "parameters", expected)
    doses = _sourced(data.get("doses", {}), filename, "doses")
    reference = _reference_values()
    sources = {**params, "reference_ieq": reference["reference_pancreas_ieq"]}
    sources.update({f"dose:{k}": v for k, v in doses.items()})
    return IsletProduct(
        name=name,
        description=header.get("description", ""),
        dose_unit=header["dose_unit"],
        cells_per_ieq=params["cells_per_ieq"].value if "cells_per_ieq" in params else None,
        reference_ieq=reference["reference_pancreas_ieq"].value,
        **{k: params[k].value for k in _PRODUCT_PARAMETERS if k != "cells_per_ieq"},
        named_doses={k: v.value for k, v in doses.items()},
        sources=sources,
    )


@cache
def load_immunosuppression_regimens() -> Mapping[str, ImmunosuppressionRegimen]:
    """The shipped immunosuppression regimens, by name (``"none"``, ``"standard"``)."""
    regimens = {}
    label = _graft_file_label(_REGIMEN_FILE)
    doc = _read_toml(_REGIMEN_FILE)
    check_table_keys(doc, file=label, table_path="", required=("regimens",))
    for name, entry in doc["regimens"].items():
        path = f"regimens.{name}"
        check_table_keys(
            entry, file=label, table_path=path, required=("parameters",), allowed=("description",)
        )
        params = _sourced(
            entry["parameters"], _REGIMEN_FILE, f"{path}.parameters", ("abrupt_loss_multiplier",)
        )
        regimens[name] = ImmunosuppressionRegimen(
            name=name,
            description=entry.get("description", ""),
            abrupt_loss_multiplier=params["abrupt_loss_multiplier"].value,
            sources=params,
        )
    return MappingProxyType(dict(sorted(regimens.items())))


def _resolve_product(product: IsletProduct | str) -> IsletProduct:
    if isinstance(product, IsletProduct):
        return product
    if isinstance(product, str):
        return load_islet_product(product)
    raise TypeError(f"product must be an IsletProduct or one of {_quoted(ISLET_PRODUCTS)}")


def _resolve_regimen(immunosuppression: ImmunosuppressionRegimen | str) -> ImmunosuppressionRegimen:
    if isinstance(immunosuppression, ImmunosuppressionRegimen):
        return immunosuppression
    regimens = load_immunosuppression_regimens()
    if isinstance(immunosuppression, str) and immunosuppression in regimens:
        return regimens[immunosuppression]
    raise ValueError(
        f"unknown immunosuppression {immunosuppression!r}; valid values: {_quoted(regimens)}"
    )


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def ieq_from_cells(cells: ArrayLike, cells_per_ieq: float) -> NDArray[np.float64]:
    """Islet equivalents of a cell dose through an explicit potency factor.

    Parameters
    ----------
    cells
        Number of cells (scalar or array), >= 0.
    cells_per_ieq
        Cells per IEQ, > 0. Literature: ≈1,000–1,600, 1,560 for a 150-µm islet (isletsim
        science reference §4.3 [U]); the shipped SC-islet set uses the functional potency
        calibrated by ``calibration/calibrate_sc_islets.py``.

    Returns
    -------
    numpy.ndarray
        ``cells / cells_per_ieq`` (0-d for a scalar input).

    Examples
    --------
    >>> float(ieq_from_cells(0.8e9, 1560.0))  # zimislecel full dose, ≈ 5.1e5 IEQ
    512820.5128205128
    """
    cells = np.asarray(cells, dtype=float)
    if not (isinstance(cells_per_ieq, numbers.Real) and 0 < cells_per_ieq < math.inf):
        raise ValueError(f"cells_per_ieq must be > 0 and finite, got {cells_per_ieq!r}")
    if not (np.isfinite(cells).all() and (cells >= 0).all()):
        raise ValueError("cells must be finite and >= 0")
    return cells / cells_per_ieq


def graft_survival_median(
    product: IsletProduct | str,
    immunosuppression: ImmunosuppressionRegimen | str | None = None,
) -> float:
    """Median graft survival (days) of a typical participant, analytic from the parameters.

    Without a regimen this is the half-life of the attrition ``s(t) = exp(-λ_g t)``:
    ``ln 2 / λ_g`` (= the product's ``median_graft_survival_years`` × 365.25, isletsim science
    reference §4.4 [U]). With a regimen, abrupt loss at constant hazard ``h`` (independent of
    attrition) is included: the expected surviving fraction ``exp(-(λ_g + h) t)`` halves at
    ``ln 2 / (λ_g + h)``.

    Parameters
    ----------
    product
        An :class:`IsletProduct` or a name in :data:`ISLET_PRODUCTS`.
    immunosuppression
        ``None`` (attrition only) or a regimen / regimen name.

    Returns
    -------
    float
        Days after infusion (``inf`` when there is neither attrition nor abrupt loss).
    """
    prod = _resolve_product(product)
    rate = prod.attrition_rate_per_day
    if immunosuppression is not None:
        rate += prod.abrupt_loss_hazard_per_day(immunosuppression)
    return math.inf if rate == 0.0 else math.log(2.0) / rate


def participant_streams(
    seed: int | np.random.SeedSequence, n: int, *, start: int = 0
) -> list[np.random.Generator]:
    """Independent random streams of participants ``start`` .. ``start + n - 1``.

    Participant ``i``'s stream is the ``i``-th child of ``SeedSequence(seed)`` (spawn key
    ``(*seed.spawn_key, i)``), identical to ``SeedSequence(seed).spawn(...)[i]`` on a fresh
    sequence, so it depends only on ``seed`` and ``i``: never on ``n``, on batching, or on
    earlier calls (architecture: per-participant streams from one ``SeedSequence``).

    Parameters
    ----------
    seed
        Root entropy (int >= 0) or a :class:`numpy.random.SeedSequence` (e.g. the child the
        engine reserves for the graft; pass another one for a second infusion).
    n
        Number of participants (>= 0).
    start
        Index of the first participant (>= 0), for batches.
    """
    if not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if not isinstance(start, int | np.integer) or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start!r}")
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    entropy = root.entropy
    if not isinstance(entropy, int | np.integer):  # a sequence of ints
        entropy = [int(v) for v in entropy]
    else:
        entropy = int(entropy)
    # built together, bit-identical to default_rng(SeedSequence(...)) (isletsim.seeding)
    return generators(
        [assembled_entropy(entropy, (*root.spawn_key, i), root.pool_size)
         for i in range(int(start), int(start) + int(n))],
        root.pool_size,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Courses
# --------------------------------------------------------------------------------------------


def _day_array(day: float | ArrayLike) -> NDArray[np.float64]:
    d = np.asarray(day, dtype=float)
    if d.ndim > 1:
        raise ValueError(f"day must be a scalar or a 1-D array, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("day must be finite")
    return d


class _Course(ABC):
    """What every graft course offers: φ(day) for N participants, sums, threshold times."""

    @property
    @abstractmethod
    def n_participants(self) -> int:
        """Number of participants N."""

    @abstractmethod
    def _phi_matrix(self, day: NDArray[np.float64], rows: NDArray[np.intp] | None) -> NDArray:
        """φ for participants ``rows`` (all if None) at ``day`` of shape (len(rows) or 1, K)."""

    def __len__(self) -> int:
        return self.n_participants

    def phi(self, day: float | ArrayLike) -> NDArray[np.float64]:
        """Functional graft fraction φ (functional IEQ / IEQ_ref) on trial day(s) ``day``.

        Parameters
        ----------
        day
            Trial day (scalar) or days (1-D array); finite; may be fractional.

        Returns
        -------
        numpy.ndarray
            Shape (N,) for a scalar day, (N, D) for D days. Deterministic given the draws.
        """
        d = _day_array(day)
        out = self._phi_matrix(np.atleast_1d(d)[None, :], None)
        return out[:, 0] if d.ndim == 0 else out

    def _phi_of_day(self) -> Callable[[float], NDArray[np.float64]] | None:
        """A compiled ``phi`` for one finite scalar day, bit-identical to :meth:`phi`, for
        evaluating at every control step of a simulation (no checks of ``day``); None when
        this course has none (then use :meth:`phi`)."""
        return None

    def time_to_phi(
        self, threshold: float, *, horizon_days: float = 3650.0, resolution_days: float = 1.0
    ) -> NDArray[np.float64]:
        """First trial day on which φ reaches ``threshold``, per participant.

        φ is scanned on a grid of ``resolution_days`` from day 0 to ``horizon_days`` (in
        blocks of days, vectorised over participants); the first crossing is then refined by
        bisection to ~1e-9 day. A crossing that starts and ends between two grid days is
        missed (φ moves on a scale of days to years).

        Parameters
        ----------
        threshold
            φ threshold, > 0.
        horizon_days, resolution_days
            Scan window end and grid step, days (> 0).

        Returns
        -------
        numpy.ndarray
            Shape (N,); ``nan`` where φ never reaches the threshold by the horizon.
        """
        _check("time_to_phi", "threshold", threshold, low=0.0, strict=True)
        _check("time_to_phi", "horizon_days", horizon_days, low=0.0, strict=True)
        _check("time_to_phi", "resolution_days", resolution_days, low=0.0, strict=True)
        n = self.n_participants
        grid = np.arange(0.0, horizon_days + 0.5 * resolution_days, resolution_days)
        first = np.full(n, -1, dtype=np.intp)
        todo = np.arange(n, dtype=np.intp)
        block = max(8, (1 << 20) // max(n, 1))
        for start in range(0, grid.size, block):
            if todo.size == 0:
                break
            reached = self._phi_matrix(grid[None, start : start + block], todo) >= threshold
            hit = reached.any(axis=1)
            first[todo[hit]] = start + reached[hit].argmax(axis=1)
            todo = todo[~hit]
        out = np.full(n, np.nan)
        found = np.flatnonzero(first >= 0)
        at_start = found[first[found] == 0]
        out[at_start] = grid[0]
        rows = found[first[found] > 0]
        lo, hi = grid[first[rows] - 1], grid[first[rows]]
        for _ in range(int(np.ceil(np.log2(resolution_days / 1e-9))) + 1):
            mid = 0.5 * (lo + hi)
            up = self._phi_matrix(mid[:, None], rows)[:, 0] >= threshold
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        out[rows] = hi
        return out

    def __add__(self, other: _Course) -> GraftCourseSum:
        if not isinstance(other, _Course):
            return NotImplemented
        if other.n_participants != self.n_participants:
            raise ValueError(
                f"cannot add courses of {self.n_participants} and {other.n_participants} "
                "participants"
            )
        parts = (*_components(self), *_components(other))
        return GraftCourseSum(parts)

    def __radd__(self, other: object) -> _Course:
        if isinstance(other, int) and other == 0:  # lets sum([course1, course2]) work
            return self
        return NotImplemented


def _components(course: _Course) -> tuple[GraftCourse, ...]:
    if isinstance(course, GraftCourseSum):
        return course.courses
    assert isinstance(course, GraftCourse)
    return (course,)


_COURSE_ARRAYS = (
    "infusion_day",
    "dose",
    "dose_ieq",
    "early_loss",
    "potency",
    "maturation_tau_days",
    "attrition_rate_per_day",
    "loss_day",
)


@dataclass(frozen=True, repr=False, eq=False)
class GraftCourse(_Course):
    """One infusion's graft course for N participants (struct of arrays, read-only).

    Build it with :func:`sample_graft`. ``φ_i(t) = φ_max,i · m_i(t - t_inf) · s_i(t - t_inf)``
    for ``t < loss_day``, 0 from ``loss_day`` on (module docstring for the model and sources).

    Attributes
    ----------
    product, immunosuppression, dose_unit : str
    dose : numpy.ndarray
        Infused dose, in ``dose_unit``, (N,).
    infusion_day : numpy.ndarray
        Trial day of the infusion, (N,).
    dose_ieq : numpy.ndarray
        Nominal infused IEQ, (N,).
    early_loss : numpy.ndarray
        Early loss fraction L, (N,).
    potency : numpy.ndarray
        Relative potency ρ (functional IEQ per nominal IEQ), (N,).
    maturation_tau_days, attrition_rate_per_day : numpy.ndarray
        Per-participant τ_m (days) and λ_g (1/day), (N,).
    loss_day : numpy.ndarray
        Trial day of abrupt loss (``inf`` if none), (N,).
    reference_ieq, maturation_lag_days, maturation_shape : float
        IEQ of a normal pancreas; t_lag (days) and shape n (common to all participants).
    abrupt_loss_hazard_per_day : float
        Hazard the loss days were drawn from.
    """

    product: str
    immunosuppression: str
    dose_unit: str
    infusion_day: NDArray[np.float64]
    dose: NDArray[np.float64]
    dose_ieq: NDArray[np.float64]
    early_loss: NDArray[np.float64]
    potency: NDArray[np.float64]
    maturation_tau_days: NDArray[np.float64]
    attrition_rate_per_day: NDArray[np.float64]
    loss_day: NDArray[np.float64]
    reference_ieq: float
    maturation_lag_days: float
    maturation_shape: float
    abrupt_loss_hazard_per_day: float

    def __post_init__(self) -> None:
        n = np.shape(self.infusion_day)
        if len(n) != 1:
            raise ValueError(f"infusion_day must be 1-D, got shape {n}")
        for name in _COURSE_ARRAYS:
            arr = np.array(getattr(self, name), dtype=float)  # own copy
            if arr.shape != n:
                raise ValueError(f"{name} must have shape {n}, got {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        _check("GraftCourse", "reference_ieq", self.reference_ieq, low=0.0, strict=True)
        _check("GraftCourse", "maturation_shape", self.maturation_shape, low=0.0, strict=True)
        if not (self.maturation_tau_days > 0).all():
            raise ValueError("maturation_tau_days must be > 0")

    @property
    def n_participants(self) -> int:
        """Number of participants N."""
        return int(self.infusion_day.shape[0])

    @property
    def functional_ieq(self) -> NDArray[np.float64]:
        """Engrafted functional IEQ ``dose_ieq · (1 - L) · ρ`` (before maturation), (N,)."""
        return self.dose_ieq * (1.0 - self.early_loss) * self.potency

    @property
    def phi_max(self) -> NDArray[np.float64]:
        """Plateau φ before attrition, ``functional_ieq / reference_ieq``, (N,)."""
        return self.functional_ieq / self.reference_ieq

    def _phi_matrix(self, day: NDArray[np.float64], rows: NDArray[np.intp] | None) -> NDArray:
        sel: Any = slice(None) if rows is None else rows
        t = day - self.infusion_day[sel, None]  # days since infusion, (R, K)
        x = np.maximum(t - self.maturation_lag_days, 0.0)
        x /= self.maturation_tau_days[sel, None]
        np.power(x, self.maturation_shape, out=x)
        m = -np.expm1(-x, out=x)  # maturation m(t), 0 up to t_lag
        np.maximum(t, 0.0, out=t)
        t *= -self.attrition_rate_per_day[sel, None]
        m *= np.exp(t, out=t)  # × attrition s(t)
        m *= self.phi_max[sel, None]
        m[day >= self.loss_day[sel, None]] = 0.0  # abrupt loss: 0 from that day on
        return m

    def _phi_of_day(self) -> Callable[[float], NDArray[np.float64]] | None:
        if type(self) is not GraftCourse:  # a subclass may compute phi otherwise
            return None
        columns = np.ascontiguousarray(np.stack([
            self.infusion_day, self.maturation_tau_days, self.attrition_rate_per_day,
            self.phi_max, self.loss_day,
        ]))  # fmt: skip
        lag, shape = float(self.maturation_lag_days), float(self.maturation_shape)

        def phi_of_day(day: float) -> NDArray[np.float64]:
            out = np.empty(columns.shape[1])
            _phi_kernel(float(day), columns, lag, shape, out)
            return out

        return phi_of_day

    def to_frame(self) -> pd.DataFrame:
        """Per-participant draws and derived values, one row per participant."""
        cols = {name: getattr(self, name) for name in _COURSE_ARRAYS}
        cols["functional_ieq"] = self.functional_ieq
        cols["phi_max"] = self.phi_max
        return pd.DataFrame(cols, index=pd.RangeIndex(self.n_participants, name="participant"))

    def __repr__(self) -> str:
        head = (
            f"GraftCourse(product={self.product!r}, immunosuppression={self.immunosuppression!r}, "
            f"n={self.n_participants}"
        )
        if self.n_participants == 0:
            return head + ")"
        with np.errstate(divide="ignore"):
            half_life_y = np.log(2.0) / self.attrition_rate_per_day / DAYS_PER_YEAR
        lost_1y = int(np.sum(self.loss_day - self.infusion_day < DAYS_PER_YEAR))
        return (
            f"{head}, dose {_spread(self.dose)} {self.dose_unit}, "
            f"phi_max {_spread(self.phi_max)}, t_lag {self.maturation_lag_days:g} d, "
            f"tau_m {_spread(self.maturation_tau_days)} d, "
            f"attrition half-life {_spread(half_life_y)} y, "
            f"abrupt loss within 1 y: {lost_1y}/{self.n_participants})"
        )


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _phi_kernel(day, columns, lag, shape, out):
    """:meth:`GraftCourse._phi_matrix` at one day, the same operations in the same order.

    ``columns`` rows: infusion day, maturation tau, attrition rate, phi_max, loss day. The
    power repeats numpy's shortcuts for a scalar exponent (2 squares, 0.5 is a square root,
    -1 a reciprocal), and the maxima with 0 return 0 on a tie as ``np.maximum`` does.
    """
    for i in range(out.shape[0]):
        t = day - columns[0, i]
        x = t - lag
        if not (x > 0.0 or x != x):
            x = 0.0
        x = x / columns[1, i]
        if shape == 2.0:
            x = x * x
        elif shape == 0.5:
            x = np.sqrt(x)
        elif shape == -1.0:
            x = 1.0 / x
        else:
            x = x**shape
        m = -np.expm1(-x)
        if not (t > 0.0 or t != t):
            t = 0.0
        t = t * -columns[2, i]
        m = m * np.exp(t)
        m = m * columns[3, i]
        if day >= columns[4, i]:
            m = 0.0
        out[i] = m


def _spread(x: NDArray[np.float64]) -> str:
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    if q1 == q3:
        return f"{med:.3g}"
    return f"{med:.3g} (IQR {q1:.3g}-{q3:.3g})"


@dataclass(frozen=True, repr=False, eq=False)
class GraftCourseSum(_Course):
    """Several infusions in the same N participants: φ is the sum of the courses' φ.

    Made by adding courses (``first + second``); each course keeps its own draws, so early
    loss and abrupt loss of a later infusion are independent of the earlier ones [U].

    Attributes
    ----------
    courses : tuple of GraftCourse
    """

    courses: tuple[GraftCourse, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "courses", tuple(self.courses))
        if not self.courses or not all(isinstance(c, GraftCourse) for c in self.courses):
            raise ValueError("courses must be a non-empty sequence of GraftCourse")
        if len({c.n_participants for c in self.courses}) != 1:
            raise ValueError("all courses must have the same number of participants")

    @property
    def n_participants(self) -> int:
        """Number of participants N."""
        return self.courses[0].n_participants

    def _phi_matrix(self, day: NDArray[np.float64], rows: NDArray[np.intp] | None) -> NDArray:
        total = self.courses[0]._phi_matrix(day, rows)
        for course in self.courses[1:]:
            total += course._phi_matrix(day, rows)
        return total

    def _phi_of_day(self) -> Callable[[float], NDArray[np.float64]] | None:
        if type(self) is not GraftCourseSum:
            return None
        parts = [c._phi_of_day() for c in self.courses]
        if any(f is None for f in parts):
            return None
        first, rest = parts[0], parts[1:]

        def phi_of_day(day: float) -> NDArray[np.float64]:
            total = first(day)  # type: ignore[misc]
            for f in rest:
                total += f(day)  # type: ignore[misc]
            return total

        return phi_of_day

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(c) for c in self.courses)
        return f"GraftCourseSum(n={self.n_participants}, {len(self.courses)} infusions:\n  {inner})"


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _per_participant(name: str, value: ArrayLike, n: int) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    elif arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def _lognormal_factor(cv: float, z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``exp(σ z)`` with ``σ² = ln(1 + CV²)``: lognormal with median 1 and the given CV."""
    return np.exp(math.sqrt(math.log1p(cv * cv)) * z)


def _early_loss(product: IsletProduct, u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse CDF of the four-parameter Beta of L on [min, max] with the product's mean."""
    lo, mean, hi = product.early_loss_min, product.early_loss_mean, product.early_loss_max
    kappa = product.early_loss_concentration
    if lo == hi or math.isinf(kappa):
        return np.full(u.shape, mean)
    p = (mean - lo) / (hi - lo)
    return lo + (hi - lo) * betaincinv(kappa * p, kappa * (1.0 - p), u)


def sample_graft(
    product: IsletProduct | str,
    dose: ArrayLike | str,
    body_weight_kg: ArrayLike,
    immunosuppression: ImmunosuppressionRegimen | str,
    rng_streams: Sequence[np.random.Generator],
    *,
    infusion_day: ArrayLike = 0.0,
) -> GraftCourse:
    """Draw one infusion's graft course for N participants.

    Participant ``i`` takes exactly :data:`N_UNIFORMS_PER_COURSE` uniforms from
    ``rng_streams[i]`` (early loss, τ_m, λ_g, potency, abrupt loss, in that order) and
    nothing else, so its course depends only on its own stream and its own inputs.

    Parameters
    ----------
    product
        An :class:`IsletProduct` or one of :data:`ISLET_PRODUCTS`.
    dose
        Dose in the product's ``dose_unit`` (cells for SC-islets, IEQ/kg for donor islets):
        a scalar, an (N,) array (0 for no infusion), or a named dose of the product
        (e.g. ``"full"``, ``"half"``). Must be >= 0.
    body_weight_kg
        Body weight, kg, scalar or (N,); > 0 (used to convert IEQ/kg).
    immunosuppression
        A regimen or one of the names of :func:`load_immunosuppression_regimens`
        (``"none"``, ``"standard"``).
    rng_streams
        One :class:`numpy.random.Generator` per participant (N = its length), e.g. from
        :func:`participant_streams`. They are advanced by this call.
    infusion_day
        Trial day of this infusion, scalar or (N,), >= 0 (e.g. a second half dose later).

    Returns
    -------
    GraftCourse

    Raises
    ------
    ValueError
        Naming the argument: unknown product, regimen or named dose (with the valid
        values), negative or non-finite dose, non-positive body weight, negative infusion
        day, or a shape that is not scalar / (N,).
    """
    prod = _resolve_product(product)
    regimen = _resolve_regimen(immunosuppression)
    streams = list(rng_streams)
    if not all(isinstance(g, np.random.Generator) for g in streams):
        raise TypeError("rng_streams must be a sequence of numpy.random.Generator")
    n = len(streams)

    if isinstance(dose, str):
        if dose not in prod.named_doses:
            raise ValueError(
                f"unknown dose {dose!r} for product {prod.name!r}; valid values: a number in "
                f"{prod.dose_unit} or one of {_quoted(prod.named_doses) or '(none)'}"
            )
        dose = prod.named_doses[dose]
    dose_arr = _per_participant("dose", dose, n)
    if (dose_arr < 0).any():
        raise ValueError(f"dose must be >= 0 ({prod.dose_unit}), got min {dose_arr.min():g}")
    weight = _per_participant("body_weight_kg", body_weight_kg, n)
    if (weight <= 0).any():
        raise ValueError(f"body_weight_kg must be > 0, got min {weight.min():g}")
    day0 = _per_participant("infusion_day", infusion_day, n)
    if (day0 < 0).any():
        raise ValueError(f"infusion_day must be >= 0, got min {day0.min():g}")

    # One call per participant stream (setup, not a hot path); everything after is vectorised.
    u = np.array([g.random(N_UNIFORMS_PER_COURSE) for g in streams], dtype=float)
    u = u.reshape(n, N_UNIFORMS_PER_COURSE)
    z = ndtri(np.clip(u[:, [_U_TAU, _U_LAMBDA, _U_POTENCY]], 2.0**-54, 1.0 - 2.0**-54))
    exp1 = -np.log1p(-u[:, _U_ABRUPT])  # Exp(1) by inversion; u < 1 so finite
    hazard = prod.abrupt_loss_hazard_per_day(regimen)
    delay = exp1 / hazard if hazard > 0 else np.full(n, np.inf)

    return GraftCourse(
        product=prod.name,
        immunosuppression=regimen.name,
        dose_unit=prod.dose_unit,
        infusion_day=day0,
        dose=dose_arr,
        dose_ieq=prod.nominal_ieq(dose_arr, weight),
        early_loss=_early_loss(prod, u[:, _U_EARLY_LOSS]),
        potency=_lognormal_factor(prod.cv_potency, z[:, 2]),
        maturation_tau_days=prod.maturation_tau_days
        * _lognormal_factor(prod.cv_maturation_tau, z[:, 0]),
        attrition_rate_per_day=prod.attrition_rate_per_day
        * _lognormal_factor(prod.cv_attrition_rate, z[:, 1]),
        loss_day=day0 + delay,
        reference_ieq=prod.reference_ieq,
        maturation_lag_days=prod.maturation_lag_days,
        maturation_shape=prod.maturation_shape,
        abrupt_loss_hazard_per_day=hazard,
    )


__all__ = [
    "DAYS_PER_YEAR",
    "DOSE_UNITS",
    "ISLET_PRODUCTS",
    "N_UNIFORMS_PER_COURSE",
    "PRODUCT_FILES",
    "GraftCourse",
    "GraftCourseSum",
    "ImmunosuppressionRegimen",
    "IsletProduct",
    "SourcedValue",
    "graft_survival_median",
    "ieq_from_cells",
    "load_immunosuppression_regimens",
    "load_islet_product",
    "participant_streams",
    "sample_graft",
]
