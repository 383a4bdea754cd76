"""Readers for CGM device exports: :func:`read_cgm`.

Supported formats (one module each; format notes and their sources in
``shared/docs/cgm-formats.md``):

============ ===================================================== ===================
name         export                                                row numbers
============ ===================================================== ===================
dexcom       Dexcom Clarity CSV (G6, G7; mg/dL or mmol/L)          1-based CSV lines
libreview    Abbott LibreView CSV (US, EU/German, decimal commas)  1-based CSV lines
carelink     Medtronic CareLink CSV (sections, ``;``, newest first) 1-based CSV lines
nightscout   Nightscout ``entries.json``                           0-based JSON index
tidepool     Tidepool data-model JSON (``cbg``)                    0-based JSON index
generic      iglu-style ``id,time,gl`` CSV (optional units)        1-based CSV lines
============ ===================================================== ===================

Every data row of a file ends up either in ``table.data`` (``source_row``) or in
``table.rejected`` (``row``, with a reason); :func:`rejected_counts` and
:func:`read_report` summarise a read. The shared rules (time zones, DST, duplicates,
plausibility) are documented in :mod:`isletsim.io.cgm._common`; device floors and
ceilings for Low/High in each reader (Dexcom 40/400, Libre 40/500, CareLink 40/400,
Nightscout 39 -> 40 and 401 -> 400, Tidepool the annotation's threshold, generic
40/400).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

from isletsim.glucose_table import GlucoseTable, GlucoseTableError
from isletsim.io.cgm import carelink, dexcom, generic, libreview, nightscout, tidepool
from isletsim.io.cgm._common import (
    CGMFormatError,
    CGMWarning,
    load_source,
    read_report,
    rejected_counts,
    resolve_tz,
    warn_assumptions,
)
from isletsim.io.cgm.detect import FORMATS, detect_format

__all__ = [
    "FORMATS",
    "CGMFormatError",
    "CGMWarning",
    "detect_format",
    "read_cgm",
    "read_report",
    "rejected_counts",
]

_READERS: dict[str, Callable[..., GlucoseTable]] = {
    "dexcom": dexcom.read,
    "libreview": libreview.read,
    "carelink": carelink.read,
    "nightscout": nightscout.read,
    "tidepool": tidepool.read,
    "generic": generic.read,
}


def read_cgm(
    path: str | Path,
    format: str = "auto",
    *,
    tz: str | tzinfo | None = None,
    id: str | None = None,
) -> GlucoseTable:
    """Read a CGM export into a :class:`~isletsim.glucose_table.GlucoseTable`.

    Parameters
    ----------
    path : str or Path
        The export file.
    format : str
        ``"auto"`` (detect from the content) or one of ``"dexcom"``,
        ``"libreview"``, ``"carelink"``, ``"nightscout"``, ``"tidepool"``,
        ``"generic"``.
    tz : str or tzinfo, optional
        IANA time zone of the device's naive local times (Dexcom, LibreView,
        CareLink, generic CSV without offsets). None of these exports records its
        zone, so the default is UTC, with a :class:`CGMWarning` and a note in the
        report. Ignored (noted) for Nightscout, Tidepool and offset-carrying times.
    id : str, optional
        Participant id; default the file name without suffix. Not allowed for a
        generic CSV that has an id column.

    Returns
    -------
    GlucoseTable
        ``data`` with ``id, time (UTC), glucose (mg/dL), source_row, flag``;
        ``rejected`` with every data row not used and why. Read metadata (format,
        units, tz, notes) is in ``table.data.attrs["cgm"]``; see :func:`read_report`.

    Raises
    ------
    CGMFormatError
        Unknown format, empty file, missing column, mixed units, malformed
        structure, or no usable reading; the message names file, row and field.
    GlucoseTableError
        Invalid arguments (unknown ``format`` name, unknown ``tz``, ``id`` for a file
        with an id column).
    OSError
        The file cannot be read.

    Examples
    --------
    >>> table = read_cgm("clarity_export.csv", tz="America/New_York")  # doctest: +SKIP
    >>> print(read_report(table))  # doctest: +SKIP
    """
    if format != "auto" and format not in _READERS:
        raise GlucoseTableError(f"unknown format {format!r}; use 'auto' or one of {FORMATS}")
    zone, tz_source = resolve_tz(tz)
    src = load_source(path)
    fmt = detect_format(src) if format == "auto" else format
    table = _READERS[fmt](src, tz=zone, tz_source=tz_source, id=id)
    warn_assumptions(table)
    return table
