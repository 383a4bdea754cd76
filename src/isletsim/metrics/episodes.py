"""Hypo- and hyperglycaemia episodes by the 2023 international consensus.

Definitions (Battelino T et al., *Lancet Diabetes Endocrinol* 2023;11:42-57,
doi:10.1016/S2213-8587(22)00319-9, as implemented for CGM traces by iglu
``episode_calculation``, Broll et al. *PLoS ONE* 2021):

* **Hypoglycaemia level 1**: starts after at least 15 consecutive minutes below
  70 mg/dL; ends after at least 15 consecutive minutes at or above 70 mg/dL.
* **Hypoglycaemia level 2**: the same with 54 mg/dL.
* **Extended hypoglycaemia**: starts after more than 120 consecutive minutes below
  70 mg/dL; ends after at least 15 consecutive minutes at or above 70 mg/dL.
* **Hyperglycaemia level 1 / level 2**: at least 15 consecutive minutes above 180 /
  250 mg/dL; ends after at least 15 consecutive minutes at or below the threshold.
* **Level 1 exclusive** (``lv1_excl``): a level-1 episode during which no level-2
  episode occurs. As in iglu, level 2 is a subset of level 1 (a level-2 episode always
  lies inside a level-1 episode); the consensus wording allows either reading.

How minutes become grid points: readings are put on the participant's regular grid
(:mod:`isletsim.metrics.grid`: linear interpolation, gaps over 45 minutes not bridged)
and each grid point stands for ``dt`` minutes, so "at least 15 minutes" means at least
``ceil(15 / dt)`` consecutive grid points (3 at 5 min) and "more than 120 minutes" means
at least ``floor(120 / dt) + 1`` points (25 at 5 min). An episode begins at the first
point of a qualifying run and lasts until the first point of the first qualifying
recovery run, so recoveries shorter than 15 minutes are part of the episode. Its
duration is its number of grid points times ``dt`` (three 5-minute points below 70 mg/dL
are a 15-minute episode). Episodes never span a gap that was not bridged: each
stretch of consecutive grid values is scanned separately, and an episode still open at
the end of a stretch ends there (``censored``).

Differences from iglu (R and iglu_python 0.4.3):

* Same episodes and counts. ``episode_summary`` reports a mean duration and mean
  glucose of NaN when there is no episode (iglu reports duration 0 and glucose NA): the
  mean of nothing is undefined, and 0 min would read as real zero-length episodes.
* The grid interval is the rounded median interval (iglu R); iglu_python uses the
  truncated mode (see :mod:`isletsim.metrics.grid`).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from isletsim.glucose_table import GlucoseTable
from isletsim.metrics.grid import DEFAULT_INTER_GAP, Grid, as_grid

__all__ = ["EPISODE_COLUMNS", "SUMMARY_COLUMNS", "episode_summary", "episodes"]

_NS_PER_MIN = 60_000_000_000

#: (type, level) of the episode definitions, in output order.
_LEVELS: tuple[tuple[str, str], ...] = (
    ("hypo", "lv1"),
    ("hypo", "lv2"),
    ("hypo", "extended"),
    ("hyper", "lv1"),
    ("hyper", "lv2"),
)
#: Summary rows per participant (iglu's order): the five levels, then level 1 exclusive.
_SUMMARY_LEVELS: tuple[tuple[str, str], ...] = (
    *_LEVELS,
    ("hypo", "lv1_excl"),
    ("hyper", "lv1_excl"),
)

EPISODE_COLUMNS: tuple[str, ...] = (
    "id",
    "type",
    "level",
    "start",
    "end",
    "duration_min",
    "extreme",
    "mean_glucose",
    "lv1_excl",
    "censored",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "id",
    "type",
    "level",
    "total_episodes",
    "avg_ep_per_day",
    "avg_ep_duration",
    "avg_ep_gl",
    "recorded_days",
)


@numba.njit(cache=True, inline="always")
def _beyond(v: float, threshold: float, below: bool) -> bool:
    """Hypo: strictly below the threshold; hyper: strictly above."""
    return v < threshold if below else v > threshold


@numba.njit(cache=True)
def _scan(
    values: np.ndarray,
    offsets: np.ndarray,
    dt: np.ndarray,
    thresholds: np.ndarray,
    below: np.ndarray,
    start_min: np.ndarray,
    extended: np.ndarray,
    end_min: float,
    fill: bool,
    out_p: np.ndarray,
    out_level: np.ndarray,
    out_start: np.ndarray,
    out_end: np.ndarray,
    out_extreme: np.ndarray,
    out_mean: np.ndarray,
    out_censored: np.ndarray,
) -> int:
    """Find all episodes; with ``fill`` write them to the ``out_*`` arrays.

    Returns the number of episodes. Episodes are ordered by participant, level and time;
    start and end are global grid positions, end exclusive.
    """
    n_ep = 0
    for p in range(len(offsets) - 1):
        if dt[p] <= 0:
            continue
        step = float(dt[p])
        need_end = np.int64(np.ceil(end_min / step))
        for lv in range(len(thresholds)):
            if extended[lv]:  # "more than start_min minutes"
                need_start = np.int64(np.floor(start_min[lv] / step)) + 1
            else:  # "at least start_min minutes"
                need_start = np.int64(np.ceil(start_min[lv] / step))
            need_start = max(need_start, 1)
            thr = thresholds[lv]
            s = offsets[p]
            b = offsets[p + 1]
            while s < b:
                if not np.isfinite(values[s]):
                    s += 1
                    continue
                e = s  # stretch of consecutive values [s, e)
                while e < b and np.isfinite(values[e]):
                    e += 1
                open_at = -1
                i = s
                while i <= e:
                    if i < e:
                        state = _beyond(values[i], thr, below[lv])
                        r = i + 1
                        while r < e and _beyond(values[r], thr, below[lv]) == state:
                            r += 1
                        run = r - i
                        if state and open_at < 0 and run >= need_start:
                            open_at = i
                        close = (not state) and open_at >= 0 and run >= need_end
                    else:
                        r = e + 1
                        close = open_at >= 0
                    if close:
                        stop = min(i, e)
                        if fill:
                            ext = values[open_at]
                            tot = 0.0
                            for q in range(open_at, stop):
                                v = values[q]
                                tot += v
                                if _beyond(v, ext, below[lv]):
                                    ext = v
                            out_p[n_ep] = p
                            out_level[n_ep] = lv
                            out_start[n_ep] = open_at
                            out_end[n_ep] = stop
                            out_extreme[n_ep] = ext
                            out_mean[n_ep] = tot / (stop - open_at)
                            out_censored[n_ep] = open_at == s or i == e
                        n_ep += 1
                        open_at = -1
                    i = r
                s = e
    return n_ep


def _find(
    grid: Grid,
    lv1_hypo: float,
    lv2_hypo: float,
    lv1_hyper: float,
    lv2_hyper: float,
    dur_length: float,
    end_length: float,
    extended_length: float,
) -> dict[str, np.ndarray]:
    thresholds = np.array([lv1_hypo, lv2_hypo, lv1_hypo, lv1_hyper, lv2_hyper], dtype=np.float64)
    below = np.array([True, True, True, False, False])
    start_min = np.array([dur_length] * 2 + [extended_length] + [dur_length] * 2, np.float64)
    extended = np.array([False, False, True, False, False])
    args = (grid.values, grid.offsets, grid.dt, thresholds, below, start_min, extended)
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0, dtype=np.float64)
    empty_b = np.zeros(0, dtype=np.bool_)
    n = _scan(
        *args,
        float(end_length),
        False,
        empty_i,
        empty_i,
        empty_i,
        empty_i,
        empty_f,
        empty_f,
        empty_b,
    )
    out = {
        "p": np.empty(n, dtype=np.int64),
        "level": np.empty(n, dtype=np.int64),
        "start": np.empty(n, dtype=np.int64),
        "end": np.empty(n, dtype=np.int64),
        "extreme": np.empty(n, dtype=np.float64),
        "mean": np.empty(n, dtype=np.float64),
        "censored": np.empty(n, dtype=np.bool_),
    }
    _scan(
        *args,
        float(end_length),
        True,
        out["p"],
        out["level"],
        out["start"],
        out["end"],
        out["extreme"],
        out["mean"],
        out["censored"],
    )
    # level 1 exclusive: no level-2 episode starts inside the level-1 episode
    excl = np.zeros(n, dtype=np.bool_)
    for lv1, lv2 in ((0, 1), (3, 4)):
        is1 = out["level"] == lv1
        starts2 = out["start"][out["level"] == lv2]  # sorted: by participant, then time
        lo = np.searchsorted(starts2, out["start"][is1], side="left")
        hi = np.searchsorted(starts2, out["end"][is1], side="left")
        excl[is1] = lo == hi
    out["lv1_excl"] = excl
    return out


def _check(dur_length: float, end_length: float, extended_length: float) -> None:
    for name, v in (
        ("dur_length", dur_length),
        ("end_length", end_length),
        ("extended_length", extended_length),
    ):
        if not v > 0:
            raise ValueError(f"{name} must be positive (minutes), got {v!r}")


def episodes(
    table: GlucoseTable | Grid,
    *,
    lv1_hypo: float = 70,
    lv2_hypo: float = 54,
    lv1_hyper: float = 180,
    lv2_hyper: float = 250,
    dur_length: float = 15,
    end_length: float = 15,
    extended_length: float = 120,
    dt: int | None = None,
    inter_gap: float = DEFAULT_INTER_GAP,
    tz: str = "UTC",
) -> pd.DataFrame:
    """All hypo- and hyperglycaemia episodes, one row per episode (Battelino et al. 2023).

    Parameters
    ----------
    table
        Glucose readings (mg/dL), or a prebuilt :class:`~isletsim.metrics.grid.Grid`.
    lv1_hypo, lv2_hypo, lv1_hyper, lv2_hyper
        Thresholds in mg/dL: hypo means glucose ``<`` threshold, hyper ``>`` threshold.
    dur_length
        Minutes beyond the threshold needed to start an episode (at least).
    end_length
        Minutes back in range needed to end an episode (at least).
    extended_length
        Extended hypoglycaemia needs *more than* this many minutes below ``lv1_hypo``.
    dt, inter_gap, tz
        Grid settings, see :func:`~isletsim.metrics.grid.regular_grid` (ignored when a
        ``Grid`` is given).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EPISODE_COLUMNS`: ``id``; ``type`` (``"hypo"``/``"hyper"``);
        ``level`` (``"lv1"``, ``"lv2"``, ``"extended"``); ``start`` (UTC, first grid
        point of the episode); ``end`` (UTC, first grid point of the qualifying recovery,
        or one interval after the last point when the data stop; the episode occupies
        ``[start, end)``); ``duration_min``; ``extreme`` (nadir for hypo, peak for
        hyper, mg/dL, on the grid); ``mean_glucose``; ``lv1_excl`` (for level-1 rows:
        no level-2 episode inside; ``<NA>`` for other levels); ``censored`` (the episode
        touches the start or end of a stretch of data, so its true length is unknown).
        Sorted by id (table order), type, level and start. Participants without usable
        data have no rows.
    """
    _check(dur_length, end_length, extended_length)
    grid = as_grid(table, dt=dt, inter_gap=inter_gap, tz=tz)
    ep = _find(
        grid, lv1_hypo, lv2_hypo, lv1_hyper, lv2_hyper, dur_length, end_length, extended_length
    )
    p = ep["p"]
    step_ns = grid.dt[p] * _NS_PER_MIN
    base = grid.start_ns[p] - grid.offsets[:-1][p] * step_ns
    start = base + ep["start"] * step_ns
    end = base + ep["end"] * step_ns
    types = np.array([t for t, _ in _LEVELS], dtype=object)[ep["level"]]
    levels = np.array([lv for _, lv in _LEVELS], dtype=object)[ep["level"]]
    is_lv1 = (ep["level"] == 0) | (ep["level"] == 3)
    excl = pd.array(ep["lv1_excl"], dtype="boolean")
    excl[~is_lv1] = pd.NA
    return pd.DataFrame(
        {
            "id": pd.array(np.asarray(grid.ids, dtype=object)[p], dtype="string"),
            "type": pd.array(types, dtype="string"),
            "level": pd.array(levels, dtype="string"),
            "start": pd.DatetimeIndex(start.astype("datetime64[ns]")).tz_localize("UTC"),
            "end": pd.DatetimeIndex(end.astype("datetime64[ns]")).tz_localize("UTC"),
            "duration_min": ((ep["end"] - ep["start"]) * grid.dt[p]).astype(np.float64),
            "extreme": ep["extreme"],
            "mean_glucose": ep["mean"],
            "lv1_excl": excl,
            "censored": ep["censored"],
        }
    )


def episode_summary(
    table: GlucoseTable | Grid,
    *,
    lv1_hypo: float = 70,
    lv2_hypo: float = 54,
    lv1_hyper: float = 180,
    lv2_hyper: float = 250,
    dur_length: float = 15,
    end_length: float = 15,
    extended_length: float = 120,
    dt: int | None = None,
    inter_gap: float = DEFAULT_INTER_GAP,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Episode counts, rates and mean duration per participant (like iglu's summary).

    Parameters are those of :func:`episodes`.

    Returns
    -------
    pandas.DataFrame
        Seven rows per participant, in iglu's order: hypo ``lv1``, ``lv2``,
        ``extended``; hyper ``lv1``, ``lv2``; hypo and hyper ``lv1_excl``. Columns
        :data:`SUMMARY_COLUMNS`: ``total_episodes``; ``avg_ep_per_day`` (episodes per day
        of recorded time, i.e. per ``non-missing grid points * dt / 1440`` days; NaN
        without recorded time); ``avg_ep_duration`` (mean duration, minutes; NaN without
        episodes); ``avg_ep_gl`` (mean over episodes of their mean glucose; NaN without
        episodes); ``recorded_days``.
    """
    _check(dur_length, end_length, extended_length)
    grid = as_grid(table, dt=dt, inter_gap=inter_gap, tz=tz)
    ep = _find(
        grid, lv1_hypo, lv2_hypo, lv1_hyper, lv2_hyper, dur_length, end_length, extended_length
    )
    n_ids, n_rows = len(grid.ids), len(_SUMMARY_LEVELS)
    # summary row of each episode; level-1 exclusive episodes count a second time
    rows = [ep["p"] * n_rows + ep["level"]]
    durs = [(ep["end"] - ep["start"]) * grid.dt[ep["p"]]]
    means = [ep["mean"]]
    for lv, row in ((0, 5), (3, 6)):
        sel = (ep["level"] == lv) & ep["lv1_excl"]
        rows.append(ep["p"][sel] * n_rows + row)
        durs.append(durs[0][sel])
        means.append(ep["mean"][sel])
    key = np.concatenate(rows)
    size = n_ids * n_rows
    count = np.bincount(key, minlength=size)
    dur_sum = np.bincount(key, weights=np.concatenate(durs).astype(np.float64), minlength=size)
    gl_sum = np.bincount(key, weights=np.concatenate(means), minlength=size)

    valid = np.isfinite(grid.values)
    owner = np.repeat(np.arange(n_ids), np.diff(grid.offsets))
    n_valid = np.bincount(owner[valid], minlength=n_ids)
    days = np.repeat(n_valid * grid.dt / 1440.0, n_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_day = np.where(days > 0, count / days, np.nan)
        avg_dur = np.where(count > 0, dur_sum / count, np.nan)
        avg_gl = np.where(count > 0, gl_sum / count, np.nan)
    return pd.DataFrame(
        {
            "id": pd.array(np.repeat(np.asarray(grid.ids, dtype=object), n_rows), dtype="string"),
            "type": pd.array([t for t, _ in _SUMMARY_LEVELS] * n_ids, dtype="string"),
            "level": pd.array([lv for _, lv in _SUMMARY_LEVELS] * n_ids, dtype="string"),
            "total_episodes": count.astype(np.int64),
            "avg_ep_per_day": per_day,
            "avg_ep_duration": avg_dur,
            "avg_ep_gl": avg_gl,
            "recorded_days": days,
        }
    )
