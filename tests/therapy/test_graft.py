"""Graft course: closed forms, sampling, randomness contract, shipped parameters, bad input.

Monte-Carlo checks are seeded (deterministic) and use a tolerance of 4 standard errors
computed from the *analytic* variance, so a correct model fails for fewer than 1 in 10^4
seeds while a wrong mean or hazard of the size that matters fails reliably.
"""

import math
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from isletsim.therapy.graft import (
    DAYS_PER_YEAR,
    ISLET_PRODUCTS,
    N_UNIFORMS_PER_COURSE,
    GraftCourse,
    GraftCourseSum,
    graft_survival_median,
    ieq_from_cells,
    load_immunosuppression_regimens,
    load_islet_product,
    participant_streams,
    sample_graft,
)

ROOT = Path(__file__).resolve().parents[2]
SC = load_islet_product("sc-islets")
DONOR = load_islet_product("donor-islets")
BW = 70.0


def _closed_form(product, dose_ieq, days, infusion_day=0.0):
    """φ of a typical participant without abrupt loss, written out independently."""
    t = np.asarray(days, dtype=float) - infusion_day
    phi_max = dose_ieq * (1 - product.early_loss_mean) / product.reference_ieq
    m = np.where(
        t > product.maturation_lag_days,
        1
        - np.exp(
            -(
                (np.clip(t - product.maturation_lag_days, 0, None) / product.maturation_tau_days)
                ** product.maturation_shape
            )
        ),
        0.0,
    )
    lam = math.log(2) / (product.median_graft_survival_years * 365.25)
    s = np.exp(-lam * np.clip(t, 0, None))
    return phi_max * m * s


def _typical(product, **changes):
    """No between-participant variability and no abrupt loss."""
    return product.without_variability().with_values(abrupt_loss_per_year=0.0, **changes)


# ------------------------------------------------------------------------------------------
# shipped parameter files
# ------------------------------------------------------------------------------------------


def _graft_files():
    folder = resources.files("isletsim.params") / "graft"
    return {p.name: p for p in folder.iterdir() if p.name.endswith(".toml")}


def _sourced_entries(node, path=()):
    """Every {value, unit, source, verified} table in a parsed TOML document."""
    if isinstance(node, dict):
        if "value" in node:
            yield path, node
        else:
            for key, child in node.items():
                yield from _sourced_entries(child, (*path, key))


def test_every_value_has_unit_source_and_verified_flag_and_is_documented():
    readme = (resources.files("isletsim.params") / "graft" / "README.md").read_text()
    files = _graft_files()
    assert set(files) == {
        "sc_islets.toml",
        "donor_islets.toml",
        "reference.toml",
        "immunosuppression.toml",
    }
    n = 0
    for name, path in files.items():
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
        for keys, entry in _sourced_entries(doc):
            n += 1
            assert set(entry) == {"value", "unit", "source", "verified"}, (name, keys)
            assert isinstance(entry["verified"], bool), (name, keys)
            assert isinstance(entry["value"], float | int), (name, keys)
            assert len(entry["source"]) > 20, (name, keys)
            # [U] in the text <=> not verified, unless the figure itself is tagged [V]
            if not entry["verified"]:
                assert "[U]" in entry["source"], (name, keys)
            else:
                assert "[V" in entry["source"], (name, keys)
            assert f"`{keys[-1]}`" in readme or keys[-1] in readme, (name, keys)
    assert n >= 30


def test_tags_follow_the_science_reference():
    # [V]: zimislecel doses (Reichman 2025); donor median graft survival (Marfil-Garza 2022)
    assert SC.sources["dose:full"].verified and SC.named_doses["full"] == 0.8e9
    assert SC.sources["dose:half"].verified and SC.named_doses["half"] == 0.4e9
    assert DONOR.sources["median_graft_survival_years"].verified
    # [U]: extrapolation to SC-islets, cells/IEQ, early loss, maturation, IEQ_ref, hazard
    for key in (
        "median_graft_survival_years",
        "cells_per_ieq",
        "early_loss_mean",
        "maturation_tau_days",
        "reference_ieq",
        "abrupt_loss_per_year",
    ):
        assert not SC.sources[key].verified, key
    assert not DONOR.sources["dose:typical-infusion"].verified
    assert (SC.maturation_lag_days, SC.maturation_tau_days, SC.maturation_shape) == (30, 120, 2)
    assert (DONOR.maturation_lag_days, DONOR.maturation_tau_days) == (3, 14)
    assert (SC.early_loss_mean, SC.early_loss_min, SC.early_loss_max) == (0.5, 0.25, 0.7)
    assert SC.reference_ieq == 1.0e6
    # the SC-islet potency is the value fitted by calibration/calibrate_sc_islets.py
    fit = tomllib.loads((ROOT / "calibration" / "sc_islets_fit.toml").read_text())
    assert SC.cells_per_ieq == fit["best"]["cells_per_ieq"]
    assert "calibrate_sc_islets.py" in SC.sources["cells_per_ieq"].source
    assert DONOR.cells_per_ieq is None and DONOR.dose_unit == "IEQ/kg"
    regimens = load_immunosuppression_regimens()
    assert set(regimens) == {"none", "standard"}
    assert regimens["standard"].abrupt_loss_multiplier == 1.0
    assert regimens["none"].abrupt_loss_multiplier > 1.0
    assert "sc-islets" in repr(SC) and f"{SC.cells_per_ieq:g} cells/IEQ" in repr(SC)
    assert SC.parameter_table().loc["dose:full", "verified"]


def test_ieq_from_cells():
    assert float(ieq_from_cells(0.8e9, 1560.0)) == pytest.approx(512_820.5128)
    np.testing.assert_allclose(ieq_from_cells([0, 1560, 3120], 1560), [0, 1, 2])
    # ≈ 7,300 IEQ/kg at 70 kg (science reference §4.3)
    assert float(ieq_from_cells(0.8e9, 1560.0)) / 70 == pytest.approx(7326, abs=1)
    with pytest.raises(ValueError, match="cells_per_ieq"):
        ieq_from_cells(1e9, 0.0)
    with pytest.raises(ValueError, match="cells"):
        ieq_from_cells(-1.0, 1560.0)


# ------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "dose", "dose_ieq"),
    [(SC, 0.8e9, 0.8e9 / SC.cells_per_ieq), (DONOR, 5000.0, 5000.0 * BW)],
    ids=["sc-islets", "donor-islets"],
)
def test_phi_equals_closed_form_without_variability(product, dose, dose_ieq):
    typical = _typical(product)
    days = np.concatenate([np.linspace(0, 3 * 365, 400), [2.5, 3.0, 30.0, 30.5, 4000.0]])
    course = sample_graft(typical, dose, BW, "standard", participant_streams(7, 4))
    expected = _closed_form(typical, dose_ieq, days)
    # rtol 1e-9: the test's 1 - exp(-x) loses digits to cancellation for small x (the module
    # uses expm1); anything model-level differs by far more.
    np.testing.assert_allclose(course.phi(days), np.tile(expected, (4, 1)), rtol=1e-9)
    np.testing.assert_allclose(course.phi(400.0), _closed_form(typical, dose_ieq, 400.0))
    # a later infusion is the same curve shifted
    later = sample_graft(typical, dose, BW, "standard", participant_streams(7, 4), infusion_day=60)
    np.testing.assert_allclose(later.phi(days)[0], _closed_form(typical, dose_ieq, days, 60.0))
    assert course.phi(days).shape == (4, days.size) and course.phi(10.0).shape == (4,)


def test_maturation_is_zero_up_to_the_lag_and_tends_to_one():
    for product in (SC, DONOR):
        flat = _typical(product, median_graft_survival_years=math.inf)  # m(t) alone
        course = sample_graft(
            flat, "half" if product is SC else 5000.0, BW, "standard", participant_streams(1, 3)
        )
        lag, tau = flat.maturation_lag_days, flat.maturation_tau_days
        before = np.linspace(-5, lag, 50)
        assert (course.phi(before) == 0).all()
        after = np.linspace(lag, lag + 10 * tau, 500)
        m = course.phi(after)[0] / course.phi_max[0]
        assert (np.diff(m) >= 0).all() and (m[1:] > 0).all()
        assert m[-1] == pytest.approx(1.0, abs=1e-12)
        # half maturation at t_lag + tau·(ln 2)^(1/n)
        t_half = lag + tau * math.log(2) ** (1 / flat.maturation_shape)
        assert course.phi(t_half)[0] / course.phi_max[0] == pytest.approx(0.5)


def test_median_survival_is_ln2_over_lambda():
    for product in (SC, DONOR):
        lam = product.attrition_rate_per_day
        assert lam == pytest.approx(math.log(2) / (5.9 * 365.25))
        assert graft_survival_median(product) == pytest.approx(math.log(2) / lam)
        assert graft_survival_median(product.name) / DAYS_PER_YEAR == pytest.approx(5.9)
        h = product.abrupt_loss_per_year / DAYS_PER_YEAR
        assert graft_survival_median(product, "standard") == pytest.approx(math.log(2) / (lam + h))
        assert graft_survival_median(product, "none") < graft_survival_median(product, "standard")
    # typical course: attrition halves at the median
    typical = _typical(SC)
    course = sample_graft(typical, "full", BW, "standard", participant_streams(3, 2))
    t_med = graft_survival_median(typical)
    m = 1 - math.exp(-(((t_med - 30) / 120) ** 2))
    assert course.phi(t_med)[0] == pytest.approx(0.5 * course.phi_max[0] * m, rel=1e-12)
    assert graft_survival_median(typical.with_values(median_graft_survival_years=math.inf)) == (
        math.inf
    )


def test_expected_surviving_fraction_halves_at_the_median_with_abrupt_loss():
    product = DONOR.without_variability()
    n = 4000
    course = sample_graft(product, 5000.0, BW, "standard", participant_streams(11, n))
    t_med = graft_survival_median(product, "standard")
    m = 1 - math.exp(-(((t_med - 3) / 14) ** 2))
    surviving = course.phi(t_med) / (course.phi_max * m)  # s(t)·1{no abrupt loss}
    s = math.exp(-product.attrition_rate_per_day * t_med)
    p = math.exp(-product.abrupt_loss_hazard_per_day("standard") * t_med)
    se = s * math.sqrt(p * (1 - p) / n)
    assert surviving.mean() == pytest.approx(0.5, abs=4 * se)


# ------------------------------------------------------------------------------------------
# sampling
# ------------------------------------------------------------------------------------------


def test_early_loss_mean_matches_the_beta_mean():
    n = 4000
    course = sample_graft(SC, "full", BW, "standard", participant_streams(2025, n))
    lo, mean, hi, kappa = 0.25, 0.5, 0.7, SC.early_loss_concentration
    p = (mean - lo) / (hi - lo)
    sd = (hi - lo) * math.sqrt(p * (1 - p) / (kappa + 1))  # ≈ 0.10
    assert course.early_loss.mean() == pytest.approx(mean, abs=4 * sd / math.sqrt(n))
    assert course.early_loss.std() == pytest.approx(sd, rel=0.05)
    assert course.early_loss.min() >= lo and course.early_loss.max() <= hi
    # lognormal variability: medians at the typical values
    assert np.median(course.maturation_tau_days) == pytest.approx(120, rel=0.03)
    assert np.median(course.potency) == pytest.approx(1.0, rel=0.03)
    cv = course.maturation_tau_days.std() / course.maturation_tau_days.mean()
    assert cv == pytest.approx(0.3, rel=0.1)


def test_bigger_dose_never_gives_lower_phi_for_the_same_draws():
    n = 200
    rng = np.random.default_rng(0)
    small = rng.uniform(0, 6000, n)
    big = small + rng.uniform(0, 6000, n)
    days = np.arange(0, 3 * 365, 7.0)
    lo = sample_graft(DONOR, small, BW, "standard", participant_streams(5, n)).phi(days)
    hi = sample_graft(DONOR, big, BW, "standard", participant_streams(5, n)).phi(days)
    assert (hi >= lo).all()
    assert (hi[lo > 0] > lo[lo > 0]).all()
    zero = sample_graft(DONOR, 0.0, BW, "standard", participant_streams(5, n))
    assert (zero.phi(days) == 0).all()
    # heavier recipient at the same IEQ/kg gets more islets; a cell dose ignores weight
    heavy = sample_graft(DONOR, small, 90.0, "standard", participant_streams(5, n)).phi(days)
    np.testing.assert_allclose(heavy, lo * 90.0 / BW, rtol=1e-12)
    a = sample_graft(SC, "full", 50.0, "standard", participant_streams(5, 3)).phi(days)
    b = sample_graft(SC, "full", 90.0, "standard", participant_streams(5, 3)).phi(days)
    np.testing.assert_array_equal(a, b)


def test_participant_course_does_not_depend_on_batch_size():
    days = np.arange(0.0, 800.0, 3.5)
    small = sample_graft(SC, "full", BW, "standard", participant_streams(42, 5))
    big = sample_graft(SC, "full", BW, "standard", participant_streams(42, 50))
    alone = sample_graft(SC, "full", BW, "standard", participant_streams(42, 1, start=3))
    np.testing.assert_array_equal(small.phi(days)[3], big.phi(days)[3])
    np.testing.assert_array_equal(small.phi(days)[3], alone.phi(days)[0])
    assert small.to_frame().iloc[3].equals(big.to_frame().iloc[3])
    assert not np.array_equal(small.phi(days)[3], small.phi(days)[2])
    # per-participant weights in a larger batch do not change participant 3 either
    weights = np.full(50, BW)
    weights[10:] = 95.0
    donor_small = sample_graft(DONOR, 6000.0, BW, "none", participant_streams(42, 5))
    donor_big = sample_graft(DONOR, 6000.0, weights, "none", participant_streams(42, 50))
    np.testing.assert_array_equal(donor_small.phi(days)[3], donor_big.phi(days)[3])


def test_participant_streams_are_the_seed_sequence_children():
    ss = np.random.SeedSequence(2025)
    children = ss.spawn(6)
    for got, child in zip(participant_streams(2025, 6), children, strict=True):
        assert got.random() == np.random.default_rng(child).random()
    # a SeedSequence root works too (e.g. one reserved for a second infusion)
    sub = np.random.SeedSequence(2025, spawn_key=(9,))
    a = participant_streams(sub, 2)[1].random()
    b = np.random.default_rng(np.random.SeedSequence(2025, spawn_key=(9, 1))).random()
    assert a == b
    # each course consumes exactly N_UNIFORMS_PER_COURSE uniforms per participant
    streams = participant_streams(1, 2)
    sample_graft(SC, "full", BW, "standard", streams)
    reference = participant_streams(1, 2)[0]
    reference.random(N_UNIFORMS_PER_COURSE)
    assert streams[0].random() == reference.random()


def test_no_immunosuppression_means_more_abrupt_losses_by_one_year():
    n = 2000
    counts = {}
    for regimen in ("standard", "none"):
        course = sample_graft(DONOR, 6000.0, BW, regimen, participant_streams(99, n))
        lost = course.loss_day <= 365.0
        counts[regimen] = lost.sum()
        p = 1 - math.exp(-DONOR.abrupt_loss_hazard_per_day(regimen) * 365.0)
        assert lost.mean() == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n) + 1e-3)
        # φ is 0 from the loss day on and positive just before (losses after the lag)
        i = np.flatnonzero((course.loss_day > 10) & (course.loss_day < 2000))
        assert i.size > 0
        for j in i[:20]:
            day = course.loss_day[j]
            assert course.phi(day)[j] == 0.0 and course.phi(day + 100)[j] == 0.0
            assert course.phi(day - 1e-6)[j] > 0.0
    assert counts["none"] > 5 * counts["standard"]
    assert counts["standard"] > 0


def test_sc_islets_mature_over_months_and_donor_islets_in_weeks():
    sc = sample_graft(_typical(SC), "full", BW, "standard", participant_streams(4, 1))
    donor = sample_graft(_typical(DONOR), 5000.0, BW, "standard", participant_streams(4, 1))
    year = np.arange(0.0, 366.0)
    phi_sc = sc.phi(year)[0]
    assert phi_sc[14] == 0.0  # nothing at day 14 (t_lag 30 d)
    assert phi_sc[90] > 0.2 * sc.phi_max[0]  # glucose-responsive C-peptide at day-90 MMTT
    assert phi_sc[90] < phi_sc[180] < phi_sc[365]  # still rising through the first year
    assert phi_sc[365] >= 0.95 * phi_sc.max()  # near plateau at 1 year
    # donor islets: mature within weeks
    phi_d = donor.phi(year)[0]
    assert phi_d[28] > 0.95 * donor.phi_max[0]
    half_sc = sc.time_to_phi(0.5 * sc.phi_max[0])[0]
    half_d = donor.time_to_phi(0.5 * donor.phi_max[0])[0]
    assert half_d < 30 < 90 < half_sc < 180
    # the same holds across a varied cohort: all SC-islet grafts are 0 at day 14, none is
    # at 90% of its plateau by day 90, all donor grafts mature faster than SC grafts
    n = 300
    sc_all = sample_graft(SC, "full", BW, "standard", participant_streams(8, n))
    donor_all = sample_graft(DONOR, 5000.0, BW, "standard", participant_streams(8, n))
    assert (sc_all.phi(14.0) == 0).all()
    assert (sc_all.phi(90.0) < 0.9 * sc_all.phi_max).all()
    assert np.nanmax(donor_all.time_to_phi(1e-3)) < np.nanmin(sc_all.time_to_phi(1e-3))


def test_time_to_phi_matches_the_inverse_closed_form():
    flat = _typical(SC, median_graft_survival_years=math.inf)
    course = sample_graft(flat, "full", BW, "standard", participant_streams(0, 2))
    phi_max = course.phi_max[0]
    for q in (0.05, 0.5, 0.9):
        expected = 30 + 120 * (-math.log(1 - q)) ** 0.5
        got = course.time_to_phi(q * phi_max)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.isnan(course.time_to_phi(1.01 * phi_max)).all()
    assert np.isnan(course.time_to_phi(0.9 * phi_max, horizon_days=60)).all()
    # with attrition the curve returns below the threshold: φ(t*) = threshold
    varied = sample_graft(SC, "full", BW, "standard", participant_streams(0, 20))
    t = varied.time_to_phi(0.05)
    ok = ~np.isnan(t)
    assert ok.sum() >= 15
    np.testing.assert_allclose(varied.phi(t[ok])[np.flatnonzero(ok), np.arange(ok.sum())], 0.05)
    with pytest.raises(ValueError, match="threshold"):
        varied.time_to_phi(0.0)


def test_second_infusion_adds_a_course():
    typical = _typical(SC)
    days = np.arange(0.0, 1000.0, 5.0)
    full = sample_graft(typical, "full", BW, "standard", participant_streams(1, 3))
    half1 = sample_graft(typical, "half", BW, "standard", participant_streams(1, 3))
    half2 = sample_graft(typical, "half", BW, "standard", participant_streams(2, 3))
    np.testing.assert_allclose((half1 + half2).phi(days), full.phi(days), rtol=1e-12)
    # part A: second half dose later, only in participants 0 and 2
    later = sample_graft(
        SC,
        np.array([0.4e9, 0.0, 0.4e9]),
        BW,
        "standard",
        participant_streams(np.random.SeedSequence(1, spawn_key=(1,)), 3),
        infusion_day=np.array([300.0, 0.0, 500.0]),
    )
    first = sample_graft(SC, "half", BW, "standard", participant_streams(1, 3))
    both = first + later
    assert isinstance(both, GraftCourseSum) and len(both) == 3
    np.testing.assert_allclose(both.phi(days), first.phi(days) + later.phi(days))
    np.testing.assert_array_equal(both.phi(299.0), first.phi(299.0))
    assert (later.phi(days)[1] == 0).all()
    three = both + first
    assert len(three.courses) == 3
    assert sum([first, later]).phi(700.0) == pytest.approx(both.phi(700.0))
    t = both.time_to_phi(0.05)
    assert t.shape == (3,)
    assert "2 infusions" in repr(both)
    with pytest.raises(ValueError, match="participants"):
        _ = first + sample_graft(SC, "half", BW, "standard", participant_streams(1, 4))


def test_course_is_read_only_and_readable():
    course = sample_graft(SC, "full", BW, "standard", participant_streams(1, 10))
    with pytest.raises(ValueError):
        course.early_loss[0] = 0.0
    text = repr(course)
    assert text.startswith("GraftCourse(product='sc-islets', immunosuppression='standard', n=10")
    assert "phi_max" in text and "abrupt loss within 1 y" in text
    assert list(course.to_frame().columns)[:2] == ["infusion_day", "dose"]
    assert isinstance(course, GraftCourse) and len(course) == 10
    empty = sample_graft(SC, "full", BW, "standard", [])
    assert empty.phi([1.0, 2.0]).shape == (0, 2) and "n=0" in repr(empty)


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------


def test_bad_input_names_the_argument_and_lists_valid_values():
    streams = participant_streams(0, 3)
    with pytest.raises(ValueError, match=r"dose must be >= 0 \(cells\)"):
        sample_graft(SC, -1.0, BW, "standard", streams)
    with pytest.raises(ValueError, match="dose must be >= 0"):
        sample_graft(DONOR, [5000.0, -1.0, 5000.0], BW, "standard", streams)
    with pytest.raises(ValueError, match=r"product 'pig-islets'.*'donor-islets', 'sc-islets'"):
        sample_graft("pig-islets", 1.0, BW, "standard", streams)
    assert ISLET_PRODUCTS == ("donor-islets", "sc-islets")
    with pytest.raises(ValueError, match=r"immunosuppression 'steroids'.*'none', 'standard'"):
        sample_graft(SC, 1.0, BW, "steroids", streams)
    with pytest.raises(ValueError, match=r"dose 'double'.*'half', 'full'"):
        sample_graft(SC, "double", BW, "standard", streams)
    with pytest.raises(ValueError, match="body_weight_kg must be > 0"):
        sample_graft(DONOR, 5000.0, 0.0, "standard", streams)
    with pytest.raises(ValueError, match=r"dose must be a scalar or have shape \(3,\)"):
        sample_graft(DONOR, [5000.0, 5000.0], BW, "standard", streams)
    with pytest.raises(ValueError, match="dose must be finite"):
        sample_graft(DONOR, math.nan, BW, "standard", streams)
    with pytest.raises(ValueError, match="infusion_day must be >= 0"):
        sample_graft(DONOR, 5000.0, BW, "standard", streams, infusion_day=-1)
    with pytest.raises(ValueError, match="unknown product"):
        load_islet_product("sc_islets")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'tau'.*'maturation_tau_days'"):
        SC.with_values(tau=1.0)
    with pytest.raises(ValueError, match="early_loss_mean"):
        SC.with_values(early_loss_mean=0.8)
    with pytest.raises(ValueError, match="maturation_tau_days"):
        SC.with_values(maturation_tau_days=0.0)
    with pytest.raises(ValueError, match="day must be finite"):
        sample_graft(SC, "full", BW, "standard", streams).phi(math.nan)
    with pytest.raises(TypeError, match="Generator"):
        sample_graft(SC, "full", BW, "standard", [1, 2, 3])
