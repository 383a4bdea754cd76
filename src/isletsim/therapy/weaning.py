"""Clinician insulin weaning after islet infusion (isletsim science reference 10.3, [U]).

:class:`ClinicianWeaning` wraps any basal/bolus :class:`~isletsim.therapy.base.Therapy`
(e.g. :class:`~isletsim.therapy.BasalBolus`, :class:`~isletsim.therapy.OpenLoop`) and scales
everything it delivers (basal, boluses, meal boluses) by a per-participant dose factor that a
clinician adjusts from CGM summaries, never from true glucose. Hypoglycaemia treatment
(``carbs_g``) of the inner therapy passes through unchanged.

Protocol (values in ``isletsim/params/weaning/clinician.toml``, see its README). Days count
from the start of the simulation (the infusion day); CGM from ``start_day`` on is used.

* **Daily check** (at the end of every day). Off insulin: a day whose mean CGM exceeds
  ``restart_daily_mean_above_mg_dl`` restarts insulin at once at ``restart_factor`` (a
  safety rule of ours). On insulin, on days that are not review days: when the CGM spent at
  least ``hypo_check_min_minutes`` below ``hypo_check_mg_dl`` that day and the day's mean
  is below ``reduce_mean_below_mg_dl``, cut the factor by ``hypo_cut_step`` (10.3 step 1;
  the mean condition is ours [U]: a low on a high day is a matter of dose timing, not of
  the total dose).
* **Review** every ``review_interval_days`` over the window since the last review (mean CGM,
  % time < 70, < 54 and > 180 mg/dL). On insulin, in this order:

  - *stop* (factor 0) when the factor is at most ``stop_factor_max``, the mean is at most
    ``stop_mean_max_mg_dl`` and TAR>180 at most ``stop_tar180_max_pct`` (10.3 steps 3-4);
  - *reduce* by ``reduce_step`` when the mean is below ``reduce_mean_below_mg_dl`` and
    TBR<54 exceeds ``reduce_tbr54_above_pct`` (a level-2 event) or TBR<70 exceeds
    ``reduce_tbr70_above_pct`` (10.3 step 2), or, once weaning has begun (factor < 1),
    when the mean is below ``continue_mean_below_mg_dl`` (our rule: glucose stays low on a
    lower dose, so the graft carries the load) or the mean CGM 2 h after the window's meals
    is below ``reduce_postmeal_below_mg_dl`` (10.3 step 2, "raise CR if 2-h post-meal <
    140"; the whole factor is cut, as the policy scales basal and bolus together);
  - *increase* by ``increase_step`` (capped at ``max_factor``) when TAR>180 exceeds
    ``increase_tar180_above_pct`` and TBR<70 is within ``reduce_tbr70_above_pct``;
  - otherwise keep.

  Off insulin, a window whose mean exceeds ``restart_mean_above_mg_dl`` or whose TAR>180
  exceeds ``restart_tar180_above_pct`` fails; ``restart_after_failed_reviews`` consecutive
  failures *restart* insulin at ``restart_factor`` of the original dose (Ryan 2005 [V]).

Usage: the policy keeps the log of every participant it was bound to::

    policy = ClinicianWeaning(BasalBolus())
    result = simulate(names, 60, meals, policy, graft_fraction=course.phi)
    policy.log            # participant, day, action, rule, factor, window statistics
    policy.current        # final factor and insulin status per participant

The engine binds the policy once per chunk of participants (in threads); the log gathers all
of them. A second ``simulate`` with the same object appends to the log: use a fresh policy per
run or call :meth:`ClinicianWeaning.clear`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, fields
from importlib import resources
from importlib.resources.abc import Traversable

import numba as nb
import numpy as np
import pandas as pd

from isletsim.params.toml_file import load_checked_values
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy
from isletsim.therapy.pump import deliver_rate

#: The native float64 dtype (an identity check is cheaper than ``==`` on hot paths; a
#: float64 array with another dtype object just takes the general path).
_F64 = np.dtype(np.float64)

MINUTES_PER_DAY = 1440
#: The packaged protocol file, as named in error messages.
PROTOCOL_FILE_LABEL = "isletsim/params/weaning/clinician.toml"
#: Largest control period (min) at which CGM statistics are meaningful.
MAX_CONTROL_PERIOD_MIN = 60
#: Log actions.
ACTIONS: tuple[str, ...] = ("reduce", "increase", "stop", "restart")
_LOG_COLUMNS = (
    "participant", "day", "action", "rule", "factor_before", "factor",
    "mean_mg_dl", "tbr70_pct", "tbr54_pct", "tar180_pct",
)  # fmt: skip


@dataclass(frozen=True)
class WeaningProtocol:
    """Thresholds and steps of the clinician weaning protocol (see the module docstring).

    Build it from the packaged file with :meth:`clinician` or from another file with
    :meth:`from_file`; direct construction validates the values too (``ValueError``).

    Attributes
    ----------
    start_day : int, first day whose CGM counts (>= 0).
    review_interval_days : int, days between reviews (>= 1).
    hypo_check_mg_dl : float, daily-check hypoglycaemia threshold, mg/dL.
    hypo_check_min_minutes : float, minutes below it in a day that trigger a cut.
    hypo_cut_step : float, fraction cut by the daily check, in (0, 1).
    reduce_mean_below_mg_dl, reduce_tbr70_above_pct, reduce_tbr54_above_pct : review
        criteria to reduce (mg/dL, %, %).
    reduce_step : float, fraction cut at a review, in (0, 1).
    continue_mean_below_mg_dl : float, once weaning has begun (factor < 1), a review mean
        below this (mg/dL) cuts again: glucose stays low on a lower dose.
    reduce_postmeal_below_mg_dl : float, once weaning has begun (factor < 1), a review whose
        mean 2-h post-meal CGM is below this (mg/dL) and whose mean is below
        ``reduce_mean_below_mg_dl`` cuts the dose (10.3 step 2, "raise CR if 2-h post-meal
        < 140").
    postmeal_check_min : int, minutes after an announced meal at which the post-meal CGM
        is read.
    increase_tar180_above_pct : float, % TAR>180 above which the dose is raised.
    increase_step : float, fractional raise, > 0.
    max_factor : float, cap of the dose factor (> 0).
    stop_factor_max, stop_mean_max_mg_dl, stop_tar180_max_pct : stop criteria.
    restart_mean_above_mg_dl, restart_tar180_above_pct : a review off insulin fails above.
    restart_after_failed_reviews : int, consecutive failed reviews that restart insulin.
    restart_daily_mean_above_mg_dl : float, daily mean off insulin that restarts at once.
    restart_factor : float, dose factor on restart, in (0, max_factor].
    """

    start_day: int
    review_interval_days: int
    hypo_check_mg_dl: float
    hypo_check_min_minutes: float
    hypo_cut_step: float
    reduce_mean_below_mg_dl: float
    reduce_tbr70_above_pct: float
    reduce_tbr54_above_pct: float
    reduce_step: float
    continue_mean_below_mg_dl: float
    reduce_postmeal_below_mg_dl: float
    postmeal_check_min: int
    increase_tar180_above_pct: float
    increase_step: float
    max_factor: float
    stop_factor_max: float
    stop_mean_max_mg_dl: float
    stop_tar180_max_pct: float
    restart_mean_above_mg_dl: float
    restart_tar180_above_pct: float
    restart_after_failed_reviews: int
    restart_daily_mean_above_mg_dl: float
    restart_factor: float

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            problem = _problem(name, value, values)
            if problem is not None:
                raise ValueError(f"WeaningProtocol.{name}: {problem}")

    @classmethod
    def clinician(cls) -> WeaningProtocol:
        """The packaged protocol, ``isletsim/params/weaning/clinician.toml``."""
        path = resources.files("isletsim.params") / "weaning" / "clinician.toml"
        return cls.from_file(path, label=PROTOCOL_FILE_LABEL)

    @classmethod
    def from_file(
        cls, path: Traversable | os.PathLike[str] | str, *, label: str | None = None
    ) -> WeaningProtocol:
        """Read a protocol file laid out as ``clinician.toml``.

        Parameters
        ----------
        path
            The TOML file.
        label
            Name of the file in error messages (default: ``str(path)``).

        Returns
        -------
        WeaningProtocol

        Raises
        ------
        isletsim.params.toml_file.ParameterFileError
            A ``ValueError`` naming the file, the parameter and the field: a missing or
            unknown parameter or field, a non-finite value, a tag that disagrees with
            ``verified``/``source``, or a value out of its range (e.g. a negative step).
        """
        label = str(path) if label is None else label
        names = [f.name for f in fields(cls)]
        values = load_checked_values(
            path, label=label, names=names, problem=_problem, integers=_INTEGER
        )
        return cls(**values)  # type: ignore[arg-type]


_NEVER = 2**62  # a minute that never comes
_INTEGER = frozenset(
    {"start_day", "review_interval_days", "restart_after_failed_reviews", "postmeal_check_min"}
)
_FRACTION_STEPS = frozenset({"hypo_cut_step", "reduce_step"})
_PERCENTS = frozenset(
    {"reduce_tbr70_above_pct", "reduce_tbr54_above_pct", "increase_tar180_above_pct",
     "stop_tar180_max_pct", "restart_tar180_above_pct"}
)  # fmt: skip


def _problem(name: str, value: float, values: dict[str, float]) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` (None if it is)."""
    v = float(value)
    if not np.isfinite(v):
        return "must be finite"
    if name in _INTEGER:
        if v != round(v):
            return "must be a whole number"
        low = 0 if name == "start_day" else 1
        if v < low:
            return f"must be >= {low}"
        return None
    if name in _FRACTION_STEPS:
        return None if 0.0 < v < 1.0 else "must be a fraction in (0, 1)"
    if name in _PERCENTS:
        return None if 0.0 <= v <= 100.0 else "must be a percentage in [0, 100]"
    if name == "restart_factor":
        cap = float(values.get("max_factor", np.inf))
        return None if 0.0 < v <= cap else "must be in (0, max_factor]"
    if name == "stop_factor_max":
        return None if 0.0 <= v < 1.0 else "must be in [0, 1)"
    if v <= 0.0:
        return "must be > 0"
    return None


class ClinicianWeaning(Therapy):
    """A clinician who weans the insulin of a wrapped therapy after islet infusion.

    Parameters
    ----------
    inner
        The basal/bolus therapy whose delivery is scaled (its control period is used; it
        must be at most :data:`MAX_CONTROL_PERIOD_MIN` minutes so that CGM statistics are
        meaningful, e.g. ``OpenLoop(control_period_min=5)``).
    protocol
        Protocol values (default: :meth:`WeaningProtocol.clinician`).

    Attributes
    ----------
    log : pandas.DataFrame
        Every change of dose: ``participant`` (name), ``day`` (review/check day), ``action``
        (one of :data:`ACTIONS`), ``rule`` (what triggered it), ``factor_before``,
        ``factor`` (new dose factor, 0 = insulin stopped) and the CGM statistics of the
        window it was based on (``mean_mg_dl``, ``tbr70_pct``, ``tbr54_pct``,
        ``tar180_pct``).
    current : pandas.DataFrame
        Final state per participant: ``factor``, ``stopped``.
    """

    def __init__(self, inner: Therapy, protocol: WeaningProtocol | None = None) -> None:
        period = int(inner.control_period_min)
        if period > MAX_CONTROL_PERIOD_MIN:
            raise ValueError(
                f"inner therapy {type(inner).__name__} decides every {period} min; weaning needs "
                f"CGM at most every {MAX_CONTROL_PERIOD_MIN} min (e.g. "
                "OpenLoop(control_period_min=5))"
            )
        self.inner = inner
        self.protocol = WeaningProtocol.clinician() if protocol is None else protocol
        self.control_period_min = period
        self._bound: list[_BoundWeaning] = []
        self._lock = threading.Lock()

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind the inner therapy and the weaning state to ``patients``."""
        names = (
            [str(s) for s in patients["Name"]]
            if "Name" in patients
            else [str(i) for i in patients.index]
        )
        bound = _BoundWeaning(self, self.inner.bind(patients), names)
        with self._lock:
            self._bound.append(bound)
        return bound

    def clear(self) -> None:
        """Forget the participants bound so far (and so the log)."""
        with self._lock:
            self._bound.clear()

    @property
    def log(self) -> pd.DataFrame:
        """Dose changes of every bound participant (see the class attributes)."""
        with self._lock:
            frames = [b.log_frame() for b in self._bound]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=_log_dtype(c)) for c in _LOG_COLUMNS})
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values(["participant", "day"], kind="stable").reset_index(drop=True)

    @property
    def current(self) -> pd.DataFrame:
        """Dose factor and insulin status of every bound participant, indexed by name."""
        with self._lock:
            bound = list(self._bound)
        names = [n for b in bound for n in b.names]
        factor = np.concatenate([b.factor for b in bound]) if bound else np.zeros(0)
        stopped = np.concatenate([b.stopped for b in bound]) if bound else np.zeros(0, bool)
        return pd.DataFrame(
            {"factor": factor, "stopped": stopped},
            index=pd.Index(names, name="participant"),
        )


def _log_dtype(column: str) -> str:
    return (
        "object"
        if column in ("participant", "action", "rule")
        else ("int64" if column == "day" else "float64")
    )


@nb.njit(cache=True, nogil=True)
def _track_postmeal_kernel(t, announced, cgm, postmeal, postmeal_at, next_due, check_min):
    """Post-meal CGM readings (``_track_postmeal``): readings due at ``t`` are added to
    ``postmeal`` (sum, count); a meal announced by someone with no reading pending schedules
    one ``check_min`` later. Returns the earliest pending reading (``_NEVER`` if none)."""
    n = cgm.shape[0]
    if t >= next_due:
        next_due = _NEVER
        for i in range(n):
            at = postmeal_at[i]
            if at >= 0 and t >= at:
                postmeal[0, i] += cgm[i]
                postmeal[1, i] += 1.0
                postmeal_at[i] = -1
            elif at >= 0 and at < next_due:
                next_due = at
    for i in range(n):
        if announced[i] > 0 and postmeal_at[i] < 0:
            postmeal_at[i] = t + check_min
            if t + check_min < next_due:
                next_due = t + check_min
    return next_due


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _accumulate_kernel(cgm, window, day, day_low_minutes, hypo_check_mg_dl, period):
    """``_BoundWeaning._accumulate`` in place: count, sum, <70, <54, >180 and low minutes."""
    for i in range(cgm.shape[0]):
        c = cgm[i]
        lt70 = 1.0 if c < 70.0 else 0.0
        lt54 = 1.0 if c < 54.0 else 0.0
        gt180 = 1.0 if c > 180.0 else 0.0
        window[0, i] += 1.0
        window[1, i] += c
        window[2, i] += lt70
        window[3, i] += lt54
        window[4, i] += gt180
        day[0, i] += 1.0
        day[1, i] += c
        day[2, i] += lt70
        day[3, i] += lt54
        day[4, i] += gt180
        day_low_minutes[i] += (1.0 if c < hypo_check_mg_dl else 0.0) * period


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _scale_kernel(
    basal_in, bolus_in, meal_in, factor, through_pump, increment, max_rate, round_in_pmol,
    basal, bolus, meal,
):  # fmt: skip
    """``_BoundWeaning._scaled`` per participant: scale by the factor, then the pump."""
    for i in range(factor.shape[0]):
        f = factor[i]
        b = basal_in[i] * f
        q = bolus_in[i] * f
        if through_pump:
            b = deliver_rate(b, increment, max_rate, round_in_pmol)
            q = deliver_rate(q, increment, max_rate, round_in_pmol)
        basal[i] = b
        bolus[i] = q
        meal[i] = meal_in[i] * f


class _BoundWeaning(BoundTherapy):
    """Weaning state of N participants: dose factor, window and daily CGM accumulators."""

    def __init__(self, policy: ClinicianWeaning, inner: BoundTherapy, names: list[str]) -> None:
        n = len(names)
        self.inner = inner
        self.protocol = policy.protocol
        self.control_period_min = policy.control_period_min
        self.names = names
        self.pump = getattr(policy.inner, "pump", None)
        self.factor = np.ones(n)
        self.stopped = np.zeros(n, dtype=bool)
        self.failed_reviews = np.zeros(n, dtype=np.int64)
        # window (since the last review) and day accumulators: count, sum, <70, <54, >180
        self.window = np.zeros((5, n))
        self.day = np.zeros((5, n))
        self.day_low_minutes = np.zeros(n)
        # 2-h post-meal CGM: minute at which to read it (-1: none pending), window sum, count
        self.postmeal_at = np.full(n, -1, dtype=np.int64)
        self.postmeal = np.zeros((2, n))
        self._postmeal_next = _NEVER  # earliest pending reading
        self.start_min = self.protocol.start_day * MINUTES_PER_DAY
        self.checks_done = 0
        self._shape = (n,)
        self._hypo_check = float(self.protocol.hypo_check_mg_dl)
        self._period = float(self.control_period_min)
        pump = self.pump
        self._pump_args = (
            (False, 0.0, 0.0, False) if pump is None
            else (True, float(pump.increment), float(pump.max_u_per_min),
                  bool(pump.round_in_pmol))
        )  # fmt: skip
        self._log: list[tuple[np.ndarray, int, str, str, np.ndarray, np.ndarray, np.ndarray]] = []

    # ------------------------------------------------------------------ statistics
    def _accumulate(self, cgm: np.ndarray) -> None:
        n = self.factor.shape[0]
        if cgm.shape == (n,) and cgm.dtype is _F64:
            _accumulate_kernel(
                cgm, self.window, self.day, self.day_low_minutes,
                float(self.protocol.hypo_check_mg_dl), float(self.control_period_min),
            )  # fmt: skip
            return
        row = np.stack([np.ones_like(cgm), cgm, cgm < 70.0, cgm < 54.0, cgm > 180.0]).astype(float)
        self.window += row
        self.day += row
        below = cgm < self.protocol.hypo_check_mg_dl
        self.day_low_minutes += below * float(self.control_period_min)

    @staticmethod
    def _stats(acc: np.ndarray) -> np.ndarray:
        """Rows mean, %<70, %<54, %>180 (NaN where no readings)."""
        n = acc[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = acc[1:] / n
        out[1:] *= 100.0
        return out

    # ------------------------------------------------------------------ decisions
    def _record(
        self, mask: np.ndarray, day: int, action: str, rule: str, before: np.ndarray,
        stats: np.ndarray,
    ) -> None:  # fmt: skip
        idx = np.flatnonzero(mask)
        if idx.size:
            self._log.append((idx, day, action, rule, before[idx], self.factor[idx], stats[:, idx]))

    def _set(
        self, mask: np.ndarray, new: np.ndarray, day: int, action: str, rule: str,
        stats: np.ndarray,
    ) -> None:  # fmt: skip
        before = self.factor.copy()
        self.factor = np.where(mask, new, self.factor)
        self._record(mask, day, action, rule, before, stats)

    def _daily_check(self, day: int, *, cut: bool) -> None:
        p = self.protocol
        stats = self._stats(self.day)
        high = self.stopped & (stats[0] > p.restart_daily_mean_above_mg_dl)
        self._restart(high, day, "daily_mean_high", stats)
        if cut:
            # a low on a day whose mean is not low calls for no cut of the whole dose
            # (science reference 10.3 step 2 conditions cuts on mean < 140 mg/dL) [U]
            low = ~self.stopped & (self.day_low_minutes >= p.hypo_check_min_minutes)
            low &= stats[0] < p.reduce_mean_below_mg_dl
            self._set(low, self.factor * (1.0 - p.hypo_cut_step), day, "reduce", "daily_low",
                      stats)  # fmt: skip

    def _restart(self, mask: np.ndarray, day: int, rule: str, stats: np.ndarray) -> None:
        self._set(mask, np.full_like(self.factor, self.protocol.restart_factor), day,
                  "restart", rule, stats)  # fmt: skip
        self.stopped &= ~mask
        self.failed_reviews[mask] = 0

    def _review(self, day: int) -> None:
        p = self.protocol
        stats = self._stats(self.window)
        mean, tbr70, tbr54, tar180 = stats
        has = np.isfinite(mean)
        on = ~self.stopped & has
        # off insulin: count failed windows, restart after enough in a row
        failed = (
            self.stopped
            & has
            & ((mean > p.restart_mean_above_mg_dl) | (tar180 > p.restart_tar180_above_pct))
        )
        self.failed_reviews = np.where(
            self.stopped, np.where(failed, self.failed_reviews + 1, 0), 0
        )
        self._restart(self.stopped & (self.failed_reviews >= p.restart_after_failed_reviews),
                      day, "failed_reviews", stats)  # fmt: skip
        # on insulin: stop, else reduce, else increase
        stop = (
            on
            & (self.factor <= p.stop_factor_max)
            & (mean <= p.stop_mean_max_mg_dl)
            & (tar180 <= p.stop_tar180_max_pct)
        )
        self._set(stop, np.zeros_like(self.factor), day, "stop", "criteria_met", stats)
        self.stopped |= stop
        on &= ~stop
        # 10.3 step 2: "if mean CGM glucose < 140 mg/dL and TBR<70 > 1 % or any level-2
        # event -> lower": the mean condition applies to both
        level2 = (tbr54 > p.reduce_tbr54_above_pct) & (mean < p.reduce_mean_below_mg_dl)
        level1 = (tbr70 > p.reduce_tbr70_above_pct) & (mean < p.reduce_mean_below_mg_dl)
        going = (self.factor < 1.0) & (mean < p.continue_mean_below_mg_dl)
        with np.errstate(invalid="ignore", divide="ignore"):
            postmeal_mean = self.postmeal[0] / self.postmeal[1]
        postmeal = (
            (self.factor < 1.0)
            & (self.postmeal[1] > 0)
            & (postmeal_mean < p.reduce_postmeal_below_mg_dl)
            & (mean < p.reduce_mean_below_mg_dl)
        )
        reduce = on & (level2 | level1 | going | postmeal)
        rule = np.where(
            level2, "tbr54",
            np.where(level1, "tbr70_mean_low",
                     np.where(going, "mean_low_weaning", "postmeal_low")),
        )  # fmt: skip
        for r in ("tbr54", "tbr70_mean_low", "mean_low_weaning", "postmeal_low"):
            self._set(reduce & (rule == r), self.factor * (1.0 - p.reduce_step), day,
                      "reduce", r, stats)  # fmt: skip
        high = on & ~reduce & (tar180 > p.increase_tar180_above_pct)
        high &= (tbr70 <= p.reduce_tbr70_above_pct) & (self.factor < p.max_factor)
        raised = np.minimum(self.factor * (1.0 + p.increase_step), p.max_factor)
        self._set(high, raised, day, "increase", "tar180_high", stats)

    def decide(self, obs: Observation) -> InsulinAction:
        if obs.t > self.start_min:
            cgm = np.asarray(obs.cgm_mg_dl, dtype=float)
            self._track_postmeal(int(obs.t), obs.announced_g, cgm)
            if cgm.shape == self._shape:  # compiled accumulation
                _accumulate_kernel(
                    cgm, self.window, self.day, self.day_low_minutes, self._hypo_check,
                    self._period,
                )  # fmt: skip
            else:
                self._accumulate(cgm)
            next_check = self.start_min + (self.checks_done + 1) * MINUTES_PER_DAY
            if obs.t >= next_check:
                self.checks_done += 1
                day = self.protocol.start_day + self.checks_done
                review = self.checks_done % self.protocol.review_interval_days == 0
                self._daily_check(day, cut=not review)
                if review:
                    self._review(day)
                    self.window[:] = 0.0
                    self.postmeal[:] = 0.0
                self.day[:] = 0.0
                self.day_low_minutes[:] = 0.0
        action = self.inner.decide(obs)
        return self._scaled(action)

    def _track_postmeal(self, t: int, announced: np.ndarray, cgm: np.ndarray) -> None:
        """Read the CGM ``postmeal_check_min`` after each announced meal (one at a time)."""
        shape = self.postmeal_at.shape
        announced = np.asarray(announced, dtype=np.float64)
        if announced.shape != shape:
            announced = np.broadcast_to(announced, shape)
        if cgm.shape != shape:
            cgm = np.broadcast_to(cgm, shape)
        self._postmeal_next = _track_postmeal_kernel(
            t, announced, cgm, self.postmeal, self.postmeal_at, self._postmeal_next,
            int(self.protocol.postmeal_check_min),
        )  # fmt: skip

    def _scaled(self, action: InsulinAction) -> InsulinAction:
        f = self.factor
        n = f.shape[0]
        basal_in = action.basal_u_per_min
        bolus_in = action.bolus_u_per_min
        meal_in = action.meal_bolus_u_per_g
        if (
            type(basal_in) is np.ndarray and type(bolus_in) is np.ndarray
            and type(meal_in) is np.ndarray and basal_in.dtype is _F64
            and bolus_in.dtype is _F64 and meal_in.dtype is _F64
            and basal_in.shape == (n,) and bolus_in.shape == (n,) and meal_in.shape == (n,)
        ):  # fmt: skip
            basal, bolus, meal = np.empty(n), np.empty(n), np.empty(n)
            through, increment, max_rate, in_pmol = self._pump_args
            _scale_kernel(basal_in, bolus_in, meal_in, f, through, increment, max_rate, in_pmol,
                          basal, bolus, meal)  # fmt: skip
            return InsulinAction(basal, bolus, action.bolus_minutes, meal, action.carbs_g)
        basal = action.basal_u_per_min * f
        bolus = action.bolus_u_per_min * f
        if self.pump is not None:
            basal = self.pump.deliver(basal)
            bolus = self.pump.deliver(bolus)
        return InsulinAction(
            basal_u_per_min=basal,
            bolus_u_per_min=bolus,
            bolus_minutes=action.bolus_minutes,
            meal_bolus_u_per_g=action.meal_bolus_u_per_g * f,
            carbs_g=action.carbs_g,
        )

    def log_frame(self) -> pd.DataFrame:
        """The dose changes of these participants as a table (see ``ClinicianWeaning.log``)."""
        rows: dict[str, list[np.ndarray]] = {c: [] for c in _LOG_COLUMNS}
        for idx, day, action, rule, before, after, stats in self._log:
            k = idx.size
            rows["participant"].append(np.asarray(self.names, dtype=object)[idx])
            rows["day"].append(np.full(k, day, dtype=np.int64))
            rows["action"].append(np.full(k, action, dtype=object))
            rows["rule"].append(np.full(k, rule, dtype=object))
            rows["factor_before"].append(before)
            rows["factor"].append(after)
            for j, col in enumerate(("mean_mg_dl", "tbr70_pct", "tbr54_pct", "tar180_pct")):
                rows[col].append(stats[j])
        if not self._log:
            return pd.DataFrame({c: pd.Series(dtype=_log_dtype(c)) for c in _LOG_COLUMNS})
        return pd.DataFrame({c: np.concatenate(v) for c, v in rows.items()})
