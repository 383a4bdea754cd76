"""Immunosuppression regimens and their safety: adverse events, kidney function, mortality.

A :class:`SafetyRegimen` names its induction and maintenance agents and builds on the graft
regimens of :mod:`isletsim.therapy.graft` (``"none"``, ``"standard"``): its
:attr:`SafetyRegimen.graft_regimen` is the graft module's
:class:`~isletsim.therapy.graft.ImmunosuppressionRegimen` that sets the abrupt graft-loss
hazard (pass it to :func:`~isletsim.therapy.graft.sample_graft`), so one regimen object drives
both the graft and the safety model. Shipped regimens: ``"none"``, ``"edmonton"``, ``"cit-07"``,
``"zimislecel-like"`` (agents unverified).

Model (isletsim science reference §4.1, §4.5, §8.5; sources per value in the data files)
-----------------------------------------------------------------------------------------
For a participant who starts immunosuppression on trial day ``t0`` and is followed for ``T``
days (events on ``t0 <= day < t0 + T``):

* **Drug adverse events** (neutropenia, infections, opportunistic infections, mouth ulcers,
  diarrhoea, anaemia, ovarian cysts in women): independent Poisson processes with a
  piecewise-constant hazard, ``rate_early`` for the first ``early_window_days`` (6 months)
  after ``t0`` and ``rate_late`` after, both × the regimen's ``ae_hazard_multiplier``
  (0 for ``"none"``). Counts are Poisson in each window and times uniform within it (exact
  for a piecewise-constant hazard). Each event gets a CTCAE-style grade 1-5 from the term's
  grade distribution, is serious from the term's ``serious_from_grade`` (grade 5 always),
  has the term's relatedness and an outcome: ``fatal`` (grade 5), ``recovered with
  sequelae`` (probability ``p_sequelae``) or ``recovered``.
* **Procedure complications** (bleeding, partial portal-vein thrombosis; §4.1, Ryan 2005 and
  Hering 2016 [V]): one Bernoulli draw per term per infusion, on the infusion day, related to
  the procedure, whatever the regimen.
* **Kidney function**: ``eGFR_i(t) = max(0, b_i + s_i (t - t0) / 365.25)`` with the
  regimen's slope ``s_i ~ Uniform(min, max)`` (−3 to −1 mL/min/1.73 m²/y on tacrolimus,
  placeholder [U], §4.5; 0 without immunosuppression). Crossing 60 / 30 / 15 logs
  ``chronic_kidney_disease`` of grade 2 / 3 / 4 (CTCAE v5 thresholds [U]), outcome
  ``not recovered``, related to immunosuppression.
* **Background mortality**: Gompertz hazard ``μ(a) = A e^{B a}`` per year of age ``a``
  (parameters [U]); the death day is drawn by inversion of the cumulative hazard and logged
  as ``death`` (grade 5, serious, unrelated, fatal).
* A participant's follow-up ends at the first grade-5 event: later events are dropped and
  the eGFR trajectory is ``nan`` after it.

Randomness
----------
Participant ``i`` draws only from ``rng_streams[i]``, always in this order: one block of
``2 + 2·K·P`` uniforms (eGFR slope, background death, then two for each of the ``P``
procedure complications of each of the ``K`` infusion slots), one Poisson draw per
(term, window), then three uniforms per drug event (time, grade, outcome). So a
participant's course depends only on its own stream and inputs (never on batching), and
background deaths, procedure complications and eGFR slopes are common random numbers
across regimens with the same infusion slots. Only this setup loop visits participants one
by one (a few generator calls each); there is no per-day loop, and everything else is
vectorised (about 1 s for 10,000 participants × 5 years).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from isletsim.params.toml_file import (
    ParameterFileError,
    check_table_keys,
    parse_parameter_table,
    read_parameter_document,
)
from isletsim.therapy.graft import (
    DAYS_PER_YEAR,
    ImmunosuppressionRegimen,
    SourcedValue,
    load_immunosuppression_regimens,
    sourced_values,
)

_PACKAGE = "isletsim.params.immunosuppression"

#: Relatedness categories of the event log.
RELATEDNESS: tuple[str, ...] = ("cells", "immunosuppression", "procedure", "unrelated")
#: Outcome categories of the event log.
OUTCOMES: tuple[str, ...] = ("recovered", "recovered with sequelae", "not recovered", "fatal")
#: Columns of the event log, in order.
EVENT_COLUMNS: tuple[str, ...] = (
    "participant",
    "day",
    "term",
    "grade",
    "serious",
    "related",
    "outcome",
)
#: Populations a drug adverse-event term may apply to.
POPULATIONS: tuple[str, ...] = ("all", "female")
#: Term of background deaths and of kidney-function events in the log.
DEATH_TERM = "death"
CKD_TERM = "chronic_kidney_disease"

_GRADES = tuple(f"grade_{g}" for g in range(1, 6))
_TERM_PARAMETERS = (
    "rate_early_per_year",
    "rate_late_per_year",
    "early_window_days",
    *_GRADES,
    "serious_from_grade",
    "p_sequelae",
)
_COMPLICATION_PARAMETERS = (
    "probability_per_infusion",
    *_GRADES,
    "serious_from_grade",
    "p_sequelae",
)
_REGIMEN_PARAMETERS = ("ae_hazard_multiplier", "egfr_slope_min_per_year", "egfr_slope_max_per_year")
_MORTALITY_PARAMETERS = ("gompertz_a_per_year", "gompertz_b_per_year")
_KIDNEY_PARAMETERS = (
    "baseline_egfr",
    "ckd_grade_2_below",
    "ckd_grade_3_below",
    "ckd_grade_4_below",
)


# --------------------------------------------------------------------------------------------
# Named objects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """One immunosuppressive agent of a regimen.

    Attributes
    ----------
    key : str
        Identifier in the regimen file (e.g. ``"rabbit_atg"``).
    name : str
        Agent name (e.g. ``"rabbit anti-thymocyte globulin"``).
    kind : str
        What it is (e.g. ``"calcineurin inhibitor"``).
    phase : {"induction", "maintenance"}
    source : str
    verified : bool
        False where the science reference tags the agent [U] (e.g. zimislecel's agents).
    """

    key: str
    name: str
    kind: str
    phase: str
    source: str
    verified: bool


@dataclass(frozen=True, repr=False)
class SafetyRegimen:
    """An immunosuppression regimen: agents, graft effect and safety parameters.

    Load shipped regimens with :func:`load_safety_regimens` / :func:`get_safety_regimen`.

    Attributes
    ----------
    name, description : str
    graft_regimen : ImmunosuppressionRegimen
        The graft regimen (:func:`isletsim.therapy.graft.load_immunosuppression_regimens`)
        giving the abrupt graft-loss hazard multiplier; pass it to
        :func:`isletsim.therapy.graft.sample_graft`.
    glucocorticoid_free : bool
    induction, maintenance : tuple of Agent
    ae_hazard_multiplier : float
        Multiplies every drug adverse-event rate (1 = reference, 0 = no drug events).
    egfr_slope_min_per_year, egfr_slope_max_per_year : float
        Bounds of the uniform per-participant eGFR slope, mL/min/1.73 m² per year.
    sources : Mapping[str, SourcedValue]
    """

    name: str
    description: str
    graft_regimen: ImmunosuppressionRegimen
    glucocorticoid_free: bool
    induction: tuple[Agent, ...]
    maintenance: tuple[Agent, ...]
    ae_hazard_multiplier: float
    egfr_slope_min_per_year: float
    egfr_slope_max_per_year: float
    sources: Mapping[str, SourcedValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        where = f"regimen {self.name!r}"
        if not (math.isfinite(self.ae_hazard_multiplier) and self.ae_hazard_multiplier >= 0):
            raise ValueError(f"{where}: ae_hazard_multiplier must be >= 0 and finite")
        lo, hi = self.egfr_slope_min_per_year, self.egfr_slope_max_per_year
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(
                f"{where}: need finite egfr_slope_min_per_year <= egfr_slope_max_per_year, "
                f"got {lo}, {hi}"
            )

    @property
    def agents(self) -> tuple[Agent, ...]:
        """Induction then maintenance agents."""
        return (*self.induction, *self.maintenance)

    @property
    def agents_verified(self) -> bool:
        """Whether every named agent is verified against its source."""
        return all(a.verified for a in self.agents)

    def __repr__(self) -> str:
        ind = " + ".join(a.name for a in self.induction) or "none"
        mnt = " + ".join(a.name for a in self.maintenance) or "none"
        tag = "" if self.agents_verified else ", agents unverified"
        return (
            f"SafetyRegimen({self.name!r}: induction {ind}; maintenance {mnt}; graft regimen "
            f"{self.graft_regimen.name!r}; AE hazard x{self.ae_hazard_multiplier:g}; eGFR slope "
            f"{self.egfr_slope_min_per_year:g} to {self.egfr_slope_max_per_year:g}/y{tag})"
        )


@dataclass(frozen=True, repr=False)
class EventTerm:
    """An adverse-event term: when it occurs, how it is graded, related and resolved.

    Attributes
    ----------
    key, ctcae_term, description : str
    related : str
        One of :data:`RELATEDNESS`.
    population : str
        ``"all"`` or ``"female"`` (drug terms only).
    grade_probabilities : numpy.ndarray
        P(grade = 1..5), sums to 1.
    serious_from_grade : int
        Events of this grade or higher are serious (grade 5 always).
    p_sequelae : float
        Probability that a non-fatal event leaves sequelae.
    rate_early_per_year, rate_late_per_year, early_window_days : float
        Piecewise-constant hazard of drug terms under the reference regimen (``nan`` for
        procedure complications).
    probability_per_infusion : float
        Procedure complications only (``nan`` for drug terms).
    sources : Mapping[str, SourcedValue]
    """

    key: str
    ctcae_term: str
    description: str
    related: str
    population: str
    grade_probabilities: NDArray[np.float64]
    serious_from_grade: int
    p_sequelae: float
    rate_early_per_year: float = math.nan
    rate_late_per_year: float = math.nan
    early_window_days: float = math.nan
    probability_per_infusion: float = math.nan
    sources: Mapping[str, SourcedValue] = field(default_factory=dict)

    def __repr__(self) -> str:
        if math.isnan(self.probability_per_infusion):
            when = (
                f"{self.rate_early_per_year:g}/y for {self.early_window_days:g} d, then "
                f"{self.rate_late_per_year:g}/y"
            )
        else:
            when = f"p = {self.probability_per_infusion:g} per infusion"
        return f"EventTerm({self.key!r}: {when}, related to {self.related})"


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _label(filename: str) -> str:
    return f"{_PACKAGE.replace('.', '/')}/{filename}"


def _read(filename: str) -> dict[str, Any]:
    return read_parameter_document(resources.files(_PACKAGE) / filename, label=_label(filename))


def _sourced(
    table: Any, filename: str, path: str, expected: Sequence[str]
) -> dict[str, SourcedValue]:
    """:func:`isletsim.therapy.graft.sourced_values` for a file of ``params/immunosuppression``."""
    return sourced_values(table, file=_label(filename), table_path=path, expected=expected)


def _probability(file: str, param: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ParameterFileError(file, f"must be in [0, 1], got {value}", parameter=param)
    return value


def _term_common(
    key: str, params: Mapping[str, SourcedValue], file: str, path: str
) -> dict[str, Any]:
    grades = np.array([_probability(file, f"{path}.{g}", params[g].value) for g in _GRADES])
    if abs(grades.sum() - 1.0) > 1e-9:
        raise ParameterFileError(
            file, f"grade_1..grade_5 must sum to 1, got {grades.sum():.6g}", parameter=path
        )
    serious = params["serious_from_grade"].value
    if serious not in (1, 2, 3, 4, 5):
        raise ParameterFileError(
            file, f"must be an integer grade 1-5, got {serious}", parameter=f"{path}.serious"
        )
    grades.setflags(write=False)
    return {
        "grade_probabilities": grades,
        "serious_from_grade": int(serious),
        "p_sequelae": _probability(file, f"{path}.p_sequelae", params["p_sequelae"].value),
    }


def _header(table: Any, file: str, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    head = (
        {k: v for k, v in table.items() if k != "parameters"}
        if isinstance(table, Mapping)
        else table
    )
    check_table_keys(head, file=file, table_path=path, required=allowed)
    for key, value in head.items():
        if not isinstance(value, str):
            raise ParameterFileError(file, f"must be a string, got {value!r}", field=key)
    return head


@cache
def load_event_terms() -> Mapping[str, EventTerm]:
    """Drug adverse-event terms (``adverse_events.toml``) and procedure complications
    (``procedure.toml``), by key, in file order (drug terms first).

    Raises
    ------
    ParameterFileError
        Naming the file, the parameter and the field, for a malformed file.
    """
    terms: dict[str, EventTerm] = {}
    for filename, group, expected in (
        ("adverse_events.toml", "terms", _TERM_PARAMETERS),
        ("procedure.toml", "complications", _COMPLICATION_PARAMETERS),
    ):
        file = _label(filename)
        doc = _read(filename)
        check_table_keys(doc, file=file, table_path="", required=(group,))
        for key, table in doc[group].items():
            path = f"{group}.{key}"
            if not isinstance(table, Mapping) or "parameters" not in table:
                raise ParameterFileError(file, f"[{path}] lacks [{path}.parameters]")
            header_keys = ["ctcae_term", "description", "related"]
            if group == "terms":
                header_keys.append("population")
            head = _header(table, file, path, header_keys)
            if head["related"] not in RELATEDNESS:
                raise ParameterFileError(
                    file,
                    f"must be one of {RELATEDNESS}, got {head['related']!r}",
                    parameter=path,
                    field="related",
                )
            population = head.get("population", "all")
            if population not in POPULATIONS:
                raise ParameterFileError(
                    file,
                    f"must be one of {POPULATIONS}, got {population!r}",
                    parameter=path,
                    field="population",
                )
            params = _sourced(table["parameters"], filename, f"{path}.parameters", expected)
            extra: dict[str, float] = {}
            if group == "terms":
                for name in ("rate_early_per_year", "rate_late_per_year"):
                    if params[name].value < 0:
                        raise ParameterFileError(file, "must be >= 0", parameter=f"{path}.{name}")
                    extra[name] = params[name].value
                if params["early_window_days"].value < 0:
                    raise ParameterFileError(
                        file, "must be >= 0", parameter=f"{path}.early_window_days"
                    )
                extra["early_window_days"] = params["early_window_days"].value
            else:
                extra["probability_per_infusion"] = _probability(
                    file,
                    f"{path}.probability_per_infusion",
                    params["probability_per_infusion"].value,
                )
            if key in terms or key in (DEATH_TERM, CKD_TERM):
                raise ParameterFileError(file, "duplicate or reserved term key", parameter=path)
            terms[key] = EventTerm(
                key=key,
                ctcae_term=head["ctcae_term"],
                description=head["description"],
                related=head["related"],
                population=population,
                sources=params,
                **_term_common(key, params, file, path),
                **extra,
            )
    return MappingProxyType(terms)


def _agents(table: Any, filename: str, path: str, phase: str) -> tuple[Agent, ...]:
    entries = parse_parameter_table(
        table,
        file=_label(filename),
        table_path=path,
        required_keys=("value", "description", "source", "verified"),
        allowed_keys=("value", "description", "source", "verified"),
        text_values=tuple(table) if isinstance(table, Mapping) else (),
    )
    return tuple(
        Agent(k, str(e.value), str(e.description), phase, e.source, e.verified)
        for k, e in entries.items()
    )


@cache
def load_safety_regimens() -> Mapping[str, SafetyRegimen]:
    """The shipped regimens (``regimens.toml``), by name, sorted.

    Raises
    ------
    ParameterFileError
        For a malformed file, or a ``graft_regimen`` that is not a graft regimen.
    """
    filename = "regimens.toml"
    file = _label(filename)
    doc = _read(filename)
    check_table_keys(doc, file=file, table_path="", required=("regimens",))
    graft_regimens = load_immunosuppression_regimens()
    out: dict[str, SafetyRegimen] = {}
    for name, table in doc["regimens"].items():
        path = f"regimens.{name}"
        check_table_keys(
            table,
            file=file,
            table_path=path,
            required=("description", "graft_regimen", "glucocorticoid_free", "parameters"),
            allowed=("induction", "maintenance"),
        )
        if table["graft_regimen"] not in graft_regimens:
            raise ParameterFileError(
                file,
                f"unknown graft regimen {table['graft_regimen']!r}; valid values: "
                f"{', '.join(map(repr, graft_regimens))}",
                parameter=path,
                field="graft_regimen",
            )
        if not isinstance(table["glucocorticoid_free"], bool):
            raise ParameterFileError(
                file, "must be true or false", parameter=path, field="glucocorticoid_free"
            )
        params = _sourced(table["parameters"], filename, f"{path}.parameters", _REGIMEN_PARAMETERS)
        out[name] = SafetyRegimen(
            name=name,
            description=str(table["description"]),
            graft_regimen=graft_regimens[table["graft_regimen"]],
            glucocorticoid_free=table["glucocorticoid_free"],
            induction=_agents(
                table.get("induction", {}), filename, f"{path}.induction", "induction"
            ),
            maintenance=_agents(
                table.get("maintenance", {}), filename, f"{path}.maintenance", "maintenance"
            ),
            sources=params,
            **{k: params[k].value for k in _REGIMEN_PARAMETERS},
        )
    return MappingProxyType(dict(sorted(out.items())))


@cache
def load_background() -> Mapping[str, SourcedValue]:
    """Gompertz mortality, default baseline eGFR and CKD thresholds (``background.toml``)."""
    filename = "background.toml"
    doc = _read(filename)
    check_table_keys(doc, file=_label(filename), table_path="", required=("mortality", "kidney"))
    values = {
        **_sourced(doc["mortality"], filename, "mortality", _MORTALITY_PARAMETERS),
        **_sourced(doc["kidney"], filename, "kidney", _KIDNEY_PARAMETERS),
    }
    for key in (*_MORTALITY_PARAMETERS, "baseline_egfr"):
        if values[key].value <= 0:
            raise ParameterFileError(_label(filename), "must be > 0", parameter=key)
    g2, g3, g4 = (values[f"ckd_grade_{g}_below"].value for g in (2, 3, 4))
    if not g2 > g3 > g4 > 0:
        raise ParameterFileError(_label(filename), "need ckd_grade_2 > 3 > 4 thresholds > 0")
    return MappingProxyType(values)


def get_safety_regimen(regimen: SafetyRegimen | str) -> SafetyRegimen:
    """A regimen object from itself or its name.

    Raises
    ------
    ValueError
        For an unknown name; the message names the argument and lists the valid names.
    """
    if isinstance(regimen, SafetyRegimen):
        return regimen
    regimens = load_safety_regimens()
    if isinstance(regimen, str) and regimen in regimens:
        return regimens[regimen]
    raise ValueError(
        f"regimen: unknown regimen {regimen!r}; valid values: {', '.join(map(repr, regimens))}"
    )


def parameter_table() -> pd.DataFrame:
    """Every sourced value of the safety model as one documentation table.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``parameter``, ``value``, ``unit``, ``verified``, ``source``.
    """
    rows: list[dict[str, Any]] = []

    def add(group: str, sources: Mapping[str, SourcedValue]) -> None:
        for k, v in sources.items():
            rows.append(
                {"group": group, "parameter": k, "value": v.value, "unit": v.unit,
                 "verified": v.verified, "source": v.source}
            )  # fmt: skip

    for name, reg in load_safety_regimens().items():
        add(f"regimen:{name}", reg.sources)
    for key, term in load_event_terms().items():
        add(f"term:{key}", term.sources)
    add("background", load_background())
    return pd.DataFrame(rows, columns=["group", "parameter", "value", "unit", "verified", "source"])


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class EgfrTrajectories:
    """Per-participant eGFR lines (mL/min/1.73 m²), struct of arrays.

    ``eGFR_i(t) = max(0, baseline_i + slope_i (t - start_day_i) / 365.25)`` for
    ``start_day_i <= t <= death_day_i``; baseline before the start, ``nan`` after death.

    Attributes
    ----------
    baseline, slope_per_year, start_day, death_day : numpy.ndarray
        Shape (N,); ``death_day`` is ``inf`` without a death in follow-up.
    """

    baseline: NDArray[np.float64]
    slope_per_year: NDArray[np.float64]
    start_day: NDArray[np.float64]
    death_day: NDArray[np.float64]

    def at(self, day: float | ArrayLike) -> NDArray[np.float64]:
        """eGFR on trial day(s): (N,) for a scalar day, (N, D) for D days."""
        d = np.asarray(day, dtype=float)
        if d.ndim > 1 or not np.isfinite(d).all():
            raise ValueError("day must be a finite scalar or 1-D array")
        t = np.atleast_1d(d)[None, :]
        years = np.maximum(t - self.start_day[:, None], 0.0) / DAYS_PER_YEAR
        out = np.maximum(self.baseline[:, None] + self.slope_per_year[:, None] * years, 0.0)
        out[t > self.death_day[:, None]] = np.nan
        return out[:, 0] if d.ndim == 0 else out

    def to_frame(self, days: ArrayLike) -> pd.DataFrame:
        """Tidy table (participant, day, egfr) on the given days."""
        d = np.atleast_1d(np.asarray(days, dtype=float))
        values = self.at(d)
        n = values.shape[0]
        return pd.DataFrame(
            {
                "participant": np.repeat(np.arange(n, dtype=np.int64), d.size),
                "day": np.tile(d, n),
                "egfr": values.ravel(),
            }
        )


@dataclass(frozen=True, repr=False, eq=False)
class SafetySimulation:
    """Result of :func:`simulate_safety`.

    Attributes
    ----------
    regimen : str
    events : pandas.DataFrame
        The event log (columns :data:`EVENT_COLUMNS`, see :func:`simulate_adverse_events`).
    egfr : EgfrTrajectories
    death_day : numpy.ndarray
        Day of the first fatal event, ``inf`` if none in follow-up, (N,).
    follow_up_days : numpy.ndarray
        Days at risk (follow-up truncated at death), (N,).
    """

    regimen: str
    events: pd.DataFrame
    egfr: EgfrTrajectories
    death_day: NDArray[np.float64]
    follow_up_days: NDArray[np.float64]

    def __repr__(self) -> str:
        n = self.death_day.size
        serious = int(self.events["serious"].sum())
        deaths = int(np.isfinite(self.death_day).sum())
        return (
            f"SafetySimulation({self.regimen!r}, n={n}, {len(self.events)} events, "
            f"{serious} serious, {deaths} deaths, {self.follow_up_days.sum() / DAYS_PER_YEAR:.1f} "
            "patient-years)"
        )


def _per_participant(name: str, value: ArrayLike, n: int, *, low: float) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    elif arr.shape != (n,):
        raise ValueError(f"{name}: must be a scalar or have shape ({n},), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: must be finite")
    if (arr < low).any():
        raise ValueError(f"{name}: must be >= {low:g}, got min {arr.min():g}")
    return arr


def _infusion_slots(infusion_days: ArrayLike | None, start: NDArray, n: int) -> NDArray:
    if infusion_days is None:
        return start[:, None].copy()
    arr = np.asarray(infusion_days, dtype=float)
    if arr.ndim == 0:
        arr = np.full((n, 1), float(arr))
    elif arr.ndim == 1:
        if arr.shape != (n,):
            raise ValueError(f"infusion_days: need a scalar, ({n},) or ({n}, K), got {arr.shape}")
        arr = arr[:, None]
    elif arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"infusion_days: need a scalar, ({n},) or ({n}, K), got {arr.shape}")
    if np.isinf(arr).any() or (arr[~np.isnan(arr)] < 0).any():
        raise ValueError("infusion_days: must be >= 0 and finite (nan: no infusion in a slot)")
    return arr.copy()


def _grade(cum: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.int8]:
    """Inverse CDF of the grade distributions: ``cum`` (M, 5) cumulative, ``u`` (M,)."""
    g = (u[:, None] >= cum[:, :4]).sum(axis=1) + 1
    return g.astype(np.int8)


def gompertz_cumulative_hazard(
    age_years: ArrayLike, duration_days: ArrayLike, a_per_year: float, b_per_year: float
) -> NDArray[np.float64]:
    """Cumulative background-mortality hazard from age ``a0`` over ``T`` days.

    ``H = (A / B) e^{B a0} (e^{B T_y} - 1)`` with ``T_y = T / 365.25`` (Gompertz hazard
    ``μ(a) = A e^{B a}`` per year of age).
    """
    a0 = np.asarray(age_years, dtype=float)
    ty = np.asarray(duration_days, dtype=float) / DAYS_PER_YEAR
    return a_per_year / b_per_year * np.exp(b_per_year * a0) * np.expm1(b_per_year * ty)


def simulate_safety(
    regimen: SafetyRegimen | str,
    ages: ArrayLike,
    days: ArrayLike,
    rng_streams: Sequence[np.random.Generator],
    *,
    start_day: ArrayLike = 0.0,
    infusion_days: ArrayLike | None = None,
    female: ArrayLike = False,
    baseline_egfr: ArrayLike | None = None,
) -> SafetySimulation:
    """Draw adverse events, eGFR trajectories and deaths for N participants.

    See :func:`simulate_adverse_events` for the parameters and the module docstring for the
    model and the randomness contract.

    Returns
    -------
    SafetySimulation
    """
    reg = get_safety_regimen(regimen)
    streams = list(rng_streams)
    if not all(isinstance(g, np.random.Generator) for g in streams):
        raise TypeError("rng_streams: must be a sequence of numpy.random.Generator")
    n = len(streams)
    age = _per_participant("ages", ages, n, low=0.0)
    horizon = _per_participant("days", days, n, low=0.0)
    start = _per_participant("start_day", start_day, n, low=0.0)
    fem = np.asarray(female)
    if fem.dtype != bool:
        raise ValueError(f"female: must be bool (scalar or ({n},)), got dtype {fem.dtype}")
    fem = np.broadcast_to(fem, (n,)) if fem.ndim == 0 else fem
    if fem.shape != (n,):
        raise ValueError(f"female: must be a scalar or have shape ({n},), got {fem.shape}")
    background = load_background()
    if baseline_egfr is None:
        baseline_egfr = background["baseline_egfr"].value
    egfr0 = _per_participant("baseline_egfr", baseline_egfr, n, low=0.0)
    slots = _infusion_slots(infusion_days, start, n)
    end = start + horizon

    terms = load_event_terms()
    drug = [t for t in terms.values() if math.isnan(t.probability_per_infusion)]
    proc = [t for t in terms.values() if not math.isnan(t.probability_per_infusion)]
    n_fixed = 2 + 2 * slots.shape[1] * len(proc)

    # Expected counts per (participant, term, window): windows [start, start + w) and
    # [start + w, end), clipped to the follow-up.
    w = np.array([t.early_window_days for t in drug])
    early_len = np.minimum(w[None, :], horizon[:, None])  # (N, T)
    late_len = horizon[:, None] - early_len
    eligible = np.array([[t.population == "all" for t in drug]]) | (
        fem[:, None] & np.array([[t.population == "female" for t in drug]])
    )
    m = reg.ae_hazard_multiplier / DAYS_PER_YEAR
    r_early = np.array([t.rate_early_per_year for t in drug]) * m
    r_late = np.array([t.rate_late_per_year for t in drug]) * m
    lam = np.concatenate([early_len * r_early, late_len * r_late], axis=1) * np.tile(eligible, 2)

    # The only loop over participants: a fixed number of generator calls each.
    fixed = np.empty((n, n_fixed))
    counts = np.empty((n, lam.shape[1]), dtype=np.int64)
    event_u: list[NDArray[np.float64]] = []
    for i, g in enumerate(streams):
        fixed[i] = g.random(n_fixed)
        counts[i] = g.poisson(lam[i])
        event_u.append(g.random((int(counts[i].sum()), 3)))
    u_ev = np.concatenate(event_u) if event_u else np.empty((0, 3))

    frames: list[pd.DataFrame] = []

    # Drug adverse events.
    flat = counts.ravel()
    n_t = len(drug)
    rows = np.repeat(np.arange(n * 2 * n_t), flat)
    who, col = np.divmod(rows, 2 * n_t)
    late, term_idx = np.divmod(col, n_t)
    w_start = start[who] + np.where(late == 1, early_len[who, term_idx], 0.0)
    w_len = np.where(late == 1, late_len[who, term_idx], early_len[who, term_idx])
    cum = np.cumsum([t.grade_probabilities for t in drug], axis=1) if drug else np.empty((0, 5))
    grade = _grade(cum[term_idx], u_ev[:, 1])
    seq = np.array([t.p_sequelae for t in drug])[term_idx] > u_ev[:, 2]
    frames.append(
        _frame(
            who,
            w_start + u_ev[:, 0] * w_len,
            np.array([t.key for t in drug], dtype=object)[term_idx],
            grade,
            np.array([t.serious_from_grade for t in drug])[term_idx],
            np.array([t.related for t in drug], dtype=object)[term_idx],
            seq,
        )
    )

    # Procedure complications: slot k, term p uses fixed[:, 2 + 2 (k P + p) + {0, 1}]
    # (occurrence and grade, sequelae).
    if proc:
        u_both = fixed[:, 2:].reshape(n, slots.shape[1], len(proc), 2)
        u_proc = u_both[..., 0]
        p = np.array([t.probability_per_infusion for t in proc])
        in_window = ~np.isnan(slots) & (slots >= start[:, None]) & (slots < end[:, None])
        hit = (u_proc < p) & in_window[:, :, None]
        who_p, slot_p, term_p = np.nonzero(hit)
        # Reuse the same uniform for grade and sequelae: u / p is Uniform(0, 1) given a hit.
        v = u_proc[who_p, slot_p, term_p] / p[term_p]
        cum_p = np.cumsum([t.grade_probabilities for t in proc], axis=1)
        grade_p = _grade(cum_p[term_p], v)
        seq_p = np.array([t.p_sequelae for t in proc])[term_p] > u_both[who_p, slot_p, term_p, 1]
        frames.append(
            _frame(
                who_p,
                slots[who_p, slot_p],
                np.array([t.key for t in proc], dtype=object)[term_p],
                grade_p,
                np.array([t.serious_from_grade for t in proc])[term_p],
                np.array(["procedure"] * len(proc), dtype=object)[term_p],
                seq_p,
            )
        )

    # Kidney function: CKD grade 2/3/4 on crossing 60/30/15.
    lo, hi = reg.egfr_slope_min_per_year, reg.egfr_slope_max_per_year
    slope = lo + (hi - lo) * fixed[:, 0]
    thresholds = [background[f"ckd_grade_{g}_below"].value for g in (2, 3, 4)]
    for g, thr in zip((2, 3, 4), thresholds, strict=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = start + (egfr0 - thr) / -slope * DAYS_PER_YEAR
        ok = (slope < 0) & (egfr0 >= thr) & (cross < end)
        idx = np.flatnonzero(ok)
        frames.append(
            _frame(
                idx,
                cross[idx],
                np.full(idx.size, CKD_TERM, dtype=object),
                np.full(idx.size, g, dtype=np.int8),
                np.full(idx.size, 3),
                np.full(idx.size, "immunosuppression", dtype=object),
                np.zeros(idx.size, dtype=bool),
                outcome="not recovered",
            )
        )

    # Background mortality: invert the Gompertz cumulative hazard at an Exp(1) draw.
    a, b = background["gompertz_a_per_year"].value, background["gompertz_b_per_year"].value
    e1 = -np.log1p(-fixed[:, 1])
    t_death = np.log1p(b * e1 / (a * np.exp(b * age))) / b * DAYS_PER_YEAR
    idx = np.flatnonzero(t_death < horizon)
    frames.append(
        _frame(
            idx,
            start[idx] + t_death[idx],
            np.full(idx.size, DEATH_TERM, dtype=object),
            np.full(idx.size, 5, dtype=np.int8),
            np.full(idx.size, 5),
            np.full(idx.size, "unrelated", dtype=object),
            np.zeros(idx.size, dtype=bool),
        )
    )

    events = pd.concat(frames, ignore_index=True)
    events = events.sort_values(["participant", "day"], kind="stable", ignore_index=True)
    death_day = np.full(n, np.inf)
    fatal = events[events["grade"] == 5]
    first = fatal.groupby("participant", sort=False)["day"].min()
    death_day[first.index.to_numpy()] = first.to_numpy()
    events = events[events["day"].to_numpy() <= death_day[events["participant"].to_numpy()]]
    # Only the first fatal event stands (several at the same day are kept in file order).
    events = events.reset_index(drop=True)
    events = _typed(events)
    follow = np.minimum(end, death_day) - start
    return SafetySimulation(
        regimen=reg.name,
        events=events,
        egfr=EgfrTrajectories(egfr0, slope, start, death_day),
        death_day=death_day,
        follow_up_days=follow,
    )


def _frame(
    who: NDArray[np.intp],
    day: NDArray[np.float64],
    term: NDArray[Any],
    grade: NDArray[np.int8],
    serious_from: NDArray[Any],
    related: NDArray[Any],
    sequelae: NDArray[np.bool_],
    *,
    outcome: str | None = None,
) -> pd.DataFrame:
    fatal = grade == 5
    if outcome is None:
        out = np.where(fatal, "fatal", np.where(sequelae, "recovered with sequelae", "recovered"))
    else:
        out = np.where(fatal, "fatal", outcome)
    return pd.DataFrame(
        {
            "participant": np.asarray(who, dtype=np.int64),
            "day": np.asarray(day, dtype=float),
            "term": np.asarray(term, dtype=object),
            "grade": np.asarray(grade, dtype=np.int8),
            "serious": (grade >= serious_from) | fatal,
            "related": np.asarray(related, dtype=object),
            "outcome": np.asarray(out, dtype=object),
        },
        columns=list(EVENT_COLUMNS),
    )


def _typed(events: pd.DataFrame) -> pd.DataFrame:
    terms = (*load_event_terms(), CKD_TERM, DEATH_TERM)
    return events.astype(
        {
            "participant": np.int64,
            "day": np.float64,
            "term": pd.CategoricalDtype(terms),
            "grade": np.int8,
            "serious": bool,
            "related": pd.CategoricalDtype(RELATEDNESS),
            "outcome": pd.CategoricalDtype(OUTCOMES),
        }
    )


def simulate_adverse_events(
    regimen: SafetyRegimen | str,
    ages: ArrayLike,
    days: ArrayLike,
    rng_streams: Sequence[np.random.Generator],
    *,
    start_day: ArrayLike = 0.0,
    infusion_days: ArrayLike | None = None,
    female: ArrayLike = False,
    baseline_egfr: ArrayLike | None = None,
) -> pd.DataFrame:
    """The adverse-event log of N participants on an immunosuppression regimen.

    Parameters
    ----------
    regimen
        A :class:`SafetyRegimen` or a name of :func:`load_safety_regimens` (``"none"``,
        ``"edmonton"``, ``"cit-07"``, ``"zimislecel-like"``).
    ages
        Age in years at ``start_day``, scalar or (N,), >= 0.
    days
        Follow-up length in days from ``start_day``, scalar or (N,), >= 0; events fall in
        ``start_day <= day < start_day + days``.
    rng_streams
        One :class:`numpy.random.Generator` per participant (N = its length), e.g. from
        :func:`isletsim.therapy.graft.participant_streams`; advanced by this call.
    start_day
        Trial day on which immunosuppression starts (induction), scalar or (N,), >= 0.
    infusion_days
        Trial days of islet infusions for procedure complications: scalar, (N,) or (N, K)
        with ``nan`` for an empty slot; ``None`` (default): one infusion on ``start_day``.
        Infusions outside the follow-up window give no event.
    female
        Bool, scalar or (N,): women can have ovarian cysts (default: no).
    baseline_egfr
        eGFR at ``start_day``, mL/min/1.73 m², scalar or (N,) (default from
        ``background.toml``, 90 [U]).

    Returns
    -------
    pandas.DataFrame
        One row per event, sorted by participant and day, with columns ``participant``
        (int64, index into ``rng_streams``), ``day`` (float64, trial day), ``term``
        (categorical: drug terms, procedure complications, ``chronic_kidney_disease``,
        ``death``), ``grade`` (int8, CTCAE-style 1-5), ``serious`` (bool), ``related``
        (categorical :data:`RELATEDNESS`) and ``outcome`` (categorical :data:`OUTCOMES`).
        No events follow a participant's first grade-5 event. Use :func:`simulate_safety`
        for the eGFR trajectories and death days as well.

    Raises
    ------
    ValueError
        Naming the argument: unknown regimen (valid names listed), negative or non-finite
        ages, days, start day, infusion days or baseline eGFR, wrong shapes.
    """
    return simulate_safety(
        regimen,
        ages,
        days,
        rng_streams,
        start_day=start_day,
        infusion_days=infusion_days,
        female=female,
        baseline_egfr=baseline_egfr,
    ).events


# --------------------------------------------------------------------------------------------
# Expected rates and calibration
# --------------------------------------------------------------------------------------------


def expected_event_counts(
    regimen: SafetyRegimen | str,
    days: float,
    *,
    age: float = 45.0,
    infusions: float = 1.0,
    female_fraction: float = 0.0,
    baseline_egfr: float | None = None,
) -> pd.DataFrame:
    """Expected events per participant by term, analytic (no competing death removed).

    Parameters
    ----------
    regimen
        Regimen or name.
    days
        Follow-up, days (>= 0).
    age
        Age at start, years (>= 0).
    infusions
        Mean number of infusions within follow-up (>= 0).
    female_fraction
        Share of women (ovarian cysts), in [0, 1].
    baseline_egfr
        Baseline eGFR (default from ``background.toml``).

    Returns
    -------
    pandas.DataFrame
        Index ``term``; columns ``expected`` and ``expected_serious`` (per participant).
    """
    reg = get_safety_regimen(regimen)
    for name, value in (("days", days), ("age", age), ("infusions", infusions)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: must be >= 0 and finite, got {value!r}")
    if not 0.0 <= female_fraction <= 1.0:
        raise ValueError(f"female_fraction: must be in [0, 1], got {female_fraction!r}")
    background = load_background()
    egfr0 = background["baseline_egfr"].value if baseline_egfr is None else baseline_egfr
    rows: dict[str, tuple[float, float]] = {}
    for t in load_event_terms().values():
        p_serious = float(t.grade_probabilities[t.serious_from_grade - 1 :].sum())
        if math.isnan(t.probability_per_infusion):
            early = min(t.early_window_days, days)
            mean = (t.rate_early_per_year * early + t.rate_late_per_year * (days - early)) / (
                DAYS_PER_YEAR
            )
            mean *= reg.ae_hazard_multiplier
            mean *= female_fraction if t.population == "female" else 1.0
        else:
            mean = t.probability_per_infusion * infusions
        rows[t.key] = (mean, mean * p_serious)
    # CKD: fraction of the uniform slope range that crosses each threshold in time.
    lo, hi = reg.egfr_slope_min_per_year, reg.egfr_slope_max_per_year
    slopes = lo + (hi - lo) * (np.arange(2001) + 0.5) / 2001
    years = days / DAYS_PER_YEAR
    ckd, ckd_serious = 0.0, 0.0
    for g in (2, 3, 4):
        thr = background[f"ckd_grade_{g}_below"].value
        frac = float(np.mean((slopes < 0) & (egfr0 >= thr) & (egfr0 + slopes * years < thr)))
        ckd += frac
        ckd_serious += frac if g >= 3 else 0.0
    rows[CKD_TERM] = (ckd, ckd_serious)
    a, b = background["gompertz_a_per_year"].value, background["gompertz_b_per_year"].value
    h = float(gompertz_cumulative_hazard(age, days, a, b))
    rows[DEATH_TERM] = (h, h)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["expected", "expected_serious"])
    frame.index.name = "term"
    return frame


#: CIT-08 serious adverse events per patient-year, islet-alone (Rickels MR et al. *Diabetes
#: Care* 2022;45:2967 [V]; isletsim science reference §4.4-4.5).
CIT08_SAE_PER_PATIENT_YEAR: float = 0.31
#: Zimislecel: serious neutropenia in 3 of 14 participants (Reichman TW et al. *NEJM*
#: 2025;393:858 [V]; science reference §4.5, §8.5).
ZIMISLECEL_SERIOUS_NEUTROPENIA: tuple[int, int] = (3, 14)
#: CIT-07: 75 procedures in 48 recipients (5 bleeds = 10.4% of recipients; Hering BJ et al.
#: *Diabetes Care* 2016;39:1230 [V]), i.e. 1.5625 infusions per recipient.
CIT07_INFUSIONS_PER_RECIPIENT: float = 75 / 48


def calibration_summary(
    *,
    cit08_years: float = 5.0,
    age: float = 45.0,
    n_simulated: int = 0,
    seed: int = 2025,
) -> pd.DataFrame:
    """Model figures against the two verified safety targets.

    1. Serious adverse events per patient-year on ``"cit-07"`` over ``cit08_years`` with
       :data:`CIT07_INFUSIONS_PER_RECIPIENT` infusions, vs CIT-08 0.31/patient-year [V].
       The follow-up length (CIT-08 reports up to 8 years) and the age are our choices [U].
    2. Risk of at least one serious neutropenia in the first year on
       ``"zimislecel-like"``, ``1 - exp(-H)``, vs 3/14 [V].

    Parameters
    ----------
    cit08_years
        Follow-up over which the CIT-08 rate is averaged, years (> 0).
    age
        Age at start, years.
    n_simulated
        If > 0, also simulate that many participants (seeded) and report the Monte-Carlo
        estimate and its standard error.
    seed
        Root seed of the simulated check.

    Returns
    -------
    pandas.DataFrame
        Index ``quantity``; columns ``target``, ``model``, ``error`` (model − target),
        ``relative_error``, ``simulated``, ``simulated_se``, ``source``.
    """
    if not (math.isfinite(cit08_years) and cit08_years > 0):
        raise ValueError(f"cit08_years: must be > 0, got {cit08_years!r}")
    from isletsim.therapy.graft import participant_streams

    days = cit08_years * DAYS_PER_YEAR
    exp_cit = expected_event_counts(
        "cit-07", days, age=age, infusions=CIT07_INFUSIONS_PER_RECIPIENT
    )
    sae_rate = float(exp_cit["expected_serious"].sum()) / cit08_years
    exp_zim = expected_event_counts("zimislecel-like", DAYS_PER_YEAR, age=age)
    t = load_event_terms()["neutropenia"]
    p_serious = float(t.grade_probabilities[t.serious_from_grade - 1 :].sum())
    neut_risk = 1.0 - math.exp(-float(exp_zim.loc["neutropenia", "expected"]) * p_serious)

    sim_sae = sim_sae_se = sim_neut = sim_neut_se = math.nan
    if n_simulated > 0:
        n = int(n_simulated)
        infusion_days = np.full((n, 2), np.nan)
        infusion_days[:, 0] = 0.0
        # 1.5625 infusions per recipient: a second infusion (day 90, our choice) in 9/16.
        infusion_days[: round(n * (CIT07_INFUSIONS_PER_RECIPIENT - 1)), 1] = 90.0
        sim = simulate_safety(
            "cit-07", age, days, participant_streams(seed, n), infusion_days=infusion_days
        )
        py = sim.follow_up_days.sum() / DAYS_PER_YEAR
        k = int(sim.events["serious"].sum())
        sim_sae, sim_sae_se = k / py, math.sqrt(k) / py
        zim = simulate_adverse_events(
            "zimislecel-like", age, DAYS_PER_YEAR, participant_streams(seed + 1, n)
        )
        hit = zim[(zim["term"] == "neutropenia") & zim["serious"]]["participant"].nunique()
        sim_neut = hit / n
        sim_neut_se = math.sqrt(sim_neut * (1 - sim_neut) / n)

    k_n, n_n = ZIMISLECEL_SERIOUS_NEUTROPENIA
    rows = [
        (
            "serious events per patient-year (cit-07)",
            CIT08_SAE_PER_PATIENT_YEAR,
            sae_rate,
            sim_sae,
            sim_sae_se,
            "CIT-08, Rickels MR et al. Diabetes Care 2022;45:2967 [V]",
        ),
        (
            "P(serious neutropenia in year 1) (zimislecel-like)",
            k_n / n_n,
            neut_risk,
            sim_neut,
            sim_neut_se,
            "zimislecel 3/14, Reichman TW et al. NEJM 2025;393:858 [V]",
        ),
    ]
    frame = pd.DataFrame(
        rows, columns=["quantity", "target", "model", "simulated", "simulated_se", "source"]
    ).set_index("quantity")
    frame.insert(2, "error", frame["model"] - frame["target"])
    frame.insert(3, "relative_error", frame["error"] / frame["target"])
    return frame


__all__ = [
    "CIT07_INFUSIONS_PER_RECIPIENT",
    "CIT08_SAE_PER_PATIENT_YEAR",
    "CKD_TERM",
    "DEATH_TERM",
    "EVENT_COLUMNS",
    "OUTCOMES",
    "POPULATIONS",
    "RELATEDNESS",
    "ZIMISLECEL_SERIOUS_NEUTROPENIA",
    "Agent",
    "EgfrTrajectories",
    "EventTerm",
    "SafetyRegimen",
    "SafetySimulation",
    "calibration_summary",
    "expected_event_counts",
    "get_safety_regimen",
    "gompertz_cumulative_hazard",
    "load_background",
    "load_event_terms",
    "load_safety_regimens",
    "parameter_table",
    "simulate_adverse_events",
    "simulate_safety",
]
