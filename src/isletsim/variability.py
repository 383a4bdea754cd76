"""Day-to-day and circadian variability of insulin sensitivity (opt-in).

Without it the virtual participants have the same physiology every day and only the meals
vary, so a fixed insulin therapy controls them better than real people. The UVA/Padova
simulator adds intra-day variability of insulin sensitivity (SI) by making the parameters of
insulin action time-varying (Visentin R et al., "Circadian variability of insulin
sensitivity: physiological input for in silico artificial pancreas", *Diabetes Technol Ther*
2015;17:1-7; Visentin R et al., "The UVA/Padova type 1 diabetes simulator goes from single
meal to single day", *J Diabetes Sci Technol* 2018;12:273-281). Here a per-participant
multiplier ``s(t) >= 0`` scales ``Vmx`` and ``kp3`` (:mod:`isletsim.model.uva_padova`) and is
passed to the engine as ``simulate(..., insulin_sensitivity=...)``:

    s(i, t) = D(i, day(t)) * C(clock(t))

* ``D``: a day-to-day factor, lognormal with mean 1 and coefficient of variation ``cv``,
  whose logarithm is a stationary AR(1) across days with lag-1 correlation ``rho``; constant
  within a calendar day.
* ``C``: a circadian profile, piecewise linear in clock time: 1 outside a dawn window, a dip
  to ``dawn_nadir_factor`` at ``dawn_nadir_hour`` (the dawn phenomenon; SI lowest at
  breakfast, Visentin 2015), scaled to a 24-h mean of 1.

The engine evaluates the callable at every control step of the therapy policy and holds the
value over the step, so the circadian profile is resolved to the control period (e.g. 3 min
for :class:`~isletsim.therapy.BasalBolus`; ``OpenLoop()`` steps once a day, so use
``OpenLoop(control_period_min=5)`` to see the profile).

All parameter values are unverified [U] (``params/variability/insulin_sensitivity.toml`` and
its README). Participant ``i``'s draws come from its own :class:`numpy.random.Generator`
(spawn key ``(purpose, i)`` of the seed), so they depend only on the seed and ``i``: never on
the number of participants or on batching.

>>> import isletsim as isl
>>> from isletsim.variability import InsulinSensitivity
>>> si = InsulinSensitivity(2, days=3, seed=1)
>>> run = isl.simulate(["adult#001", "adult#002"], days=3, insulin_sensitivity=si)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources

import numpy as np
from numpy.typing import ArrayLike, NDArray

from isletsim.params.toml_file import checked_values_or_overrides, load_checked_values

#: The packaged parameter file, as named in error messages.
PARAM_FILE = "isletsim/params/variability/insulin_sensitivity.toml"
#: Entries of the parameter file, in order.
PARAM_NAMES: tuple[str, ...] = (
    "day_to_day_cv",
    "day_to_day_rho",
    "dawn_start_hour",
    "dawn_nadir_hour",
    "dawn_end_hour",
    "dawn_nadir_factor",
)
MINUTES_PER_DAY = 1440
#: First element of every participant's spawn key (ASCII "ISV"): keeps these streams apart
#: from other uses of the same integer seed (e.g. :func:`isletsim.therapy.graft.
#: participant_streams`, whose keys are ``(i,)``).
_PURPOSE = 0x495356


def _problem(name: str, v: float, values: Mapping[str, float]) -> str | None:
    """Why ``v`` is unacceptable for parameter ``name`` (None when it is fine)."""
    if name == "day_to_day_cv" and v < 0.0:
        return "must be >= 0"
    if name == "day_to_day_rho" and not -1.0 < v < 1.0:
        return "must be in (-1, 1)"
    if name.endswith("_hour") and not 0.0 <= v <= 24.0:
        return "must be a clock hour in [0, 24]"
    if name == "dawn_nadir_hour" and v <= values.get("dawn_start_hour", -math.inf):
        return "must be > dawn_start_hour"
    if name == "dawn_end_hour" and v <= values.get("dawn_nadir_hour", -math.inf):
        return "must be > dawn_nadir_hour"
    if name == "dawn_nadir_factor" and v <= 0.0:
        return "must be > 0"
    return None


@cache
def _packaged() -> dict[str, float]:
    path = resources.files("isletsim.params") / "variability" / "insulin_sensitivity.toml"
    return {k: float(v) for k, v in load_checked_values(
        path, label=PARAM_FILE, names=PARAM_NAMES, problem=_problem).items()}  # fmt: skip


def load_insulin_sensitivity_params(
    params: Mapping[str, float] | os.PathLike[str] | str | None = None,
) -> dict[str, float]:
    """The parameters of :class:`InsulinSensitivity`, checked.

    Parameters
    ----------
    params
        ``None``: the packaged file; a path: another file with the same entries; a mapping:
        values replacing those of the packaged file (checked together with them).

    Returns
    -------
    dict of str to float
        A fresh dict, keys :data:`PARAM_NAMES`.

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        A :class:`ValueError` naming the file (``... (overrides)`` for a mapping), the
        parameter and the field.
    """
    return checked_values_or_overrides(
        params, _packaged, label=PARAM_FILE, names=PARAM_NAMES, problem=_problem
    )


def circadian_profile(params: Mapping[str, float]) -> NDArray[np.float64]:
    """The circadian multiplier at each minute of the day, (1440,), mean 1.

    1 outside ``[dawn_start_hour, dawn_end_hour]``, linear to ``dawn_nadir_factor`` at
    ``dawn_nadir_hour`` and back (the dawn phenomenon; SI lowest at breakfast, Visentin 2015
    [U]), then divided by its mean so that the profile does not change daily insulin action.
    Minute ``m`` holds the value at ``m`` minutes past midnight.
    """
    hours = np.arange(MINUTES_PER_DAY) / 60.0
    knots_h = [0.0, params["dawn_start_hour"], params["dawn_nadir_hour"],
               params["dawn_end_hour"], 24.0]  # fmt: skip
    knots_v = [1.0, 1.0, params["dawn_nadir_factor"], 1.0, 1.0]
    profile = np.interp(hours, knots_h, knots_v)
    return np.ascontiguousarray(profile / profile.mean())


def daily_factors(
    streams: list[np.random.Generator], days: int, cv: float, rho: float
) -> NDArray[np.float64]:
    """Day-to-day factors, (len(streams), days): lognormal, mean 1, CV ``cv``, AR(1) logs.

    ``log D_d = sigma z_d - sigma^2/2`` with ``sigma^2 = log(1 + cv^2)``, ``z_0 ~ N(0, 1)`` and
    ``z_d = rho z_(d-1) + sqrt(1 - rho^2) e_d`` (stationary: every day has mean 1 and CV
    ``cv``; lag-1 correlation of ``log D`` is ``rho``). Participant ``i`` uses only
    ``streams[i]`` (``days`` standard normals, in day order, so the first k days do not depend
    on ``days``).
    """
    n = len(streams)
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    e = np.empty((n, days))
    for i, rng in enumerate(streams):
        e[i] = rng.standard_normal(days)
    z = np.empty_like(e)
    if days:
        z[:, 0] = e[:, 0]
        innov = math.sqrt(1.0 - rho * rho)
        for d in range(1, days):
            z[:, d] = rho * z[:, d - 1] + innov * e[:, d]
    sigma = math.sqrt(math.log1p(cv * cv))
    return np.exp(sigma * z - 0.5 * sigma * sigma)


class InsulinSensitivity:
    """Per-participant time-varying insulin sensitivity, a callable ``day -> (N,)`` array.

    Pass an instance to :func:`isletsim.simulate` as ``insulin_sensitivity``; the engine
    evaluates it at every control step. Evaluation is a table lookup (a precomputed
    (N, days) table of day-to-day factors times a per-minute circadian profile): one
    multiplication of N values per call.

    Parameters
    ----------
    n_participants
        Number of participants N (rows, in the engine's participant order).
    days
        Days to cover (a float is rounded up to whole days); calls for a day at or past the
        end raise ValueError.
    seed
        Root entropy (int >= 0) or a :class:`numpy.random.SeedSequence`. Participant ``i``
        (``start + row``) draws from ``SeedSequence(seed, spawn_key=(purpose, i))`` for an int
        (a purpose key of its own, so the same integer seed used elsewhere gives unrelated
        draws), or from the ``i``-th child of a given sequence.
    params
        Parameter overrides (mapping), another parameter file (path) or ``None`` for the
        packaged ``params/variability/insulin_sensitivity.toml`` (see
        :func:`load_insulin_sensitivity_params`).
    circadian
        Whether to apply the circadian (dawn) profile; False: the day-to-day factor only.
    day_to_day
        Whether to apply the day-to-day factor; False: the circadian profile only.
    start
        Index of the first participant, for batches: rows ``start .. start + N - 1`` of a
        larger cohort get the same values as in a single run.

    Attributes
    ----------
    params : dict of the parameter values used.
    factors : (N, days) day-to-day factors (ones when ``day_to_day`` is False).
    profile : (1440,) circadian multiplier per minute of the day, mean 1 (ones when
        ``circadian`` is False).

    Raises
    ------
    ValueError
        Bad ``n_participants``, ``days``, ``seed`` or ``start``;
        :class:`~isletsim.params.toml_file.ParameterFileError` (a ValueError) for bad
        parameters, naming the file and the key.
    """

    def __init__(
        self,
        n_participants: int,
        days: float,
        seed: int | np.random.SeedSequence = 0,
        *,
        params: Mapping[str, float] | os.PathLike[str] | str | None = None,
        circadian: bool = True,
        day_to_day: bool = True,
        start: int = 0,
    ) -> None:
        from isletsim.therapy.graft import participant_streams

        if not isinstance(n_participants, int | np.integer) or n_participants < 0:
            raise ValueError(f"n_participants must be an integer >= 0, got {n_participants!r}")
        if not isinstance(days, int | float | np.number) or not math.isfinite(days) or days <= 0:
            raise ValueError(f"days must be a finite number > 0, got {days!r}")
        if isinstance(seed, np.random.SeedSequence):
            root = seed
        elif isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
            root = np.random.SeedSequence(int(seed), spawn_key=(_PURPOSE,))
        else:
            raise ValueError(f"seed must be an integer >= 0 or a SeedSequence, got {seed!r}")
        self.params = load_insulin_sensitivity_params(params)
        self.n_participants = int(n_participants)
        self.days = math.ceil(days)
        n = self.n_participants
        if day_to_day:
            streams = participant_streams(root, n, start=start)
            self.factors = daily_factors(
                streams, self.days, self.params["day_to_day_cv"], self.params["day_to_day_rho"]
            )
        else:
            self.factors = np.ones((n, self.days))
        # day-major copy: one contiguous row per day for the lookup
        self._by_day = np.ascontiguousarray(self.factors.T)
        self.profile = circadian_profile(self.params) if circadian else np.ones(MINUTES_PER_DAY)

    def __call__(self, day: float) -> NDArray[np.float64]:
        """Insulin sensitivity of every participant at ``day`` (days since the start).

        The day is resolved to the nearest minute. Returns a fresh contiguous (N,) float64
        array.

        Raises
        ------
        ValueError
            If ``day`` is negative, not finite, or at or past the end of the table.
        """
        if not 0.0 <= day < math.inf:
            raise ValueError(f"day must be finite and >= 0, got {day!r}")
        minute = round(day * MINUTES_PER_DAY)
        d, m = divmod(minute, MINUTES_PER_DAY)
        if d >= self.days:
            raise ValueError(
                f"day {day!r} is past the {self.days} day(s) this InsulinSensitivity covers"
            )
        return self._by_day[d] * self.profile[m]

    @classmethod
    def concatenate(cls, parts: Sequence[InsulinSensitivity]) -> InsulinSensitivity:
        """Several populations' draws as one (participants in order; same days, profile)."""
        if not parts:
            raise ValueError("concatenate needs at least one InsulinSensitivity")
        first = parts[0]
        for q in parts[1:]:
            if q.days != first.days or not np.array_equal(q.profile, first.profile):
                raise ValueError("concatenate: parts differ in days or daily profile")
        out = copy.copy(first)
        out.factors = np.concatenate([q.factors for q in parts], axis=0)
        out.n_participants = int(out.factors.shape[0])
        out._by_day = np.ascontiguousarray(out.factors.T)
        return out

    def subset(self, rows: ArrayLike) -> InsulinSensitivity:
        """The same draws for the participants ``rows`` only (indices, in that order)."""
        idx = np.asarray(rows, dtype=np.intp)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= self.n_participants)):
            raise ValueError(f"rows must be a 1-D array of indices in 0..{self.n_participants - 1}")
        out = copy.copy(self)
        out.n_participants = int(idx.size)
        out.factors = self.factors[idx]
        out._by_day = np.ascontiguousarray(out.factors.T)
        return out

    def __repr__(self) -> str:
        return (
            f"InsulinSensitivity({self.n_participants} participant(s), {self.days} day(s), "
            f"cv={self.params['day_to_day_cv']:g}, rho={self.params['day_to_day_rho']:g})"
        )


__all__ = [
    "PARAM_FILE",
    "PARAM_NAMES",
    "InsulinSensitivity",
    "circadian_profile",
    "daily_factors",
    "load_insulin_sensitivity_params",
]
