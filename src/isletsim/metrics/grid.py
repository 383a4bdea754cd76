"""Regular device grid: each participant's readings interpolated onto equally spaced times.

Grid-based CGM metrics (MAGE, CONGA, MODD, episodes) are defined on a regular time grid.
This module builds that grid for all participants at once, following the published
description of iglu's ``CGMS2DayByDay`` (Broll et al., *PLoS ONE* 2021;16:e0248560,
doi:10.1371/journal.pone.0248560, and the iglu documentation):

1. Readings with missing glucose are dropped. Of several readings with the same timestamp
   only the last one (in table order) is kept.
2. Grid interval ``dt`` per participant, in whole minutes: the median of the differences
   between consecutive readings, rounded (half to even), unless given. If 1440 is not a
   multiple of ``dt`` it is adjusted so that a day holds a whole number of grid points:
   above 20 min it becomes 20; otherwise it is rounded to the nearest multiple of 5
   (remainder 3 or 4 rounds up). ``dt`` larger than ``inter_gap`` gives no grid (iglu
   raises an error; here the participant's metrics become NaN).
3. Grid points lie on ``local midnight + k * dt`` of the participant's first day (``tz``
   chooses the clock; only the phase matters because every metric uses lags in whole
   grid steps). The grid covers the first to the last reading; points outside that span
   are not stored (iglu stores them as NaN).
4. Values are linear interpolations between the two neighbouring readings. If those two
   readings are more than ``inter_gap`` minutes apart (default 45), every grid point
   strictly between them is NaN: the gap is not bridged. A grid point that coincides with
   a reading takes that reading's value.

Differences from iglu, and why:

* iglu_python 0.4.3 infers ``dt`` as the truncated *mode* of the differences; iglu (R)
  uses the rounded *median*. The median is kept here: readings every 299 s give 4 min
  with the truncated mode and 5 min with the median, and 5 is the device interval.
* iglu's grid starts at midnight + ``dt`` (so a reading at exactly midnight of the first
  day is not on the grid) and runs to the end of an extra day; here the grid starts at
  the first grid point at or after the first reading. Results differ only when the first
  reading falls exactly on midnight.
* iglu uses the time zone of the R/Python process for the day boundary; here it is
  explicit (``tz``, default UTC) and time is absolute, so daylight-saving changes neither
  duplicate nor drop grid points.

All participants share one flat ``values`` array; participant ``i`` owns
``values[offsets[i]:offsets[i + 1]]``. Kernels that compute metrics loop over that layout
in numba without a Python loop per participant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from isletsim.glucose_table import GlucoseTable

__all__ = ["DEFAULT_INTER_GAP", "Grid", "as_grid", "regular_grid"]

#: Longest gap (minutes) bridged by linear interpolation, as in iglu.
DEFAULT_INTER_GAP: float = 45.0

_NS_PER_MIN = 60_000_000_000


@dataclass(frozen=True)
class Grid:
    """Glucose of many participants on regular per-participant time grids.

    Attributes
    ----------
    ids
        Participant ids, in table order.
    dt
        Grid interval of each participant in minutes (int64); 0 where no grid could be
        built (fewer than two usable readings, or an interval above ``inter_gap``).
    start_ns
        Time of each participant's first grid point, ns since the Unix epoch, UTC.
    offsets
        int64 array of length ``len(ids) + 1``; participant ``i`` owns
        ``values[offsets[i]:offsets[i + 1]]``.
    values
        Glucose in mg/dL at the grid points; NaN where a gap was not bridged.
    n_readings
        Number of usable readings per participant (after dropping missing values and
        duplicate timestamps).
    inter_gap
        Longest bridged gap in minutes.
    """

    ids: pd.Index
    dt: np.ndarray
    start_ns: np.ndarray
    offsets: np.ndarray
    values: np.ndarray
    n_readings: np.ndarray
    inter_gap: float

    def __len__(self) -> int:
        return len(self.ids)

    def participant(self, i: int) -> pd.Series:
        """Grid of participant number ``i`` as a Series indexed by UTC time."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        step = int(self.dt[i]) * _NS_PER_MIN
        t = int(self.start_ns[i]) + step * np.arange(b - a, dtype=np.int64)
        index = pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC")
        return pd.Series(self.values[a:b], index=index, name=str(self.ids[i]))

    def to_frame(self) -> pd.DataFrame:
        """All grid points as a tidy frame with columns ``id, time, glucose`` (NaN kept)."""
        counts = np.diff(self.offsets)
        owner = np.repeat(np.arange(len(self.ids)), counts)
        pos = np.arange(len(self.values), dtype=np.int64) - self.offsets[:-1][owner]
        t = self.start_ns[owner] + pos * self.dt[owner] * _NS_PER_MIN
        return pd.DataFrame(
            {
                "id": pd.Series(np.asarray(self.ids)[owner], dtype="string"),
                "time": pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC"),
                "glucose": self.values,
            }
        )


# --------------------------------------------------------------------------- kernels
@numba.njit(cache=True)
def _keep_mask(t: np.ndarray, g: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Usable rows: finite glucose, and the last of several rows with one timestamp."""
    keep = np.zeros(len(t), dtype=np.bool_)
    for p in range(len(offsets) - 1):
        have_next = False
        next_t = np.int64(0)
        for r in range(offsets[p + 1] - 1, offsets[p] - 1, -1):
            if not np.isfinite(g[r]):
                continue
            if have_next and t[r] == next_t:
                continue
            keep[r] = True
            next_t = t[r]
            have_next = True
    return keep


@numba.njit(cache=True)
def _adjust_dt(dt: np.int64) -> np.int64:
    """Make 1440 a multiple of ``dt`` (iglu's rule: > 20 -> 20, else nearest multiple of 5)."""
    if dt < 1:
        return np.int64(1)
    if 1440 % dt == 0:
        return dt
    if dt > 20:
        return np.int64(20)
    rem = dt % 5
    if rem > 2:
        return dt + 5 - rem
    return dt - rem


@numba.njit(cache=True)
def _median_inplace(a: np.ndarray) -> float:
    """Median of ``a`` by Hoare selection (reorders ``a``); cheaper to compile than np.median."""
    n = len(a)
    k = n // 2
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    upper = a[k]
    if n % 2 == 1:
        return upper
    lower = a[0]
    for q in range(1, k):  # everything left of k is <= a[k]
        if a[q] > lower:
            lower = a[q]
    return (lower + upper) / 2.0


@numba.njit(cache=True)
def _round_half_even(x: float) -> np.int64:
    r = np.floor(x + 0.5)
    if r - x == 0.5 and r % 2 != 0:  # exact tie: to even, like R's round() and np.round
        r -= 1.0
    return np.int64(r)


@numba.njit(cache=True)
def _infer_dt(t: np.ndarray, offsets: np.ndarray, inter_gap_min: float) -> np.ndarray:
    """Rounded median of consecutive differences (minutes), adjusted; 0 if no grid."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.int64)
    for p in range(n):
        a, b = offsets[p], offsets[p + 1]
        if b - a < 2:
            continue
        d = np.empty(b - a - 1, dtype=np.float64)
        for r in range(a, b - 1):
            d[r - a] = (t[r + 1] - t[r]) / 60e9
        dt = _adjust_dt(_round_half_even(_median_inplace(d)))
        if dt > inter_gap_min:
            continue
        out[p] = dt
    return out


@numba.njit(cache=True)
def _grid_extent(
    t: np.ndarray, offsets: np.ndarray, dt: np.ndarray, anchor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """First grid time (ns) and number of grid points of each participant."""
    n = len(offsets) - 1
    first = np.zeros(n, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    for p in range(n):
        a, b = offsets[p], offsets[p + 1]
        if dt[p] <= 0 or b <= a:
            continue
        step = dt[p] * np.int64(60_000_000_000)
        lead = t[a] - anchor[p]  # >= 0: anchor is midnight at or before the first reading
        k = (lead + step - 1) // step
        f = anchor[p] + k * step
        first[p] = f
        if t[b - 1] >= f:
            count[p] = (t[b - 1] - f) // step + 1
    return first, count


@numba.njit(cache=True)
def _fill_grid(
    t: np.ndarray,
    g: np.ndarray,
    offsets: np.ndarray,
    dt: np.ndarray,
    first: np.ndarray,
    grid_offsets: np.ndarray,
    inter_gap_ns: np.int64,
    out: np.ndarray,
) -> None:
    """Linear interpolation onto the grid; NaN strictly inside gaps > ``inter_gap``."""
    for p in range(len(offsets) - 1):
        a, b = offsets[p], offsets[p + 1]
        ga, gb = grid_offsets[p], grid_offsets[p + 1]
        if gb <= ga:
            continue
        step = dt[p] * np.int64(60_000_000_000)
        j = a  # index of the last reading at or before the grid time
        for m in range(gb - ga):
            x = first[p] + m * step
            while j + 1 < b and t[j + 1] <= x:
                j += 1
            if t[j] == x:
                out[ga + m] = g[j]
            elif j + 1 < b and t[j + 1] - t[j] <= inter_gap_ns:
                w = (x - t[j]) / (t[j + 1] - t[j])
                out[ga + m] = g[j] + (g[j + 1] - g[j]) * w
            else:
                out[ga + m] = np.nan


# --------------------------------------------------------------------------- building
def _columns(table: GlucoseTable) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
    """Participant ids, row offsets, times (ns UTC) and glucose, sorted by id and time.

    A :class:`GlucoseTable` is normally sorted already; that is checked in linear time
    and the table is only re-sorted (stably, ids in order of first appearance) if not.
    """
    data = table.data
    ids = data["id"]
    time = data["time"]
    if isinstance(time.dtype, pd.DatetimeTZDtype):
        time = time.dt.tz_convert("UTC").dt.tz_localize(None)
    t = np.asarray(time, dtype="datetime64[ns]").view(np.int64)
    g = np.asarray(data["glucose"], dtype=np.float64)
    n = len(ids)
    if n == 0:
        return pd.Index([], name="id", dtype="string"), np.zeros(1, np.int64), t, g
    if not ids.hasnans:
        arr = ids.array
        change = np.asarray(arr[1:] != arr[:-1], dtype=np.bool_)
        starts = np.concatenate([np.zeros(1, np.int64), np.flatnonzero(change) + 1])
        uniques = pd.Index(ids.iloc[starts].array, name="id")
        offsets = np.append(starts, n).astype(np.int64)
        if uniques.is_unique and _times_sorted(t, offsets):
            return uniques, offsets, t, g
    codes, uniq = pd.factorize(ids, sort=False, use_na_sentinel=False)
    order = np.lexsort((t, codes))
    offsets = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=len(uniq)), out=offsets[1:])
    return pd.Index(uniq, name="id"), offsets, t[order], g[order]


@numba.njit(cache=True)
def _times_sorted(t: np.ndarray, offsets: np.ndarray) -> bool:
    for p in range(len(offsets) - 1):
        for r in range(offsets[p] + 1, offsets[p + 1]):
            if t[r] < t[r - 1]:
                return False
    return True


def _midnight_anchor(first_ns: np.ndarray, tz: str) -> np.ndarray:
    """Local midnight (in ``tz``) before each first reading, as ns UTC."""
    if len(first_ns) == 0:
        return np.zeros(0, dtype=np.int64)
    utc = pd.DatetimeIndex(first_ns.astype("datetime64[ns]")).tz_localize("UTC")
    local = utc.tz_convert(tz).tz_localize(None)
    since_midnight = (local - local.normalize()).asi8
    return first_ns - since_midnight


def regular_grid(
    table: GlucoseTable,
    *,
    dt: int | None = None,
    inter_gap: float = DEFAULT_INTER_GAP,
    tz: str = "UTC",
) -> Grid:
    """Interpolate every participant's readings onto a regular grid.

    Parameters
    ----------
    table
        Glucose readings (mg/dL) of one or more participants.
    dt
        Grid interval in minutes for all participants. ``None`` (default) infers it per
        participant from the rounded median interval between readings (iglu's rule; see
        the module docstring).
    inter_gap
        Longest gap, in minutes, bridged by linear interpolation (iglu default 45). Grid
        points strictly inside a longer gap are NaN.
    tz
        Time zone whose midnight fixes the grid phase (grid times are
        ``midnight + k * dt``). Default UTC.

    Returns
    -------
    Grid
        Flat grid of all participants. A participant with fewer than two usable readings
        (when ``dt`` is inferred) or with ``dt > inter_gap`` gets ``dt = 0`` and no grid
        points, and grid metrics return NaN for them.
    """
    if dt is not None and (int(dt) != dt or dt < 1):
        raise ValueError(f"dt must be a positive whole number of minutes, got {dt!r}")
    if not inter_gap > 0:
        raise ValueError(f"inter_gap must be positive, got {inter_gap!r}")
    ids, offsets, t, g = _columns(table)
    keep = _keep_mask(t, g, offsets)
    if not keep.all():
        csum = np.concatenate([np.zeros(1, np.int64), np.cumsum(keep, dtype=np.int64)])
        offsets = csum[offsets]
        t, g = t[keep], g[keep]
    counts = np.diff(offsets)

    if dt is None:
        dts = _infer_dt(t, offsets, float(inter_gap))
    else:
        fixed = 0 if dt > inter_gap else int(dt)
        dts = np.where(counts > 0, fixed, 0).astype(np.int64)
    first_reading = np.zeros(len(ids), dtype=np.int64)
    has = counts > 0
    first_reading[has] = t[offsets[:-1][has]]
    anchor = _midnight_anchor(first_reading, tz)
    first, n_points = _grid_extent(t, offsets, dts, anchor)
    dts = np.where(n_points > 0, dts, 0)
    grid_offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(n_points, out=grid_offsets[1:])
    values = np.empty(int(grid_offsets[-1]), dtype=np.float64)
    _fill_grid(
        t, g, offsets, dts, first, grid_offsets, np.int64(round(inter_gap * _NS_PER_MIN)), values
    )
    return Grid(
        ids=ids,
        dt=dts,
        start_ns=first,
        offsets=grid_offsets,
        values=values,
        n_readings=counts,
        inter_gap=float(inter_gap),
    )


def as_grid(
    data: GlucoseTable | Grid,
    *,
    dt: int | None = None,
    inter_gap: float = DEFAULT_INTER_GAP,
    tz: str = "UTC",
) -> Grid:
    """``data`` itself if it is a :class:`Grid`, else :func:`regular_grid` of it."""
    if isinstance(data, Grid):
        return data
    if isinstance(data, GlucoseTable):
        return regular_grid(data, dt=dt, inter_gap=inter_gap, tz=tz)
    raise TypeError(f"expected a GlucoseTable or Grid, got {type(data).__name__}")
