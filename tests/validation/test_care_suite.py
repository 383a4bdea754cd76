"""The ``care`` validation suite (standard care with impaired awareness vs published figures)."""

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from isletsim.validation import SUITES, Check
from isletsim.validation.care_suite import (
    DAYS_PER_YEAR,
    HBA1C_RANGE_PCT,
    TBR54_RANGE_PCT,
    TBR70_RANGE_PCT,
    TIR_RANGE_PCT,
    CareConfig,
    care_checks,
    care_population,
    care_suite,
    rate_estimate,
)

NAMES = (
    "care/iah/hba1c",
    "care/iah/tir_70_180",
    "care/iah/tbr_54",
    "care/iah/tbr_70",
    "care/iah/severe_rate",
    "care/intact/severe_rate",
    "care/severe_rate/intact_below_impaired",
    "care/tir/aid_above_mdi",
)
#: Checks that pass with the shipped model on the suite's seed (all of them since the
#: quasi-Poisson severe-rate tolerance and the multi-seed refits of the population and the
#: hazard; another seed can fail some, see the parameter READMEs).
EXPECTED_TO_PASS = NAMES
SMALL = CareConfig(participants=16, days=7, seed=5)


@pytest.fixture(scope="module")
def small_checks() -> list[Check]:
    return care_checks(SMALL)


@pytest.fixture(scope="module")
def full_checks() -> list[Check]:
    return care_suite()


def test_registered():
    assert SUITES["care"][1] is care_suite


def test_population_meets_the_arm_criteria():
    iah, intact = care_population(12, 3)
    assert len(iah) == len(intact) == 12
    assert iah["Name"].is_unique and intact["Name"].is_unique
    assert not set(iah["Name"]) & set(intact["Name"])
    assert iah["Name"].str.startswith("C").all()
    assert (iah["gold_score"] >= 4).all() and (intact["gold_score"] <= 3).all()
    assert (iah["severe_events_prior_year"] >= 2).all()
    for rows in (iah, intact):
        assert rows["age_years"].between(18, 65).all()
        assert (rows["fasting_cpeptide_pmol_l"] == 0).all()
    again, _ = care_population(12, 3)
    assert again["Name"].tolist() == iah["Name"].tolist()


@pytest.mark.parametrize(
    "bad", [{"participants": 1}, {"participants": 2.5}, {"days": -1}, {"seed": -3}]
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="CareConfig"):
        CareConfig(**bad)


def test_structure(small_checks):
    by_name = {c.name: c for c in small_checks}
    assert tuple(by_name) == NAMES
    for c in small_checks:
        assert math.isfinite(c.value)
        assert c.source and ("[V" in c.source or "[U" in c.source or "issue 5" in c.source)
        assert c.passed == (c.value <= c.tolerance)
    for name, (lo, hi) in {
        "care/iah/hba1c": HBA1C_RANGE_PCT,
        "care/iah/tir_70_180": TIR_RANGE_PCT,
        "care/iah/tbr_54": TBR54_RANGE_PCT,
        "care/iah/tbr_70": TBR70_RANGE_PCT,
    }.items():
        assert by_name[name].tolerance == pytest.approx((hi - lo) / 2)
        assert by_name[name].reference == f"{lo:g}-{hi:g} %"
    py = SMALL.participants * SMALL.days / DAYS_PER_YEAR
    q = student_t.ppf(0.975, SMALL.participants - 1)
    for name, target in (("care/iah/severe_rate", 2.8), ("care/intact/severe_rate", 0.5)):
        check = by_name[name]
        # quasi-Poisson: never below the Poisson half-width, and the method is named
        assert check.tolerance >= q * math.sqrt(target / py) * (1 - 1e-9)
        assert "quasi-Poisson" in check.description and "quasi-Poisson" in check.reference
        assert "not the uncertainty of the published figure" in check.description
    assert "quasi-Poisson" in by_name["care/severe_rate/intact_below_impaired"].description
    assert by_name["care/severe_rate/intact_below_impaired"].tolerance == 0.0
    assert by_name["care/tir/aid_above_mdi"].tolerance == 0.0
    assert "Gold AE" in by_name["care/iah/severe_rate"].source


def test_rate_estimate_dispersion():
    # equal counts: no extra-Poisson variation, phi floored at 1
    est = rate_estimate([2, 2, 2, 2], person_years=2.0)
    assert (est.events, est.rate, est.participants) == (8, 4.0, 4)
    assert est.dispersion_raw == 0.0 and est.dispersion == 1.0
    assert est.se(1.0) == pytest.approx(math.sqrt(1.0 / 2.0))
    # no event: Poisson
    assert rate_estimate([0, 0, 0], 1.0).dispersion == 1.0
    # overdispersed counts: phi = s^2 / mean, and phi rate / PY is the between-person variance
    y = np.array([0, 0, 0, 1, 0, 9, 0, 2, 0, 8])
    py = 5.0
    est = rate_estimate(y, py)
    assert est.dispersion_raw == pytest.approx(y.var(ddof=1) / y.mean())
    t = py / y.size
    assert est.se(est.rate) ** 2 == pytest.approx(np.var(y / t, ddof=1) / y.size)


def test_rate_estimate_covers_a_simulated_poisson_gamma_rate():
    # counts with a gamma-distributed person rate: the quasi-Poisson 95 % interval covers the
    # true mean rate about 95 % of the time, the Poisson one far less often
    rng = np.random.default_rng(0)
    n, t, mean_rate, shape = 100, 56 / DAYS_PER_YEAR, 2.8, 0.25
    q = student_t.ppf(0.975, n - 1)
    hits_qp = hits_p = 0
    reps = 2000
    for _ in range(reps):
        y = rng.poisson(rng.gamma(shape, mean_rate / shape, n) * t)
        est = rate_estimate(y, n * t)
        hits_qp += abs(est.rate - mean_rate) <= q * est.se(mean_rate)
        hits_p += abs(est.rate - mean_rate) <= 1.96 * math.sqrt(mean_rate / (n * t))
    assert 0.90 <= hits_qp / reps <= 0.98
    assert hits_p / reps < 0.85


def test_published_ranges_are_those_of_the_reference():
    assert HBA1C_RANGE_PCT == (6.9, 8.2)
    assert TIR_RANGE_PCT == (49.5, 65.0)
    assert TBR54_RANGE_PCT == (1.4, 3.7)
    assert TBR70_RANGE_PCT == (3.3, 8.8)


def test_aid_beats_injections_in_a_small_population(small_checks):
    check = {c.name: c for c in small_checks}["care/tir/aid_above_mdi"]
    assert check.passed, check.description


@pytest.mark.slow
def test_full_suite_expected_checks_pass(full_checks):
    assert tuple(c.name for c in full_checks) == NAMES
    failed = [
        (c.name, c.value, c.tolerance)
        for c in full_checks
        if c.name in EXPECTED_TO_PASS and not c.passed
    ]
    assert failed == []
