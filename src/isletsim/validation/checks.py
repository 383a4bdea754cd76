"""Check records and the suite registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    """One validation check.

    Attributes
    ----------
    name : short unique name, e.g. ``closed_loop/adult#001/sc_glucose``.
    description : what is compared, in words.
    reference : the reference value or what it is (a number, or text such as
        ``"simglucose 0.2.11 trajectory"``).
    value : the measured value (same units as ``tolerance``).
    tolerance : largest acceptable ``value``.
    units : units of ``value`` and ``tolerance``.
    source : where the reference comes from.
    passed : whether ``value <= tolerance``.
    """

    name: str
    description: str
    reference: str | float
    value: float
    tolerance: float
    units: str
    source: str
    passed: bool

    @classmethod
    def at_most(cls, name: str, description: str, value: float, tolerance: float, *,
                units: str, source: str, reference: str | float) -> Check:
        """A check that passes when ``value`` is finite and ``<= tolerance``."""
        ok = bool(math.isfinite(value) and value <= tolerance)
        if not isinstance(reference, str):
            reference = float(reference)
        return cls(name, description, reference, float(value), float(tolerance), units,
                   source, ok)

    def to_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


Suite = Callable[[], list[Check]]

#: Registered suites: name -> (one-line description, function running the checks).
SUITES: dict[str, tuple[str, Suite]] = {}


def register(name: str, description: str) -> Callable[[Suite], Suite]:
    """Decorator registering a suite function under ``name``."""

    def deco(fn: Suite) -> Suite:
        SUITES[name] = (description, fn)
        return fn

    return deco


def run_suite(name: str) -> list[Check]:
    """Run a registered suite and return its checks.

    Raises
    ------
    KeyError
        If no suite has that name (the message lists the known suites).
    """
    _load_suites()
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; known suites: {', '.join(sorted(SUITES))}")
    return SUITES[name][1]()


def _load_suites() -> None:
    # Suites register themselves on import.
    from isletsim.validation import (
        care_suite,  # noqa: F401
        model_suite,  # noqa: F401
        physiology_suite,  # noqa: F401
    )
