"""Behaviour of whole one-year trials (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from isletsim.trial import Protocol, run_trial

from .conftest import PROTOCOLS

pytestmark = pytest.mark.slow
SEEDS = (1, 2, 3)


def _full_dose_only(dose: float) -> Protocol:
    p = Protocol.load(PROTOCOLS / "forward_phase12.toml")
    data = p.model_dump()
    data["arms"] = [{**a, "dose": dose} for a in data["arms"] if a["name"] == "full_dose"]
    return Protocol.from_dict(data, source="full-dose arm")


def test_larger_dose_never_does_worse_on_average():
    """Over the same seeds (same people, meals and draws), a larger dose gives at least as
    many insulin-independent participants and a larger fall of insulin on average."""
    outcome = {}
    for dose in (0.4e9, 0.8e9, 1.6e9):
        runs = [run_trial(_full_dose_only(dose), s) for s in SEEDS]
        ep = [r.endpoints.set_index("endpoint") for r in runs]
        outcome[dose] = (
            np.mean([e.loc["insulin_independence_d180_365", "n"] for e in ep]),
            np.mean([e.loc["insulin_dose_change_pct_d365", "value"] for e in ep]),
        )
    doses = sorted(outcome)
    for lo, hi in itertools.pairwise(doses):
        assert outcome[hi][0] >= outcome[lo][0], outcome
        assert outcome[hi][1] < outcome[lo][1], outcome


def test_control_protocol_stays_at_standard_care():
    """No infusion: no C-peptide, nobody insulin independent, insulin and HbA1c stable, and
    HbA1c in the published standard-care range of the care suite (6.9-8.2 %)."""
    r = run_trial(PROTOCOLS / "standard_care_control.toml")
    v = r.visits
    assert (v["cpeptide_mmtt_peak_pmol_l"].fillna(0) == 0).all()
    assert not v["insulin_independent"].any()
    change = r.endpoints.set_index("endpoint").loc["insulin_dose_change_pct_d365", "value"]
    assert abs(change) < 5.0
    hba1c = v.groupby("day")["hba1c_pct"].mean().dropna()
    assert hba1c.between(6.9, 8.2).all(), hba1c
    assert (r.events["kind"] == "severe_hypoglycemia").any()
    assert not (r.events["kind"] == "infusion").any()


def test_full_dose_lowers_severe_events_against_control():
    """After day 90 the full-dose arm has fewer severe events per person than its own
    baseline period and than the control protocol (same eligibility)."""
    full = run_trial(PROTOCOLS / "forward_phase12.toml")
    ctl = run_trial(PROTOCOLS / "standard_care_control.toml")

    def rate(r, arm=None):
        ev = r.events[(r.events["kind"] == "severe_hypoglycemia") & (r.events["day"] >= 90)]
        n = (
            r.participants["enrolled"].sum()
            if arm is None
            else (r.participants["arm"] == arm).sum()
        )
        if arm is not None:
            ev = ev[ev["arm"] == arm]
        return len(ev) / n

    assert rate(full, "full_dose") < rate(ctl)
