"""Tests of the AGP computation, the AGP figures and the HTML report."""

from __future__ import annotations

import base64
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from isletsim import GlucoseTable
from isletsim.report.agp import (
    AGP_PERCENTILES,
    CONSENSUS_TARGETS,
    agp_percentiles,
    assess_targets,
    daily_traces,
    plot_agp,
    plot_daily_profiles,
    range_percentages,
)
from isletsim.report.html import rejected_counts, write_cgm_report
from isletsim.units import MGDL_PER_MMOLL

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NY = "America/New_York"  # UTC-5 all of January (no DST change in the test data)


def _trace(
    days: int = 10,
    *,
    tz: str = "UTC",
    start: str = "2024-01-08",
    pid: str = "p1",
    noise: float = 12.0,
    seed: int = 0,
    flat: float | None = None,
) -> tuple[GlucoseTable, pd.DatetimeIndex, np.ndarray]:
    """5-min trace in local time ``tz``: 150 + 60 sin(2 pi (h - 9) / 24) -> peak at 15:00."""
    local = pd.date_range(start, periods=days * 288, freq="5min")
    h = (local.hour + local.minute / 60.0).to_numpy()
    day = np.asarray((local.normalize() - local[0].normalize()).days, dtype=float)
    if flat is not None:
        g = np.full(len(local), flat)
    else:
        rng = np.random.default_rng(seed)
        g = 150.0 + 60.0 * np.sin(2 * np.pi * (h - 9.0) / 24.0) + 2.0 * day
        g = g + rng.normal(0.0, noise, len(local))
    frame = pd.DataFrame({"id": pid, "time": local, "gl": g})
    return GlucoseTable.from_frame(frame, tz=tz), local, g


def _expected(local: pd.DatetimeIndex, g: np.ndarray, bin_minutes: int) -> np.ndarray:
    minute = (local.hour * 60 + local.minute).to_numpy()
    b = minute // bin_minutes
    out = np.full((1440 // bin_minutes, len(AGP_PERCENTILES)), np.nan)
    for k in range(out.shape[0]):
        vals = g[b == k]
        if vals.size:
            out[k] = np.percentile(vals, AGP_PERCENTILES)
    return out


@pytest.mark.parametrize("bin_minutes", [5, 15])
def test_percentiles_match_numpy_in_local_time(bin_minutes: int) -> None:
    table, local, g = _trace(tz=NY)
    agp = agp_percentiles(table, tz=NY, bin_minutes=bin_minutes)
    nbins = 1440 // bin_minutes
    assert len(agp) == nbins
    assert list(agp.columns) == [
        "id", "bin", "start_minute", "time_of_day", "n", "p5", "p25", "p50", "p75", "p95",
    ]
    assert agp["n"].sum() == len(g)
    assert (agp["n"] == 10 * bin_minutes // 5).all()
    expected = _expected(local, g, bin_minutes)
    got = agp[["p5", "p25", "p50", "p75", "p95"]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert agp["time_of_day"].iloc[1] == f"00:{bin_minutes:02d}"
    assert agp.attrs["tz"] == NY and agp.attrs["units"] == "mg/dL"


def test_known_daily_pattern_peaks_at_local_time_and_tz_shifts_it() -> None:
    table, _, _ = _trace(tz=NY, noise=3.0)
    local_agp = agp_percentiles(table, tz=NY, bin_minutes=15)
    peak_local = int(local_agp["p50"].idxmax())
    trough_local = int(local_agp["p50"].idxmin())
    # sin peaks at 15:00 and bottoms at 03:00 local; 15-min bins -> bins 60 and 12.
    assert abs(local_agp.loc[peak_local, "start_minute"] - 15 * 60) <= 30
    assert abs(local_agp.loc[trough_local, "start_minute"] - 3 * 60) <= 30
    # The same readings binned in UTC: New York is UTC-5 in January.
    utc_agp = agp_percentiles(table, tz="UTC", bin_minutes=15)
    assert abs(utc_agp.loc[int(utc_agp["p50"].idxmax()), "start_minute"] - 20 * 60) <= 30
    # The bands are ordered.
    p = local_agp[["p5", "p25", "p50", "p75", "p95"]].to_numpy()
    assert np.all(np.diff(p, axis=1) >= 0)
    assert np.all(p[:, 4] - p[:, 0] > 5.0)


def test_flat_trace_gives_collapsed_bands() -> None:
    table, _, _ = _trace(days=3, flat=120.0)
    agp = agp_percentiles(table)
    for col in ("p5", "p25", "p50", "p75", "p95"):
        np.testing.assert_array_equal(agp[col].to_numpy(), 120.0)


def test_empty_bins_are_nan_with_zero_count() -> None:
    table, _, _ = _trace(days=3)
    half = GlucoseTable(
        table.data[table.data["time"].dt.hour < 12].reset_index(drop=True), table.rejected
    )
    agp = agp_percentiles(half, bin_minutes=10)
    morning = agp["start_minute"] < 12 * 60
    assert (agp.loc[morning, "n"] > 0).all()
    assert (agp.loc[~morning, "n"] == 0).all()
    assert agp.loc[~morning, ["p5", "p50", "p95"]].isna().all().all()
    assert agp.loc[morning, ["p5", "p50", "p95"]].notna().all().all()


def test_units_participants_and_custom_percentiles() -> None:
    a, _, ga = _trace(days=2, pid="a", seed=1)
    b, _, _ = _trace(days=2, pid="b", seed=2, flat=99.0)
    both = GlucoseTable.from_tidy(pd.concat([a.data, b.data]))
    mg = agp_percentiles(both)
    mmol = agp_percentiles(both, units="mmol/L")
    assert list(pd.unique(mg["id"])) == ["a", "b"] and len(mg) == 2 * 96
    np.testing.assert_allclose(mmol["p50"].to_numpy(), mg["p50"].to_numpy() / MGDL_PER_MMOLL)
    assert (mg.loc[mg["id"] == "b", "p50"] == 99.0).all()
    custom = agp_percentiles(a, percentiles=[10, 90])
    assert [c for c in custom.columns if c.startswith("p")] == ["p10", "p90"]
    first_bin = ga[:3]  # the first 15 minutes of day 1 ...
    second_day = ga[288:291]  # ... and of day 2
    np.testing.assert_allclose(
        custom.loc[0, "p10"], np.percentile(np.concatenate([first_bin, second_day]), 10)
    )


@pytest.mark.parametrize("bad", [0, 7, 90, 2.5, True])
def test_bad_bin_minutes_rejected(bad: object) -> None:
    table, _, _ = _trace(days=1)
    with pytest.raises(ValueError, match="bin_minutes"):
        agp_percentiles(table, bin_minutes=bad)  # type: ignore[arg-type]


def test_bad_percentiles_and_units_rejected() -> None:
    table, _, _ = _trace(days=1)
    with pytest.raises(ValueError, match="percentiles"):
        agp_percentiles(table, percentiles=[50, 101])
    with pytest.raises(ValueError, match="units"):
        agp_percentiles(table, units="mmol")


def test_empty_table_gives_empty_frame() -> None:
    table = GlucoseTable.from_tidy(_trace(days=1)[0].data.iloc[:0])
    agp = agp_percentiles(table)
    assert len(agp) == 0 and "p50" in agp.columns


def test_daily_traces_use_local_calendar_days() -> None:
    table, _, _ = _trace(days=2, tz=NY)
    tr = daily_traces(table, tz=NY)
    assert sorted({str(d) for d in tr["date"]}) == ["2024-01-08", "2024-01-09"]
    assert tr["hour"].min() == 0.0 and tr["hour"].max() < 24.0
    utc = daily_traces(table, tz="UTC")
    assert len(set(utc["date"])) == 3  # 05:00 UTC to 05:00 UTC two days later


# --------------------------------------------------------------------------- targets
def test_consensus_targets_boundaries() -> None:
    row = {
        "tir_70_180": 70.0,  # target is > 70 %: not met
        "tbr_70": 3.99,
        "tbr_54": 1.0,  # < 1 %: not met
        "tar_180": 24.0,
        "tar_250": float("nan"),
        "cv": 36.0,  # <= 36 %: met
    }
    checks = {c.target.key: c for c in assess_targets(row)}
    assert "percent_expected_readings" not in checks  # absent column skipped
    assert checks["tir_70_180"].met is False
    assert checks["tbr_70"].met is True
    assert checks["tbr_54"].met is False
    assert checks["tar_180"].met is True
    assert checks["tar_250"].met is None and checks["tar_250"].value is None
    assert checks["cv"].met is True
    assert assess_targets({**row, "tir_70_180": 70.1})[0].met is True
    thresholds = {t.key: (t.op, t.threshold) for t in CONSENSUS_TARGETS}
    assert thresholds["tir_70_180"] == (">", 70.0)
    assert thresholds["tbr_70"] == ("<", 4.0)
    assert thresholds["tbr_54"] == ("<", 1.0)
    assert thresholds["tar_180"] == ("<", 25.0)
    assert thresholds["tar_250"] == ("<", 5.0)
    assert thresholds["cv"] == ("<=", 36.0)


def test_range_percentages_from_cumulative_or_direct_columns() -> None:
    cumulative = {"tbr_54": 1.0, "tbr_70": 4.0, "tir_70_180": 70.0, "tar_180": 26.0,
                  "tar_250": 6.0}
    parts = range_percentages(cumulative)
    assert parts == {"very_low": 1.0, "low": 3.0, "target": 70.0, "high": 20.0,
                     "very_high": 6.0}
    assert math.isclose(sum(parts.values()), 100.0)
    direct = {**cumulative, "tbr_54_69": 2.5, "tar_181_250": 19.5}
    assert range_percentages(direct)["low"] == 2.5
    assert range_percentages(direct)["high"] == 19.5
    assert math.isnan(range_percentages({})["target"])


# --------------------------------------------------------------------------- figures
def test_plot_agp_draws_bands_and_median_and_writes_png(tmp_path) -> None:
    table, _, _ = _trace(days=4, tz=NY)
    fig = plot_agp(table, tz=NY)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2
    median = next(line for line in ax.get_lines() if line.get_label() == "median")
    agp = agp_percentiles(table, tz=NY)
    np.testing.assert_allclose(np.asarray(median.get_ydata())[1:-1], agp["p50"].to_numpy())
    out = tmp_path / "agp.png"
    fig.savefig(out)
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_plot_agp_needs_an_id_for_several_participants() -> None:
    a, _, _ = _trace(days=1, pid="a")
    b, _, _ = _trace(days=1, pid="b")
    both = GlucoseTable.from_tidy(pd.concat([a.data, b.data]))
    with pytest.raises(ValueError, match="participants"):
        plot_agp(both)
    with pytest.raises(ValueError, match="not in table"):
        plot_agp(both, id="zz")
    fig = plot_agp(both, id="b", units="mmol/L")
    assert fig.axes[0].get_ylabel() == "mmol/L"


def test_plot_daily_profiles_one_panel_per_day(tmp_path) -> None:
    table, _, _ = _trace(days=3, tz=NY)
    fig = plot_daily_profiles(table, tz=NY)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["Mon 08 Jan", "Tue 09 Jan", "Wed 10 Jan"]
    fig2 = plot_daily_profiles(table, tz=NY, max_days=2)
    assert [ax.get_title() for ax in fig2.axes if ax.get_title()] == ["Tue 09 Jan", "Wed 10 Jan"]
    out = tmp_path / "daily.png"
    fig.savefig(out)
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 5_000


# --------------------------------------------------------------------------- HTML report
def _summary_row(pid: str) -> dict[str, object]:
    return {
        "id": pid, "n_readings": 1152, "mean": 150.0, "sd": 45.0, "cv": 30.0, "gmi": 6.9,
        "tbr_54": 0.5, "tbr_70": 2.0, "tir_70_180": 75.0, "tir_70_140": 45.0,
        "tar_180": 23.0, "tar_250": 3.0, "lbgi": 0.8, "hbgi": 4.5, "gri": 25.0,
        "mage": float("nan"), "conga_1h": 30.0, "modd": 28.0,
        "percent_expected_readings": 100.0, "days_of_wear": 4.0,
    }


def test_write_cgm_report_png_and_self_contained_html(tmp_path) -> None:
    pid = "<b>pat&1</b>"
    table, _, _ = _trace(days=4, pid=pid)
    rejected = pd.DataFrame(
        {
            "file": pd.Series(["x.csv"] * 3, dtype="string"),
            "row": pd.Series([3, 7, 9], dtype="Int64"),
            "field": pd.Series(["time", "gl", "gl"], dtype="string"),
            "value": pd.Series(["", "abc", "-1"], dtype="string"),
            "reason": pd.Series(["duplicate", "not_a_number", "not_a_number"],
                                dtype="string"),
        }
    )
    table = GlucoseTable(table.data, rejected)
    summary = pd.DataFrame([_summary_row(pid)])
    paths = write_cgm_report(table, summary, tmp_path / "rep", sources={pid: ["x.csv"]})
    assert [p.name for p in paths] == ["b_pat_1_b_agp.png", "b_pat_1_b.html"]
    png, page_path = paths
    png_bytes = png.read_bytes()
    assert png_bytes.startswith(PNG_MAGIC) and len(png_bytes) > 20_000
    page = page_path.read_text(encoding="utf-8")
    assert "&lt;b&gt;pat&amp;1&lt;/b&gt;" in page and "<b>pat" not in page
    b64 = page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(b64) == png_bytes
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "not_a_number</td><td class=\"num\">2" in page
    assert "duplicate</td><td class=\"num\">1" in page
    assert "Time in range 70-180 mg/dL" in page and "&gt; 70%" in page
    assert page.count('class="met"') == 7  # all seven targets met by _summary_row


def test_rejected_counts_attribution() -> None:
    a, _, _ = _trace(days=1, pid="a")
    b, _, _ = _trace(days=1, pid="b")
    rej = pd.DataFrame(
        {
            "file": pd.Series(["a.csv", "a.csv", "b.csv"], dtype="string"),
            "row": pd.Series([1, 2, 3], dtype="Int64"),
            "field": pd.Series(["gl"] * 3, dtype="string"),
            "value": pd.Series(["x"] * 3, dtype="string"),
            "reason": pd.Series(["bad", "dup", "bad"], dtype="string"),
        }
    )
    both = GlucoseTable.from_tidy(pd.concat([a.data, b.data]), rejected=rej)
    by_file = rejected_counts(both, {"a": ["a.csv"], "b": ["b.csv"]})
    assert by_file == {"a": {"bad": 1, "dup": 1}, "b": {"bad": 1}}
    single = rejected_counts(GlucoseTable(a.data, rej))
    assert single == {"a": {"bad": 2, "dup": 1}}
    assert rejected_counts(a) == {"a": {}}
