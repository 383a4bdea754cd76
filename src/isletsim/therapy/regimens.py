"""Standard insulin regimens: multiple daily injections (MDI) and pump therapy (CSII).

Both regimens are :class:`~isletsim.therapy.base.Therapy` policies vectorised over
participants (numpy arrays, no loop over participants at a control step except to refill
random draws), with the same three building blocks:

* **Therapy settings** (:class:`TherapySettings`, :func:`derive_settings`) per participant:
  carb ratio ``CR`` and correction factor ``CF`` from the patient table or from the Walsh
  "500" and "1800" rules on ``TDI``; basal from ``u2ss`` (the rate that holds the model at
  its basal glucose, science reference 1.4) or a share of ``TDI`` (10.1).
* **Bolus behaviour** (:class:`BolusBehaviour`), implemented once and used by both regimens:
  a per-participant carb-counting bias (lognormal across participants) times a per-meal
  lognormal error with mean 1, missed boluses (probability per meal) and late boluses
  (probability, uniform extra delay). The bolus calculator then sees the *estimated*
  carbohydrate of a meal (0 for a missed bolus; a late bolus is calculated when it is given,
  with the CGM of that moment).
* **Basal titration** (:class:`BasalTitration`, optional): every ``titration_interval_days``
  the clinician looks at the mean fasting CGM (05:00-07:00) of the last
  ``titration_days_averaged`` days and moves the basal dose by ``-step / 0 / +step`` U/day
  (the "2-0-2" shape), down also after any fasting CGM below ``titration_hypo_mg_dl``;
  the dose stays within ``[min_factor, max_factor]`` times the starting dose.

Regimens:

* :class:`PumpTherapy` (CSII) wraps :class:`~isletsim.therapy.BasalBolus` (the bolus
  calculator, pump rounding and timing are *that* policy's, reused not copied): the inner
  policy sees the observation with the announced carbohydrate replaced by what the
  participant boluses for. With every behaviour off, table settings and no titration it
  delivers exactly what ``BasalBolus`` delivers.
* :class:`MultipleDailyInjections` (MDI): a once-daily long-acting injection (22:00) into a
  subcutaneous depot of ``depot_compartments`` identical first-order compartments in series
  with mean absorption time ``depot_mean_absorption_h`` (a gamma-shaped release, glargine
  U100-like: peak/trough 1.6 at steady state, [U]); what leaves the depot over a control
  period enters the model's subcutaneous insulin input as a constant rate over that period
  (so it is further delayed by the model's own s.c. absorption, ``kd, ka1, ka2``; a
  simplification). The depot starts at the periodic steady state of daily injections of the
  starting dose, so day 1 is no wash-in. Basal dose = the settings' basal in U/day rounded
  to the pen step. Meal boluses of rapid-acting insulin come from a ``BasalBolus``
  calculator whose "pump" rounds each bolus to the pen step (0.5 U) and clips it at the pen
  maximum; correction ``(CGM - target) / CF`` when CGM exceeds the threshold.

Random streams: participant ``key``'s stream is ``SeedSequence(seed, spawn_key=(purpose,
*key.encode()))`` with ``key`` the table's ``Name`` (or index), so draws depend only on the
seed and the participant's name, never on batching or table order. All the draws of a meal
(noise, missed, late, delay) are taken together from the participant's stream, so turning a
behaviour off leaves the other draws of the meal unchanged (common random numbers).

Parameters: ``isletsim/params/therapy/regimens.toml`` (every value [U], see its README).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from math import factorial
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numba as nb
import numpy as np
import pandas as pd

from isletsim.params.toml_file import (
    ParameterEntry,
    ParameterFileError,
    check_tags,
    load_parameter_path,
    numeric_values,
    sources,
)
from isletsim.seeding import assembled_entropy, generators
from isletsim.therapy.basal_bolus import BasalBolus, _BoundBasalBolus
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy, basal_u_per_min
from isletsim.therapy.pump import Pump

#: The native float64 dtype (an identity check is cheaper than ``==`` on hot paths; a
#: float64 array with another dtype object just takes the general path).
_F64 = np.dtype(np.float64)

MINUTES_PER_DAY = 1440
#: Package-relative name of the parameter file (in error messages).
PARAM_FILE = "isletsim/params/therapy/regimens.toml"
#: Parameters of ``regimens.toml``.
REGIMEN_NAMES: tuple[str, ...] = (
    "basal_share_of_tdi",
    "carb_ratio_rule_constant",
    "correction_factor_rule_constant",
    "carb_bias_median",
    "carb_bias_sd_log",
    "carb_noise_cv",
    "missed_bolus_probability",
    "late_bolus_probability",
    "late_bolus_min_delay_min",
    "late_bolus_max_delay_min",
    "basal_injection_minute",
    "depot_compartments",
    "depot_mean_absorption_h",
    "basal_pen_increment_u",
    "bolus_pen_increment_u",
    "pen_max_dose_u",
    "mdi_correction_target_mg_dl",
    "mdi_correction_threshold_mg_dl",
    "titration_interval_days",
    "titration_days_averaged",
    "titration_fasting_start_minute",
    "titration_fasting_end_minute",
    "titration_low_mg_dl",
    "titration_high_mg_dl",
    "titration_hypo_mg_dl",
    "titration_step_u_per_day",
    "titration_min_factor",
    "titration_max_factor",
)
_REQUIRED_KEYS = ("value", "unit", "source", "tag", "verified")
#: Must be > 0 (all others >= 0).
_POSITIVE = frozenset(
    {"basal_share_of_tdi", "carb_ratio_rule_constant", "correction_factor_rule_constant",
     "carb_bias_median", "depot_compartments", "depot_mean_absorption_h",
     "basal_pen_increment_u", "bolus_pen_increment_u", "pen_max_dose_u",
     "mdi_correction_target_mg_dl", "titration_interval_days", "titration_days_averaged",
     "titration_high_mg_dl", "titration_max_factor"}
)  # fmt: skip
#: Must be whole numbers.
_INTEGER = frozenset(
    {"basal_injection_minute", "depot_compartments", "titration_interval_days",
     "titration_days_averaged", "titration_fasting_start_minute", "titration_fasting_end_minute"}
)  # fmt: skip
#: Must be at most 1.
_AT_MOST_ONE = frozenset({"basal_share_of_tdi", "missed_bolus_probability",
                          "late_bolus_probability"})  # fmt: skip
#: Minutes of the day: must be < 1440 (fasting end may equal 1440).
_MINUTE_OF_DAY = frozenset({"basal_injection_minute", "titration_fasting_start_minute"})
#: (smaller, larger) pairs that must be ordered.
_ORDERED = (
    ("late_bolus_min_delay_min", "late_bolus_max_delay_min"),
    ("titration_fasting_start_minute", "titration_fasting_end_minute"),
    ("titration_low_mg_dl", "titration_high_mg_dl"),
    ("titration_min_factor", "titration_max_factor"),
)
#: Purpose words mixed into the per-participant seeds (one per random process).
_PURPOSE_BOLUS = 0x4B0105
#: Meals of random draws generated at a time per participant.
_BLOCK = 16


# ============================================================================ parameters
def _read(path: Traversable | Path | str, label: str) -> dict[str, ParameterEntry]:
    entries = load_parameter_path(
        path, label=label, expected=REGIMEN_NAMES, required_keys=_REQUIRED_KEYS,
        allowed_keys=(*_REQUIRED_KEYS, "note"),
    )  # fmt: skip
    check_tags(entries, file=label)
    return entries


@cache
def _packaged() -> dict[str, ParameterEntry]:
    return _read(resources.files("isletsim.params") / "therapy" / "regimens.toml", PARAM_FILE)


def check_regimen_parameters(values: Mapping[str, float], where: str) -> None:
    """Check values of ``regimens.toml`` (ranges, whole numbers, ordered pairs).

    Parameters
    ----------
    values
        Parameter name to value (all of :data:`REGIMEN_NAMES`, or a subset for overrides
        merged over the file).
    where
        Name of the file (or ``"...(overrides)"``) in error messages.

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        Naming ``where``, the parameter and the offending value.
    """
    for name, v in values.items():
        if name not in REGIMEN_NAMES:
            raise ParameterFileError(
                where, f"unknown parameter; known: {', '.join(REGIMEN_NAMES)}", parameter=name
            )
        bad = None
        if not np.isfinite(v) or v < 0 or (name in _POSITIVE and v == 0):
            bad = "finite and > 0" if name in _POSITIVE else "finite and >= 0"
        elif name in _INTEGER and v != int(v):
            bad = "a whole number"
        elif name in _AT_MOST_ONE and v > 1:
            bad = "at most 1"
        elif name in _MINUTE_OF_DAY and v >= MINUTES_PER_DAY:
            bad = "a minute of the day (< 1440)"
        elif name == "titration_fasting_end_minute" and v > MINUTES_PER_DAY:
            bad = "a minute of the day (<= 1440)"
        if bad is not None:
            raise ParameterFileError(
                where, f"must be {bad}, got {v!r}", parameter=name, field="value"
            )
    for lo, hi in _ORDERED:
        if lo in values and hi in values and values[lo] > values[hi]:
            raise ParameterFileError(
                where,
                f"must be >= {lo} ({values[lo]!r}), got {values[hi]!r}",
                parameter=hi,
                field="value",
            )


def load_regimen_parameters(
    path: Path | str | None = None, overrides: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Values of ``regimens.toml`` by name, checked.

    Parameters
    ----------
    path
        Another file with the same layout (default: the packaged file).
    overrides
        Values replacing those of the file (checked together with the file's).

    Returns
    -------
    dict of str to float
        A fresh dict on every call.

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        Naming the file (or ``... (overrides)``), the parameter and the field: a missing or
        unknown parameter or field, a wrong tag, or a value out of range.
    """
    if path is None:
        label, entries = PARAM_FILE, _packaged()
    else:
        label, entries = str(path), _read(Path(path), str(path))
    values = numeric_values(entries, file=label)
    check_regimen_parameters(values, label)
    if overrides:
        where = f"{label} (overrides)"
        extra = {k: float(v) for k, v in overrides.items()}
        check_regimen_parameters(extra, where)
        values.update(extra)
        check_regimen_parameters(values, where)
    return values


def regimen_sources() -> pd.DataFrame:
    """The regimen parameters with unit, source, tag, verification and note."""
    return sources(_packaged())


# ============================================================================ streams
def participant_keys(patients: pd.DataFrame) -> list[str]:
    """Stable participant keys: the ``Name`` column, else the table index as text."""
    if "Name" in patients:
        return [str(s) for s in patients["Name"]]
    return [str(s) for s in patients.index]


def participant_rng(seed: int, key: str, purpose: int) -> np.random.Generator:
    """Random stream of one participant: depends only on ``seed``, ``key`` and ``purpose``
    (``SeedSequence(seed, spawn_key=(purpose, *UTF-8 bytes of key))``)."""
    return participant_rngs(seed, [key], purpose)[0]


def participant_rngs(seed: int, keys: Sequence[str], purpose: int) -> list[np.random.Generator]:
    """:func:`participant_rng` of every key, built together (:mod:`isletsim.seeding`)."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    return generators([assembled_entropy(seed, (purpose, *k.encode("utf-8"))) for k in keys])


# ============================================================================ settings
@dataclass(frozen=True)
class TherapySettings:
    """How a participant's therapy settings are derived.

    Parameters
    ----------
    carb_ratio
        ``"table"``: the patient column ``CR``; ``"rule"``: ``carb_ratio_rule_constant / TDI``
        (Walsh 500 rule).
    correction_factor
        ``"table"``: the column ``CF``; ``"rule"``: ``correction_factor_rule_constant / TDI``
        (1800 rule).
    basal
        ``"u2ss"``: ``u2ss * BW / 6000`` U/min, the rate holding the model at basal glucose;
        ``"tdi_share"``: ``basal_share_of_tdi * TDI`` per day.
    basal_scale
        Multiplies the derived basal (e.g. 0.7 for a participant whose basal is set too low,
        to study titration).
    """

    carb_ratio: Literal["table", "rule"] = "table"
    correction_factor: Literal["table", "rule"] = "table"
    basal: Literal["u2ss", "tdi_share"] = "u2ss"
    basal_scale: float = 1.0

    def __post_init__(self) -> None:
        for name, allowed in (("carb_ratio", ("table", "rule")),
                              ("correction_factor", ("table", "rule")),
                              ("basal", ("u2ss", "tdi_share"))):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not np.isfinite(self.basal_scale) or self.basal_scale <= 0:
            raise ValueError(f"basal_scale must be finite and > 0, got {self.basal_scale!r}")


def _positive_column(patients: pd.DataFrame, name: str) -> np.ndarray:
    if name not in patients:
        raise ValueError(f"therapy settings need the patient column {name!r}")
    col = patients[name].to_numpy(float)
    if not np.all(np.isfinite(col)) or (col <= 0).any():
        raise ValueError(f"patient column {name!r} must be finite and > 0 for every participant")
    return col


#: Optional patient column multiplying the derived basal (a mis-set basal; see derive_settings).
BASAL_FACTOR_COLUMN = "basal_setting_factor"


def derive_settings(
    patients: pd.DataFrame,
    settings: TherapySettings | None = None,
    values: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Carb ratio, correction factor and basal of each participant.

    Parameters
    ----------
    patients
        Patient table (columns ``CR, CF, TDI, BW, u2ss`` as needed by ``settings``). An
        optional column ``basal_setting_factor`` (finite, > 0) multiplies each participant's
        derived basal: a mis-set basal relative to the model-optimal one (written by
        :func:`isletsim.population.sample_population`; absent means 1).
    settings
        Derivation rules (default :class:`TherapySettings`: all from the table / ``u2ss``).
    values
        Regimen parameters (default: :func:`load_regimen_parameters`).

    Returns
    -------
    pandas.DataFrame
        Same index as ``patients``; columns ``CR`` (g/U), ``CF`` (mg/dL per U),
        ``basal_u_per_min`` and ``basal_u_per_day``.
    """
    settings = TherapySettings() if settings is None else settings
    prm = load_regimen_parameters() if values is None else values
    if settings.carb_ratio == "table":
        cr = _positive_column(patients, "CR")
    else:
        cr = prm["carb_ratio_rule_constant"] / _positive_column(patients, "TDI")
    if settings.correction_factor == "table":
        cf = _positive_column(patients, "CF")
    else:
        cf = prm["correction_factor_rule_constant"] / _positive_column(patients, "TDI")
    if settings.basal == "u2ss":
        _positive_column(patients, "u2ss")
        _positive_column(patients, "BW")
        basal = basal_u_per_min(patients)
    else:
        basal = prm["basal_share_of_tdi"] * _positive_column(patients, "TDI") / MINUTES_PER_DAY
    if settings.basal_scale != 1.0:
        basal = basal * settings.basal_scale
    if BASAL_FACTOR_COLUMN in patients:
        basal = basal * _positive_column(patients, BASAL_FACTOR_COLUMN)
    return pd.DataFrame(
        {"CR": cr, "CF": cf, "basal_u_per_min": basal, "basal_u_per_day": basal * MINUTES_PER_DAY},
        index=patients.index,
    )


def _calculator_table(patients: pd.DataFrame, s: pd.DataFrame) -> pd.DataFrame:
    """The patient table the inner bolus calculator sees (CR and CF from the settings)."""
    if np.array_equal(patients["CR"].to_numpy(float), s["CR"].to_numpy()) and np.array_equal(
        patients["CF"].to_numpy(float), s["CF"].to_numpy()
    ):
        return patients
    table = patients.copy()
    table["CR"] = s["CR"].to_numpy()
    table["CF"] = s["CF"].to_numpy()
    return table


# ============================================================================ bolus behaviour
@dataclass(frozen=True)
class BolusBehaviour:
    """Carb-counting error, missed and late boluses (shared by MDI and pump therapy).

    For meal ``m`` of participant ``i`` with true carbohydrate ``G`` the participant boluses
    for ``G * b_i * e_im`` grams, where ``b_i = carb_bias_median * exp(carb_bias_sd_log * z_i)``
    and ``e_im = exp(s * z_im - s**2 / 2)``, ``s = sqrt(log(1 + carb_noise_cv**2))``
    (lognormal, mean 1). With probability ``missed_probability`` the meal gets no bolus;
    otherwise with probability ``late_probability`` the bolus is given
    ``U(late_min_delay_min, late_max_delay_min)`` minutes late (at the first decision at or
    after that time, with the CGM of that moment for the correction). Late boluses of several
    meals that are pending together are given together at the first one's time.

    Parameters
    ----------
    carb_bias_median, carb_bias_sd_log, carb_noise_cv, missed_probability,
    late_probability, late_min_delay_min, late_max_delay_min
        See ``regimens.toml``.
    seed
        Root of the per-participant streams (integer >= 0).
    """

    carb_bias_median: float = 1.0
    carb_bias_sd_log: float = 0.0
    carb_noise_cv: float = 0.0
    missed_probability: float = 0.0
    late_probability: float = 0.0
    late_min_delay_min: float = 0.0
    late_max_delay_min: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_regimen_parameters(
            {
                "carb_bias_median": self.carb_bias_median,
                "carb_bias_sd_log": self.carb_bias_sd_log,
                "carb_noise_cv": self.carb_noise_cv,
                "missed_bolus_probability": self.missed_probability,
                "late_bolus_probability": self.late_probability,
                "late_bolus_min_delay_min": self.late_min_delay_min,
                "late_bolus_max_delay_min": self.late_max_delay_min,
            },
            "BolusBehaviour",
        )
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    @classmethod
    def from_parameters(
        cls, values: Mapping[str, float] | None = None, *, seed: int = 0
    ) -> BolusBehaviour:
        """The behaviour of ``regimens.toml`` (or of ``values``) with the given seed."""
        v = load_regimen_parameters() if values is None else values
        return cls(
            carb_bias_median=v["carb_bias_median"],
            carb_bias_sd_log=v["carb_bias_sd_log"],
            carb_noise_cv=v["carb_noise_cv"],
            missed_probability=v["missed_bolus_probability"],
            late_probability=v["late_bolus_probability"],
            late_min_delay_min=v["late_bolus_min_delay_min"],
            late_max_delay_min=v["late_bolus_max_delay_min"],
            seed=seed,
        )

    @classmethod
    def perfect(cls) -> BolusBehaviour:
        """Exact carb counting, every bolus on time."""
        return cls()

    def bind(self, keys: list[str]) -> BoundBolusBehaviour:
        """Per-participant state for participants with stable ``keys``."""
        return BoundBolusBehaviour(self, keys)


class BoundBolusBehaviour:
    """:class:`BolusBehaviour` for N participants (arrays of shape (N,)).

    Attributes
    ----------
    meals, missed, late : numpy.ndarray
        Counts per participant of meals seen, boluses missed and boluses given late.
    bias : numpy.ndarray
        Per-participant carb-counting bias ``b_i``.
    """

    def __init__(self, behaviour: BolusBehaviour, keys: list[str]) -> None:
        self.b = behaviour
        n = len(keys)
        self.active = (
            behaviour.carb_bias_sd_log > 0 or behaviour.carb_bias_median != 1.0
            or behaviour.carb_noise_cv > 0 or behaviour.missed_probability > 0
            or behaviour.late_probability > 0
        )  # fmt: skip
        self.rngs = (
            participant_rngs(behaviour.seed, keys, _PURPOSE_BOLUS)
            if self.active else []
        )  # fmt: skip
        z_bias = np.array([g.standard_normal() for g in self.rngs]) if self.rngs else np.zeros(n)
        self.bias = behaviour.carb_bias_median * np.exp(behaviour.carb_bias_sd_log * z_bias)
        self.sigma = float(np.sqrt(np.log1p(behaviour.carb_noise_cv**2)))
        # per meal: [normal noise, U missed, U late, U delay]
        self.draws = np.zeros((n, _BLOCK, 4))
        self.cursor = np.full(n, _BLOCK, dtype=np.int64)
        self.pending_g = np.zeros(n)
        self.due_t = np.full(n, np.inf)
        self.meals = np.zeros(n, dtype=np.int64)
        self.missed = np.zeros(n, dtype=np.int64)
        self.late = np.zeros(n, dtype=np.int64)

    def _refill(self, idx: np.ndarray) -> None:
        """A new block of draws for participants ``idx`` (from their own streams)."""
        for i in idx:
            g = self.rngs[i]
            block = np.empty((_BLOCK, 4))
            block[:, 0] = g.standard_normal(_BLOCK)
            block[:, 1:] = g.random((_BLOCK, 3))
            self.draws[i] = block
            self.cursor[i] = 0

    def _next_draws(self, idx: np.ndarray) -> np.ndarray:
        self._refill(idx[self.cursor[idx] >= _BLOCK])
        out = self.draws[idx, self.cursor[idx]]
        self.cursor[idx] += 1
        return out

    def grams_to_bolus(self, t: int, announced_g: np.ndarray) -> np.ndarray:
        """Grams each participant boluses for at the decision at minute ``t``.

        Parameters
        ----------
        t
            Minute of the decision.
        announced_g
            Carbohydrate eaten (announced) during the previous control period.

        Returns
        -------
        numpy.ndarray
            ``announced_g`` itself when every behaviour is off.
        """
        if not self.active:
            return announced_g
        if (
            type(announced_g) is np.ndarray and announced_g.dtype is _F64
            and announced_g.shape == self.due_t.shape
        ):  # fmt: skip
            # the compiled path; it declines (touching nothing) when a participant who
            # announced a meal has used up their block of draws, which are refilled here
            out = np.empty(announced_g.shape[0])
            b = self.b
            args = (
                t, announced_g, self.draws, self.cursor, self.bias, self.sigma,
                b.missed_probability, b.late_probability, b.late_min_delay_min,
                b.late_max_delay_min - b.late_min_delay_min,
                self.meals, self.missed, self.late, self.pending_g, self.due_t, out,
            )  # fmt: skip
            if _grams_to_bolus_kernel(*args):
                return out
            self._refill(np.flatnonzero((announced_g > 0) & (self.cursor >= _BLOCK)))
            if _grams_to_bolus_kernel(*args):
                return out
        b = self.b
        out = np.zeros_like(announced_g, dtype=np.float64)
        idx = np.flatnonzero(announced_g > 0)
        if idx.size:
            d = self._next_draws(idx)
            self.meals[idx] += 1
            noise = np.exp(self.sigma * d[:, 0] - 0.5 * self.sigma**2)
            est = announced_g[idx] * self.bias[idx] * noise
            missed = d[:, 1] < b.missed_probability
            late = ~missed & (d[:, 2] < b.late_probability)
            now = ~missed & ~late
            self.missed[idx[missed]] += 1
            self.late[idx[late]] += 1
            out[idx[now]] = est[now]
            li = idx[late]
            span = b.late_max_delay_min - b.late_min_delay_min
            delay = b.late_min_delay_min + d[late, 3] * span
            self.pending_g[li] += est[late]
            self.due_t[li] = np.minimum(self.due_t[li], t + delay)
        due = self.due_t <= t
        if due.any():
            out[due] += self.pending_g[due]
            self.pending_g[due] = 0.0
            self.due_t[due] = np.inf
        return out


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _grams_to_bolus_kernel(t, announced_g, draws, cursor, bias, sigma, p_missed, p_late,
                           late_min, late_span, meals, missed, late, pending_g, due_t,
                           out):  # fmt: skip
    """``grams_to_bolus`` for (N,) float arrays, the same operations per participant.

    Returns False, touching nothing, when a participant who announced a meal has no draw
    left in their block (the caller refills it and calls again).
    """
    n = out.shape[0]
    block = draws.shape[1]
    for i in range(n):
        if announced_g[i] > 0 and cursor[i] >= block:
            return False
    for i in range(n):
        out[i] = 0.0
        if announced_g[i] > 0:
            c = cursor[i]
            cursor[i] = c + 1
            meals[i] += 1
            noise = np.exp(sigma * draws[i, c, 0] - 0.5 * sigma**2)
            est = announced_g[i] * bias[i] * noise
            if draws[i, c, 1] < p_missed:
                missed[i] += 1
            elif draws[i, c, 2] < p_late:
                late[i] += 1
                pending_g[i] += est
                due_t[i] = min(due_t[i], t + (late_min + draws[i, c, 3] * late_span))
            else:
                out[i] = est
        if due_t[i] <= t:
            out[i] = out[i] + pending_g[i]
            pending_g[i] = 0.0
            due_t[i] = np.inf
    return True


# ============================================================================ titration
@dataclass(frozen=True)
class BasalTitration:
    """Clinician basal titration from fasting CGM (the "2-0-2" shape, [U]).

    Parameters
    ----------
    interval_days, days_averaged, fasting_start_minute, fasting_end_minute, low_mg_dl,
    high_mg_dl, hypo_mg_dl, step_u_per_day, min_factor, max_factor
        See ``regimens.toml`` (``titration_*``).
    """

    interval_days: int = 7
    days_averaged: int = 3
    fasting_start_minute: int = 300
    fasting_end_minute: int = 420
    low_mg_dl: float = 80.0
    high_mg_dl: float = 130.0
    hypo_mg_dl: float = 70.0
    step_u_per_day: float = 2.0
    min_factor: float = 0.5
    max_factor: float = 2.0

    def __post_init__(self) -> None:
        check_regimen_parameters(
            {f"titration_{k}": float(getattr(self, k)) for k in (
                "interval_days", "days_averaged", "fasting_start_minute", "fasting_end_minute",
                "low_mg_dl", "high_mg_dl", "hypo_mg_dl", "step_u_per_day", "min_factor",
                "max_factor")},
            "BasalTitration",
        )  # fmt: skip

    @classmethod
    def from_parameters(cls, values: Mapping[str, float] | None = None) -> BasalTitration:
        """The titration rule of ``regimens.toml`` (or of ``values``)."""
        v = load_regimen_parameters() if values is None else values
        return cls(
            interval_days=int(v["titration_interval_days"]),
            days_averaged=int(v["titration_days_averaged"]),
            fasting_start_minute=int(v["titration_fasting_start_minute"]),
            fasting_end_minute=int(v["titration_fasting_end_minute"]),
            low_mg_dl=v["titration_low_mg_dl"],
            high_mg_dl=v["titration_high_mg_dl"],
            hypo_mg_dl=v["titration_hypo_mg_dl"],
            step_u_per_day=v["titration_step_u_per_day"],
            min_factor=v["titration_min_factor"],
            max_factor=v["titration_max_factor"],
        )


class _TitrationState:
    """Fasting CGM bookkeeping and basal reviews for N participants."""

    def __init__(self, rule: BasalTitration, dose_u_per_day: np.ndarray, period: int) -> None:
        self.rule = rule
        self.period = period
        self.start_dose = dose_u_per_day.copy()
        self.dose = dose_u_per_day.copy()
        n = dose_u_per_day.shape[0]
        self.day_sum = np.zeros((n, rule.days_averaged))
        self.day_cnt = np.zeros(rule.days_averaged)
        self.day_min = np.full((n, rule.days_averaged), np.inf)
        self.rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def observe(self, t: int, cgm: np.ndarray) -> None:
        """Count the CGM mean of the period just ended if it lies in the fasting window."""
        r = self.rule
        s = t - self.period
        if s < 0:
            return
        day, minute = divmod(s, MINUTES_PER_DAY)
        if r.fasting_start_minute <= minute and minute + self.period <= r.fasting_end_minute:
            k = day % r.days_averaged
            self.day_sum[:, k] += cgm
            self.day_cnt[k] += 1
            self.day_min[:, k] = np.minimum(self.day_min[:, k], cgm)

    def review(self, t: int) -> bool:
        """At the start of a review day, move the dose; True when a review took place."""
        r = self.rule
        day, minute = divmod(t, MINUTES_PER_DAY)
        if minute >= self.period or day == 0 or day % r.interval_days or day < r.days_averaged:
            return False
        if (self.day_cnt == 0).any():
            return False
        mean = (self.day_sum / self.day_cnt).mean(axis=1)
        low = self.day_min.min(axis=1)
        step = np.where((mean < r.low_mg_dl) | (low < r.hypo_mg_dl), -r.step_u_per_day,
                        np.where(mean > r.high_mg_dl, r.step_u_per_day, 0.0))  # fmt: skip
        before = self.dose.copy()
        self.dose = np.clip(
            self.dose + step, r.min_factor * self.start_dose, r.max_factor * self.start_dose
        )
        self.rows.append((day, mean, low, before, self.dose.copy()))
        return True

    def reset_window(self, t: int) -> None:
        """Clear the slot of the day starting at ``t`` (called at each day's first step)."""
        k = (t // MINUTES_PER_DAY) % self.rule.days_averaged
        self.day_sum[:, k] = 0.0
        self.day_cnt[k] = 0.0
        self.day_min[:, k] = np.inf


class _TitrationLog:
    """Thread-safe log of basal reviews gathered over the chunks a policy is bound to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[tuple[list[str], _TitrationState]] = []

    def add(self, keys: list[str], state: _TitrationState) -> None:
        with self._lock:
            self._parts.append((keys, state))

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()

    def frame(self) -> pd.DataFrame:
        cols = ("participant", "day", "fasting_mean_mg_dl", "fasting_min_mg_dl",
                "basal_before_u_per_day", "basal_u_per_day")  # fmt: skip
        frames = []
        with self._lock:
            for keys, st in self._parts:
                for day, mean, low, before, after in st.rows:
                    frames.append(pd.DataFrame(dict(zip(cols, (
                        keys, day, mean, low, before, after), strict=True))))  # fmt: skip
        if not frames:
            return pd.DataFrame({c: [] for c in cols})
        return pd.concat(frames, ignore_index=True).sort_values(
            ["participant", "day"], ignore_index=True
        )


def _track_day(state: _TitrationState | None, t: int, cgm: np.ndarray) -> bool:
    """Feed the titration with the period just ended; True when the dose was reviewed."""
    if state is None:
        return False
    state.observe(t, cgm)
    reviewed = state.review(t)
    if t % MINUTES_PER_DAY < state.period:
        state.reset_window(t)
    return reviewed


# ============================================================================ pump therapy
@dataclass(frozen=True)
class PumpTherapy(Therapy):
    """Pump (CSII) basal-bolus therapy with carb-counting error, missed and late boluses.

    Parameters
    ----------
    basal_bolus
        The bolus calculator and pump (default :class:`~isletsim.therapy.BasalBolus`:
        ``carbs / CR`` plus ``(CGM - 140) / CF`` above 150 mg/dL, 3-minute period).
    behaviour
        Bolus behaviour (default: the values of ``regimens.toml``, seed 0); use
        :meth:`BolusBehaviour.perfect` for none.
    settings
        Derivation of CR, CF and basal (default: table values and ``u2ss``).
    titration
        Weekly basal titration (default none), e.g. ``BasalTitration.from_parameters()``.

    Notes
    -----
    ``titration_log`` gathers the basal reviews of every participant the policy was bound
    to (all chunks); a second ``simulate`` with the same object appends (see :meth:`clear`).
    """

    basal_bolus: BasalBolus = field(default_factory=BasalBolus)
    behaviour: BolusBehaviour = field(default_factory=BolusBehaviour.from_parameters)
    settings: TherapySettings = field(default_factory=TherapySettings)
    titration: BasalTitration | None = None
    _log: _TitrationLog = field(default_factory=_TitrationLog, compare=False, repr=False)

    @property
    def control_period_min(self) -> int:  # type: ignore[override]
        """Minutes between decisions (the inner calculator's)."""
        return int(self.basal_bolus.control_period_min)

    @property
    def titration_log(self) -> pd.DataFrame:
        """Basal reviews: participant, day, fasting mean/min CGM, basal before and after."""
        return self._log.frame()

    def clear(self) -> None:
        """Forget the reviews logged so far."""
        self._log.clear()

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind to participants (columns ``CR, CF, u2ss, BW`` and ``TDI`` for rules)."""
        return _BoundPump(self, patients)


class _BoundPump(BoundTherapy):
    def __init__(self, policy: PumpTherapy, patients: pd.DataFrame) -> None:
        s = derive_settings(patients, policy.settings)
        self.settings = s
        self.keys = participant_keys(patients)
        self.inner = policy.basal_bolus.bind(_calculator_table(patients, s))
        self.pump = policy.basal_bolus.pump
        self.control_period_min = int(policy.basal_bolus.control_period_min)
        self.behaviour = policy.behaviour.bind(self.keys)
        self.basal = self.pump.deliver(s["basal_u_per_min"].to_numpy())
        self.titration: _TitrationState | None = None
        if policy.titration is not None:
            self.titration = _TitrationState(
                policy.titration, s["basal_u_per_day"].to_numpy(), self.control_period_min
            )
            policy._log.add(self.keys, self.titration)

    def decide(self, obs: Observation) -> InsulinAction:
        if _track_day(self.titration, obs.t, obs.cgm_mg_dl):
            assert self.titration is not None
            self.basal = self.pump.deliver(self.titration.dose / MINUTES_PER_DAY)
        grams = self.behaviour.grams_to_bolus(obs.t, obs.announced_g)
        if type(self.inner) is _BoundBasalBolus:  # the calculator itself: skip the Observation
            calc = self.inner
            rate = calc.bolus_rate(obs.cgm_mg_dl, grams)
            return InsulinAction(self.basal, rate, calc.bolus_minutes, calc.no_meal_bolus, None)
        inner = self.inner.decide(
            Observation(obs.t, obs.cgm_mg_dl, grams, obs.glucose_plasma_mg_dl)
        )
        return InsulinAction(
            self.basal, inner.bolus_u_per_min, inner.bolus_minutes, inner.meal_bolus_u_per_g,
            inner.carbs_g,
        )  # fmt: skip


# ============================================================================ MDI
def depot_transition(n_compartments: int, k_per_min: float, minutes: float) -> np.ndarray:
    """Transition matrix over ``minutes`` of a chain of identical first-order compartments.

    ``x(t + minutes) = P @ x(t)`` for ``dx0/dt = -k x0``, ``dxj/dt = k x(j-1) - k xj``:
    ``P[i, j] = exp(-k m) (k m)**(i - j) / (i - j)!`` for ``i >= j``.
    """
    km = k_per_min * minutes
    p = np.zeros((n_compartments, n_compartments))
    for i in range(n_compartments):
        for j in range(i + 1):
            p[i, j] = np.exp(-km) * km ** (i - j) / factorial(i - j)
    return p


def _chain_step(depot: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``depot @ p.T`` element by element, so each participant's result is bit-identical
    whatever the number of participants (a BLAS product may sum in a shape-dependent order)."""
    out = np.zeros_like(depot)
    for i in range(p.shape[0]):
        for j in range(i + 1):
            out[:, i] += p[i, j] * depot[:, j]
    return out


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _depot_step(depot, p, period, basal):
    """One control period of the depot in place, and the mean release rate into ``basal``.

    Per participant: the content before, :func:`_chain_step`, the content after (each sum
    term by term from the first compartment, as numpy sums fewer than 8 terms), then
    ``max(before - after, 0) / period``.
    """
    nc = p.shape[0]
    new = np.empty(nc)
    for k in range(depot.shape[0]):
        before = depot[k, 0]
        for j in range(1, nc):
            before += depot[k, j]
        for i in range(nc):
            acc = 0.0
            for j in range(i + 1):
                acc += p[i, j] * depot[k, j]
            new[i] = acc
        after = new[0]
        depot[k, 0] = new[0]
        for i in range(1, nc):
            after += new[i]
            depot[k, i] = new[i]
        d = before - after
        basal[k] = (d if d > 0.0 or d != d else 0.0) / period


@dataclass(frozen=True)
class MultipleDailyInjections(Therapy):
    """Multiple daily injections: once-daily long-acting basal depot and rapid meal boluses.

    Parameters
    ----------
    behaviour
        Bolus behaviour (default: ``regimens.toml``, seed 0).
    settings
        Derivation of CR, CF and the basal dose (default: table values and ``u2ss``).
    titration
        Weekly basal titration (default none); a new dose takes effect at the next injection.
    control_period_min
        Minutes between decisions (5).
    overrides
        Values replacing those of ``regimens.toml`` for the injection, depot and pen
        parameters (``basal_injection_minute``, ``depot_*``, ``*_pen_*``, ``pen_max_dose_u``,
        ``mdi_correction_*``).

    Notes
    -----
    ``titration_log`` as in :class:`PumpTherapy`. The daily insulin of the simulation trace
    (``insulin_u``) includes the depot release and the boluses.
    """

    behaviour: BolusBehaviour = field(default_factory=BolusBehaviour.from_parameters)
    settings: TherapySettings = field(default_factory=TherapySettings)
    titration: BasalTitration | None = None
    control_period_min: int = 5
    overrides: Mapping[str, float] = field(default_factory=dict)
    _log: _TitrationLog = field(default_factory=_TitrationLog, compare=False, repr=False)

    def __post_init__(self) -> None:
        values = {k: float(v) for k, v in self.overrides.items()}
        load_regimen_parameters(overrides=values)  # raises naming the key
        object.__setattr__(self, "overrides", MappingProxyType(values))
        if int(self.control_period_min) < 1:
            raise ValueError(f"control_period_min must be >= 1, got {self.control_period_min}")

    @property
    def parameters(self) -> dict[str, float]:
        """The regimen parameters in use (file values with ``overrides`` applied)."""
        return load_regimen_parameters(overrides=self.overrides)

    @property
    def titration_log(self) -> pd.DataFrame:
        """Basal reviews: participant, day, fasting mean/min CGM, basal before and after."""
        return self._log.frame()

    def clear(self) -> None:
        """Forget the reviews logged so far."""
        self._log.clear()

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind to participants (columns ``CR, CF, u2ss, BW`` and ``TDI`` for rules)."""
        return _BoundMDI(self, patients)


class _BoundMDI(BoundTherapy):
    def __init__(self, policy: MultipleDailyInjections, patients: pd.DataFrame) -> None:
        prm = policy.parameters
        period = int(policy.control_period_min)
        self.control_period_min = period
        s = derive_settings(patients, policy.settings, prm)
        self.keys = participant_keys(patients)
        self.behaviour = policy.behaviour.bind(self.keys)
        self.basal_step = prm["basal_pen_increment_u"]
        self.pen_max = prm["pen_max_dose_u"]
        self.dose = self._pen(s["basal_u_per_day"].to_numpy())
        pen = Pump(prm["bolus_pen_increment_u"] / period, self.pen_max / period, False)
        calculator = BasalBolus(
            prm["mdi_correction_target_mg_dl"], prm["mdi_correction_threshold_mg_dl"], period, pen
        )
        self.inner = calculator.bind(_calculator_table(patients, s))
        # depot: chain of identical compartments, periodic steady state at t = 0
        nc = int(prm["depot_compartments"])
        k = nc / (prm["depot_mean_absorption_h"] * 60.0)
        self.inject_minute = int(prm["basal_injection_minute"])
        self.p_step = depot_transition(nc, k, period)
        day = depot_transition(nc, k, MINUTES_PER_DAY)
        unit = np.linalg.solve(np.eye(nc) - day, np.eye(nc)[:, 0])  # just after a unit dose
        since = depot_transition(nc, k, MINUTES_PER_DAY - self.inject_minute) @ unit
        self.depot = self.dose[:, None] * since[None, :]
        self.next_injection = self.inject_minute
        self.titration: _TitrationState | None = None
        if policy.titration is not None:
            self.titration = _TitrationState(policy.titration, self.dose, period)
            policy._log.add(self.keys, self.titration)

    def _pen(self, units: np.ndarray) -> np.ndarray:
        return np.clip(np.round(units / self.basal_step) * self.basal_step, 0.0, self.pen_max)

    def decide(self, obs: Observation) -> InsulinAction:
        t = obs.t
        if _track_day(self.titration, t, obs.cgm_mg_dl):
            assert self.titration is not None
            self.dose = self._pen(self.titration.dose)
        if t >= self.next_injection:
            self.depot[:, 0] += self.dose
            self.next_injection += MINUTES_PER_DAY
        if self.p_step.shape[0] < 8:
            # compiled, same sums: numpy adds fewer than 8 terms one after the other
            basal = np.empty(self.depot.shape[0])
            _depot_step(self.depot, self.p_step, self.control_period_min, basal)
        else:
            before = self.depot.sum(axis=1)
            self.depot = _chain_step(self.depot, self.p_step)
            basal = np.maximum(before - self.depot.sum(axis=1), 0.0) / self.control_period_min
        grams = self.behaviour.grams_to_bolus(t, obs.announced_g)
        calc = self.inner
        if type(calc) is _BoundBasalBolus:
            rate = calc.bolus_rate(obs.cgm_mg_dl, grams)
            return InsulinAction(basal, rate, calc.bolus_minutes, calc.no_meal_bolus, None)
        inner = calc.decide(Observation(t, obs.cgm_mg_dl, grams, obs.glucose_plasma_mg_dl))
        return InsulinAction(
            basal, inner.bolus_u_per_min, inner.bolus_minutes, inner.meal_bolus_u_per_g,
            inner.carbs_g,
        )  # fmt: skip


__all__ = [
    "PARAM_FILE",
    "REGIMEN_NAMES",
    "BasalTitration",
    "BolusBehaviour",
    "BoundBolusBehaviour",
    "MultipleDailyInjections",
    "PumpTherapy",
    "TherapySettings",
    "check_regimen_parameters",
    "depot_transition",
    "derive_settings",
    "load_regimen_parameters",
    "participant_keys",
    "participant_rng",
    "participant_rngs",
    "regimen_sources",
]
