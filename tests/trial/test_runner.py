"""Whole runs of a small protocol: screening, reproducibility, zero dose, storage, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from isletsim.cli import app
from isletsim.trial import EnrolmentError, Protocol, TrialResult, run_trial, tables
from isletsim.trial.runner import eligibility_failures

from .conftest import small_protocol_dict


def test_tables_have_their_layout(small_result):
    for name in ("participants", "visits", "events", "daily", "cgm", "endpoints"):
        frame = getattr(small_result, name)
        assert list(frame.columns) == list(tables.TABLES[name]), name


def test_screening_fills_arms_in_order_with_eligible_candidates(small_result, small_protocol):
    p = small_result.participants
    enrolled = p[p["enrolled"]]
    assert list(enrolled["arm"]) == ["half_dose", "full_dose", "full_dose"]
    assert enrolled["eligible"].all()
    assert (enrolled["gold_score"] >= 4).all() and (enrolled["severe_events_prior_year"] >= 2).all()
    assert enrolled["age_years"].between(18, 65).all()
    # screening stops at the last enrolled candidate; everyone else failed a criterion
    assert p.iloc[-1]["enrolled"]
    assert (p.loc[~p["eligible"], "screen_failure"] != "").all()
    assert (p.loc[p["eligible"], "screen_failure"] == "").all()


def test_eligibility_failures_name_each_criterion(small_protocol):
    cand = pd.DataFrame({
        "age_years": [30.0, 70.0, 40.0], "therapy": ["pump", "aid", "mdi"],
        "gold_score": [5.0, 2.0, 4.0], "severe_events_prior_year": [3, 0, 1],
        "diabetes_duration_years": [20.0, 30.0, 10.0],
    })  # fmt: skip
    f = eligibility_failures(cand, small_protocol).tolist()
    assert f[0] == ""
    assert "age outside 18-65 y" in f[1] and "Gold score < 4" in f[1]
    assert "< 2 severe events" in f[1] and "< 2 severe events" in f[2]


def test_too_few_eligible_is_an_error_before_simulation():
    d = small_protocol_dict()
    d["population"]["max_screened"] = 3
    with pytest.raises(EnrolmentError, match=r"only .* eligible"):
        run_trial(Protocol.from_dict(d, source="x.toml"), seed=1)


def test_same_seed_same_result(small_protocol, small_result):
    again = run_trial(small_protocol, seed=7)
    for name in ("participants", "visits", "events", "daily", "cgm"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(small_result, name))


def test_visits_and_mmtt(small_result):
    v = small_result.visits
    assert sorted(v["day"].unique()) == [0, 29]
    base = v[v["day"] == 0]
    # no graft at baseline: C-peptide undetectable, insulin used every day
    assert (base["cpeptide_mmtt_peak_pmol_l"] == 0).all()
    assert (~base["insulin_independent"]).all() and (base["insulin_u_per_day"] > 5).all()
    assert v["tir_pct"].between(0, 100).all() and v["hba1c_pct"].between(4, 14).all()
    # the CGM table covers run-in and follow-up every 5 minutes
    cgm = small_result.cgm
    one = cgm[cgm["participant"] == cgm["participant"].iloc[0]]
    assert one["minute"].min() == -14 * 1440 and np.all(np.diff(one["minute"]) == 5)


def test_infusions_and_events(small_result):
    ev = small_result.events
    inf = ev[ev["kind"] == "infusion"]
    assert len(inf) == 3 and (inf["day"] == 0).all()
    assert set(ev["kind"]) <= set(tables.EVENT_KINDS)


def test_zero_dose_gives_standard_care_outcomes():
    """A zero dose, no weaning, is exactly the control arm: same people, meals and streams."""
    d = small_protocol_dict(follow_up=30)
    for arm in d["arms"]:
        arm["weaning"] = "none"
    zero = Protocol.from_dict(d, source="zero.toml").with_arms(dose=0.0)
    ctl = dict(d)
    ctl["arms"] = [{"name": a["name"], "n": a["n"], "weaning": "none"} for a in d["arms"]]
    control = Protocol.from_dict(ctl, source="control.toml")
    a, b = run_trial(zero, seed=3), run_trial(control, seed=3)
    cols = ["participant", "day", "hba1c_pct", "tir_pct", "tbr_54_pct", "insulin_u_per_day"]
    pd.testing.assert_frame_equal(a.visits[cols], b.visits[cols])
    assert (a.daily["graft_fraction"] == 0).all()


def test_parquet_roundtrip_duckdb_and_atomic_write(small_result, tmp_path, monkeypatch):
    out = tmp_path / "run"
    small_result.to_parquet(out)
    back = TrialResult.from_parquet(out)
    pd.testing.assert_frame_equal(back.visits, small_result.visits)
    q = back.query("select arm, count(*) as n from participants where enrolled group by arm "
                   "order by arm")  # fmt: skip
    assert q.to_dict("list") == {"arm": ["full_dose", "half_dose"], "n": [2, 1]}

    # an interrupted write leaves the previous result untouched and no temporary directory
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(KeyboardInterrupt):
        small_result.to_parquet(out)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    pd.testing.assert_frame_equal(TrialResult.from_parquet(out).visits, small_result.visits)


def test_summary_schema(small_result):
    s = json.loads(json.dumps(small_result.summary()))
    assert s["protocol"] == "forward_phase12" and s["seed"] == 7
    arm = s["arms"]["full_dose"]
    assert arm["n_dosed"] == 2
    assert set(arm["by_visit"]) == {"0", "29"}
    keys = {"hba1c_mean", "tir_mean", "tbr_54_mean", "insulin_u_per_day_mean",
            "insulin_independent_n", "cpeptide_fasting_pmol_l_mean",
            "cpeptide_mmtt_peak_pmol_l_mean"}  # fmt: skip
    assert keys <= set(arm["by_visit"]["0"])


def test_cli_run_json_and_bad_protocol(tmp_path):
    path = Path(__file__).parent / "data" / "small.toml"
    res = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), "--seed",
                                   "5", "--json", "--no-report"])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (
        summary["seed"] == 5
        and summary["protocol"] == "small"
        and set(summary["arms"]) == {"half_dose", "full_dose"}
    )
    assert (tmp_path / "o" / "visits.parquet").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(
        path.read_text().replace('name = "full_dose"', 'name = "full_dose"\nroute = "iv"')
    )
    res = CliRunner().invoke(app, ["run", str(bad), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2
    assert "bad.toml" in res.output and "route" in res.output and "'portal'" in res.output
    assert not (tmp_path / "b").exists()


def test_compare_published_single_run_and_over_seeds(small_protocol, small_result):
    one = small_result.compare_published()
    assert list(one.columns) == list(tables.PUBLISHED)
    base = one.set_index("figure").loc["baseline mean HbA1c, %"]
    v0 = small_result.visits
    full0 = v0[(v0["day"] == 0) & (v0["arm"] == "full_dose")]["hba1c_pct"]
    assert base["simulated"] == pytest.approx(full0.mean())
    assert base["sim_low"] < base["simulated"] < base["sim_high"]  # t interval of 2 values
    # endpoints the run did not compute are not simulated, hence never "within"
    missing = one.set_index("figure").loc["insulin independent at 1 year"]
    assert np.isnan(missing["simulated"]) and not missing["within"]
    other = run_trial(small_protocol, seed=8)
    both = run_trial(small_protocol, seed=7).attach_seeds([other])
    assert both.seeds == [7, 8]
    over = both.compare_published().set_index("figure").loc["baseline mean HbA1c, %"]
    means = [
        full0.mean(),
        other.visits.query("day == 0 and arm == 'full_dose'")["hba1c_pct"].mean(),
    ]
    assert over["simulated"] == pytest.approx(np.mean(means))
    assert over["sim_low"] == pytest.approx(np.percentile(means, 2.5))


def test_report_of_a_real_run(small_result, tmp_path):
    path = small_result.report(tmp_path / "out")
    text = path.read_text()
    for section in ("consort", "baseline", "endpoints", "published", "swimmer",
                    "trajectories", "agp", "adverse-events"):  # fmt: skip
        assert f'<section id="{section}"' in text, section
    assert "http://" not in text and "https://" not in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html"]


def test_batch_replicate_does_not_depend_on_its_batch(small_protocol):
    from isletsim.trial.batch import replicate_seed, run_batch, run_batch_results

    both = run_batch_results(small_protocol, 3, [0, 1])
    alone = run_batch_results(small_protocol, 3, [1])
    for name in ("participants", "visits", "events", "daily", "cgm", "endpoints"):
        pd.testing.assert_frame_equal(getattr(both[1], name), getattr(alone[1], name))
    assert both[1].seed == replicate_seed(3, 1) != both[0].seed
    assert all(p.startswith("r1.") for p in alone[1].participants["participant"])
    summary = run_batch(small_protocol, 3, [1])["summary"]
    assert list(summary["arm"]) == ["half_dose", "full_dose"]
    assert summary["n_enrolled"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="distinct"):
        run_batch(small_protocol, 3, [1, 1])
