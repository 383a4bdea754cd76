"""Tidepool data-model JSON (``cbg`` continuous glucose records).

Format sources (see ``shared/docs/cgm-formats.md`` section 5): the Tidepool developer
docs (tidepool.redocly.app: ``cbg``, Units, Annotations) and the data-model docs page
quoted by index id 19040050034.

Reading rules (``source_row`` is the 0-based index in the JSON array; a top-level
object with a ``data`` array is accepted too):

* ``type == "cbg"`` records are readings. ``smbg`` -> ``"not a CGM reading: smbg"``;
  every other record (``upload``, ``basal``, ``bolus``, ``food``, ...) ->
  ``"not a glucose reading: <type>"``.
* The instant is ``time`` (RFC 3339, must carry ``Z`` or an offset); ``deviceTime``
  and ``timezoneOffset`` are not needed and ``tz`` is ignored.
* Units are per record (``mg/dL``/``mg/dl`` or ``mmol/L``/``mmol/l``), so a file
  mixing them is not ambiguous and is accepted. Tidepool stores glucose in mmol/L,
  dividing device mg/dL by **18.01559** unrounded; mmol/L values are therefore
  multiplied by :data:`TIDEPOOL_MGDL_PER_MMOLL` (18.01559, not the project's 18.016)
  and **rounded to whole mg/dL**, which recovers the device's mg/dL value exactly
  (the format notes: "to get mg/dL back, multiply and round"). mg/dL records are kept
  as they are.
* Out-of-range readings carry ``annotations: [{"code": "bg/out-of-range", "value":
  "low"|"high", "threshold": 40|400}]``; they are stored at the threshold (always
  mg/dL, even in mmol/L records) with flag ``"low"``/``"high"``; without a threshold,
  40 and 400 mg/dL (Dexcom's range) are used.
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
    GLUCOSE_MIN_MGDL,
    ISO_8601,
    REASON_BAD_GLUCOSE,
    REASON_BAD_TIME,
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
    to_utc_ns,
)

NAME = "tidepool"
#: Tidepool's conversion factor (molar mass 180.1559 g/mol), mg/dL per mmol/L.
TIDEPOOL_MGDL_PER_MMOLL: float = 18.01559
DEFAULT_FLOOR_MGDL, DEFAULT_CEILING_MGDL = 40.0, 400.0
_TYPES = ("cbg", "smbg", "upload", "basal", "bolus", "food", "wizard", "cgmSettings",
          "pumpSettings", "deviceEvent", "physicalActivity")


def looks_like(records: Sequence[Any]) -> bool:
    """True if the JSON records look like Tidepool data-model records."""
    for r in records[:200]:
        if isinstance(r, dict) and r.get("type") in _TYPES and ("time" in r or "units" in r):
            return True
    return False


def _out_of_range(r: dict[str, Any]) -> tuple[str, float] | None:
    ann = r.get("annotations")
    if not isinstance(ann, list):
        return None
    for a in ann:
        if isinstance(a, dict) and a.get("code") == "bg/out-of-range":
            side = a.get("value")
            if side not in ("low", "high"):
                continue
            thr = json_number(a.get("threshold"))
            default = DEFAULT_FLOOR_MGDL if side == "low" else DEFAULT_CEILING_MGDL
            ok = thr is not None and GLUCOSE_MIN_MGDL < thr <= GLUCOSE_MAX_MGDL
            return side, thr if ok and thr is not None else default
    return None


def _time(raw: Any) -> tuple[pd.Timestamp | None, str]:
    if raw is None or raw == "":
        return None, REASON_MISSING_TIME
    if not isinstance(raw, str) or not ISO_8601.match(raw.strip()):
        return None, REASON_BAD_TIME
    try:
        ts = pd.Timestamp(raw)
    except (ValueError, TypeError, OverflowError):
        return None, REASON_BAD_TIME
    if ts is pd.NaT or ts.tzinfo is None:
        return None, f"{REASON_BAD_TIME} (no offset)"
    ts = ts.tz_convert("UTC")
    if not TIME_MIN <= ts < TIME_MAX:
        return None, REASON_IMPLAUSIBLE_TIME
    return ts, ""


def read(src: Source, *, tz: tzinfo, tz_source: str, id: str | None) -> GlucoseTable:
    """Read Tidepool data-model JSON.

    Parameters
    ----------
    src : Source
        Decoded file.
    tz : tzinfo
        Not needed (``time`` is UTC); noted in the report if given.
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
    units_seen: set[str] = set()
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            rej.add(i, "", type(r).__name__, "not a data-model record")
            continue
        typ = r.get("type")
        if typ != "cbg":
            kind = "not a CGM reading" if typ == "smbg" else "not a glucose reading"
            rej.add(i, "type", typ, f"{kind}: {typ}")
            continue
        ts, tprob = _time(r.get("time"))
        raw, units = r.get("value"), r.get("units")
        prob, pfield, g, flag = "", "value", math.nan, ""
        value = json_number(raw)
        u = units.casefold() if isinstance(units, str) else None
        oor = _out_of_range(r)
        if u not in ("mg/dl", "mmol/l"):
            prob, pfield, raw = f"unknown units {units!r}", "units", units
        elif oor is not None:
            flag, g = oor
        elif raw is None:
            prob = REASON_MISSING_GLUCOSE
        elif value is None:
            prob = REASON_BAD_GLUCOSE
        else:
            g = value * TIDEPOOL_MGDL_PER_MMOLL if u == "mmol/l" else value
            if not (math.isfinite(g) and GLUCOSE_MIN_MGDL < g <= GLUCOSE_MAX_MGDL):
                prob, g = REASON_IMPLAUSIBLE_GLUCOSE, math.nan
            elif u == "mmol/l":
                g = float(round(g))
        if u in ("mg/dl", "mmol/l"):
            units_seen.add("mg/dL" if u == "mg/dl" else "mmol/L")
        if not prob and tprob:
            prob, pfield, raw = tprob, "time", r.get("time")
        rec.add(i, ts, g, flag, raw, prob, pfield)

    idx = pd.RangeIndex(len(rec.rows))
    prob_s = np.array(rec.problems, dtype=object)
    utc = pd.Series(
        [pd.NaT if t is None else t for t in rec.times], index=idx, dtype="datetime64[us, UTC]"
    ) if rec.rows else pd.Series([], index=idx, dtype="datetime64[us, UTC]")
    utc = to_utc_ns(utc, prob_s)
    return rec.finish(
        src, NAME, rej, id=id, time=utc, problems=prob_s, tz=tz, tz_source=tz_source,
        units="/".join(sorted(units_seen)) or "mmol/L",
    )
