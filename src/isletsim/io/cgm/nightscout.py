"""Nightscout entries JSON (``/api/v1/entries.json``).

Format sources (see ``shared/docs/cgm-formats.md`` section 4):
nightscout/cgm-remote-monitor ``swagger.yaml`` (schema ``Entry``: ``type``, ``date``
in epoch milliseconds, ``dateString``, ``sgv``), ``lib/plugins/errorcodes.js``
(``sgv < 39`` are Dexcom error codes) and ``lib/plugins/direction.js``; Tidepool's
data-model example (a low reading stored as 39 with threshold 40).

Reading rules (``source_row`` is the 0-based index in the JSON array):

* ``type == "sgv"`` entries (or entries without ``type`` that carry ``sgv``) are
  readings. ``mbg`` entries -> ``"not a CGM reading: mbg"``; ``cal`` and any other
  type -> ``"not a glucose reading: <type>"``.
* ``sgv`` is always mg/dL. ``sgv < 39`` is an error code, rejected with
  ``"CGM error code N (NAME)"``. ``sgv == 39`` is Dexcom's LOW floor: stored as
  40 mg/dL with flag ``"low"``. ``sgv == 401`` is taken as the HIGH stand-in (an
  assumption of the format notes): stored as 400 mg/dL with flag ``"high"``. Other
  values are kept as they are (Libre uploaders report up to 500).
* The instant is ``date`` (epoch ms); ``dateString`` is used only when ``date`` is
  missing, and only if it carries an offset or ``Z``. ``tz`` is not needed.
* Duplicates from two uploaders: an ``sgv`` entry with the same value as a kept entry
  less than 30 s earlier (or at the same instant) is rejected as ``"duplicate"``; of
  readings at the same instant, the earlier one in the file is kept. Different values
  at different instants within 30 s are both kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd

from isletsim.glucose_table import GlucoseTable
from isletsim.io.cgm._common import (
    GLUCOSE_MAX_MGDL,
    ISO_8601,
    REASON_BAD_GLUCOSE,
    REASON_BAD_TIME,
    REASON_DUPLICATE,
    REASON_IMPLAUSIBLE_GLUCOSE,
    REASON_IMPLAUSIBLE_TIME,
    REASON_MISSING_GLUCOSE,
    REASON_MISSING_TIME,
    TIME_MAX,
    TIME_MIN,
    Records,
    Rejections,
    Source,
    json_number,
)

NAME = "nightscout"
LOW_SGV, HIGH_SGV = 39, 401
FLOOR_MGDL, CEILING_MGDL = 40.0, 400.0
DUPLICATE_WINDOW_MS = 30_000
#: ``lib/plugins/errorcodes.js``
ERROR_CODES = {
    1: "SENSOR_NOT_ACTIVE",
    2: "MINIMAL_DEVIATION",
    3: "NO_ANTENNA",
    5: "SENSOR_NOT_CALIBRATED",
    6: "COUNTS_DEVIATION",
    9: "ABSOLUTE_DEVIATION",
    10: "POWER_DEVIATION",
    12: "BAD_RF",
}
_MS_MIN = TIME_MIN.value // 10**6
_MS_MAX = TIME_MAX.value // 10**6


def looks_like(records: Sequence[Any]) -> bool:
    """True if the JSON records look like Nightscout entries."""
    for r in records[:200]:
        if isinstance(r, dict) and (
            "sgv" in r or (r.get("type") in ("sgv", "mbg", "cal") and "date" in r)
        ):
            return True
    return False


def _instant_ms(r: dict[str, Any]) -> tuple[float | None, str, str, Any]:
    """(epoch ms or None, problem, field, raw value)."""
    if "date" in r and r["date"] is not None:
        ms = json_number(r["date"], strings=True)
        if ms is None:
            return None, REASON_BAD_TIME, "date", r["date"]
        if not _MS_MIN <= ms < _MS_MAX:
            return None, REASON_IMPLAUSIBLE_TIME, "date", r["date"]
        return ms, "", "", None
    ds = r.get("dateString")
    if ds is None:
        return None, REASON_MISSING_TIME, "date", ""
    try:
        ok = isinstance(ds, str) and ISO_8601.match(ds.strip())
        ts = pd.Timestamp(ds) if ok else None
    except (ValueError, TypeError, OverflowError):
        ts = None
    if ts is None or ts is pd.NaT or ts.tzinfo is None:
        return None, f"{REASON_BAD_TIME} (dateString without offset)", "dateString", ds
    ms = ts.value / 10**6
    if not _MS_MIN <= ms < _MS_MAX:
        return None, REASON_IMPLAUSIBLE_TIME, "dateString", ds
    return ms, "", "", None


def read(src: Source, *, tz: tzinfo, tz_source: str, id: str | None) -> GlucoseTable:
    """Read Nightscout entries JSON.

    Parameters
    ----------
    src : Source
        Decoded file.
    tz : tzinfo
        Not needed (the file stores instants); noted in the report if given.
    tz_source : str
        ``"argument"`` or ``"default"``.
    id : str or None
        Participant id (default: the file name without suffix).

    Returns
    -------
    GlucoseTable
    """
    records = src.json_records()
    rej = Rejections(src.file)
    rec = Records()
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            rej.add(i, "", type(r).__name__, "not an entry object")
            continue
        typ = r.get("type", "sgv" if "sgv" in r else None)
        if typ != "sgv":
            kind = "not a CGM reading" if typ == "mbg" else "not a glucose reading"
            rej.add(i, "type", typ, f"{kind}: {typ}")
            continue
        ms, tprob, tfield, traw = _instant_ms(r)
        raw = r.get("sgv")
        sgv = json_number(raw, strings=True)
        prob, pfield, g, flag = "", "sgv", math.nan, ""
        if raw is None:
            prob = REASON_MISSING_GLUCOSE
        elif sgv is None:
            prob = REASON_BAD_GLUCOSE
        elif sgv < LOW_SGV:
            code = int(sgv) if sgv == int(sgv) else sgv
            name = ERROR_CODES.get(code) if isinstance(code, int) else None
            prob = f"CGM error code {code}" + (f" ({name})" if name else "")
        elif sgv == LOW_SGV:
            g, flag = FLOOR_MGDL, "low"
        elif sgv == HIGH_SGV:
            g, flag = CEILING_MGDL, "high"
        elif sgv > GLUCOSE_MAX_MGDL:
            prob = REASON_IMPLAUSIBLE_GLUCOSE
        else:
            g = sgv
        if not prob and tprob:
            prob, pfield, raw = tprob, tfield, traw
        rec.add(i, math.nan if ms is None else ms, g, flag, raw, prob, pfield)

    # Duplicates from several uploaders: same sgv within 30 s of a kept entry.
    ms_list = rec.times
    last_kept: dict[float, float] = {}
    for k in sorted(range(len(rec.rows)), key=lambda k: (ms_list[k], rec.rows[k])):
        if rec.problems[k]:
            continue
        prev = last_kept.get(rec.glucose[k])
        if prev is not None and ms_list[k] - prev < DUPLICATE_WINDOW_MS:
            rec.problems[k], rec.fields[k] = REASON_DUPLICATE, "date"
            rec.raws[k] = f"{ms_list[k]:.0f}"
        else:
            last_kept[rec.glucose[k]] = ms_list[k]

    idx = pd.RangeIndex(len(rec.rows))
    ms_arr = np.asarray(ms_list, dtype="float64")
    time = pd.Series(
        pd.to_datetime(np.round(ms_arr), unit="ms", utc=True), index=idx
    ).astype("datetime64[ns, UTC]")
    return rec.finish(
        src, NAME, rej, id=id, time=time, problems=rec.problems, tz=tz, tz_source=tz_source,
        units="mg/dL",
    )
