"""The shipped S2008 patient table: names, and the identities of its derivable columns."""

import numpy as np
import pytest

from isletsim.params import UnknownPatientError, load_cohort, patient_names, select_patients


@pytest.fixture(scope="module")
def cohort():
    return load_cohort("uva-padova-2008")


def test_thirty_patients_in_three_groups(cohort):
    names = patient_names()
    assert len(names) == 30
    for group in ("adolescent", "adult", "child"):
        assert [n for n in names if n.startswith(group)] == [
            f"{group}#{i:03d}" for i in range(1, 11)
        ]
    assert cohort[["CR", "CF", "Age", "TDI"]].notna().all().all()


def test_derivable_columns(cohort):
    c = cohort
    rel = dict(rtol=1e-6)
    np.testing.assert_allclose(c.Gb, c.Gpb / c.Vg, **rel)
    np.testing.assert_allclose(c.Ib, c.Ipb / c.Vi, **rel)
    np.testing.assert_allclose(c.isc1ss, c.u2ss / (c.kd + c.ka1), **rel)
    np.testing.assert_allclose(c.isc2ss, c.kd * c.isc1ss / c.ka2, **rel)
    np.testing.assert_allclose(c.Ilb, c.m2 * c.Ipb / (c.m1 + c.m30), **rel)
    np.testing.assert_allclose(c.m30, c.HEb * c.m1 / (1 - c.HEb), **rel)
    np.testing.assert_allclose(c.m4, 0.4 * c.m2, **rel)
    np.testing.assert_allclose(c.kp1, c.EGPb + c.kp2 * c.Gpb + c.kp3 * c.Ib, **rel)
    np.testing.assert_allclose(c.Vm0, (c.EGPb - c.Fsnc) * (c.Km0 + c.Gtb) / c.Gtb, **rel)
    np.testing.assert_allclose(
        c.Ipb, c.u2ss / (c.m2 + c.m4 - c.m1 * c.m2 / (c.m1 + c.m30)), **rel
    )


def test_initial_state_is_the_basal_state(cohort):
    c = cohort
    pairs = {"x0_ 4": "Gpb", "x0_ 5": "Gtb", "x0_ 6": "Ipb", "x0_ 8": "Ib", "x0_ 9": "Ib",
             "x0_10": "Ilb", "x0_11": "isc1ss", "x0_12": "isc2ss", "x0_13": "Gpb"}
    for state, basal in pairs.items():
        np.testing.assert_allclose(c[state], c[basal], rtol=1e-9, err_msg=state)
    assert (c[["x0_ 1", "x0_ 2", "x0_ 3", "x0_ 7"]] == 0).all().all()


def test_unknown_patient_lists_valid_names():
    with pytest.raises(UnknownPatientError) as exc:
        select_patients(["adult#001", "adult#011"])
    msg = str(exc.value)
    assert "'adult#011'" in msg and "adult#010" in msg and "child#001" in msg


def test_unknown_cohort():
    with pytest.raises(UnknownPatientError, match="valid cohorts"):
        load_cohort("nope")
