"""C-peptide kinetics (Van Cauter 1992) and assay (science reference §3.2-3.3)."""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from isletsim.model import cpeptide as cp
from isletsim.units import cpeptide_ng_ml_to_nmol_l

EXAMPLE = {"age_years": 40.0, "sex": "male", "weight_kg": 75.0, "height_cm": 178.0}


@pytest.fixture(scope="module")
def kin() -> cp.CPeptideKinetics:
    return cp.van_cauter_kinetics(**EXAMPLE)


# ----------------------------------------------------------------------------- kinetics
def test_van_cauter_worked_example(kin):
    # male, 40 y, 75 kg, 178 cm: BSA 1.93, Vd 4.34 L, t2 34.76 min, k10 0.0573, k12 0.0539,
    # k21 0.0488 /min (science reference §3.2)
    assert round(float(kin.bsa_m2), 2) == 1.93
    assert round(float(kin.vd_l), 2) == 4.34
    assert float(kin.t_long_min) == pytest.approx(34.76)
    assert round(float(kin.k10), 4) == 0.0573
    assert round(float(kin.k12), 4) == 0.0539
    assert round(float(kin.k21), 4) == 0.0488
    c = cp.steady_state_concentration(1.8 * 75.0, kin)
    assert round(float(c) / 1000, 2) == 0.54  # nmol/L, normal fasting value


def test_rate_constants_reproduce_the_two_half_lives(kin):
    # the system matrix has eigenvalues -ln2/t1 and -ln2/t2, and a bolus into the central
    # compartment decays as F exp(-a t) + (1 - F) exp(-b t)
    k10, k12, k21 = float(kin.k10), float(kin.k12), float(kin.k21)
    m = np.array([[-(k10 + k12), k21], [k12, -k21]])
    a, b = math.log(2) / float(kin.t_short_min), math.log(2) / float(kin.t_long_min)
    np.testing.assert_allclose(sorted(-np.linalg.eigvals(m)), [b, a], rtol=1e-12)
    t = np.array([0.0, 3.0, 10.0, 60.0])
    sol = solve_ivp(lambda _t, x: m @ x, (0, 60), [1.0, 0.0], t_eval=t, rtol=1e-11, atol=1e-13)
    f = float(kin.fraction_short)
    np.testing.assert_allclose(sol.y[0], f * np.exp(-a * t) + (1 - f) * np.exp(-b * t), rtol=1e-7)


def test_female_and_obese_formulas():
    k = cp.van_cauter_kinetics(60.0, "F", 60.0, 165.0, "obese")
    bsa = 0.007184 * 60.0**0.425 * 165.0**0.725
    assert float(k.bsa_m2) == pytest.approx(bsa)
    assert float(k.vd_l) == pytest.approx(1.11 * bsa + 2.04)
    assert float(k.t_short_min) == 4.55 and float(k.fraction_short) == 0.78
    assert float(k.t_long_min) == pytest.approx(0.14 * 60 + 29.16)


def test_vectorised_equals_one_at_a_time():
    ages = np.array([25.0, 40.0, 63.0])
    sexes = np.array(["male", "Female", "m"])
    weights = np.array([70.0, 58.0, 90.0])
    heights = np.array([172.0, 160.0, 185.0])
    together = cp.van_cauter_kinetics(ages, sexes, weights, heights)
    for i in range(3):
        alone = cp.van_cauter_kinetics(ages[i], sexes[i], weights[i], heights[i])
        for name in ("bsa_m2", "vd_l", "k10", "k12", "k21"):
            assert getattr(together, name)[i] == getattr(alone, name)


# ----------------------------------------------------------------------------- ODE
def test_rhs_formula_and_steady_state(kin):
    k10, k12, k21 = float(kin.k10), float(kin.k12), float(kin.k21)
    dxc, dxp = cp.cpeptide_rhs(100.0, 50.0, 20.0, k10, k12, k21)
    assert dxc == pytest.approx(20.0 - (k10 + k12) * 100.0 + k21 * 50.0)
    assert dxp == pytest.approx(k12 * 100.0 - k21 * 50.0)
    xc, xp = cp.steady_state_amounts(135.0, kin)
    d = cp.cpeptide_rhs(float(xc), float(xp), 135.0, k10, k12, k21)
    assert abs(d[0]) < 1e-10 and abs(d[1]) < 1e-10


def test_mass_balance_and_analytic_steady_state(kin):
    # secreted = in the body + eliminated (k10 Xc), at all times; after 24 h of constant
    # secretion the concentration is the analytic ISR / (k10 Vd)
    k10, k12, k21 = float(kin.k10), float(kin.k12), float(kin.k21)

    def isr(t):
        return 135.0 + (400.0 if 30.0 <= t < 90.0 else 0.0)  # a meal-like burst

    def f(t, x):
        dxc, dxp = cp.cpeptide_rhs(x[0], x[1], isr(t), k10, k12, k21)
        return [dxc, dxp, k10 * x[0]]

    t_eval = np.array([30.0, 90.0, 300.0, 1440.0])
    sol = solve_ivp(f, (0, 1440), [0.0, 0.0, 0.0], t_eval=t_eval, method="LSODA",
                    rtol=1e-10, atol=1e-8, max_step=1.0)  # fmt: skip
    secreted = 135.0 * t_eval + 400.0 * np.clip(t_eval - 30.0, 0.0, 60.0)
    np.testing.assert_allclose(sol.y.sum(axis=0), secreted, rtol=1e-7)
    c_end = sol.y[0, -1] / float(kin.vd_l)
    assert c_end == pytest.approx(float(cp.steady_state_concentration(135.0, kin)), rel=1e-6)
    assert float(cp.concentration_pmol_l(sol.y[0, -1], kin)) == pytest.approx(c_end)


# ----------------------------------------------------------------------------- assay
def test_lod_censoring_not_substituted():
    m = cp.measure_cpeptide(np.array([0.0, 2.9, 3.0, 540.0]))  # pmol/L; LoD 0.003 nmol/L
    np.testing.assert_array_equal(m.censored, [True, True, False, False])
    assert np.isnan(m.value[:2]).all()
    np.testing.assert_allclose(m.value[2:], [0.003, 0.54])
    assert m.lod == 0.003 and m.unit == "nmol/L"
    trialnet = cp.measure_cpeptide(np.array([10.0, 17.0, 20.0]), lod_nmol_l=0.017)
    np.testing.assert_array_equal(trialnet.censored, [True, False, False])


def test_assay_error_lognormal_with_cv():
    rng = np.random.default_rng(3)
    m = cp.measure_cpeptide(np.full(200_000, 500.0), cv=0.1, rng=rng)
    assert not m.censored.any()
    assert m.value.mean() == pytest.approx(0.5, rel=2e-3)  # mean-preserving
    assert m.value.std() / m.value.mean() == pytest.approx(0.1, rel=0.02)
    assert np.log(m.value).std() == pytest.approx(math.sqrt(math.log1p(0.01)), rel=0.02)
    again = cp.measure_cpeptide(np.full(200_000, 500.0), cv=0.1, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(m.value, again.value)


def test_noise_can_push_below_lod_and_is_flagged():
    m = cp.measure_cpeptide(np.full(10_000, 3.1), cv=0.1, rng=np.random.default_rng(0))
    assert 0.2 < m.censored.mean() < 0.5  # true value just above LoD
    assert np.isnan(m.value[m.censored]).all() and (m.value[~m.censored] >= 0.003).all()


def test_units():
    m = cp.measure_cpeptide(np.array([1.0, 331.0]), unit="ng/mL")
    assert m.value[1] == pytest.approx(1.0)  # 0.331 nmol/L = 1 ng/mL
    assert m.censored[0]
    assert m.lod == pytest.approx(0.003 / 0.331)
    pm = m.to("pmol/L")
    assert pm.value[1] == pytest.approx(331.0) and pm.lod == pytest.approx(3.0)
    back = pm.to("nmol/L")
    assert back.value[1] == pytest.approx(0.331)
    np.testing.assert_array_equal(back.censored, m.censored)
    # Igls: 0.5 ng/mL = 0.17 nmol/L
    assert round(cpeptide_ng_ml_to_nmol_l(0.5), 2) == 0.17


def test_parameter_table_provenance():
    table = cp.cpeptide_parameter_table()
    assert "Van Cauter" in table["vd_male_slope"]["source"]
    assert table["assay_lod_trialnet"]["verified"] is True
    assert table["assay_lod_default"]["source"] == "unverified"
    for entry in table.values():
        assert entry["verified"] == (entry["tag"] == "V")


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs():
    with pytest.raises(ValueError, match="sex"):
        cp.van_cauter_kinetics(40, "x", 75, 178)
    with pytest.raises(ValueError, match="sex"):
        cp.van_cauter_kinetics(40, None, 75, 178)
    with pytest.raises(ValueError, match="population"):
        cp.van_cauter_kinetics(40, "m", 75, 178, "athlete")
    with pytest.raises(ValueError, match="weight_kg"):
        cp.van_cauter_kinetics(40, "m", -75, 178)
    with pytest.raises(ValueError, match="height_cm"):
        cp.van_cauter_kinetics(40, "m", 75, 0)
    with pytest.raises(ValueError, match="age_years"):
        cp.van_cauter_kinetics(-1, "m", 75, 178)
    with pytest.raises(ValueError, match="conc_pmol_l"):
        cp.measure_cpeptide(np.array([10.0, -1.0]))
    with pytest.raises(ValueError, match="conc_pmol_l"):
        cp.measure_cpeptide(np.array([np.nan]))
    with pytest.raises(ValueError, match="lod_nmol_l"):
        cp.measure_cpeptide(10.0, lod_nmol_l=0.0)
    with pytest.raises(ValueError, match="cv"):
        cp.measure_cpeptide(10.0, cv=-0.1)
    with pytest.raises(ValueError, match="unit"):
        cp.measure_cpeptide(10.0, unit="mg/dL")
    with pytest.raises(ValueError, match="isr_pmol_min"):
        cp.steady_state_concentration(-5.0, cp.van_cauter_kinetics(**EXAMPLE))
