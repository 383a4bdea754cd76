"""Meals: announced carbohydrate, eaten at 5 g/min, and the meal-size memory of the stomach.

Eating follows the reference simulator (simglucose 0.2.11 ``T1DPatient``): an announced meal of
M grams joins a pile that is eaten at 5 g/min (45 g takes 9 minutes); a meal announced while
eating lengthens the same episode. Gastric emptying needs the size ``Dbar`` of the current meal
(Dalla Man 2006); simglucose sets, at the first eating minute, ``last_Qsto`` = stomach content
at that moment and ``foodtaken`` = 0, adds the grams eaten every eating minute and uses
``Dbar = last_Qsto + 1000 * foodtaken`` mg (so Dbar grows minute by minute while eating and is
then frozen until the next meal; simglucose issue #41 / PR #50). This bookkeeping is
per-participant state outside the ODE, held in the ``meal`` array (columns ``M_*``).

Meal schedules become per-participant event lists in compressed-row form (``ptr, minute,
grams``), so any mix of fixed and individual schedules is handled by the same solver.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EAT_RATE_G_PER_MIN = 5.0  # simglucose ``T1DPatient.EAT_RATE``

# Columns of the per-participant meal bookkeeping array.
M_PLANNED, M_LAST_QSTO, M_FOODTAKEN, M_EATING, M_CHO_LAST = range(5)
N_MEAL_COLUMNS = 5

_MEAL_ITEM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*=\s*(\d+(?:\.\d*)?)\s*$")


class MealSpecError(ValueError):
    """A malformed meal specification (the message quotes the bad item)."""


def new_meal_state(n: int) -> np.ndarray:
    """Meal bookkeeping for ``n`` participants who are not eating (Dbar = 0)."""
    return np.zeros((n, N_MEAL_COLUMNS))


@dataclass(frozen=True)
class DailyMeals:
    """The same meals every day for every participant.

    Parameters
    ----------
    meals
        ``(minute_of_day, grams)`` pairs; minute 0 is the start of the simulated day.
    """

    meals: tuple[tuple[int, float], ...]

    def __post_init__(self) -> None:
        for minute, grams in self.meals:
            if not 0 <= minute < 1440:
                raise MealSpecError(f"meal time must be within the day, got minute {minute}")
            if not grams >= 0:
                raise MealSpecError(f"meal size must be >= 0 g, got {grams}")

    @classmethod
    def parse(cls, spec: str) -> DailyMeals:
        """Parse ``"07:00=45,12:00=70,18:00=80"`` (HH:MM=grams, comma separated).

        Raises
        ------
        MealSpecError
            Quoting the item that is malformed.
        """
        items = [s for s in spec.split(",")] if spec.strip() else []
        meals: list[tuple[int, float]] = []
        for item in items:
            m = _MEAL_ITEM.match(item)
            if m is None:
                raise MealSpecError(
                    f"malformed meal {item.strip()!r} in {spec!r}; expected HH:MM=grams, "
                    "e.g. 07:00=45"
                )
            hh, mm, grams = int(m.group(1)), int(m.group(2)), float(m.group(3))
            if hh > 23 or mm > 59:
                raise MealSpecError(f"malformed meal {item.strip()!r}: no such clock time")
            meals.append((hh * 60 + mm, grams))
        return cls(tuple(sorted(meals)))

    def events(self, n: int, start_min: int, end_min: int) -> MealEvents:
        """Events of ``n`` participants with ``start_min <= minute < end_min``."""
        minutes = [
            day * 1440 + m
            for day in range(start_min // 1440, (end_min - 1) // 1440 + 1)
            for m, _ in self.meals
            if start_min <= day * 1440 + m < end_min
        ]
        grams = [
            g
            for day in range(start_min // 1440, (end_min - 1) // 1440 + 1)
            for m, g in self.meals
            if start_min <= day * 1440 + m < end_min
        ]
        k = len(minutes)
        return MealEvents(
            ptr=np.arange(n + 1, dtype=np.int64) * k,
            minute=np.tile(np.asarray(minutes, dtype=np.int64), n),
            grams=np.tile(np.asarray(grams, dtype=np.float64), n),
        )


@dataclass(frozen=True)
class MealEvents:
    """Meal announcements of N participants in compressed-row form.

    Events of participant ``i`` are ``minute[ptr[i]:ptr[i+1]]`` (absolute minutes, sorted)
    and ``grams[ptr[i]:ptr[i+1]]``.
    """

    ptr: np.ndarray
    minute: np.ndarray
    grams: np.ndarray

    def slice(self, start: int, stop: int) -> MealEvents:
        """Events of participants ``start .. stop-1`` (a view, re-based pointers)."""
        a, b = int(self.ptr[start]), int(self.ptr[stop])
        return MealEvents(self.ptr[start : stop + 1] - a, self.minute[a:b], self.grams[a:b])

    @classmethod
    def from_lists(cls, per_participant: Sequence[Sequence[tuple[int, float]]]) -> MealEvents:
        """Build from one list of ``(absolute_minute, grams)`` per participant."""
        counts = [len(ev) for ev in per_participant]
        ptr = np.zeros(len(counts) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum(counts)
        flat = [e for ev in per_participant for e in sorted(ev)]
        minute = np.asarray([m for m, _ in flat], dtype=np.int64)
        grams = np.asarray([g for _, g in flat], dtype=np.float64)
        return cls(ptr, minute, grams)
