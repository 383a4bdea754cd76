"""Tests of ``isletsim cgm summary`` (typer CliRunner, synthetic CSVs in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from isletsim.cli import app
from isletsim.cli.cgm import cgm_app, summary_records
from isletsim.units import MGDL_PER_MMOLL

REQUIRED_KEYS = {
    "id", "n_readings", "mean", "sd", "cv", "gmi", "tbr_54", "tbr_70", "tir_70_180",
    "tir_70_140", "tar_180", "tar_250", "lbgi", "hbgi", "gri", "mage", "conga_1h", "modd",
    "rejected", "file",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

runner = CliRunner()


def _glucose(n: int, seed: int) -> np.ndarray:
    t_h = np.arange(n) * 5.0 / 60.0
    rng = np.random.default_rng(seed)
    g = 145.0 + 55.0 * np.sin(2 * np.pi * t_h / 24.0) + 20.0 * np.sin(2 * np.pi * t_h / 3.0)
    return np.round(g + rng.normal(0.0, 8.0, n), 1)


def _write_csv(path: Path, pid: str, *, days: int = 3, seed: int = 0,
               bad_rows: int = 0) -> np.ndarray:
    """Generic ``id,time,gl`` CSV of 5-min readings; returns the valid glucose values."""
    n = days * 288
    times = pd.date_range("2024-03-04 00:00", periods=n, freq="5min")
    g = _glucose(n, seed)
    lines = ["id,time,gl"]
    lines += [f"{pid},{t:%Y-%m-%d %H:%M:%S},{v}" for t, v in zip(times, g, strict=True)]
    for k in range(bad_rows):  # unparseable glucose values, one hour apart
        lines.insert(2 + 12 * k, f"{pid},{times[12 * k]:%Y-%m-%d} 00:02:30,abc")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return g


def _invoke(args: list[str]):
    return runner.invoke(cgm_app, ["summary", *args])


def test_json_has_required_keys_and_values(tmp_path: Path) -> None:
    a, b = tmp_path / "alice.csv", tmp_path / "bob.csv"
    ga = _write_csv(a, "alice", seed=1, bad_rows=2)
    gb = _write_csv(b, "bob", days=2, seed=2)
    result = _invoke([str(a), str(b), "--json"])
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)  # the whole of stdout is one JSON list
    assert isinstance(records, list) and [r["id"] for r in records] == ["alice", "bob"]
    for rec, g, path in ((records[0], ga, a), (records[1], gb, b)):
        assert REQUIRED_KEYS <= set(rec)
        assert rec["file"] == str(path)
        assert rec["n_readings"] == len(g)
        assert rec["mean"] == pytest.approx(g.mean(), rel=1e-9)
        assert rec["sd"] == pytest.approx(g.std(ddof=1), rel=1e-9)
        assert rec["tir_70_180"] == pytest.approx(100.0 * np.mean((g >= 70) & (g <= 180)))
        assert rec["tar_180"] == pytest.approx(100.0 * np.mean(g > 180))
        for key in ("tbr_54", "tbr_70", "tir_70_180", "tir_70_140", "tar_180", "tar_250"):
            assert 0.0 <= rec[key] <= 100.0
        assert isinstance(rec["rejected"], dict)
    assert sum(records[0]["rejected"].values()) == 2
    assert records[1]["rejected"] == {}


def test_units_mmol(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    g = _write_csv(a, "a", days=1)
    result = _invoke([str(a), "--json", "--units", "mmol/L"])
    assert result.exit_code == 0, result.stderr
    rec = json.loads(result.stdout)[0]
    assert rec["mean"] == pytest.approx(g.mean() / MGDL_PER_MMOLL, rel=1e-9)
    assert rec["units"] == "mmol/L"


def test_nan_becomes_null() -> None:
    summary = pd.DataFrame(
        {"id": ["x"], "n_readings": [np.int64(3)], "mean": [np.nan], "mage": [np.inf]}
    )
    recs = summary_records(summary, {"x": ["f.csv"]}, {"x": {"duplicate": 2}}, units="mg/dL")
    text = json.dumps(recs, allow_nan=False)
    back = json.loads(text)[0]
    assert back["mean"] is None and back["mage"] is None and back["n_readings"] == 3
    assert back["rejected"] == {"duplicate": 2} and back["file"] == "f.csv"


def test_table_output_on_terminal(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    _write_csv(a, "patient-7", days=1)
    result = _invoke([str(a)])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "patient-7" in out
    assert "Time in range 70-180" in out and "Coefficient of variation" in out
    assert "Rejected rows: none" in out


@pytest.mark.parametrize(
    "content",
    [
        "foo,bar\n1,2\n3,4\n",  # no recognisable glucose / time columns
        "",  # empty file
    ],
)
def test_bad_file_exits_2_with_file_name(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "broken_export.csv"
    bad.write_text(content, encoding="utf-8")
    result = _invoke([str(bad), "--json"])
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert "broken_export.csv" in err
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = _invoke([str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.stderr and "Traceback" not in result.output


def test_bad_time_zone_is_a_usage_error(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    _write_csv(a, "a", days=1)
    result = _invoke([str(a), "--tz", "Mars/Olympus_Mons"])
    assert result.exit_code == 2
    assert "Mars/Olympus_Mons" in result.output


def test_report_writes_png_and_html(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    _write_csv(a, "p1", days=2, bad_rows=1)
    out = tmp_path / "report"
    result = runner.invoke(
        app, ["cgm", "summary", str(a), "--json", "--report", str(out), "--tz", "Europe/Paris"]
    )
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)  # report messages go to stderr when --json
    assert "report" in result.stderr
    png, page = out / "p1_agp.png", out / "p1.html"
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 20_000
    text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text
    assert "Time in range 70-180 mg/dL" in text
    assert "Rejected input rows" in text and "No input rows were rejected" not in text
    assert "Europe/Paris" in text
