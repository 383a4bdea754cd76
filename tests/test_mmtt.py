"""Mixed-meal and oral glucose tolerance tests (science reference 3.3-3.4)."""

import math

import numpy as np
import pandas as pd
import pytest

import isletsim as isl
from isletsim.meals import DailyMeals
from isletsim.mmtt import (
    BOOST_CARBS_G_PER_ML,
    MMTTResult,
    WithholdBolus,
    fasting_meal_events,
    mmtt,
    ogtt,
)
from isletsim.params import load_cohort
from isletsim.therapy import BasalBolus, NoInsulin, OpenLoop

USUAL = DailyMeals.parse("07:00=45,12:00=70,18:00=80")


@pytest.fixture(scope="module")
def normal() -> pd.DataFrame:
    return load_cohort("dalla-man-2007-normal")


@pytest.fixture(scope="module")
def healthy(normal) -> MMTTResult:
    return mmtt(normal, day=1, graft_fraction=1.0, therapy=NoInsulin())


def test_fasting_meal_events():
    ev = fasting_meal_events(2, USUAL, 1920, np.array([62.0, 50.0]), 8 * 60)
    assert ev.minute.tolist() == [420, 720, 1080, 1920] * 2
    assert ev.grams.tolist() == [45, 70, 80, 62, 45, 70, 80, 50]
    # a 15-h fast drops the previous dinner (18:00 -> 08:00 is 14 h)
    ev = fasting_meal_events(1, USUAL, 1920, np.array([62.0]), 15 * 60)
    assert ev.minute.tolist() == [420, 720, 1920]
    # no fast required: still no meal on the test day before the drink (no 07:00 breakfast)
    ev = fasting_meal_events(1, USUAL, 1920, np.array([62.0]), 0)
    assert ev.minute.tolist() == [420, 720, 1080, 1920]
    assert fasting_meal_events(1, USUAL, 480, np.array([1.0]), 480).minute.tolist() == [480]


def test_boost_dose_capped_at_360_ml(normal):
    light = pd.concat([normal, normal], ignore_index=True)
    light.loc[1, "Name"] = "light"
    light.loc[1, "BW"] = 50.0
    res = mmtt(light, day=0, graft_fraction=1.0, therapy=NoInsulin(), samples_min=(0, 15))
    assert res.boost_ml.tolist() == [360.0, 300.0]
    assert res.carbs_g["light"] == pytest.approx(300 * 41 / 237)
    assert res.carbs_g["normal#001"] == pytest.approx(360 * BOOST_CARBS_G_PER_ML)


def test_healthy_mmtt_table_and_scores(healthy):
    d = healthy.data
    assert d["minute"].tolist() == [-10, 0, 15, 30, 60, 90, 120]
    assert not d["censored"].any()
    np.testing.assert_allclose(d["cpeptide_pmol_l"], 1000 * d["cpeptide_nmol_l"])
    s = healthy.summary().loc["normal#001"]
    c = d.set_index("minute")["cpeptide_nmol_l"]
    assert s.fasting_cpeptide_nmol_l == pytest.approx((c[-10] + c[0]) / 2)
    assert s.cpeptide_60_nmol_l == c[60] and s.cpeptide_90_nmol_l == c[90]
    assert s.peak_cpeptide_nmol_l == c.max()
    t = np.array([0, 15, 30, 60, 90, 120.0])
    auc = np.sum(np.diff(t) * (c[t[1:]].to_numpy() + c[t[:-1]].to_numpy()) / 2) / 120
    assert s.auc_mean_nmol_l == pytest.approx(auc)
    # glucose-stimulated secretion of a whole pancreas; near-basal fasting values
    assert s.peak_cpeptide_nmol_l > 2 * s.fasting_cpeptide_nmol_l
    assert 0.45 < s.fasting_cpeptide_nmol_l < 0.6
    assert 85 < s.fasting_glucose_mg_dl < 100 < s.peak_glucose_mg_dl < 180
    assert "7 samples" in repr(healthy) and "0 censored" in repr(healthy)


def test_t1d_without_graft_is_censored_never_substituted():
    res = mmtt(["adult#001"], day=1, lod_nmol_l=0.017)
    assert res.data["censored"].all() and res.data["cpeptide_nmol_l"].isna().all()
    s = res.summary().loc["adult#001"]
    assert s.undetectable and s.n_censored == 7
    for col in ("fasting_cpeptide_nmol_l", "peak_cpeptide_nmol_l", "auc_mean_nmol_l"):
        assert math.isnan(s[col])
    assert res.lod_nmol_l == 0.017


def test_assay_error_with_rng(normal, healthy):
    noisy = mmtt(normal, day=1, graft_fraction=1.0, therapy=NoInsulin(),
                 rng=np.random.default_rng(1))
    a, b = healthy.data["cpeptide_nmol_l"], noisy.data["cpeptide_nmol_l"]
    assert not np.allclose(a, b)
    assert np.all(np.abs(b / a - 1) < 0.4)
    np.testing.assert_array_equal(healthy.data["glucose_mg_dl"], noisy.data["glucose_mg_dl"])


def _insulin(therapy, start):
    ev = fasting_meal_events(1, USUAL, start, np.array([60.0]), 8 * 60)
    res = isl.simulate(["adult#001"], days=(start + 120) / 1440, meals=ev, therapy=therapy)
    return res.trace["insulin_u"][0]


@pytest.mark.parametrize("therapy", [BasalBolus(), OpenLoop()])
def test_bolus_withheld_from_the_drink_on(therapy):
    start = 1440 + 480
    usual = _insulin(therapy, start)
    held = _insulin(WithholdBolus(therapy, start), start)
    basal = held[start + 30]
    assert basal > 0
    # before the test: identical (boluses given); from the drink on: basal only
    np.testing.assert_array_equal(usual[:start], held[:start])
    assert usual[:start].max() > 10 * basal
    np.testing.assert_allclose(held[start:-1], basal, rtol=1e-12)
    assert usual[start:-1].sum() > held[start:-1].sum() + 1.0


def test_withhold_bolus_substeps_at_gcd():
    bound = WithholdBolus(OpenLoop(), 1440 + 490).bind(load_cohort().iloc[:1])
    assert bound.control_period_min == 10
    with pytest.raises(ValueError, match="empty"):
        WithholdBolus(OpenLoop(), 100, 50)


def test_ogtt(normal):
    res = ogtt(normal, day=1, graft_fraction=1.0, therapy=NoInsulin())
    wide = res.summary()
    assert list(wide.columns) == [f"glucose_{t}_mg_dl" for t in (0, 30, 60, 90, 120)]
    g = wide.loc["normal#001"]
    assert g.glucose_0_mg_dl < g.glucose_30_mg_dl
    assert res.two_hour_glucose()["normal#001"] == g.glucose_120_mg_dl
    # a T1D participant without graft or bolus is far less tolerant
    t1d = ogtt(["adult#001"], day=1).two_hour_glucose()["adult#001"]
    assert t1d > g.glucose_120_mg_dl + 40
    assert "75 g" in repr(res)


def test_invalid_arguments(normal):
    with pytest.raises(ValueError, match="HH:MM"):
        mmtt(normal, start_clock="25:00")
    with pytest.raises(ValueError, match="day"):
        mmtt(normal, day=-1)
    with pytest.raises(ValueError, match="before the start"):
        mmtt(normal, day=0, start_clock="00:05")
    with pytest.raises(ValueError, match="glucose_g"):
        ogtt(normal, glucose_g=0)


def test_plot(healthy):
    fig = healthy.plot()
    assert len(fig.axes) == 2
    assert fig.axes[1].get_ylabel() == "C-peptide (nmol/L)"
