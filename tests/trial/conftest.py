"""A small, fast protocol shared by the trial tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from isletsim.trial import Protocol, run_trial

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "protocols"


def small_protocol_dict(follow_up: int = 35) -> dict:
    """The published design shrunk to 3 participants, a 14-day run-in and short follow-up."""
    d = tomllib.loads((PROTOCOLS / "forward_phase12.toml").read_text())
    d["protocol"]["run_in_days"] = 14
    d["protocol"]["follow_up_days"] = follow_up
    d["population"]["max_screened"] = 400
    d["arms"][0]["n"] = 1
    d["arms"][1]["n"] = 2
    d["visits"] = {
        "days": [0, 29],
        "hba1c_days": [0, 29],
        "mmtt_days": [0, 29],
        "cgm_window_days": 14,
        "insulin_diary_days": 14,
    }
    d["endpoints"]["names"] = []
    return d


@pytest.fixture(scope="session")
def small_protocol() -> Protocol:
    return Protocol.from_dict(small_protocol_dict(), source="small.toml")


@pytest.fixture(scope="session")
def small_result(small_protocol):
    return run_trial(small_protocol, seed=7)
