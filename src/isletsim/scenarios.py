"""Days and meals: random daily meal patterns with personal habits, and fixed scenario files.

Random meals
------------
A :class:`MealPattern` lists the candidate meals of a day (breakfast, snacks, ...), each with
the probability that it is eaten on a given day, a clock time drawn from a normal truncated to
a window, and a size drawn from a normal truncated to bounds. The shipped default,
``isletsim/params/meals/simglucose_random.toml``, is the RandomScenario of simglucose 0.2.11
(``simglucose/simulation/scenario_gen.py``, ``RandomScenario.create_scenario``): six
candidates with probabilities 0.95/0.3/0.95/0.3/0.95/0.3, mean times 07:00, 09:30, 12:00,
15:00, 18:00, 21:30 (SD 60/30 min, windows 5-9, 9-10, 10-14, 14-16, 16-20, 20-23 h) and sizes
N(45, 10), N(10, 5), N(70, 10), N(10, 5), N(80, 10), N(10, 5) g. Two deliberate differences:
sizes are truncated to ``[size_min, size_max]`` instead of clipped at 0 g (simglucose turns
about 2% of its snacks into 0-g meals) and grams are not rounded.

On top of the pattern every person has habits (:func:`sample_habits`; between-person spreads
in the pattern's ``[habits]`` table, our modelling choice [U], no source):

* usual time of meal ``k``: ``time_mean_k + shift_i + offset_ik``, clipped to the meal's window,
  with ``shift_i ~ N(0, time_shift_sd)`` common to all of a person's meals (early or late
  eaters) and ``offset_ik ~ N(0, meal_time_sd)``;
* portion factor ``scale_i``: lognormal with mean 1 and CV ``size_scale_cv``; it multiplies
  the mean and SD of every meal size.

Day-to-day variability (:func:`random_meals`): on each day, candidate ``k`` is eaten with its
probability (the snacks, at 0.3, are the occasional ones), at a time drawn from
``N(usual time_ik, time_sd_k)`` truncated to the window and rounded to the minute, with a size
from ``N(scale_i size_mean_k, scale_i size_sd_k)`` truncated to the size bounds.

Randomness
----------
Every participant has its own :class:`numpy.random.Generator` (from
:func:`isletsim.therapy.graft.participant_streams`). :func:`sample_habits` takes exactly
``K + 2`` uniforms from each stream (``K`` candidates) and :func:`random_meals` exactly
``3 K`` per simulated day (eaten?, time, size for each candidate, in pattern order), turned
into the random quantities by inverse CDFs whatever the parameters. So participant ``i``'s
meals depend only on its own stream (never on how many participants are drawn together), the
same streams give common random numbers across patterns, and two consecutive calls of
:func:`random_meals` (``days=a`` then ``days=b, start_day=a``) give the same meals as one call
with ``days=a + b``.

Fixed schedules
---------------
:func:`load_scenario` reads a TOML scenario file, either explicit meals on given days::

    name = "two days"            # optional
    [[meal]]
    day = 0                      # day of the simulation, >= 0
    time = "07:00"               # clock time HH:MM (or a TOML local time 07:00:00)
    grams = 45                   # carbohydrate, g, >= 0

or the same meals every day::

    [[daily]]
    time = "07:00"
    grams = 45

Every problem (unknown keys, negative grams, impossible times such as 25:00) raises
:class:`ScenarioFileError`, naming the file, the key and the value. :func:`write_scenario`
writes such a file, e.g. to freeze one participant's random meals as a fixed schedule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from scipy.special import ndtr, ndtri

from isletsim.meals import DailyMeals, MealEvents
from isletsim.params.toml_file import (
    ParameterEntry,
    ParameterFileError,
    check_table_keys,
    check_tags,
    parse_parameter_table,
    read_parameter_document,
)
from isletsim.params.toml_file import sources as parameter_sources

MINUTES_PER_DAY = 1440
#: Uniforms drawn per candidate meal per day: eaten?, time, size (in this order).
N_UNIFORMS_PER_CANDIDATE = 3
#: Uniforms drawn per participant by :func:`sample_habits`, beyond one per candidate meal:
#: common time shift (first) and portion factor (last).
N_EXTRA_HABIT_UNIFORMS = 2
#: Shipped meal patterns (``isletsim/params/meals/<name>.toml``).
MEAL_PATTERNS: tuple[str, ...] = ("simglucose_random",)
DEFAULT_PATTERN = "simglucose_random"

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_U_EPS = 2.0**-54  # keeps inverse normal CDFs finite for u == 0
_MAX_BLOCK_VALUES = 4_000_000  # uniforms held at once by random_meals (32 MB)

# keys of a candidate meal in a pattern file (times "HH:MM", other values numbers)
_MEAL_TIME_KEYS = ("time_mean", "earliest", "latest")
_MEAL_KEYS = (
    "probability",
    "time_mean",
    "time_sd",
    "earliest",
    "latest",
    "size_mean",
    "size_sd",
    "size_min",
)
_MEAL_OPTIONAL_KEYS = ("size_max",)
_HABIT_KEYS = ("time_shift_sd", "meal_time_sd", "size_scale_cv")


# ============================================================================ clock times
def clock_minutes(value: Any) -> int:
    """Minute of the day of a clock time.

    Parameters
    ----------
    value
        ``"HH:MM"`` (00:00 to 23:59) or a :class:`datetime.time` with zero seconds (a TOML
        local time such as ``07:00:00``).

    Returns
    -------
    int
        Minutes after midnight, 0 to 1439.

    Raises
    ------
    ValueError
        If the value is not such a clock time (e.g. ``"25:00"``, ``"7h"``, ``420``).
    """
    if isinstance(value, dt.time):
        if value.second or value.microsecond or value.tzinfo is not None:
            raise ValueError("must be a clock time in whole minutes without time zone")
        return value.hour * 60 + value.minute
    if not isinstance(value, str):
        raise ValueError(f"must be a clock time 'HH:MM' (a string), got {type(value).__name__}")
    m = _CLOCK.match(value.strip())
    if m is None:
        raise ValueError("must be a clock time 'HH:MM', e.g. '07:30'")
    hh, mm = int(m.group(1)), int(m.group(2))
    if hh > 23 or mm > 59:
        raise ValueError("no such clock time: must be within 00:00 to 23:59")
    return hh * 60 + mm


def format_clock(minute: int) -> str:
    """``"HH:MM"`` of a minute of the day (0 to 1439)."""
    if not 0 <= minute < MINUTES_PER_DAY:
        raise ValueError(f"minute of the day must be within 0..1439, got {minute}")
    return f"{minute // 60:02d}:{minute % 60:02d}"


# ============================================================================ the pattern
@dataclass(frozen=True)
class CandidateMeal:
    """One candidate meal of a daily pattern.

    Parameters
    ----------
    name
        E.g. ``"breakfast"``.
    probability
        Probability that the meal is eaten on a given day, 0 to 1.
    time_mean, time_sd
        Mean and SD of the clock time of the untruncated normal, minutes after midnight.
    earliest, latest
        Window of the clock time (integer minutes after midnight, 0 to 1439), within which
        the normal is truncated; ``earliest <= time_mean <= latest``.
    size_mean, size_sd
        Mean and SD of the untruncated normal of the size, g of carbohydrate.
    size_min, size_max
        Bounds of the size, g (``size_max`` may be ``inf``); ``size_min <= size_mean <=
        size_max``.
    """

    name: str
    probability: float
    time_mean: float
    time_sd: float
    earliest: int
    latest: int
    size_mean: float
    size_sd: float
    size_min: float = 0.0
    size_max: float = math.inf

    def __post_init__(self) -> None:
        problems = _meal_problems(self.__dict__)
        if problems:
            key, msg = problems[0]
            raise ValueError(f"candidate meal {self.name!r}, {key} = {getattr(self, key)!r}: {msg}")


def _meal_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, message)`` for every invalid field of a candidate meal (first found first).

    ``values`` holds the fields of :class:`CandidateMeal` (``size_min`` and ``size_max``
    may be absent: their defaults).
    """
    m = SimpleNamespace(**{"size_min": 0.0, "size_max": math.inf, **values})
    out: list[tuple[str, str]] = []
    finite = ("probability", "time_mean", "time_sd", "size_mean", "size_sd", "size_min")
    for key in finite:
        v = getattr(m, key)
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            out.append((key, "must be a finite number"))
    if out:
        return out
    if not 0.0 <= m.probability <= 1.0:
        out.append(("probability", "must be within 0 to 1"))
    for key in ("earliest", "latest"):
        v = getattr(m, key)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < MINUTES_PER_DAY:
            out.append((key, "must be a whole minute of the day, 0 to 1439 (00:00 to 23:59)"))
    if out:
        return out
    if m.earliest > m.latest:
        out.append(("latest", f"must not be before earliest ({format_clock(m.earliest)})"))
    if not m.earliest <= m.time_mean <= m.latest:
        out.append(("time_mean", "must lie within [earliest, latest]"))
    if m.time_sd < 0:
        out.append(("time_sd", "must be >= 0 min"))
    if m.size_sd < 0:
        out.append(("size_sd", "must be >= 0 g"))
    if m.size_min < 0:
        out.append(("size_min", "must be >= 0 g (a meal cannot be negative)"))
    if m.size_mean < 0:
        out.append(("size_mean", "must be >= 0 g (a meal cannot be negative)"))
    if (
        isinstance(m.size_max, bool)
        or not isinstance(m.size_max, int | float)
        or (math.isnan(m.size_max))
    ):
        out.append(("size_max", "must be a number or inf"))
    elif not m.size_min <= m.size_mean <= m.size_max:
        out.append(("size_mean", "must lie within [size_min, size_max]"))
    return out


@dataclass(frozen=True)
class HabitSpread:
    """Between-person spreads of meal habits (our modelling choice [U], no source).

    Parameters
    ----------
    time_shift_sd
        SD of a person's shift common to all meal times, min.
    meal_time_sd
        SD of a person's own usual offset of each meal time, min.
    size_scale_cv
        CV of a person's lognormal portion factor (mean 1), dimensionless.
    """

    time_shift_sd: float = 0.0
    meal_time_sd: float = 0.0
    size_scale_cv: float = 0.0

    def __post_init__(self) -> None:
        for key in _HABIT_KEYS:
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
                raise ValueError(f"habit spread {key} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class MealPattern:
    """A daily pattern of candidate meals, with between-person habit spreads.

    Parameters
    ----------
    name
        Pattern name.
    meals
        Candidate meals, in the order in which random numbers are drawn (at least one).
    habits
        Between-person spreads (:class:`HabitSpread`); all zero: everyone follows the
        pattern itself (simglucose RandomScenario exactly, up to the size truncation).
    description
        Free text.
    sources
        The validated entries of the file the pattern came from (empty if built in code);
        keys ``"meals.<meal>.<key>"`` and ``"habits.<key>"``.

    References
    ----------
    simglucose 0.2.11, ``simglucose/simulation/scenario_gen.py``, ``RandomScenario``.
    """

    name: str
    meals: tuple[CandidateMeal, ...]
    habits: HabitSpread = field(default_factory=HabitSpread)
    description: str = ""
    sources: Mapping[str, ParameterEntry] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meals", tuple(self.meals))
        if not self.meals:
            raise ValueError("a meal pattern needs at least one candidate meal")
        if not all(isinstance(m, CandidateMeal) for m in self.meals):
            raise TypeError("meals must be CandidateMeal objects")
        names = [m.name for m in self.meals]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate meal names must be unique, got {names}")

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name: str = DEFAULT_PATTERN) -> MealPattern:
        """A shipped pattern (one of :data:`MEAL_PATTERNS`), e.g. ``"simglucose_random"``."""
        if name not in MEAL_PATTERNS:
            raise ValueError(f"unknown meal pattern {name!r}; shipped patterns: {MEAL_PATTERNS}")
        path = resources.files("isletsim.params").joinpath("meals", f"{name}.toml")
        return cls.from_file(path, label=f"isletsim/params/meals/{name}.toml")

    @classmethod
    def from_file(
        cls, path: Traversable | os.PathLike[str] | str, *, label: str | None = None
    ) -> MealPattern:
        """Read and validate a meal-pattern file (layout of ``simglucose_random.toml``).

        The file has a ``[pattern]`` header (``name``, optional ``description``), one table
        ``[meals.<name>]`` per candidate meal whose entries (``probability``, ``time_mean``,
        ``time_sd``, ``earliest``, ``latest``, ``size_mean``, ``size_sd``, ``size_min`` and
        optionally ``size_max``) are parameter entries of
        :mod:`isletsim.params.toml_file` (``value``, ``unit``, ``source``, ``tag``,
        ``verified``; times as ``"HH:MM"``), and a ``[habits]`` table with the entries
        ``time_shift_sd``, ``meal_time_sd`` (min) and ``size_scale_cv``.

        Parameters
        ----------
        path
            The file.
        label
            Name of the file in error messages (default: ``str(path)``).

        Raises
        ------
        ParameterFileError
            Naming the file, the entry (``meals.breakfast.time_mean``), the field and the
            value: unknown or missing keys, impossible times (``"25:00"``), negative sizes or
            SDs, probabilities outside 0-1, times outside their window, bad tags.
        """
        file = str(path) if label is None else label
        doc = read_parameter_document(path, label=file)
        check_table_keys(doc, file=file, table_path="", required=("pattern", "meals", "habits"))
        header = check_table_keys(
            doc["pattern"], file=file, table_path="pattern", required=("name",),
            allowed=("name", "description"),
        )  # fmt: skip
        for key in header:
            if not isinstance(header[key], str) or not header[key].strip():
                raise ParameterFileError(
                    file,
                    f"[pattern] {key} must be a non-empty string, got {header[key]!r}",
                    field=key,
                )
        meals_table = doc["meals"]
        if not isinstance(meals_table, Mapping) or not meals_table:
            raise ParameterFileError(
                file, "[meals] must be a table with at least one candidate meal [meals.<name>]"
            )
        sources: dict[str, ParameterEntry] = {}
        meals = []
        for meal_name, table in meals_table.items():
            path_ = f"meals.{meal_name}"
            entries = parse_parameter_table(
                table, file=file, table_path=path_, expected=_MEAL_KEYS,
                optional=_MEAL_OPTIONAL_KEYS, required_keys=(*_REQUIRED, "unit", "tag"),
                text_values=_MEAL_TIME_KEYS,
            )  # fmt: skip
            check_tags(entries, file=file)
            meals.append(_candidate_from_entries(meal_name, entries, file=file, path=path_))
            sources.update({f"{path_}.{k}": e for k, e in entries.items()})
        habit_entries = parse_parameter_table(
            doc["habits"], file=file, table_path="habits", expected=_HABIT_KEYS,
            required_keys=(*_REQUIRED, "unit", "tag"),
        )  # fmt: skip
        check_tags(habit_entries, file=file)
        for key, e in habit_entries.items():
            if float(e.value) < 0:
                raise ParameterFileError(
                    file, f"must be >= 0, got {e.value!r}", parameter=f"habits.{key}",
                    field="value",
                )  # fmt: skip
        sources.update({f"habits.{k}": e for k, e in habit_entries.items()})
        return cls(
            name=header["name"],
            description=header.get("description", ""),
            meals=tuple(meals),
            habits=HabitSpread(**{k: float(e.value) for k, e in habit_entries.items()}),
            sources=sources,
        )

    # ------------------------------------------------------------------ arrays
    @property
    def names(self) -> tuple[str, ...]:
        """Candidate meal names, in pattern order."""
        return tuple(m.name for m in self.meals)

    def column(self, key: str) -> NDArray[np.float64]:
        """``(K,)`` array of one field of the candidate meals (e.g. ``"size_mean"``)."""
        return np.array([float(getattr(m, key)) for m in self.meals])

    def sources_table(self) -> pd.DataFrame:
        """Documentation table of the file's entries (:func:`isletsim.params.toml_file.sources`)."""
        return parameter_sources([dataclasses.replace(e, name=k) for k, e in self.sources.items()])


_REQUIRED = ("value", "source", "verified")


def _candidate_from_entries(
    name: str, entries: Mapping[str, ParameterEntry], *, file: str, path: str
) -> CandidateMeal:
    values: dict[str, Any] = {}
    for key, e in entries.items():
        if key in _MEAL_TIME_KEYS:
            try:
                values[key] = clock_minutes(e.value)
            except ValueError as exc:
                raise ParameterFileError(
                    file, f"{exc}; got {e.value!r}", parameter=f"{path}.{key}", field="value"
                ) from None
        else:
            values[key] = float(e.value)
    problems = _meal_problems(values)
    if problems:
        key, msg = problems[0]
        raise ParameterFileError(
            file, f"{msg}; got {entries[key].value!r}", parameter=f"{path}.{key}", field="value"
        )
    return CandidateMeal(name=name, **values)


# ============================================================================ habits
@dataclass(frozen=True)
class MealHabits:
    """Each participant's meal habits under a pattern.

    Attributes
    ----------
    pattern : MealPattern
        The pattern the habits were drawn under.
    time_shift : (N,) array
        Shift common to all of a person's meal times, min.
    time_offset : (N, K) array
        Own offset of each candidate meal's usual time (excluding ``time_shift``), min.
    size_scale : (N,) array
        Portion factor (lognormal, mean 1) multiplying the mean and SD of meal sizes.
    """

    pattern: MealPattern
    time_shift: NDArray[np.float64]
    time_offset: NDArray[np.float64]
    size_scale: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.size_scale.shape[0])

    @property
    def usual_time(self) -> NDArray[np.float64]:
        """``(N, K)`` usual clock time of each candidate meal, min after midnight.

        The pattern's ``time_mean`` plus the person's shift and offset, clipped to the
        meal's window; it is the mean of the untruncated normal of daily times.
        """
        pat = self.pattern
        t = pat.column("time_mean") + self.time_shift[:, None] + self.time_offset
        return np.clip(t, pat.column("earliest"), pat.column("latest"))

    def slice(self, start: int, stop: int) -> MealHabits:
        """Habits of participants ``start .. stop-1``."""
        return MealHabits(
            self.pattern,
            self.time_shift[start:stop],
            self.time_offset[start:stop],
            self.size_scale[start:stop],
        )


def _check_streams(rng_streams: Sequence[np.random.Generator]) -> list[np.random.Generator]:
    streams = list(rng_streams)
    if not all(isinstance(g, np.random.Generator) for g in streams):
        raise TypeError("rng_streams must be a sequence of numpy.random.Generator")
    return streams


def _normal(u: NDArray[np.float64]) -> NDArray[np.float64]:
    return ndtri(np.clip(u, _U_EPS, 1.0 - _U_EPS))


def sample_habits(
    pattern: MealPattern | str, rng_streams: Sequence[np.random.Generator]
) -> MealHabits:
    """Draw each participant's meal habits.

    Participant ``i`` takes exactly ``K + 2`` uniforms from ``rng_streams[i]`` (``K``
    candidate meals): common time shift, one time offset per candidate meal in pattern
    order, portion factor; whatever the spreads (zero spreads give zero offsets and factor 1).

    Parameters
    ----------
    pattern
        A :class:`MealPattern` or the name of a shipped one (:data:`MEAL_PATTERNS`).
    rng_streams
        One generator per participant (N = its length), e.g. from
        :func:`isletsim.therapy.graft.participant_streams`. They are advanced by this call.

    Returns
    -------
    MealHabits

    Notes
    -----
    ``shift_i ~ N(0, time_shift_sd)``, ``offset_ik ~ N(0, meal_time_sd)`` (min) and
    ``scale_i = exp(sigma z_i - sigma^2 / 2)`` with ``sigma^2 = ln(1 + cv^2)`` (lognormal with
    mean 1 and CV ``size_scale_cv``). The spreads are our modelling choice [U].
    """
    pat = MealPattern.load(pattern) if isinstance(pattern, str) else pattern
    streams = _check_streams(rng_streams)
    n, k = len(streams), len(pat.meals)
    width = k + N_EXTRA_HABIT_UNIFORMS
    u = np.array([g.random(width) for g in streams], dtype=float).reshape(n, width)
    z = _normal(u)
    h = pat.habits
    sigma = math.sqrt(math.log1p(h.size_scale_cv**2))
    return MealHabits(
        pattern=pat,
        time_shift=h.time_shift_sd * z[:, 0],
        time_offset=h.meal_time_sd * z[:, 1 : k + 1],
        size_scale=np.exp(sigma * z[:, k + 1] - 0.5 * sigma**2),
    )


# ============================================================================ daily meals
def _truncated_normal(
    u: NDArray[np.float64],
    mean: NDArray[np.float64],
    sd: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Inverse CDF of N(mean, sd) truncated to [lo, hi] at ``u`` (mean clipped to the bounds).

    With the mean inside the bounds, ``Phi(a) <= 0.5 <= Phi(b)``, so the inversion is
    accurate; ``sd == 0`` gives the (clipped) mean.
    """
    mean = np.clip(mean, lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = ndtr((lo - mean) / sd)
        pb = ndtr((hi - mean) / sd)
        x = mean + sd * ndtri(pa + u * (pb - pa))
    x = np.where(sd > 0, x, mean)
    return np.clip(x, lo, hi)


@dataclass(frozen=True)
class MealDraws:
    """Every candidate meal of every participant and day, eaten or not.

    Attributes
    ----------
    names : tuple of str
        Candidate meal names (last axis).
    start_day : int
        Simulation day of the first row of the day axis.
    eaten : (N, D, K) bool array
        Whether the candidate meal is eaten that day.
    minute : (N, D, K) int64 array
        Absolute minute of the meal (``day * 1440 + clock time``), also where not eaten.
    grams : (N, D, K) float array
        Carbohydrate, g, also where not eaten.
    """

    names: tuple[str, ...]
    start_day: int
    eaten: NDArray[np.bool_]
    minute: NDArray[np.int64]
    grams: NDArray[np.float64]

    def events(self) -> MealEvents:
        """The eaten meals as :class:`~isletsim.meals.MealEvents` (sorted per participant).

        Meals at the same minute stay separate events (the engine adds them up).
        """
        n = self.eaten.shape[0]
        who = np.broadcast_to(np.arange(n)[:, None, None], self.eaten.shape)[self.eaten]
        minute = self.minute[self.eaten]
        grams = self.grams[self.eaten]
        order = np.lexsort((minute, who))  # by participant, then minute (stable)
        ptr = np.zeros(n + 1, dtype=np.int64)
        ptr[1:] = np.cumsum(np.bincount(who, minlength=n))
        return MealEvents(
            ptr=ptr,
            minute=np.ascontiguousarray(minute[order], dtype=np.int64),
            grams=np.ascontiguousarray(grams[order], dtype=np.float64),
        )

    def table(self) -> pd.DataFrame:
        """Tidy table of the eaten meals: participant, day, meal, minute, time, grams."""
        idx = np.nonzero(self.eaten)
        minute = self.minute[idx]
        return pd.DataFrame(
            {
                "participant": idx[0],
                "day": self.start_day + idx[1],
                "meal": pd.Categorical.from_codes(idx[2], categories=list(self.names)),
                "minute": minute,
                "time": [format_clock(int(m)) for m in minute % MINUTES_PER_DAY],
                "grams": self.grams[idx],
            }
        )


def draw_meals(
    habits: MealHabits,
    days: int,
    rng_streams: Sequence[np.random.Generator],
    *,
    start_day: int = 0,
) -> MealDraws:
    """Draw every candidate meal of ``days`` days (see :func:`random_meals`).

    Returns
    -------
    MealDraws
        Including the candidates not eaten, with their meal names (for tables and policies
        that treat snacks and meals differently).
    """
    streams = _check_streams(rng_streams)
    _check_days(habits, days, streams, start_day)
    n = len(streams)
    days, start_day = int(days), int(start_day)
    pat = habits.pattern
    k = len(pat.meals)

    blocks = list(_draw_blocks(habits, days, streams, start_day))
    if not blocks:
        empty = np.empty((n, 0, k))
        return MealDraws(pat.names, start_day, empty.astype(bool), empty.astype(np.int64), empty)
    return MealDraws(
        pat.names,
        start_day,
        np.concatenate([b.eaten for b in blocks], axis=1),
        np.concatenate([b.minute for b in blocks], axis=1),
        np.concatenate([b.grams for b in blocks], axis=1),
    )


def _check_days(
    habits: MealHabits, days: int, streams: list[np.random.Generator], start: int
) -> None:
    if len(streams) != len(habits):
        raise ValueError(
            f"{len(streams)} random streams for the habits of {len(habits)} participants"
        )
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 0:
        raise ValueError(f"days must be a whole number >= 0, got {days!r}")
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or start < 0:
        raise ValueError(f"start_day must be a whole number >= 0, got {start!r}")


def _draw_blocks(
    habits: MealHabits, days: int, streams: list[np.random.Generator], start_day: int
) -> Iterator[MealDraws]:
    """Draws for consecutive blocks of days (bounded memory; same numbers as one block)."""
    n, pat = len(streams), habits.pattern
    k = len(pat.meals)
    block = max(1, _MAX_BLOCK_VALUES // max(1, n * k * N_UNIFORMS_PER_CANDIDATE))
    usual = habits.usual_time[:, None, :]
    scale = habits.size_scale[:, None, None]
    for d0 in range(0, days, block):
        d1 = min(days, d0 + block)
        u = np.empty((n, d1 - d0, k, N_UNIFORMS_PER_CANDIDATE))
        for i, g in enumerate(streams):  # consecutive draws from a stream equal one draw
            u[i] = g.random((d1 - d0, k, N_UNIFORMS_PER_CANDIDATE))
        eaten = u[..., 0] < pat.column("probability")
        clock = _truncated_normal(
            u[..., 1], usual, pat.column("time_sd"), pat.column("earliest"), pat.column("latest")
        )
        day_index = start_day + np.arange(d0, d1, dtype=np.int64)[None, :, None]
        minute = day_index * MINUTES_PER_DAY + np.rint(clock).astype(np.int64)
        grams = _truncated_normal(
            u[..., 2],
            scale * pat.column("size_mean"),
            scale * pat.column("size_sd"),
            pat.column("size_min"),
            pat.column("size_max"),
        )
        yield MealDraws(pat.names, start_day + d0, eaten, minute, grams)


def random_meals(
    habits: MealHabits,
    days: int,
    rng_streams: Sequence[np.random.Generator],
    *,
    start_day: int = 0,
) -> MealEvents:
    """Random meals of N participants over ``days`` days, with day-to-day variability.

    Participant ``i`` takes exactly ``3 K`` uniforms per day from ``rng_streams[i]`` (for
    each candidate meal in pattern order: eaten?, time, size) and nothing else, so its meals
    depend only on its own stream and habits, never on N or batching; consecutive calls
    continue the streams (``days=a`` then ``days=b, start_day=a`` equals ``days=a+b``).

    Parameters
    ----------
    habits
        Per-participant habits from :func:`sample_habits` (they carry the pattern).
    days
        Number of days (>= 0).
    rng_streams
        One generator per participant, same order and length as ``habits`` (e.g. the streams
        used for the habits, or others). They are advanced by this call.
    start_day
        Simulation day of the first day (minutes are absolute: ``day * 1440 + clock``).

    Returns
    -------
    MealEvents
        Eaten meals, sorted by minute within each participant; times are whole minutes
        within each meal's window, sizes in g within its bounds.

    Notes
    -----
    Candidate ``k`` is eaten on a day with probability ``p_k``, at a clock time
    ``N(usual_time_ik, time_sd_k)`` truncated to ``[earliest_k, latest_k]`` and rounded to
    the minute, with ``N(scale_i size_mean_k, scale_i size_sd_k)`` g truncated to
    ``[size_min_k, size_max_k]`` (simglucose 0.2.11 ``RandomScenario`` with habits added).
    """
    streams = _check_streams(rng_streams)
    _check_days(habits, days, streams, start_day)
    parts = [b.events() for b in _draw_blocks(habits, int(days), streams, int(start_day))]
    n = len(streams)
    if len(parts) <= 1:
        return parts[0] if parts else MealEvents.from_lists([[] for _ in range(n)])
    counts = np.stack([np.diff(p.ptr) for p in parts])  # (blocks, n)
    who = np.concatenate([np.repeat(np.arange(n), c) for c in counts])
    order = np.argsort(who, kind="stable")  # blocks are in day order: minutes stay sorted
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(counts.sum(axis=0))
    return MealEvents(
        ptr=ptr,
        minute=np.concatenate([p.minute for p in parts])[order],
        grams=np.concatenate([p.grams for p in parts])[order],
    )


# ============================================================================ scenario files
class ScenarioFileError(ValueError):
    """A malformed scenario file; the message names the file, the key and the value.

    Attributes
    ----------
    file : str
    key : str or None
        Location of the offending key, e.g. ``"meal[2].time"`` (1-based item number).
    value : Any
        The offending value (``None`` where there is none).
    """

    def __init__(self, file: str, message: str, *, key: str | None = None, value: Any = None):
        self.file, self.key, self.value = file, key, value
        where = file if key is None else f"{file}: key {key!r}"
        if value is not None:
            where += f" = {value!r}"
        super().__init__(f"{where}: {message}")


def _as_minute(value: Any) -> int:
    return clock_minutes(value)


_Clock = Annotated[int, BeforeValidator(_as_minute)]
_Grams = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class _DailyItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    time: _Clock
    grams: _Grams


class _MealItem(_DailyItem):
    day: Annotated[int, Field(ge=0)]


class _ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = None
    description: str | None = None
    meal: list[_MealItem] | None = None
    daily: list[_DailyItem] | None = None


_ALLOWED = {
    "": ("name", "description", "meal", "daily"),
    "meal": ("day", "time", "grams"),
    "daily": ("time", "grams"),
}


def _error_from_pydantic(file: str, exc: ValidationError) -> ScenarioFileError:
    errors = exc.errors(include_url=False)
    # an unknown key first: a misspelt key also leaves the intended one missing
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = err["loc"]
    key = ""
    for part in loc:
        key += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    value = err.get("input")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        section = str(loc[0]) if len(loc) > 1 else ""
        msg = f"unknown key; allowed keys: {', '.join(_ALLOWED[section])}"
    elif err["type"] == "missing":
        value = None
        msg = "missing key"
    if isinstance(value, Mapping | list):
        value = None  # a whole table: the key says enough
    return ScenarioFileError(file, msg, key=key or None, value=value)


def load_scenario(path: os.PathLike[str] | str, *, n: int = 1) -> MealEvents | DailyMeals:
    """Read a fixed meal schedule from a TOML scenario file (format in the module docstring).

    Parameters
    ----------
    path
        The scenario file.
    n
        Participants who share the schedule (``[[meal]]`` files; the events are repeated for
        each). Daily schedules serve any number of participants.

    Returns
    -------
    MealEvents or DailyMeals
        :class:`~isletsim.meals.MealEvents` (absolute minutes ``day * 1440 + time``) for a
        ``[[meal]]`` file, :class:`~isletsim.meals.DailyMeals` for a ``[[daily]]`` file.

    Raises
    ------
    ScenarioFileError
        Naming the file, the key (e.g. ``meal[2].time``, items counted from 1) and the value:
        not TOML, unknown or missing keys, neither or both of ``meal`` and ``daily``, days
        < 0, impossible times (``"25:00"``), negative or non-finite grams, wrong types.
    """
    file = str(path)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n!r}")
    try:
        with Path(path).open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(file, f"not valid TOML: {exc}") from exc
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ScenarioFileError(file, "no such scenario file") from exc
    try:
        doc = _ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        raise _error_from_pydantic(file, exc) from None
    if (doc.meal is None) == (doc.daily is None):
        raise ScenarioFileError(
            file, "needs exactly one of [[meal]] (meals on given days) or [[daily]] (every day)"
        )
    if doc.daily is not None:
        return DailyMeals(tuple(sorted((m.time, m.grams) for m in doc.daily)))
    assert doc.meal is not None
    one = [(m.day * MINUTES_PER_DAY + m.time, m.grams) for m in doc.meal]
    return MealEvents.from_lists([one] * int(n))


def write_scenario(
    path: os.PathLike[str] | str,
    meals: MealEvents | DailyMeals,
    *,
    participant: int = 0,
    name: str | None = None,
) -> Path:
    """Write a fixed schedule as a scenario file that :func:`load_scenario` reads back.

    Parameters
    ----------
    path
        Output file (overwritten).
    meals
        Daily meals (written as ``[[daily]]``) or events (``[[meal]]``, those of one
        participant).
    participant
        Which participant of ``meals`` (:class:`~isletsim.meals.MealEvents` only).
    name
        Optional scenario name.

    Returns
    -------
    Path
        ``path``. Grams are written with ``repr`` so that floats read back exactly.
    """
    lines = [] if name is None else [f"name = {_toml_string(name)}", ""]
    if isinstance(meals, DailyMeals):
        for minute, grams in meals.meals:
            lines += ["[[daily]]", f'time = "{format_clock(int(minute))}"',
                      f"grams = {float(grams)!r}", ""]  # fmt: skip
    else:
        n = meals.ptr.shape[0] - 1
        if not 0 <= participant < n:
            raise ValueError(f"participant must be within 0..{n - 1}, got {participant}")
        ev = meals.slice(participant, participant + 1)
        for minute, grams in zip(ev.minute.tolist(), ev.grams.tolist(), strict=True):
            day, clock = divmod(int(minute), MINUTES_PER_DAY)
            lines += ["[[meal]]", f"day = {day}", f'time = "{format_clock(clock)}"',
                      f"grams = {float(grams)!r}", ""]  # fmt: skip
    out = Path(path)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


__all__ = [
    "DEFAULT_PATTERN",
    "MEAL_PATTERNS",
    "N_EXTRA_HABIT_UNIFORMS",
    "N_UNIFORMS_PER_CANDIDATE",
    "CandidateMeal",
    "HabitSpread",
    "MealDraws",
    "MealHabits",
    "MealPattern",
    "ScenarioFileError",
    "clock_minutes",
    "draw_meals",
    "format_clock",
    "load_scenario",
    "random_meals",
    "sample_habits",
    "write_scenario",
]
