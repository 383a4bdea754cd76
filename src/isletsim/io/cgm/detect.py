"""Recognise a CGM export from its content (the file name is not used).

Rules, in order (format notes ``shared/docs/cgm-formats.md``, section 6: "find the
header row by its content"):

1. Text starting with ``[`` or ``{`` is JSON: Nightscout entries if a record carries
   ``sgv`` (or ``type`` ``sgv``/``mbg``/``cal`` with ``date``); Tidepool if a record has
   a data-model ``type`` (``cbg``, ``smbg``, ``upload``, ...) with ``time`` or ``units``.
2. Otherwise the first 60 CSV rows are searched, each format's own header test
   deciding (:func:`isletsim.io.cgm.carelink.is_header` and so on): CareLink (a
   section header with ``Sensor Glucose (<unit>)``), Dexcom Clarity (``Event Type``
   and ``Glucose Value (<unit>)``), LibreView (``Record Type`` and ``Device
   Timestamp``), then the generic ``time``/``gl`` header on the first line.
"""

from __future__ import annotations

import csv
import io

from isletsim.io.cgm import carelink, dexcom, generic, libreview, nightscout, tidepool
from isletsim.io.cgm._common import CGMFormatError, Source, first_line, sniff_delimiter

FORMATS: tuple[str, ...] = ("dexcom", "libreview", "carelink", "nightscout", "tidepool", "generic")
SCAN_LINES = 60


def detect_format(src: Source) -> str:
    """Name of the export format of ``src``.

    Parameters
    ----------
    src : Source
        Decoded file.

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    CGMFormatError
        If the content matches no known format.
    """
    text = src.text.lstrip("\ufeff \t\r\n")
    if text[:1] in ("[", "{"):
        records = src.json_records()
        if nightscout.looks_like(records):
            return "nightscout"
        if tidepool.looks_like(records):
            return "tidepool"
        raise CGMFormatError(
            src.file,
            "JSON is neither Nightscout entries (records with 'sgv' and 'date') nor Tidepool "
            "data (records with 'type' such as 'cbg' and 'time')",
            row=0,
            field="type",
        )
    head = "\n".join(text.splitlines()[:SCAN_LINES])
    first = first_line(text)
    delimiter = sniff_delimiter(first)
    try:
        rows = list(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise CGMFormatError(src.file, f"malformed CSV ({exc})") from None
    for fmt, test in (
        ("carelink", carelink.is_header),
        ("dexcom", dexcom.is_header),
        ("libreview", libreview.is_header),
    ):
        if any(test(cells) for cells in rows):
            return fmt
    nonblank = [cells for cells in rows if any(c.strip() for c in cells)]
    if nonblank and generic.is_header(nonblank[0]):
        return "generic"
    shown = first[:80] + ("..." if len(first) > 80 else "")
    raise CGMFormatError(
        src.file,
        f"not a known CGM export (Dexcom Clarity, LibreView, CareLink, Nightscout, Tidepool "
        f"or an id,time,gl CSV); first line: {shown!r}",
        row=1,
        field="header",
    )
