import json

import pandas as pd
from typer.testing import CliRunner

from isletsim.cli import app

runner = CliRunner()


def test_simulate_writes_parquet(tmp_path):
    out = tmp_path / "run.parquet"
    res = runner.invoke(app, ["simulate", "--patients", "adult#001,child#003", "--days", "1",
                              "--meals", "07:00=45,12:00=70,18:00=80", "--therapy",
                              "open-loop", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "mean glucose" in res.output and "70-180" in res.output
    df = pd.read_parquet(out)
    assert df.participant.astype(str).unique().tolist() == ["adult#001", "child#003"]
    assert df.minute.max() == 1440


def test_unknown_patient_lists_names():
    res = runner.invoke(app, ["simulate", "--patients", "adult#099"])
    assert res.exit_code == 2
    assert "adult#099" in res.output and "adult#010" in res.output


def test_malformed_meals_quotes_item():
    res = runner.invoke(app, ["simulate", "--patients", "adult#001", "--meals", "07:00=45,lunch"])
    assert res.exit_code == 2
    assert "'lunch'" in res.output


def test_patients_or_cohort_required():
    assert runner.invoke(app, ["simulate"]).exit_code == 2
    res = runner.invoke(app, ["simulate", "--cohort", "uva-padova-2008", "--therapy", "pid"])
    assert res.exit_code == 2 and "basal-bolus" in res.output


def test_validate_json():
    res = runner.invoke(app, ["validate", "--suite", "model", "--json"])
    assert res.exit_code == 0, res.output
    checks = json.loads(res.output)
    assert all({"name", "value", "tolerance", "passed"} <= set(c) for c in checks)
    assert all(c["passed"] for c in checks)
