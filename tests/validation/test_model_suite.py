"""The engine against simglucose 0.2.11 reference trajectories (the ``model`` suite)."""

import pytest

from isletsim.validation import Check, run_suite


@pytest.fixture(scope="module")
def checks() -> list[Check]:
    return run_suite("model")


def test_every_check_passes(checks):
    failed = [(c.name, c.value, c.tolerance) for c in checks if not c.passed]
    assert failed == []


def test_suite_covers_all_runs(checks):
    names = {c.name for c in checks}
    closed = [n for n in names if n.startswith("closed_loop/") and n.endswith("/sc_glucose")]
    assert len(closed) == 30
    for p in ("adolescent#001", "adult#001", "child#001"):
        assert f"open_loop/{p}/glucose_plasma_mg_dl" in names
        assert sum(n.startswith(f"open_loop/{p}/state/") for n in names) == 13


def test_closed_loop_error_well_inside_tolerance(checks):
    worst = max(c.value for c in checks if c.name.endswith("/sc_glucose"))
    assert worst < 0.25  # measured 0.18 mg/dL (child#007)


def test_check_fails_when_out_of_tolerance():
    c = Check.at_most("x", "d", 2.0, 1.0, units="u", source="s", reference=0.0)
    assert not c.passed
    assert not Check.at_most("x", "d", float("nan"), 1.0, units="u", source="s",
                             reference=0.0).passed


def test_unknown_suite():
    with pytest.raises(KeyError, match="known suites"):
        run_suite("nope")
