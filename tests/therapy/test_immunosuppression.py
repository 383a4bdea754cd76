"""Immunosuppression safety model: rates vs hazards, timing, regimens, batching, schema, input.

Monte-Carlo checks are seeded and use 4 standard errors of the Poisson / binomial count.
"""

import math

import numpy as np
import pandas as pd
import pytest

from isletsim.therapy.graft import DAYS_PER_YEAR, participant_streams
from isletsim.therapy.immunosuppression import (
    CKD_TERM,
    DEATH_TERM,
    EVENT_COLUMNS,
    OUTCOMES,
    RELATEDNESS,
    calibration_summary,
    expected_event_counts,
    get_safety_regimen,
    load_event_terms,
    load_safety_regimens,
    parameter_table,
    simulate_adverse_events,
    simulate_safety,
)

YEAR = DAYS_PER_YEAR


def test_regimens_are_named_objects_on_top_of_graft_regimens():
    regimens = load_safety_regimens()
    assert set(regimens) == {"none", "edmonton", "cit-07", "zimislecel-like"}
    cit = regimens["cit-07"]
    assert [a.name for a in cit.induction] == ["rabbit anti-thymocyte globulin", "etanercept"]
    assert {a.name for a in cit.maintenance} == {"sirolimus", "tacrolimus"}
    assert cit.graft_regimen.name == "standard"
    assert regimens["none"].graft_regimen.name == "none"
    assert not regimens["zimislecel-like"].agents_verified  # science reference 4.5: [U]
    assert all(r.glucocorticoid_free for r in regimens.values())


def test_every_value_has_a_source_and_unverified_tags_are_false():
    table = parameter_table()
    assert (table["source"].str.len() > 0).all()
    assert table["verified"].map(type).eq(bool).all()
    tagged_u_only = table["source"].str.contains(r"\[U") & ~table["source"].str.contains(r"\[V")
    assert not table.loc[tagged_u_only, "verified"].any()
    # The two verified procedure rates from Ryan 2005.
    bleed = load_event_terms()["bleeding"]
    assert bleed.probability_per_infusion == pytest.approx(15 / 128, abs=1e-6)
    assert bleed.sources["probability_per_infusion"].verified


@pytest.mark.parametrize("window", ["early", "late"])
def test_seeded_rates_match_hazards(window):
    n = 3000
    days = 2 * YEAR
    sim = simulate_safety("cit-07", 20.0, days, participant_streams(11, n), female=True)
    ev = sim.events
    for term in load_event_terms().values():
        if not math.isnan(term.probability_per_infusion):
            continue
        w = term.early_window_days
        if window == "early":
            rate, lo, hi = term.rate_early_per_year, 0.0, w
        else:
            rate, lo, hi = term.rate_late_per_year, w, days
        mask = (ev["term"] == term.key) & (ev["day"] >= lo) & (ev["day"] < hi)
        observed = int(mask.sum())
        expected = n * rate * (hi - lo) / YEAR
        assert abs(observed - expected) <= 4 * math.sqrt(expected) + 1, (term.key, window)


def test_procedure_complications_match_per_infusion_probability():
    n = 6000
    infusions = np.column_stack([np.zeros(n), np.full(n, 60.0)])
    ev = simulate_adverse_events(
        "none", 40.0, 365, participant_streams(5, n), infusion_days=infusions
    )
    for term in ("bleeding", "portal_vein_thrombosis"):
        p = load_event_terms()[term].probability_per_infusion
        for day in (0.0, 60.0):
            k = int(((ev["term"] == term) & (ev["day"] == day)).sum())
            assert abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (term, day)
    bleeds = ev[ev["term"] == "bleeding"]
    share_g3 = (bleeds["grade"] == 3).mean()  # bleeds needing transfusion, 5/75 per procedure
    assert share_g3 == pytest.approx((5 / 75) / (15 / 128), abs=4 * math.sqrt(0.25 / len(bleeds)))
    assert (bleeds["related"] == "procedure").all()


def test_neutropenia_mostly_in_first_six_months():
    ev = simulate_adverse_events("zimislecel-like", 40.0, 2 * YEAR, participant_streams(3, 2000))
    neut = ev[ev["term"] == "neutropenia"]
    early = (neut["day"] < 182.625).mean()
    # early rate 0.72/y over 0.5 y vs late 0.08/y over 1.5 y: 75% expected in months 0-6
    assert early > 0.7
    assert len(neut) > 100


def test_regimen_none_only_background_mortality_and_procedure_complications():
    n = 4000
    sim = simulate_safety("none", 60.0, 10 * YEAR, participant_streams(9, n), baseline_egfr=65.0)
    terms = set(sim.events["term"].astype(str))
    assert terms <= {DEATH_TERM, "bleeding", "portal_vein_thrombosis"}
    assert DEATH_TERM in terms and "bleeding" in terms
    assert (sim.egfr.slope_per_year == 0).all()
    # Same seed on cit-07: background deaths and procedure draws are common random numbers.
    cit = simulate_safety("cit-07", 60.0, 10 * YEAR, participant_streams(9, n))
    assert len(cit.events) > 10 * len(sim.events)
    assert set(cit.events["term"].astype(str)) > {"neutropenia", "infection", "bleeding"}


def test_background_mortality_matches_gompertz():
    n = 20000
    days = 5 * YEAR
    sim = simulate_safety("none", 50.0, days, participant_streams(21, n), infusion_days=np.nan)
    deaths = int((sim.events["term"] == DEATH_TERM).sum())
    p = 1 - math.exp(-float(expected_event_counts("none", days, age=50.0).loc[DEATH_TERM].iloc[0]))
    assert abs(deaths - n * p) <= 4 * math.sqrt(n * p * (1 - p))
    assert np.isfinite(sim.death_day).sum() == deaths


def test_egfr_declines_on_tacrolimus_and_ckd_events_follow_it():
    n = 500
    sim = simulate_safety("cit-07", 40.0, 10 * YEAR, participant_streams(4, n), baseline_egfr=70.0)
    slope = sim.egfr.slope_per_year
    assert ((slope >= -3) & (slope <= -1)).all()
    e10 = sim.egfr.at(10 * YEAR)
    alive = np.isfinite(e10)
    np.testing.assert_allclose(e10[alive], 70.0 + 10 * slope[alive])
    ckd = sim.events[sim.events["term"] == CKD_TERM]
    assert set(ckd["grade"]) == {2}  # 70 -> 60 within 10 y for slopes < -1, never to 30
    crossed = np.flatnonzero((70 + slope * 10 < 60) & (sim.death_day > 10 * YEAR))
    assert crossed.size > 400
    assert set(ckd["participant"]) >= set(crossed)
    rows, cols = ckd["participant"].to_numpy(), np.arange(len(ckd))
    np.testing.assert_allclose(sim.egfr.at(ckd["day"].to_numpy())[rows, cols], 60.0)
    assert (ckd["related"] == "immunosuppression").all()


def test_batching_independence():
    kwargs = {"female": True}
    small = simulate_adverse_events("cit-07", 45.0, 3 * YEAR, participant_streams(8, 5), **kwargs)
    big = simulate_adverse_events("cit-07", 45.0, 3 * YEAR, participant_streams(8, 50), **kwargs)
    a = small[small["participant"] == 3].reset_index(drop=True)
    b = big[big["participant"] == 3].reset_index(drop=True)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
    # A batch starting at participant 3 gives participant 3 the same course (index 0 there).
    batch = simulate_adverse_events(
        "cit-07", 45.0, 3 * YEAR, participant_streams(8, 2, start=3), **kwargs
    )
    c = batch[batch["participant"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns="participant"), c.drop(columns="participant"))


def test_event_log_schema_and_dtypes():
    ev = simulate_adverse_events("edmonton", 45.0, YEAR, participant_streams(1, 200))
    assert tuple(ev.columns) == EVENT_COLUMNS
    assert ev["participant"].dtype == np.int64
    assert ev["day"].dtype == np.float64
    assert ev["grade"].dtype == np.int8
    assert ev["serious"].dtype == bool
    assert list(ev["related"].cat.categories) == list(RELATEDNESS)
    assert list(ev["outcome"].cat.categories) == list(OUTCOMES)
    assert set(ev["term"].cat.categories) >= {DEATH_TERM, CKD_TERM, "neutropenia"}
    assert ev["grade"].between(1, 5).all()
    assert ((ev["grade"] == 5) == (ev["outcome"] == "fatal")).all()
    assert ev[ev["grade"] == 5]["serious"].all()
    assert ev["day"].between(0, YEAR).all()
    assert ev.equals(ev.sort_values(["participant", "day"], kind="stable"))
    empty = simulate_adverse_events("cit-07", 45.0, 0.0, participant_streams(1, 3))
    assert tuple(empty.columns) == EVENT_COLUMNS and len(empty) == 0
    assert empty["grade"].dtype == np.int8


def test_no_events_after_death():
    sim = simulate_safety("cit-07", 85.0, 10 * YEAR, participant_streams(2, 300))
    ev = sim.events
    assert np.isfinite(sim.death_day).sum() > 50
    assert (ev["day"].to_numpy() <= sim.death_day[ev["participant"].to_numpy()]).all()
    assert (ev.groupby("participant")["grade"].apply(lambda g: (g == 5).sum()) <= 1).all()
    dead = np.flatnonzero(np.isfinite(sim.death_day))
    assert np.isnan(sim.egfr.at(sim.death_day[dead] + 1.0)[dead, np.arange(dead.size)]).all()


def test_start_day_shifts_events():
    ev = simulate_adverse_events("cit-07", 45.0, YEAR, participant_streams(6, 50), start_day=100)
    ref = simulate_adverse_events("cit-07", 45.0, YEAR, participant_streams(6, 50))
    np.testing.assert_allclose(ev["day"].to_numpy(), ref["day"].to_numpy() + 100.0)


def test_calibration_summary():
    cal = calibration_summary()
    sae = cal.loc["serious events per patient-year (cit-07)"]
    neut = cal.loc["P(serious neutropenia in year 1) (zimislecel-like)"]
    assert sae["target"] == 0.31 and abs(sae["relative_error"]) < 0.05
    assert neut["target"] == pytest.approx(3 / 14) and abs(neut["error"]) < 0.005


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"regimen": "standard"}, "regimen"),
        ({"ages": -1.0}, "ages"),
        ({"ages": np.array([40.0, np.nan, 50.0])}, "ages"),
        ({"days": -5.0}, "days"),
        ({"start_day": -1.0}, "start_day"),
        ({"infusion_days": -3.0}, "infusion_days"),
        ({"baseline_egfr": -10.0}, "baseline_egfr"),
        ({"ages": np.ones(4)}, "ages"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    args = {"regimen": "cit-07", "ages": 40.0, "days": 100.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        simulate_adverse_events(
            args.pop("regimen"), args.pop("ages"), args.pop("days"),
            participant_streams(0, 3), **args,
        )  # fmt: skip


def test_unknown_regimen_lists_valid_names():
    with pytest.raises(ValueError, match=r"'cit-07'.*'edmonton'.*'none'.*'zimislecel-like'"):
        get_safety_regimen("tacrolimus-only")
