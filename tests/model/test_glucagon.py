"""Glucagon and counter-regulation (UVA/Padova S2013 glucagon subsystem, Dalla Man 2014)."""

import numpy as np
import pytest

from isletsim.engine import simulate
from isletsim.model import uva_padova as m
from isletsim.params import load_cohort, select_patients
from isletsim.params.glucagon import glucagon_sources, load_glucagon
from isletsim.therapy import BasalBolus, NoInsulin

MEALS = "07:00=45,12:00=70,18:00=80"
GLUCAGON_STATES = [m.HH, m.XH, m.SRSH, m.HSC1, m.HSC2]


@pytest.fixture(scope="module")
def cohort():
    c = load_cohort()
    return c, m.parameter_matrix(c), m.initial_state(c)


def test_parameter_file_is_complete_and_marked_unverified():
    values = load_glucagon()
    assert {f"glc_{k}" for k in values} == set(m.GLUCAGON_PARAMS)
    src = glucagon_sources()
    assert not src["verified"].any()  # science reference 1.2: all glucagon values [U]
    assert src["source"].str.len().min() > 10 and src["unit"].notna().all()


def test_defaults_and_overrides_reach_the_parameter_matrix(cohort):
    c, p, x = cohort
    glc = load_glucagon()
    assert np.all(p[:, m.P_GXI] == glc["xi"]) and np.all(p[:, m.P_GA_NATIVE] == 0.0)
    assert np.all(p[:, m.P_GSRBH] == glc["n"] * glc["Hb"])
    # basal initial values: H = Hb, SRsH = SRbH, XH and s.c. depots empty
    assert np.all(x[:, m.HH] == glc["Hb"]) and np.all(x[:, m.SRSH] == p[:, m.P_GSRBH])
    assert np.all(x[:, [m.XH, m.HSC1, m.HSC2]] == 0.0)
    t = c.iloc[:2].copy()
    t["glc_xi"] = [0.5, 0.0]
    t["x0_H"] = 75.0
    assert list(m.parameter_matrix(t)[:, m.P_GXI]) == [0.5, 0.0]
    assert np.all(m.initial_state(t)[:, m.HH] == 75.0)


def test_basal_state_is_an_exact_equilibrium_of_the_glucagon_states(cohort):
    _, p, x = cohort
    for i in range(p.shape[0]):
        basal = p[i, m.P_U2SS] * p[i, m.P_BW] / 6000.0
        for phi in (0.0, 1.0):
            dx = m.rhs_numpy(x[i], p[i], 0.0, basal, 0.0, phi)
            if phi == 0.0:  # no alpha-cell function: glucagon states exactly constant
                assert np.all(dx[GLUCAGON_STATES] == 0.0)
        # a healthy alpha cell at its own basal glucose Gb, H = Hb: steady state too
        xi = x[i].copy()
        xi[m.GP] = p[i, m.P_GGB] / p[i, m.P_INV_VG]
        dx = m.rhs_numpy(xi, p[i], 0.0, basal, 0.0, 1.0)
        assert abs(dx[m.SRSH]) < 1e-12 and abs(dx[m.HH]) < 1e-12 and dx[m.XH] == 0.0


def test_no_alpha_cells_reduce_exactly_to_the_model_without_glucagon(cohort):
    """With phi = 0 the glucagon parameters cannot change anything, bit for bit."""
    _, p, x = cohort
    rng = np.random.default_rng(7)
    wild = p.copy()
    for j in (m.P_GSIGMA1, m.P_GSIGMA2, m.P_GDELTA, m.P_GRHO, m.P_GKH, m.P_GXI):
        wild[:, j] *= 50.0
    for i in range(p.shape[0]):
        xi = x[i].copy()
        xi[m.GP] *= rng.uniform(0.2, 2.0)  # hypo- and hyperglycaemia, falling glucose
        xi[m.ISC1] *= rng.uniform(0.0, 5.0)
        a = m.rhs_numpy(xi, p[i], 1.0, 0.05, 40_000.0, 0.0)
        b = m.rhs_numpy(xi, wild[i], 1.0, 0.05, 40_000.0, 0.0)
        assert np.array_equal(a, b)
        assert np.all(a[GLUCAGON_STATES] == 0.0)
    # ... and over a closed-loop simulation: trajectories identical to glucagon action off
    names = ["adult#001", "adolescent#003", "child#002"]
    t = select_patients(names)
    off = t.copy()
    off["glc_xi"] = 0.0
    r = simulate(t, 1, MEALS, BasalBolus(), record_states=True)
    r_off = simulate(off, 1, MEALS, BasalBolus(), record_states=True)
    assert np.array_equal(r.states, r_off.states)
    h = r.states[:, :, GLUCAGON_STATES]
    assert np.all(h == h[:, :1, :])  # glucagon states constant at their initial values
    assert np.all(r.trace["glucagon_pg_ml"] == load_glucagon()["Hb"])


def test_falling_glucose_raises_secretion_and_egp(cohort):
    _, p, x = cohort
    i = 0
    pi = p[i]
    basal = pi[m.P_U2SS] * pi[m.P_BW] / 6000.0
    xi = x[i].copy()
    xi[m.GP] = 55.0 / pi[m.P_INV_VG]  # 55 mg/dL, below Gth
    no_graft = m.rhs_numpy(xi, pi, 0.0, basal, 0.0, 0.0)
    graft = m.rhs_numpy(xi, pi, 0.0, basal, 0.0, 0.5)
    assert no_graft[m.SRSH] == 0.0 and graft[m.SRSH] > 0.0  # static secretion rises
    # analytic target: SRbH + a (sigma1 (Gth - G)/(I + 1)), rho (target - SRsH)
    ins = xi[m.IP] * pi[m.P_INV_VI]
    target = pi[m.P_GSRBH] + 0.5 * pi[m.P_GSIGMA1] * (pi[m.P_GGTH] - 55.0) / (ins + 1.0)
    assert graft[m.SRSH] == pytest.approx(pi[m.P_GRHO] * (target - pi[m.P_GSRBH]), rel=1e-12)
    # more insulin blunts the response (insulin-dependent branch below Gb)
    xi_hi = xi.copy()
    xi_hi[m.IP] *= 3.0
    assert 0.0 < m.rhs_numpy(xi_hi, pi, 0.0, basal, 0.0, 0.5)[m.SRSH] < graft[m.SRSH]
    # above Gb glucose suppresses static secretion below basal
    xi_hyper = x[i].copy()
    xi_hyper[m.GP] = 200.0 / pi[m.P_INV_VG]
    assert m.rhs_numpy(xi_hyper, pi, 0.0, basal, 0.0, 0.5)[m.SRSH] < 0.0
    # raised glucagon drives XH, and XH raises EGP (hence dGp) by xi * XH
    xh = xi.copy()
    xh[m.HH] = 150.0
    d = m.rhs_numpy(xh, pi, 0.0, basal, 0.0, 0.5)
    assert d[m.XH] == pytest.approx(pi[m.P_GKH] * (150.0 - pi[m.P_GHB]), rel=1e-12)
    xh[m.XH] = 40.0
    d2 = m.rhs_numpy(xh, pi, 0.0, basal, 0.0, 0.5)
    assert d2[m.GP] - d[m.GP] == pytest.approx(pi[m.P_GXI] * 40.0, rel=1e-9)
    # dynamic secretion: a falling glucose (insulin action) adds a delta max(-dG/dt, 0)
    fall = x[i].copy()  # at basal glucose, with tripled hepatic insulin action
    fall[m.ID] *= 3.0  # EGP falls: dGp/dt < 0
    d3 = m.rhs_numpy(fall, pi, 0.0, basal, 0.0, 0.5)
    dgdt = d3[m.GP] * pi[m.P_INV_VG]
    assert dgdt < 0
    expected = fall[m.SRSH] - 0.5 * pi[m.P_GDELTA] * dgdt - pi[m.P_GN] * fall[m.HH]
    assert d3[m.HH] == pytest.approx(expected, rel=1e-12)


def test_subcutaneous_glucagon_route(cohort):
    _, p, x = cohort
    pi = p[0]
    d = m.rhs_numpy(x[0], pi, 0.0, 0.0, 0.0, 0.0, glucagon_pg_ml_min=10.0)
    assert d[m.HSC1] == 10.0 and d[m.HSC2] == 0.0 and d[m.HH] == 0.0
    xi = x[0].copy()
    xi[m.HSC1], xi[m.HSC2] = 100.0, 50.0
    d = m.rhs_numpy(xi, pi, 0.0, 0.0, 0.0, 0.0)
    assert d[m.HSC2] == pytest.approx(pi[m.P_GKH1] * 100.0 - pi[m.P_GKH3] * 50.0)
    assert d[m.HH] == pytest.approx(pi[m.P_GKH3] * 50.0)  # RaH = kh3 Hsc2 enters plasma


def test_graft_glucagon_makes_insulin_overdose_hypoglycaemia_shallower():
    t = select_patients(["adult#001", "adolescent#003"])
    t["x0_11"] = t["x0_11"] + 8.0 * 6000.0 / t["BW"]  # 8 U s.c. overdose at minute 0
    off = t.copy()
    off["glc_alpha_per_phi"] = 0.0  # same graft, its glucagon disabled
    on = simulate(t, 0.5, "", NoInsulin(), graft_fraction=0.5)
    no = simulate(off, 0.5, "", NoInsulin(), graft_fraction=0.5)
    g_on = on.trace["glucose_plasma_mg_dl"]
    g_no = no.trace["glucose_plasma_mg_dl"]
    assert np.all(g_no.min(axis=1) < 80.0)  # the overdose does cause hypoglycaemia
    assert np.all(g_on.min(axis=1) > g_no.min(axis=1) + 1.0)
    assert np.all(on.trace["glucagon_pg_ml"].max(axis=1) > load_glucagon()["Hb"] + 10.0)
    assert np.all(no.trace["glucagon_pg_ml"] == load_glucagon()["Hb"])
