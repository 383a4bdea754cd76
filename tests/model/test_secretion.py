"""Endogenous secretion of a graft (Dalla Man 2007) and C-peptide (Van Cauter 1992)."""

import numpy as np
import pytest

from isletsim.engine import simulate
from isletsim.model import uva_padova as m
from isletsim.params import load_cohort
from isletsim.therapy import BasalBolus, NoInsulin

MEALS = "07:00=45,12:00=70,18:00=80"
NAMES = ["adult#001", "adult#005", "adolescent#003", "child#002"]


@pytest.fixture(scope="module")
def runs():
    return {phi: simulate(NAMES, 2, MEALS, NoInsulin(), graft_fraction=phi)
            for phi in (0.0, 0.25, 0.5, 1.0)}


def test_no_graft_means_no_secretion(runs):
    r = runs[0.0]
    assert np.all(r.trace["cpeptide_pmol_l"] == 0.0)
    assert np.all(r.final_state[:, [m.IPO, m.CPC, m.CPP]] == 0.0)


def test_secretion_is_monotone_in_mass(runs):
    phis = sorted(runs)
    cpep = [runs[p].trace["cpeptide_pmol_l"].mean(axis=1) for p in phis]
    insulin = [runs[p].trace["insulin_plasma_pmol_l"].mean(axis=1) for p in phis]
    glucose = [runs[p].trace["glucose_plasma_mg_dl"].mean(axis=1) for p in phis]
    for lo, hi in zip(range(len(phis) - 1), range(1, len(phis)), strict=True):
        assert np.all(cpep[hi] > cpep[lo])
        assert np.all(insulin[hi] > insulin[lo])
        assert np.all(glucose[hi] < glucose[lo])


def test_full_graft_keeps_glucose_in_range_without_insulin(runs):
    g = runs[1.0].trace["glucose_plasma_mg_dl"][:, 1440:]  # second day
    tir = ((g >= 70) & (g <= 180)).mean(axis=1)
    assert np.all(tir > 0.9)
    fasting = g[:, 420 - 1]  # 06:59 on day 2
    assert np.all((fasting > 70) & (fasting < 110))


def test_cpeptide_steady_state_matches_two_compartment_balance():
    """After a long fast, C = Spo * BW / (k10 * Vd) (Van Cauter 1992 mass balance)."""
    r = simulate(["adult#001"], 2, "", NoInsulin(), graft_fraction=0.5)
    x = r.final_state[0]
    p = m.parameter_matrix(load_cohort().loc[["adult#001"]])[0]
    spo = 0.5 * (x[m.YS] + p[m.P_SSB])  # dG/dt ~ 0 at the fasting steady state
    expected = spo * p[m.P_BW] / (p[m.P_CP_K10] * p[m.P_CP_VD])
    assert r.trace["cpeptide_pmol_l"][0, -1] == pytest.approx(expected, rel=1e-3)


def test_graft_fraction_as_function_of_day():
    grow = simulate(["adult#001"], 2, MEALS, BasalBolus(),
                    graft_fraction=lambda day: np.array([0.0 if day < 1 else 0.5]))
    cp = grow.trace["cpeptide_pmol_l"][0]
    assert np.all(cp[:1441] == 0.0) and cp[-1] > 0


@pytest.mark.parametrize("bad", [-0.1, np.nan, np.inf])
def test_bad_graft_fraction(bad):
    with pytest.raises(ValueError, match="graft_fraction"):
        simulate(["adult#001"], 0.1, MEALS, graft_fraction=bad)
