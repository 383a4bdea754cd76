"""Tests of isletsim.read_cgm on the synthetic device exports and the iglu example data."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from isletsim.glucose_table import GlucoseTableError
from isletsim.io import CGMFormatError, CGMWarning, read_cgm, read_report, rejected_counts
from isletsim.io.cgm import libreview
from isletsim.io.cgm._common import (
    REASON_DUPLICATE,
    REASON_FOLD,
    REASON_GAP,
    load_source,
    resolve_tz,
)
from isletsim.io.cgm.detect import detect_format
from isletsim.units import MGDL_PER_MMOLL

DATA = Path(__file__).resolve().parent.parent / "data"
FIX = DATA / "cgm_exports"
IGLU_5 = DATA / "cgm" / "example_data_5_subject.csv"

G7 = FIX / "dexcom_clarity_g7_mgdl.csv"
G6 = FIX / "dexcom_clarity_g6_mmol.csv"
LIBRE_US = FIX / "libreview_us_mgdl.csv"
LIBRE_DE = FIX / "libreview_de_mmol_decimal_comma.csv"
CARELINK = FIX / "carelink_780g_eu_semicolon.csv"
NIGHTSCOUT = FIX / "nightscout_entries.json"
TIDEPOOL = FIX / "tidepool_cbg.json"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if "+" in text or "Z" in text else pd.Timestamp(
        text, tz="UTC"
    )


# --------------------------------------------------------------------------- fixtures
# name, format, readings, first UTC, last UTC, low, high, data rows, some rejected reasons
EXPECTED = [
    (G7, "dexcom", 858, "2026-03-06T00:00:47Z", "2026-03-08T23:55:47Z", 6, 13, 871,
     {"not a glucose reading: Alert": 7, "not a glucose reading: Insulin": 2,
      "not a glucose reading: Carbs": 1}),
    (G6, "dexcom", 864, "2026-05-11T00:00:17Z", "2026-05-13T23:55:17Z", 5, 16, 870,
     {"not a CGM reading: Calibration": 2, "not a glucose reading: DateOfBirth": 1}),
    (LIBRE_US, "libreview", 288, "2026-03-06T00:03Z", "2026-03-08T23:48Z", 0, 0, 325,
     {libreview.SCAN_REASON: 27, "not a glucose reading: insulin (record type 4)": 6,
      "not a glucose reading: food (record type 5)": 3}),
    (LIBRE_DE, "libreview", 288, "2026-03-27T00:07Z", "2026-03-29T23:52Z", 0, 0, 325,
     {libreview.SCAN_REASON: 27, "not a glucose reading: note or event (record type 6)": 1}),
    (CARELINK, "carelink", 864, "2026-03-28T00:00:31Z", "2026-03-31T00:55:31Z", 0, 0, 877,
     {"not a glucose reading: Aggregated Auto Insulin Data (daily total)": 3,
      "not a glucose reading: Bolus Type": 9, "not a glucose reading: Alert": 1}),
    (NIGHTSCOUT, "nightscout", 576, "2026-04-01T05:01:22.779Z", "2026-04-03T04:56:22.207Z",
     5, 19, 580,
     {"duplicate": 1, "CGM error code 5 (SENSOR_NOT_CALIBRATED)": 1,
      "not a CGM reading: mbg": 1, "not a glucose reading: cal": 1}),
    (TIDEPOOL, "tidepool", 576, "2026-06-14T07:02:43Z", "2026-06-16T06:57:43Z", 5, 18, 578,
     {"not a glucose reading: upload": 1, "not a CGM reading: smbg": 1}),
]
IDS = [e[0].name for e in EXPECTED]


def data_rows(path: Path, fmt: str) -> set[int]:
    """Row numbers of every data row, computed independently of the readers."""
    if fmt in ("nightscout", "tidepool"):
        return set(range(len(json.loads(path.read_text(encoding="utf-8")))))
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if fmt == "carelink":
        return {i + 1 for i, ln in enumerate(lines) if re.match(r"^\d+,\d+;", ln)}
    first = {"dexcom": "Index,", "libreview": ("Device,", "Gerät,")}[fmt]
    header = next(i for i, ln in enumerate(lines) if ln.startswith(first))
    return {i + 1 for i, ln in enumerate(lines) if i > header and ln.strip()}


@pytest.mark.parametrize(
    ("path", "fmt", "n", "first", "last", "n_low", "n_high", "n_rows", "reasons"),
    EXPECTED,
    ids=IDS,
)
def test_fixture_readings(path, fmt, n, first, last, n_low, n_high, n_rows, reasons):
    table = read_cgm(path, tz="UTC")
    d, r = table.data, table.rejected
    assert len(d) == n
    assert d["time"].iloc[0] == ts(first)
    assert d["time"].iloc[-1] == ts(last)
    assert d["time"].is_monotonic_increasing
    assert str(d["time"].dtype) == "datetime64[ns, UTC]"
    assert (d["flag"] == "low").sum() == n_low
    assert (d["flag"] == "high").sum() == n_high
    counts = rejected_counts(table)
    for reason, k in reasons.items():
        assert counts[reason] == k, reason
    # every data row is accounted for exactly once
    assert len(d) + len(r) == n_rows
    used = list(d["source_row"]) + list(r["row"])
    assert len(set(used)) == len(used)
    assert set(used) == data_rows(path, fmt)
    assert (r["file"] == str(path)).all()
    assert d["id"].unique().tolist() == [path.stem]
    assert d["glucose"].between(39, 500).all()  # 2.2 mmol/L = 39.6 mg/dL


@pytest.mark.parametrize(("path", "fmt"), [(e[0], e[1]) for e in EXPECTED], ids=IDS)
def test_auto_detection_uses_content(path, fmt, tmp_path):
    assert detect_format(load_source(path)) == fmt
    renamed = tmp_path / "export.txt"  # no hint in the name or suffix
    renamed.write_bytes(path.read_bytes())
    auto = read_cgm(renamed, tz="UTC", id="p1")
    explicit = read_cgm(renamed, fmt, tz="UTC", id="p1")
    pd.testing.assert_frame_equal(auto.data, explicit.data)
    assert auto.data.attrs["cgm"]["format"] == fmt


def test_generic_detection(tmp_path):
    f = tmp_path / "x.dat"
    f.write_text("subject;timestamp;glucose\nA;2026-01-01 00:00;100\n")
    assert detect_format(load_source(f)) == "generic"


def test_low_high_values_at_device_limits():
    for path, floor, ceiling in ((G7, 40, 400), (G6, 40, 400), (NIGHTSCOUT, 40, 400),
                                 (TIDEPOOL, 40, 400)):
        d = read_cgm(path, tz="UTC").data
        assert (d.loc[d["flag"] == "low", "glucose"] == floor).all()
        assert (d.loc[d["flag"] == "high", "glucose"] == ceiling).all()
        plain = d.loc[d["flag"] == "", "glucose"]
        assert plain.between(floor - 1, ceiling + 1).all()  # mmol/L rounding


def test_libre_scans_kept_on_request_with_lo_hi():
    zone, source = resolve_tz("UTC")
    us = libreview.read(load_source(LIBRE_US), tz=zone, tz_source=source, id=None, scans=True)
    flagged = us.data[us.data["flag"] != ""]
    assert flagged["flag"].tolist() == ["high", "low"]
    assert flagged["glucose"].tolist() == [500.0, 40.0]
    assert len(us.data) + len(us.rejected) == 325
    # the scan that falls on the minute of a historic reading is the duplicate
    assert rejected_counts(us)[REASON_DUPLICATE] == 1
    de = libreview.read(load_source(LIBRE_DE), tz=zone, tz_source=source, id=None, scans=True)
    assert de.data.loc[de.data["flag"] == "low", "glucose"].tolist() == [40.0]


def test_source_rows_point_at_the_input():
    d = read_cgm(G7, tz="UTC").data
    line12 = G7.read_text().splitlines()[11]
    assert d["source_row"].iloc[0] == 12 and line12.startswith("11,2026-03-06T00:00:47,EGV")
    ns = read_cgm(NIGHTSCOUT).data
    entries = json.loads(NIGHTSCOUT.read_text())
    k = int(ns["source_row"].iloc[0])
    assert entries[k]["date"] == int(ns["time"].iloc[0].value // 10**6)
    assert k == len(entries) - 1  # the API lists newest first


# --------------------------------------------------------------------------- units
def test_mmol_conversions():
    raw = pd.read_csv(G6, encoding="utf-8-sig")
    egv = raw[raw["Event Type"] == "EGV"]
    numeric = pd.to_numeric(egv["Glucose Value (mmol/L)"], errors="coerce").dropna()
    d = read_cgm(G6, tz="UTC").data
    plain = d[d["flag"] == ""].set_index("source_row")["glucose"]
    plain.index = plain.index.astype("int64")
    expected = numeric * MGDL_PER_MMOLL
    expected.index = egv.loc[numeric.index, "Index"].astype(int) + 1  # line = Index + 1
    pd.testing.assert_series_equal(
        plain.sort_index(), expected.sort_index(), check_names=False, check_index_type=False
    )
    assert d["glucose"].iloc[0] == pytest.approx(6.4 * 18.016)
    de = read_cgm(LIBRE_DE, tz="UTC").data
    assert de["glucose"].iloc[0] == pytest.approx(6.5 * 18.016)  # "6,5"
    tp = read_cgm(TIDEPOOL).data
    assert tp["glucose"].iloc[0] == 117.0  # 6.494375... * 18.01559, rounded
    assert (tp["glucose"] == tp["glucose"].round()).all()


def test_tidepool_factor_boundary(tmp_path):
    recs = [
        {"type": "cbg", "units": "mmol/L", "value": 180 / 18.01559, "time": "2026-01-01T00:00:00Z"},
        {"type": "cbg", "units": "mmol/L", "value": 10.0, "time": "2026-01-01T00:05:00Z"},
        {"type": "cbg", "units": "mg/dL", "value": 181, "time": "2026-01-01T00:10:00Z"},
        {"type": "cbg", "units": "mmol/L", "value": 2.1, "time": "2026-01-01T00:15:00Z",
         "annotations": [{"code": "bg/out-of-range", "value": "low", "threshold": 40}]},
    ]
    f = tmp_path / "tp.json"
    f.write_text(json.dumps(recs))
    d = read_cgm(f).data
    assert d["glucose"].tolist() == [180.0, 180.0, 181.0, 40.0]
    assert d["flag"].tolist() == ["", "", "", "low"]


def test_generic_units(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("id,time,gl (mmol/L)\na,2026-01-01T00:00:00Z,10.0\na,2026-01-01T00:05:00Z,Low\n")
    d = read_cgm(f).data
    assert d["glucose"].tolist() == [pytest.approx(180.16), 40.0]
    assert d["flag"].tolist() == ["", "low"]
    f.write_text("time;glucose;units\n2026-01-01 00:00;5,5;mmol/L\n2026-01-01 00:05;6,0;mmol/l\n")
    t = read_cgm(f, tz="UTC", id="solo")
    assert t.data["glucose"].tolist() == pytest.approx([5.5 * 18.016, 6.0 * 18.016])
    assert t.data["id"].tolist() == ["solo", "solo"]


def test_mixed_units_raise(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("id,time,gl,units\na,2026-01-01T00:00:00Z,100,mg/dL\n"
                 "a,2026-01-01T00:05:00Z,6.1,mmol/L\n")
    with pytest.raises(CGMFormatError, match=r"g\.csv, row 3, field 'units': mixed units"):
        read_cgm(f)
    lines = LIBRE_US.read_text().splitlines()
    lines[1] = lines[1].replace("Scan Glucose mg/dL", "Scan Glucose mmol/L")
    f2 = tmp_path / "libre.csv"
    f2.write_text("\n".join(lines))
    with pytest.raises(CGMFormatError, match="mixed units"):
        read_cgm(f2, tz="UTC")
    text = CARELINK.read_text(encoding="utf-8-sig")
    head, _, tail = text.rpartition("Sensor Glucose (mg/dL)")
    f3 = tmp_path / "cl.csv"
    f3.write_text(head + "Sensor Glucose (mmol/L)" + tail)
    with pytest.raises(CGMFormatError, match=r"row \d+, field 'Sensor Glucose \(mmol/l\)': mixed"):
        read_cgm(f3, tz="UTC")


# --------------------------------------------------------------------------- time zones
def test_default_tz_warns_and_is_reported():
    with pytest.warns(CGMWarning, match="read as UTC"):
        table = read_cgm(G7)
    info = table.data.attrs["cgm"]
    assert info["tz"] == "UTC" and info["tz_source"] == "default"
    assert "naive device times were read as UTC" in read_report(table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_cgm(G7, tz="America/New_York")
        read_cgm(NIGHTSCOUT)
        read_cgm(TIDEPOOL)


def test_dst_gap_dexcom_us():
    table = read_cgm(G7, tz="America/New_York")
    d, r = table.data, table.rejected
    gap = r[r["reason"] == REASON_GAP]
    assert len(gap) == 12
    assert gap["value"].str.startswith("2026-03-08T02:").all()
    assert len(d) + len(r) == 871
    assert d["time"].iloc[0] == ts("2026-03-06T05:00:47Z")  # EST = UTC-5
    assert d["time"].iloc[-1] == ts("2026-03-09T03:55:47Z")  # EDT = UTC-4
    steps = d["time"].diff().dropna().value_counts()
    assert steps.to_dict() == {pd.Timedelta("5min"): 844, pd.Timedelta("35min"): 1}
    before = d[d["time"] == ts("2026-03-08T06:55:47Z")]  # 01:55:47 EST
    after = d[d["time"] == ts("2026-03-08T07:00:47Z")]  # 03:00:47 EDT
    assert len(before) == 1 and len(after) == 1


def test_dst_gap_libre_eu_and_us():
    de = read_cgm(LIBRE_DE, tz="Europe/Berlin")
    gap = de.rejected[de.rejected["reason"] == REASON_GAP]
    assert gap["value"].tolist() == [f"29-03-2026 02:{m}" for m in ("07", "22", "37", "52")]
    assert de.data["time"].iloc[0] == ts("2026-03-26T23:07Z")
    us = read_cgm(LIBRE_US, tz="America/New_York")
    assert (us.rejected["reason"] == REASON_GAP).sum() == 4
    assert (us.data["time"].diff().dropna() == pd.Timedelta("15min")).all()


def test_carelink_dst_newest_first():
    table = read_cgm(CARELINK, tz="Europe/Berlin")
    d = table.data
    assert not table.rejected["reason"].str.contains("DST").any()
    assert d["time"].iloc[0] == ts("2026-03-27T23:00:31Z")
    assert d["time"].iloc[-1] == ts("2026-03-30T22:55:31Z")
    assert (d["time"].diff().dropna() == pd.Timedelta("5min")).all()
    assert "rows are newest first" in table.data.attrs["cgm"]["notes"]


def _fold_readings(zone: str, start_utc: str, n: int) -> list[tuple[datetime, datetime]]:
    z = ZoneInfo(zone)
    t0 = datetime.fromisoformat(start_utc).replace(tzinfo=UTC)
    out = []
    for k in range(n):
        u = t0 + timedelta(minutes=5 * k)
        out.append((u, u.astimezone(z).replace(tzinfo=None)))
    return out


def _dexcom_file(path: Path, rows: list[tuple[int, datetime, int | None]]) -> None:
    header = G7.read_text().splitlines()[0]
    lines = [header]
    for i, (g, local, tx) in enumerate(rows, start=1):
        lines.append(f"{i},{local:%Y-%m-%dT%H:%M:%S},EGV,,,,iOS G7,{g},,,,,"
                     f"{'' if tx is None else tx},{'' if tx is None else 'SYN7X1'}")
    path.write_text("\n".join(lines) + "\n")


def test_dst_fold_resolved_by_file_order(tmp_path):
    # America/New_York falls back 2026-11-01 02:00 EDT -> 01:00 EST
    readings = _fold_readings("America/New_York", "2026-11-01T04:32:10", 36)
    f = tmp_path / "fold.csv"
    _dexcom_file(f, [(100 + k, local, None) for k, (_, local) in enumerate(readings)])
    table = read_cgm(f, tz="America/New_York")
    assert table.rejected.empty
    assert table.data["time"].tolist() == [pd.Timestamp(u) for u, _ in readings]
    assert any("DST fold" in n for n in table.data.attrs["cgm"]["notes"])


def test_dst_fold_sorted_by_local_time(tmp_path):
    readings = _fold_readings("America/New_York", "2026-11-01T04:32:10", 36)
    by_local = sorted(enumerate(readings), key=lambda kv: kv[1][1])
    f = tmp_path / "fold_sorted.csv"
    # without Transmitter Time the two passes cannot be told apart: rejected
    _dexcom_file(f, [(100 + k, local, None) for k, (_, local) in by_local])
    table = read_cgm(f, tz="America/New_York")
    fold = table.rejected[table.rejected["reason"] == REASON_FOLD]
    assert len(fold) == 24  # 01:00-01:59 twice, 5-minute readings
    assert fold["value"].str.startswith("2026-11-01T01:").all()
    assert len(table.data) == 12
    # with Transmitter Time (the vendor's order key) they are placed correctly
    _dexcom_file(f, [(100 + k, local, 5000 + 300 * k) for k, (_, local) in by_local])
    table = read_cgm(f, tz="America/New_York")
    assert table.rejected.empty
    got = table.data.set_index("glucose")["time"]
    for k, (u, _) in enumerate(readings):
        assert got[100 + k] == pd.Timestamp(u)


def test_dst_fold_carelink_newest_first(tmp_path):
    # Europe/Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET
    readings = _fold_readings("Europe/Berlin", "2026-10-24T23:31:00", 30)
    text = CARELINK.read_text(encoding="utf-8-sig").splitlines()
    header = next(ln for ln in text if ln.startswith("Index;"))
    width = header.count(";") + 1
    sg = header.split(";").index("Sensor Glucose (mg/dL)")
    rows = []
    for k, (_, local) in reversed(list(enumerate(readings))):
        cells = [""] * width
        cells[0], cells[1], cells[2] = f"{k},00000", f"{local:%Y/%m/%d}", f"{local:%H:%M:%S}"
        cells[sg] = str(100 + k)
        rows.append(";".join(cells))
    f = tmp_path / "cl.csv"
    f.write_text("\n".join([*text[:6], header, *rows]) + "\n")
    table = read_cgm(f, tz="Europe/Berlin")
    assert table.rejected.empty
    got = table.data.set_index("glucose")["time"]
    for k, (u, _) in enumerate(readings):
        assert got[100 + k] == pd.Timestamp(u)


def test_generic_naive_times_localised_per_participant(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("id,time,gl\nb,2026-07-01 12:00:00,100\na,2026-07-01 12:00:00,110\n")
    d = read_cgm(f, tz="America/Chicago").data
    assert d["id"].tolist() == ["a", "b"]
    assert (d["time"] == ts("2026-07-01T17:00:00Z")).all()


# --------------------------------------------------------------------------- duplicates
def test_nightscout_duplicate_and_error_code():
    entries = json.loads(NIGHTSCOUT.read_text())
    table = read_cgm(NIGHTSCOUT)
    r = table.rejected.set_index("row")
    dup = next(i for i, e in enumerate(entries) if e["_id"].endswith("d0d1"))
    orig = next(i for i, e in enumerate(entries)
                if e["date"] == entries[dup]["date"] and i != dup)
    assert r.loc[dup, "reason"] == REASON_DUPLICATE
    assert orig in set(table.data["source_row"])
    code = next(i for i, e in enumerate(entries) if e.get("sgv") == 5)
    assert r.loc[code, "reason"] == "CGM error code 5 (SENSOR_NOT_CALIBRATED)"


def test_nightscout_near_duplicates(tmp_path):
    base = 1_775_000_000_000
    entries = [
        {"type": "sgv", "sgv": 120, "date": base, "device": "a"},
        {"type": "sgv", "sgv": 120, "date": base + 12_000, "device": "b"},  # same reading
        {"type": "sgv", "sgv": 125, "date": base + 15_000, "device": "b"},  # other value
        {"type": "sgv", "sgv": 120, "date": base + 300_000, "device": "a"},  # next reading
    ]
    f = tmp_path / "ns.json"
    f.write_text(json.dumps(entries))
    t = read_cgm(f)
    assert t.data["source_row"].tolist() == [0, 2, 3]
    assert t.rejected["row"].tolist() == [1]
    assert t.rejected["reason"].tolist() == [REASON_DUPLICATE]


def test_dexcom_duplicate_timestamp_keeps_first(tmp_path):
    lines = G7.read_text().splitlines()
    egv = next(i for i, ln in enumerate(lines) if ",EGV," in ln)
    copy = lines[egv].split(",")
    copy[7] = "222"
    lines.insert(egv + 1, ",".join(copy))
    f = tmp_path / "dup.csv"
    f.write_text("\n".join(lines) + "\n")
    t = read_cgm(f, tz="UTC")
    dup = t.rejected[t.rejected["reason"] == REASON_DUPLICATE]
    assert dup["row"].tolist() == [egv + 2]
    assert t.data["source_row"].iloc[0] == egv + 1
    assert t.data["glucose"].iloc[0] == 119.0


# --------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_exports(tmp_path, encoding):
    f = tmp_path / "u16.csv"
    f.write_bytes(LIBRE_DE.read_text(encoding="utf-8-sig").encode(encoding))
    a = read_cgm(f, tz="UTC", id="x").data
    b = read_cgm(LIBRE_DE, tz="UTC", id="x").data
    pd.testing.assert_frame_equal(a, b)


def test_latin1_export(tmp_path):
    f = tmp_path / "latin1.csv"
    f.write_bytes(LIBRE_DE.read_text(encoding="utf-8-sig").encode("latin-1"))
    t = read_cgm(f, tz="UTC", id="x")
    assert t.data.attrs["cgm"]["encoding"] == "latin-1"
    assert len(t.data) == 288


def test_unquoted_decimal_commas(tmp_path):
    text = LIBRE_DE.read_text(encoding="utf-8-sig")
    broken = re.sub(r'"(\d+),(\d+)"', r"\1,\2", text)
    assert broken != text
    f = tmp_path / "broken.csv"
    f.write_text(broken)
    a = read_cgm(f, tz="UTC", id="x")
    b = read_cgm(LIBRE_DE, tz="UTC", id="x")
    pd.testing.assert_frame_equal(a.data, b.data)
    assert len(a.rejected) == len(b.rejected)


# --------------------------------------------------------------------------- bad input
def test_empty_and_unknown_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CGMFormatError, match=r"empty\.csv: empty file"):
        read_cgm(empty)
    blank = tmp_path / "blank.csv"
    blank.write_bytes(b"\xef\xbb\xbf \r\n\r\n")
    with pytest.raises(CGMFormatError, match="empty file"):
        read_cgm(blank)
    other = tmp_path / "notes.txt"
    other.write_text("Shopping list\neggs, milk\n")
    with pytest.raises(CGMFormatError, match=r"notes\.txt, row 1, field 'header': not a known"):
        read_cgm(other)
    js = tmp_path / "other.json"
    js.write_text('[{"a": 1}]')
    with pytest.raises(CGMFormatError, match="neither Nightscout"):
        read_cgm(js)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"sgv": 100,\n "date": }]')
    with pytest.raises(CGMFormatError, match=r"bad\.json, row 2: invalid JSON"):
        read_cgm(bad)


@pytest.mark.parametrize("fmt", ["auto", "dexcom", "libreview", "carelink", "generic",
                                 "nightscout", "tidepool"])
def test_only_empty_cells(tmp_path, fmt):
    f = tmp_path / "cells.csv"
    f.write_text(",,\n;;\n")
    with pytest.raises(CGMFormatError, match=r"cells\.csv"):
        read_cgm(f, fmt, tz="UTC")


def test_missing_columns(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("id,time,value\na,2026-01-01T00:00:00Z,100\n")
    with pytest.raises(CGMFormatError, match=r"row 1, field 'gl': missing column"):
        read_cgm(f, "generic")
    lines = G7.read_text().splitlines()
    lines[0] = lines[0].replace("Glucose Value (mg/dL)", "Value")
    f2 = tmp_path / "dex.csv"
    f2.write_text("\n".join(lines))
    with pytest.raises(CGMFormatError, match="field 'Glucose Value'"):
        read_cgm(f2, "dexcom", tz="UTC")
    with pytest.raises(CGMFormatError, match="no LibreView header"):
        read_cgm(G7, "libreview", tz="UTC")


def test_unparseable_whole_file_and_single_row(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("id,time,gl\na,yesterday,100\na,today,110\n")
    with pytest.raises(CGMFormatError, match=r"g\.csv, row 2, field 'time': .*unparseable time"):
        read_cgm(f, tz="UTC")
    f.write_text("id,time,gl\na,2026-01-01 00:00,abc\na,2026-01-01 00:05,def\n")
    with pytest.raises(CGMFormatError, match=r"row 2, field 'gl': .*unparseable glucose"):
        read_cgm(f, tz="UTC")
    lines = G7.read_text().splitlines()
    lines[20] = lines[20].replace(",iOS G7,", ",iOS G7,12a,", 1).replace(",,,,,", ",,,,", 1)
    lines[21] = lines[21].replace("2026-03-06T", "2026-13-06T")
    f2 = tmp_path / "dex.csv"
    f2.write_text("\n".join(lines))
    t = read_cgm(f2, tz="UTC")
    r = t.rejected.set_index("row")
    assert r.loc[21, "reason"] == "unparseable glucose value"
    assert r.loc[21, "field"] == "Glucose Value (mg/dL)" and r.loc[21, "value"] == "12a"
    assert r.loc[22, "reason"] == "unparseable time"
    assert len(t.data) == 856


def test_file_without_readings(tmp_path):
    f = tmp_path / "meta.csv"
    f.write_text("\n".join(G7.read_text().splitlines()[:11]))
    with pytest.raises(CGMFormatError, match="no glucose readings"):
        read_cgm(f, tz="UTC")
    ns = tmp_path / "codes.json"
    ns.write_text(json.dumps([{"type": "sgv", "sgv": 5, "date": 1_775_000_000_000}]))
    with pytest.raises(CGMFormatError, match=r"row 0, field 'sgv'.*error code 5"):
        read_cgm(ns)


def test_argument_errors(tmp_path):
    with pytest.raises(GlucoseTableError, match="unknown format"):
        read_cgm(G7, "clarity")
    with pytest.raises(GlucoseTableError, match="unknown time zone"):
        read_cgm(G7, tz="Mars/Olympus")
    with pytest.raises(GlucoseTableError, match="id column"):
        read_cgm(IGLU_5, id="someone")
    assert issubclass(CGMFormatError, GlucoseTableError)
    assert issubclass(CGMFormatError, ValueError)


def test_generic_mixed_offsets(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("id,time,gl\na,2026-01-01T00:00:00Z,100\na,2026-01-01 00:05:00,100\n"
                 "a,garbage,100\n")
    with pytest.raises(CGMFormatError, match=r"row 3, field 'time': mixed timestamps"):
        read_cgm(f)
    f.write_text("id,time,gl\na,2026-01-01T00:00:00Z,100\na,garbage,100\n")
    t = read_cgm(f)
    assert t.rejected["reason"].tolist() == ["unparseable time"]


def test_bad_rows_are_reported(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text(
        "id,time,gl\n"
        "a,2026-01-01T00:00:00Z,100\n"
        ",2026-01-01T00:05:00Z,100\n"
        "a,2026-01-01T00:10:00Z,\n"
        "a,2026-01-01T00:15:00Z,-5\n"
        "a,2026-01-01T00:20:00Z,nan\n"
        "a,2026-01-01T00:25:00Z,5000\n"
        "a,2101-01-01T00:25:00Z,100\n"
        "a,2026-01-01T00:30:00Z,100,extra\n"
        "\n"
        "a,2026-01-01T00:35:00Z,101\n"
    )
    t = read_cgm(f)
    assert t.data["source_row"].tolist() == [2, 11]
    got = dict(zip(t.rejected["row"], t.rejected["reason"], strict=True))
    assert got == {
        3: "missing id",
        4: "missing glucose value",
        5: "implausible glucose value (not in (0, 1000] mg/dL)",
        6: "unparseable glucose value",
        7: "implausible glucose value (not in (0, 1000] mg/dL)",
        8: "implausible time (not in 1970-2100)",
        9: "wrong number of fields (header has 3)",
    }


# --------------------------------------------------------------------------- real data
def test_generic_on_iglu_example_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # offsets in the file: no tz assumption
        table = read_cgm(IGLU_5)
    d = table.data
    assert table.data.attrs["cgm"]["format"] == "generic"
    assert table.rejected.empty
    assert len(d) == 13866
    assert d.groupby("id").size().to_dict() == {
        "Subject 1": 2915, "Subject 2": 2829, "Subject 3": 1533, "Subject 4": 3664,
        "Subject 5": 2925,
    }
    assert d["time"].iloc[0] == ts("2015-06-06T21:50:27Z")  # 16:50:27-05:00
    raw = pd.read_csv(IGLU_5)
    expected = pd.to_datetime(raw["time"], utc=True).astype("datetime64[ns, UTC]")
    by_row = d.set_index("source_row")
    rows = np.arange(len(raw)) + 2
    assert (by_row.loc[rows, "time"].to_numpy() == expected.to_numpy()).all()
    assert (by_row.loc[rows, "glucose"].to_numpy() == raw["gl"].to_numpy()).all()
    assert d["glucose"].min() == 50 and d["glucose"].max() == 400


# --------------------------------------------------------------------------- report
def test_report_and_counts():
    table = read_cgm(NIGHTSCOUT, tz="Europe/Paris")
    counts = rejected_counts(table)
    assert counts.sum() == len(table.rejected) == 4
    assert counts.name == "rows"
    text = read_report(table)
    assert "readings: 576" in text
    assert "low-flagged 5, high-flagged 19" in text
    assert "tz=Europe/Paris ignored" in text
    buf = io.StringIO()
    csv.writer(buf).writerows(table.rejected.itertuples(index=False))
    assert "duplicate" in buf.getvalue()
