"""Time-varying insulin sensitivity: generator, parameter file, model and engine input."""

from importlib import resources

import numpy as np
import pytest

from isletsim.engine import simulate
from isletsim.model import uva_padova as m
from isletsim.params import load_cohort
from isletsim.params.toml_file import ParameterFileError
from isletsim.therapy import BasalBolus, OpenLoop
from isletsim.variability import (
    PARAM_NAMES,
    InsulinSensitivity,
    circadian_profile,
    load_insulin_sensitivity_params,
)

MEALS = "07:00=45,12:00=70,18:00=80"
NAMES = ["adult#001", "child#003", "adolescent#005"]


# ----------------------------------------------------------------------------- generator
def test_reproducible_and_independent_of_n_and_batching():
    a = InsulinSensitivity(6, days=10, seed=3)
    b = InsulinSensitivity(6, days=10, seed=3)
    np.testing.assert_array_equal(a.factors, b.factors)
    # participant i depends only on its own stream: a subset, a batch, more days
    np.testing.assert_array_equal(InsulinSensitivity(2, days=10, seed=3).factors, a.factors[:2])
    np.testing.assert_array_equal(
        InsulinSensitivity(3, days=10, seed=3, start=3).factors, a.factors[3:]
    )
    np.testing.assert_array_equal(InsulinSensitivity(6, days=25, seed=3).factors[:, :10],
                                  a.factors)  # fmt: skip
    assert not np.array_equal(InsulinSensitivity(6, days=10, seed=4).factors, a.factors)
    seq = np.random.SeedSequence(11)
    np.testing.assert_array_equal(InsulinSensitivity(4, 5, seq).factors,
                                  InsulinSensitivity(4, 5, np.random.SeedSequence(11)).factors)


def test_day_to_day_statistics():
    cv, rho = 0.25, 0.5
    si = InsulinSensitivity(400, days=250, seed=1, params={"day_to_day_cv": cv,
                                                            "day_to_day_rho": rho})
    f = si.factors
    assert f.min() > 0
    assert f.mean() == pytest.approx(1.0, abs=0.01)
    assert (f.std(axis=1) / f.mean(axis=1)).mean() == pytest.approx(cv, rel=0.05)
    logs = np.log(f)
    logs = logs - logs.mean(axis=1, keepdims=True)
    lag1 = (logs[:, 1:] * logs[:, :-1]).sum() / (logs * logs).sum()
    assert lag1 == pytest.approx(rho, abs=0.03)


def test_no_variability_switches_and_zero_cv_give_ones():
    off = InsulinSensitivity(3, days=2, seed=0, circadian=False, day_to_day=False)
    assert np.all(off(0.0) == 1.0) and np.all(off(1.7) == 1.0)
    flat = InsulinSensitivity(3, days=2, seed=0,
                              params={"day_to_day_cv": 0.0, "dawn_nadir_factor": 1.0})
    assert np.all(flat.factors == 1.0) and np.all(flat.profile == 1.0)


def test_circadian_profile_dawn_dip_mean_one():
    prof = circadian_profile(load_insulin_sensitivity_params())
    assert prof.shape == (1440,)
    assert prof.mean() == pytest.approx(1.0, rel=1e-12)
    assert int(np.argmin(prof)) == 7 * 60  # nadir at breakfast (07:00)
    assert prof[13 * 60] == prof[19 * 60] > 1.0 > prof[7 * 60]  # lunch, dinner > breakfast


def test_call_is_table_times_profile():
    si = InsulinSensitivity(4, days=3, seed=2)
    for day in (0.0, 0.3, 1.0 + 7 / 24, 2.999):
        d, minute = divmod(round(day * 1440), 1440)
        np.testing.assert_array_equal(si(day), si.factors[:, d] * si.profile[minute])
    assert si(0.5).flags.c_contiguous and si(0.5).dtype == np.float64
    with pytest.raises(ValueError, match="past"):
        si(3.0)
    with pytest.raises(ValueError, match="day"):
        si(-0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_participants": -1}, "n_participants"), ({"days": 0}, "days"),
     ({"days": np.nan}, "days"), ({"seed": -2}, "seed"), ({"seed": 1.5}, "seed")],
)  # fmt: skip
def test_bad_arguments(kwargs, match):
    args = {"n_participants": 2, "days": 1, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        InsulinSensitivity(**args)


# ----------------------------------------------------------------------------- parameters
def test_packaged_parameters():
    p = load_insulin_sensitivity_params()
    assert list(p) == list(PARAM_NAMES)
    assert p["day_to_day_cv"] == 0.25 and p["day_to_day_rho"] == 0.5


@pytest.mark.parametrize(
    "key, value",
    [("day_to_day_cv", -0.1), ("day_to_day_rho", 1.0), ("dawn_nadir_factor", 0.0),
     ("dawn_nadir_hour", 2.0), ("dawn_end_hour", 25.0), ("day_to_day_cv", float("nan")),
     ("day_to_day_cv", "big")],
)  # fmt: skip
def test_bad_override_names_file_and_key(key, value):
    with pytest.raises(ParameterFileError, match=rf"insulin_sensitivity\.toml.*{key}"):
        InsulinSensitivity(2, 1, params={key: value})


def test_unknown_override():
    with pytest.raises(ParameterFileError, match=r"insulin_sensitivity\.toml.*cv_typo"):
        load_insulin_sensitivity_params({"cv_typo": 0.1})


def _variant(tmp_path, old: str, new: str):
    text = (resources.files("isletsim.params") / "variability" / "insulin_sensitivity.toml"
            ).read_text()  # fmt: skip
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_bad_file_names_file_and_key(tmp_path):
    path = _variant(tmp_path, "[day_to_day_rho]\nvalue = 0.5", "[day_to_day_rho]\nvalue = 1.5")
    with pytest.raises(ParameterFileError, match=r"variant\.toml.*day_to_day_rho.*value"):
        load_insulin_sensitivity_params(path)
    path = _variant(tmp_path, "[day_to_day_cv]", "[day_to_day_cvs]")
    with pytest.raises(ParameterFileError, match=r"variant\.toml.*day_to_day_cv"):
        load_insulin_sensitivity_params(path)
    path = _variant(tmp_path, 'tag = "U"\nverified = false', 'tag = "U"\nverified = true')
    with pytest.raises(ParameterFileError, match=r"variant\.toml.*verified"):
        InsulinSensitivity(1, 1, params=str(path))


# ----------------------------------------------------------------------------- model
def test_rhs_scales_vmx_and_kp3():
    c = load_cohort()
    p, x = m.parameter_matrix(c), m.initial_state(c)
    i = 0
    xi = x[i].copy()
    xi[m.XX] = 20.0  # remote insulin action above basal
    basal = p[i, m.P_U2SS] * p[i, m.P_BW] / 6000.0
    nominal = m.rhs_numpy(xi, p[i], 0.0, basal, 0.0)
    np.testing.assert_array_equal(nominal, m.rhs_numpy(xi, p[i], 0.0, basal, 0.0, 0.0, 0.0, 1.0))
    s = 1.5
    scaled = m.rhs_numpy(xi, p[i], 0.0, basal, 0.0, insulin_sensitivity=s)
    q = p[i].copy()
    q[m.P_VMX] *= s
    q[m.P_KP3] *= s
    np.testing.assert_allclose(scaled, m.rhs_numpy(xi, q, 0.0, basal, 0.0), rtol=1e-14)
    assert scaled[m.GT] < nominal[m.GT]  # more utilisation
    assert scaled[m.GP] <= nominal[m.GP]  # less (or floored) EGP


# ----------------------------------------------------------------------------- engine
@pytest.fixture(scope="module")
def reference():
    return simulate(NAMES, 1, MEALS, BasalBolus())


@pytest.mark.parametrize("si", [None, np.ones(3), 1.0, lambda day: np.ones(3)])
def test_nominal_sensitivity_is_bit_identical(reference, si):
    run = simulate(NAMES, 1, MEALS, BasalBolus(), insulin_sensitivity=si)
    for k in reference.trace:
        np.testing.assert_array_equal(run.trace[k], reference.trace[k])
    np.testing.assert_array_equal(run.final_state, reference.final_state)


def test_generator_without_variability_is_bit_identical(reference):
    off = InsulinSensitivity(3, 1, circadian=False, day_to_day=False)
    run = simulate(NAMES, 1, MEALS, BasalBolus(), insulin_sensitivity=off)
    np.testing.assert_array_equal(run.final_state, reference.final_state)


def test_more_sensitive_means_lower_glucose_for_the_same_insulin():
    def mean_glucose(s):
        r = simulate(NAMES, 1, MEALS, OpenLoop(), record=False,
                     insulin_sensitivity=np.full(3, s))
        return r.summary()["mean_glucose_mg_dl"].to_numpy()

    low, nominal, high = mean_glucose(0.7), mean_glucose(1.0), mean_glucose(1.3)
    assert np.all(high < nominal) and np.all(nominal < low)


def test_time_varying_sensitivity_in_engine():
    si = InsulinSensitivity(3, days=3, seed=5)
    a = simulate(NAMES, 3, MEALS, BasalBolus(), record=False, insulin_sensitivity=si)
    b = simulate(NAMES, 3, MEALS, BasalBolus(), record=False, insulin_sensitivity=si)
    np.testing.assert_array_equal(a.final_state, b.final_state)
    nominal = simulate(NAMES, 3, MEALS, BasalBolus(), record=False)
    assert not np.array_equal(a.daily_mean_glucose, nominal.daily_mean_glucose)
    # a day of higher sensitivity lowers that day's glucose relative to nominal (same therapy)
    more = si.factors > 1.15
    less = si.factors < 0.85
    diff = a.daily_mean_glucose - nominal.daily_mean_glucose
    assert more.any() and less.any()  # seed 5 has both kinds of day
    assert diff[more].mean() < 0
    assert diff[less].mean() > 0


def test_circadian_profile_reaches_the_engine_at_control_steps():
    clock_only = InsulinSensitivity(3, days=1, day_to_day=False)
    hourly = OpenLoop(control_period_min=60)
    a = simulate(NAMES, 1, MEALS, hourly, insulin_sensitivity=clock_only)
    b = simulate(NAMES, 1, MEALS, hourly)
    g_a, g_b = a.trace["glucose_plasma_mg_dl"], b.trace["glucose_plasma_mg_dl"]
    # the first hour uses the 00:00 value (1.04 > 1): glucose lower than nominal by 01:00
    assert np.all(g_a[:, 60] < g_b[:, 60])
    # the dawn dip (0.78 at 07:00) raises glucose before breakfast relative to nominal
    assert np.all(g_a[:, 420] - g_b[:, 420] > g_a[:, 180] - g_b[:, 180])


def test_results_do_not_depend_on_chunking():
    names = [f"adult#{i:03d}" for i in range(1, 11)]
    si = InsulinSensitivity(10, days=1, seed=9)
    from isletsim import engine

    one = simulate(names, 0.5, MEALS, BasalBolus(), record=False, insulin_sensitivity=si,
                   threads=1)
    old = engine.MIN_CHUNK
    try:
        engine.MIN_CHUNK = 3
        many = simulate(names, 0.5, MEALS, BasalBolus(), record=False, insulin_sensitivity=si,
                        threads=3)
    finally:
        engine.MIN_CHUNK = old
    np.testing.assert_array_equal(one.final_state, many.final_state)


@pytest.mark.parametrize(
    "bad",
    [-0.1, np.nan, np.inf, np.array([1.0, -1.0, 1.0]), np.ones(2), np.ones((3, 1)),
     lambda day: np.array([1.0, np.nan, 1.0]), lambda day: np.ones(4)],
)  # fmt: skip
def test_bad_insulin_sensitivity(bad):
    with pytest.raises(ValueError, match="insulin_sensitivity"):
        simulate(NAMES, 0.1, MEALS, insulin_sensitivity=bad)
