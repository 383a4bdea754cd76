"""Property tests: whatever the bytes, read_cgm returns a consistent table or raises
CGMFormatError (never another exception)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import warnings
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isletsim.glucose_table import COLUMNS, GlucoseTable
from isletsim.io import CGMFormatError, CGMWarning, read_cgm
from isletsim.io.cgm import FORMATS

DATA = Path(__file__).resolve().parent.parent / "data"
FIX = DATA / "cgm_exports"
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _mini_csv(name: str, head: int, tail: int) -> str:
    lines = (FIX / name).read_text(encoding="utf-8-sig").splitlines()
    return "\r\n".join(lines[:head] + lines[-tail:]) + "\r\n"


def _mini_json(name: str, keep: int) -> str:
    recs = json.loads((FIX / name).read_text())

    def special(r: dict) -> bool:
        sgv = r.get("sgv")
        return r.get("type") not in ("sgv", "cbg") or "annotations" in r or (
            isinstance(sgv, int) and not 40 <= sgv <= 400) or r.get("_id", "").endswith("d0d1")

    picked = recs[:keep] + [r for r in recs[keep:] if special(r)][:12]
    return "[\n" + ",\n".join(json.dumps(r) for r in picked) + "\n]\n"


# Small versions of every fixture keep each example fast.
MINI = {
    "dexcom_g7": _mini_csv("dexcom_clarity_g7_mgdl.csv", 40, 10),
    "dexcom_g6": "\ufeff" + _mini_csv("dexcom_clarity_g6_mmol.csv", 40, 10),
    "libre_us": _mini_csv("libreview_us_mgdl.csv", 40, 10),
    "libre_de": "\ufeff" + _mini_csv("libreview_de_mmol_decimal_comma.csv", 40, 10),
    "carelink": "\ufeff" + _mini_csv("carelink_780g_eu_semicolon.csv", 30, 30),
    "nightscout": _mini_json("nightscout_entries.json", 30),
    "tidepool": _mini_json("tidepool_cbg.json", 30),
    "generic": _mini_csv("../cgm/example_data_5_subject.csv", 60, 5),
}
FULL = {p.name: p.read_bytes() for p in sorted(FIX.glob("*.*")) if p.suffix in (".csv", ".json")}


def check_table(t: GlucoseTable) -> None:
    d, r = t.data, t.rejected
    assert list(d.columns) == list(COLUMNS)
    assert len(d) > 0
    assert str(d["time"].dtype) == "datetime64[ns, UTC]"
    assert d["time"].notna().all()
    assert d["glucose"].gt(0).all() and d["glucose"].le(1000).all()
    assert set(d["flag"]) <= {"", "low", "high"}
    assert not d.duplicated(["id", "time"]).any()
    rows = list(d["source_row"]) + list(r["row"])
    assert len(rows) == len(set(rows)), "a row is reported twice"
    assert r["reason"].str.len().gt(0).all()


def attempt(data: bytes, fmt: str = "auto", suffix: str = ".csv") -> GlucoseTable | None:
    """Read ``data``; None when it raised CGMFormatError. Any other exception fails."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"input{suffix}"
        f.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CGMWarning)
            try:
                table = read_cgm(f, fmt, tz="Europe/Berlin")
            except CGMFormatError as exc:
                assert str(f) in str(exc)
                return None
    check_table(table)
    return table


@SETTINGS
@given(st.binary(max_size=1500), st.sampled_from(("auto", *FORMATS)))
def test_random_bytes(data, fmt):
    attempt(data, fmt)


_CSV_TEXT = st.text(
    alphabet=st.sampled_from("0123456789-:T ,;.\"\n\r\tZ+LowHighEGV/abcé\x00"),
    max_size=400,
)


@SETTINGS
@given(st.sampled_from(sorted(MINI)), _CSV_TEXT, st.sampled_from(("auto", *FORMATS)))
def test_real_header_random_body(name, body, fmt):
    text = MINI[name]
    cut = text.index("\n", text.index("\n") + 1) + 1  # first two lines (header region)
    attempt((text[:cut] + body).encode("utf-8"), fmt)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20,
)
_WILD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(), st.text(max_size=30),
    st.sampled_from(["2026-01-01T00:00:00Z", "now", "2026-13-01T00:00Z", "39", "401", 10**400,
                     1e308, -1e308, "1775000000000", "nan", "1e5"]),
)
_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["sgv", "cbg", "mbg", "cal", "smbg", "upload", "x"]),
        "sgv": _WILD, "date": _WILD, "dateString": _WILD, "value": _WILD, "time": _WILD,
        "units": st.sampled_from(["mg/dL", "mmol/L", "mmol/l", "g/L"]) | _WILD,
        "annotations": st.lists(st.fixed_dictionaries(
            {"code": st.just("bg/out-of-range")},
            optional={"value": st.sampled_from(["low", "high", "mid"]), "threshold": _WILD},
        ), max_size=2),
    },
)


@SETTINGS
@given(st.one_of(_JSON, st.lists(_ENTRY, max_size=12)),
       st.sampled_from(("auto", "nightscout", "tidepool")))
def test_random_json(doc, fmt):
    attempt(json.dumps(doc).encode("utf-8"), fmt, ".json")


@SETTINGS
@given(st.sampled_from(sorted(MINI)), st.data())
def test_mutated_fixture_lines(name, data):
    lines = MINI[name].splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["delete", "duplicate", "replace", "insert", "cut",
                                        "cell", "swap"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "replace":
            lines[i] = data.draw(_CSV_TEXT)
        elif op == "insert":
            lines.insert(i, data.draw(_CSV_TEXT))
        elif op == "cut":
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
        elif op == "cell":
            sep = ";" if ";" in lines[i] else ","
            cells = lines[i].split(sep)
            k = data.draw(st.integers(0, len(cells) - 1))
            cells[k] = data.draw(st.sampled_from(["", "Low", "HI", "abc", "-1", "1e9", "NaN",
                                                  "6,5", "\"", "2026-03-08T02:30:00", "0",
                                                  "9999-12-31T23:59:59", "0001-01-01 00:00"]))
            lines[i] = sep.join(cells)
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    suffix = ".json" if name in ("nightscout", "tidepool") else ".csv"
    attempt("\n".join(lines).encode("utf-8"), "auto", suffix)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FULL)), st.floats(0, 1))
def test_truncated_files(name, frac):
    data = FULL[name]
    suffix = Path(name).suffix
    t = attempt(data[: int(len(data) * frac)], "auto", suffix)
    if t is not None and suffix == ".csv" and frac < 1:
        full = attempt(data, "auto", suffix)
        assert full is not None and len(t.data) <= len(full.data) + 1


def _permute(text: str, perm: list[int], delimiter: str, skip) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        if skip(cells) or len(cells) != len(perm):
            w.writerow(cells)
        else:
            w.writerow([cells[p] for p in perm])
    return out.getvalue()


PERMUTABLE = {
    # name: (delimiter, number of columns, rows left as they are)
    "dexcom_g7": (",", 14, lambda c: False),
    "dexcom_g6": (",", 14, lambda c: False),
    "libre_us": (",", 19, lambda c: False),
    "libre_de": (",", 19, lambda c: False),
    "carelink": (";", 54, lambda c: bool(c) and c[0].lstrip("\ufeff").startswith("-------")),
    "generic": (",", 3, lambda c: False),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(PERMUTABLE)), st.data())
def test_random_column_order(name, data):
    delimiter, width, skip = PERMUTABLE[name]
    perm = data.draw(st.permutations(range(width)))
    text = MINI[name]
    a = attempt(text.encode("utf-8"))
    b = attempt(_permute(text, perm, delimiter, skip).encode("utf-8"))
    assert a is not None and b is not None
    pd.testing.assert_frame_equal(a.data, b.data)
    if name == "carelink":  # the reason names the first non-empty event column
        assert list(a.rejected["row"]) == list(b.rejected["row"])
    else:
        pd.testing.assert_frame_equal(a.rejected.drop(columns="file"),
                                      b.rejected.drop(columns="file"))
