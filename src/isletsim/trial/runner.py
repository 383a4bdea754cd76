"""Run a virtual trial from a protocol: screening, run-in, infusion, follow-up, visits, endpoints.

The flow (architecture: protocol -> cohort -> engine -> records -> metrics -> endpoints):

1. **Screening.** Candidates are drawn one by one from the virtual population
   (:func:`isletsim.population.sample_population`, participant ``i``'s physiology and traits
   depend only on the seed and ``i``) and checked against the eligibility criteria; eligible
   candidates fill the arms in protocol order (part A before parts B/C, as enrolled). At
   most ``population.max_screened`` candidates are screened; too few eligible ones is an
   error before any simulation.
2. **Simulation.** Each enrolled participant lives ``run_in_days`` days of baseline
   (negative study days) and ``follow_up_days`` days after day 0 in one run of the engine:
   random meals with personal habits, their usual insulin therapy (injections, pump or
   automated delivery, with carb-counting error and missed/late boluses), impaired or intact
   awareness with CGM alarms, 15-15 self-treatment and severe events
   (:class:`~isletsim.therapy.hypoglycemia.HypoglycemiaSelfCare`), and, in an islet arm, the
   infused graft (:func:`~isletsim.therapy.graft.sample_graft`, infused on day 0, optional
   redosing) with clinician weaning from day 0
   (:class:`~isletsim.therapy.weaning.ClinicianWeaning`), with insulin sensitivity varying
   from day to day and over the day (:class:`~isletsim.variability.InsulinSensitivity`).
   MMTTs happen on their visit days
   inside this run (:mod:`isletsim.trial.assessments`). Participants are run in groups of
   the same therapy stack; results do not depend on the grouping.
3. **Safety.** Adverse events, eGFR and background mortality from the arm's
   immunosuppression regimen (:func:`~isletsim.therapy.immunosuppression.simulate_safety`);
   a death ends the participant's follow-up (later data are censored).
4. **Visits and endpoints.** :mod:`isletsim.trial.visits` and :mod:`isletsim.trial.endpoints`.

Randomness: one root ``SeedSequence(seed)`` with one child per purpose (population, meals,
graft, redosing, safety, assay, behaviour, self-care); within a purpose participant ``k``
(enrolment order) has its own stream, so the same protocol and seed give identical results.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from isletsim.engine import MINUTES_PER_DAY, SimulationResult, simulate
from isletsim.meals import MealEvents
from isletsim.scenarios import random_meals, sample_habits
from isletsim.therapy.aid import AutomatedInsulinDelivery
from isletsim.therapy.basal_bolus import BasalBolus
from isletsim.therapy.base import Therapy
from isletsim.therapy.graft import GraftCourse, IsletProduct, participant_streams, sample_graft
from isletsim.therapy.hypoglycemia import HypoglycemiaSelfCare
from isletsim.therapy.immunosuppression import get_safety_regimen, simulate_safety
from isletsim.therapy.regimens import BolusBehaviour, MultipleDailyInjections, PumpTherapy
from isletsim.therapy.weaning import ClinicianWeaning, WeaningProtocol
from isletsim.trial.assessments import (
    MMTT_CLOCK_MIN,
    WithholdTestBolus,
    mmtt_drink_g,
    with_test_drinks,
)
from isletsim.trial.protocol import Arm, Protocol
from isletsim.trial.records import TRACE_COLUMNS, TRACE_EVERY_MIN
from isletsim.variability import InsulinSensitivity

#: Purposes of the children of the root seed (their order is part of the seed contract).
PURPOSES: tuple[str, ...] = (
    "population", "meals", "graft", "redosing", "safety", "assay", "behaviour", "self_care",
    "variability",
)  # fmt: skip
MEAL_PATTERN = "simglucose_random"


class EnrolmentError(RuntimeError):
    """Too few eligible candidates to fill the protocol's arms."""


def purpose_seed(seed: int, purpose: str) -> np.random.SeedSequence:
    """The child of ``SeedSequence(seed)`` for one purpose of :data:`PURPOSES`."""
    return np.random.SeedSequence(int(seed), spawn_key=(PURPOSES.index(purpose),))


def purpose_int(seed: int, purpose: str) -> int:
    """A 63-bit integer seed for policies that take an integer root (behaviour, self-care)."""
    return int(purpose_seed(seed, purpose).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


# ================================================================================ screening
def eligibility_failures(candidates: pd.DataFrame, protocol: Protocol) -> pd.Series:
    """Criteria each candidate fails, ``'; '``-joined (empty string: eligible).

    Criteria of ``[eligibility]``: age range (inclusive), minimum Gold score (impaired
    awareness is Gold >= 4, Gold AE et al. *Diabetes Care* 1994;17:697), minimum severe
    events in the prior year, minimum diabetes duration, usual therapy among the allowed
    ones, and no detectable fasting C-peptide (type 1 diabetes without residual secretion:
    every virtual candidate has none, so it never fails in the model).
    """
    e = protocol.eligibility
    lo, hi = e.age_years
    checks: list[tuple[str, pd.Series]] = [
        (f"age outside {lo:g}-{hi:g} y", ~candidates["age_years"].between(lo, hi)),
        (
            f"therapy not in {list(e.therapies)}",
            ~candidates["therapy"].isin(list(e.therapies)),
        ),
    ]
    if e.min_gold_score is not None:
        checks.append(
            (f"Gold score < {e.min_gold_score}", candidates["gold_score"] < e.min_gold_score)
        )
    if e.min_severe_events_prior_year is not None:
        k = e.min_severe_events_prior_year
        checks.append(
            (f"< {k} severe events in the prior year", candidates["severe_events_prior_year"] < k)
        )
    if e.min_diabetes_duration_years is not None:
        d = e.min_diabetes_duration_years
        checks.append((f"diabetes duration < {d:g} y", candidates["diabetes_duration_years"] < d))
    fails = pd.Series([""] * len(candidates), index=candidates.index, dtype=object)
    for label, bad in checks:
        bad = bad.to_numpy(bool)
        fails[bad] = [f"{f}; {label}" if f else label for f in fails[bad]]
    return fails


def screen(protocol: Protocol, seed: int) -> pd.DataFrame:
    """Screen candidates in order until every arm is full.

    Returns
    -------
    pandas.DataFrame
        One row per screened candidate (population columns plus ``eligible``,
        ``screen_failure``, ``arm`` (empty if not enrolled) and ``enrolled``).

    Raises
    ------
    EnrolmentError
        Fewer than ``sum(arm.n)`` eligible candidates among ``max_screened``.
    """
    from isletsim.population import sample_population

    need = protocol.n_enrolled
    pool = sample_population(
        protocol.population.max_screened,
        purpose_int(seed, "population"),
        cohort=protocol.population.cohort,
    )
    fails = eligibility_failures(pool, protocol)
    eligible = (fails == "").to_numpy()
    n_ok = int(eligible.sum())
    if n_ok < need:
        raise EnrolmentError(
            f"{protocol.source}: only {n_ok} of {len(pool)} screened candidates are eligible, "
            f"the arms need {need}; raise population.max_screened or relax [eligibility]"
        )
    last = int(np.flatnonzero(eligible)[need - 1])
    screened = pool.iloc[: last + 1].copy()
    screened["eligible"] = eligible[: last + 1]
    screened["screen_failure"] = fails.iloc[: last + 1].to_numpy()
    arms = np.repeat([a.name for a in protocol.arms], [a.n for a in protocol.arms])
    screened["arm"] = ""
    screened.loc[screened["eligible"].to_numpy(), "arm"] = arms
    screened["enrolled"] = screened["arm"] != ""
    return screened.reset_index(drop=True)


# ================================================================================ simulation
@dataclass
class GroupRun:
    """One engine run: participants of the same therapy stack."""

    rows: pd.DataFrame  # enrolled rows of this group (index = enrolment order)
    result: SimulationResult
    self_care: HypoglycemiaSelfCare
    weaning: ClinicianWeaning | None
    drink_minutes: list[int]


def _standard_care(kind: str, seed: int) -> Therapy:
    behaviour = BolusBehaviour.from_parameters(seed=purpose_int(seed, "behaviour"))
    if kind == "mdi":
        return MultipleDailyInjections(behaviour=behaviour)
    if kind == "pump":
        # the pump acts on each 5-minute CGM reading, as sensor-augmented pumps do
        return PumpTherapy(basal_bolus=BasalBolus(control_period_min=5), behaviour=behaviour)
    if kind == "aid":
        # hybrid loop: the participant still boluses for meals, with the same behaviour
        return AutomatedInsulinDelivery(behaviour=behaviour)
    raise ValueError(f"unknown standard-care therapy {kind!r}; allowed: 'mdi', 'pump', 'aid'")


class _GraftFraction:
    """phi(day) of the enrolled participants' first infusion, with their redosing plan."""

    def __init__(self, first: GraftCourse, second: GraftCourse | None,
                 redose_day: np.ndarray, condition_always: np.ndarray) -> None:  # fmt: skip
        self.first, self.second = first, second
        self.redose_day = redose_day
        self.always = condition_always
        #: Who received the second infusion (decided when their group reaches the day).
        self.given = np.zeros(redose_day.size, bool)


class _GroupPhi:
    """Graft fraction of one engine group: first course plus conditional redosing.

    The redosing condition ``insulin_dependent`` is read from the group's weaning policy
    (insulin not stopped) on the first control step at or after the redosing day. The
    fraction is evaluated on an hourly grid (the graft changes over days), a day of hours
    at a time.
    """

    def __init__(self, phi: _GraftFraction, idx: np.ndarray,
                 weaning: ClinicianWeaning | None, names: list[str]) -> None:  # fmt: skip
        self.phi, self.idx, self.weaning, self.names = phi, idx, weaning, names
        self.redose_day = phi.redose_day[idx]
        self.decided = ~np.isfinite(self.redose_day)
        self._cache: tuple[float, np.ndarray] | None = None
        self._blocks: dict[str, tuple[int, np.ndarray]] = {}

    def _hourly(self, which: str, hour: int) -> np.ndarray:
        """phi of course ``which`` (``first``/``second``) at ``hour`` (read-only (n,) row of
        a block of 24 hours computed together)."""
        start = hour - hour % 24
        have = self._blocks.get(which)
        if have is None or have[0] != start:
            course = getattr(self.phi, which)
            days = np.arange(start, start + 24, dtype=float) / 24.0
            block = np.ascontiguousarray(course.phi(days)[self.idx].T)
            block.flags.writeable = False
            have = self._blocks[which] = (start, block)
        return have[1][hour - start]

    def _decide(self, due: np.ndarray) -> None:
        new = due & ~self.decided
        if not new.any():
            return
        dependent = np.ones(self.idx.size, bool)
        if self.weaning is not None:
            stopped = self.weaning.current.loc[self.names, "stopped"].to_numpy(bool)
            dependent = ~stopped
        give = new & (self.phi.always[self.idx] | dependent)
        self.phi.given[self.idx[give]] = True
        self.decided |= new

    def __call__(self, day: float) -> np.ndarray:
        hour = math.floor(day * 24.0)  # hourly: the graft changes over days
        key = hour / 24.0
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        phi = self._hourly("first", hour)  # read-only: the engine validates it once
        if self.phi.second is not None:
            due = key >= self.redose_day
            self._decide(due)
            given = self.phi.given[self.idx] & due
            if given.any():
                phi = phi + np.where(given, self._hourly("second", hour), 0.0)
                phi.flags.writeable = False
        self._cache = (key, phi)
        return phi


def _courses(enrolled: pd.DataFrame, protocol: Protocol, seed: int,
             products: Mapping[str, IsletProduct] | None = None) -> tuple[
    GraftCourse, GraftCourse | None, np.ndarray, np.ndarray
]:  # fmt: skip
    """Graft courses of every enrolled participant (dose 0 in control arms)."""
    run_in = protocol.protocol.run_in_days
    n = len(enrolled)
    arms = {a.name: a for a in protocol.arms}
    first_streams = participant_streams(purpose_seed(seed, "graft"), n)
    second_streams = participant_streams(purpose_seed(seed, "redosing"), n)
    bw = enrolled["BW"].to_numpy(float)
    phi_parts: list[GraftCourse] = []
    second_parts: list[GraftCourse] = []
    redose_day = np.full(n, np.inf)
    always = np.zeros(n, bool)
    used = {a.product for a in protocol.arms if a.product is not None} or {"sc-islets"}
    for product in sorted(used):
        dose = np.zeros(n)
        dose2 = np.zeros(n)
        regimen = np.array(["none"] * n, dtype=object)
        for k, name in enumerate(enrolled["arm"]):
            arm = arms[name]
            if arm.product != product:
                continue
            dose[k] = dose_value(arm, arm.dose)
            regimen[k] = get_safety_regimen(arm.immunosuppression).graft_regimen.name
            if arm.redosing is not None:
                dose2[k] = dose_value(arm, arm.redosing.dose)
                redose_day[k] = arm.redosing.day
                always[k] = arm.redosing.condition == "always"
        for reg in sorted(set(regimen)):
            mask = regimen == reg
            prod: IsletProduct | str = (products or {}).get(product, product)
            phi_parts.append(_masked_course(prod, dose, bw, reg, first_streams, mask, run_in))
            if (dose2[mask] > 0).any():
                second_parts.append(
                    _masked_course(prod, dose2, bw, reg, second_streams, mask,
                                   run_in + np.where(np.isfinite(redose_day), redose_day, 0.0))
                )  # fmt: skip
    first = _sum(phi_parts)
    second = _sum(second_parts) if second_parts else None
    return first, second, redose_day, always


def _masked_course(product: IsletProduct | str, dose: np.ndarray, bw: np.ndarray, regimen: str,
                   streams: list[np.random.Generator], mask: np.ndarray,
                   infusion_day: float | np.ndarray) -> GraftCourse:  # fmt: skip
    """One course over all participants; those outside ``mask`` get dose 0.

    Every participant draws its uniforms from its own stream in every call, so a
    participant's course does not depend on who else shares its regimen.
    """
    d = np.where(mask, dose, 0.0)
    day = np.broadcast_to(np.asarray(infusion_day, dtype=float), d.shape)
    return sample_graft(product, d, bw, regimen, [_copy(g) for g in streams],
                        infusion_day=np.where(mask, day, 0.0))  # fmt: skip


def _copy(g: np.random.Generator) -> np.random.Generator:
    """An independent copy of a generator at its current state."""
    h = np.random.default_rng()
    h.bit_generator.state = g.bit_generator.state
    return h


def _sum(parts: list[GraftCourse]) -> GraftCourse:
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def dose_value(arm: Arm, dose: float | str) -> float:
    """A dose of ``arm`` in its product's unit (named doses resolved from the product file)."""
    from isletsim.therapy.graft import load_islet_product

    if isinstance(dose, str):
        assert arm.product is not None
        return float(load_islet_product(arm.product).named_doses[dose])
    return float(dose)


@dataclass
class TrialInputs:
    """Everything random a simulation needs for a set of enrolled participants."""

    meals: MealEvents
    drink_g: np.ndarray
    first: Any  # a graft course: phi(day) -> (N,) or (N, D)
    second: Any | None
    redose_day: np.ndarray
    always: np.ndarray
    sensitivity: InsulinSensitivity


def trial_inputs(
    enrolled: pd.DataFrame, protocol: Protocol, seed: int,
    products: Mapping[str, IsletProduct] | None = None,
) -> TrialInputs:  # fmt: skip
    """Meals (with the MMTT drinks), graft courses and insulin sensitivity of one trial."""
    p = protocol.protocol
    n = len(enrolled)
    days = p.run_in_days + p.follow_up_days + 1  # through the final visit day
    streams = participant_streams(purpose_seed(seed, "meals"), n)
    meals = random_meals(sample_habits(MEAL_PATTERN, streams), days, streams)
    drink_g = mmtt_drink_g(enrolled["BW"].to_numpy(float))
    meals = with_test_drinks(meals, _drink_minutes(protocol), drink_g)
    sensitivity = InsulinSensitivity(n, days, seed=purpose_seed(seed, "variability"))
    first, second, redose_day, always = _courses(enrolled, protocol, seed, products)
    return TrialInputs(meals, drink_g, first, second, redose_day, always, sensitivity)


def concat_inputs(parts: list[TrialInputs]) -> TrialInputs:
    """The inputs of several trials as one population (participants in order)."""
    if len(parts) == 1:
        return parts[0]
    seconds = [q.second for q in parts]
    has_second = any(x is not None for x in seconds)
    return TrialInputs(
        meals=_concat_meals([q.meals for q in parts]),
        drink_g=np.concatenate([q.drink_g for q in parts]),
        first=_ConcatCourse([q.first for q in parts]),
        second=_ConcatCourse([
            x if x is not None else _NoCourse(len(q.drink_g))
            for x, q in zip(seconds, parts, strict=True)
        ]) if has_second else None,
        redose_day=np.concatenate([q.redose_day for q in parts]),
        always=np.concatenate([q.always for q in parts]),
        sensitivity=InsulinSensitivity.concatenate([q.sensitivity for q in parts]),
    )  # fmt: skip


class _ConcatCourse:
    """phi of several graft courses stacked by participant."""

    def __init__(self, courses: list[Any]) -> None:
        self.courses = courses

    def phi(self, day: float | np.ndarray) -> np.ndarray:
        return np.concatenate([c.phi(day) for c in self.courses], axis=0)


class _NoCourse:
    """No second infusion for the participants of one trial."""

    def __init__(self, n: int) -> None:
        self.n = n

    def phi(self, day: float | np.ndarray) -> np.ndarray:
        d = np.asarray(day, dtype=float)
        return np.zeros((self.n, *d.shape))


def _concat_meals(parts: list[MealEvents]) -> MealEvents:
    ptrs, offset = [], 0
    for m in parts:
        ptrs.append(m.ptr[:-1] + offset)
        offset += int(m.ptr[-1])
    return MealEvents(
        ptr=np.concatenate([*ptrs, [offset]]).astype(np.int64),
        minute=np.concatenate([m.minute for m in parts]),
        grams=np.concatenate([m.grams for m in parts]),
    )


def _drink_minutes(protocol: Protocol) -> list[int]:
    run_in = protocol.protocol.run_in_days
    return [(run_in + d) * MINUTES_PER_DAY + MMTT_CLOCK_MIN for d in protocol.visits.mmtt_days]


def run_groups(
    enrolled: pd.DataFrame,
    protocol: Protocol,
    inputs: TrialInputs,
    policy_seed: int,
    *,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> tuple[list[GroupRun], _GraftFraction]:
    """Simulate every enrolled participant (run-in and follow-up) in therapy groups.

    ``policy_seed`` roots the bolus-behaviour and self-care streams, which are keyed on the
    participant names (unique across the trials run together). ``threads`` is passed to
    :func:`~isletsim.engine.simulate` (results do not depend on it). Each run keeps
    ``records.TRACE_COLUMNS`` every ``records.TRACE_EVERY_MIN`` minutes.
    """
    p = protocol.protocol
    days = p.run_in_days + p.follow_up_days + 1  # through the final visit day
    arms = {a.name: a for a in protocol.arms}
    drinks = _drink_minutes(protocol)
    drink_g = inputs.drink_g
    meals = inputs.meals
    sensitivity = inputs.sensitivity

    weaning_protocol = WeaningProtocol.clinician()
    weaning_protocol = dataclasses.replace(
        weaning_protocol, start_day=weaning_protocol.start_day + p.run_in_days
    )
    key = [
        (t, arms[a].weaning if not arms[a].is_control else "none")
        for t, a in zip(enrolled["therapy"], enrolled["arm"], strict=True)
    ]
    groups = sorted(set(key))
    names = enrolled["Name"].astype(str).tolist()
    runs: list[GroupRun] = []
    total_minutes = days * MINUTES_PER_DAY * len(groups)
    done_before = 0
    phi_all = _GraftFraction(inputs.first, inputs.second, inputs.redose_day, inputs.always)
    for therapy, weaning in groups:
        idx = np.array([k for k, g in enumerate(key) if g == (therapy, weaning)])
        rows = enrolled.iloc[idx].reset_index(drop=True)
        stack: Therapy = WithholdTestBolus(
            _standard_care(therapy, policy_seed), drinks,
            {names[i]: float(drink_g[i]) for i in idx},
        )  # fmt: skip
        wean = None
        if weaning == "clinician":
            wean = ClinicianWeaning(stack, weaning_protocol)
            stack = wean
        care = HypoglycemiaSelfCare(
            stack, awareness="sample", seed=purpose_int(policy_seed, "self_care")
        )
        sub_meals = _subset(meals, idx)
        phi_group = _GroupPhi(phi_all, idx, wean, [names[i] for i in idx])
        offset = done_before

        def report(done: int, total: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, total_minutes)

        result = simulate(rows, days, sub_meals, care, graft_fraction=phi_group,
                          insulin_sensitivity=sensitivity.subset(idx), record=True,
                          record_every=TRACE_EVERY_MIN, record_columns=TRACE_COLUMNS,
                          threads=threads, progress=report)  # fmt: skip
        done_before += days * MINUTES_PER_DAY
        runs.append(GroupRun(enrolled.iloc[idx], result, care, wean, drinks))
    return runs, phi_all


def _subset(meals: MealEvents, idx: np.ndarray) -> MealEvents:
    lists = []
    for i in idx:
        a, b = int(meals.ptr[i]), int(meals.ptr[i + 1])
        lists.append(list(zip(meals.minute[a:b].tolist(), meals.grams[a:b].tolist(), strict=True)))
    return MealEvents.from_lists(lists)


def run_safety(
    enrolled: pd.DataFrame, protocol: Protocol, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Adverse events and deaths of every enrolled participant, on study days.

    Immunosuppression starts on day 0 (induction with the infusion); control arms have the
    regimen ``"none"`` (background mortality only). Returns the event log (``participant``
    as the enrolment index, ``day`` as study day) and the death day (``inf`` if none).
    """
    p = protocol.protocol
    arms = {a.name: a for a in protocol.arms}
    n = len(enrolled)
    streams = participant_streams(purpose_seed(seed, "safety"), n)
    regimen = np.array([arms[a].immunosuppression for a in enrolled["arm"]], dtype=object)
    infusion = np.array(
        [[np.nan, np.nan] if arms[a].is_control else
         [0.0, float(arms[a].redosing.day) if arms[a].redosing is not None else np.nan]
         for a in enrolled["arm"]]
    )  # fmt: skip
    female = (enrolled["sex"] == "F").to_numpy(bool)
    age = enrolled["age_years"].to_numpy(float)
    frames = []
    death = np.full(n, np.inf)
    for reg in sorted(set(regimen)):
        idx = np.flatnonzero(regimen == reg)
        inf = infusion[idx]
        sim = simulate_safety(
            reg, age[idx], float(p.follow_up_days), [streams[i] for i in idx],
            infusion_days=inf, female=female[idx],
        )  # fmt: skip
        ev = sim.events.copy()
        ev["participant"] = idx[ev["participant"].to_numpy(int)]
        frames.append(ev)
        death[idx] = sim.death_day
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return events, death


__all__ = [
    "PURPOSES",
    "EnrolmentError",
    "GroupRun",
    "eligibility_failures",
    "purpose_int",
    "purpose_seed",
    "run_groups",
    "run_safety",
    "screen",
]
