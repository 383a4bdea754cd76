"""The time loop: integrates the model for N participants, calls the therapy policy at every
control step, and records outputs.

>>> import isletsim as isl
>>> run = isl.simulate(["adult#001", "child#003"], days=1,
...                    meals="07:00=45,12:00=70,18:00=80", therapy=isl.BasalBolus())
>>> run.summary()  # doctest: +SKIP

The per-minute history is kept only when ``record=True``; running statistics (mean, SD and
time in ranges of subcutaneous glucose) are always kept, so memory is linear in N.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import pandas as pd

from isletsim import solver
from isletsim.meals import DailyMeals, MealEvents, new_meal_state
from isletsim.model import uva_padova as model
from isletsim.params import load_cohort, select_patients
from isletsim.sensors import CGM
from isletsim.therapy.base import Observation, Therapy

MINUTES_PER_DAY = 1440
#: The native float64 dtype (identity checks on the per-step path).
_F64 = np.dtype(np.float64)

#: Columns of the per-minute table (:meth:`SimulationResult.to_frame`).
TRACE_COLUMNS: tuple[str, ...] = solver.TRACE


class NonFiniteStateError(FloatingPointError):
    """A participant's state became NaN or infinite."""


@dataclass
class SimulationResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    participants : list of participant names, in row order.
    minutes : simulated minutes.
    final_state : (N, n_states) state at the end.
    stats : (N, len(solver.STAT_COLUMNS)) running statistics of subcutaneous glucose over
        minutes 1..T.
    trace : dict of (N, K) arrays per recorded column of :data:`TRACE_COLUMNS` (only when
        recorded); column k is minute ``m = first_minute + k * record_every``, K =
        ``(T - first_minute) // record_every + 1``.
        State columns are the value at the minute; ``carbs_g`` and ``insulin_u`` are the
        amounts delivered during [m, m + record_every) (nothing after the last minute).
    therapy : name of the therapy policy.
    daily_mean_glucose : (N, days) mean subcutaneous glucose of each simulated day (mg/dL),
        kept even without per-minute history (for HbA1c, :meth:`hba1c`).
    states : (N, T+1, n_states) full state every minute (only with ``record_states``).
    """

    participants: list[str]
    minutes: int
    final_state: np.ndarray
    stats: np.ndarray
    trace: dict[str, np.ndarray] = field(default_factory=dict)
    therapy: str = ""
    states: np.ndarray | None = None
    daily_mean_glucose: np.ndarray | None = None
    first_minute: int = 0
    record_every: int = 1

    @property
    def trace_minutes(self) -> np.ndarray:
        """The simulated minute of each column of :attr:`trace`."""
        if not self.trace:
            return np.zeros(0, dtype=np.int64)
        k = next(iter(self.trace.values())).shape[1]
        return self.first_minute + self.record_every * np.arange(k, dtype=np.int64)

    def summary(self) -> pd.DataFrame:
        """Per participant: mean and SD of subcutaneous glucose and % time in ranges."""
        s = self.stats
        n = s[:, solver.S_N]
        mean = s[:, solver.S_SUM] / n
        var = np.maximum(s[:, solver.S_SUMSQ] / n - mean**2, 0.0)
        return pd.DataFrame(
            {
                "participant": self.participants,
                "mean_glucose_mg_dl": mean,
                "sd_glucose_mg_dl": np.sqrt(var),
                "min_glucose_mg_dl": s[:, solver.S_MIN],
                "max_glucose_mg_dl": s[:, solver.S_MAX],
                "tbr_54_pct": 100 * s[:, solver.S_LT54] / n,
                "tbr_70_pct": 100 * s[:, solver.S_LT70] / n,
                "tir_70_180_pct": 100 * s[:, solver.S_IN] / n,
                "tar_180_pct": 100 * s[:, solver.S_GT180] / n,
                "tar_250_pct": 100 * s[:, solver.S_GT250] / n,
            }
        ).set_index("participant")

    def to_frame(self) -> pd.DataFrame:
        """One row per participant and minute (needs ``record=True``)."""
        if not self.trace:
            raise ValueError("no per-minute history: run simulate(..., record=True)")
        minutes = self.trace_minutes
        n, t1 = len(self.participants), minutes.shape[0]
        data = {
            "participant": pd.Categorical(np.repeat(self.participants, t1),
                                          categories=self.participants),
            "minute": np.tile(minutes.astype(np.int32), n),
        }
        for col in TRACE_COLUMNS:
            if col in self.trace:
                data[col] = self.trace[col].reshape(-1)
        return pd.DataFrame(data)

    def hba1c(self, baseline_glucose=None, rbc_lifespan_days=None) -> np.ndarray:
        """HbA1c (%) at the end of each simulated day, from the daily mean glucose.

        Uses the age-structured glycation model (:func:`isletsim.model.glycation.
        hba1c_trajectory`; Ladyzynski 2014 rate constant, ADAG-consistent at steady state),
        starting from the steady state of ``baseline_glucose`` (default: each participant's
        first day). Returns an (N, days) array.
        """
        from isletsim.model.glycation import hba1c_trajectory

        if self.daily_mean_glucose is None:
            raise ValueError("this result has no daily mean glucose")
        return hba1c_trajectory(self.daily_mean_glucose, baseline_glucose, rbc_lifespan_days)

    def plot(self, participants: Sequence[str] | None = None, *, column: str = "glucose_sc_mg_dl"):
        """Glucose (or another trace column) against time, with the 70-180 mg/dL band.

        Returns a matplotlib Figure (Agg canvas; no display needed). Needs ``record=True``.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not self.trace:
            raise ValueError("no per-minute history: run simulate(..., record=True)")
        if column not in self.trace:
            raise ValueError(f"unknown column {column!r}; choose one of {list(self.trace)}")
        names = list(self.participants if participants is None else participants)
        unknown = [p for p in names if p not in self.participants]
        if unknown:
            raise ValueError(f"unknown participant(s) {unknown}; have {self.participants}")
        fig = Figure(figsize=(9, 3.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        hours = self.trace_minutes / 60.0
        if column.startswith("glucose") or column.startswith("cgm"):
            ax.axhspan(70, 180, color="tab:green", alpha=0.08, label="70-180 mg/dL")
        for name in names:
            ax.plot(hours, self.trace[column][self.participants.index(name)], lw=1, label=name)
        ax.set_xlabel("hours")
        ax.set_ylabel(column)
        ax.legend(loc="upper right", fontsize="small", ncols=2)
        return fig

    def to_parquet(self, path: str) -> None:
        """Write the per-minute table to Parquet (pyarrow, zstd)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"isletsim.therapy": self.therapy.encode()}
        )
        pq.write_table(table, path, compression="zstd")

    def __repr__(self) -> str:
        days = self.minutes / MINUTES_PER_DAY
        rec = "with" if self.trace else "without"
        return (
            f"SimulationResult({len(self.participants)} participant(s), {days:g} day(s), "
            f"{rec} per-minute history)"
        )


#: Environment variable that sets :func:`default_threads` (e.g. in worker processes that
#: share the machine with others).
THREADS_ENV = "ISLETSIM_THREADS"


def default_threads() -> int:
    """Threads :func:`simulate` uses when not told: ``$ISLETSIM_THREADS`` if set, else the
    CPUs this process may use."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be an integer >= 1, got {value!r}")
        return n
    return len(os.sched_getaffinity(0))


def _as_patients(patients: Sequence[str] | pd.DataFrame | str) -> pd.DataFrame:
    if isinstance(patients, pd.DataFrame):
        return patients
    if isinstance(patients, str):
        return load_cohort(patients)
    return select_patients(list(patients))


def simulate(
    patients: Sequence[str] | pd.DataFrame | str,
    days: float = 1,
    meals: DailyMeals | MealEvents | str = "",
    therapy: Therapy | None = None,
    *,
    sensor: CGM | None = None,
    graft_fraction: np.ndarray | Callable[[float], np.ndarray] | None = None,
    insulin_sensitivity: np.ndarray | Callable[[float], np.ndarray] | None = None,
    record: bool = True,
    record_from_minute: int = 0,
    record_every: int = 1,
    record_columns: Sequence[str] | None = None,
    record_states: bool = False,
    substeps: int = 1,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Simulate participants with type 1 diabetes on a therapy.

    Parameters
    ----------
    patients
        Patient names (``["adult#001", ...]``), a cohort name (``"uva-padova-2008"``) or a
        parameter table (rows as returned by :func:`isletsim.params.load_cohort`).
    days
        Length of the simulation (whole minutes).
    meals
        Daily meals (``"07:00=45,12:00=70"`` or :class:`~isletsim.meals.DailyMeals`) or
        explicit per-participant :class:`~isletsim.meals.MealEvents`.
    therapy
        Policy (default :class:`~isletsim.therapy.BasalBolus`).
    sensor
        CGM (default: simglucose's Dexcom without noise).
    graft_fraction
        Functional beta-cell mass of an islet graft as a fraction of a normal pancreas
        (``phi``), per participant: an array (constant) or a function of the day (float,
        days since the start) returning an array; evaluated at every control step. ``None``
        (default) means no endogenous secretion: the S2008 type 1 diabetes model exactly.
    insulin_sensitivity
        Multiplier ``s >= 0`` of insulin action (``Vmx`` and ``kp3``; 1 = the nominal
        participant) per participant: an array (constant) or a function of the day (float,
        days since the start) returning an (N,) array, e.g. an
        :class:`isletsim.variability.InsulinSensitivity`; evaluated at every control step
        and held over it (intra-day variability of insulin sensitivity of the UVA/Padova
        simulator, Visentin 2015 and 2018 [U]), so a clock profile is resolved only to the
        policy's control period (3-5 min for the shipped closed-loop and basal-bolus
        policies, a whole day for ``OpenLoop()`` and ``NoInsulin()``). ``None`` (default) means 1:
        today's model bit for bit.
    record
        Keep per-minute history (memory len(TRACE_COLUMNS) x 8 bytes per
        participant-minute).
    record_from_minute
        With ``record``, keep the history only from this minute on (e.g. the last day of a
        long run before a test); ``SimulationResult.first_minute`` says where it starts.
    record_every
        With ``record``, keep one column every ``record_every`` minutes from
        ``record_from_minute``: states (glucose, CGM, insulin, C-peptide, glucagon) at those
        minutes and the carbohydrate and insulin delivered since the previous column (e.g. 5
        for a trial's CGM at its 5-minute sampling; memory falls by that factor).
    record_columns
        With ``record``, the columns of :data:`TRACE_COLUMNS` to keep (default all).
    record_states
        Also keep the full state vector every minute (``SimulationResult.states``, memory
        n_states x 8 bytes per participant-minute; for validation and debugging).
    substeps
        RK4 steps per minute (1 meets the reference tolerances; see ``validate``).
    threads
        Threads to spread participants over (default :func:`default_threads`). Results do
        not depend on it: participants are independent.
    progress
        Called as ``progress(minutes_done, minutes_total)`` as the slowest chunk advances.

    Returns
    -------
    SimulationResult

    Raises
    ------
    NonFiniteStateError
        If a state becomes NaN or infinite (names participant, minute and state).
    """
    from isletsim.therapy.basal_bolus import BasalBolus

    table = _as_patients(patients)
    therapy = BasalBolus() if therapy is None else therapy
    sensor = CGM.dexcom() if sensor is None else sensor
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    total = round(float(days) * MINUTES_PER_DAY)
    if total < 1:
        raise ValueError(f"days must cover at least one minute, got {days}")
    n = len(table)
    if isinstance(meals, str):
        meals = DailyMeals.parse(meals)
    events = meals.events(n, 0, total) if isinstance(meals, DailyMeals) else meals
    if events.ptr.shape[0] != n + 1:
        raise ValueError(f"meal events are for {events.ptr.shape[0] - 1} participants, not {n}")
    names = [str(s) for s in table["Name"]] if "Name" in table else [str(i) for i in table.index]
    if not 0 <= record_from_minute <= total:
        raise ValueError(f"record_from_minute must be within 0..{total}, got {record_from_minute}")
    if isinstance(record_every, bool) or not isinstance(record_every, int | np.integer) or (
        record_every < 1
    ):
        raise ValueError(f"record_every must be an integer >= 1, got {record_every!r}")
    columns = tuple(TRACE_COLUMNS if record_columns is None else record_columns)
    unknown = [c for c in columns if c not in TRACE_COLUMNS]
    if unknown or not columns or len(set(columns)) != len(columns):
        raise ValueError(
            f"record_columns must be distinct names from {list(TRACE_COLUMNS)}, got "
            f"{list(columns)}"
        )
    plan = _RecordPlan(int(record_from_minute), int(record_every), columns) if record else None

    n_threads = threads if threads is not None else default_threads()
    n_chunks = max(1, min(n_threads, n // MIN_CHUNK))
    bounds = np.linspace(0, n, n_chunks + 1).round().astype(int)
    chunks = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    done = [0] * len(chunks)
    lock = threading.Lock()

    def report(k: int, t: int) -> None:
        if progress is None:
            return
        with lock:
            done[k] = t
            progress(min(done), total)

    phi_of_day = _graft_fraction_function(graft_fraction, n)
    si_of_day = _insulin_sensitivity_function(insulin_sensitivity, n)

    def run(k: int) -> _Chunk:
        a, b = chunks[k]
        whole = len(chunks) == 1  # one chunk: no per-step slicing
        return _simulate_chunk(
            table.iloc[a:b], events.slice(a, b), therapy, sensor, total, plan,
            record_states, substeps, lambda t: report(k, t),
            phi_of_day if whole else (lambda day: phi_of_day(day)[a:b]),
            si_of_day if whole else (lambda day: si_of_day(day)[a:b]),
        )  # fmt: skip

    if len(chunks) == 1:
        parts = [run(0)]
    else:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            parts = list(pool.map(run, range(len(chunks))))
    for k, part in enumerate(parts):
        if part.error is not None:
            i, minute, state = part.error
            raise NonFiniteStateError(
                f"participant {names[chunks[k][0] + i]!r}: state {model.STATES[state]} became "
                f"non-finite at minute {minute}"
            )
    def joined(arrays: list[np.ndarray]) -> np.ndarray:
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    return SimulationResult(
        participants=names,
        minutes=total,
        final_state=joined([c.x for c in parts]),
        stats=joined([c.stats for c in parts]),
        trace={k: joined([c.trace[k] for c in parts]) for k in parts[0].trace},
        therapy=type(therapy).__name__,
        states=joined([c.states for c in parts]) if record_states else None,
        daily_mean_glucose=joined([c.daily_mean for c in parts]),
        first_minute=int(record_from_minute) if record else 0,
        record_every=int(record_every) if record else 1,
    )


def _graft_fraction_function(
    graft_fraction: np.ndarray | Callable[[float], np.ndarray] | None, n: int
) -> Callable[[float], np.ndarray]:
    """Normalise ``graft_fraction`` to a function day -> (n,) array of phi >= 0."""
    from isletsim.therapy.graft import _Course

    def checked(phi: object) -> np.ndarray:
        return _nonnegative(phi, n, "graft_fraction must be finite and >= 0 for every participant")

    if graft_fraction is None:
        zeros = np.zeros(n)
        return lambda day: zeros
    if callable(graft_fraction):
        # a graft course's own ``phi``: its compiled evaluation (bit-identical, and the day
        # the engine passes is always a finite scalar)
        owner = getattr(graft_fraction, "__self__", None)
        if (
            isinstance(owner, _Course)
            and getattr(graft_fraction, "__func__", None) is _Course.phi
            and owner.n_participants == n
        ):
            fast = owner._phi_of_day()
            if fast is not None:
                message = "graft_fraction must be finite and >= 0 for every participant"

                def course_phi(day: float) -> np.ndarray:
                    phi = fast(day)  # a fresh contiguous (n,) float array
                    if not _finite_nonnegative(phi):
                        raise ValueError(message)
                    return phi

                return course_phi
        return _validated_once(graft_fraction, checked)
    constant = checked(graft_fraction)
    return lambda day: constant


def _validated_once(
    function: Callable[[float], object], checked: Callable[[object], np.ndarray]
) -> Callable[[float], np.ndarray]:
    """``checked(function(day))``, validating a returned read-only array only once.

    A callable that returns the very same read-only array again (e.g. a value cached for an
    hour of a slowly changing graft) is not re-validated: its contents cannot have changed.
    """
    last: list[object] = [None, None]

    def call(day: float) -> np.ndarray:
        out = function(day)
        if out is last[0] and isinstance(out, np.ndarray) and not out.flags.writeable:
            return last[1]  # type: ignore[return-value]
        result = checked(out)
        last[0], last[1] = out, result
        return result

    return call


def _insulin_sensitivity_function(
    insulin_sensitivity: np.ndarray | Callable[[float], np.ndarray] | None, n: int
) -> Callable[[float], np.ndarray]:
    """Normalise ``insulin_sensitivity`` to a function day -> (n,) array of s >= 0.

    ``None`` gives ones (the multiplication by 1 in the model is exact, so results are
    bit-identical to a model without the input). Arrays and the callable's results must have
    shape (n,) (or be a scalar) and be finite and >= 0; otherwise ValueError naming the
    argument.
    """
    message = "insulin_sensitivity must be finite and >= 0 for every participant"

    def checked(values: object) -> np.ndarray:
        shape = np.shape(values)
        if shape not in ((), (n,)):
            raise ValueError(
                f"insulin_sensitivity must have shape ({n},) (one value per participant), "
                f"got shape {shape}"
            )
        return _nonnegative(values, n, message)

    if insulin_sensitivity is None:
        ones = np.ones(n)
        return lambda day: ones
    from isletsim.variability import InsulinSensitivity

    if type(insulin_sensitivity) is InsulinSensitivity and insulin_sensitivity.n_participants == n:
        # factors and profile are >= 0 and finite by construction (validated parameters):
        # each call returns a fresh contiguous (n,) float64 array
        return insulin_sensitivity.__call__
    if callable(insulin_sensitivity):
        function = insulin_sensitivity
        return lambda day: checked(function(day))
    constant = checked(insulin_sensitivity)
    return lambda day: constant


def _nonnegative(values: object, n: int, message: str) -> np.ndarray:
    """``values`` broadcast to a contiguous (n,) float array; ValueError(message) unless all
    are finite and >= 0."""
    if (
        type(values) is np.ndarray and values.dtype is _F64
        and values.shape == (n,) and values.strides == (8,)
    ):  # fmt: skip
        # already what the solver takes (e.g. from our own policies): one compiled check
        if not _finite_nonnegative(values):
            raise ValueError(message)
        return values
    arr = np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)))
    if not np.all(np.isfinite(arr)) or (arr < 0).any():
        raise ValueError(message)
    return arr


@nb.njit(cache=True, nogil=True)
def _finite_nonnegative(values: np.ndarray) -> bool:
    """Whether every value is finite and >= 0 (NaN is not)."""
    for v in values:
        if not (v >= 0.0 and v < np.inf):
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _any_error(err: np.ndarray) -> bool:
    """Whether the solver flagged a non-finite state (``err[:, 0] >= 0`` anywhere)."""
    for i in range(err.shape[0]):
        if err[i, 0] >= 0:
            return True
    return False


#: Trace columns that are amounts delivered over a minute (summed over a recording interval).
_AMOUNT_COLUMNS = frozenset({"carbs_g", "insulin_u"})


@dataclass(frozen=True)
class _RecordPlan:
    """What to record: from ``first`` minute, every ``every`` minutes, these ``columns``."""

    first: int
    every: int
    columns: tuple[str, ...]


class _Recorder:
    """Keeps the recorded history of one chunk from the solver's per-call buffer.

    The solver writes every minute of a control step into ``buffer`` (N, period, len(TRACE));
    :meth:`store` copies the states at the recorded minutes and adds the delivered amounts
    to their interval (compiled, :func:`_store_minutes`), so memory is ``len(columns) x 8``
    bytes per participant per ``every`` minutes and the per-minute buffer stays in cache.
    """

    def __init__(self, plan: _RecordPlan, n: int, total: int, period: int) -> None:
        self.first, self.every = plan.first, plan.every
        slots = (total - plan.first) // plan.every + 1
        # slot-major, so that a step writes a few contiguous rows (a participant-major
        # layout touches one cache line per participant and column); the trace is its
        # (n, slots) transposed view
        self.out = np.zeros((len(plan.columns), slots, n))
        self.trace = {c: self.out[k].T for k, c in enumerate(plan.columns)}
        self.columns = np.array([TRACE_COLUMNS.index(c) for c in plan.columns], dtype=np.int64)
        self.amount = np.array([c in _AMOUNT_COLUMNS for c in plan.columns], dtype=np.bool_)
        self.buffer = np.zeros((n, max(int(period), 1), len(TRACE_COLUMNS)))

    def store(self, t: int, step: int) -> None:
        """Keep what the buffer holds for minutes ``t .. t + step - 1``."""
        _store_minutes(self.buffer, t, step, self.first, self.every, self.columns, self.amount,
                       self.out)  # fmt: skip


@nb.njit(cache=True, nogil=True)
def _store_minutes(buf, t, step, first, every, columns, amount, out):
    """Minutes ``t + k`` (k < step, at or after ``first``) of ``buf`` into their slots
    ``(t + k - first) // every`` of ``out``: states at the slot's first minute, amounts
    added (in minute order)."""
    for k in range(max(first - t, 0), step):
        m = t + k - first
        slot = m // every
        on_grid = m % every == 0
        for c in range(columns.shape[0]):
            col = columns[c]
            if amount[c]:
                for i in range(buf.shape[0]):
                    out[c, slot, i] += buf[i, k, col]
            elif on_grid:
                for i in range(buf.shape[0]):
                    out[c, slot, i] = buf[i, k, col]


#: Fewest participants worth a thread of their own.
MIN_CHUNK = 256


@dataclass
class _Chunk:
    x: np.ndarray
    stats: np.ndarray
    trace: dict[str, np.ndarray]
    states: np.ndarray | None
    error: tuple[int, int, int] | None
    daily_mean: np.ndarray | None = None


def _simulate_chunk(
    table: pd.DataFrame,
    events: MealEvents,
    therapy: Therapy,
    sensor: CGM,
    total: int,
    plan: _RecordPlan | None,
    record_states: bool,
    substeps: int,
    progress: Callable[[int], None],
    phi_of_day: Callable[[float], np.ndarray],
    si_of_day: Callable[[float], np.ndarray],
) -> _Chunk:
    """The time loop for one chunk of participants (runs on its own thread).

    ``phi_of_day`` and ``si_of_day`` give the graft fraction and the insulin sensitivity of
    the chunk's participants at a day (evaluated at every control step).
    """
    n = len(table)
    p = model.parameter_matrix(table)
    x = model.initial_state(table)
    meal = new_meal_state(n)
    bound = therapy.bind(table)
    period = int(bound.control_period_min)

    cgm = np.clip(x[:, model.GS] * p[:, model.P_INV_VG], sensor.low_mg_dl, sensor.high_mg_dl)
    obs_cgm = cgm.copy()
    obs_announced = np.zeros(n)
    ev_cursor = events.ptr[:-1].copy()
    stats = solver.new_stats(n)
    err = np.full((n, 2), -1, dtype=np.int64)
    record = plan is not None
    recorder = _Recorder(plan, n, total, period) if plan is not None else None
    rec = recorder.buffer if recorder is not None else np.zeros((1, 1, 1))
    states = np.zeros((n, total + 1, model.N_STATES)) if record_states else np.zeros((1, 1, 1))

    no_carbs = np.zeros(n)
    n_days = -(-total // MINUTES_PER_DAY)
    day_sum = np.zeros((n, n_days + 1))  # cumulative sum and count at each day's end
    day_cnt = np.zeros(n_days + 1)
    next_day = 1
    # loop invariants as locals (the loop runs every control step)
    plasma_state = x[:, model.GP]  # a view: the solver updates x in place
    inv_vg = p[:, model.P_INV_VG]
    ev_ptr, ev_minute, ev_grams = events.ptr, events.minute, events.grams
    sample_period, cgm_lo, cgm_hi = sensor.sample_period_min, sensor.low_mg_dl, sensor.high_mg_dl
    advance, contiguous, decide = solver.advance, np.ascontiguousarray, bound.decide
    carbs_message = "a therapy policy returned carbs_g that are negative or not finite"
    t = 0
    while t < total:
        step = min(period, total - t)
        action = decide(Observation(t, obs_cgm, obs_announced, plasma_state * inv_vg))
        carbs = (
            no_carbs if action.carbs_g is None else _nonnegative(action.carbs_g, n, carbs_message)
        )
        advance(
            x, p, meal, t, step, substeps,
            contiguous(action.basal_u_per_min, dtype=np.float64),
            contiguous(action.bolus_u_per_min, dtype=np.float64),
            contiguous(action.bolus_minutes, dtype=np.int64),
            contiguous(action.meal_bolus_u_per_g, dtype=np.float64),
            phi_of_day(t / MINUTES_PER_DAY), si_of_day(t / MINUTES_PER_DAY), carbs,
            ev_ptr, ev_minute, ev_grams, ev_cursor,
            sample_period, cgm, cgm_lo, cgm_hi,
            obs_cgm, obs_announced,
            record, t, rec, record_states, states,
            stats, err,
        )  # fmt: skip
        if recorder is not None:
            recorder.store(t, step)
        if _any_error(err):
            i = int(np.argmax(err[:, 0] >= 0))
            return _Chunk(x, stats, {}, None, (i, int(err[i, 0]), int(err[i, 1])))
        t += step
        # day ends are taken at the first control step at or after midnight: exact when the
        # control period divides 1440 minutes (all shipped policies), else off by < 1 period
        if t >= min(next_day * MINUTES_PER_DAY, total):
            day_sum[:, next_day] = stats[:, solver.S_SUM]
            day_cnt[next_day] = t
            next_day += 1
        progress(t)

    trace = {}
    if recorder is not None:
        solver.record_all(rec, 0, x, p, cgm)  # the last minute: state, nothing delivered
        recorder.store(total, 1)
        trace = recorder.trace
    if record_states:
        states[:, total] = x
    daily_mean = np.diff(day_sum, axis=1) / np.diff(day_cnt)
    return _Chunk(x, stats, trace, states if record_states else None, None, daily_mean)
