"""Consensus CGM metrics per participant, vectorised over all participants at once.

Every function takes a :class:`~isletsim.glucose_table.GlucoseTable` and returns a pandas
object indexed by participant ``id`` (one row per participant of the table, in table order).
The work is done with ``numpy.bincount`` / ``ufunc.reduceat`` over integer participant codes:
there is no Python loop over participants.

Definitions and sources (science reference §5 and §7; iglu notes in ``shared/docs/cgm-metrics.md``):

========================= ==================================================================
metric                    definition
========================= ==================================================================
mean, sd, cv              arithmetic mean, sample SD (n - 1), CV = 100 SD / mean (Danne et al.
                          *Diabetes Care* 2017;40:1631; iglu ``mean_glu``/``sd_glu``/``cv_glu``)
gmi                       3.31 + 0.02392 x mean mg/dL, in % (Bergenstal et al. *Diabetes Care*
                          2018;41:2275), via :func:`isletsim.metrics.hba1c.gmi`
time in ranges            percent of readings: < 54, < 70, 54-69, 70-180 (both ends
                          included), 70-140, > 180, 181-250, > 250 mg/dL (Battelino et al.
                          *Diabetes Care* 2019;42:1593)
lbgi, hbgi                f = 1.509 ((ln BG)^1.084 - 5.381), r = 10 f^2; LBGI = mean of r over
                          readings with f < 0 (0 otherwise), HBGI the same for f > 0; both
                          divided by the number of *all* readings (Kovatchev et al. *Diabetes
                          Care* 1997;20:1655 and 2006;29:2433)
gri                       3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High, capped at 100; hypo
                          component VLow + 0.8 Low, hyper component VHigh + 0.5 High (Klonoff
                          et al. *J Diabetes Sci Technol* 2023;17:1-14, online 2022)
j_index                   0.001 (mean + SD)^2 with mg/dL (Wojcicki, *Horm Metab Res*
                          1995;27:41)
adrr                      mean over days of [max r_l + max r_h] of that day (Kovatchev et al.
                          *Diabetes Care* 2006;29:2433); a day is a local calendar day in ``tz``
data sufficiency          percent of the readings expected at the device interval over the
                          period (>= 70 % over >= 14 days is "sufficient", Battelino 2019)
========================= ==================================================================

Count-based, as in the consensus and iglu: each valid reading counts once, no interpolation
and no time weighting (science reference §7, "percentages over valid readings").

Units: glucose is stored in mg/dL. ``units="mmol/L"`` reports mean and SD in mmol/L *and*
uses the consensus mmol/L cut-offs (3.0, 3.9, 7.8, 10.0, 13.9 mmol/L, each multiplied by
18.016 exactly as :meth:`GlucoseTable.from_frame` converts readings), so a reading entered as
10.0 mmol/L counts as in range, as the consensus intends; with ``units="mg/dL"`` the cut-offs
are 54, 70, 140, 180, 250 mg/dL. LBGI/HBGI/ADRR/J-index/GMI are defined on mg/dL and are
unit-free outputs.

Missing data: readings with a missing glucose or time are ignored. A participant whose
readings are all missing (or, for a period, who has no reading in it) gets a row of NaN with
``n_readings == 0``. An empty table raises :class:`MetricsError`; so does a glucose value
that is not positive and finite (the logarithm in LBGI/HBGI needs BG > 0).

Where iglu (R 4.3.0 / iglu_python 0.4.3) differs, this module follows the publication:

* LBGI/HBGI/ADRR use 10 x 1.509^2 = 22.77081 (Kovatchev's r = 10 f^2). iglu R writes 22.77
  for all three, iglu_python uses 10 f^2 for LBGI/HBGI but 22.77 in ``adrr``; the results
  differ by a relative 3.6e-5.
* ADRR day boundaries are local calendar days in an explicit ``tz``; iglu uses the dates of
  whatever wall-clock (naive) times it is given.
* Sufficiency is percent of *expected readings* over the period; iglu's ``active_percent``
  subtracts gap lengths instead (same value on regular data, within ~1 point on real data).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from isletsim.glucose_table import UNITS, GlucoseTable
from isletsim.metrics.hba1c import gmi as _gmi_from_mean
from isletsim.units import MGDL_PER_MMOLL

__all__ = [
    "THRESHOLDS_MGDL",
    "THRESHOLDS_MMOLL",
    "MetricsError",
    "Period",
    "adrr",
    "bg_risk",
    "consensus_metrics",
    "cv_glucose",
    "data_sufficiency",
    "day_night_metrics",
    "glucose_management_indicator",
    "glucose_stats",
    "gri",
    "hbgi",
    "j_index",
    "kovatchev_f",
    "lbgi",
    "mean_glucose",
    "period_metrics",
    "sd_glucose",
    "select_period",
    "time_in_ranges",
]

NS_PER_MIN: int = 60_000_000_000
NS_PER_DAY: int = 1440 * NS_PER_MIN
_NAT: int = np.iinfo(np.int64).min

#: Consensus cut-offs (Battelino 2019) in mg/dL: very low, low, tight-range top, high, very high.
THRESHOLDS_MGDL: dict[str, float] = {
    "very_low": 54.0,
    "low": 70.0,
    "tight_high": 140.0,
    "high": 180.0,
    "very_high": 250.0,
}
#: The same cut-offs as the consensus prints them in mmol/L (7.8 is the 140 mg/dL tight range).
THRESHOLDS_MMOLL: dict[str, float] = {
    "very_low": 3.0,
    "low": 3.9,
    "tight_high": 7.8,
    "high": 10.0,
    "very_high": 13.9,
}

# Kovatchev 1997 symmetrisation: f(BG) = GAMMA * ((ln BG)^ALPHA - BETA), BG in mg/dL.
_KOV_ALPHA: float = 1.084
_KOV_BETA: float = 5.381
_KOV_GAMMA: float = 1.509

#: Columns of :func:`time_in_ranges` (percent of readings).
RANGE_COLUMNS: tuple[str, ...] = (
    "tbr_54",
    "tbr_70",
    "tbr_54_69",
    "tir_70_180",
    "tir_70_140",
    "tar_180",
    "tar_181_250",
    "tar_250",
)
#: Columns of :func:`data_sufficiency`.
SUFFICIENCY_COLUMNS: tuple[str, ...] = (
    "interval_min",
    "expected_readings",
    "percent_expected_readings",
    "days_of_wear",
    "days_span",
)


class MetricsError(ValueError):
    """Input that metrics cannot be computed from (empty table, impossible glucose, bad period)."""


# --------------------------------------------------------------------------- risk function
def kovatchev_f(glucose_mg_dl: np.ndarray | float) -> np.ndarray | float:
    """Kovatchev's symmetrised glucose scale, ``f = 1.509 ((ln BG)^1.084 - 5.381)``.

    Source: Kovatchev BP et al. *Diabetes Care* 1997;20:1655 (BG in mg/dL). ``f`` is negative
    below about 112.5 mg/dL, positive above it, and about +-sqrt(10) at 20 / 600 mg/dL.

    Parameters
    ----------
    glucose_mg_dl
        Glucose in mg/dL (> 0).

    Returns
    -------
    numpy.ndarray or float
        ``f`` for each value.
    """
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    out = _KOV_GAMMA * (np.power(np.log(g), _KOV_ALPHA) - _KOV_BETA)
    return float(out) if out.ndim == 0 else out


def bg_risk(glucose_mg_dl: np.ndarray | float) -> np.ndarray | float:
    """Kovatchev blood-glucose risk ``r = 10 f^2`` (0 at about 112.5 mg/dL, 100 at the extremes).

    Source: Kovatchev BP et al. *Diabetes Care* 1997;20:1655; 2006;29:2433.

    Parameters
    ----------
    glucose_mg_dl
        Glucose in mg/dL (> 0).

    Returns
    -------
    numpy.ndarray or float
        Risk value(s); the low-risk part is ``r`` where ``f < 0``, the high-risk part ``r``
        where ``f > 0``.
    """
    f = np.asarray(kovatchev_f(glucose_mg_dl))
    out = 10.0 * f * f
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- period
@dataclass(frozen=True)
class Period:
    """Which readings a summary uses.

    Parameters
    ----------
    start, end
        Half-open window ``start <= time < end``. Each is ``None`` (open), one timestamp for
        everybody (a naive timestamp means UTC, as in :meth:`GlucoseTable.between`), or a
        per-participant ``pandas.Series`` / mapping from id to timestamp (e.g. enrolment
        dates). A per-participant bound must name every participant of the table.
    part
        ``"all"`` (default), ``"night"`` or ``"day"`` (the complement of night).
    night
        Night as local clock times ``(from, to)``, ``"HH:MM"`` strings or
        :class:`datetime.time`; default 00:00-06:00. ``from > to`` wraps midnight
        (e.g. ``("22:00", "06:00")``).

    Notes
    -----
    The local time zone for ``part`` is the ``tz`` argument of the function the period is
    given to (default UTC). Coerce shorthands with :meth:`coerce`: ``None``, a
    ``(start, end)`` tuple, or ``"all"``/``"day"``/``"night"``.
    """

    start: object = None
    end: object = None
    part: Literal["all", "day", "night"] = "all"
    night: tuple[str | _dt.time, str | _dt.time] = ("00:00", "06:00")

    @classmethod
    def coerce(cls, period: object) -> Period:
        """Turn ``None``, ``(start, end)``, ``"all"/"day"/"night"`` or a Period into a Period."""
        if period is None:
            return cls()
        if isinstance(period, Period):
            out = period
        elif isinstance(period, str):
            out = cls(part=period)  # type: ignore[arg-type]
        elif isinstance(period, tuple | list) and len(period) == 2:
            out = cls(start=period[0], end=period[1])
        else:
            raise MetricsError(
                "period must be None, (start, end), 'all', 'day', 'night' or a Period; "
                f"got {period!r}"
            )
        if out.part not in ("all", "day", "night"):
            raise MetricsError(f"period part must be 'all', 'day' or 'night', got {out.part!r}")
        _night_minutes(out.night)  # validates
        return out


def _clock_minutes(value: str | _dt.time) -> float:
    if isinstance(value, _dt.time):
        return value.hour * 60 + value.minute + value.second / 60
    if isinstance(value, str):
        try:
            t = _dt.time.fromisoformat(value)
        except ValueError as exc:
            raise MetricsError(f"night bound must be 'HH:MM', got {value!r}") from exc
        return t.hour * 60 + t.minute + t.second / 60
    raise MetricsError(f"night bound must be 'HH:MM' or datetime.time, got {value!r}")


def _night_minutes(night: tuple[str | _dt.time, str | _dt.time]) -> tuple[float, float]:
    if not isinstance(night, tuple | list) or len(night) != 2:
        raise MetricsError(f"night must be a (from, to) pair of clock times, got {night!r}")
    a, b = _clock_minutes(night[0]), _clock_minutes(night[1])
    if a == b:
        raise MetricsError(f"night window {night!r} is empty")
    return a, b


# --------------------------------------------------------------------------- readings
@dataclass(frozen=True)
class _Readings:
    """Valid readings as flat arrays, sorted by participant code then time."""

    ids: pd.Index  # every participant of the table, in table order
    codes: np.ndarray  # int64 participant code of each reading (index into ids)
    glucose: np.ndarray  # float64 mg/dL
    time_ns: np.ndarray  # int64 ns since the epoch, UTC
    rows: np.ndarray  # int64 position of each reading in table.data

    @property
    def k(self) -> int:
        return len(self.ids)

    def count(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.k)

    def gsum(self, weights: np.ndarray) -> np.ndarray:
        return np.bincount(self.codes, weights=weights, minlength=self.k)

    def select(self, mask: np.ndarray) -> _Readings:
        return _Readings(
            self.ids, self.codes[mask], self.glucose[mask], self.time_ns[mask], self.rows[mask]
        )

    def group_starts(self) -> np.ndarray:
        """Position of the first reading of each non-empty participant."""
        c = self.codes
        if len(c) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.r_[True, c[1:] != c[:-1]])


def _prepare(table: GlucoseTable) -> _Readings:
    """Validate a table and flatten its valid readings into arrays (no per-id loop)."""
    if not isinstance(table, GlucoseTable):
        raise TypeError(f"expected a GlucoseTable, got {type(table).__name__}")
    data = table.data
    if len(data) == 0:
        raise MetricsError("the glucose table is empty: there are no readings to summarise")
    id_col = data["id"]
    n_na_id = int(id_col.isna().sum())
    if n_na_id:
        raise MetricsError(f"{n_na_id} reading(s) have no participant id")
    codes, uniques = pd.factorize(id_col, sort=False)
    ids = pd.Index(uniques, name="id")
    time = data["time"]
    if not isinstance(time.dtype, pd.DatetimeTZDtype):
        raise MetricsError(f"time column must be timezone-aware (UTC), got dtype {time.dtype}")
    t_ns = (
        time.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy(dtype="datetime64[ns]")
        .view(np.int64)
    )
    g = data["glucose"].to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(g)
    bad = present & ~(np.isfinite(g) & (g > 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MetricsError(
            f"{int(bad.sum())} glucose value(s) are not positive and finite "
            f"(first: {g[first]!r} for participant {id_col.iloc[first]!r} at {time.iloc[first]})"
        )
    valid = present & (t_ns != _NAT)
    rows = np.flatnonzero(valid)
    c = codes[rows].astype(np.int64, copy=False)
    t = t_ns[rows]
    g = g[rows]
    if len(c) > 1:
        dc = np.diff(c)
        if (dc < 0).any() or ((dc == 0) & (np.diff(t) < 0)).any():
            order = np.lexsort((t, c))
            c, t, g, rows = c[order], t[order], g[order], rows[order]
    return _Readings(ids=ids, codes=c, glucose=g, time_ns=t, rows=rows)


def _check_units(units: str) -> str:
    if units not in UNITS:
        raise MetricsError(f"units must be one of {UNITS}, got {units!r}")
    return units


def _thresholds_mgdl(units: str) -> dict[str, float]:
    """Cut-offs in mg/dL; mmol/L ones are scaled exactly as readings are on input."""
    if _check_units(units) == "mg/dL":
        return dict(THRESHOLDS_MGDL)
    return {k: v * MGDL_PER_MMOLL for k, v in THRESHOLDS_MMOLL.items()}


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (no warnings)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


# --------------------------------------------------------------------------- local time
def _local_wall_ns(time_ns: np.ndarray, tz: str | None) -> np.ndarray:
    """UTC ns -> local wall-clock ns (as if the local time were UTC)."""
    if tz is None or tz == "UTC" or len(time_ns) == 0:
        return time_ns
    idx = pd.DatetimeIndex(time_ns.view("datetime64[ns]")).tz_localize("UTC")
    try:
        local = idx.tz_convert(tz)
    except Exception as exc:
        raise MetricsError(f"unknown time zone {tz!r}") from exc
    return local.tz_localize(None).as_unit("ns").asi8


def _local_wall_float(time_ns: np.ndarray, tz: str | None) -> np.ndarray:
    """Like :func:`_local_wall_ns` for float ns that may be NaN."""
    out = np.full(len(time_ns), np.nan)
    ok = np.isfinite(time_ns)
    if ok.any():
        out[ok] = _local_wall_ns(np.rint(time_ns[ok]).astype(np.int64), tz).astype(np.float64)
    return out


def _night_mask(wall_ns: np.ndarray, night: tuple[float, float]) -> np.ndarray:
    a, b = night
    tod = (wall_ns % NS_PER_DAY) / NS_PER_MIN
    if a < b:
        return (tod >= a) & (tod < b)
    return (tod >= a) | (tod < b)


def _night_cumulative(minutes: np.ndarray, night: tuple[float, float]) -> np.ndarray:
    """Night minutes between the epoch and wall-clock time ``minutes`` (float, NaN allowed)."""

    def one(lo: float, hi: float) -> np.ndarray:
        length = hi - lo
        return np.floor(minutes / 1440.0) * length + np.clip(
            np.mod(minutes, 1440.0) - lo, 0.0, length
        )

    a, b = night
    if a < b:
        return one(a, b)
    return one(a, 1440.0) + one(0.0, b)


# --------------------------------------------------------------------------- period handling
def _bound_ns(value: object, ids: pd.Index, name: str) -> np.ndarray | None:
    """Period bound -> per-participant int64 UTC ns (None for an open bound)."""
    if value is None:
        return None
    if isinstance(value, Mapping) or isinstance(value, pd.Series):
        s = pd.Series(value) if not isinstance(value, pd.Series) else value
        s = s.copy()
        s.index = s.index.astype(str)
        missing = [i for i in ids.astype(str) if i not in s.index]
        if missing:
            raise MetricsError(
                f"period {name} has no value for participant(s) {missing[:5]}"
                + (" ..." if len(missing) > 5 else "")
            )
        ts = pd.to_datetime(s.loc[list(ids.astype(str))], errors="raise")
        if ts.isna().any():
            raise MetricsError(f"period {name} is missing for some participants")
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize("UTC")
        return (
            ts.dt.tz_convert("UTC")
            .dt.tz_localize(None)
            .to_numpy(dtype="datetime64[ns]")
            .view(np.int64)
            .copy()
        )
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise MetricsError(f"period {name} is not a timestamp: {value!r}") from exc
    if ts is pd.NaT:
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return np.full(len(ids), ts.as_unit("ns").value, dtype=np.int64)


@dataclass(frozen=True)
class _Selection:
    readings: _Readings  # readings in the window and the part of day
    window: _Readings  # readings in the window (all parts of day)
    cover_start: np.ndarray  # float ns per participant (NaN: unknown)
    cover_end: np.ndarray
    interval_min: np.ndarray  # device interval per participant, minutes


def _interval_minutes(r: _Readings, interval_min: float | None) -> np.ndarray:
    """Device interval per participant: given, or the median gap rounded to whole minutes.

    A participant with a single distinct timestamp gets the median over the other
    participants (NaN if nobody has two).
    """
    if interval_min is not None:
        if not np.isfinite(interval_min) or interval_min <= 0:
            raise MetricsError(f"interval_min must be positive, got {interval_min!r}")
        return np.full(r.k, float(interval_min))
    out = np.full(r.k, np.nan)
    if len(r.codes) < 2:
        return out
    same = r.codes[1:] == r.codes[:-1]
    d = np.diff(r.time_ns)
    keep = same & (d > 0)  # duplicates (d == 0) say nothing about the interval
    if keep.any():
        med = pd.Series(d[keep] / NS_PER_MIN).groupby(r.codes[1:][keep]).median()
        out[med.index.to_numpy()] = np.maximum(np.rint(med.to_numpy()), 1.0)
    known = out[np.isfinite(out)]
    if len(known) and len(known) < len(out):  # one reading only: use the cohort's interval
        out[~np.isfinite(out)] = float(np.median(known))
    return out


def _select(full: _Readings, period: Period, tz: str, interval_min: float | None) -> _Selection:
    start = _bound_ns(period.start, full.ids, "start")
    end = _bound_ns(period.end, full.ids, "end")
    if start is not None and end is not None and (end < start).any():
        raise MetricsError("period end is before period start")
    interval = _interval_minutes(full, interval_min)
    mask = np.ones(len(full.codes), dtype=bool)
    if start is not None:
        mask &= full.time_ns >= start[full.codes]
    if end is not None:
        mask &= full.time_ns < end[full.codes]
    window = full.select(mask) if not mask.all() else full
    # Coverage: the window bounds, or first reading ... last reading + one interval.
    first = np.full(full.k, np.nan)
    last = np.full(full.k, np.nan)
    st = window.group_starts()
    if len(st):
        en = np.r_[st[1:], len(window.codes)] - 1
        first[window.codes[st]] = window.time_ns[st]
        last[window.codes[en]] = window.time_ns[en]
    cover_start = start.astype(np.float64) if start is not None else first
    cover_end = end.astype(np.float64) if end is not None else last + interval * NS_PER_MIN
    readings = window
    if period.part != "all":
        night = _night_mask(_local_wall_ns(window.time_ns, tz), _night_minutes(period.night))
        readings = window.select(night if period.part == "night" else ~night)
    return _Selection(readings, window, cover_start, cover_end, interval)


def select_period(table: GlucoseTable, period: object = None, *, tz: str = "UTC") -> GlucoseTable:
    """Rows of ``table`` that fall in ``period`` (readings with missing values dropped).

    Parameters
    ----------
    table
        Glucose table.
    period
        ``None``, ``(start, end)``, ``"all"``/``"day"``/``"night"`` or a :class:`Period`.
    tz
        Local time zone for the day/night split.

    Returns
    -------
    GlucoseTable
        A table with the selected rows (same columns, same ``rejected``). It may be empty.
    """
    full = _prepare(table)
    sel = _select(full, Period.coerce(period), tz, None)
    rows = np.sort(sel.readings.rows)
    data = table.data.iloc[rows].reset_index(drop=True)
    return GlucoseTable(data=data, rejected=table.rejected)


# --------------------------------------------------------------------------- metric kernels
def _stats(r: _Readings, units: str) -> dict[str, np.ndarray]:
    n = r.count()
    mean = _divide(r.gsum(r.glucose), n)
    dev = r.glucose - mean[r.codes]
    var = _divide(r.gsum(dev * dev), np.where(n > 1, n - 1, 0))
    sd = np.sqrt(var)
    cv = 100.0 * _divide(sd, mean)
    scale = 1.0 if units == "mg/dL" else 1.0 / MGDL_PER_MMOLL
    gmi_pct = np.asarray(_gmi_from_mean(mean), dtype=np.float64)
    j = 0.001 * (mean + sd) ** 2
    return {
        "n_readings": n.astype(np.int64),
        "mean": mean * scale,
        "sd": sd * scale,
        "cv": cv,
        "gmi": gmi_pct,
        "j_index": j,
    }


def _range_counts(r: _Readings, units: str) -> np.ndarray:
    """Counts per participant in six bands: <vlow, [vlow,low), [low,tight], (tight,high],
    (high,vhigh], >vhigh. Shape (k, 6)."""
    th = _thresholds_mgdl(units)
    g = r.glucose
    band = (
        (g >= th["very_low"]).astype(np.int64)
        + (g >= th["low"])
        + (g > th["tight_high"])
        + (g > th["high"])
        + (g > th["very_high"])
    )
    return np.bincount(r.codes * 6 + band, minlength=6 * r.k).reshape(r.k, 6)


def _ranges(counts: np.ndarray) -> dict[str, np.ndarray]:
    n = counts.sum(axis=1)

    def pct(x: np.ndarray) -> np.ndarray:
        return 100.0 * _divide(x, n)

    c = counts
    return {
        "tbr_54": pct(c[:, 0]),
        "tbr_70": pct(c[:, 0] + c[:, 1]),
        "tbr_54_69": pct(c[:, 1]),
        "tir_70_180": pct(c[:, 2] + c[:, 3]),
        "tir_70_140": pct(c[:, 2]),
        "tar_180": pct(c[:, 4] + c[:, 5]),
        "tar_181_250": pct(c[:, 4]),
        "tar_250": pct(c[:, 5]),
    }


def _gri(rng: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    hypo = rng["tbr_54"] + 0.8 * rng["tbr_54_69"]
    hyper = rng["tar_250"] + 0.5 * rng["tar_181_250"]
    return {
        "gri": np.minimum(3.0 * hypo + 1.6 * hyper, 100.0),
        "gri_hypo": hypo,
        "gri_hyper": hyper,
    }


def _risk(r: _Readings) -> dict[str, np.ndarray]:
    n = r.count()
    f = np.asarray(kovatchev_f(r.glucose))
    risk = 10.0 * f * f
    low = np.where(f < 0, risk, 0.0)
    high = risk - low
    return {"lbgi": _divide(r.gsum(low), n), "hbgi": _divide(r.gsum(high), n)}


def _adrr(r: _Readings, tz: str) -> np.ndarray:
    out = np.full(r.k, np.nan)
    if len(r.codes) == 0:
        return out
    c = r.codes
    day = np.floor_divide(_local_wall_ns(r.time_ns, tz), NS_PER_DAY)
    g = r.glucose
    same = c[1:] == c[:-1]
    if (same & (day[1:] < day[:-1])).any():  # a DST shift crossed midnight backwards
        order = np.lexsort((day, c))
        c, day, g = c[order], day[order], g[order]
    starts = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (day[1:] != day[:-1])])
    gmin = np.minimum.reduceat(g, starts)
    gmax = np.maximum.reduceat(g, starts)
    fmin = np.asarray(kovatchev_f(gmin))
    fmax = np.asarray(kovatchev_f(gmax))
    daily = np.where(fmin < 0, 10.0 * fmin * fmin, 0.0) + np.where(fmax > 0, 10.0 * fmax**2, 0.0)
    dc = c[starts]
    return _divide(np.bincount(dc, weights=daily, minlength=r.k), np.bincount(dc, minlength=r.k))


def _sufficiency(sel: _Selection, period: Period, tz: str) -> dict[str, np.ndarray]:
    r = sel.readings
    n = r.count()
    c, t = r.codes, r.time_ns
    if len(c) > 1:
        dup = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
        n_unique = n - np.bincount(c[1:][dup], minlength=r.k)
    else:
        n_unique = n
    span_min = (sel.cover_end - sel.cover_start) / NS_PER_MIN
    if period.part == "all":
        covered = span_min
    else:
        night = _night_minutes(period.night)
        a = _local_wall_float(sel.cover_start, tz) / NS_PER_MIN
        b = _local_wall_float(sel.cover_end, tz) / NS_PER_MIN
        night_min = _night_cumulative(b, night) - _night_cumulative(a, night)
        covered = night_min if period.part == "night" else span_min - night_min
    with np.errstate(invalid="ignore"):
        expected = np.rint(_divide(covered, sel.interval_min))
    used = np.minimum(n_unique, expected)
    pct = 100.0 * _divide(used, expected)
    wear_days = used * sel.interval_min / 1440.0
    wear_days = np.where(n > 0, wear_days, np.where(np.isnan(expected), np.nan, 0.0))
    first = np.full(r.k, np.nan)
    last = np.full(r.k, np.nan)
    st = r.group_starts()
    if len(st):
        en = np.r_[st[1:], len(c)] - 1
        first[c[st]] = t[st]
        last[c[en]] = t[en]
    return {
        "interval_min": sel.interval_min,
        "expected_readings": expected,
        "percent_expected_readings": pct,
        "days_of_wear": wear_days,
        "days_span": (last - first) / NS_PER_DAY,
    }


def _frame(ids: pd.Index, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(cols, index=ids)


# --------------------------------------------------------------------------- public API
def consensus_metrics(
    table: GlucoseTable,
    *,
    units: str = "mg/dL",
    period: object = None,
    tz: str = "UTC",
    interval_min: float | None = None,
) -> pd.DataFrame:
    """All count-based consensus metrics and data sufficiency, one row per participant.

    Parameters
    ----------
    table
        Glucose table (any number of participants).
    units
        ``"mg/dL"`` or ``"mmol/L"``: units of ``mean``/``sd`` and which consensus cut-offs are
        applied (see the module docstring).
    period
        ``None`` (all data), ``(start, end)``, ``"day"``/``"night"`` or a :class:`Period`.
    tz
        Local time zone for day boundaries (ADRR) and the day/night split.
    interval_min
        Device sampling interval in minutes; default: each participant's median gap,
        rounded to whole minutes.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``id`` with columns ``n_readings, mean, sd, cv, gmi``, the
        :data:`RANGE_COLUMNS`, ``lbgi, hbgi, gri, gri_hypo, gri_hyper, j_index, adrr`` and the
        :data:`SUFFICIENCY_COLUMNS`. Participants without readings in the period have
        ``n_readings == 0`` and NaN elsewhere (``days_of_wear`` is 0 if the period is known).

    Raises
    ------
    MetricsError
        Empty table, non-positive glucose, unknown units, or an invalid period.
    """
    units = _check_units(units)
    p = Period.coerce(period)
    full = _prepare(table)
    sel = _select(full, p, tz, interval_min)
    r = sel.readings
    stats = _stats(r, units)
    rng = _ranges(_range_counts(r, units))
    cols: dict[str, np.ndarray] = {}
    cols.update({k: stats[k] for k in ("n_readings", "mean", "sd", "cv", "gmi")})
    cols.update(rng)
    cols.update(_risk(r))
    cols.update(_gri(rng))
    cols["j_index"] = stats["j_index"]
    cols["adrr"] = _adrr(r, tz)
    cols.update(_sufficiency(sel, p, tz))
    return _frame(full.ids, cols)


def period_metrics(
    table: GlucoseTable,
    start: object,
    end: object,
    *,
    units: str = "mg/dL",
    tz: str = "UTC",
    interval_min: float | None = None,
) -> pd.DataFrame:
    """Consensus metrics within the window ``start <= time < end``.

    ``start``/``end`` may be one timestamp for all participants or a per-participant
    Series/mapping (id -> timestamp), e.g. "the 14 days before each participant's visit".
    Data sufficiency is relative to the whole window, so a participant with one week of data
    in a 14-day window gets about 50 %. See :func:`consensus_metrics` for the columns.

    Parameters
    ----------
    table
        Glucose table.
    start, end
        Window bounds (naive timestamps mean UTC).
    units, tz, interval_min
        As in :func:`consensus_metrics`.

    Returns
    -------
    pandas.DataFrame
        One row per participant of ``table`` indexed by ``id``; NaN rows (``n_readings`` 0)
        for participants without readings in the window.
    """
    return consensus_metrics(
        table, units=units, period=Period(start=start, end=end), tz=tz, interval_min=interval_min
    )


def day_night_metrics(
    table: GlucoseTable,
    *,
    night: tuple[str | _dt.time, str | _dt.time] = ("00:00", "06:00"),
    tz: str = "UTC",
    units: str = "mg/dL",
    start: object = None,
    end: object = None,
    interval_min: float | None = None,
) -> pd.DataFrame:
    """Consensus metrics for night-time and day-time readings separately.

    Night is ``night[0] <= local clock time < night[1]`` in ``tz`` (default 00:00-06:00, the
    usual overnight window of CGM reports), day is the rest. Expected readings for
    sufficiency count only the night (or day) minutes of the covered span.

    Parameters
    ----------
    table
        Glucose table.
    night
        Night window as local clock times; ``from > to`` wraps midnight.
    tz
        Participants' local time zone (IANA name), e.g. ``"Europe/London"``.
    units, interval_min
        As in :func:`consensus_metrics`.
    start, end
        Optional window, as in :func:`period_metrics`.

    Returns
    -------
    pandas.DataFrame
        Index ``(id, part)`` with ``part`` in ``("day", "night")``; columns as
        :func:`consensus_metrics`.
    """
    parts = {
        part: consensus_metrics(
            table,
            units=units,
            period=Period(start=start, end=end, part=part, night=night),
            tz=tz,
            interval_min=interval_min,
        )
        for part in ("day", "night")
    }
    out = pd.concat(parts, names=["part", "id"])
    return out.swaplevel("part", "id").sort_index(level="id", sort_remaining=False, kind="stable")


def glucose_stats(table: GlucoseTable, *, units: str = "mg/dL") -> pd.DataFrame:
    """Number of readings, mean, sample SD and CV per participant.

    Sources: Danne T et al. *Diabetes Care* 2017;40:1631 (SD with n - 1 as iglu ``sd_glu``;
    CV = 100 SD / mean).

    Parameters
    ----------
    table
        Glucose table.
    units
        Units of ``mean`` and ``sd`` (CV is unit-free).

    Returns
    -------
    pandas.DataFrame
        Columns ``n_readings, mean, sd, cv`` indexed by ``id``. SD and CV are NaN with one
        reading; all are NaN (``n_readings`` 0) without readings.
    """
    units = _check_units(units)
    r = _prepare(table)
    s = _stats(r, units)
    return _frame(r.ids, {k: s[k] for k in ("n_readings", "mean", "sd", "cv")})


def mean_glucose(table: GlucoseTable, *, units: str = "mg/dL") -> pd.Series:
    """Mean glucose per participant in ``units`` (iglu ``mean_glu``).

    Parameters
    ----------
    table
        Glucose table.
    units
        Output units.

    Returns
    -------
    pandas.Series
        Named ``mean``, indexed by ``id``.
    """
    return glucose_stats(table, units=units)["mean"]


def sd_glucose(table: GlucoseTable, *, units: str = "mg/dL") -> pd.Series:
    """Sample SD (n - 1) of glucose per participant in ``units`` (iglu ``sd_glu``).

    Parameters
    ----------
    table
        Glucose table.
    units
        Output units.

    Returns
    -------
    pandas.Series
        Named ``sd``, indexed by ``id``.
    """
    return glucose_stats(table, units=units)["sd"]


def cv_glucose(table: GlucoseTable) -> pd.Series:
    """Coefficient of variation 100 SD / mean (%) per participant; target <= 36 % (Battelino 2019).

    Parameters
    ----------
    table
        Glucose table.

    Returns
    -------
    pandas.Series
        Named ``cv``, indexed by ``id``.
    """
    return glucose_stats(table)["cv"]


def glucose_management_indicator(table: GlucoseTable) -> pd.Series:
    """GMI (%) = 3.31 + 0.02392 x mean glucose mg/dL (Bergenstal et al. *Diabetes Care* 2018).

    Parameters
    ----------
    table
        Glucose table.

    Returns
    -------
    pandas.Series
        GMI in NGSP %, named ``gmi``, indexed by ``id``.
    """
    r = _prepare(table)
    return _frame(r.ids, {"gmi": _stats(r, "mg/dL")["gmi"]})["gmi"]


def time_in_ranges(table: GlucoseTable, *, units: str = "mg/dL") -> pd.DataFrame:
    """Percent of readings in the consensus glucose ranges (Battelino et al. 2019).

    Bands: ``tbr_54`` < 54; ``tbr_70`` < 70; ``tbr_54_69`` 54 <= g < 70; ``tir_70_180``
    70 <= g <= 180; ``tir_70_140`` 70 <= g <= 140; ``tar_180`` > 180; ``tar_181_250``
    180 < g <= 250; ``tar_250`` > 250 (mg/dL). The bands < 54, 54-69, 70-180, 181-250, > 250
    add up to 100 %.

    Parameters
    ----------
    table
        Glucose table.
    units
        ``"mmol/L"`` uses the consensus mmol/L cut-offs 3.0/3.9/7.8/10.0/13.9 instead.

    Returns
    -------
    pandas.DataFrame
        :data:`RANGE_COLUMNS` in percent, indexed by ``id``.
    """
    units = _check_units(units)
    r = _prepare(table)
    return _frame(r.ids, _ranges(_range_counts(r, units)))


def lbgi(table: GlucoseTable) -> pd.Series:
    """Low blood glucose index (Kovatchev et al. 1997, 2006); see :func:`bg_risk`.

    Parameters
    ----------
    table
        Glucose table.

    Returns
    -------
    pandas.Series
        Named ``lbgi``, indexed by ``id``.
    """
    r = _prepare(table)
    return _frame(r.ids, _risk(r))["lbgi"]


def hbgi(table: GlucoseTable) -> pd.Series:
    """High blood glucose index (Kovatchev et al. 1997, 2006); see :func:`bg_risk`.

    Parameters
    ----------
    table
        Glucose table.

    Returns
    -------
    pandas.Series
        Named ``hbgi``, indexed by ``id``.
    """
    r = _prepare(table)
    return _frame(r.ids, _risk(r))["hbgi"]


def gri(table: GlucoseTable, *, units: str = "mg/dL") -> pd.DataFrame:
    """Glycemia Risk Index with its hypo- and hyperglycaemia components (Klonoff et al. 2023).

    ``GRI = min(3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High, 100)`` with VLow = % < 54,
    Low = % 54-69, VHigh = % > 250, High = % 181-250; ``gri_hypo = VLow + 0.8 Low`` and
    ``gri_hyper = VHigh + 0.5 High`` (so GRI = 3 hypo + 1.6 hyper before the cap). iglu
    returns only ``gri`` (same formula since iglu 4.2.0).

    Parameters
    ----------
    table
        Glucose table.
    units
        Cut-off set, as in :func:`time_in_ranges`.

    Returns
    -------
    pandas.DataFrame
        Columns ``gri, gri_hypo, gri_hyper`` indexed by ``id``.
    """
    units = _check_units(units)
    r = _prepare(table)
    return _frame(r.ids, _gri(_ranges(_range_counts(r, units))))


def j_index(table: GlucoseTable) -> pd.Series:
    """J-index ``0.001 (mean + SD)^2`` with glucose in mg/dL (Wojcicki 1995; iglu ``j_index``).

    Parameters
    ----------
    table
        Glucose table.

    Returns
    -------
    pandas.Series
        Named ``j_index``, indexed by ``id`` (NaN with fewer than two readings).
    """
    r = _prepare(table)
    return _frame(r.ids, {"j_index": _stats(r, "mg/dL")["j_index"]})["j_index"]


def adrr(table: GlucoseTable, *, tz: str = "UTC") -> pd.Series:
    """Average daily risk range (Kovatchev et al. *Diabetes Care* 2006;29:2433).

    For each local calendar day with readings, ``LR`` is the largest low-glucose risk and
    ``HR`` the largest high-glucose risk of that day (0 when the day has no reading on that
    side of 112.5 mg/dL); ADRR is the mean of ``LR + HR`` over days. Every day with at least
    one reading counts, as in iglu (Kovatchev's SMBG recommendation of >= 3 readings a day is
    not enforced). iglu takes the calendar dates of the naive times it is given; pass the
    participants' ``tz`` here to get their local days.

    Parameters
    ----------
    table
        Glucose table.
    tz
        Time zone whose midnights separate days.

    Returns
    -------
    pandas.Series
        Named ``adrr``, indexed by ``id``.
    """
    r = _prepare(table)
    return _frame(r.ids, {"adrr": _adrr(r, tz)})["adrr"]


def data_sufficiency(
    table: GlucoseTable,
    *,
    period: object = None,
    tz: str = "UTC",
    interval_min: float | None = None,
) -> pd.DataFrame:
    """Percent of expected readings and days of wear (Battelino et al. 2019: >= 70 %, >= 14 d).

    The device interval is ``interval_min`` or each participant's median gap between distinct
    timestamps, rounded to whole minutes (as iglu's ``active_percent``). The expected number
    of readings is the covered time divided by the interval, rounded: without a window, the
    time from the first reading to one interval after the last (so regular data without gaps
    gives 100 %); with a window, its full length (per participant if the bounds are); for
    ``"day"``/``"night"``, only those clock minutes of it. Distinct timestamps are counted
    (duplicates once) and capped at the expected number, so the percentage is at most 100.

    Parameters
    ----------
    table
        Glucose table.
    period, tz, interval_min
        As in :func:`consensus_metrics`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``id``: ``interval_min``; ``expected_readings``;
        ``percent_expected_readings``; ``days_of_wear`` = readings used x interval / 1440
        (days of sensor data); ``days_span`` = first to last reading in days (iglu ``ndays``).
    """
    p = Period.coerce(period)
    full = _prepare(table)
    sel = _select(full, p, tz, interval_min)
    cols = {"n_readings": sel.readings.count()}
    cols.update(_sufficiency(sel, p, tz))
    return _frame(full.ids, cols)
