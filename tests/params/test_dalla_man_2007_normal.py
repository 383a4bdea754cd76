"""The Dalla Man 2007 normal subject: Table 1 values, derived columns, basal steady state."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import isletsim as isl
from isletsim.model import uva_padova as m
from isletsim.params import COHORTS, load_cohort
from isletsim.therapy import NoInsulin

TOOL = Path(__file__).resolve().parents[2] / "tools" / "make_normal_subject.py"


@pytest.fixture(scope="module")
def normal() -> pd.DataFrame:
    return load_cohort("dalla-man-2007-normal")


def test_registered_and_complete(normal):
    assert "dalla-man-2007-normal" in COHORTS
    assert list(normal["Name"]) == ["normal#001"]
    cols = [*m.PARAMS, *m.INITIAL_STATE_COLUMNS, "x0_Ipo", "x0_Y", "x0_CPc", "x0_CPp",
            "CR", "CF", "Age", "TDI", "HEb", "sec_h", "sec_Sb"]
    assert np.isfinite(normal[cols].to_numpy(float)).all()


def test_table_1_values(normal):
    r = normal.iloc[0]
    table_1 = {"BW": 78, "Vg": 1.88, "k1": 0.065, "k2": 0.079, "Vi": 0.05, "m1": 0.190,
               "m2": 0.484, "m4": 0.194, "kmax": 0.0558, "kmin": 0.008, "kabs": 0.057,
               "f": 0.9, "b": 0.82, "d": 0.010, "kp2": 0.0021, "kp3": 0.009, "ki": 0.0079,
               "Fsnc": 1, "Vmx": 0.047, "Km0": 225.59, "p2u": 0.0331, "ke1": 0.0005,
               "ke2": 339, "kd": 0.0164, "ka1": 0.0018, "ka2": 0.0182, "ksc": 0.1,
               "u2ss": 0, "HEb": 0.6471, "sec_m5": 0.0304, "sec_kp4": 0.0618, "sec_K": 2.30,
               "sec_alpha": 0.050, "sec_beta": 0.11, "sec_gamma": 0.5, "sec_Sb": 1.8}
    for k, v in table_1.items():
        assert r[k] == pytest.approx(v, rel=1e-12), k


def test_derived_columns(normal):
    r = normal.iloc[0]
    assert r.sec_h == pytest.approx(178 / 1.88) and r.Gb == r.sec_h
    assert r.HEb == r.m6 == 0.6471
    assert r.m30 == pytest.approx(r.HEb * r.m1 / (1 - r.HEb))
    assert r.Ib == pytest.approx(r["x0_ 6"] / r.Vi)
    assert r.EGPb == pytest.approx(r.Fsnc + r.k1 * 178 - r.k2 * 135)
    assert r.Vm0 == pytest.approx((r.EGPb - r.Fsnc) * (r.Km0 + 135) / 135)
    assert r.kp1 == pytest.approx(r.EGPb + r.kp2 * 178 + r.kp3 * r.Ib + r.sec_kp4 * 3.6)
    assert r.x0_Ipo == pytest.approx(r.sec_Sb / r.sec_gamma)
    # reported in the README: derived values differ from Table 1 by a few per cent
    assert r.kp1 == pytest.approx(2.776, abs=5e-4)
    assert r.Vm0 == pytest.approx(2.417, abs=5e-4)
    assert r.Ib == pytest.approx(30.53, abs=5e-3)


def test_rhs_vanishes_at_basal_with_graft_fraction_1(normal):
    p = m.parameter_matrix(normal)[0]
    x = m.initial_state(normal)[0]
    dx = m.rhs_numpy(x, p, 0.0, 0.0, 0.0, phi=1.0)
    assert np.max(np.abs(dx)) < 1e-8
    # and it is not a steady state without the pancreas (the test can fail)
    assert np.max(np.abs(m.rhs_numpy(x, p, 0.0, 0.0, 0.0, phi=0.0))) > 1e-3


def test_fasting_simulation_stays_at_basal(normal):
    res = isl.simulate(normal, days=0.25, therapy=NoInsulin(), graft_fraction=np.ones(1))
    g = res.trace["glucose_plasma_mg_dl"][0]
    assert np.max(np.abs(g - normal["Gb"].iloc[0])) < 1e-6
    c = res.trace["cpeptide_pmol_l"][0]
    # Van Cauter steady state Sb BW / (k10 Vd), science reference 3.2: ~0.54-0.56 nmol/L
    assert c[-1] == pytest.approx(c[0], rel=1e-9)
    assert 0.54 < c[0] / 1000 < 0.57


def test_tool_reproduces_the_shipped_files(normal):
    spec = importlib.util.spec_from_file_location("make_normal_subject", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    patients, quest = tool.normal_subject()
    assert tool.max_abs_derivative(patients, quest) < 1e-10
    fresh = patients.merge(quest, on="Name").set_index("Name", drop=False)
    shipped = normal[fresh.columns]
    num = [c for c in fresh.columns if c not in ("Name", "sex")]
    np.testing.assert_allclose(shipped[num].to_numpy(float), fresh[num].to_numpy(float),
                               rtol=1e-14)
