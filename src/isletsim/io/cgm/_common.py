"""Helpers shared by every CGM export reader, each written once.

* decoding: byte-order marks (UTF-8, UTF-16), BOM-less UTF-16, UTF-8 with a
  Latin-1 fallback (:func:`decode_bytes`);
* CSV records with their 1-based line numbers (:func:`read_csv_rows`), delimiter
  sniffing (:func:`sniff_delimiter`), header search by content (:func:`find_header`),
  row-length repair for unquoted decimal commas (:func:`fit_row`);
* numbers with a decimal point or a decimal comma (:func:`parse_decimal`);
* device text ``Low``/``High``/``LO``/``HI`` mapped to the device floor/ceiling
  (:func:`glucose_from_text`);
* naive local device time -> UTC with explicit DST rules (:func:`localize`);
* rejected-row records (:class:`Rejections`), duplicates and the final table
  (:func:`finish`), and the read report (:func:`rejected_counts`,
  :func:`read_report`).

Rules shared by all readers (format notes: ``shared/docs/cgm-formats.md``, section 6
"Cross-format rules for our importer"):

Row numbers
    ``source_row`` (``.data``) and ``row`` (``.rejected``) are **1-based physical line
    numbers** for CSV exports (the line on which the record starts; line 1 is the
    first line of the file, so the Dexcom header is line 1) and **0-based indices
    into the JSON array** for Nightscout and Tidepool. Preamble, header, section
    divider and blank lines are not data rows and are not reported.
Time zones
    Naive local device times (Dexcom, LibreView, CareLink, generic CSV without an
    offset) are localised in ``tz`` and converted to UTC. None of these exports
    carries its time zone, so without ``tz`` they are read as UTC: the read report
    says so and :func:`isletsim.read_cgm` emits a :class:`CGMWarning`.
DST gap (spring forward)
    A local time that does not exist in ``tz`` cannot be placed on the UTC axis
    without guessing which clock the device used, so the row goes to ``rejected``
    with reason ``"nonexistent local time (DST gap)"``; it is never shifted.
DST fold (fall back)
    A local time that occurs twice is resolved by the vendor's order of the rows
    (Dexcom: Transmitter Time when every reading has one from a single transmitter,
    otherwise the file order; CareLink: the reverse file order when its readings are
    newest first, as current exports are; LibreView and generic CSV: the file order,
    per participant). Within a run of consecutive ambiguous readings, if the local clock steps
    back exactly once, the readings before the step are daylight time (first pass)
    and those from the step on are standard time (second pass); the number resolved
    this way is noted in the report. Any other run (no step back, as in exports
    sorted by local time, or several steps) is rejected with reason
    ``"ambiguous local time (DST fold)"``.
Duplicates
    Two readings of one participant at the same UTC instant: the first in the
    vendor's order is kept, the other goes to ``rejected`` with reason
    ``"duplicate"`` (field ``time``). Nightscout has a wider rule (see its module).
Units
    mmol/L values are multiplied by 18.016 mg/dL per mmol/L
    (:data:`isletsim.units.MGDL_PER_MMOLL`) and not rounded; Tidepool, which stores
    device mg/dL divided by 18.01559, is converted back with its own factor (see
    :mod:`isletsim.io.cgm.tidepool`).
Plausibility
    Glucose must be finite and in (0, 1000] mg/dL (Tidepool's upper model limit)
    and times in [1970, 2100); other rows are rejected with a reason.
Empty results
    A file that yields no reading at all raises :class:`CGMFormatError` naming the
    first rejected reading row, field and reason (or saying that the file has no
    glucose rows).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from isletsim.glucose_table import GlucoseTable, GlucoseTableError, empty_rejected
from isletsim.units import MGDL_PER_MMOLL

#: Plausible glucose range, mg/dL: (GLUCOSE_MIN_MGDL, GLUCOSE_MAX_MGDL].
GLUCOSE_MIN_MGDL: float = 0.0
GLUCOSE_MAX_MGDL: float = 1000.0
TIME_MIN = pd.Timestamp("1970-01-01", tz="UTC")
TIME_MAX = pd.Timestamp("2100-01-01", tz="UTC")

LOW_TEXT = frozenset({"low", "lo"})
HIGH_TEXT = frozenset({"high", "hi"})

REASON_DUPLICATE = "duplicate"
REASON_GAP = "nonexistent local time (DST gap)"
REASON_FOLD = "ambiguous local time (DST fold)"
REASON_MISSING_GLUCOSE = "missing glucose value"
REASON_BAD_GLUCOSE = "unparseable glucose value"
REASON_IMPLAUSIBLE_GLUCOSE = "implausible glucose value (not in (0, 1000] mg/dL)"
REASON_MISSING_TIME = "missing time"
REASON_BAD_TIME = "unparseable time"
REASON_IMPLAUSIBLE_TIME = "implausible time (not in 1970-2100)"
REASON_FIELDS = "wrong number of fields"

#: The mg/dL conversion factor used for mmol/L exports (Tidepool uses its own, see there).
MGDL_PER_MMOL = MGDL_PER_MMOLL


class CGMFormatError(GlucoseTableError):
    """A CGM export that cannot be read; the message names the file, row and field.

    Attributes
    ----------
    file : str
        The file as given to the reader.
    row : int or None
        Line (CSV, 1-based) or record index (JSON, 0-based) of the problem, if any.
    field : str or None
        The column or JSON key concerned, if any.
    """

    def __init__(
        self, file: str, message: str, *, row: int | None = None, field: str | None = None
    ) -> None:
        self.file, self.row, self.field = file, row, field
        where = [file]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}")


class CGMWarning(UserWarning):
    """A CGM export was read under an assumption (for example UTC for naive times)."""


# --------------------------------------------------------------------------- input
@dataclass
class Source:
    """A decoded input file.

    Attributes
    ----------
    file : str
        Path as given (used in messages and in ``rejected.file``).
    stem : str
        File name without suffix (the default participant id).
    text : str
        Decoded content.
    encoding : str
        Encoding used to decode it.
    """

    file: str
    stem: str
    text: str
    encoding: str

    @cached_property
    def json(self) -> Any:
        """The parsed JSON document (raises :class:`CGMFormatError` if invalid)."""
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise CGMFormatError(
                self.file, f"invalid JSON ({exc.msg}, column {exc.colno})", row=exc.lineno
            ) from None
        except (RecursionError, ValueError) as exc:  # deep nesting, huge integers
            raise CGMFormatError(self.file, f"unreadable JSON ({exc})") from None

    def json_records(self, keys: Sequence[str] = ("data", "result", "entries")) -> list[Any]:
        """The top-level array (or the array under one of ``keys`` of a top-level object)."""
        doc = self.json
        if isinstance(doc, dict):
            for key in keys:
                if isinstance(doc.get(key), list):
                    return doc[key]
            raise CGMFormatError(
                self.file, f"JSON object without a record array (looked for keys {list(keys)})"
            )
        if not isinstance(doc, list):
            raise CGMFormatError(
                self.file, f"JSON top level is a {type(doc).__name__}, not an array"
            )
        return doc


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode an export, sniffing the encoding from the bytes.

    A UTF-8 or UTF-16 byte-order mark wins (Dexcom and LibreView exports carry one;
    one converter reads LibreView as UTF-16-LE). Without a BOM, NUL bytes in every
    other position mean UTF-16 (LE or BE); otherwise UTF-8 is tried and Latin-1 (which
    decodes any byte; a German Dexcom pipeline reads ``latin-1``) is the fallback.

    Parameters
    ----------
    raw : bytes
        File content.

    Returns
    -------
    tuple of (str, str)
        The text (without BOM) and the encoding name used.
    """
    if raw.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = []
        head = raw[:4096]
        if len(head) >= 4:
            even, odd = head[0::2].count(0), head[1::2].count(0)
            if odd > 0.4 * len(head) / 2 and even == 0:
                candidates.append("utf-16-le")
            elif even > 0.4 * len(head) / 2 and odd == 0:
                candidates.append("utf-16-be")
        candidates.append("utf-8")
    for enc in candidates:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def load_source(path: str | Path) -> Source:
    """Read and decode a file.

    Parameters
    ----------
    path : str or Path
        The export.

    Returns
    -------
    Source

    Raises
    ------
    CGMFormatError
        If the file is empty (or only whitespace).
    """
    p = Path(path)
    raw = p.read_bytes()
    text, enc = decode_bytes(raw)
    if not text.strip().strip("\ufeff\x00"):
        raise CGMFormatError(str(path), "empty file (no header, no rows)")
    return Source(file=str(path), stem=p.stem, text=text, encoding=enc)


def sniff_delimiter(line: str, candidates: str = ",;\t") -> str:
    """The candidate character that occurs most often in ``line`` (ties: first)."""
    counts = [line.count(c) for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (counts[i], -i))
    return candidates[best] if counts[best] else candidates[0]


def first_line(text: str) -> str:
    """The first non-blank line of ``text``."""
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def read_csv_rows(src: Source, delimiter: str) -> list[tuple[int, list[str]]]:
    """All CSV records of ``src`` with the 1-based line on which each starts.

    Parameters
    ----------
    src : Source
        Decoded file.
    delimiter : str
        Field delimiter.

    Returns
    -------
    list of (int, list of str)
        Line number and cells (blank lines give an empty list).
    """
    reader = csv.reader(io.StringIO(src.text, newline=""), delimiter=delimiter)
    out: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            out.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CGMFormatError(src.file, f"malformed CSV ({exc})", row=start) from None
    return out


def is_blank(cells: Sequence[str]) -> bool:
    """True for a row without any non-blank cell."""
    return not any(c.strip() for c in cells)


def norm(cell: str) -> str:
    """A header cell normalised for matching: stripped, BOM-free, case-folded."""
    return cell.strip().strip("\ufeff").strip().casefold()


def find_column(cells: Sequence[str], prefixes: tuple[str, ...]) -> int | None:
    """Index of the first header cell whose normalised name starts with one of ``prefixes``."""
    for i, c in enumerate(cells):
        if norm(c).startswith(prefixes):
            return i
    return None


def find_header(
    rows: Sequence[tuple[int, list[str]]],
    is_header: Callable[[Sequence[str]], bool],
    max_rows: int = 60,
) -> int | None:
    """Position in ``rows`` of the first header row (by content), or None."""
    for pos, (_, cells) in enumerate(rows[:max_rows]):
        if is_header(cells):
            return pos
    return None


def fit_row(cells: list[str], width: int, mergeable: Iterable[int] = ()) -> list[str] | None:
    """Bring a data row to the header's ``width``.

    Short rows are padded with empty cells; surplus empty cells at the end are
    dropped. A row that is still too long because an unquoted decimal comma split a
    number (LibreView, ``6,5`` written without quotes: the row has one field more than
    the header) is repaired by joining ``cells[j] + "." + cells[j + 1]`` when column
    ``j`` (header position) is in ``mergeable`` and both parts are digits.

    Returns
    -------
    list of str or None
        The fitted row, or None if it cannot be fitted.
    """
    if len(cells) < width:
        return cells + [""] * (width - len(cells))
    if len(cells) == width:
        return cells
    out = list(cells)
    merge = set(mergeable)
    j = 0
    while len(out) > width and j < len(out) - 1:
        if j in merge and out[j].strip().isdigit() and out[j + 1].strip().isdigit():
            out[j : j + 2] = [f"{out[j].strip()}.{out[j + 1].strip()}"]
        j += 1
    while len(out) > width and not out[-1].strip():
        out.pop()
    if len(out) < width:
        out += [""] * (width - len(out))
    return out if len(out) == width else None


# --------------------------------------------------------------------------- values
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)$")


def texts(values: Iterable[object]) -> np.ndarray:
    """Cells as a numpy object array of stripped ``str`` ('' for missing)."""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object, na_value="")
    return np.array(
        [v.strip() if v.__class__ is str else _text(v).strip() for v in values], dtype=object
    )


def parse_decimal(values: Iterable[object]) -> np.ndarray:
    """Parse numbers written with a decimal point or a decimal comma.

    Accepts ``6.5``, ``6,5``, ``117``, ``-3``; anything else (``nan``, ``inf``,
    exponents, thousands separators, text) gives NaN. Glucose never needs a thousands
    separator, so a single comma is always the decimal mark.

    Parameters
    ----------
    values : iterable
        Text cells.

    Returns
    -------
    numpy.ndarray
        float64, NaN where not a number.
    """
    return np.array(
        [float(x.replace(",", ".")) if _NUMBER.match(x) else np.nan for x in texts(values)],
        dtype="float64",
    )


def json_number(x: object, strings: bool = False) -> float | None:
    """A JSON value as a finite float, or None (booleans, text, overflow, NaN/inf).

    With ``strings=True`` a decimal number written as a string is accepted too
    (:func:`parse_decimal` rules).
    """
    if isinstance(x, bool):
        return None
    if isinstance(x, str):
        v = parse_decimal([x])[0] if strings else np.nan
    elif isinstance(x, int | float):
        try:
            v = float(x)
        except OverflowError:
            return None
    else:
        return None
    return float(v) if np.isfinite(v) else None


def glucose_from_text(
    text: Iterable[object], unit: str, floor: float, ceiling: float, factor: float = MGDL_PER_MMOL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Glucose cells -> mg/dL, flags and problems.

    ``Low``/``LO`` (case-insensitive) become ``floor`` with flag ``"low"`` and
    ``High``/``HI`` become ``ceiling`` with flag ``"high"`` (both in mg/dL, whatever
    ``unit`` is). Numbers in mmol/L are multiplied by ``factor``.

    Parameters
    ----------
    text : iterable
        Raw cells.
    unit : {"mg/dL", "mmol/L"}
        Unit of the numbers.
    floor, ceiling : float
        Device reporting limits in mg/dL.
    factor : float
        mg/dL per mmol/L.

    Returns
    -------
    glucose, flag, problem : numpy.ndarray
        float64 mg/dL (NaN when unusable), flag text, and the reason a row is unusable
        (empty string when usable).
    """
    s = texts(text)
    folded = np.array([x.casefold() for x in s], dtype=object)
    low = np.isin(folded, list(LOW_TEXT))
    high = np.isin(folded, list(HIGH_TEXT))
    g = parse_decimal(s)
    if unit == "mmol/L":
        g = g * factor
    g[low] = float(floor)
    g[high] = float(ceiling)
    flag = np.full(len(s), "", dtype=object)
    flag[low] = "low"
    flag[high] = "high"
    problem = np.full(len(s), "", dtype=object)
    problem[np.isnan(g)] = REASON_BAD_GLUCOSE
    problem[s == ""] = REASON_MISSING_GLUCOSE
    with np.errstate(invalid="ignore"):
        bad_range = ~np.isnan(g) & ~((g > GLUCOSE_MIN_MGDL) & (g <= GLUCOSE_MAX_MGDL))
    problem[bad_range] = REASON_IMPLAUSIBLE_GLUCOSE
    g[problem != ""] = np.nan
    return g, flag, problem


def parse_local_times(
    values: pd.Series, families: Sequence[Sequence[str]], sample: int = 2000
) -> tuple[pd.Series, int]:
    """Parse naive local timestamps, choosing one family of strptime formats.

    Formats inside a family are compatible alternatives (``T`` or space, with or
    without seconds) and are tried in turn for each cell. Families are exclusive
    (month-first vs day-first): the one that parses most of the first ``sample``
    non-empty cells is used for the whole column, ties going to the earlier family,
    so callers order families by preference (for example by the export's unit).

    Parameters
    ----------
    values : pandas.Series
        Text cells.
    families : sequence of sequence of str
        Format families.
    sample : int
        Number of cells used to choose the family.

    Returns
    -------
    times : pandas.Series
        ``datetime64`` naive (NaT where unparseable).
    family : int
        Index of the chosen family.
    """
    arr = texts(values)
    # pandas reads "now"/"today" whatever the format; timestamps start with a digit
    arr[np.array([not x[:1].isdigit() for x in arr], dtype=bool)] = ""
    nonempty = arr != ""

    def parse(x: np.ndarray, fmts: Sequence[str]) -> np.ndarray:
        out = np.full(len(x), np.datetime64("NaT"), dtype="datetime64[us]")
        todo = x != ""
        for fmt in fmts:
            if not todo.any():
                break
            got = pd.to_datetime(x[todo], format=fmt, errors="coerce")
            out[todo] = np.asarray(got, dtype="datetime64[us]")
            todo = todo & np.isnat(out)
        return out

    best = 0
    if len(families) > 1:
        head = arr[nonempty][:sample]
        best_n = -1
        for k, fmts in enumerate(families):
            n = int((~np.isnat(parse(head, fmts))).sum())
            if n > best_n:
                best, best_n = k, n
            if n == len(head):
                break
    return pd.Series(parse(arr, families[best]), index=values.index), best


ISO_8601 = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"(?:\s*(?:Z|[+-]\d{2}(?::?\d{2})?))?$",
    re.IGNORECASE,
)


def parse_iso_times(values: Iterable[object], utc: bool) -> pd.Series:
    """Parse ISO 8601 extended timestamps (``2015-06-06T16:50:27-05:00``).

    Cells that are not of that form give NaT (pandas alone would read words such as
    ``now`` and ``today``). ``utc=True`` converts offset-carrying values to UTC.
    """
    arr = texts(values)
    ok = np.array([bool(ISO_8601.match(x)) for x in arr], dtype=bool)
    arr[~ok] = ""
    s = pd.Series(arr, dtype=object).replace("", None)
    out = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=utc)
    if isinstance(values, pd.Series):
        out.index = values.index
    return out


def time_problems(times: pd.Series | np.ndarray, raw: Iterable[object]) -> np.ndarray:
    """Reason text for unusable timestamps ('' where usable)."""
    r = texts(raw)
    problem = np.full(len(r), "", dtype=object)
    problem[np.asarray(pd.isna(times))] = REASON_BAD_TIME
    problem[r == ""] = REASON_MISSING_TIME
    return problem


# --------------------------------------------------------------------------- time zones
def resolve_tz(tz: str | tzinfo | None) -> tuple[tzinfo, str]:
    """Validate the ``tz`` argument.

    Parameters
    ----------
    tz : str, tzinfo or None
        IANA name (``"Europe/Berlin"``), ``"UTC"``, a ``tzinfo``, or None.

    Returns
    -------
    tuple of (tzinfo, str)
        The zone and where it came from: ``"argument"`` or ``"default"`` (UTC).

    Raises
    ------
    GlucoseTableError
        For an unknown zone name or a wrong type.
    """
    if tz is None:
        return ZoneInfo("UTC"), "default"
    if isinstance(tz, tzinfo):
        return tz, "argument"
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz), "argument"
        except (ZoneInfoNotFoundError, ValueError):
            raise GlucoseTableError(f"unknown time zone {tz!r} (use an IANA name)") from None
    raise GlucoseTableError(f"tz must be a time-zone name or tzinfo, got {type(tz).__name__}")


def localize(
    naive: pd.Series,
    tz: tzinfo,
    order: np.ndarray | None = None,
    group: np.ndarray | None = None,
) -> tuple[pd.Series, pd.Series, int]:
    """Naive local times -> UTC with the module's DST rules.

    Parameters
    ----------
    naive : pandas.Series
        ``datetime64`` naive local times (NaT allowed, left as NaT).
    tz : tzinfo
        The device's zone.
    order : numpy.ndarray, optional
        Sort key giving the vendor's chronological order of the rows (default: the
        order of ``naive``). Used to resolve DST folds.
    group : numpy.ndarray, optional
        Rows of different groups (participants) are never in one run.

    Returns
    -------
    utc : pandas.Series
        ``datetime64[ns, UTC]``; NaT where the time is missing or rejected.
    problem : numpy.ndarray
        ``REASON_GAP``/``REASON_FOLD`` (or the implausible-time reason) where
        rejected, '' elsewhere.
    resolved : int
        Number of ambiguous times placed by the step-back rule.
    """
    n = len(naive)
    values = naive.to_numpy(dtype="datetime64[us]").copy()
    problem = np.full(n, "", dtype=object)
    # far-off years cannot be localised (and are implausible anyway): a day's margin
    # for the zone offset, the exact bounds are applied in UTC below
    far = ~np.isnat(values) & (
        (values < np.datetime64(TIME_MIN.tz_localize(None) - pd.Timedelta(days=1)))
        | (values >= np.datetime64(TIME_MAX.tz_localize(None) + pd.Timedelta(days=1)))
    )
    values[far] = np.datetime64("NaT")
    problem[far] = REASON_IMPLAUSIBLE_TIME
    idx = pd.DatetimeIndex(values)
    if n == 0:
        return pd.Series([], index=naive.index, dtype="datetime64[ns, UTC]"), problem, 0
    as_dst = idx.tz_localize(tz, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT")
    as_std = idx.tz_localize(tz, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT")
    valid = np.asarray(idx.notna())
    gap = valid & np.asarray(as_dst.isna())
    amb = valid & ~gap & np.asarray(as_dst != as_std)
    use_std = np.zeros(n, dtype=bool)
    unresolved = amb.copy()
    resolved = 0
    if amb.any():
        key = np.arange(n) if order is None else np.asarray(order)
        grp = np.zeros(n, dtype=np.int64) if group is None else pd.factorize(group)[0]
        seq = np.lexsort((np.arange(n), key, grp))
        seq = seq[valid[seq] & ~gap[seq]]
        ns = idx.asi8
        i = 0
        while i < len(seq):
            if not amb[seq[i]]:
                i += 1
                continue
            j = i
            while j < len(seq) and amb[seq[j]] and grp[seq[j]] == grp[seq[i]]:
                j += 1
            block = seq[i:j]
            steps = np.flatnonzero(np.diff(ns[block]) < 0)
            if len(steps) == 1:
                use_std[block[steps[0] + 1 :]] = True
                unresolved[block] = False
                resolved += len(block)
            i = j
    local = as_dst.where(~use_std, as_std)
    utc = pd.Series(local.tz_convert("UTC"), index=naive.index)
    utc[unresolved | gap] = pd.NaT
    problem[gap] = REASON_GAP
    problem[unresolved] = REASON_FOLD
    return to_utc_ns(utc, problem), problem, resolved


def to_utc_ns(utc: pd.Series, problem: np.ndarray) -> pd.Series:
    """Cast aware times to ``datetime64[ns, UTC]``; out-of-range times -> NaT.

    ``problem`` (object array) is updated in place with the implausible-time reason.
    """
    u = utc.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    bad = (u.notna() & ~((u >= TIME_MIN) & (u < TIME_MAX))).to_numpy()
    problem[bad & (problem == "")] = REASON_IMPLAUSIBLE_TIME
    u = u.where(~bad)
    return u.astype("datetime64[ns, UTC]")


# --------------------------------------------------------------------------- rejected rows
@dataclass
class Rejections:
    """Collector of rejected input rows (``file, row, field, value, reason``)."""

    file: str
    rows: list[int] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, row: int, field: str, value: object, reason: str) -> None:
        """Record one row."""
        self.rows.append(int(row))
        self.fields.append(field)
        self.values.append(_text(value))
        self.reasons.append(reason)

    def add_many(
        self,
        rows: Iterable[int],
        field: str | Iterable[str],
        values: Iterable[object],
        reason: str | Iterable[str],
    ) -> None:
        """Record several rows (``field`` and ``reason`` scalar or per row)."""
        rows = [int(r) for r in rows]
        n = len(rows)
        self.rows += rows
        self.fields += [field] * n if isinstance(field, str) else [str(f) for f in field]
        self.values += [_text(v) for v in values]
        self.reasons += [reason] * n if isinstance(reason, str) else [str(r) for r in reason]

    def frame(self) -> pd.DataFrame:
        """All records, sorted by row."""
        if not self.rows:
            return empty_rejected()
        out = pd.DataFrame(
            {
                "file": pd.Series([self.file] * len(self.rows), dtype="string"),
                "row": pd.Series(self.rows, dtype="Int64"),
                "field": pd.Series(self.fields, dtype="string"),
                "value": pd.Series(self.values, dtype="string"),
                "reason": pd.Series(self.reasons, dtype="string"),
            }
        )
        return out.sort_values("row", kind="stable").reset_index(drop=True)


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def finish(
    src: Source,
    fmt: str,
    cand: pd.DataFrame,
    rej: Rejections,
    info: dict[str, Any],
) -> GlucoseTable:
    """Turn candidate readings into the table, rejecting bad rows and duplicates.

    Parameters
    ----------
    src : Source
        The input.
    fmt : str
        Format name (for the report).
    cand : pandas.DataFrame
        One row per glucose reading row with columns ``id, time`` (UTC),
        ``glucose, flag, source_row, order, problem, problem_field, problem_value``;
        rows with a non-empty ``problem`` are rejected with it.
    rej : Rejections
        Rows already rejected by the reader (non-glucose rows etc.).
    info : dict
        Read metadata (``units``, ``tz``, ``tz_source``, ``notes``), stored in
        ``table.data.attrs["cgm"]``.

    Returns
    -------
    GlucoseTable

    Raises
    ------
    CGMFormatError
        When no reading is left.
    """
    n_candidates = len(cand)
    bad = (cand["problem"] != "").to_numpy()
    b = cand[bad]
    rej.add_many(b["source_row"], b["problem_field"], b["problem_value"], b["problem"])
    good = cand[~bad].sort_values(["id", "order", "source_row"], kind="stable")
    dup = good.duplicated(["id", "time"], keep="first").to_numpy()
    d = good[dup]
    rej.add_many(
        d["source_row"],
        "time",
        d["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        REASON_DUPLICATE,
    )
    good = good[~dup]
    rejected = rej.frame()
    if good.empty:
        if n_candidates:
            first = rejected[rejected["row"].isin(cand["source_row"])].iloc[0]
            raise CGMFormatError(
                src.file,
                f"no usable glucose reading: all {n_candidates} reading rows were rejected; "
                f"first: value {first['value']!r}: {first['reason']}",
                row=int(first["row"]),
                field=str(first["field"]),
            )
        raise CGMFormatError(
            src.file,
            f"no glucose readings ({len(rejected)} data rows, none of them a {fmt} "
            "CGM reading)",
        )
    data = pd.DataFrame(
        {
            "id": good["id"].astype("string"),
            "time": good["time"].astype("datetime64[ns, UTC]"),
            "glucose": good["glucose"].astype("float64"),
            "source_row": good["source_row"].astype("Int64"),
            "flag": good["flag"].astype("string").fillna(""),
        }
    )
    table = GlucoseTable.from_tidy(data, rejected)
    table.data.attrs["cgm"] = {
        "format": fmt,
        "file": src.file,
        "encoding": src.encoding,
        "units": info.get("units", "mg/dL"),
        "tz": info.get("tz", "UTC"),
        "tz_source": info.get("tz_source", "not needed"),
        "notes": list(info.get("notes", [])),
    }
    return table


def candidates(
    *,
    ids: object,
    time: pd.Series,
    glucose: Iterable[float],
    flag: Iterable[str],
    source_row: Iterable[int],
    order: Iterable[Any],
    problems: Sequence[tuple[Iterable[object], str | Iterable[object], Iterable[object]]],
) -> pd.DataFrame:
    """Assemble the frame :func:`finish` expects.

    ``problems`` lists ``(problem, field, raw value)`` triples in priority order
    (``field`` a name or one name per row); each row keeps its first non-empty problem.
    """
    index = time.index
    n = len(index)
    problem = np.full(n, "", dtype=object)
    pfield = np.full(n, "", dtype=object)
    pvalue = np.full(n, "", dtype=object)
    for prob, fname, raw in problems:
        p = texts(prob)
        take = (problem == "") & (p != "")
        if not take.any():
            continue
        problem[take] = p[take]
        pfield[take] = fname if isinstance(fname, str) else texts(fname)[take]
        pvalue[take] = texts(raw)[take]
    id_values = ids.to_numpy(dtype=object) if isinstance(ids, pd.Series) else [ids] * n
    return pd.DataFrame(
        {
            "id": pd.Series(id_values, index=index, dtype=object),
            "time": time,
            "glucose": pd.Series(np.asarray(glucose, dtype="float64"), index=index),
            "flag": pd.Series(np.asarray(flag, dtype=object), index=index),
            "source_row": pd.Series(np.asarray(list(source_row), dtype="int64"), index=index),
            "order": pd.Series(np.asarray(list(order), dtype="float64"), index=index),
            "problem": pd.Series(problem, index=index),
            "problem_field": pd.Series(pfield, index=index),
            "problem_value": pd.Series(pvalue, index=index),
        },
        index=index,
    )


def tz_info(
    tzone: tzinfo, source: str, *, naive: bool, units: str, notes: list[str]
) -> dict[str, Any]:
    """The ``info`` dict for :func:`finish` with the time-zone note."""
    name = str(getattr(tzone, "key", tzone))
    if not naive:
        if source == "argument":
            notes.append(f"tz={name} ignored: the file stores UTC instants")
        return {"units": units, "tz": "UTC", "tz_source": "not needed", "notes": notes}
    if source == "default":
        notes.append("no tz given: naive device times were read as UTC (pass tz=...)")
    return {"units": units, "tz": name, "tz_source": source, "notes": notes}


def fold_note(resolved: int, detail: str = "") -> str:
    """The read-report note for ``resolved`` readings placed in a DST fold."""
    note = f"{resolved} readings in a DST fold placed by the step-back rule"
    return f"{note} ({detail})" if detail else note


def finish_local(
    src: Source,
    fmt: str,
    rej: Rejections,
    *,
    id: str | None,
    tz: tzinfo,
    tz_source: str,
    unit: str,
    floor: float,
    ceiling: float,
    lines: Sequence[int],
    order: Iterable[Any],
    naive: pd.Series,
    raw_t: pd.Series,
    time_field: str,
    raw_g: pd.Series,
    glucose_field: str | Iterable[object],
    notes: list[str],
    fold_detail: str = "",
) -> GlucoseTable:
    """Finish the read of a one-participant export with naive local device times.

    Glucose cells are converted (:func:`glucose_from_text` with the device's ``floor`` and
    ``ceiling``), the times localised in ``tz`` with DST folds ordered by ``order`` (a
    :func:`fold_note` with ``fold_detail`` is added to ``notes`` when any were placed), and
    the readings handed to :func:`finish` with the problems in priority order: unparseable
    time, glucose, DST gap/fold. The participant is ``id`` or the file name without suffix.
    """
    glucose, flag, gprob = glucose_from_text(raw_g, unit, floor, ceiling)
    utc, zprob, resolved = localize(naive, tz, np.asarray(order))
    if resolved:
        notes.append(fold_note(resolved, fold_detail))
    cand = candidates(
        ids=id or src.stem,
        time=utc,
        glucose=glucose,
        flag=flag,
        source_row=lines,
        order=order,
        problems=[
            (time_problems(naive, raw_t), time_field, raw_t),
            (gprob, glucose_field, raw_g),
            (zprob, time_field, raw_t),
        ],
    )
    info = tz_info(tz, tz_source, naive=True, units=unit, notes=notes)
    return finish(src, fmt, cand, rej, info)


@dataclass
class Records:
    """Per-record columns of a JSON export that stores UTC instants.

    One entry per accepted record (``row`` is its 0-based index in the JSON array) with
    its time, glucose in mg/dL, flag, raw value and the one problem found (``""`` if none)
    with the field it concerns.
    """

    rows: list[int] = field(default_factory=list)
    times: list[Any] = field(default_factory=list)
    glucose: list[float] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)

    def add(
        self, row: int, time: Any, glucose: float, flag: str, raw: object, problem: str,
        problem_field: str,
    ) -> None:
        """Record one record."""
        self.rows.append(row)
        self.times.append(time)
        self.glucose.append(glucose)
        self.flags.append(flag)
        self.raws.append("" if raw is None else str(raw))
        self.problems.append(problem)
        self.fields.append(problem_field)

    def finish(
        self,
        src: Source,
        fmt: str,
        rej: Rejections,
        *,
        id: str | None,
        time: pd.Series,
        problems: Iterable[object],
        tz: tzinfo,
        tz_source: str,
        units: str,
    ) -> GlucoseTable:
        """Hand the records to :func:`finish` with their UTC ``time`` and ``problems``."""
        cand = candidates(
            ids=id or src.stem,
            time=time,
            glucose=self.glucose,
            flag=self.flags,
            source_row=self.rows,
            order=self.rows,
            problems=[(problems, self.fields, self.raws)],
        )
        info = tz_info(tz, tz_source, naive=False, units=units, notes=[])
        return finish(src, fmt, cand, rej, info)


# --------------------------------------------------------------------------- report
def rejected_counts(table: GlucoseTable) -> pd.Series:
    """Rejected rows by reason, most frequent first.

    Parameters
    ----------
    table : GlucoseTable
        A table returned by :func:`isletsim.read_cgm`.

    Returns
    -------
    pandas.Series
        Counts (int64) indexed by reason, named ``"rows"``.
    """
    counts = table.rejected.groupby("reason", sort=False).size()
    return counts.sort_values(ascending=False, kind="stable").rename("rows").astype("int64")


def read_report(table: GlucoseTable) -> str:
    """A plain-text report of a read: format, time zone, readings, flags, rejections.

    Parameters
    ----------
    table : GlucoseTable
        A table returned by :func:`isletsim.read_cgm`.

    Returns
    -------
    str
    """
    info = table.data.attrs.get("cgm", {})
    flags = table.data["flag"].value_counts()
    lines = [
        f"file: {info.get('file', '?')} (format {info.get('format', '?')}, "
        f"encoding {info.get('encoding', '?')}, units {info.get('units', '?')})",
        f"time zone: {info.get('tz', '?')} ({info.get('tz_source', '?')})",
        f"readings: {len(table.data)} for {table.data['id'].nunique()} participant(s); "
        f"low-flagged {int(flags.get('low', 0))}, high-flagged {int(flags.get('high', 0))}",
        f"rejected rows: {len(table.rejected)}",
    ]
    lines += [f"  {n:6d}  {reason}" for reason, n in rejected_counts(table).items()]
    lines += [f"note: {note}" for note in info.get("notes", [])]
    return "\n".join(lines)


def warn_assumptions(table: GlucoseTable, stacklevel: int = 3) -> None:
    """Emit a :class:`CGMWarning` when naive times were read under the UTC default."""
    info = table.data.attrs.get("cgm", {})
    if info.get("tz_source") == "default":
        warnings.warn(
            f"{info.get('file')}: no tz given; naive {info.get('format')} device times "
            "were read as UTC. Pass tz='Area/City' for the device's time zone.",
            CGMWarning,
            stacklevel=stacklevel,
        )
