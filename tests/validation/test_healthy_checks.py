"""Healthy-configuration and graft checks for the ``physiology`` suite."""

import math

import numpy as np
import pytest

from isletsim.validation import Check
from isletsim.validation.healthy_suite_checks import (
    distance_outside,
    graft_checks,
    healthy_checks,
    largest_decrease,
)


@pytest.fixture(scope="module")
def healthy() -> dict[str, Check]:
    return {c.name: c for c in healthy_checks()}


@pytest.fixture(scope="module")
def graft() -> dict[str, Check]:
    return {c.name: c for c in graft_checks()}


def test_helpers():
    assert distance_outside(85.0, 70.0, 100.0) == 0.0
    assert distance_outside(104.0, 70.0, 100.0) == pytest.approx(4.0)
    assert distance_outside(60.0, 70.0, 100.0) == pytest.approx(10.0)
    assert math.isnan(distance_outside(math.nan, 70.0, 100.0))
    assert largest_decrease(np.array([[0.0, 1.0, 3.0], [0.0, 2.0, 2.5]])) == pytest.approx(-0.5)
    assert largest_decrease(np.array([[0.0, 2.0, 1.0]])) == pytest.approx(1.0)
    assert math.isnan(largest_decrease(np.array([[0.0, math.nan]])))


def test_healthy_configuration_passes(healthy):
    assert set(healthy) == {
        "healthy/fasting_plasma_glucose", "healthy/ogtt_2h_glucose",
        "healthy/mmtt_fasting_cpeptide", "healthy/mmtt_peak_cpeptide_dcct",
        "healthy/mmtt_stimulation",
    }
    failed = [(c.name, c.value) for c in healthy.values() if not c.passed]
    assert failed == []
    assert all(c.source and c.units for c in healthy.values())
    assert 70 < healthy["healthy/ogtt_2h_glucose"].value < 140


def test_secretion_monotone_in_graft_fraction(graft):
    for name in ("graft/insulin_secretion_monotone", "graft/cpeptide_monotone"):
        assert graft[name].passed and graft[name].value < 0, name


def test_insulin_independence_checks_are_well_formed(graft):
    ind = [c for n, c in graft.items() if n.startswith("graft/insulin_independent/")]
    assert len(ind) == 10
    for c in ind:
        assert -10.0 <= c.value <= 90.0 and c.tolerance == 0.0
    assert sum(c.passed for c in ind) >= 9


def test_full_graft_keeps_every_adult_in_range(graft):
    """Needs the graft's glucagon: without it adult#009 has nocturnal hypoglycaemia
    (nadir ~44 mg/dL, 78 % of day 2 in range)."""
    failed = [(n, c.value) for n, c in graft.items() if not c.passed]
    assert failed == []
