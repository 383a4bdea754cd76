"""Hypo-/hyperglycaemia episodes (isletsim.metrics.episodes), Battelino et al. 2023 rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isletsim.glucose_table import GlucoseTable
from isletsim.metrics.episodes import (
    EPISODE_COLUMNS,
    SUMMARY_COLUMNS,
    episode_summary,
    episodes,
)

DATA = Path(__file__).resolve().parents[1] / "data"
T0 = pd.Timestamp("2024-03-01T00:00:00Z")
IN_RANGE = (100.0, 12)  # one hour in range


def table(minutes, values, pid: str = "A") -> GlucoseTable:
    t = T0 + pd.to_timedelta(np.asarray(minutes, dtype=float), unit="min")
    return GlucoseTable.from_frame(pd.DataFrame({"id": pid, "time": t, "gl": values}))


def runs(*parts: tuple[float, int], step: int = 5, pid: str = "A") -> GlucoseTable:
    """Readings every ``step`` minutes: ``(value, count)`` runs in order."""
    values = np.concatenate([np.full(n, v, dtype=float) for v, n in parts])
    return table(step * np.arange(len(values)), values, pid)


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def only(ep: pd.DataFrame, kind: str, level: str) -> pd.DataFrame:
    return ep[(ep["type"] == kind) & (ep["level"] == level)].reset_index(drop=True)


# --------------------------------------------------------------------------- start rule
def test_a_10_minute_dip_is_not_an_episode() -> None:
    ep = episodes(runs(IN_RANGE, (60.0, 2), IN_RANGE))
    assert len(ep) == 0
    assert list(ep.columns) == list(EPISODE_COLUMNS)


def test_a_15_minute_dip_is_an_episode() -> None:
    ep = episodes(runs(IN_RANGE, (60.0, 3), IN_RANGE))
    assert len(ep) == 1
    row = ep.iloc[0]
    assert (row["id"], row["type"], row["level"]) == ("A", "hypo", "lv1")
    assert row["start"] == at(60) and row["end"] == at(75)
    assert row["duration_min"] == 15
    assert row["extreme"] == 60 and row["mean_glucose"] == 60
    assert bool(row["lv1_excl"]) and not row["censored"]


def test_thresholds_are_strict() -> None:
    # exactly 70 is not below 70 and exactly 180 is not above 180
    assert len(episodes(runs(IN_RANGE, (70.0, 6), IN_RANGE, (180.0, 6), IN_RANGE))) == 0
    ep = episodes(runs(IN_RANGE, (69.9, 3), IN_RANGE, (180.1, 3), IN_RANGE))
    assert sorted(zip(ep["type"], ep["level"], strict=True)) == [("hyper", "lv1"), ("hypo", "lv1")]


# --------------------------------------------------------------------------- end rule
def test_a_recovery_shorter_than_15_minutes_does_not_end_the_episode() -> None:
    ep = episodes(runs(IN_RANGE, (60.0, 4), (100.0, 2), (60.0, 3), IN_RANGE))
    assert len(ep) == 1
    row = ep.iloc[0]
    assert row["start"] == at(60) and row["end"] == at(105)
    assert row["duration_min"] == 45  # 20 min low + 10 min recovery + 15 min low
    assert row["mean_glucose"] == pytest.approx((7 * 60 + 2 * 100) / 9)


def test_a_15_minute_recovery_ends_the_episode() -> None:
    ep = episodes(runs(IN_RANGE, (60.0, 4), (100.0, 3), (60.0, 3), IN_RANGE))
    assert ep["start"].tolist() == [at(60), at(95)]
    assert ep["duration_min"].tolist() == [20, 15]
    # 70 itself counts as back in range
    ep70 = episodes(runs(IN_RANGE, (60.0, 4), (70.0, 3), (60.0, 3), IN_RANGE))
    assert len(ep70) == 2


# --------------------------------------------------------------------------- levels
def test_level_2_lies_inside_level_1_and_level_1_exclusive() -> None:
    trace = runs(
        IN_RANGE, (65.0, 3), (50.0, 3), (60.0, 3), (50.0, 1), (65.0, 2), IN_RANGE,
        (65.0, 4), IN_RANGE,
    )  # fmt: skip
    ep = episodes(trace)
    lv1, lv2 = only(ep, "hypo", "lv1"), only(ep, "hypo", "lv2")
    assert lv1["start"].tolist() == [at(60), at(180)]
    assert lv1["duration_min"].tolist() == [60, 20]
    assert lv1["lv1_excl"].tolist() == [False, True]
    # level 2 ends after 15 min at >= 54 (60 mg/dL), even though level 1 goes on
    assert lv2["start"].tolist() == [at(75)] and lv2["duration_min"].tolist() == [15]
    assert lv2["extreme"].tolist() == [50] and lv1["extreme"].tolist() == [50, 65]
    assert lv2["lv1_excl"].isna().all()
    s = episode_summary(trace).set_index(["type", "level"])
    assert s.loc[("hypo", "lv1"), "total_episodes"] == 2
    assert s.loc[("hypo", "lv2"), "total_episodes"] == 1
    assert s.loc[("hypo", "lv1_excl"), "total_episodes"] == 1
    assert s.loc[("hypo", "lv1_excl"), "avg_ep_duration"] == 20


def test_extended_hypoglycaemia_needs_more_than_120_consecutive_minutes() -> None:
    assert len(only(episodes(runs(IN_RANGE, (60.0, 24), IN_RANGE)), "hypo", "extended")) == 0
    ext = only(episodes(runs(IN_RANGE, (60.0, 25), IN_RANGE)), "hypo", "extended")
    assert ext["duration_min"].tolist() == [125]
    # 100 + 10 + 100 min below 70 are one level-1 episode but not extended
    ep = episodes(runs(IN_RANGE, (60.0, 20), (100.0, 2), (60.0, 20), IN_RANGE))
    assert only(ep, "hypo", "lv1")["duration_min"].tolist() == [210]
    assert len(only(ep, "hypo", "extended")) == 0
    # extended ends with the same 15-minute rule and includes short recoveries
    ep = episodes(runs(IN_RANGE, (60.0, 25), (100.0, 2), (60.0, 5), IN_RANGE))
    assert only(ep, "hypo", "extended")["duration_min"].tolist() == [160]


def test_hyperglycaemia_levels() -> None:
    ep = episodes(runs(IN_RANGE, (200.0, 3), (260.0, 3), (200.0, 3), IN_RANGE))
    lv1, lv2 = only(ep, "hyper", "lv1"), only(ep, "hyper", "lv2")
    assert lv1["duration_min"].tolist() == [45] and lv1["extreme"].tolist() == [260]
    assert lv2["duration_min"].tolist() == [15] and lv2["start"].tolist() == [at(75)]
    assert lv1["lv1_excl"].tolist() == [False]
    custom = episodes(runs(IN_RANGE, (200.0, 3), IN_RANGE), lv1_hyper=210)
    assert len(custom) == 0


# --------------------------------------------------------------------------- gaps, edges
def test_unbridged_gap_splits_a_dip() -> None:
    lows = [60.0, 60.0]
    before = list(range(0, 60, 5))
    # two 10-min dips separated by a 60-min gap: no episode
    m = [*before, 60, 65, 125, 130, *range(135, 195, 5)]
    g = [100.0] * 12 + lows + lows + [100.0] * 12
    assert len(episodes(table(m, g))) == 0
    # the same with a 30-min gap is bridged (interpolated at 60): one 45-min episode
    m = [*before, 60, 65, 95, 100, *range(105, 165, 5)]
    ep = episodes(table(m, g))
    assert ep["duration_min"].tolist() == [45] and not ep["censored"].any()


def test_episodes_cut_by_a_gap_or_the_data_edges_are_censored() -> None:
    m = [*range(0, 60, 5), *range(60, 90, 5), *range(150, 210, 5)]
    g = [100.0] * 12 + [60.0] * 6 + [100.0] * 12
    ep = episodes(table(m, g))
    assert ep["duration_min"].tolist() == [30] and ep["censored"].tolist() == [True]
    assert ep["end"].tolist() == [at(90)]
    starts_low = episodes(runs((60.0, 4), IN_RANGE))
    assert starts_low["censored"].tolist() == [True]
    ends_low = episodes(runs(IN_RANGE, (60.0, 4)))
    assert ends_low["censored"].tolist() == [True] and ends_low["end"].tolist() == [at(80)]


def test_15_minute_data_uses_whole_grid_points() -> None:
    # at 15 min a single reading below 70 is 15 min; extended needs 9 points (135 min)
    ep = episodes(runs((100.0, 4), (60.0, 1), (100.0, 4), (60.0, 9), (100.0, 4), step=15))
    assert only(ep, "hypo", "lv1")["duration_min"].tolist() == [15, 135]
    assert only(ep, "hypo", "extended")["duration_min"].tolist() == [135]
    ep8 = episodes(runs((100.0, 4), (60.0, 8), (100.0, 4), step=15))
    assert len(only(ep8, "hypo", "extended")) == 0


# --------------------------------------------------------------------------- summary
def test_summary_rates_per_day_of_recorded_time() -> None:
    day = 288
    lows = [IN_RANGE, (60.0, 3)] * 3
    trace = runs(*lows, (100.0, 2 * day - 3 * 15))  # exactly 2 days of readings
    s = episode_summary(trace)
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    assert list(zip(s["type"], s["level"], strict=True)) == [
        ("hypo", "lv1"),
        ("hypo", "lv2"),
        ("hypo", "extended"),
        ("hyper", "lv1"),
        ("hyper", "lv2"),
        ("hypo", "lv1_excl"),
        ("hyper", "lv1_excl"),
    ]
    s = s.set_index(["type", "level"])
    assert s["recorded_days"].tolist() == [2.0] * 7
    assert s.loc[("hypo", "lv1"), "avg_ep_per_day"] == 1.5
    assert s.loc[("hypo", "lv1"), "avg_ep_duration"] == 15
    assert s.loc[("hypo", "lv1"), "avg_ep_gl"] == 60
    none = s.loc[("hyper", "lv1")]
    assert none["total_episodes"] == 0 and none["avg_ep_per_day"] == 0
    assert np.isnan(none["avg_ep_duration"]) and np.isnan(none["avg_ep_gl"])


def test_too_few_readings() -> None:
    one = table([0], [50.0], "solo")
    assert len(episodes(one)) == 0
    s = episode_summary(one)
    assert len(s) == 7 and (s["total_episodes"] == 0).all()
    assert (s["recorded_days"] == 0).all() and s["avg_ep_per_day"].isna().all()


def test_arguments() -> None:
    with pytest.raises(ValueError, match="dur_length"):
        episodes(runs(IN_RANGE), dur_length=0)
    with pytest.raises(TypeError):
        episodes(runs(IN_RANGE).data)  # type: ignore[arg-type]


def test_several_participants_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    parts = []
    for i in range(4):
        n = 288 * 3
        t = np.arange(n) * 5.0
        x = 120 + 90 * np.sin(2 * np.pi * t / (200 + 50 * i)) + rng.normal(0, 10, n)
        keep = rng.random(n) > 0.05
        parts.append(table(t[keep], x[keep], f"P{i}"))
    together = GlucoseTable.from_tidy(pd.concat([p.data for p in parts]))
    joint = episodes(together)
    single = pd.concat([episodes(p) for p in parts], ignore_index=True)
    assert len(joint) > 20
    pd.testing.assert_frame_equal(joint, single)
    pd.testing.assert_frame_equal(
        episode_summary(together),
        pd.concat([episode_summary(p) for p in parts], ignore_index=True),
    )


# --------------------------------------------------------------------------- iglu_python
def _compare_with_iglu(tab: GlucoseTable) -> None:
    iglu = pytest.importorskip("iglu_python")
    theirs = iglu.episode_calculation(tab.to_iglu())
    ours = episode_summary(tab)
    both = ours.merge(theirs, on=["id", "type", "level"], suffixes=("", "_iglu"))
    assert len(both) == len(ours) == len(theirs)
    np.testing.assert_array_equal(both["total_episodes"], both["total_episodes_iglu"].astype(int))
    np.testing.assert_allclose(both["avg_ep_per_day"], both["avg_ep_per_day_iglu"], rtol=1e-9)
    # iglu reports a mean duration of 0 (and glucose NA) when there is no episode
    np.testing.assert_allclose(
        both["avg_ep_duration"].fillna(0), both["avg_ep_duration_iglu"], rtol=1e-9
    )
    np.testing.assert_allclose(
        both["avg_ep_gl"], both["avg_ep_gl_iglu"].astype(float), rtol=1e-9, equal_nan=True
    )
    # the per-episode table adds up to the summary
    counts = episodes(tab).groupby(["id", "type", "level"]).size()
    lv = ours[ours["level"] != "lv1_excl"].set_index(["id", "type", "level"])["total_episodes"]
    np.testing.assert_array_equal(counts.reindex(lv.index, fill_value=0), lv)


def test_summary_matches_iglu_python_on_real_data() -> None:
    tab = GlucoseTable.from_frame(pd.read_csv(DATA / "cgm" / "example_data_5_subject.csv"))
    _compare_with_iglu(tab)


def test_summary_matches_iglu_python_with_level_2_and_extended_episodes() -> None:
    hall = GlucoseTable.from_frame(pd.read_csv(DATA / "cgm" / "example_data_hall.csv"))
    # subjects with level-2 and extended hypoglycaemia, and one with an 89-day span
    sub = hall.subset(["1636-70-1005", "2133-024", "1636-70-1010"])
    s = episode_summary(sub).set_index(["type", "level"])["total_episodes"]
    assert s.loc[("hypo", "lv2")].sum() >= 2 and s.loc[("hypo", "extended")].sum() >= 2
    _compare_with_iglu(sub)


@pytest.mark.slow
def test_speed_1000_participants_14_days() -> None:
    import time

    rng = np.random.default_rng(0)
    n_ids, n = 1000, 14 * 288
    minutes = np.arange(n) * 5.0
    phase = rng.uniform(0, 2 * np.pi, (n_ids, 1))
    g = 130 + 90 * np.sin(2 * np.pi * minutes / 360 + phase) + rng.normal(0, 8, (n_ids, n))
    t = pd.DatetimeIndex(T0 + pd.to_timedelta(np.tile(minutes, n_ids), unit="min"))
    data = pd.DataFrame(
        {
            "id": pd.array(np.repeat([f"P{i:04d}" for i in range(n_ids)], n), dtype="string"),
            "time": t,
            "glucose": g.ravel(),
            "source_row": pd.array(np.arange(n_ids * n), dtype="Int64"),
            "flag": pd.array([""] * (n_ids * n), dtype="string"),
        }
    )
    tab = GlucoseTable.from_tidy(data)
    episode_summary(runs(IN_RANGE, (60.0, 3), IN_RANGE))  # compile outside the timing
    start = time.perf_counter()
    ep = episodes(tab)
    summary = episode_summary(tab)
    elapsed = time.perf_counter() - start
    assert len(ep) > 1000 and len(summary) == 7 * n_ids
    assert elapsed < 3.0, f"{elapsed:.2f} s"
