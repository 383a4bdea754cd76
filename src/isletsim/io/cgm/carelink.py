"""Medtronic CareLink CSV export (current 670G/770G/780G/Guardian/Simplera, and legacy).

Format sources (see ``shared/docs/cgm-formats.md`` section 3): three independent
parsers of the current EU export (index ids 2922643748, 58980411332, 3144825930:
``sep=';'``, repeated section headers, newest-first rows, ``Aggregated Auto Insulin
Data`` warnings); a legacy "CareLink Personal" parser docstring (index id
19306897484) and the Tidepool uploader's column map (index id 17110845642:
``GlucoseSensorData`` -> ``cbg`` from ``Sensor Glucose (mg/dL)``).

Layout: a patient/device preamble (not data rows), then sections, each opened by a
divider row ``-------;<model>;<Pump|Sensor>;<serial>;<label>`` and its own header row
(``Index``, ``Date``, ``Time``, ..., ``Sensor Glucose (<unit>)``). The delimiter is
detected from the first line (``;`` in EU exports; comma in legacy ones); decimals
may use commas (``4,927``); ``Index`` reads ``0,00000``.

Reading rules:

* A data row with a non-empty ``Sensor Glucose (<unit>)`` cell is a reading, in any
  section. Other rows are rejected: rows of an ``Aggregated Auto Insulin Data``
  section with ``"not a glucose reading: Aggregated Auto Insulin Data (daily
  total)"``; pump and sensor events with ``"not a glucose reading: <first non-empty
  event column>"`` (for example ``Bolus Type``, ``Alert``), fingersticks and sensor
  calibrations with ``"not a CGM reading: <column>"``.
* Units come from the column name; sections with different units raise
  ``CGMFormatError`` (mixed units). mmol/L is multiplied by 18.016.
* The sensor range is 40-400 mg/dL; no text flag has been seen in CareLink exports,
  but ``LOW``/``HIGH`` (``LO``/``HI``) would map to 40/400 with the flag.
* ``Date`` + ``Time`` are naive local times; ``YYYY/MM/DD`` (EU), ``DD.MM.YYYY`` or
  ``M/D/YY`` (legacy) are accepted, the format family that parses most cells
  winning (day-first preferred for ``;`` files, month-first for comma files).
* The vendor's chronological order (for DST folds and for which duplicate is kept)
  is the reverse of the file order when the readings are newest first, as in current
  exports, and the file order otherwise.
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
    finish_local,
    first_line,
    fit_row,
    is_blank,
    norm,
    parse_local_times,
    read_csv_rows,
    sniff_delimiter,
)

NAME = "carelink"
#: Guardian/Simplera sensor reporting range, mg/dL.
FLOOR_MGDL, CEILING_MGDL = 40.0, 400.0
AGGREGATED_REASON = "not a glucose reading: Aggregated Auto Insulin Data (daily total)"

_SG = re.compile(r"^sensor glucose\s*\((?P<unit>[^)]*)\)$")
_NOT_EVENT = {"index", "date", "time", "new device time", "timestamp"}
_ISO = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M")
_DAY_FIRST = tuple(
    f"{d} %H:%M{s}" for d in ("%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%d/%m/%y") for s in (":%S", "")
)
_MONTH_FIRST = tuple(
    f"{d} %H:%M{s}" for d in ("%m/%d/%y", "%m/%d/%Y", "%m-%d-%Y") for s in (":%S", "")
)


def is_section_header(cells: Sequence[str]) -> bool:
    """True for a section header row (``Index``, ``Date`` and ``Time`` columns)."""
    names = {norm(c) for c in cells}
    return {"index", "date", "time"} <= names


def _sg_col(cells: Sequence[str]) -> tuple[int, str] | None:
    for i, c in enumerate(cells):
        m = _SG.match(norm(c))
        if m:
            return i, m.group("unit").replace(" ", "")
    return None


def is_header(cells: Sequence[str]) -> bool:
    """True for a CareLink header with a ``Sensor Glucose (<unit>)`` column."""
    return is_section_header(cells) and _sg_col(cells) is not None


def _is_divider(cells: Sequence[str]) -> bool:
    return bool(cells) and cells[0].strip().strip("\ufeff").startswith("-------")


def read(src: Source, *, tz: tzinfo, tz_source: str, id: str | None) -> GlucoseTable:
    """Read a CareLink CSV.

    Parameters
    ----------
    src : Source
        Decoded file.
    tz : tzinfo
        Zone of the pump's local times.
    tz_source : str
        ``"argument"`` or ``"default"``.
    id : str or None
        Participant id (default: the file name without suffix).

    Returns
    -------
    GlucoseTable
    """
    delimiter = sniff_delimiter(first_line(src.text))
    rows = read_csv_rows(src, delimiter)
    rej = Rejections(src.file)
    header: list[str] | None = None
    cols: dict[str, int] = {}
    sg: tuple[int, str] | None = None
    label = ""
    units: dict[str, int] = {}
    lines: list[int] = []
    dates: list[str] = []
    times: list[str] = []
    values: list[str] = []
    fields: list[str] = []
    for line, cells in rows:
        if is_blank(cells):
            continue
        if _is_divider(cells):
            label = cells[4].strip() if len(cells) > 4 else ""
            continue
        if is_section_header(cells):
            header = [c.strip().strip("\ufeff") for c in cells]
            cols = {norm(c): i for i, c in enumerate(header)}
            sg = _sg_col(header)
            if sg is not None:
                units.setdefault(sg[1].casefold(), line)
            continue
        if header is None:
            continue  # preamble
        fitted = fit_row(cells, len(header))
        if fitted is None:
            rej.add(line, "", f"{len(cells)} fields",
                    f"{REASON_FIELDS} (header has {len(header)})")
            continue
        if "aggregated" in label.casefold():
            rej.add(line, "section", label, AGGREGATED_REASON)
            continue
        if sg is not None and fitted[sg[0]].strip():
            lines.append(line)
            dates.append(fitted[cols["date"]].strip())
            times.append(fitted[cols["time"]].strip())
            values.append(fitted[sg[0]])
            fields.append(header[sg[0]])
            continue
        event = next(
            (i for i, c in enumerate(fitted) if c.strip() and norm(header[i]) not in _NOT_EVENT),
            None,
        )
        if event is None:
            rej.add(line, "", "", "not a glucose reading: empty event")
            continue
        name = header[event]
        kind = "not a CGM reading" if norm(name).startswith(
            ("bg reading", "sensor calibration bg")) else "not a glucose reading"
        rej.add(line, name, fitted[event].strip(), f"{kind}: {name}")

    if not units:
        raise CGMFormatError(src.file, "no CareLink section header with a sensor glucose column",
                             field="Sensor Glucose (mg/dL)")
    if len(units) > 1:
        u2, second = sorted(units.items(), key=lambda kv: kv[1])[1]
        raise CGMFormatError(src.file, f"mixed units: Sensor Glucose in {sorted(units)}",
                             row=second, field=f"Sensor Glucose ({u2})")
    ukey = next(iter(units))
    if ukey not in ("mg/dl", "mmol/l"):
        raise CGMFormatError(src.file, f"unknown glucose unit {ukey!r}",
                             row=units[ukey], field=f"Sensor Glucose ({ukey})")
    unit = "mg/dL" if ukey == "mg/dl" else "mmol/L"

    idx = pd.RangeIndex(len(lines))
    raw_t = pd.Series([f"{d} {t}" for d, t in zip(dates, times, strict=True)], index=idx,
                      dtype="string").str.strip()
    raw_g = pd.Series(values, index=idx, dtype="string")
    fams = (_ISO, _DAY_FIRST, _MONTH_FIRST) if delimiter == ";" else (_ISO, _MONTH_FIRST,
                                                                       _DAY_FIRST)
    naive, _ = parse_local_times(raw_t, fams)
    steps = np.diff(naive.dropna().to_numpy().astype("datetime64[us]").astype(np.int64))
    newest_first = bool((steps < 0).sum() > (steps > 0).sum())
    return finish_local(
        src, NAME, rej, id=id, tz=tz, tz_source=tz_source, unit=unit,
        floor=FLOOR_MGDL, ceiling=CEILING_MGDL, lines=lines,
        order=-np.asarray(lines) if newest_first else np.asarray(lines), naive=naive,
        raw_t=raw_t, time_field="Date Time", raw_g=raw_g,
        glucose_field=pd.Series(fields, index=idx, dtype="string"),
        notes=[f"rows are {'newest' if newest_first else 'oldest'} first"],
    )
