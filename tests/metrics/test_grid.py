"""Regular device grid (isletsim.metrics.grid): interpolation, gaps, interval, phase."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isletsim.glucose_table import GlucoseTable
from isletsim.metrics.grid import Grid, as_grid, regular_grid

DATA = Path(__file__).resolve().parents[1] / "data"
T0 = pd.Timestamp("2024-03-01T00:00:00Z")


def table(minutes, values, pid: str = "A") -> GlucoseTable:
    """One participant's readings at ``minutes`` after 2024-03-01 00:00 UTC."""
    t = T0 + pd.to_timedelta(np.asarray(minutes, dtype=float), unit="min")
    return GlucoseTable.from_frame(pd.DataFrame({"id": pid, "time": t, "gl": values}))


def test_readings_on_the_grid_are_copied() -> None:
    vals = [100.0, 110, 95, 130, 140]
    g = regular_grid(table([0, 5, 10, 15, 20], vals))
    assert g.dt.tolist() == [5]
    s = g.participant(0)
    assert s.index[0] == T0 and s.index[-1] == T0 + pd.Timedelta(minutes=20)
    np.testing.assert_array_equal(s.to_numpy(), vals)


def test_off_grid_readings_are_interpolated_linearly() -> None:
    # readings 2.5 min after the grid phase: grid points at 5, 10, 15 are midpoints
    g = regular_grid(table([2.5, 7.5, 12.5, 17.5], [100.0, 120, 80, 80]))
    s = g.participant(0)
    assert s.index[0] == T0 + pd.Timedelta(minutes=5)
    np.testing.assert_allclose(s.to_numpy(), [110.0, 100.0, 80.0])


def test_gap_of_45_min_is_bridged_and_longer_gap_is_not() -> None:
    minutes = [0, 5, 50, 55, 105, 110]  # gaps of 45 and 50 min
    g = regular_grid(table(minutes, [100.0, 100, 190, 190, 100, 100]))
    s = g.participant(0)
    t = (s.index - T0) / pd.Timedelta(minutes=1)
    bridged = s[(t > 5) & (t < 50)]
    np.testing.assert_allclose(bridged.to_numpy(), 100 + 90 * (t[(t > 5) & (t < 50)] - 5) / 45)
    assert s[(t > 55) & (t < 105)].isna().all()  # 50-min gap: strictly inside is missing
    assert s[t == 55].item() == 190 and s[t == 105].item() == 100  # its ends are kept


@pytest.mark.parametrize(
    ("step_s", "expected"),
    [
        (300, 5),
        (299, 5),
        (900, 15),
        (60, 1),
        (420, 5),
        (480, 8),
        (660, 10),
        (780, 15),
        (1500, 20),
        (840, 15),
    ],
)
def test_interval_is_the_rounded_median_made_a_divisor_of_a_day(step_s: int, expected: int) -> None:
    minutes = np.arange(40) * step_s / 60
    g = regular_grid(table(minutes, np.full(40, 120.0)))
    assert g.dt.tolist() == [expected]


def test_median_not_mode_decides_the_interval() -> None:
    # mostly 4-min steps by count of distinct values, but the median step is 5 min
    steps = [5] * 20 + [4] * 15 + [6] * 15
    g = regular_grid(table(np.cumsum([0, *steps]), np.full(51, 120.0)))
    assert g.dt.tolist() == [5]


def test_too_few_readings_or_too_long_interval_give_no_grid() -> None:
    one = regular_grid(table([0], [100.0]))
    assert one.dt.tolist() == [0] and len(one.values) == 0
    hourly = regular_grid(table(np.arange(10) * 60, np.full(10, 100.0)))
    assert hourly.dt.tolist() == [0] and len(hourly.values) == 0
    # a fixed interval still gives a one-point grid for a single on-phase reading
    fixed = regular_grid(table([0], [100.0]), dt=5)
    assert fixed.dt.tolist() == [5] and fixed.values.tolist() == [100.0]


def test_missing_glucose_and_duplicate_times_are_dropped() -> None:
    g = regular_grid(table([0, 5, 5, 10, 15, 20], [100.0, 1.0, 120, np.nan, 140, 150]))
    assert g.n_readings.tolist() == [4]
    np.testing.assert_allclose(g.participant(0).to_numpy(), [100, 120, 130, 140, 150])


def test_unsorted_table_gives_the_same_grid() -> None:
    a = table([0, 5, 10, 15], [100.0, 110, 120, 130], "A")
    b = table([0, 10, 20], [200.0, 180, 160], "B")
    both = pd.concat([b.data, a.data]).reset_index(drop=True)
    shuffled = GlucoseTable(data=both.sample(frac=1.0, random_state=1).reset_index(drop=True))
    g = regular_grid(shuffled)
    ref = regular_grid(GlucoseTable.from_tidy(both))
    assert set(g.ids) == {"A", "B"}
    for i, pid in enumerate(g.ids):
        j = list(ref.ids).index(pid)
        pd.testing.assert_series_equal(g.participant(i), ref.participant(j))


def test_phase_follows_local_midnight_of_tz() -> None:
    # India is UTC+05:30: a 20-min grid on local :00/:20/:40 is at UTC :10/:30/:50
    minutes = 3 + np.arange(30) * 20
    g = regular_grid(table(minutes, np.full(30, 120.0)), tz="Asia/Kolkata")
    assert g.dt.tolist() == [20]
    assert set(g.participant(0).index.minute) == {10, 30, 50}
    utc = regular_grid(table(minutes, np.full(30, 120.0)))
    assert set(utc.participant(0).index.minute) == {0, 20, 40}


def test_layout_of_several_participants() -> None:
    a = table([0, 5, 10], [100.0, 110, 120], "A")
    b = table([0, 15, 30, 45], [90.0, 80, 70, 60], "B")
    g = regular_grid(GlucoseTable.from_tidy(pd.concat([a.data, b.data])))
    assert list(g.ids) == ["A", "B"] and g.dt.tolist() == [5, 15]
    assert g.offsets.tolist() == [0, 3, 7]
    frame = g.to_frame()
    assert list(frame.columns) == ["id", "time", "glucose"]
    assert frame["id"].tolist() == ["A"] * 3 + ["B"] * 4
    assert frame["time"].iloc[-1] == T0 + pd.Timedelta(minutes=45)
    assert as_grid(g) is g
    assert isinstance(as_grid(a), Grid)
    with pytest.raises(TypeError):
        as_grid(a.data)  # type: ignore[arg-type]


def test_empty_table() -> None:
    g = regular_grid(GlucoseTable.from_tidy(table([0], [1.0]).data.iloc[:0]))
    assert len(g) == 0 and len(g.values) == 0


def test_invalid_arguments() -> None:
    t = table([0, 5], [100.0, 100.0])
    with pytest.raises(ValueError, match="dt"):
        regular_grid(t, dt=0)
    with pytest.raises(ValueError, match="inter_gap"):
        regular_grid(t, inter_gap=0)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=1, max_value=70), min_size=2, max_size=60),
    values=st.lists(st.floats(min_value=40, max_value=400), min_size=61, max_size=61),
)
def test_grid_values_lie_between_their_neighbouring_readings(
    steps: list[int], values: list[float]
) -> None:
    minutes = np.cumsum([0, *steps]).astype(float)
    gl = np.asarray(values[: len(minutes)])
    g = regular_grid(table(minutes, gl), dt=5)
    s = g.participant(0)
    t = ((s.index - T0) / pd.Timedelta(minutes=1)).to_numpy()
    j = np.searchsorted(minutes, t, side="right") - 1
    on = minutes[j] == t
    np.testing.assert_array_equal(s.to_numpy()[on], gl[j[on]])
    off = ~on
    nxt = np.minimum(j + 1, len(minutes) - 1)
    bridged = (minutes[nxt] - minutes[j]) <= 45
    assert s.to_numpy()[off & ~bridged].size == 0 or np.isnan(s.to_numpy()[off & ~bridged]).all()
    v = s.to_numpy()[off & bridged]
    lo = np.minimum(gl[j], gl[nxt])[off & bridged]
    hi = np.maximum(gl[j], gl[nxt])[off & bridged]
    assert np.all((v >= lo - 1e-9) & (v <= hi + 1e-9))


def test_matches_iglu_python_grid_on_real_data() -> None:
    iglu = pytest.importorskip("iglu_python")
    tab = GlucoseTable.from_frame(pd.read_csv(DATA / "cgm" / "example_data_5_subject.csv"))
    grid = regular_grid(tab)
    frame = tab.to_iglu()
    for i, pid in enumerate(grid.ids):
        gd2d, dates, dt0 = iglu.CGMS2DayByDay(frame[frame["id"] == pid].copy())
        assert dt0 == grid.dt[i] == 5
        flat = gd2d.ravel()
        # iglu's grid: from midnight + dt0 of the first day, to the end of the last day
        times = pd.Timestamp(dates[0]).tz_localize("UTC") + pd.to_timedelta(
            np.arange(1, len(flat) + 1) * dt0, unit="min"
        )
        theirs = pd.Series(flat, index=times)
        ours = grid.participant(i)
        aligned = theirs.reindex(ours.index)
        assert aligned.notna().sum() == theirs.notna().sum()  # nothing outside our span
        np.testing.assert_array_equal(ours.isna().to_numpy(), aligned.isna().to_numpy())
        np.testing.assert_allclose(ours.dropna(), aligned.dropna(), rtol=1e-12)
