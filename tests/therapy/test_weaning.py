"""Clinician insulin weaning (isletsim.therapy.weaning) on S2008 adults with an islet graft."""

from importlib import resources

import numpy as np
import pytest

from isletsim.engine import simulate
from isletsim.params import load_cohort
from isletsim.params.toml_file import ParameterFileError
from isletsim.therapy import BasalBolus, OpenLoop
from isletsim.therapy.base import Observation
from isletsim.therapy.weaning import ClinicianWeaning, WeaningProtocol

MEALS = "07:00=45,12:00=70,18:00=80"


def _tbr70(result):
    df = result.to_frame()
    return df.groupby("participant")["cgm_mg_dl"].apply(lambda s: (s < 70).mean() * 100)


def _insulin_by_week(result):
    df = result.to_frame()
    week = df["minute"] // (7 * 1440)
    return df.groupby(["participant", week])["insulin_u"].sum().unstack()


def test_strong_graft_weans_and_stops_insulin_with_less_hypoglycaemia():
    names = ["adult#001", "adult#002", "adult#004"]
    graft = np.ones(len(names))
    policy = ClinicianWeaning(BasalBolus())
    weaned = simulate(names, 50, MEALS, policy, graft_fraction=graft)
    plain = simulate(names, 50, MEALS, BasalBolus(), graft_fraction=graft)

    current = policy.current.loc[names]
    assert current["stopped"].all()
    assert (current["factor"] == 0.0).all()
    log = policy.log
    assert set(log["action"]) <= {"reduce", "stop"}
    assert sorted(log.loc[log["action"] == "stop", "participant"]) == sorted(names)
    # each participant's dose factor only ever falls, to 0 at the stop
    for _, g in log.groupby("participant"):
        assert np.all(np.diff(g["factor"].to_numpy()) < 0)
    weekly = _insulin_by_week(weaned)
    assert np.all(weekly.iloc[:, -1] < 0.05 * weekly.iloc[:, 0])
    assert np.all(_tbr70(weaned) < _tbr70(plain))
    assert _tbr70(weaned).mean() < 0.25 * _tbr70(plain).mean()


def test_no_graft_keeps_the_dose():
    names = ["adult#001", "adult#002", "adult#003"]
    policy = ClinicianWeaning(BasalBolus())
    weaned = simulate(names, 21, MEALS, policy)
    plain = simulate(names, 21, MEALS, BasalBolus())
    assert len(policy.log) == 0
    np.testing.assert_array_equal(policy.current["factor"], 1.0)
    assert not policy.current["stopped"].any()
    np.testing.assert_allclose(weaned.to_frame()["insulin_u"], plain.to_frame()["insulin_u"])


def test_graft_loss_after_stop_restarts_insulin():
    names = ["adult#004", "adult#009"]

    def phi(day):
        return np.full(len(names), 1.0 if day < 24.0 else 0.0)

    policy = ClinicianWeaning(BasalBolus())
    simulate(names, 28, MEALS, policy, graft_fraction=phi, record=False)
    log = policy.log
    for name in names:
        mine = log[log["participant"] == name]
        stop_day = mine.loc[mine["action"] == "stop", "day"]
        restart = mine[mine["action"] == "restart"]
        assert len(stop_day) == 1 and stop_day.iloc[0] <= 24
        assert len(restart) == 1 and 24 < restart["day"].iloc[0] <= 27
        assert restart["factor"].iloc[0] == pytest.approx(policy.protocol.restart_factor)
        assert restart["mean_mg_dl"].iloc[0] > policy.protocol.restart_daily_mean_above_mg_dl
    assert not policy.current["stopped"].any()


def test_packaged_protocol_is_valid_and_documented():
    p = WeaningProtocol.clinician()
    assert p.review_interval_days == 7
    assert 0.0 < p.reduce_step < 1.0
    assert p.restart_factor == pytest.approx(0.5)


def _packaged_text():
    path = resources.files("isletsim.params") / "weaning" / "clinician.toml"
    return path.read_text()


def _edit(text, key, field, new):
    """Replace ``field = ...`` inside entry ``[key]``."""
    head, _, rest = text.partition(f"[{key}]\n")
    body, sep, tail = rest.partition("\n[")
    lines = [f"{field} = {new}" if ln.startswith(f"{field} =") else ln for ln in body.split("\n")]
    return head + f"[{key}]\n" + "\n".join(lines) + sep + tail


@pytest.mark.parametrize(
    ("key", "field", "new", "words"),
    [
        ("reduce_step", "value", "-0.2", "fraction in (0, 1)"),
        ("hypo_cut_step", "value", "1.5", "fraction in (0, 1)"),
        ("review_interval_days", "value", "0", ">= 1"),
        ("restart_after_failed_reviews", "value", "1.5", "whole number"),
        ("stop_tar180_max_pct", "value", "120.0", "percentage"),
        ("restart_factor", "value", "2.0", "max_factor"),
        ("hypo_check_mg_dl", "value", "nan", "finite"),
        ("reduce_step", "verified", "true", "tag"),
    ],
)
def test_bad_protocol_values_name_file_and_key(tmp_path, key, field, new, words):
    path = tmp_path / "bad_weaning.toml"
    path.write_text(_edit(_packaged_text(), key, field, new))
    with pytest.raises(ParameterFileError) as info:
        WeaningProtocol.from_file(path)
    message = str(info.value)
    assert "bad_weaning.toml" in message and repr(key) in message
    assert words in message


def test_missing_and_unknown_protocol_keys(tmp_path):
    text = _packaged_text()
    path = tmp_path / "w.toml"
    path.write_text(text.replace("[increase_step]", "[increase_stepp]"))
    with pytest.raises(ParameterFileError, match=r"w\.toml.*increase_step"):
        WeaningProtocol.from_file(path)


def test_direct_construction_is_validated():
    p = WeaningProtocol.clinician()
    kwargs = {**p.__dict__, "reduce_step": 0.0}
    with pytest.raises(ValueError, match="reduce_step"):
        WeaningProtocol(**kwargs)


def test_daily_open_loop_is_refused_but_a_fine_grained_one_is_accepted():
    with pytest.raises(ValueError, match="control_period_min=5"):
        ClinicianWeaning(OpenLoop())
    policy = ClinicianWeaning(OpenLoop(control_period_min=5))
    simulate(["adult#001"], 2, MEALS, policy, graft_fraction=np.ones(1), record=False)
    assert (policy.log["action"] == "reduce").all() and len(policy.log) >= 1


def test_postmeal_rule_continues_weaning():
    """10.3 step 2: once weaning has begun, a week whose 2-h post-meal CGM is < 140 mg/dL
    (mean 120, no lows) cuts the dose; a participant without meals is kept."""
    table = load_cohort().loc[["adult#001", "adult#002"]]
    policy = ClinicianWeaning(OpenLoop(control_period_min=5))
    bound = policy.bind(table)
    bound.factor[:] = 0.8
    for t in range(0, 7 * 1440 + 5, 5):
        announced = np.array([45.0 if t % 1440 == 7 * 60 else 0.0, 0.0])
        bound.decide(Observation(t, np.full(2, 120.0), announced, np.full(2, 120.0)))
    log = policy.log
    first = log[log["participant"] == "adult#001"]
    assert list(first["rule"]) == ["postmeal_low"]
    assert first["factor"].iloc[0] == pytest.approx(0.8 * (1 - policy.protocol.reduce_step))
    assert (log["participant"] != "adult#002").all()
