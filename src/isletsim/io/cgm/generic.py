"""Generic (iglu-style) glucose CSV: ``id,time,gl`` with optional units.

Format sources: irinagain/iglu (the ``id, time, gl`` convention of its data frames and
example data, ``R/read_raw_data.r``; the project's copy of the iglu example data is
described in ``shared/data/cgm/README.md``); ``shared/docs/cgm-formats.md`` section 6
(units read from the header or a field, never guessed from magnitude).

Layout: the first non-blank line is the header; the delimiter (``,``, ``;`` or tab)
is sniffed from it. Columns are matched case-insensitively, in any order:

* time: ``time``, ``timestamp``, ``datetime`` or ``date_time`` (required);
* glucose: ``gl``, ``glucose``, ``glucose_value`` or ``sensor_glucose`` (required),
  optionally with the unit in the name (``gl (mmol/L)``, ``glucose_mmol``,
  ``glucose_mgdl``);
* id: ``id``, ``subject``, ``subject_id``, ``participant``, ``participant_id`` or
  ``patient_id`` (optional; without it the ``id`` argument or the file name is used;
  giving ``id`` for a file that has an id column is an error);
* units: ``units`` or ``unit`` (optional; ``mg/dL`` or ``mmol/L`` per row).

Reading rules:

* Units: from the column name or the units column; more than one unit in a file
  raises ``CGMFormatError`` (mixed units); none given means mg/dL (iglu's
  convention, noted in the report). mmol/L is multiplied by 18.016.
* Times are ISO 8601 (``2015-06-06T16:50:27-05:00``, ``2015-06-06 16:50:27``). With an
  offset or ``Z`` they are instants and ``tz`` is ignored; without, they are local
  times in ``tz`` (DST rules of :mod:`isletsim.io.cgm._common`, per participant, in
  file order). A file mixing both raises ``CGMFormatError``.
* ``Low``/``High`` (``LO``/``HI``) map to 40/400 mg/dL with the flag (the limits of
  the Dexcom sensors in iglu's example data).
* Decimal commas are read (``"6,5"``, or unquoted in a comma file when the glucose
  cell was split in two).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo

import numpy as np
import pandas as pd

from isletsim.glucose_table import GlucoseTable, GlucoseTableError
from isletsim.io.cgm._common import (
    ISO_8601,
    REASON_FIELDS,
    CGMFormatError,
    Rejections,
    Source,
    candidates,
    finish,
    fit_row,
    fold_note,
    glucose_from_text,
    is_blank,
    localize,
    norm,
    parse_iso_times,
    read_csv_rows,
    sniff_delimiter,
    texts,
    time_problems,
    to_utc_ns,
    tz_info,
)

NAME = "generic"
FLOOR_MGDL, CEILING_MGDL = 40.0, 400.0

_ID = ("id", "subject", "subject_id", "participant", "participant_id", "patient_id")
_TIME = ("time", "timestamp", "datetime", "date_time")
_UNITS = ("units", "unit")
_GLUCOSE = re.compile(
    r"^(?:gl|glucose|glucose[ _]value|sensor[ _]glucose)"
    r"(?:\s*[(\[]\s*(?P<u1>mg/dl|mmol/l)\s*[)\]]|[ _](?P<u2>mg/dl|mgdl|mg_dl|mmol/l|mmol_l|mmol))?$"
)
_AWARE = re.compile(
    r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)


def _unit(text: str) -> str | None:
    u = text.replace(" ", "").replace("_", "/").casefold()
    if u in ("mg/dl", "mgdl"):
        return "mg/dL"
    if u in ("mmol/l", "mmol", "mmoll"):
        return "mmol/L"
    return None


def _columns(cells: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, c in enumerate(cells):
        n = norm(c)
        if n in _ID:
            out.setdefault("id", i)
        elif n in _TIME:
            out.setdefault("time", i)
        elif n in _UNITS:
            out.setdefault("units", i)
        elif _GLUCOSE.match(n):
            out.setdefault("gl", i)
    return out


def is_header(cells: Sequence[str]) -> bool:
    """True for a generic header (a time and a glucose column)."""
    cols = _columns(cells)
    return "time" in cols and "gl" in cols


def read(src: Source, *, tz: tzinfo, tz_source: str, id: str | None) -> GlucoseTable:
    """Read a generic ``id,time,gl`` CSV.

    Parameters
    ----------
    src : Source
        Decoded file.
    tz : tzinfo
        Zone of naive timestamps (ignored for timestamps with an offset).
    tz_source : str
        ``"argument"`` or ``"default"``.
    id : str or None
        Participant id for a file without an id column (default: the file name).

    Returns
    -------
    GlucoseTable

    Raises
    ------
    GlucoseTableError
        If ``id`` is given for a file with an id column.
    CGMFormatError
        For a missing column, mixed units or mixed naive/offset timestamps.
    """
    rows = [(line, cells) for line, cells in read_csv_rows(
        src, sniff_delimiter(next((ln for ln in src.text.splitlines() if ln.strip()), "")))
        if not is_blank(cells)]
    if not rows:
        raise CGMFormatError(src.file, "no header row (only empty cells)", row=1, field="time")
    hline, header = rows[0]
    cols = _columns(header)
    for need, name in (("time", "time"), ("gl", "gl")):
        if need not in cols:
            raise CGMFormatError(
                src.file, f"missing column {name!r}; header is {[c.strip() for c in header]}",
                row=hline, field=name,
            )
    if "id" in cols and id is not None:
        raise GlucoseTableError(
            f"{src.file}: id={id!r} given but the file has an id column "
            f"({header[cols['id']].strip()!r})"
        )
    gname = header[cols["gl"]].strip()
    m = _GLUCOSE.match(norm(gname))
    assert m is not None
    name_unit = _unit(m.group("u1") or m.group("u2") or "")
    width = len(header)
    rej = Rejections(src.file)
    lines: list[int] = []
    data: list[list[str]] = []
    for line, cells in rows[1:]:
        fitted = fit_row(cells, width, {cols["gl"]})
        if fitted is None:
            rej.add(line, "", f"{len(cells)} fields", f"{REASON_FIELDS} (header has {width})")
            continue
        lines.append(line)
        data.append(fitted)

    idx = pd.RangeIndex(len(lines))

    def column(key: str) -> pd.Series:
        if key not in cols:
            return pd.Series("", index=idx, dtype="string")
        return pd.Series([r[cols[key]] for r in data], index=idx, dtype="string").str.strip()

    raw_t, raw_g, raw_u = column("time"), column("gl"), column("units")
    ids = column("id") if "id" in cols else pd.Series(id or src.stem, index=idx, dtype="string")
    id_prob = np.where(texts(ids) == "", "missing id", "").astype(object)

    # units: column name and/or units column; one unit per file
    row_unit = raw_u.map(lambda u: _unit(u) if u else "", na_action="ignore").astype("string")
    unit_prob = np.where(row_unit.isna().to_numpy(), "unknown units", "").astype(object)
    seen = [u for u in [name_unit] if u] + [u for u in row_unit.dropna().unique() if u]
    units = list(dict.fromkeys(seen))
    if len(units) > 1:
        other = row_unit.fillna("").isin([u for u in units if u != units[0]]) & (row_unit != "")
        pos = int(np.flatnonzero(other.to_numpy())[0]) if other.any() else 0
        raise CGMFormatError(
            src.file, f"mixed units {units}", row=lines[pos] if lines else hline,
            field=header[cols["units"]].strip() if "units" in cols else gname,
        )
    notes: list[str] = []
    if units:
        unit = units[0]
    else:
        unit = "mg/dL"
        notes.append("no unit in header or units column: mg/dL assumed (iglu convention)")

    glucose, flag, gprob = glucose_from_text(raw_g, unit, FLOOR_MGDL, CEILING_MGDL)
    t_text = texts(raw_t)
    iso = np.array([bool(ISO_8601.match(x)) for x in t_text], dtype=bool)
    aware = iso & np.array([bool(_AWARE.search(x)) for x in t_text], dtype=bool)
    naive = iso & ~aware
    tname = header[cols["time"]].strip()
    if aware.any() and naive.any():
        first_naive = int(np.flatnonzero(naive)[0])
        first_aware = int(np.flatnonzero(aware)[0])
        pos = max(first_naive, first_aware)
        raise CGMFormatError(
            src.file,
            f"mixed timestamps with and without a UTC offset ({raw_t[pos]!r})",
            row=lines[pos],
            field=tname,
        )
    if aware.any():
        parsed = parse_iso_times(raw_t, utc=True)
        tprob = time_problems(parsed, raw_t)
        zprob = np.full(len(idx), "", dtype=object)
        utc = to_utc_ns(parsed, zprob)
        naive_times = False
    else:
        parsed = parse_iso_times(raw_t, utc=False)
        tprob = time_problems(parsed, raw_t)
        if len(parsed):
            parsed = parsed.astype("datetime64[us]")
        utc, zprob, resolved = localize(parsed, tz, np.asarray(lines), ids.to_numpy())
        naive_times = True
        if resolved:
            notes.append(fold_note(resolved))
    cand = candidates(
        ids=ids,
        time=utc,
        glucose=glucose,
        flag=flag,
        source_row=lines,
        order=lines,
        problems=[
            (id_prob, header[cols["id"]].strip() if "id" in cols else "id", ids),
            (tprob, tname, raw_t),
            (unit_prob, "units", raw_u),
            (gprob, gname, raw_g),
            (zprob, tname, raw_t),
        ],
    )
    info = tz_info(tz, tz_source, naive=naive_times, units=unit, notes=notes)
    return finish(src, NAME, cand, rej, info)
