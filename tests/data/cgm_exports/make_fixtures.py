#!/usr/bin/env python3
# ruff: noqa  (verbatim copy of the shared generator; only this line was added)
"""Generate small SYNTHETIC CGM export fixtures, one per vendor format.

Every reading, name, serial number and id in these files is made up by this
script from a seeded random-number generator; nothing is copied from real
patient data.  Layouts (headers, metadata rows, record types, value quirks)
follow what public parsers expect -- see shared/docs/cgm-formats.md
for sources and for which details are verified vs. assumed.

Standard library only, deterministic:  python make_fixtures.py [outdir]
"""
from __future__ import annotations

import csv
import io
import json
import math
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

MGDL_PER_MMOL = 18.01559          # Tidepool's factor (molar mass 180.1559 g/mol)
SEED = 20261125
DAYS = 3


# --------------------------------------------------------------------------
# one synthetic "true" glucose curve (mg/dL) shared by all formats
# --------------------------------------------------------------------------
def make_curve(start_local: datetime, days: int = DAYS, seed: int = SEED, spike: float = 230.0):
    """Return list of (local naive datetime, mg/dL float) every minute.

    Baseline ~130 mg/dL with a circadian wobble, three meal excursions per day,
    AR(1) sensor noise, one nocturnal hypo that dips below 40 (-> 'Low') and one
    dinner spike that exceeds 400 (-> 'High')."""
    rng = random.Random(seed)
    meals = []  # (minute offset, peak rise mg/dL)
    for d in range(days):
        for hh, mm, rise in ((7, 30, 70), (12, 45, 85), (19, 0, 110)):
            jitter = rng.randint(-25, 25)
            meals.append((d * 1440 + hh * 60 + mm + jitter, rise * rng.uniform(0.7, 1.3)))
    # scripted extremes
    meals.append((0 * 1440 + 19 * 60 + 20, spike))           # day 1 dinner -> > 400
    hypo_center = 1 * 1440 + 3 * 60 + 10                      # day 2, 03:10 -> < 40
    out, noise = [], 0.0
    for k in range(days * 1440):
        g = 130 + 15 * math.sin(2 * math.pi * (k % 1440 - 240) / 1440)
        for t0, rise in meals:
            dt = k - t0
            if 0 <= dt < 300:  # gamma-like bump peaking ~60 min after the meal
                x = dt / 60.0
                g += rise * x * math.exp(1 - x)
        g -= 105 * math.exp(-((k - hypo_center) / 35.0) ** 2)
        noise = 0.97 * noise + rng.gauss(0, 1.2)
        out.append((start_local + timedelta(minutes=k), max(25.0, g + noise)))
    return out


def resample(curve, every_min, offset_s=0):
    """Every `every_min` minutes; timestamps shifted by offset_s seconds
    (real sensors are not aligned to the clock)."""
    return [(t + timedelta(seconds=offset_s), g) for i, (t, g) in enumerate(curve) if i % every_min == 0]


def write_text(path: Path, text: str, bom: bool = False, encoding: str = "utf-8"):
    data = text.encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)


def json_lines_array(objs):
    """A JSON array with one compact object per line (valid JSON, diff-friendly)."""
    return "[\n" + ",\n".join(json.dumps(o, separators=(",", ":"), ensure_ascii=False) for o in objs) + "\n]\n"


def rows_to_csv(rows, delimiter=",", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, quoting=quoting, lineterminator=lineterminator)
    w.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------
# 1. Dexcom Clarity CSV (G7, mg/dL, US) and (G6 receiver, mmol/L)
# --------------------------------------------------------------------------
def dexcom_header(unit):
    return ["Index", "Timestamp (YYYY-MM-DDThh:mm:ss)", "Event Type", "Event Subtype",
            "Patient Info", "Device Info", "Source Device ID", f"Glucose Value ({unit})",
            "Insulin Value (u)", "Carb Value (grams)", "Duration (hh:mm:ss)",
            f"Glucose Rate of Change ({unit}/min)", "Transmitter Time (Long Integer)",
            "Transmitter ID"]


def dexcom_value(g, unit):
    """Clarity writes the text 'Low' below 40 mg/dL and 'High' above 400."""
    if g < 40:
        return "Low"
    if g > 400:
        return "High"
    return str(int(round(g))) if unit == "mg/dL" else f"{g / MGDL_PER_MMOL:.1f}"


def make_dexcom_g7_mgdl(outdir: Path):
    unit = "mg/dL"
    src = "iOS G7"
    rows = [dexcom_header(unit)]
    meta = [
        ["", "FirstName", "", "Synthetic", "", "", "", "", "", "", "", "", ""],
        ["", "LastName", "", "Patient-A", "", "", "", "", "", "", "", "", ""],
        ["", "Device", "", "", "Dexcom G7 Mobile App", src, "", "", "", "", "", "", ""],
        ["", "Alert", "Fall", "", "", src, "", "", "", "", "3", "", ""],
        ["", "Alert", "High", "", "", src, "250", "", "", "", "", "", ""],
        ["", "Alert", "Low", "", "", src, "70", "", "", "", "", "", ""],
        ["", "Alert", "Signal Loss", "", "", src, "", "", "", "00:20:00", "", "", ""],
        ["", "Alert", "Rise", "", "", src, "", "", "", "", "3", "", ""],
        ["", "Alert", "Urgent Low", "", "", src, "55", "", "", "", "", "", ""],
        ["", "Alert", "Urgent Low Soon", "", "", src, "55", "", "", "", "", "", ""],
    ]
    for m in meta:
        rows.append([str(len(rows))] + m)
    curve = make_curve(datetime(2026, 3, 6, 0, 0))      # crosses US DST (2026-03-08)
    pts = resample(curve, 5, offset_s=47)
    tx_time = 812_345
    events = {  # extra event rows (insulin/carbs) keyed by minute index
        7 * 12 + 6: ("Carbs", "", "", "45"),
        7 * 12 + 7: ("Insulin", "Fast-Acting", "4.5", ""),
        24 * 12 + 12 * 12 + 9: ("Insulin", "Long-Acting", "18", ""),
    }
    for i, (t, g) in enumerate(pts):
        if 300 <= i < 306:   # 30-min signal-loss gap: no rows at all
            continue
        tx_time += 300
        rows.append([str(len(rows)), t.strftime("%Y-%m-%dT%H:%M:%S"), "EGV", "", "", "", src,
                     dexcom_value(g, unit), "", "", "", "", str(tx_time), "SYN7X1"])
        if i in events:
            et, sub, ins, carb = events[i]
            rows.append([str(len(rows)), (t + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                         et, sub, "", "", src, "", ins, carb, "", "", "", ""])
    write_text(outdir / "dexcom_clarity_g7_mgdl.csv", rows_to_csv(rows))


def make_dexcom_g6_mmol(outdir: Path):
    unit = "mmol/L"
    src = "PGSYN0001"
    rows = [dexcom_header(unit)]
    for m in (["", "FirstName", "", "Synthetic"], ["", "LastName", "", "Patient-B"],
              ["", "DateOfBirth", "", "1/1/90"], ["", "Device", "", "", "Dexcom G6 Receiver", src]):
        rows.append([str(len(rows))] + m + [""] * (13 - len(m)))
    curve = make_curve(datetime(2026, 5, 11, 0, 0), seed=SEED + 1)
    pts = resample(curve, 5, offset_s=17)
    tx_time = 7_573
    for i, (t, g) in enumerate(pts):
        tx_time += 300
        rows.append([str(len(rows)), t.strftime("%Y-%m-%dT%H:%M:%S"), "EGV", "", "", "", src,
                     dexcom_value(g, unit), "", "", "", "", str(tx_time), "8SYN6B"])
        if i in (2 * 12, 26 * 12):   # G6 calibrations (fingersticks)
            rows.append([str(len(rows)), (t + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S"),
                         "Calibration", "", "", "", src, f"{g / MGDL_PER_MMOL + 0.3:.1f}",
                         "", "", "", "", str(tx_time + 120), "8SYN6B"])
    # UTF-8 BOM: some exports carry one; the first column name then reads '\ufeffIndex'
    write_text(outdir / "dexcom_clarity_g6_mmol.csv", rows_to_csv(rows), bom=True)


# --------------------------------------------------------------------------
# 2. Abbott LibreView CSV (US mg/dL 12-hour clock; DE mmol/L decimal comma)
# --------------------------------------------------------------------------
LIBRE_COLS_EN = [
    "Device", "Serial Number", "Device Timestamp", "Record Type",
    "Historic Glucose {u}", "Scan Glucose {u}", "Non-numeric Rapid-Acting Insulin",
    "Rapid-Acting Insulin (units)", "Non-numeric Food", "Carbohydrates (grams)",
    "Carbohydrates (servings)", "Non-numeric Long-Acting Insulin",
    "Long-Acting Insulin Value (units)", "Notes", "Strip Glucose {u}", "Ketone mmol/L",
    "Meal Insulin (units)", "Correction Insulin (units)", "User Change Insulin (units)"]
LIBRE_COLS_DE = [
    "Gerät", "Seriennummer", "Gerätezeitstempel", "Aufzeichnungstyp",
    "Glukosewert-Verlauf {u}", "Glukose-Scan {u}", "Nicht numerisches schnellwirkendes Insulin",
    "Schnellwirkendes Insulin (Einheiten)", "Nicht numerische Nahrungsdaten",
    "Kohlenhydrate (Gramm)", "Kohlenhydrate (Portionen)", "Nicht numerisches Depotinsulin",
    "Depotinsulin (Einheiten)", "Notizen", "Glukose-Teststreifen {u}", "Keton mmol/L",
    "Mahlzeiteninsulin (Einheiten)", "Korrekturinsulin (Einheiten)",
    "Insulinänderung durch Anwender (Einheiten)"]


def libre_value(g, unit, decimal_comma=False, scan=False):
    # Libre reports 40-500 mg/dL (2.2-27.8 mmol/L); readers/apps DISPLAY 'LO'/'HI'
    # outside.  Whether LibreView CSV ever carries the text is unverified: we put
    # it only in *scan* rows as a defensive parser test case.
    if scan and g < 40:
        return "LO"
    if scan and g > 500:
        return "HI"
    g = min(max(g, 40.0), 500.0)
    if unit == "mg/dL":
        return str(int(round(g)))
    s = f"{g / MGDL_PER_MMOL:.1f}"
    return s.replace(".", ",") if decimal_comma else s


def make_libreview(outdir: Path, locale: str):
    rng = random.Random(SEED + (2 if locale == "us" else 3))
    if locale == "us":
        unit, cols, dev = "mg/dL", LIBRE_COLS_EN, "FreeStyle LibreLink"
        fmt = "%m-%d-%Y %I:%M %p"
        pre = ["Glucose Data", "Generated on", "03-10-2026 09:14 AM UTC", "Generated by", "Synthetic Patient-C"]
        start, serial, fname = datetime(2026, 3, 6, 0, 3), "0f1e2d3c-0000-4aaa-8bbb-000000000c01", "libreview_us_mgdl.csv"
        dec = False
    else:
        unit, cols, dev = "mmol/L", LIBRE_COLS_DE, "FreeStyle Libre 2"
        fmt = "%d-%m-%Y %H:%M"
        pre = ["Glukosedaten", "Erstellt am", "31-03-2026 08:02 UTC", "Erstellt von", "Synthetischer Patient-D"]
        start, serial, fname = datetime(2026, 3, 27, 0, 7), "SYNDE00123", "libreview_de_mmol_decimal_comma.csv"
        dec = True
    header = [c.format(u=unit) for c in cols]
    # US file: a bigger dinner spike so one scan exceeds 500 mg/dL ('HI')
    curve = make_curve(start, seed=SEED + (2 if locale == "us" else 3), spike=(340.0 if locale == "us" else 230.0))
    rows = []
    blank = [""] * len(header)

    def rec(t, rtype, fields):
        r = list(blank)
        r[0], r[1], r[2], r[3] = dev, serial, t.strftime(fmt), str(rtype)
        for k, v in fields.items():
            r[k] = v
        rows.append(r)

    rec(curve[0][0] - timedelta(hours=1), 6, {13: "Sensor Started" if locale == "us" else "Sensor gestartet"})
    for i in range(0, len(curve), 15):           # type 0: historic, every 15 min
        t, g = curve[i]
        rec(t, 0, {4: libre_value(g, unit, dec)})
    for i in range(40, len(curve), 173):         # type 1: scans at irregular times
        t, g = curve[i]
        rec(t, 1, {5: libre_value(g, unit, dec, scan=True)})
    for d in range(DAYS):                         # type 4 insulin, 5 food, 6 notes
        t = start + timedelta(days=d, hours=7, minutes=33)
        rec(t, 5, {9: str(rng.choice([30, 45, 60]))})
        rec(t + timedelta(minutes=1), 4, {7: ("4,5" if dec else "4.5")})
        rec(start + timedelta(days=d, hours=22), 4, {12: "16"})
    # force a LO scan and a HI scan at the scripted extremes
    hypo = min(range(len(curve)), key=lambda k: curve[k][1])
    rec(curve[hypo][0], 1, {5: "LO"})
    hyper = max(range(len(curve)), key=lambda k: curve[k][1])
    rec(curve[hyper][0], 1, {5: "HI" if curve[hyper][1] > 500 else libre_value(curve[hyper][1], unit, dec)})
    rows.sort(key=lambda r: datetime.strptime(r[2], fmt))
    if dec:
        # decimal commas force quoting of those fields (RFC 4180 style)
        text = rows_to_csv([pre, header] + rows, quoting=csv.QUOTE_MINIMAL)
    else:
        text = rows_to_csv([pre, header] + rows)
    write_text(outdir / fname, text, bom=(locale == "de"))


# --------------------------------------------------------------------------
# 3. Medtronic CareLink CSV (MiniMed 780G, EU: ';' delimiter, decimal comma,
#    multiple sections, newest-first, DST gap)
# --------------------------------------------------------------------------
CARELINK_COLS = [
    "Index", "Date", "Time", "New Device Time", "BG Source", "BG Reading (mg/dL)",
    "Linked BG Meter ID", "Basal Rate (U/h)", "Temp Basal Amount", "Temp Basal Type",
    "Temp Basal Duration (h:mm:ss)", "Bolus Type", "Bolus Volume Selected (U)",
    "Bolus Volume Delivered (U)", "Bolus Duration (h:mm:ss)", "Prime Type",
    "Prime Volume Delivered (U)", "Estimated Reservoir Volume after Fill (U)", "Alert",
    "User Cleared Alerts", "Suspend", "Rewind", "BWZ Estimate (U)",
    "BWZ Target High BG (mg/dL)", "BWZ Target Low BG (mg/dL)", "BWZ Carb Ratio (g/U)",
    "BWZ Insulin Sensitivity (mg/dL/U)", "BWZ Carb Input (grams)", "BWZ BG/SG Input (mg/dL)",
    "BWZ Correction Estimate (U)", "BWZ Food Estimate (U)", "BWZ Active Insulin (U)",
    "BWZ Status", "Sensor Calibration BG (mg/dL)", "Sensor Glucose (mg/dL)", "ISIG Value",
    "Event Marker", "Bolus Number", "Bolus Cancellation Reason",
    "BWZ Unabsorbed Insulin Total (U)", "Final Bolus Estimate", "Scroll Step Size",
    "Insulin Action Curve Time", "Sensor Calibration Rejected Reason", "Preset Bolus",
    "Bolus Source", "BLE Network Device", "Device Update Event",
    "Network Device Associated Reason", "Network Device Disassociated Reason",
    "Network Device Disconnected Reason", "Sensor Exception", "Preset Temp Basal Name",
    "Sensor State"]
CI = {c: i for i, c in enumerate(CARELINK_COLS)}


def ec(x, nd=2):
    """European decimal comma."""
    return f"{x:.{nd}f}".replace(".", ",")


def make_carelink(outdir: Path):
    rng = random.Random(SEED + 4)
    model, serial = "MiniMed 780G MMT-1886", "NGSYN0001H"
    # local wall clock in Europe; 2026-03-29 02:00 -> 03:00 (spring forward)
    start = datetime(2026, 3, 28, 0, 0)
    curve = make_curve(start, seed=SEED + 4)

    def local_wall(t):
        dst = datetime(2026, 3, 29, 2, 0)
        return t + timedelta(hours=1) if t >= dst else t

    lines = [
        f"Last Name;First Name;Patient ID;System ID;Start Date;End Date;Device;{model};Hardware Version;A2.01;Firmware Version;8.13.2",
        '"Patient-E";"Synthetic";"";"";"28/03/2026 00:00:00";"30/03/2026 23:59:00";"Serial Number";'
        f'{serial};Software Version;',
        "Patient DOB;;;;;;CGM;Simplera Sync",
        "Device data shown may exceed selected date range.",
        "",
    ]

    def section(label_tail, kind, rows):
        lines.append(f"-------;{model};{kind};{serial};{label_tail}")
        lines.append(";".join(CARELINK_COLS))
        for r in rows:
            lines.append(";".join(r))

    def blank():
        return [""] * len(CARELINK_COLS)

    idx = 0
    pump_rows = []
    for d in range(DAYS):                # newest first, as in real exports
        for hh, mm, carbs in ((19, 5, 70), (12, 50, 55), (7, 35, 40)):
            t = local_wall(start + timedelta(days=DAYS - 1 - d, hours=hh, minutes=mm, seconds=rng.randint(0, 59)))
            r = blank()
            sg = int(120 + rng.random() * 60)
            dose = carbs / 10.0
            r[CI["Date"]], r[CI["Time"]] = t.strftime("%Y/%m/%d"), t.strftime("%H:%M:%S")
            r[CI["Bolus Type"]] = "Normal"
            r[CI["Bolus Volume Selected (U)"]] = ec(dose, 3)
            r[CI["Bolus Volume Delivered (U)"]] = ec(dose, 3)
            r[CI["BWZ Carb Input (grams)"]] = str(carbs)
            r[CI["BWZ BG/SG Input (mg/dL)"]] = str(sg)
            r[CI["BWZ Carb Ratio (g/U)"]] = ec(10.0, 1)
            r[CI["Bolus Source"]] = "BOLUS_WIZARD"
            pump_rows.append(r)
        r = blank()
        t = local_wall(start + timedelta(days=DAYS - 1 - d, hours=3, minutes=12))
        r[CI["Date"]], r[CI["Time"]] = t.strftime("%Y/%m/%d"), t.strftime("%H:%M:%S")
        r[CI["Alert"]] = "ALERT ON LOW: tone and vibration" if d == 1 else ""
        if r[CI["Alert"]]:
            pump_rows.append(r)
    for r in pump_rows:
        r[CI["Index"]] = ec(idx, 5); idx += 1
    section("-------", "Pump", pump_rows)

    agg = []
    for d in range(DAYS):
        r = blank()
        t = start + timedelta(days=DAYS - 1 - d)
        r[CI["Index"]] = ec(idx, 5); idx += 1
        r[CI["Date"]], r[CI["Time"]] = t.strftime("%Y/%m/%d"), "00:00:00"
        r[CI["Bolus Type"]] = "Normal"
        tot = 12 + rng.random() * 6
        r[CI["Bolus Volume Selected (U)"]] = ec(tot, 3)
        r[CI["Bolus Volume Delivered (U)"]] = ec(tot, 3)
        r[CI["Bolus Source"]] = "CLOSED_LOOP_AUTO_INSULIN"
        agg.append(r)
    section("Aggregated Auto Insulin Data", "Pump", agg)

    sens = []
    pts = resample(curve, 5, offset_s=31)
    for t, g in reversed(pts):   # newest first
        r = blank()
        r[CI["Index"]] = ec(idx, 5); idx += 1
        w = local_wall(t)
        r[CI["Date"]], r[CI["Time"]] = w.strftime("%Y/%m/%d"), w.strftime("%H:%M:%S")
        gv = min(max(g, 40), 400)   # Guardian/Simplera report 40-400; no text flags
        r[CI["Sensor Glucose (mg/dL)"]] = str(int(round(gv)))
        r[CI["ISIG Value"]] = ec(gv / 6.1 + rng.gauss(0, 0.4), 2)
        sens.append(r)
    section("-------", "Sensor", sens)
    write_text(outdir / "carelink_780g_eu_semicolon.csv", "\r\n".join(lines) + "\r\n", bom=True)


# --------------------------------------------------------------------------
# 4. Nightscout entries JSON (API v1 /api/v1/entries.json shape)
# --------------------------------------------------------------------------
def make_nightscout(outdir: Path):
    rng = random.Random(SEED + 5)
    tz = timezone(timedelta(hours=-5))
    start_local = datetime(2026, 4, 1, 0, 1)
    curve = make_curve(start_local, days=2, seed=SEED + 5)
    pts = resample(curve, 5, offset_s=22)
    entries, prev = [], None
    for i, (t, g) in enumerate(pts):
        aware = t.replace(tzinfo=tz)
        ms = int(aware.timestamp() * 1000) + rng.randint(0, 999)
        sgv = 39 if g < 40 else (401 if g > 400 else int(round(g)))   # 39 = LOW floor
        delta = None if prev is None else sgv - prev
        prev = sgv
        if delta is None:
            direction = "NONE"
        else:
            r = delta / 5.0
            direction = ("DoubleUp" if r > 3 else "SingleUp" if r > 2 else "FortyFiveUp" if r > 1
                         else "Flat" if r >= -1 else "FortyFiveDown" if r >= -2
                         else "SingleDown" if r >= -3 else "DoubleDown")
        if sgv in (39, 401):
            direction = "NOT COMPUTABLE"
        e = {"_id": f"{0x65f0000000000000 + i:016x}{i:08x}", "device": "xDrip-DexcomG6",
             "date": ms,
             "dateString": datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
             "sgv": sgv, "delta": delta, "direction": direction, "type": "sgv",
             "filtered": sgv * 1000 + rng.randint(-800, 800), "unfiltered": sgv * 1000 + rng.randint(-1500, 1500),
             "rssi": 100, "noise": 1, "sysTime": None, "utcOffset": -300}
        e["sysTime"] = e["dateString"]
        if i % 97 == 5:            # some uploaders omit optional fields
            for k in ("filtered", "unfiltered", "rssi", "noise", "delta"):
                e.pop(k)
        entries.append(e)
        if i == 150:               # duplicate upload of the same reading, new _id
            dup = dict(e); dup["_id"] = e["_id"][:-4] + "d0d1"; dup["device"] = "AndroidAPS-DexcomG6"
            entries.append(dup)
    # a Dexcom error code reading (sgv < 39) and non-sgv entry types
    t = pts[400][0].replace(tzinfo=tz)
    ms = int(t.timestamp() * 1000) + 60_000
    iso = lambda m: datetime.fromtimestamp(m / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    entries.append({"_id": "65f0e0e0000000000000e0a1", "device": "share2", "date": ms, "dateString": iso(ms),
                    "sgv": 5, "direction": "NOT COMPUTABLE", "type": "sgv", "utcOffset": -300})
    entries.append({"_id": "65f0b0b0000000000000b0b2", "device": "xDrip-DexcomG6", "date": ms + 120_000,
                    "dateString": iso(ms + 120_000), "mbg": 142, "type": "mbg", "utcOffset": -300})
    entries.append({"_id": "65f0c0c0000000000000c0c3", "device": "xDrip-DexcomG6", "date": ms + 180_000,
                    "dateString": iso(ms + 180_000), "slope": 1000.0, "intercept": 0.0, "scale": 1.0,
                    "type": "cal", "utcOffset": -300})
    entries.sort(key=lambda e: e["date"], reverse=True)   # API returns newest first
    (outdir / "nightscout_entries.json").write_text(json_lines_array(entries))


# --------------------------------------------------------------------------
# 5. Tidepool data model: cbg (+ upload and one smbg), JSON array
# --------------------------------------------------------------------------
def make_tidepool(outdir: Path):
    rng = random.Random(SEED + 6)
    tz_off = -420                 # minutes (America/Los_Angeles in PDT)
    start_local = datetime(2026, 6, 14, 0, 2)
    curve = make_curve(start_local, days=2, seed=SEED + 6)
    pts = resample(curve, 5, offset_s=43)
    upload_id = f"{rng.getrandbits(128):032x}"
    device_id = "DexG6MobRec_SYN0000001"
    data = [{
        "type": "upload", "uploadId": upload_id, "id": f"{rng.getrandbits(128):032x}",
        "time": "2026-06-17T02:05:00.000Z", "computerTime": "2026-06-16T19:05:00",
        "timezoneOffset": tz_off, "conversionOffset": 0, "timezone": "America/Los_Angeles",
        "deviceId": device_id, "deviceManufacturers": ["Dexcom"], "deviceModel": "G6",
        "deviceSerialNumber": "SYN0000001", "deviceTags": ["cgm"], "timeProcessing": "utc-bootstrapping",
        "version": "synthetic-fixture-1"}]
    for t, g in pts:
        utc = t - timedelta(minutes=tz_off)
        d = {"type": "cbg", "units": "mmol/L", "id": f"{rng.getrandbits(128):032x}",
             "uploadId": upload_id, "deviceId": device_id,
             "time": utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "deviceTime": t.strftime("%Y-%m-%dT%H:%M:%S"),
             "timezoneOffset": tz_off, "conversionOffset": 0, "clockDriftOffset": 0,
             "sampleInterval": 300000}
        if g < 40:
            d["value"] = 39 / MGDL_PER_MMOL
            d["annotations"] = [{"code": "bg/out-of-range", "value": "low", "threshold": 40}]
        elif g > 400:
            d["value"] = 401 / MGDL_PER_MMOL
            d["annotations"] = [{"code": "bg/out-of-range", "value": "high", "threshold": 400}]
        else:
            d["value"] = int(round(g)) / MGDL_PER_MMOL      # stored unrounded in mmol/L
        data.append(d)
    t, g = pts[100]
    data.append({"type": "smbg", "subType": "manual", "units": "mmol/L", "value": 7.2,
                 "id": f"{rng.getrandbits(128):032x}", "uploadId": upload_id, "deviceId": device_id,
                 "time": (t - timedelta(minutes=tz_off)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                 "deviceTime": t.strftime("%Y-%m-%dT%H:%M:%S"), "timezoneOffset": tz_off,
                 "conversionOffset": 0, "clockDriftOffset": 0})
    (outdir / "tidepool_cbg.json").write_text(json_lines_array(data))


def main():
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    outdir.mkdir(parents=True, exist_ok=True)
    make_dexcom_g7_mgdl(outdir)
    make_dexcom_g6_mmol(outdir)
    make_libreview(outdir, "us")
    make_libreview(outdir, "de")
    make_carelink(outdir)
    make_nightscout(outdir)
    make_tidepool(outdir)
    for p in sorted(outdir.iterdir()):
        if p.suffix in (".csv", ".json"):
            print(f"{p.name:45s} {p.stat().st_size:>8d} bytes")


if __name__ == "__main__":
    main()
