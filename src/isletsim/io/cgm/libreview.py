"""Abbott LibreView CSV export (FreeStyle Libre 1/2/3, Libre Pro, Lingo).

Format sources (see ``shared/docs/cgm-formats.md`` section 2): the justinphelps gist
"Notes on the Abbott LibreView CSV export format" (record types, columns); the
Home-Assistant importer column list (index id 33490941313); Glucose360 and
irinagain/iglu (``colnamerow = 2``); a German research pipeline (translated headers,
decimal commas, ``handle_scans``; index id 49319261240); shrugalic/
LibreView_to_AppleHealth_converter ``convert_LV_export.py`` (UTF-16-LE).

Layout: one or two preamble lines, then the column header, found by content (a
``Record Type``/``Aufzeichnungstyp`` and a ``Device Timestamp``/``Gerätezeitstempel``
column). The unit is the suffix of the glucose column names (``Historic Glucose
mg/dL``, ``Glukosewert-Verlauf mmol/L``); historic and scan columns in different units
raise ``CGMFormatError`` (mixed units).

Reading rules:

* Record type 0 (historic, automatic) rows are the readings.
* Record type 1 (scan) rows are **not used** by default and are rejected with
  ``"Libre scan (record type 1); only historic readings are used"``: scans duplicate
  historic readings and oversample post-meal periods (the format notes'
  recommendation). :func:`read` with ``scans=True`` keeps them.
* Types 2 and 3 (strip/ketone) -> ``"not a CGM reading: record type N"``; 4 insulin,
  5 food, 6 notes/events -> ``"not a glucose reading: <kind> (record type N)"``.
* ``LO`` -> 40 mg/dL flag ``"low"``, ``HI`` -> 500 mg/dL flag ``"high"`` (Libre's
  40-500 mg/dL range; case-insensitive, also ``Low``/``High``).
* mmol/L values (decimal comma or point) are multiplied by 18.016. Decimal commas
  are read both quoted (``"6,5"``) and unquoted (the row then has one field more than
  the header and the split number is joined again).
* Device Timestamp is naive local time without seconds: ``MM-DD-YYYY hh:mm AM/PM``
  (US) or ``DD-MM-YYYY HH:MM`` (EU/DE). The format family that parses most cells is
  used; ties go to month-first for mg/dL files and day-first for mmol/L files.
  DST folds are resolved by file order (LibreView sorts by local time, so folded
  hours are usually rejected as ambiguous).
* Several serial numbers in one file are all kept; readings at the same instant are
  de-duplicated by the common rule (first in file order kept).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo

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
    parse_local_times,
    read_csv_rows,
    sniff_delimiter,
)

NAME = "libreview"
#: Libre reporting limits, mg/dL: ``LO`` below, ``HI`` above.
FLOOR_MGDL, CEILING_MGDL = 40.0, 500.0
SCAN_REASON = "Libre scan (record type 1); only historic readings are used"

_TYPE = ("record type", "aufzeichnungstyp")
_TIME = ("device timestamp", "gerätezeitstempel")
_HISTORIC = ("historic glucose", "glukosewert-verlauf")
_SCAN = ("scan glucose", "glukose-scan")
_UNIT = re.compile(r"(mg/dl|mmol/l)\s*$")
_KIND = {
    "2": "not a CGM reading: record type 2",
    "3": "not a CGM reading: record type 3",
    "4": "not a glucose reading: insulin (record type 4)",
    "5": "not a glucose reading: food (record type 5)",
    "6": "not a glucose reading: note or event (record type 6)",
}

_SEC = (":%S", "")
US_FORMATS = tuple(
    f"{d} {t}{s}{p}"
    for d in ("%m-%d-%Y", "%m/%d/%Y")
    for t, p in (("%I:%M", " %p"), ("%H:%M", ""))
    for s in _SEC
)
EU_FORMATS = tuple(f"{d} %H:%M{s}" for d in ("%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y") for s in _SEC)
ISO_FORMATS = tuple(
    f"{d}{sep}%H:%M{s}" for d in ("%Y-%m-%d", "%Y/%m/%d") for sep in (" ", "T") for s in _SEC
)


def is_header(cells: Sequence[str]) -> bool:
    """True for a LibreView column header (record type and device timestamp columns)."""
    return find_column(cells, _TYPE) is not None and find_column(cells, _TIME) is not None


def _unit_of(src: Source, name: str, row: int) -> str:
    m = _UNIT.search(norm(name))
    if not m:
        raise CGMFormatError(src.file, "no unit (mg/dL or mmol/L) in column name", row=row,
                             field=name.strip())
    return "mg/dL" if m.group(1) == "mg/dl" else "mmol/L"


def read(
    src: Source,
    *,
    tz: tzinfo,
    tz_source: str,
    id: str | None,
    scans: bool = False,
) -> GlucoseTable:
    """Read a LibreView CSV.

    Parameters
    ----------
    src : Source
        Decoded file.
    tz : tzinfo
        Zone of the device's local times.
    tz_source : str
        ``"argument"`` or ``"default"``.
    id : str or None
        Participant id (default: the file name without suffix).
    scans : bool
        Keep scan (record type 1) readings as well (default: rejected).

    Returns
    -------
    GlucoseTable
    """
    rows = read_csv_rows(src, sniff_delimiter(first_line(src.text)))
    pos = find_header(rows, is_header)
    if pos is None:
        raise CGMFormatError(
            src.file,
            "no LibreView header row (needs 'Device Timestamp' and 'Record Type' columns)",
            field="Record Type",
        )
    hline, header = rows[pos]
    hcol, scol = find_column(header, _HISTORIC), find_column(header, _SCAN)
    tcol, ycol = find_column(header, _TIME), find_column(header, _TYPE)
    assert tcol is not None and ycol is not None
    if hcol is None:
        raise CGMFormatError(src.file, "missing historic glucose column", row=hline,
                             field="Historic Glucose")
    unit = _unit_of(src, header[hcol], hline)
    if scol is not None and _unit_of(src, header[scol], hline) != unit:
        raise CGMFormatError(
            src.file,
            f"mixed units: {header[hcol].strip()!r} vs {header[scol].strip()!r}",
            row=hline,
            field=header[scol].strip(),
        )
    mergeable = {i for i, c in enumerate(header) if re.search(r"mmol/l|\(units\)|\(einheiten\)",
                                                               norm(c))}
    width = len(header)
    rej = Rejections(src.file)
    lines: list[int] = []
    times: list[str] = []
    values: list[str] = []
    fields: list[str] = []
    for line, cells in rows[pos + 1 :]:
        if is_blank(cells):
            continue
        fitted = fit_row(cells, width, mergeable)
        if fitted is None:
            rej.add(line, "", f"{len(cells)} fields", f"{REASON_FIELDS} (header has {width})")
            continue
        rtype = fitted[ycol].strip()
        if rtype == "0":
            col = hcol
        elif rtype == "1" and scol is not None and scans:
            col = scol
        elif rtype == "1":
            rej.add(line, header[ycol].strip(), rtype, SCAN_REASON)
            continue
        else:
            reason = _KIND.get(rtype, f"not a glucose reading: unknown record type {rtype!r}")
            rej.add(line, header[ycol].strip(), rtype, reason)
            continue
        lines.append(line)
        times.append(fitted[tcol])
        values.append(fitted[col])
        fields.append(header[col].strip())

    idx = pd.RangeIndex(len(lines))
    raw_t = pd.Series(times, index=idx, dtype="string")
    raw_g = pd.Series(values, index=idx, dtype="string")
    families = (US_FORMATS, EU_FORMATS) if unit == "mg/dL" else (EU_FORMATS, US_FORMATS)
    naive, fam = parse_local_times(raw_t, (*families, ISO_FORMATS))
    names = ("month-first", "day-first") if unit == "mg/dL" else ("day-first", "month-first")
    return finish_local(
        src, NAME, rej, id=id, tz=tz, tz_source=tz_source, unit=unit,
        floor=FLOOR_MGDL, ceiling=CEILING_MGDL, lines=lines, order=lines, naive=naive,
        raw_t=raw_t, time_field=header[tcol].strip(), raw_g=raw_g,
        glucose_field=pd.Series(fields, index=idx, dtype="string"),
        notes=[f"Device Timestamp read as {(*names, 'ISO')[fam]} dates"],
    )
