"""Tests of the consensus CGM metrics (isletsim.metrics.consensus / summary).

Two kinds of check:

* analytic cases whose answer follows from the published definitions;
* agreement with iglu-python 0.4.3 (an independent implementation, used only as an oracle)
  on real CGM traces copied into ``tests/data/cgm`` (see its README).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isletsim import GlucoseTable
from isletsim.metrics import consensus as C
from isletsim.metrics.summary import SUMMARY_COLUMNS, consensus_summary
from isletsim.units import MGDL_PER_MMOLL

DATA = Path(__file__).resolve().parents[1] / "data" / "cgm"
T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def table_of(values: dict[str, list[float]], *, start=T0, step_min: float = 5.0) -> GlucoseTable:
    """Participants with readings every ``step_min`` minutes from ``start``."""
    frames = []
    for pid, gl in values.items():
        times = start + pd.to_timedelta(np.arange(len(gl)) * step_min, unit="min")
        frames.append(pd.DataFrame({"id": pid, "time": times, "gl": gl}))
    return GlucoseTable.from_frame(pd.concat(frames, ignore_index=True))


# --------------------------------------------------------------------------- analytic
def test_constant_glucose() -> None:
    m = C.consensus_metrics(table_of({"a": [100.0] * 288, "b": [200.0] * 10}))
    a, b = m.loc["a"], m.loc["b"]
    assert a["n_readings"] == 288 and b["n_readings"] == 10
    assert a["mean"] == 100.0 and a["sd"] == 0.0 and a["cv"] == 0.0
    assert a["gmi"] == pytest.approx(3.31 + 0.02392 * 100)
    assert a["j_index"] == pytest.approx(10.0)  # 0.001 * 100^2
    assert a["tir_70_180"] == 100.0 and a["tir_70_140"] == 100.0 and a["gri"] == 0.0
    assert b["tar_180"] == 100.0 and b["tar_181_250"] == 100.0 and b["tar_250"] == 0.0
    assert b["gri"] == pytest.approx(0.8 * 100) and b["gri_hyper"] == pytest.approx(50.0)
    assert b["lbgi"] == 0.0 and b["hbgi"] == pytest.approx(C.bg_risk(200.0))
    assert a["hbgi"] == 0.0 and a["lbgi"] == pytest.approx(C.bg_risk(100.0))


def test_known_fractions_and_band_edges() -> None:
    gl = [50, 60, 70, 100, 140, 141, 180, 181, 250, 251]
    r = C.time_in_ranges(table_of({"x": gl})).loc["x"]
    expected = {
        "tbr_54": 10,
        "tbr_54_69": 10,
        "tbr_70": 20,
        "tir_70_180": 50,
        "tir_70_140": 30,
        "tar_181_250": 20,
        "tar_180": 30,
        "tar_250": 10,
    }
    for k, v in expected.items():
        assert r[k] == pytest.approx(v), k
    bands = r["tbr_54"] + r["tbr_54_69"] + r["tir_70_180"] + r["tar_181_250"] + r["tar_250"]
    assert bands == pytest.approx(100.0)
    g = C.gri(table_of({"x": gl})).loc["x"]
    assert g["gri_hypo"] == pytest.approx(10 + 0.8 * 10)
    assert g["gri_hyper"] == pytest.approx(10 + 0.5 * 20)
    assert g["gri"] == pytest.approx(3.0 * 10 + 2.4 * 10 + 1.6 * 10 + 0.8 * 20)


def test_mmol_units_use_consensus_mmol_cutoffs() -> None:
    df = pd.DataFrame(
        {
            "id": "m",
            "time": pd.date_range(T0, periods=5, freq="5min"),
            "gl": [3.0, 3.9, 7.8, 10.0, 13.9],
        }
    )
    t = GlucoseTable.from_frame(df, units="mmol/L")
    mmol = C.time_in_ranges(t, units="mmol/L").loc["m"]
    # 3.0 is not < 3.0; 3.9 and 10.0 are in range; 13.9 is not > 13.9
    assert mmol["tbr_54"] == 0 and mmol["tbr_54_69"] == 20
    assert mmol["tir_70_180"] == 60 and mmol["tir_70_140"] == 40
    assert mmol["tar_181_250"] == 20 and mmol["tar_250"] == 0
    # the same readings against the mg/dL cut-offs: 10.0 mmol/L = 180.16 mg/dL > 180
    mgdl = C.time_in_ranges(t, units="mg/dL").loc["m"]
    assert mgdl["tar_180"] == 40 and mgdl["tar_250"] == 20
    stats_mmol = C.glucose_stats(t, units="mmol/L").loc["m"]
    stats_mg = C.glucose_stats(t).loc["m"]
    assert stats_mmol["mean"] == pytest.approx(np.mean([3.0, 3.9, 7.8, 10.0, 13.9]))
    assert stats_mmol["sd"] == pytest.approx(stats_mg["sd"] / MGDL_PER_MMOLL)
    assert stats_mmol["cv"] == pytest.approx(stats_mg["cv"])


def test_risk_function_anchor_points() -> None:
    assert abs(C.kovatchev_f(112.5)) < 1e-3
    assert C.bg_risk(112.5) < 1e-5
    # the scale was built so that 20 and 600 mg/dL are symmetric with risk about 100
    assert C.kovatchev_f(20.0) == pytest.approx(-C.kovatchev_f(600.0), abs=0.01)
    assert C.bg_risk(20.0) == pytest.approx(100.0, abs=0.5)
    assert C.bg_risk(600.0) == pytest.approx(100.0, abs=0.5)
    assert C.bg_risk(50.0) == pytest.approx(10 * (1.509 * (math.log(50) ** 1.084 - 5.381)) ** 2)
    m = C.consensus_metrics(table_of({"a": [112.5] * 3, "b": [50.0, 300.0, 112.5, 112.5]}))
    assert m.loc["a", "lbgi"] < 1e-5 and m.loc["a", "hbgi"] < 1e-5
    assert m.loc["b", "lbgi"] == pytest.approx(C.bg_risk(50.0) / 4, rel=1e-6)
    assert m.loc["b", "hbgi"] == pytest.approx(C.bg_risk(300.0) / 4, rel=1e-6)


def test_gri_is_capped_at_100() -> None:
    g = C.gri(table_of({"lo": [40.0] * 6, "hi": [300.0] * 6, "mix": [40.0, 300.0]}))
    assert g.loc["lo", "gri"] == 100.0 and g.loc["lo", "gri_hypo"] == 100.0  # uncapped: 300
    assert g.loc["hi", "gri"] == 100.0 and g.loc["hi", "gri_hyper"] == 100.0  # uncapped: 160
    assert g.loc["mix", "gri"] == 100.0  # 3*50 + 1.6*50 = 230


def test_j_index_and_sd_are_sample_statistics() -> None:
    s = C.glucose_stats(table_of({"a": [150.0, 200.0]})).loc["a"]
    assert s["sd"] == pytest.approx(math.sqrt(1250.0))  # n - 1 = 1
    assert C.j_index(table_of({"a": [150.0, 200.0]})).loc["a"] == pytest.approx(
        0.001 * (175 + math.sqrt(1250.0)) ** 2
    )
    one = C.glucose_stats(table_of({"a": [150.0]})).loc["a"]
    assert one["mean"] == 150.0 and np.isnan(one["sd"]) and np.isnan(one["cv"])


def test_adrr_days_and_time_zone() -> None:
    # day 1 (UTC): 50 and 200; day 2: 120 and 300 (no low risk: 120 > 112.5)
    times = pd.to_datetime(
        ["2024-01-01 10:00", "2024-01-01 23:30", "2024-01-02 01:00", "2024-01-02 12:00"], utc=True
    )
    df = pd.DataFrame({"id": "a", "time": times, "gl": [50.0, 200.0, 120.0, 300.0]})
    t = GlucoseTable.from_frame(df)
    r = C.bg_risk
    assert C.adrr(t).loc["a"] == pytest.approx((r(50.0) + r(200.0) + r(300.0)) / 2)
    # New York (UTC-5): 05:00, 18:30, 20:00 on Jan 1 and 07:00 on Jan 2
    ny = C.adrr(t, tz="America/New_York").loc["a"]
    assert ny == pytest.approx((r(50.0) + r(200.0) + r(300.0)) / 2)
    # Tokyo (UTC+9): 19:00 Jan 1, then 08:30, 10:00, 21:00 Jan 2
    tokyo = C.adrr(t, tz="Asia/Tokyo").loc["a"]
    assert tokyo == pytest.approx((r(50.0) + r(300.0)) / 2)


def test_sufficiency_regular_gappy_and_duplicated() -> None:
    full = [120.0] * 288  # one day at 5 min
    gappy = full[:100] + full[124:]  # two hours (24 readings) missing
    t = table_of({"full": full, "gappy": gappy})
    # the gap: shift the second half of 'gappy' by two hours
    d = t.data.copy()
    sel = (d["id"] == "gappy") & (d.index >= d.index[d["id"] == "gappy"][100])
    d.loc[sel, "time"] = d.loc[sel, "time"] + pd.Timedelta(hours=2)
    dup = d[d["id"] == "full"].iloc[:5]
    t = GlucoseTable.from_tidy(pd.concat([d, dup], ignore_index=True))
    s = C.data_sufficiency(t)
    assert s.loc["full", "interval_min"] == 5.0
    assert s.loc["full", "expected_readings"] == 288
    assert s.loc["full", "n_readings"] == 293  # duplicates are readings ...
    assert s.loc["full", "percent_expected_readings"] == 100.0  # ... but not extra coverage
    assert s.loc["full", "days_of_wear"] == pytest.approx(1.0)
    assert s.loc["full", "days_span"] == pytest.approx(287 * 5 / 1440)
    assert s.loc["gappy", "expected_readings"] == 288
    assert s.loc["gappy", "percent_expected_readings"] == pytest.approx(100 * 264 / 288)
    # a 14-day window with one day of data
    w = C.data_sufficiency(t, period=(T0, T0 + pd.Timedelta(days=14)))
    assert w.loc["full", "expected_readings"] == 14 * 288
    assert w.loc["full", "percent_expected_readings"] == pytest.approx(100 / 14)
    # a given device interval overrides the estimate
    f = C.data_sufficiency(t, interval_min=15)
    # (1435 min span + one 15-min interval) / 15 = 96.7 -> 97 expected, all covered
    assert f.loc["full", "expected_readings"] == 97 and f.loc["full", "interval_min"] == 15
    assert f.loc["full", "percent_expected_readings"] == 100.0
    # one reading: the interval comes from the other participants
    one = pd.DataFrame({"id": "one", "time": [T0], "gl": [99.0]})
    t1 = GlucoseTable.from_tidy(pd.concat([d, GlucoseTable.from_frame(one).data]))
    s1 = C.data_sufficiency(t1).loc["one"]
    assert s1["interval_min"] == 5 and s1["expected_readings"] == 1
    assert s1["percent_expected_readings"] == 100 and s1["days_span"] == 0


def test_period_window_per_participant_and_nan_rows() -> None:
    t = table_of({"a": [100.0] * 288 + [300.0] * 288, "b": [60.0] * 288 + [150.0] * 288})
    day2 = T0 + pd.Timedelta(days=1)
    m = C.period_metrics(t, day2, None)
    assert m.loc["a", "mean"] == 300.0 and m.loc["b", "mean"] == 150.0
    # per-participant windows: a's first day, b's second day
    starts = pd.Series({"a": T0, "b": day2})
    ends = pd.Series({"a": day2, "b": day2 + pd.Timedelta(days=1)})
    m = C.period_metrics(t, starts, ends)
    assert m.loc["a", "mean"] == 100.0 and m.loc["b", "mean"] == 150.0
    assert m.loc["a", "percent_expected_readings"] == 100.0
    # a window without data for anybody: NaN rows, n_readings 0, days_of_wear 0
    e = C.period_metrics(t, "2030-01-01", "2030-01-15")
    assert list(e.index) == ["a", "b"]
    assert (e["n_readings"] == 0).all() and e["mean"].isna().all() and e["gri"].isna().all()
    assert (e["percent_expected_readings"] == 0).all() and (e["days_of_wear"] == 0).all()
    with pytest.raises(C.MetricsError, match="no value for participant"):
        C.period_metrics(t, pd.Series({"a": T0}), None)
    with pytest.raises(C.MetricsError, match="before"):
        C.period_metrics(t, day2, T0)


def test_day_night_split_in_local_time() -> None:
    # Paris is UTC+1 in January: local 00:00-06:00 is 23:00-05:00 UTC
    local = pd.date_range("2024-01-01", periods=2 * 288, freq="5min", tz="Europe/Paris")
    gl = np.where(local.hour < 6, 60.0, 150.0)
    t = GlucoseTable.from_frame(pd.DataFrame({"id": "p", "time": local, "gl": gl}))
    dn = C.day_night_metrics(t, tz="Europe/Paris")
    assert dn.index.names == ["id", "part"]
    night, day = dn.loc[("p", "night")], dn.loc[("p", "day")]
    assert night["n_readings"] == 2 * 72 and night["tbr_70"] == 100.0
    assert day["n_readings"] == 2 * 216 and day["tir_70_180"] == 100.0
    assert night["expected_readings"] == 144 and night["percent_expected_readings"] == 100.0
    assert day["expected_readings"] == 432 and day["percent_expected_readings"] == 100.0
    # in UTC the night window catches the local 01:00-07:00 hours: 5 of 6 hours are low
    utc_night = C.day_night_metrics(t).loc[("p", "night")]
    assert utc_night["tbr_70"] == pytest.approx(100 * 5 / 6)
    # a night that wraps midnight (22:00-06:00 local: 8 h)
    wrap = C.consensus_metrics(
        t, period=C.Period(part="night", night=("22:00", "06:00")), tz="Europe/Paris"
    ).loc["p"]
    assert wrap["n_readings"] == 2 * 96  # 00-06 and 22-24 on both days
    assert wrap["tbr_70"] == pytest.approx(100 * 144 / wrap["n_readings"])


def test_empty_missing_and_invalid_input() -> None:
    empty = GlucoseTable.from_frame(pd.DataFrame({"id": [], "time": [], "gl": []}))
    with pytest.raises(C.MetricsError, match="empty"):
        C.consensus_metrics(empty)
    with pytest.raises(C.MetricsError, match="empty"):
        consensus_summary(empty)
    t = table_of({"ok": [100.0, 120.0], "none": [np.nan, np.nan]})
    m = C.consensus_metrics(t)
    assert m.loc["none", "n_readings"] == 0
    assert m.loc[["none"]].drop(columns=["n_readings", "interval_min"]).isna().all(axis=None)
    assert m.loc["none", "interval_min"] == 5.0  # borrowed from the cohort
    assert m.loc["ok", "mean"] == 110.0
    with pytest.raises(C.MetricsError, match="positive"):
        C.consensus_metrics(table_of({"z": [100.0, 0.0]}))
    with pytest.raises(C.MetricsError, match="units"):
        C.glucose_stats(t, units="mg")
    with pytest.raises(TypeError):
        C.consensus_metrics(t.data)  # type: ignore[arg-type]


def test_unsorted_table_gives_the_same_result() -> None:
    t = table_of({"a": [80.0, 150.0, 260.0, 50.0], "b": [100.0, 200.0, 60.0]})
    shuffled = GlucoseTable(t.data.sample(frac=1.0, random_state=1).reset_index(drop=True))
    pd.testing.assert_frame_equal(
        C.consensus_metrics(t).sort_index(), C.consensus_metrics(shuffled).sort_index()
    )


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(min_value=39.0, max_value=401.0), min_size=1, max_size=40),
        min_size=1,
        max_size=6,
    )
)
def test_vectorised_equals_one_participant_at_a_time(traces: list[list[float]]) -> None:
    t = table_of({f"p{i}": tr for i, tr in enumerate(traces)})
    together = C.consensus_metrics(t)
    bands = together[["tbr_54", "tbr_54_69", "tir_70_180", "tar_181_250", "tar_250"]]
    assert np.allclose(bands.sum(axis=1), 100.0)
    for pid in together.index:
        mine, alone = together.loc[[pid]], C.consensus_metrics(t.subset([pid]))
        if len(traces[int(pid[1:])]) == 1:  # a lone reading borrows the cohort's interval
            cols = ["interval_min", "expected_readings", "percent_expected_readings"]
            cols.append("days_of_wear")
            mine, alone = mine.drop(columns=cols), alone.drop(columns=cols)
        pd.testing.assert_frame_equal(mine, alone, rtol=1e-12)


# --------------------------------------------------------------------------- iglu-python
try:
    import iglu_python as iglu
except ImportError:  # the oracle is a test extra; the analytic tests above still run
    iglu = None

needs_iglu = pytest.mark.skipif(iglu is None, reason="iglu-python is not installed")

REL = 1e-6
KOV_RATIO = 10 * 1.509**2 / 22.77  # published r = 10 f^2 vs iglu's rounded 22.77


def _load(name: str) -> tuple[GlucoseTable, pd.DataFrame]:
    df = pd.read_csv(DATA / name)
    table = GlucoseTable.from_frame(df)
    local = df.assign(time=pd.to_datetime(df["time"]).dt.tz_localize(None))  # EST wall clock
    return table, local


@pytest.fixture(scope="module", params=["example_data_5_subject.csv", "example_data_hall.csv"])
def real(request: pytest.FixtureRequest) -> tuple[GlucoseTable, pd.DataFrame, pd.DataFrame]:
    table, local = _load(request.param)
    ours = C.consensus_metrics(table)
    return table, local, ours


def _by_id(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame.set_index(frame["id"].astype(str))[col]


def _ours(ours: pd.DataFrame, col: str) -> pd.Series:
    s = ours[col].copy()
    s.index = s.index.astype(str)
    return s


@needs_iglu
@pytest.mark.parametrize(
    ("ours_col", "func", "iglu_col"),
    [
        ("mean", "mean_glu", "mean"),
        ("sd", "sd_glu", "SD"),
        ("cv", "cv_glu", "CV"),
        ("gmi", "gmi", "GMI"),
        ("lbgi", "lbgi", "LBGI"),
        ("hbgi", "hbgi", "HBGI"),
        ("gri", "gri", "GRI"),
        ("j_index", "j_index", "J_index"),
    ],
)
def test_matches_iglu(real, ours_col: str, func: str, iglu_col: str) -> None:
    table, _, ours = real
    ref = _by_id(getattr(iglu, func)(table.to_iglu()), iglu_col)
    mine = _ours(ours, ours_col).reindex(ref.index)
    np.testing.assert_allclose(mine.to_numpy(), ref.to_numpy(dtype=float), rtol=REL, atol=0)


@needs_iglu
def test_ranges_match_iglu(real) -> None:
    table, _, ours = real
    ig = table.to_iglu()
    below = iglu.below_percent(ig, targets_below=[54, 70]).set_index("id")
    above = iglu.above_percent(ig, targets_above=[140, 180, 250]).set_index("id")
    inr = iglu.in_range_percent(ig, target_ranges=[[70, 180], [70, 140]]).set_index("id")
    o = ours.copy()
    o.index = o.index.astype(str)
    o = o.reindex(below.index.astype(str))
    pairs = {
        "tbr_54": below["below_54"],
        "tbr_70": below["below_70"],
        "tar_180": above["above_180"],
        "tar_250": above["above_250"],
        "tir_70_180": inr["in_range_70_180"],
        "tir_70_140": inr["in_range_70_140"],
        "tbr_54_69": below["below_70"] - below["below_54"],
        "tar_181_250": above["above_180"] - above["above_250"],
    }
    for col, ref in pairs.items():
        np.testing.assert_allclose(o[col].to_numpy(), ref.to_numpy(float), rtol=REL, atol=1e-12)


@needs_iglu
@pytest.mark.filterwarnings("ignore:The inplace keyword")  # inside iglu_python, pandas 3
def test_adrr_matches_iglu_up_to_the_published_constant(real) -> None:
    table, local, ours = real
    # iglu takes the dates of the naive times it gets: UTC from to_iglu() ...
    ref_utc = _by_id(iglu.adrr(table.to_iglu()), "ADRR")
    mine = _ours(ours, "adrr").reindex(ref_utc.index)
    np.testing.assert_allclose(mine.to_numpy(), ref_utc.to_numpy(float) * KOV_RATIO, rtol=1e-9)
    # ... and local (EST, UTC-5) days when given the local wall-clock times.
    ref_est = _by_id(iglu.adrr(local), "ADRR")
    est = C.adrr(table, tz="Etc/GMT+5")
    est.index = est.index.astype(str)
    np.testing.assert_allclose(
        est.reindex(ref_est.index).to_numpy(), ref_est.to_numpy(float) * KOV_RATIO, rtol=1e-9
    )
    assert not np.allclose(est.reindex(ref_est.index).to_numpy(), mine.to_numpy(), rtol=1e-6)


@needs_iglu
def test_sufficiency_close_to_iglu_active_percent(real) -> None:
    table, _, ours = real
    ref = iglu.active_percent(table.to_iglu(), tz="UTC").set_index("id")
    o = ours.copy()
    o.index = o.index.astype(str)
    o = o.reindex(ref.index.astype(str))
    # different bookkeeping of jittered gaps (see consensus docstring): within 0.5 points
    np.testing.assert_allclose(
        o["percent_expected_readings"], ref["active_percent"].astype(float), atol=0.5
    )
    np.testing.assert_allclose(o["days_span"].round(1), ref["ndays"].astype(float), atol=1e-9)


# --------------------------------------------------------------------------- summary
def test_summary_columns_and_rows() -> None:
    if importlib.util.find_spec("isletsim.metrics.variability") is None:
        pytest.skip("isletsim.metrics.variability not written yet")
    table, _ = _load("example_data_5_subject.csv")
    s = consensus_summary(table)
    assert tuple(s.columns) == SUMMARY_COLUMNS
    assert list(s["id"].astype(str)) == [f"Subject {i}" for i in range(1, 6)]
    ours = C.consensus_metrics(table)
    pd.testing.assert_series_equal(
        s.set_index("id")["gri"], ours["gri"], check_index_type=False, check_names=False
    )
    assert s[["mage", "conga_1h", "modd"]].notna().all(axis=None)
    assert (s[["mage", "conga_1h", "modd"]] > 0).all(axis=None)
    mmol = consensus_summary(table, units="mmol/L")
    np.testing.assert_allclose(mmol["mage"] * MGDL_PER_MMOLL, s["mage"], rtol=1e-12)
    np.testing.assert_allclose(mmol["mean"] * MGDL_PER_MMOLL, s["mean"], rtol=1e-12)
    night = consensus_summary(table, period="night", tz="Etc/GMT+5")
    assert tuple(night.columns) == SUMMARY_COLUMNS
    assert (night["n_readings"] < s["n_readings"]).all()
