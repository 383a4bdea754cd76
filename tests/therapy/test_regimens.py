"""Tests of the standard insulin regimens (MDI and pump), isletsim.therapy.regimens."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import isletsim as isl
from isletsim.params import select_patients
from isletsim.params.toml_file import ParameterFileError
from isletsim.therapy.base import Observation, basal_u_per_min
from isletsim.therapy.regimens import (
    PARAM_FILE,
    REGIMEN_NAMES,
    BasalTitration,
    BolusBehaviour,
    MultipleDailyInjections,
    PumpTherapy,
    TherapySettings,
    depot_transition,
    derive_settings,
    load_regimen_parameters,
    regimen_sources,
)

ADULTS = [f"adult#{i:03d}" for i in range(1, 11)]
MEALS = "07:00=45,12:00=70,18:00=80"
#: Documented tolerance of total daily insulin against the Quest TDI (fraction).
TDI_TOLERANCE = 0.25


def _daily_insulin(run: isl.SimulationResult, days: int) -> np.ndarray:
    ins = run.trace["insulin_u"][:, : days * 1440]
    return ins.reshape(len(run.participants), days, 1440).sum(axis=2)


def _post_meal_mean(run: isl.SimulationResult) -> np.ndarray:
    """Mean glucose 0-3 h after each meal start, per participant."""
    g = run.trace["glucose_sc_mg_dl"]
    minutes = np.arange(g.shape[1]) % 1440
    mask = np.zeros(g.shape[1], bool)
    for start in (420, 720, 1080):
        mask |= (minutes >= start) & (minutes < start + 180)
    return g[:, mask].mean(axis=1)


# ----------------------------------------------------------------------------- parameters
def test_parameter_file_loads_with_sources():
    values = load_regimen_parameters()
    assert tuple(values) == REGIMEN_NAMES
    table = regimen_sources()
    assert set(table.index) == set(REGIMEN_NAMES)
    assert (table["tag"] == "U").all() and not table["verified"].any()


def _write_variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (resources.files("isletsim.params") / "therapy" / "regimens.toml").read_text()
    assert old in text
    path = tmp_path / "regimens.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("key", "old", "new", "message"),
    [
        (
            "missed_bolus_probability",
            "[missed_bolus_probability]\nvalue = 0.1",
            "[missed_bolus_probability]\nvalue = 1.5",
            "at most 1",
        ),
        ("carb_noise_cv", "[carb_noise_cv]\nvalue = 0.3", "[carb_noise_cv]\nvalue = -0.3", ">= 0"),
        ("depot_compartments", "value = 2\n", "value = 2.5\n", "whole number"),
        ("late_bolus_max_delay_min", "value = 45.0", "value = 5.0", "late_bolus_min_delay_min"),
        ("basal_injection_minute", "value = 1320", "value = 1500", "minute of the day"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, key, old, new, message):
    path = _write_variant(tmp_path, key, old, new)
    with pytest.raises(ParameterFileError) as exc:
        load_regimen_parameters(path)
    text = str(exc.value)
    assert str(path) in text and repr(key) in text and message in text


def test_unknown_key_and_missing_field_name_file(tmp_path):
    path = _write_variant(tmp_path, "x", "[carb_noise_cv]", "[carb_noise_sd]")
    with pytest.raises(ParameterFileError, match=r"regimens\.toml.*carb_noise_sd"):
        load_regimen_parameters(path)
    path = _write_variant(tmp_path, "x", 'unit = "U/day"\n', "")
    with pytest.raises(ParameterFileError, match=r"titration_step_u_per_day.*'unit'"):
        load_regimen_parameters(path)


def test_bad_overrides_name_the_key():
    with pytest.raises(ParameterFileError, match=r"regimens\.toml \(overrides\).*pen_max_dose_u"):
        MultipleDailyInjections(overrides={"pen_max_dose_u": -1.0})
    with pytest.raises(ParameterFileError, match="no_such_key"):
        MultipleDailyInjections(overrides={"no_such_key": 1.0})
    with pytest.raises(ParameterFileError, match=r"BolusBehaviour.*missed_bolus_probability"):
        BolusBehaviour(missed_probability=2.0)
    assert PARAM_FILE == "isletsim/params/therapy/regimens.toml"


# ----------------------------------------------------------------------------- settings
def test_settings_from_table_and_rules():
    pts = select_patients(ADULTS[:3])
    table = derive_settings(pts)
    np.testing.assert_array_equal(table["CR"], pts["CR"].to_numpy(float))
    np.testing.assert_array_equal(table["basal_u_per_min"], basal_u_per_min(pts))
    rules = derive_settings(pts, TherapySettings("rule", "rule", "tdi_share"))
    tdi = pts["TDI"].to_numpy(float)
    np.testing.assert_allclose(rules["CR"], 500.0 / tdi)
    np.testing.assert_allclose(rules["CF"], 1800.0 / tdi)
    np.testing.assert_allclose(rules["basal_u_per_day"], 0.45 * tdi)
    with pytest.raises(ValueError, match="carb_ratio"):
        TherapySettings(carb_ratio="guess")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- depot
def test_depot_releases_the_daily_dose_with_a_flat_profile():
    pts = select_patients(ADULTS[:2])
    bound = MultipleDailyInjections(behaviour=BolusBehaviour.perfect()).bind(pts)
    n, period = 2, bound.control_period_min
    rates = []
    for t in range(0, 2 * 1440, period):
        obs = Observation(t, np.full(n, 120.0), np.zeros(n))
        rates.append(bound.decide(obs).basal_u_per_min)
    rates = np.array(rates)  # (steps, n)
    per_day = rates.reshape(2, -1, n).sum(axis=1) * period
    dose = np.round(basal_u_per_min(pts) * 1440)
    np.testing.assert_allclose(per_day, np.stack([dose, dose]), rtol=1e-3)
    ratio = rates.max(axis=0) / rates.min(axis=0)
    assert np.all((ratio > 1.3) & (ratio < 2.0))  # gamma(2) with 24 h mean: 1.6
    p = depot_transition(3, 0.01, 10.0)
    np.testing.assert_allclose(p @ depot_transition(3, 0.01, 5.0), depot_transition(3, 0.01, 15))


# ----------------------------------------------------------------------------- MDI in the engine
@pytest.fixture(scope="module")
def mdi_run() -> isl.SimulationResult:
    return isl.simulate(ADULTS, days=3, meals=MEALS, therapy=MultipleDailyInjections())


def test_mdi_keeps_adults_in_range_with_daily_insulin_near_tdi(mdi_run):
    s = mdi_run.summary()
    assert s["mean_glucose_mg_dl"].between(90, 200).all(), s["mean_glucose_mg_dl"]
    tdi = select_patients(ADULTS)["TDI"].to_numpy(float)
    ratio = _daily_insulin(mdi_run, 3).mean(axis=1) / tdi
    assert np.all(np.abs(ratio - 1.0) < TDI_TOLERANCE), ratio


def test_mdi_bolus_is_rounded_to_the_pen_step():
    pts = select_patients(ADULTS[:3])
    bound = MultipleDailyInjections(behaviour=BolusBehaviour.perfect()).bind(pts)
    act = bound.decide(Observation(420, np.array([100.0, 200.0, 300.0]), np.full(3, 47.0)))
    units = act.bolus_u_per_min * act.bolus_minutes
    np.testing.assert_allclose(units * 2, np.round(units * 2), atol=1e-9)
    cr, cf = pts["CR"].to_numpy(float), pts["CF"].to_numpy(float)
    exact = 47.0 / cr + np.where([False, True, True], (np.array([100, 200, 300]) - 120) / cf, 0)
    assert np.all(np.abs(units - exact) <= 0.25 + 1e-9)


# ----------------------------------------------------------------------------- pump behaviour
def test_pump_without_errors_equals_basal_bolus_exactly():
    ref = isl.simulate(ADULTS[:4], days=1, meals=MEALS, therapy=isl.BasalBolus())
    run = isl.simulate(ADULTS[:4], 1, MEALS, PumpTherapy(behaviour=BolusBehaviour.perfect()))
    for col, arr in ref.trace.items():
        np.testing.assert_array_equal(run.trace[col], arr, err_msg=col)


def test_carb_counting_error_raises_variability():
    base = isl.simulate(ADULTS, 2, MEALS, PumpTherapy(behaviour=BolusBehaviour.perfect()))
    noisy = BolusBehaviour(carb_bias_sd_log=0.2, carb_noise_cv=0.3, seed=1)
    err = isl.simulate(ADULTS, 2, MEALS, PumpTherapy(behaviour=noisy))
    sd0 = base.summary()["sd_glucose_mg_dl"]
    sd1 = err.summary()["sd_glucose_mg_dl"]
    assert sd1.mean() > sd0.mean() + 3.0, (sd0.mean(), sd1.mean())


def test_missed_boluses_raise_post_meal_glucose():
    base = isl.simulate(ADULTS, 1, MEALS, PumpTherapy(behaviour=BolusBehaviour.perfect()))
    missed = isl.simulate(ADULTS, 1, MEALS, PumpTherapy(behaviour=BolusBehaviour(
        missed_probability=0.5, seed=3)))  # fmt: skip
    all_missed = isl.simulate(ADULTS, 1, MEALS, PumpTherapy(behaviour=BolusBehaviour(
        missed_probability=1.0)))  # fmt: skip
    g0, g1, g2 = (_post_meal_mean(r) for r in (base, missed, all_missed))
    assert np.all(g2 > g0 + 40.0)
    assert np.all(g1 >= g0 - 1e-6) and g1.mean() > g0.mean() + 10.0


def test_late_boluses_raise_the_post_meal_peak():
    base = isl.simulate(ADULTS, 1, MEALS, PumpTherapy(behaviour=BolusBehaviour.perfect()))
    late = BolusBehaviour(late_probability=1.0, late_min_delay_min=30, late_max_delay_min=30)
    run = isl.simulate(ADULTS, 1, MEALS, PumpTherapy(behaviour=late))
    peak0 = base.summary()["max_glucose_mg_dl"]
    peak1 = run.summary()["max_glucose_mg_dl"]
    assert peak1.mean() > peak0.mean() + 5.0 and (peak1 > peak0).sum() >= 7
    # the bolus comes 30 min (10 periods of 3 min) after the on-time one
    on_time = np.flatnonzero(base.trace["insulin_u"][0] > 0.1)
    delayed = np.flatnonzero(run.trace["insulin_u"][0] > 0.1)
    np.testing.assert_array_equal(delayed, on_time + 30)
    # a late bolus is calculated with the CGM of its time: never less insulin
    assert np.all(run.trace["insulin_u"].sum(axis=1) >= base.trace["insulin_u"].sum(axis=1) - 1e-9)


def test_results_do_not_depend_on_batching_and_follow_the_seed():
    behaviour = BolusBehaviour.from_parameters(seed=11)
    names = ADULTS[:5]
    whole = isl.simulate(names, 1, MEALS, MultipleDailyInjections(behaviour=behaviour))
    backwards = isl.simulate(names[::-1], 1, MEALS, MultipleDailyInjections(behaviour=behaviour))
    alone = isl.simulate(names[2:3], 1, MEALS, MultipleDailyInjections(behaviour=behaviour))
    g = whole.trace["glucose_sc_mg_dl"]
    np.testing.assert_array_equal(backwards.trace["glucose_sc_mg_dl"][::-1], g)
    np.testing.assert_array_equal(alone.trace["glucose_sc_mg_dl"][0], g[2])
    again = isl.simulate(names, 1, MEALS, MultipleDailyInjections(behaviour=behaviour))
    np.testing.assert_array_equal(again.trace["glucose_sc_mg_dl"], g)
    other = BolusBehaviour.from_parameters(seed=12)
    diff = isl.simulate(names, 1, MEALS, MultipleDailyInjections(behaviour=other))
    assert not np.array_equal(diff.trace["insulin_u"], whole.trace["insulin_u"])


# ----------------------------------------------------------------------------- titration
def test_titration_moves_basal_toward_target():
    fast = BasalTitration(interval_days=2, days_averaged=2, step_u_per_day=4.0)
    names = ADULTS[:3]
    low = PumpTherapy(behaviour=BolusBehaviour.perfect(),
                      settings=TherapySettings(basal_scale=0.6), titration=fast)  # fmt: skip
    high = MultipleDailyInjections(
        behaviour=BolusBehaviour.perfect(), settings=TherapySettings(basal_scale=1.6),
        titration=fast,
    )  # fmt: skip
    run_low = isl.simulate(names, 7, MEALS, low, record=False)
    run_high = isl.simulate(names, 7, MEALS, high, record=False)
    log_low, log_high = low.titration_log, high.titration_log
    assert set(log_low["day"]) == {2, 4, 6} and set(log_low["participant"]) == set(names)
    first = log_low.groupby("participant")["fasting_mean_mg_dl"].first()
    assert (first > 130).all()  # basal 60 % of need: fasting glucose high
    final = log_low.groupby("participant")["basal_u_per_day"].last()
    start = log_low.groupby("participant")["basal_before_u_per_day"].first()
    assert (final > start).all()
    final_h = log_high.groupby("participant")["basal_u_per_day"].last()
    start_h = log_high.groupby("participant")["basal_before_u_per_day"].first()
    assert (final_h < start_h).all()
    # fasting glucose moves toward the band
    last = log_low.groupby("participant")["fasting_mean_mg_dl"].last()
    assert (last < first).all()
    assert np.isfinite(run_low.stats).all() and np.isfinite(run_high.stats).all()


def test_titration_log_is_empty_without_titration_and_clears():
    policy = PumpTherapy(behaviour=BolusBehaviour.perfect(), titration=BasalTitration())
    isl.simulate(ADULTS[:2], 1, MEALS, policy, record=False)
    assert isinstance(policy.titration_log, pd.DataFrame) and policy.titration_log.empty
    policy.clear()
    assert policy.titration_log.empty


def test_compiled_bolus_behaviour_equals_the_array_path():
    """The compiled path of ``grams_to_bolus`` (float64 (N,) arrays) makes the same draws,
    decisions and doses as the numpy path taken for other inputs (here: float32)."""
    behaviour = BolusBehaviour(carb_bias_sd_log=0.2, carb_noise_cv=0.3, missed_probability=0.2,
                               late_probability=0.3, seed=5)  # fmt: skip
    keys = [f"p{i}" for i in range(40)]
    fast, slow = behaviour.bind(keys), behaviour.bind(keys)
    rng = np.random.default_rng(1)
    for t in range(0, 3000, 5):  # long enough to refill the blocks of draws
        grams = np.where(rng.random(40) < 0.3, rng.uniform(10, 90, 40), 0.0).astype(np.float32)
        a = fast.grams_to_bolus(t, grams.astype(np.float64))
        b = slow.grams_to_bolus(t, grams)
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    for name in ("meals", "missed", "late", "cursor"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    np.testing.assert_allclose(fast.pending_g, slow.pending_g, rtol=1e-14)
    np.testing.assert_array_equal(fast.due_t, slow.due_t)
    assert fast.late.sum() > 0 and fast.missed.sum() > 0
