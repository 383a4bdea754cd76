"""Ambulatory glucose profile (AGP): computation and figures.

The AGP collapses all days of a CGM recording onto one "modal day" and shows, for each
time-of-day bin, the 5th, 25th, 50th, 75th and 95th percentile of glucose. Together with
the daily glucose profiles (one small panel per day) and the panel of the international
consensus metrics and targets it forms the standard one-page CGM report.

Sources
-------
* Battelino T, Danne T, Bergenstal RM, et al. Clinical targets for continuous glucose
  monitoring data interpretation: recommendations from the international consensus on
  time in range. *Diabetes Care* 2019;42(8):1593-1603. doi:10.2337/dci19-0028
  (targets for most adults with type 1 or type 2 diabetes: TIR 70-180 mg/dL > 70 %,
  TBR < 70 mg/dL < 4 %, TBR < 54 mg/dL < 1 %, TAR > 180 mg/dL < 25 %,
  TAR > 250 mg/dL < 5 %, glycaemic variability CV <= 36 %, CGM active >= 70 %).
* Johnson ML, Martens TW, Criego AB, Carlson AL, Simonson GD, Bergenstal RM. Utilizing
  the ambulatory glucose profile to standardize and implement continuous glucose
  monitoring in clinical practice. *Diabetes Technol Ther* 2019;21(S2):S217-S225.
  doi:10.1089/dia.2019.0034 (layout of the AGP report).
* International Diabetes Center, AGP Report v5 (captur AGP): metrics panel, time-in-ranges
  bar, AGP percentile bands and daily glucose profiles.

Conventions
-----------
The percentile bands are computed per participant and per time-of-day bin in the
participant's local wall-clock time (argument ``tz``, default UTC), with numpy's default
(linear-interpolation) percentile, and are not smoothed. Range boundaries follow the
consensus: very low < 54, low 54-69, target 70-180 (inclusive), high 181-250,
very high > 250 mg/dL. Glucose is held in mg/dL internally; ``units="mmol/L"`` converts
with 18.016 mg/dL per mmol/L for display.

All figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never
through ``pyplot``, so no display and no global state is involved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure

from isletsim.glucose_table import UNITS, GlucoseTable
from isletsim.units import MGDL_PER_MMOLL

AGP_PERCENTILES: tuple[float, ...] = (5.0, 25.0, 50.0, 75.0, 95.0)
"""Percentiles of the AGP bands (Johnson et al. 2019; IDC AGP report)."""

MINUTES_PER_DAY = 24 * 60

# Consensus glucose thresholds, mg/dL (Battelino et al. 2019).
VERY_LOW_MGDL = 54.0
LOW_MGDL = 70.0
HIGH_MGDL = 180.0
VERY_HIGH_MGDL = 250.0

# Colours close to the IDC AGP report.
_C_VERY_HIGH = "#e8722a"
_C_HIGH = "#f6c342"
_C_TARGET = "#3fa34d"
_C_LOW = "#e03c31"
_C_VERY_LOW = "#8b1a1a"
_C_BAND_OUTER = "#a9c4e4"
_C_BAND_INNER = "#4f81bd"
_C_MEDIAN = "#1f3d6b"

TzLike = str | tzinfo


# --------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class ConsensusTarget:
    """One consensus target on a summary metric.

    Attributes
    ----------
    key
        Column of :func:`isletsim.metrics.summary.consensus_summary`.
    label
        Human-readable label (thresholds in mg/dL).
    op
        ``">"``, ``">="``, ``"<"`` or ``"<="``: the value meets the target if
        ``value op threshold``.
    threshold
        Target threshold in percent.
    label_mmol
        Label with the consensus mmol/L thresholds, if different.
    """

    key: str
    label: str
    op: str
    threshold: float
    label_mmol: str | None = None

    def label_in(self, units: str) -> str:
        """Label with glucose thresholds written in ``units``."""
        return self.label_mmol if units == "mmol/L" and self.label_mmol else self.label

    @property
    def text(self) -> str:
        """The target written out, e.g. ``"> 70%"``."""
        op = {">=": "\u2265", "<=": "\u2264"}.get(self.op, self.op)
        return f"{op} {self.threshold:g}%"

    def met(self, value: float | None) -> bool | None:
        """Whether ``value`` meets the target (``None`` if the value is missing)."""
        if value is None or not math.isfinite(float(value)):
            return None
        v = float(value)
        if self.op == ">":
            return v > self.threshold
        if self.op == ">=":
            return v >= self.threshold
        if self.op == "<":
            return v < self.threshold
        if self.op == "<=":
            return v <= self.threshold
        raise ValueError(f"unknown comparison {self.op!r}")


CONSENSUS_TARGETS: tuple[ConsensusTarget, ...] = (
    ConsensusTarget("tir_70_180", "Time in range 70-180 mg/dL", ">", 70.0,
                    "Time in range 3.9-10.0 mmol/L"),
    ConsensusTarget("tbr_70", "Time below 70 mg/dL", "<", 4.0, "Time below 3.9 mmol/L"),
    ConsensusTarget("tbr_54", "Time below 54 mg/dL", "<", 1.0, "Time below 3.0 mmol/L"),
    ConsensusTarget("tar_180", "Time above 180 mg/dL", "<", 25.0, "Time above 10.0 mmol/L"),
    ConsensusTarget("tar_250", "Time above 250 mg/dL", "<", 5.0, "Time above 13.9 mmol/L"),
    ConsensusTarget("cv", "Coefficient of variation", "<=", 36.0),
    ConsensusTarget("percent_expected_readings", "CGM active", ">=", 70.0),
)
"""Targets for most adults with type 1 or type 2 diabetes (Battelino et al. 2019,
Diabetes Care 42:1593, Table 2 / Fig. 3); CV <= 36 % and >= 70 % of expected readings
from the same consensus. Percentages are percent of readings; TBR < 70 includes readings
below 54 and TAR > 180 includes readings above 250, as in the consensus."""


@dataclass(frozen=True)
class TargetCheck:
    """Result of checking one :class:`ConsensusTarget` on a participant."""

    target: ConsensusTarget
    value: float | None
    met: bool | None


def assess_targets(
    row: Mapping[str, object], targets: Sequence[ConsensusTarget] = CONSENSUS_TARGETS
) -> list[TargetCheck]:
    """Check the consensus targets on one participant's summary.

    Parameters
    ----------
    row
        One row of :func:`isletsim.metrics.summary.consensus_summary` (a mapping or a
        :class:`pandas.Series`); percentages in percent.
    targets
        Targets to check; default :data:`CONSENSUS_TARGETS` (Battelino et al. 2019).
        Targets whose column is absent from ``row`` are skipped.

    Returns
    -------
    list of TargetCheck
        In the order of ``targets``; ``met`` is ``None`` where the value is missing/NaN.
    """
    out: list[TargetCheck] = []
    for t in targets:
        if t.key not in row:
            continue
        value = _as_float(row[t.key])
        out.append(TargetCheck(t, value, t.met(value)))
    return out


def range_percentages(row: Mapping[str, object]) -> dict[str, float]:
    """Split the summary's range metrics into the five AGP time-in-ranges segments.

    Uses the consensus metrics of a summary row (percent) so that the bar agrees with the
    metrics table: very low = ``tbr_54``, low = ``tbr_54_69`` (else ``tbr_70 - tbr_54``),
    target = ``tir_70_180``, high = ``tar_181_250`` (else ``tar_180 - tar_250``), very
    high = ``tar_250`` (Battelino et al. 2019, Diabetes Care 42:1593, Fig. 2).

    Returns
    -------
    dict
        Keys ``very_low, low, target, high, very_high`` (percent; NaN if missing).
    """
    nan = float("nan")

    def get(key: str) -> float | None:
        return _as_float(row[key]) if key in row else None

    def part(direct: str, total: str, minus: str) -> float:
        v = get(direct)
        if v is not None:
            return v
        a, b = get(total), get(minus)
        return nan if a is None or b is None else max(a - b, 0.0)

    def plain(key: str) -> float:
        v = get(key)
        return nan if v is None else v

    return {
        "very_low": plain("tbr_54"),
        "low": part("tbr_54_69", "tbr_70", "tbr_54"),
        "target": plain("tir_70_180"),
        "high": part("tar_181_250", "tar_180", "tar_250"),
        "very_high": plain("tar_250"),
    }


# --------------------------------------------------------------------------- computation
def agp_percentiles(
    table: GlucoseTable,
    *,
    tz: TzLike = "UTC",
    bin_minutes: int = 15,
    percentiles: Sequence[float] = AGP_PERCENTILES,
    units: str = "mg/dL",
) -> pd.DataFrame:
    """Percentile bands of glucose over the modal day (the AGP), per participant.

    Every reading is placed in a time-of-day bin by its wall-clock time in ``tz``; the
    requested percentiles of all readings of a participant in a bin, over all days, are
    computed with :func:`numpy.percentile` (linear interpolation), unsmoothed. This is the
    computation behind the AGP (Johnson et al. 2019, Diabetes Technol Ther 21(S2):S217;
    IDC AGP report, 5/25/50/75/95th percentiles).

    Parameters
    ----------
    table
        Glucose readings (:class:`isletsim.GlucoseTable`); NaN glucose is ignored.
    tz
        Participant's local time zone (IANA name or tzinfo) in which time of day is
        taken; default UTC.
    bin_minutes
        Bin width in minutes; must divide 1440 and lie in 1..60 (the AGP uses 5-15 min).
    percentiles
        Percentiles in [0, 100]; default 5, 25, 50, 75, 95.
    units
        ``"mg/dL"`` or ``"mmol/L"`` for the returned values.

    Returns
    -------
    pandas.DataFrame
        One row per participant and bin (all ``1440 / bin_minutes`` bins, also empty
        ones), columns ``id, bin, start_minute, time_of_day`` ("HH:MM" of the bin start),
        ``n`` (readings in the bin) and one column per percentile named ``p{q:g}``
        (``p5, p25, p50, p75, p95``), NaN where ``n == 0``. ``attrs`` holds ``units``,
        ``tz``, ``bin_minutes`` and ``percentiles``.

    Raises
    ------
    ValueError
        For a bad ``bin_minutes``, ``percentiles`` or ``units``.
    """
    nbins = _check_bins(bin_minutes)
    qs = np.asarray(list(percentiles), dtype=float)
    if qs.ndim != 1 or qs.size == 0 or np.any(~np.isfinite(qs)) or np.any(qs < 0) or np.any(
        qs > 100
    ):
        raise ValueError(f"percentiles must be numbers in [0, 100], got {list(percentiles)}")
    names = [f"p{q:g}" for q in qs]
    if len(set(names)) != len(names):
        raise ValueError(f"percentiles must be distinct, got {list(percentiles)}")
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")

    data = table.data
    g = table.glucose_in(units).to_numpy(dtype=float)
    bins = _time_bins(data["time"], tz, bin_minutes)
    ids = data["id"].astype(str).to_numpy()
    ok = np.isfinite(g)

    starts = np.arange(nbins) * bin_minutes
    labels = [f"{m // 60:02d}:{m % 60:02d}" for m in starts]
    frames: list[pd.DataFrame] = []
    for pid in pd.unique(ids):
        sel = (ids == pid) & ok
        b, v = bins[sel], g[sel]
        order = np.argsort(b, kind="stable")
        b, v = b[order], v[order]
        counts = np.bincount(b, minlength=nbins)
        edges = np.concatenate(([0], np.cumsum(counts)))
        values = np.full((nbins, qs.size), np.nan)
        for k in np.flatnonzero(counts):
            values[k] = np.percentile(v[edges[k] : edges[k + 1]], qs)
        frame = pd.DataFrame(
            {
                "id": pd.Series([pid] * nbins, dtype="string"),
                "bin": np.arange(nbins),
                "start_minute": starts,
                "time_of_day": pd.Series(labels, dtype="string"),
                "n": counts.astype("int64"),
            }
        )
        for j, name in enumerate(names):
            frame[name] = values[:, j]
        frames.append(frame)

    if frames:
        out = pd.concat(frames, ignore_index=True)
    else:
        out = pd.DataFrame(
            {
                "id": pd.Series(dtype="string"),
                "bin": pd.Series(dtype="int64"),
                "start_minute": pd.Series(dtype="int64"),
                "time_of_day": pd.Series(dtype="string"),
                "n": pd.Series(dtype="int64"),
                **{name: pd.Series(dtype="float64") for name in names},
            }
        )
    out.attrs.update(
        {"units": units, "tz": str(tz), "bin_minutes": bin_minutes, "percentiles": list(qs)}
    )
    return out


def daily_traces(table: GlucoseTable, *, tz: TzLike = "UTC", units: str = "mg/dL") -> pd.DataFrame:
    """Readings with their local calendar day and hour of day (for daily profiles).

    Parameters
    ----------
    table
        Glucose readings.
    tz
        Local time zone in which days start at midnight; default UTC.
    units
        Units of the returned ``glucose``.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, date`` (local calendar day, :class:`datetime.date`), ``hour``
        (wall-clock hours since local midnight, in [0, 24)), ``glucose``; sorted by id and
        time; rows with NaN glucose dropped.
    """
    data = table.data
    local = data["time"].dt.tz_convert(tz)
    hour = (
        local.dt.hour.to_numpy(dtype=float)
        + local.dt.minute.to_numpy(dtype=float) / 60.0
        + local.dt.second.to_numpy(dtype=float) / 3600.0
    )
    out = pd.DataFrame(
        {
            "id": data["id"].astype("string"),
            "date": local.dt.date,
            "hour": hour,
            "glucose": table.glucose_in(units).to_numpy(dtype=float),
        }
    )
    return out[np.isfinite(out["glucose"].to_numpy(dtype=float))].reset_index(drop=True)


# --------------------------------------------------------------------------- figures
def plot_agp(
    table: GlucoseTable,
    *,
    id: str | None = None,
    tz: TzLike = "UTC",
    units: str = "mg/dL",
    bin_minutes: int = 15,
    ax: Axes | None = None,
) -> Figure:
    """Plot the AGP of one participant: 5-95 and 25-75 % bands and the median.

    Layout per the IDC AGP report (Johnson et al. 2019): modal day from midnight to
    midnight, target range 70-180 mg/dL marked, 54 and 250 mg/dL dashed.

    Parameters
    ----------
    table
        Glucose readings.
    id
        Participant to plot; may be omitted when the table holds one participant.
    tz, units, bin_minutes
        As in :func:`agp_percentiles`.
    ax
        Axes to draw into; a new figure (Agg canvas) is created if omitted.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the plot (``ax.figure`` when ``ax`` is given).
    """
    one = _one_participant(table, id)
    agp = agp_percentiles(one, tz=tz, bin_minutes=bin_minutes, units=units)
    ax = _axes_or_new(ax, (9.0, 4.0))
    x = (agp["start_minute"].to_numpy(dtype=float) + bin_minutes / 2.0) / 60.0
    cols = {q: agp[f"p{q:g}"].to_numpy(dtype=float) for q in AGP_PERCENTILES}
    # Wrap around midnight so the bands run from 0 h to 24 h.
    xw = np.concatenate(([x[-1] - 24.0], x, [x[0] + 24.0]))
    cw = {q: np.concatenate(([c[-1]], c, [c[0]])) for q, c in cols.items()}

    f = _unit_factor(units)
    ax.axhspan(LOW_MGDL * f, HIGH_MGDL * f, color=_C_TARGET, alpha=0.08, lw=0)
    for level, style in ((LOW_MGDL, "-"), (HIGH_MGDL, "-")):
        ax.axhline(level * f, color=_C_TARGET, lw=1.2, ls=style)
    for level in (VERY_LOW_MGDL, VERY_HIGH_MGDL):
        ax.axhline(level * f, color="0.5", lw=0.8, ls="--")
    ax.fill_between(xw, cw[5.0], cw[95.0], color=_C_BAND_OUTER, alpha=0.6, lw=0,
                    label="5-95%")
    ax.fill_between(xw, cw[25.0], cw[75.0], color=_C_BAND_INNER, alpha=0.7, lw=0,
                    label="25-75%")
    ax.plot(xw, cw[50.0], color=_C_MEDIAN, lw=2.0, label="median")
    _hour_axis(ax, fontsize=8)
    top = np.nanmax(cw[95.0]) if np.any(np.isfinite(cw[95.0])) else 0.0
    ax.set_ylim(0.0, max(350.0 * f, top * 1.05))
    ticks = [VERY_LOW_MGDL, LOW_MGDL, HIGH_MGDL, VERY_HIGH_MGDL, 350.0]
    ax.set_yticks([t * f for t in ticks])
    ax.set_yticklabels([_fmt_glucose(t * f, units) for t in ticks], fontsize=8)
    ax.set_ylabel(units)
    name = str(one.data["id"].iloc[0]) if len(one.data) else (id or "")
    ax.set_title(f"Ambulatory glucose profile - {name} ({_tz_name(tz)})", fontsize=10,
                 loc="left")
    ax.legend(loc="upper right", fontsize=7, frameon=False, ncol=3)
    return ax.figure  # type: ignore[return-value]


def plot_daily_profiles(
    table: GlucoseTable,
    *,
    id: str | None = None,
    tz: TzLike = "UTC",
    units: str = "mg/dL",
    max_days: int | None = 14,
    gap_minutes: float = 30.0,
    ncols: int = 7,
    fig: Figure | SubFigure | None = None,
) -> Figure:
    """Plot the daily glucose profiles of one participant, one small panel per day.

    As in the IDC AGP report (Johnson et al. 2019): each local calendar day from midnight
    to midnight, target range 70-180 mg/dL marked, excursions above 180 and below 70
    mg/dL filled. Lines are broken at gaps longer than ``gap_minutes``.

    Parameters
    ----------
    table
        Glucose readings.
    id
        Participant to plot; may be omitted when the table holds one participant.
    tz, units
        Local time zone of the calendar days; display units.
    max_days
        Show the last ``max_days`` calendar days (the AGP report shows 14); ``None`` for
        all days.
    gap_minutes
        Gaps between consecutive readings longer than this break the line.
    ncols
        Panels per row (7: one week per row).
    fig
        Figure or sub-figure to draw into; a new figure (Agg canvas) if omitted.

    Returns
    -------
    matplotlib.figure.Figure
        The (root) figure drawn into.
    """
    if max_days is not None and max_days < 1:
        raise ValueError(f"max_days must be >= 1 or None, got {max_days}")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    one = _one_participant(table, id)
    tr = daily_traces(one, tz=tz, units=units)
    if len(tr):
        first, last = min(tr["date"]), max(tr["date"])
        days = list(pd.date_range(first, last, freq="D").date)
    else:
        days = []
    if max_days is not None:
        days = days[-max_days:]
    ncol = ncols  # a fixed week grid, as in the AGP report; unused panels stay blank
    nrow = max(1, math.ceil(len(days) / ncol)) if days else 1
    if fig is None:
        fig = new_figure((1.6 * ncol + 0.6, 1.5 * nrow + 0.6))
    root: Figure = fig.figure if isinstance(fig, SubFigure) else fig  # type: ignore[assignment]
    if not days:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no readings", ha="center", va="center")
        return root

    f = _unit_factor(units)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharey=True, squeeze=False)).ravel()
    by_day = {d: grp for d, grp in tr.groupby("date", sort=True)}
    ymax = max(350.0 * f, float(np.nanmax(tr["glucose"])) * 1.05)
    lo, hi = LOW_MGDL * f, HIGH_MGDL * f
    for k, ax in enumerate(axes):
        if k >= len(days):
            ax.set_axis_off()
            continue
        day = days[k]
        ax.axhspan(lo, hi, color=_C_TARGET, alpha=0.10, lw=0)
        ax.axhline(lo, color=_C_TARGET, lw=0.6)
        ax.axhline(hi, color=_C_TARGET, lw=0.6)
        grp = by_day.get(day)
        if grp is not None:
            h = grp["hour"].to_numpy(dtype=float)
            y = grp["glucose"].to_numpy(dtype=float)
            h, y = _break_gaps(h, y, gap_minutes / 60.0)
            ax.plot(h, y, color="0.15", lw=0.7)
            ax.fill_between(h, y, hi, where=y > hi, color=_C_HIGH, alpha=0.8, lw=0,
                            interpolate=True)
            ax.fill_between(h, y, lo, where=y < lo, color=_C_LOW, alpha=0.8, lw=0,
                            interpolate=True)
        ax.set_xlim(0.0, 24.0)
        ax.set_ylim(0.0, ymax)
        ax.set_xticks([0, 12, 24])
        ax.set_xticklabels(["12am", "12pm", ""], fontsize=6)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_title(pd.Timestamp(day).strftime("%a %d %b"), fontsize=7)
    return root


def plot_metrics_panel(
    row: Mapping[str, object], *, units: str = "mg/dL", ax: Axes | None = None
) -> Figure:
    """Draw the consensus metrics with their targets as a text panel.

    Shows mean glucose, GMI, SD, CV and the time-in-ranges metrics with the targets of
    :data:`CONSENSUS_TARGETS` (Battelino et al. 2019) and whether each is met.

    Parameters
    ----------
    row
        One participant's row of :func:`isletsim.metrics.summary.consensus_summary`.
    units
        Units of ``mean`` and ``sd`` in ``row``.
    ax
        Axes to draw into; a new figure if omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ax = _axes_or_new(ax, (5.0, 4.0))
    ax.set_axis_off()
    lines: list[tuple[str, str, str, str | None]] = []
    lines.append(("Readings", _fmt(row.get("n_readings"), "{:.0f}"), "", None))
    if "days_of_wear" in row:
        lines.append(("Days of wear", _fmt(row.get("days_of_wear"), "{:.1f}"), "", None))
    lines.append(("Mean glucose", _fmt(row.get("mean"), _unit_fmt(units), units), "", None))
    lines.append(("GMI", _fmt(row.get("gmi"), "{:.1f}", "%"), "", None))
    lines.append(("SD", _fmt(row.get("sd"), _unit_fmt(units), units), "", None))
    for check in assess_targets(row):
        status = None if check.met is None else ("met" if check.met else "not met")
        label = check.target.label_in(units)
        lines.append((label, _fmt(check.value, "{:.1f}", "%"), check.target.text, status))
    name = str(row.get("id", ""))
    ax.set_title(f"Glucose metrics - {name}", fontsize=10, loc="left")
    n = len(lines)
    for i, (label, value, target, status) in enumerate(lines):
        y = 1.0 - (i + 0.5) / n
        ax.text(0.0, y, label, fontsize=8, va="center", transform=ax.transAxes)
        ax.text(0.60, y, value, fontsize=8, va="center", ha="right", transform=ax.transAxes,
                fontweight="bold")
        ax.text(0.66, y, target, fontsize=8, va="center", transform=ax.transAxes,
                color="0.35")
        if status is not None:
            ax.text(0.82, y, status, fontsize=8, va="center", transform=ax.transAxes,
                    color=_C_TARGET if status == "met" else _C_LOW, fontweight="bold")
    return ax.figure  # type: ignore[return-value]


def plot_time_in_ranges(
    row: Mapping[str, object], *, units: str = "mg/dL", ax: Axes | None = None
) -> Figure:
    """Draw the stacked time-in-ranges bar of the AGP report.

    Segments from :func:`range_percentages` (very low, low, target, high, very high;
    Battelino et al. 2019, Fig. 2), labelled with their percentages.

    Parameters
    ----------
    row
        One participant's summary row.
    units
        Units in which the range boundaries are labelled (consensus values).
    ax
        Axes to draw into; a new figure if omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ax = _axes_or_new(ax, (3.0, 4.0))
    parts = range_percentages(row)
    mmol = units == "mmol/L"
    _unit_factor(units)  # validates units
    spec = (
        ("very_low", "Very low <3.0" if mmol else "Very low <54", _C_VERY_LOW),
        ("low", "Low 3.0-3.8" if mmol else "Low 54-69", _C_LOW),
        ("target", "Target 3.9-10.0" if mmol else "Target 70-180", _C_TARGET),
        ("high", "High 10.1-13.9" if mmol else "High 181-250", _C_HIGH),
        ("very_high", "Very high >13.9" if mmol else "Very high >250", _C_VERY_HIGH),
    )
    bottom = 0.0
    n = len(spec)
    for i, (key, label, colour) in enumerate(spec):
        v = parts[key]
        h = v if math.isfinite(v) else 0.0
        ax.bar(0.0, h, bottom=bottom, width=0.6, color=colour, edgecolor="white", lw=0.5)
        # Labels evenly spaced so small segments stay readable.
        y_label = 100.0 * (i + 0.5) / n
        ax.annotate(
            f"{label}: {_fmt(v, '{:.1f}', '%')}",
            xy=(0.3, bottom + h / 2.0),
            xytext=(0.55, y_label),
            fontsize=8,
            va="center",
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5},
        )
        bottom += h
    ax.set_xlim(-0.4, 2.4)
    ax.set_ylim(0.0, 100.0)
    ax.set_axis_off()
    ax.set_title(f"Time in ranges ({units})", fontsize=10, loc="left")
    return ax.figure  # type: ignore[return-value]


def plot_agp_report(
    table: GlucoseTable,
    row: Mapping[str, object],
    *,
    id: str | None = None,
    tz: TzLike = "UTC",
    units: str = "mg/dL",
    bin_minutes: int = 15,
    max_days: int | None = 14,
) -> Figure:
    """One-page AGP report of one participant (IDC AGP layout, Johnson et al. 2019).

    Top: metrics panel with consensus targets and the time-in-ranges bar; middle: the
    AGP; bottom: daily glucose profiles.

    Parameters
    ----------
    table
        Glucose readings.
    row
        The participant's summary row (:func:`isletsim.metrics.summary.consensus_summary`,
        computed in ``units``).
    id
        Participant; defaults to ``row["id"]``.
    tz, units, bin_minutes, max_days
        As in :func:`plot_agp` and :func:`plot_daily_profiles`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pid = id if id is not None else (str(row["id"]) if "id" in row else None)
    one = _one_participant(table, pid)
    n_days = len(pd.unique(daily_traces(one, tz=tz)["date"]))
    shown = n_days if max_days is None else min(n_days, max_days)
    day_rows = max(1, math.ceil(shown / 7))
    fig = new_figure((11.0, 3.8 + 3.6 + 1.5 * day_rows))
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=[3.8, 3.6, 1.5 * day_rows])
    ax_m, ax_t = top.subplots(1, 2, width_ratios=[2.2, 1.0])
    plot_metrics_panel(row, units=units, ax=ax_m)
    plot_time_in_ranges(row, units=units, ax=ax_t)
    plot_agp(one, tz=tz, units=units, bin_minutes=bin_minutes, ax=middle.add_subplot())
    bottom.suptitle("Daily glucose profiles", fontsize=10, x=0.01, ha="left")
    plot_daily_profiles(one, tz=tz, units=units, max_days=max_days, fig=bottom)
    return fig


def new_figure(size: tuple[float, float], dpi: float = 100.0) -> Figure:
    """A matplotlib figure on the Agg canvas (no pyplot, no display)."""
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# --------------------------------------------------------------------------- helpers
def _axes_or_new(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """``ax``, or the one axes of a :func:`new_figure` of ``size`` inches when it is None."""
    if ax is None:
        ax = new_figure(size).add_subplot()
    return ax


def _check_bins(bin_minutes: int) -> int:
    if (
        isinstance(bin_minutes, bool)
        or not isinstance(bin_minutes, (int, np.integer))
        or not 1 <= bin_minutes <= 60
        or MINUTES_PER_DAY % int(bin_minutes) != 0
    ):
        raise ValueError(
            f"bin_minutes must be an integer in 1..60 dividing 1440, got {bin_minutes!r}"
        )
    return MINUTES_PER_DAY // int(bin_minutes)


def _time_bins(times: pd.Series, tz: TzLike, bin_minutes: int) -> np.ndarray:
    local = times.dt.tz_convert(tz)
    minute = local.dt.hour.to_numpy(dtype=np.int64) * 60 + local.dt.minute.to_numpy(
        dtype=np.int64
    )
    return (minute // int(bin_minutes)).astype(np.int64)


def _one_participant(table: GlucoseTable, id: str | None) -> GlucoseTable:
    ids = [str(i) for i in table.ids]
    if id is None:
        if len(ids) > 1:
            raise ValueError(f"table holds {len(ids)} participants; pass id= (one of {ids})")
        return table
    if id not in ids:
        raise ValueError(f"participant {id!r} not in table (ids: {ids})")
    return table.subset([id])


def _break_gaps(h: np.ndarray, y: np.ndarray, max_gap_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN where the hour jumps by more than ``max_gap_h`` or goes backwards."""
    if h.size < 2:
        return h, y
    dh = np.diff(h)
    cut = np.flatnonzero((dh > max_gap_h) | (dh < 0)) + 1
    if cut.size == 0:
        return h, y
    hh = np.insert(h, cut, np.nan)
    yy = np.insert(y, cut, np.nan)
    return hh, yy


def _hour_axis(ax: Axes, fontsize: float = 8) -> None:
    ax.set_xlim(0.0, 24.0)
    ticks = list(range(0, 25, 3))
    labels = ["12am", "3am", "6am", "9am", "12pm", "3pm", "6pm", "9pm", "12am"]
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=fontsize)
    ax.grid(axis="x", color="0.9", lw=0.6)


def _unit_factor(units: str) -> float:
    if units == "mg/dL":
        return 1.0
    if units == "mmol/L":
        return 1.0 / MGDL_PER_MMOLL
    raise ValueError(f"units must be one of {UNITS}, got {units!r}")


def _unit_fmt(units: str) -> str:
    return "{:.0f}" if units == "mg/dL" else "{:.1f}"


def _fmt_glucose(v: float, units: str) -> str:
    return _unit_fmt(units).format(v)


def _fmt(value: object, fmt: str, suffix: str = "") -> str:
    v = _as_float(value)
    if v is None:
        return "n/a"
    sep = " " if suffix and suffix != "%" else ""
    return f"{fmt.format(v)}{sep}{suffix}"


def _as_float(value: object) -> float | None:
    """Float of a scalar, ``None`` for missing / NaN / non-numeric."""
    if value is None or value is pd.NA:
        return None
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _tz_name(tz: TzLike) -> str:
    return tz if isinstance(tz, str) else str(tz)


__all__ = [
    "AGP_PERCENTILES",
    "CONSENSUS_TARGETS",
    "ConsensusTarget",
    "TargetCheck",
    "agp_percentiles",
    "assess_targets",
    "daily_traces",
    "new_figure",
    "plot_agp",
    "plot_agp_report",
    "plot_daily_profiles",
    "plot_metrics_panel",
    "plot_time_in_ranges",
    "range_percentages",
]
