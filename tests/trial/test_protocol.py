"""Protocol files: the shipped ones load; every error names the file, the key and the reason."""

from __future__ import annotations

import tomllib

import pytest

from isletsim.trial import Protocol, ProtocolError

from .conftest import PROTOCOLS


@pytest.mark.parametrize("name", ["forward_phase12", "donor_islets_cit07", "standard_care_control"])
def test_shipped_protocols_load(name):
    p = Protocol.load(PROTOCOLS / f"{name}.toml")
    assert p.protocol.name == name
    assert p.visits.days[0] == 0


def test_published_design():
    p = Protocol.load(PROTOCOLS / "forward_phase12.toml")
    assert [(a.name, a.n, a.dose) for a in p.arms] == [
        ("half_dose", 2, "half"),
        ("full_dose", 12, "full"),
    ]
    assert p.visits.days == (0, 29, 90, 180, 270, 365)
    assert p.eligibility.min_gold_score == 4 and p.eligibility.min_severe_events_prior_year == 2
    assert p.protocol.follow_up_days == 365


def _forward() -> dict:
    return tomllib.loads((PROTOCOLS / "forward_phase12.toml").read_text())


def _error(d: dict) -> str:
    with pytest.raises(ProtocolError) as exc:
        Protocol.from_dict(d, source="trial.toml")
    return str(exc.value)


def test_unknown_key_names_file_arm_and_key():
    d = _forward()
    d["arms"][1]["doze"] = 3
    msg = _error(d)
    assert "trial.toml: arms[1] ('full_dose').doze: unknown key" in msg


def test_bad_choice_lists_allowed_values():
    d = _forward()
    d["arms"][0]["immunosuppression"] = "tacrolimus"
    msg = _error(d)
    assert "arms[0] ('half_dose').immunosuppression" in msg
    assert "'zimislecel-like'" in msg and "'tacrolimus'" in msg


def test_unknown_named_dose():
    d = _forward()
    d["arms"][0]["dose"] = "quarter"
    msg = _error(d)
    assert "arms[0] ('half_dose').dose: unknown dose 'quarter'" in msg and "'half'" in msg


def test_several_errors_reported_together():
    d = _forward()
    d["protocol"]["seed"] = -1
    d["visits"]["cgm_window_days"] = 0
    msg = _error(d)
    assert "protocol.seed" in msg and "visits.cgm_window_days" in msg


def test_visits_after_follow_up_and_endpoint_windows():
    d = _forward()
    d["protocol"]["follow_up_days"] = 200
    msg = _error(d)
    assert "after follow_up_days = 200" in msg
    d = _forward()
    d["endpoints"]["names"] = ["primary", "nonsense"]
    assert "unknown endpoint(s) ['nonsense']" in _error(d)


def test_control_arm_rejects_dose_and_immunosuppression():
    d = _forward()
    d["arms"][0].pop("product")
    msg = _error(d)
    assert "standard-care arm" in msg


def test_missing_required_and_bad_toml(tmp_path):
    d = _forward()
    del d["arms"][0]["n"]
    assert "arms[0] ('half_dose').n: Field required" in _error(d)
    bad = tmp_path / "bad.toml"
    bad.write_text("[protocol\nname='x'")
    with pytest.raises(ProtocolError, match=r"bad.toml: not valid TOML"):
        Protocol.load(bad)
    with pytest.raises(ProtocolError, match="cannot read"):
        Protocol.load(tmp_path / "missing.toml")


def test_with_arms_revalidates():
    p = Protocol.load(PROTOCOLS / "forward_phase12.toml")
    zero = p.with_arms(dose=0.0)
    assert all(a.dose == 0.0 for a in zero.arms)
    with pytest.raises(ProtocolError):
        p.with_arms(dose=-1.0)
