"""Dexcom Clarity CSV export (G6, G7, Stelo), mg/dL or mmol/L.

Format sources (see ``shared/docs/cgm-formats.md`` section 1): the Clarity export in
vurhd2/Glucose360 ``datasets/Clarity_Export_00000_Subject_1_2023-10-16_235810.csv``;
the U-Michigan Depression Center CGM FAQ (G7 example); irinagain/iglu
``R/read_raw_data.r`` (keep ``Event Type == "EGV"``); Glucose360
``glucose360/preprocessing.py`` (``LOW = 40``, ``HIGH = 400``); a German pipeline
(``Zeitstempel``, ``Glukosewert (mmol/l)``, Latin-1).

Layout: one header row of 14 columns (found by content: ``Index`` plus a timestamp,
``Event Type`` and ``Glucose Value (<unit>)`` column, in any order); the unit is in
the glucose column name. Metadata rows (``FirstName``, ``Device``, ``Alert``, ...)
follow under the same header with an empty timestamp.

Reading rules:

* ``Event Type`` ``EGV`` rows are readings; every other row is rejected:
  ``Calibration`` with ``"not a CGM reading: Calibration"``, all others (metadata,
  alerts, insulin, carbs, exercise, health, device) with
  ``"not a glucose reading: <Event Type>"``. The value reported for a rejected row is
  its event type, never the patient-info cell.
* ``Low`` -> 40 mg/dL with flag ``"low"``, ``High`` -> 400 mg/dL with flag
  ``"high"`` (Dexcom's reporting range; also for mmol/L exports, ``LO``/``HI``
  accepted too).
* mmol/L values are multiplied by 18.016 (:data:`isletsim.units.MGDL_PER_MMOLL`).
* Timestamps are naive local times, ``2023-07-02T12:55:17`` or the spreadsheet form
  ``2025-05-01 0:01:47``; DST folds are ordered by ``Transmitter Time`` when every
  reading has one from a single transmitter, otherwise by file order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo

import numpy as np
import pandas as pd

from isletsim.glucose_table import GlucoseTable
from isletsim.io.cgm._common import (
    REASON_FIELDS,
    CGMFormatError,
    Rejections,
    Source,
    find_column,
    find_header,
    finish_local,
    first_line,
    fit_row,
    is_blank,
    norm,
    parse_decimal,
    parse_local_times,
    read_csv_rows,
    sniff_delimiter,
)

NAME = "dexcom"
#: Dexcom reporting limits, mg/dL: ``Low`` below, ``High`` above.
FLOOR_MGDL, CEILING_MGDL = 40.0, 400.0

_TIME = ("timestamp", "zeitstempel")
_EVENT = ("event type", "ereignistyp")
_GLUCOSE = re.compile(r"^(glucose value|glukosewert)\s*\((?P<unit>[^)]*)\)$")
_TX_TIME = ("transmitter time",)
_TX_ID = ("transmitter id", "transmitter-id")
TIME_FORMATS = (
    ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"),
)


def _glucose_col(cells: Sequence[str]) -> tuple[int, str] | None:
    for i, c in enumerate(cells):
        m = _GLUCOSE.match(norm(c))
        if m:
            return i, m.group("unit").strip()
    return None


def is_header(cells: Sequence[str]) -> bool:
    """True for a Clarity header row (timestamp, event type and glucose columns)."""
    return (
        find_column(cells, _TIME) is not None
        and find_column(cells, _EVENT) is not None
        and _glucose_col(cells) is not None
    )


def _unit(src: Source, raw: str, row: int, name: str) -> str:
    u = raw.replace(" ", "").casefold()
    if u == "mg/dl":
        return "mg/dL"
    if u == "mmol/l":
        return "mmol/L"
    raise CGMFormatError(src.file, f"unknown glucose unit {raw!r}", row=row, field=name)


def read(src: Source, *, tz: tzinfo, tz_source: str, id: str | None) -> GlucoseTable:
    """Read a Dexcom Clarity CSV.

    Parameters
    ----------
    src : Source
        Decoded file.
    tz : tzinfo
        Zone of the device's local times.
    tz_source : str
        ``"argument"`` or ``"default"`` (for the report).
    id : str or None
        Participant id (default: the file name without suffix).

    Returns
    -------
    GlucoseTable
    """
    rows = read_csv_rows(src, sniff_delimiter(first_line(src.text)))
    pos = find_header(rows, is_header)
    if pos is None:
        raise CGMFormatError(
            src.file,
            "no Dexcom Clarity header row (needs 'Timestamp (...)', 'Event Type' and "
            "'Glucose Value (<unit>)' columns)",
            field="Glucose Value",
        )
    hline, header = rows[pos]
    found = _glucose_col(header)
    assert found is not None  # guaranteed by is_header
    gcol, graw = found
    unit = _unit(src, graw, hline, header[gcol].strip())
    tcol, ecol = find_column(header, _TIME), find_column(header, _EVENT)
    assert tcol is not None and ecol is not None
    txt, txi = find_column(header, _TX_TIME), find_column(header, _TX_ID)
    width = len(header)
    rej = Rejections(src.file)

    lines: list[int] = []
    times: list[str] = []
    values: list[str] = []
    tx_time: list[str] = []
    tx_id: list[str] = []
    for line, cells in rows[pos + 1 :]:
        if is_blank(cells):
            continue
        fitted = fit_row(cells, width)
        if fitted is None:
            rej.add(line, "", f"{len(cells)} fields", f"{REASON_FIELDS} (header has {width})")
            continue
        event = fitted[ecol].strip()
        if event.casefold() != "egv":
            kind = "not a CGM reading" if event.casefold() == "calibration" else (
                "not a glucose reading"
            )
            rej.add(line, header[ecol].strip(), event, f"{kind}: {event or '(no event type)'}")
            continue
        lines.append(line)
        times.append(fitted[tcol])
        values.append(fitted[gcol])
        tx_time.append(fitted[txt] if txt is not None else "")
        tx_id.append(fitted[txi].strip() if txi is not None else "")

    idx = pd.RangeIndex(len(lines))
    raw_t = pd.Series(times, index=idx, dtype="string")
    raw_g = pd.Series(values, index=idx, dtype="string")
    naive, _ = parse_local_times(raw_t, TIME_FORMATS)
    tx = parse_decimal(tx_time)
    if len(lines) and not np.isnan(tx).any() and len(set(tx_id)) == 1:
        order = tx
        order_note = "DST folds ordered by Transmitter Time"
    else:
        order = np.asarray(lines, dtype=float)
        order_note = "DST folds ordered by file order"
    return finish_local(
        src, NAME, rej, id=id, tz=tz, tz_source=tz_source, unit=unit,
        floor=FLOOR_MGDL, ceiling=CEILING_MGDL, lines=lines, order=order, naive=naive,
        raw_t=raw_t, time_field=header[tcol].strip(), raw_g=raw_g,
        glucose_field=header[gcol].strip(), notes=[], fold_detail=order_note,
    )
