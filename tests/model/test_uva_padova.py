"""The right-hand side: steady state, analytic pieces, non-negativity rule."""

import math

import numpy as np
import pytest

from isletsim.model import uva_padova as m
from isletsim.params import load_cohort


@pytest.fixture(scope="module")
def pars():
    c = load_cohort()
    return m.parameter_matrix(c), m.initial_state(c)


def test_basal_state_is_an_equilibrium(pars):
    p, x = pars
    for i in range(p.shape[0]):
        basal = p[i, m.P_U2SS] * p[i, m.P_BW] / 6000.0
        dx = m.rhs_numpy(x[i], p[i], 0.0, basal, 0.0)
        assert np.abs(dx[: m.N_S2008_STATES]).max() < 1e-8
        assert dx[m.IPO] == dx[m.CPC] == dx[m.CPP] == 0.0  # no graft: no secretion


def test_gastric_emptying_limits():
    # No meal remembered: kmax (Dalla Man 2006 / simglucose).
    assert m.gastric_emptying_rate(1e4, 0.0, 0.05, 0.01, 0.8, 0.2) == 0.05
    # Full stomach (Qsto = Dbar) and empty stomach approach kmax; in between it dips.
    dbar = 50_000.0
    full = m.gastric_emptying_rate(dbar, dbar, 0.05, 0.01, 0.8, 0.2)
    mid = m.gastric_emptying_rate(0.5 * dbar, dbar, 0.05, 0.01, 0.8, 0.2)
    empty = m.gastric_emptying_rate(0.0, dbar, 0.05, 0.01, 0.8, 0.2)
    assert mid < min(full, empty)
    a = 5 / (2 * dbar * 0.2)
    c = 5 / (2 * dbar * 0.2)
    expected = 0.01 + 0.02 * (math.tanh(a * (0.5 - 0.8) * dbar) - math.tanh(c * 0.3 * dbar) + 2)
    assert mid == pytest.approx(expected, rel=1e-14)


def test_meal_and_insulin_enter_where_expected(pars):
    p, x = pars
    i = 0
    basal = p[i, m.P_U2SS] * p[i, m.P_BW] / 6000.0
    base = m.rhs_numpy(x[i], p[i], 0.0, basal, 0.0)
    eat = m.rhs_numpy(x[i], p[i], 5.0, basal, 5000.0)
    assert eat[m.QSTO1] - base[m.QSTO1] == pytest.approx(5000.0)  # 5 g/min -> mg/min
    bolus = m.rhs_numpy(x[i], p[i], 0.0, basal + 1.0, 0.0)
    assert bolus[m.ISC1] - base[m.ISC1] == pytest.approx(6000.0 / p[i, m.P_BW])  # pmol/kg/min


def test_negative_state_may_recover_but_not_fall(pars):
    """Reference freezes a negative state; we let it recover (documented choice)."""
    p, x = pars
    xi = x[0].copy()
    xi[m.GP] = -1.0  # EGP > 0 pushes plasma glucose back up
    dx = m.rhs_numpy(xi, p[0], 0.0, 0.0, 0.0)
    assert dx[m.GP] > 0
    xi[m.ISC1] = -1.0  # no insulin input: derivative would be positive (recovers)
    assert m.rhs_numpy(xi, p[0], 0.0, 0.0, 0.0)[m.ISC1] > 0
    xi[m.GS] = -1.0
    xi[m.GP] = -5.0  # Gs would fall further towards Gp: blocked at 0
    assert m.rhs_numpy(xi, p[0], 0.0, 0.0, 0.0)[m.GS] == 0.0


def test_fast_tanh_matches_libm():
    x = np.concatenate([np.linspace(-30, 30, 200_001), [0.0, 1e-12, -1e-12, 7.9, 8.0]])
    approx = np.array([m.fast_tanh(v) for v in x[::50]])
    assert np.abs(approx - np.tanh(x[::50])).max() < 3e-7
    assert m.fast_tanh(0.0) == 0.0
    assert m.fast_tanh(-2.0) == -m.fast_tanh(2.0)
