"""Hypoglycaemia awareness, self-treatment and severe (level 3) events (science reference 6, 10.2).

:class:`HypoglycemiaSelfCare` wraps any :class:`~isletsim.therapy.base.Therapy` and adds, per
participant and per control step, vectorised over participants:

* **Awareness.** A Gold score (1-7; Gold AE et al. *Diabetes Care* 1994;17:697 [V]); a score
  of at least ``gold_iah_threshold`` (4) means impaired awareness of hypoglycaemia (IAH). The
  score is sampled (IAH with probability ``iah_prevalence``, Yeoh 2015 [V]; score uniform on
  4..7 if impaired, 1..3 if not [U]), taken from a ``gold_score`` column of the patient
  table, or given (see ``awareness``).
* **Noticing a low.** Awake, a participant feels a low when the *true* plasma glucose is below
  the symptom threshold (``symptom_aware_mg_dl`` ~58 mg/dL, ``symptom_impaired_mg_dl`` ~45
  mg/dL; a fraction ``p_no_symptoms_impaired`` of impaired participants feel nothing) [U].
  Asleep (clock ``sleep_start_min`` .. ``sleep_end_min``) there are no symptoms. In both
  states a CGM low alarm fires when the CGM is below ``cgm_alarm_mg_dl``, repeating every
  ``cgm_alarm_repeat_min`` while it stays low; it is answered with probability ``p_wake``
  asleep and ``p_alarm_awake`` awake [U] (science reference 6.5).
* **Self-treatment: the 15-15 rule** (ADA Standards [V], reference 10.2). A noticed low
  makes the participant eat ``treatment_g`` (15 g) of fast carbohydrate, multiplied by the
  participant's carbohydrate-counting factor (lognormal, mean 1, CV ``carb_count_cv`` [U],
  reference 10.1); ``recheck_min`` (15) minutes later the CGM is looked at, and another dose
  is eaten while it is below ``recheck_below_mg_dl`` (70), at most ``max_doses`` doses per
  treatment. The carbohydrate goes to the engine as ``InsulinAction.carbs_g`` (never bolused).
* **Severe hypoglycaemic events (level 3).** While the true plasma glucose ``BG`` is below
  ``severe_below_mg_dl`` (54), a severe event occurs with hazard
  ``h = h0 * exp(kappa * (54 - BG))`` per minute, multiplied by ``r_iah`` for impaired
  awareness (science reference 6.5 [U]; ``h0`` and ``kappa`` calibrated by
  ``tools/calibrate_severe_hypo.py`` to Gold 1994's 2.8 vs 0.5 events per person-year [V]).
  The glucose at the control step stands for the whole period: the event probability of a
  period of ``P`` minutes is ``1 - exp(-h P)``. An event is treated by another person with
  ``assisted_g`` (20 g) of carbohydrate [U], after which the participant follows the 15-15
  rule; a participant can have a new event only after the true glucose has come back to
  ``rearm_mg_dl`` (one event per hypoglycaemic episode). Each event is recorded with the
  minute, the nadir and the duration below 54 mg/dL of its episode (``policy.events``).

Randomness. Every participant has a key derived from ``SeedSequence([seed, id])`` where
``id`` is an integer made of the UTF-8 bytes of the participant's name (the ``Name`` column,
else the table index). Traits are drawn at bind time from a generator seeded with that key;
the per-step uniforms are a counter-based hash (SplitMix64) of the key, the minute and a
channel number, so a participant's history never depends on who else is simulated, on the
engine's chunks, or on the order of calls. Participants with the same name share their
random numbers: give replicates distinct names.

Usage::

    policy = HypoglycemiaSelfCare(BasalBolus(), awareness="impaired", seed=1)
    result = simulate(names, 30, meals, policy)
    policy.events         # one row per severe event
    policy.participants   # awareness, thresholds, self-treatments, minutes below 54

The engine binds the policy once per chunk of participants; the tables gather all of them. A
second ``simulate`` with the same object adds to them: use a fresh policy or :meth:`clear`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from importlib.resources.abc import Traversable

import numba as nb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from isletsim.params.toml_file import load_checked_values
from isletsim.seeding import assembled_entropy, generators, seed_states
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy

MINUTES_PER_DAY = 1440
#: The packaged parameter file, as named in error messages.
PARAMETER_FILE_LABEL = "isletsim/params/hypoglycemia/self_care.toml"
#: Largest control period (min) for which one glucose value may stand for the period.
MAX_CONTROL_PERIOD_MIN = 15
#: Columns of :attr:`HypoglycemiaSelfCare.events`.
EVENT_COLUMNS: tuple[str, ...] = (
    "participant", "impaired", "minute", "episode_start_minute", "nadir_mg_dl",
    "duration_below_54_min", "complete", "assisted_g",
)  # fmt: skip
#: Columns of :attr:`HypoglycemiaSelfCare.participants`.
PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "gold_score", "impaired", "symptom_threshold_mg_dl", "carb_count_factor",
    "self_treatments", "self_treatment_g", "alarms", "alarms_answered", "minutes_below_54",
    "severe_events", "minutes_observed",
)  # fmt: skip


@dataclass(frozen=True)
class HypoglycemiaParameters:
    """Values of the awareness, self-treatment and severe-event model (module docstring).

    Build it from the packaged file with :meth:`packaged` or another file with
    :meth:`from_file`; direct construction validates too (``ValueError``). Use
    :func:`dataclasses.replace` to vary a value.

    Attributes
    ----------
    gold_iah_threshold : int, Gold score at or above which awareness is impaired (1-7).
    iah_prevalence : float, probability of IAH when awareness is sampled, in [0, 1].
    symptom_aware_mg_dl, symptom_impaired_mg_dl : float, symptom thresholds, mg/dL.
    p_no_symptoms_impaired : float, fraction of impaired participants without symptoms.
    sleep_start_min, sleep_end_min : int, clock minutes (0-1439) of falling asleep / waking.
    cgm_alarm_mg_dl : float, CGM low-alarm threshold, mg/dL.
    cgm_alarm_repeat_min : int, minutes between repeats of an unanswered alarm.
    p_wake : float, probability that an alarm is answered asleep.
    p_alarm_awake : float, probability that an alarm is answered awake.
    treatment_g : float, carbohydrate of one self-treatment dose, g.
    recheck_min : int, minutes to the re-check.
    recheck_below_mg_dl : float, another dose while the CGM is below this, mg/dL.
    max_doses : int, most doses per self-treatment.
    carb_count_cv : float, CV of the participant's carbohydrate-counting factor.
    severe_below_mg_dl : float, glucose below which the severe-event hazard runs, mg/dL.
    h0_per_min : float, hazard at ``severe_below_mg_dl``, 1/min.
    kappa_per_mg_dl : float, growth of the log-hazard per mg/dL below it.
    r_iah : float, hazard ratio for impaired awareness.
    assisted_g : float, carbohydrate given by another person at an event, g.
    rearm_mg_dl : float, glucose the participant must regain before a new event, mg/dL.
    target_rate_impaired, target_rate_aware : float, calibration targets, events per
        person-year (used by ``tools/calibrate_severe_hypo.py`` only).
    """

    gold_iah_threshold: int
    iah_prevalence: float
    symptom_aware_mg_dl: float
    symptom_impaired_mg_dl: float
    p_no_symptoms_impaired: float
    sleep_start_min: int
    sleep_end_min: int
    cgm_alarm_mg_dl: float
    cgm_alarm_repeat_min: int
    p_wake: float
    p_alarm_awake: float
    treatment_g: float
    recheck_min: int
    recheck_below_mg_dl: float
    max_doses: int
    carb_count_cv: float
    severe_below_mg_dl: float
    h0_per_min: float
    kappa_per_mg_dl: float
    r_iah: float
    assisted_g: float
    rearm_mg_dl: float
    target_rate_impaired: float
    target_rate_aware: float

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            problem = _problem(name, value, values)
            if problem is not None:
                raise ValueError(f"HypoglycemiaParameters.{name}: {problem}, got {value!r}")

    @classmethod
    def packaged(cls) -> HypoglycemiaParameters:
        """The packaged values, ``isletsim/params/hypoglycemia/self_care.toml``."""
        path = resources.files("isletsim.params") / "hypoglycemia" / "self_care.toml"
        return cls.from_file(path, label=PARAMETER_FILE_LABEL)

    @classmethod
    def from_file(
        cls, path: Traversable | os.PathLike[str] | str, *, label: str | None = None
    ) -> HypoglycemiaParameters:
        """Read a file laid out as ``self_care.toml`` through the shared loader.

        Parameters
        ----------
        path
            The TOML file.
        label
            Name of the file in error messages (default: ``str(path)``).

        Returns
        -------
        HypoglycemiaParameters

        Raises
        ------
        isletsim.params.toml_file.ParameterFileError
            A ``ValueError`` naming the file, the parameter and the field: a missing or
            unknown parameter or field, a non-finite value, a tag that disagrees with
            ``verified``/``source``, or a value out of its range.
        """
        label = str(path) if label is None else label
        names = [f.name for f in fields(cls)]
        values = load_checked_values(
            path, label=label, names=names, problem=_problem, integers=_INTEGER
        )
        return cls(**values)  # type: ignore[arg-type]


_INTEGER = frozenset(
    {"gold_iah_threshold", "sleep_start_min", "sleep_end_min", "cgm_alarm_repeat_min",
     "recheck_min", "max_doses"}
)  # fmt: skip
_PROBABILITIES = frozenset({"iah_prevalence", "p_no_symptoms_impaired", "p_wake", "p_alarm_awake"})
_NONNEGATIVE = frozenset({"h0_per_min", "kappa_per_mg_dl", "carb_count_cv"})


def _problem(name: str, value: float, values: Mapping[str, float]) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` (None if it is)."""
    v = float(value)
    if not np.isfinite(v):
        return "must be finite"
    if name in _INTEGER:
        if v != round(v):
            return "must be a whole number"
        if name == "gold_iah_threshold":
            return None if 1 <= v <= 7 else "must be a Gold score in 1..7"
        if name in ("sleep_start_min", "sleep_end_min"):
            return None if 0 <= v < MINUTES_PER_DAY else "must be a clock minute in 0..1439"
        return None if v >= 1 else "must be >= 1"
    if name in _PROBABILITIES:
        return None if 0.0 <= v <= 1.0 else "must be a probability in [0, 1]"
    if name in _NONNEGATIVE:
        return None if v >= 0.0 else "must be >= 0"
    if name == "r_iah":
        return None if v >= 1.0 else "must be >= 1 (impaired awareness does not protect)"
    if name == "rearm_mg_dl":
        floor = float(values.get("severe_below_mg_dl", 0.0))
        return None if v >= floor else "must be >= severe_below_mg_dl"
    if v <= 0.0:
        return "must be > 0"
    return None


# ------------------------------------------------------------------------------ randomness
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
#: Channels of the per-step uniforms.
_CH_ALARM, _CH_EVENT = 1, 2


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64 finaliser (wrapping uint64 arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def step_uniforms(keys: NDArray[np.uint64], minute: int, channel: int) -> NDArray[np.float64]:
    """Uniforms in [0, 1) that depend only on each key, the minute and the channel.

    Parameters
    ----------
    keys
        One uint64 key per participant.
    minute, channel
        Counter values (>= 0).

    Returns
    -------
    numpy.ndarray
        One uniform per key (53-bit resolution).
    """
    counter = np.uint64((int(minute) * 8 + int(channel)) % (1 << 64))
    with np.errstate(over="ignore"):
        x = _mix(keys + _mix(np.asarray([counter * _GOLDEN + _GOLDEN], dtype=np.uint64))[0])
    return (x >> np.uint64(11)).astype(np.float64) * (2.0**-53)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _mix_scalar(x: np.uint64) -> np.uint64:
    """:func:`_mix` of one value (compiled; uint64 arithmetic wraps as in numpy)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _counter_offset(minute: int, channel: int) -> np.uint64:
    """``_mix(counter * golden + golden)`` of :func:`step_uniforms` (compiled)."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    counter = np.uint64(minute) * np.uint64(8) + np.uint64(channel)
    return _mix_scalar(counter * golden + golden)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _uniform(key: np.uint64, offset: np.uint64) -> float:
    """One uniform of :func:`step_uniforms`: the same bits, compiled."""
    x = _mix_scalar(key + offset)
    return float(x >> np.uint64(11)) * (2.0**-53)


def participant_key(seed: int, name: str) -> np.random.SeedSequence:
    """The seed sequence of participant ``name``: ``SeedSequence([seed, id(name)])``.

    ``id(name)`` is the integer whose little-endian bytes are the UTF-8 name followed by a
    0x01 byte (stable across processes, unlike :func:`hash`).
    """
    return np.random.SeedSequence([int(seed), _name_id(name)])


def _name_id(name: str) -> int:
    """``id(name)`` of :func:`participant_key`."""
    return int.from_bytes(name.encode("utf-8") + b"\x01", "little")


# ------------------------------------------------------------------------------ the policy
class HypoglycemiaSelfCare(Therapy):
    """Hypoglycaemia awareness, 15-15 self-treatment and severe events around a therapy.

    Parameters
    ----------
    inner
        The therapy whose insulin is delivered unchanged (its control period is used; at most
        :data:`MAX_CONTROL_PERIOD_MIN` minutes, e.g. ``BasalBolus()``).
    awareness
        ``"sample"`` (IAH with probability ``iah_prevalence``, unless the patient table has
        a ``gold_score`` column, which is then used), ``"impaired"``, ``"intact"``, a Gold
        score for everyone, or a mapping / :class:`pandas.Series` from participant name to
        Gold score.
    seed
        Root entropy (int >= 0) of the participants' random numbers.
    parameters
        Model values (default: :meth:`HypoglycemiaParameters.packaged`).

    Attributes
    ----------
    events : pandas.DataFrame
        One row per severe event (columns :data:`EVENT_COLUMNS`): ``participant``,
        ``impaired``, ``minute`` (of the event), ``episode_start_minute`` (first control
        step below 54 mg/dL), ``nadir_mg_dl`` and ``duration_below_54_min`` of its episode
        (true plasma glucose at the control steps), ``complete`` (False if the episode was
        still running at the end), ``assisted_g``.
    participants : pandas.DataFrame
        Per participant (index ``participant``; columns :data:`PARTICIPANT_COLUMNS`).
    """

    def __init__(
        self,
        inner: Therapy,
        awareness: str | float | Mapping[str, float] | pd.Series = "sample",
        seed: int = 0,
        parameters: HypoglycemiaParameters | None = None,
    ) -> None:
        period = int(inner.control_period_min)
        if period > MAX_CONTROL_PERIOD_MIN:
            raise ValueError(
                f"inner therapy {type(inner).__name__} decides every {period} min; the "
                f"hypoglycaemia model needs at most {MAX_CONTROL_PERIOD_MIN} min"
            )
        if isinstance(awareness, str) and awareness not in ("sample", "impaired", "intact"):
            raise ValueError(
                f"awareness must be 'sample', 'impaired', 'intact', a Gold score or a mapping "
                f"of names to scores, got {awareness!r}"
            )
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.inner = inner
        self.awareness = awareness
        self.seed = int(seed)
        self.parameters = HypoglycemiaParameters.packaged() if parameters is None else parameters
        self.control_period_min = period
        self._bound: list[_BoundSelfCare] = []
        self._lock = threading.Lock()

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        """Bind the inner therapy and draw the participants' traits."""
        names = (
            [str(s) for s in patients["Name"]]
            if "Name" in patients
            else [str(i) for i in patients.index]
        )
        scores = self._scores(patients, names)
        bound = _BoundSelfCare(self, self.inner.bind(patients), names, scores)
        with self._lock:
            self._bound.append(bound)
        return bound

    def _scores(self, patients: pd.DataFrame, names: list[str]) -> NDArray[np.float64] | None:
        """Given Gold scores (NaN = sample), or None to sample all."""
        aw = self.awareness
        if isinstance(aw, str):
            if aw == "sample" and "gold_score" in patients:
                given = patients["gold_score"].to_numpy(float)
            else:
                return None
        elif isinstance(aw, Mapping | pd.Series):
            missing = [n for n in names if n not in aw]
            if missing:
                raise ValueError(f"awareness has no Gold score for participant(s) {missing[:5]}")
            given = np.array([float(aw[n]) for n in names])
        else:
            given = np.full(len(names), float(aw))
        bad = ~np.isin(given, np.arange(1.0, 8.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"Gold score of participant {names[i]!r} must be a whole number 1..7, "
                f"got {given[i]!r}"
            )
        return given

    def clear(self) -> None:
        """Forget the participants bound so far (and so the tables)."""
        with self._lock:
            self._bound.clear()

    @property
    def events(self) -> pd.DataFrame:
        """Severe events of every bound participant (see the class attributes)."""
        with self._lock:
            frames = [b.events_frame() for b in self._bound]
        frames = [f for f in frames if len(f)]
        if not frames:
            return _empty_events()
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values(["participant", "minute"], kind="stable").reset_index(drop=True)

    @property
    def participants(self) -> pd.DataFrame:
        """Traits and counters of every bound participant (see the class attributes)."""
        with self._lock:
            frames = [b.participants_frame() for b in self._bound]
        if not frames:
            return pd.DataFrame(
                {c: pd.Series(dtype=float) for c in PARTICIPANT_COLUMNS},
                index=pd.Index([], name="participant"),
            )
        return pd.concat(frames)


def _empty_events() -> pd.DataFrame:
    dtypes = {"participant": "object", "impaired": "bool", "minute": "int64",
              "episode_start_minute": "int64", "complete": "bool"}  # fmt: skip
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in EVENT_COLUMNS})


# rows of _BoundSelfCare's state arrays
(_I_BELOW_SINCE, _I_EVENT_MINUTE, _I_LAST_ALARM, _I_RECHECK_AT, _I_DOSES, _I_TREATMENTS,
 _I_ALARMS, _I_ANSWERED, _I_EVENTS, _I_CLOSED_SINCE, _I_ROWS) = range(11)  # fmt: skip
_F_NADIR, _F_MINUTES_BELOW, _F_TREATMENT_G, _F_CLOSED_NADIR, _F_ROWS = range(5)
_B_ARMED, _B_PENDING, _B_TREATING, _B_CLOSED, _B_ROWS = range(5)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _self_care_step(t, period, asleep, bg, cgm, keys, traits, prm, ist, fst, bst, carbs):
    """One control step of :meth:`_BoundSelfCare.decide` per participant, in place.

    The operations of the array version in the same order (so the same bits). Writes the
    self-treatment and assisted carbohydrate into ``carbs``; marks the episodes with an
    event that ended (row ``_B_CLOSED``, with their start and nadir) and returns their count.
    """
    severe, rearm, h0, kappa = prm[0], prm[1], prm[2], prm[3]
    alarm_below, repeat, p_wake, p_awake = prm[4], prm[5], prm[6], prm[7]
    recheck_below, max_doses, recheck_min = prm[8], prm[9], np.int64(prm[10])
    treatment_g, assisted_g = prm[11], prm[12]
    p_answer = p_wake if asleep else p_awake
    off_event = _counter_offset(t, _CH_EVENT)
    off_alarm = _counter_offset(t, _CH_ALARM)
    closed = 0
    for i in range(bg.shape[0]):
        g = bg[i]
        c = cgm[i]
        # episode below the severe threshold (true glucose)
        below = g < severe
        bst[_B_CLOSED, i] = False
        if not below and ist[_I_BELOW_SINCE, i] >= 0:  # ended
            if bst[_B_PENDING, i]:
                bst[_B_CLOSED, i] = True
                ist[_I_CLOSED_SINCE, i] = ist[_I_BELOW_SINCE, i]
                fst[_F_CLOSED_NADIR, i] = fst[_F_NADIR, i]
                closed += 1
            bst[_B_PENDING, i] = False
            ist[_I_BELOW_SINCE, i] = -1
            fst[_F_NADIR, i] = np.inf
        if below:
            if ist[_I_BELOW_SINCE, i] < 0:
                ist[_I_BELOW_SINCE, i] = t
            nadir = fst[_F_NADIR, i]  # np.minimum(nadir, g): g on a tie; g is not NaN
            fst[_F_NADIR, i] = nadir if nadir < g or nadir != nadir else g
        if g >= rearm:
            bst[_B_ARMED, i] = True
        fst[_F_MINUTES_BELOW, i] += (1.0 if below else 0.0) * float(period)
        # severe event: hazard per minute over this period
        event = False
        if below and bst[_B_ARMED, i]:
            hazard = h0 * traits[0, i] * np.exp(kappa * (severe - g))
            prob = -np.expm1(-hazard * period)
            event = _uniform(keys[i], off_event) < prob
        if event:
            bst[_B_ARMED, i] = False
            bst[_B_PENDING, i] = True
            ist[_I_EVENT_MINUTE, i] = t
            ist[_I_EVENTS, i] += 1
        # noticing: symptoms awake (true glucose), CGM alarm answered (asleep: p_wake)
        fires = c < alarm_below and t - ist[_I_LAST_ALARM, i] >= repeat
        answered = False
        if fires:
            ist[_I_LAST_ALARM, i] = t
            ist[_I_ALARMS, i] += 1
            answered = _uniform(keys[i], off_alarm) < p_answer
            if answered:
                ist[_I_ANSWERED, i] += 1
        symptoms = (not asleep) and g < traits[1, i]
        treating = bst[_B_TREATING, i]
        notice = (symptoms or answered) and not treating and not event
        # 15-15 rule: dose on noticing, re-check the CGM after recheck_min
        due = treating and t >= ist[_I_RECHECK_AT, i] and not event
        again = due and c < recheck_below and ist[_I_DOSES, i] < max_doses
        if due and not again:
            treating = False
        dose = notice or again
        if notice or event:
            treating = True
        bst[_B_TREATING, i] = treating
        if notice or event:
            ist[_I_DOSES, i] = 1
        elif again:
            ist[_I_DOSES, i] += 1
        if dose or event:
            ist[_I_RECHECK_AT, i] = t + recheck_min
        self_g = (1.0 if dose else 0.0) * (treatment_g * traits[2, i])
        if dose:
            ist[_I_TREATMENTS, i] += 1
        fst[_F_TREATMENT_G, i] += self_g
        carbs[i] = self_g + (1.0 if event else 0.0) * assisted_g
    return closed


class _BoundSelfCare(BoundTherapy):
    """State of N participants: traits, 15-15 treatment, alarm, hypoglycaemic episode."""

    def __init__(
        self,
        policy: HypoglycemiaSelfCare,
        inner: BoundTherapy,
        names: list[str],
        scores: NDArray[np.float64] | None,
    ) -> None:
        p = self.par = policy.parameters
        n = len(names)
        self.inner = inner
        self.names = names
        self.control_period_min = policy.control_period_min
        # traits: 4 uniforms per participant from its own generator, whatever the options
        # participant_key(seed, name) of everyone, built together (isletsim.seeding)
        seed = int(policy.seed)
        entropies = [assembled_entropy([seed, _name_id(name)], ()) for name in names]
        self.keys = seed_states(entropies, 2).view(np.uint64).reshape(n).copy()
        u = np.array([g.random(4) for g in generators(entropies)]).reshape(n, 4)
        if scores is None:
            mode = policy.awareness if isinstance(policy.awareness, str) else "sample"
            thr = p.gold_iah_threshold
            if mode == "impaired":
                impaired = np.ones(n, bool)
            elif mode == "intact":
                impaired = np.zeros(n, bool)
            else:
                impaired = u[:, 0] < p.iah_prevalence
            low = np.where(impaired, thr, 1)
            high = np.where(impaired, 7, thr - 1)
            # thr == 1: everyone is impaired; an "intact" draw then has no score below thr
            high = np.maximum(high, low)
            scores = np.floor(low + u[:, 1] * (high - low + 1)).clip(low, high)
        self.gold = np.asarray(scores, dtype=float)
        self.impaired = self.gold >= p.gold_iah_threshold
        none = self.impaired & (u[:, 2] < p.p_no_symptoms_impaired)
        self.g_sym = np.where(
            none, -np.inf, np.where(self.impaired, p.symptom_impaired_mg_dl, p.symptom_aware_mg_dl)
        )
        sigma = np.sqrt(np.log1p(p.carb_count_cv**2))
        z = _normal_ppf(u[:, 3])
        self.count_factor = np.exp(sigma * z - 0.5 * sigma**2)
        self.r = np.where(self.impaired, p.r_iah, 1.0)
        # The per-participant state lives in three arrays (int, float, bool) whose rows are
        # the named attributes below (views), so that one compiled call updates it in place.
        self._int = np.zeros((_I_ROWS, n), dtype=np.int64)
        self._float = np.zeros((_F_ROWS, n))
        self._bool = np.zeros((_B_ROWS, n), dtype=bool)
        # 15-15 treatment
        self.treating = self._bool[_B_TREATING]
        self.recheck_at = self._int[_I_RECHECK_AT]
        self.doses = self._int[_I_DOSES]
        self.last_alarm = self._int[_I_LAST_ALARM]
        self.last_alarm[:] = -(10**9)
        # hypoglycaemic episode (< severe_below) and pending events
        self.below_since = self._int[_I_BELOW_SINCE]
        self.below_since[:] = -1
        self.nadir = self._float[_F_NADIR]
        self.nadir[:] = np.inf
        self.armed = self._bool[_B_ARMED]
        self.armed[:] = True
        self.pending = self._bool[_B_PENDING]
        self.event_minute = self._int[_I_EVENT_MINUTE]
        # counters
        self.treatments = self._int[_I_TREATMENTS]
        self.treatment_g = self._float[_F_TREATMENT_G]
        self.alarms = self._int[_I_ALARMS]
        self.answered = self._int[_I_ANSWERED]
        self.minutes_below = self._float[_F_MINUTES_BELOW]
        self.n_events = self._int[_I_EVENTS]
        # traits and parameters read by the compiled step
        self._traits = np.ascontiguousarray(np.stack([self.r, self.g_sym, self.count_factor]))
        self._prm = np.array([
            p.severe_below_mg_dl, p.rearm_mg_dl, p.h0_per_min, p.kappa_per_mg_dl,
            p.cgm_alarm_mg_dl, p.cgm_alarm_repeat_min, p.p_wake, p.p_alarm_awake,
            p.recheck_below_mg_dl, p.max_doses, p.recheck_min, p.treatment_g, p.assisted_g,
        ], dtype=np.float64)  # fmt: skip
        self.observed = 0
        self.last_t = 0
        self._n = n
        self._sleep = (p.sleep_start_min, p.sleep_end_min)
        self._events: list[tuple[np.ndarray, ...]] = []

    # ---------------------------------------------------------------------------- steps
    def _asleep(self, t: int) -> bool:
        clock = t % MINUTES_PER_DAY
        a, b = self._sleep
        return (a <= clock or clock < b) if a > b else (a <= clock < b)

    def _close_episodes(self, mask: NDArray[np.bool_], t: int, complete: bool) -> None:
        done = mask & self.pending
        idx = np.flatnonzero(done)
        if idx.size:
            self._events.append((
                idx, self.event_minute[idx].copy(), self.below_since[idx].copy(),
                self.nadir[idx].copy(), (t - self.below_since[idx]).astype(float),
                np.full(idx.size, complete),
            ))  # fmt: skip

    def decide(self, obs: Observation) -> InsulinAction:
        if obs.glucose_plasma_mg_dl is None:
            raise ValueError(
                "HypoglycemiaSelfCare needs the true plasma glucose in the observation"
            )
        t = int(obs.t)
        bg = np.asarray(obs.glucose_plasma_mg_dl, dtype=float)
        cgm = np.asarray(obs.cgm_mg_dl, dtype=float)
        n = self._n
        if bg.shape != (n,) or cgm.shape != (n,):
            return self._decide_arrays(t, bg, cgm, obs)
        period = self.control_period_min
        self.last_t = t
        self.observed += period
        carbs = np.empty(n)
        closed = _self_care_step(
            t, period, self._asleep(t), bg, cgm, self.keys, self._traits, self._prm,
            self._int, self._float, self._bool, carbs,
        )  # fmt: skip
        if closed:
            idx = np.flatnonzero(self._bool[_B_CLOSED])
            since = self._int[_I_CLOSED_SINCE, idx]
            self._events.append((
                idx, self.event_minute[idx].copy(), since, self._float[_F_CLOSED_NADIR, idx],
                (t - since).astype(float), np.full(idx.size, True),
            ))  # fmt: skip
        return self._with_inner(obs, carbs)

    def _with_inner(self, obs: Observation, carbs: np.ndarray) -> InsulinAction:
        """The inner therapy's action with ``carbs`` added to its carbohydrate."""
        action = self.inner.decide(obs)
        if action.carbs_g is not None:
            carbs = carbs + np.asarray(action.carbs_g, dtype=float)
        return InsulinAction(
            basal_u_per_min=action.basal_u_per_min,
            bolus_u_per_min=action.bolus_u_per_min,
            bolus_minutes=action.bolus_minutes,
            meal_bolus_u_per_g=action.meal_bolus_u_per_g,
            carbs_g=carbs,
        )

    def _decide_arrays(
        self, t: int, bg: np.ndarray, cgm: np.ndarray, obs: Observation
    ) -> InsulinAction:
        """``decide`` with numpy broadcasting (glucose not given as (N,) arrays)."""
        p = self.par
        period = self.control_period_min
        asleep = self._asleep(t)
        self.last_t = t
        self.observed += period

        # episode below the severe threshold (true glucose)
        below = bg < p.severe_below_mg_dl
        ended = ~below & (self.below_since >= 0)
        self._close_episodes(ended, t, complete=True)
        self.pending &= ~ended
        self.below_since[...] = np.where(ended, -1, self.below_since)
        self.nadir[...] = np.where(ended, np.inf, self.nadir)
        started = below & (self.below_since < 0)
        self.below_since[...] = np.where(started, t, self.below_since)
        self.nadir[...] = np.where(below, np.minimum(self.nadir, bg), self.nadir)
        self.armed |= bg >= p.rearm_mg_dl
        self.minutes_below += below * float(period)

        # severe event: hazard per minute over this period
        depth = np.where(below, p.severe_below_mg_dl - bg, 0.0)
        hazard = np.where(below, p.h0_per_min * self.r * np.exp(p.kappa_per_mg_dl * depth), 0.0)
        prob = -np.expm1(-hazard * period)
        event = below & self.armed & (step_uniforms(self.keys, t, _CH_EVENT) < prob)
        self.armed &= ~event
        self.pending |= event
        self.event_minute[...] = np.where(event, t, self.event_minute)
        self.n_events += event

        # noticing: symptoms awake (true glucose), CGM alarm answered (asleep: p_wake)
        fires = (cgm < p.cgm_alarm_mg_dl) & (t - self.last_alarm >= p.cgm_alarm_repeat_min)
        self.last_alarm[...] = np.where(fires, t, self.last_alarm)
        p_answer = p.p_wake if asleep else p.p_alarm_awake
        answered = fires & (step_uniforms(self.keys, t, _CH_ALARM) < p_answer)
        self.alarms += fires
        self.answered += answered
        symptoms = (bg < self.g_sym) if not asleep else np.zeros_like(below)
        notice = (symptoms | answered) & ~self.treating & ~event

        # 15-15 rule: dose on noticing, re-check the CGM after recheck_min
        due = self.treating & (t >= self.recheck_at) & ~event
        again = due & (cgm < p.recheck_below_mg_dl) & (self.doses < p.max_doses)
        self.treating &= ~(due & ~again)
        dose = notice | again
        self.treating |= notice | event
        self.doses[...] = np.where(notice | event, 1, np.where(again, self.doses + 1, self.doses))
        self.recheck_at[...] = np.where(dose | event, t + p.recheck_min, self.recheck_at)
        self_g = dose * (p.treatment_g * self.count_factor)
        self.treatments += dose
        self.treatment_g += self_g
        carbs = self_g + event * p.assisted_g
        return self._with_inner(obs, carbs)

    # ---------------------------------------------------------------------------- tables
    def events_frame(self) -> pd.DataFrame:
        """Severe events of these participants (see ``HypoglycemiaSelfCare.events``)."""
        parts = list(self._events)
        open_ = np.flatnonzero(self.pending)
        if open_.size:
            end = self.last_t + self.control_period_min
            parts.append((
                open_, self.event_minute[open_], self.below_since[open_], self.nadir[open_],
                (end - self.below_since[open_]).astype(float), np.zeros(open_.size, bool),
            ))  # fmt: skip
        if not parts:
            return _empty_events()
        idx = np.concatenate([q[0] for q in parts])
        return pd.DataFrame(
            {
                "participant": np.asarray(self.names, dtype=object)[idx],
                "impaired": self.impaired[idx],
                "minute": np.concatenate([q[1] for q in parts]).astype(np.int64),
                "episode_start_minute": np.concatenate([q[2] for q in parts]).astype(np.int64),
                "nadir_mg_dl": np.concatenate([q[3] for q in parts]),
                "duration_below_54_min": np.concatenate([q[4] for q in parts]),
                "complete": np.concatenate([q[5] for q in parts]).astype(bool),
                "assisted_g": np.full(idx.size, self.par.assisted_g),
            }
        )

    def participants_frame(self) -> pd.DataFrame:
        """Traits and counters of these participants (see ``HypoglycemiaSelfCare``)."""
        return pd.DataFrame(
            {
                "gold_score": self.gold,
                "impaired": self.impaired,
                "symptom_threshold_mg_dl": self.g_sym,
                "carb_count_factor": self.count_factor,
                "self_treatments": self.treatments,
                "self_treatment_g": self.treatment_g,
                "alarms": self.alarms,
                "alarms_answered": self.answered,
                "minutes_below_54": self.minutes_below,
                "severe_events": self.n_events,
                "minutes_observed": np.full(len(self.names), float(self.observed)),
            },
            index=pd.Index(self.names, name="participant"),
        )


def _normal_ppf(u: ArrayLike) -> NDArray[np.float64]:
    """Standard normal quantile (:func:`scipy.special.ndtri`), ``u`` kept inside (0, 1)."""
    from scipy.special import ndtri

    return np.asarray(ndtri(np.clip(np.asarray(u, dtype=float), 1e-300, 1 - 1e-16)))
