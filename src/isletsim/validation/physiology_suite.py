"""Suite ``physiology``: HbA1c glycation model and C-peptide kinetics against published values.

References (science reference §3.2 and §5):

* ADAG, ``A1c = (eAG + 46.7) / 28.7`` (Nathan et al. *Diabetes Care* 2008;31:1473) [V]: the
  steady state of the dynamic glycation model must lie within 0.2 points at mean glucose
  100, 150, 200 and 250 mg/dL.
* Half-time of HbA1c after a glucose step: ~50 % of the change in ~30 days (Beltran del Rio
  et al. *JDST* 2016;10:1303 [V]; Tahara & Shima *Diabetes Care* 1995;18:440 [U]); the
  triangular approximation gives ~35 d. Accepted: 25-45 d, i.e. ``|t½ - 35| <= 10`` d.
* The calibrated mean red-cell age must lie in the measured 39-60 d (Cohen et al. *Blood*
  2008;112:4284 [V]).
* Van Cauter et al. *Diabetes* 1992;41:368 worked example (male, 40 y, 75 kg, 178 cm): BSA
  1.93 m², Vd 4.34 L, t2 34.76 min, k10 0.0573, k12 0.0539, k21 0.0488 /min [I]; steady state
  at 1.8 pmol/kg/min ≈ 0.54 nmol/L. Tolerance: half a unit of the last printed digit.
* C-peptide ODE: integrating :func:`~isletsim.model.cpeptide.cpeptide_rhs` to equilibrium
  reproduces the analytic steady state ``ISR / (k10 Vd)`` (relative error <= 1e-6).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from isletsim.metrics.hba1c import hba1c_from_mean_glucose
from isletsim.model import cpeptide, glycation
from isletsim.validation.checks import Check, register
from isletsim.validation.healthy_suite_checks import graft_checks, healthy_checks

ADAG_SOURCE = "ADAG: Nathan DM et al. Diabetes Care 2008;31:1473 [V]"
HALF_TIME_SOURCE = (
    "Beltran del Rio M et al. JDST 2016;10:1303 [V] (~50 % in ~30 d); Tahara & Shima, "
    "Diabetes Care 1995;18:440 [U]; triangular weights L(1 - 1/sqrt 2) ~ 35 d"
)
VAN_CAUTER_SOURCE = (
    "Van Cauter E et al. Diabetes 1992;41:368 worked example (science reference 3.2) "
    "[V citation; coefficients I: tabletools cpeptide_params.R, CRAN insulin.secretion]"
)
STEADY_STATE_GLUCOSE_MG_DL: tuple[float, ...] = (100.0, 150.0, 200.0, 250.0)
STEADY_STATE_TOL_PCT = 0.2
HALF_TIME_CENTRE_D = 35.0
HALF_TIME_TOL_D = 10.0
#: Glucose steps (mg/dL) whose HbA1c half-time is checked: up and down.
HALF_TIME_STEPS: tuple[tuple[float, float], ...] = ((150.0, 250.0), (250.0, 150.0))

#: Worked example: (name, printed value, tolerance = half a unit of the last digit, units).
VAN_CAUTER_EXAMPLE: tuple[tuple[str, float, float, str], ...] = (
    ("bsa_m2", 1.93, 0.005, "m^2"),
    ("vd_l", 4.34, 0.005, "L"),
    ("t_long_min", 34.76, 0.005, "min"),
    ("k10", 0.0573, 0.00005, "1/min"),
    ("k12", 0.0539, 0.00005, "1/min"),
    ("k21", 0.0488, 0.00005, "1/min"),
)
VAN_CAUTER_SUBJECT = {"age_years": 40.0, "sex": "male", "weight_kg": 75.0, "height_cm": 178.0}
BASAL_SECRETION_PMOL_KG_MIN = 1.8
STEADY_CPEPTIDE_NMOL_L = 0.54


@register("physiology", "HbA1c glycation model vs ADAG and half-time; Van Cauter C-peptide")
def physiology_suite() -> list[Check]:
    """Run all checks of the ``physiology`` suite."""
    return glycation_checks() + cpeptide_checks() + healthy_checks() + graft_checks()


def glycation_checks() -> list[Check]:
    """Steady state vs ADAG, step-response half-times, calibrated mean red-cell age."""
    params = glycation.load_glycation_parameters()
    checks = []
    glucose = np.asarray(STEADY_STATE_GLUCOSE_MG_DL)
    model = glycation.steady_state_hba1c(glucose, params=params)
    adag = np.asarray(hba1c_from_mean_glucose(glucose), dtype=float)
    for g, m, a in zip(glucose, model, adag, strict=True):
        checks.append(
            Check.at_most(
                f"glycation/steady_state/{g:.0f}_mg_dl",
                f"|steady-state HbA1c of the dynamic model - ADAG| at mean glucose {g:.0f} mg/dL"
                f" (model {m:.3f} %)",
                abs(m - a),
                STEADY_STATE_TOL_PCT,
                units="% points",
                source=ADAG_SOURCE,
                reference=round(float(a), 4),
            )
        )
    for before, after in HALF_TIME_STEPS:
        t_half = glycation.step_response_half_time(before, after, params=params)
        checks.append(
            Check.at_most(
                f"glycation/half_time/{before:.0f}_to_{after:.0f}_mg_dl",
                f"|half-time - 35 d| of HbA1c after a glucose step {before:.0f} -> {after:.0f}"
                f" mg/dL (half-time {t_half:.1f} d; accepted 25-45 d)",
                abs(t_half - HALF_TIME_CENTRE_D),
                HALF_TIME_TOL_D,
                units="day",
                source=HALF_TIME_SOURCE,
                reference="half-time 25-45 d (published ~30-35 d)",
            )
        )
    lo, hi = params.mean_rbc_age_measured_days
    m_rbc = glycation.calibrated_mean_rbc_age(params)
    checks.append(
        Check.at_most(
            "glycation/mean_rbc_age_in_measured_range",
            f"|calibrated mean red-cell age - centre of the measured range| (M = {m_rbc:.2f} d;"
            f" measured {lo:.0f}-{hi:.0f} d)",
            abs(m_rbc - (lo + hi) / 2),
            (hi - lo) / 2,
            units="day",
            source="Cohen RM et al. Blood 2008;112:4284 [V]",
            reference=f"{lo:.0f}-{hi:.0f} d",
        )
    )
    return checks


def _integrate_to_steady_state(kin: cpeptide.CPeptideKinetics, isr: float) -> float:
    """Plasma C-peptide (pmol/L) after 24 h of constant secretion from zero (solve_ivp)."""
    k10, k12, k21 = float(kin.k10), float(kin.k12), float(kin.k21)

    def f(_t: float, x: np.ndarray) -> tuple[float, float]:
        return cpeptide.cpeptide_rhs(x[0], x[1], isr, k10, k12, k21)

    sol = solve_ivp(f, (0.0, 24 * 60.0), [0.0, 0.0], method="LSODA", rtol=1e-10, atol=1e-8)
    return float(sol.y[0, -1] / kin.vd_l)


def cpeptide_checks() -> list[Check]:
    """Van Cauter worked example and the steady state of the C-peptide ODE."""
    kin = cpeptide.van_cauter_kinetics(**VAN_CAUTER_SUBJECT)
    checks = []
    for name, printed, tol, units in VAN_CAUTER_EXAMPLE:
        value = float(getattr(kin, name))
        checks.append(
            Check.at_most(
                f"cpeptide/van_cauter_example/{name}",
                f"|{name} - printed value| for male, 40 y, 75 kg, 178 cm (got {value:.6g})",
                abs(value - printed),
                tol,
                units=units,
                source=VAN_CAUTER_SOURCE,
                reference=printed,
            )
        )
    isr = BASAL_SECRETION_PMOL_KG_MIN * VAN_CAUTER_SUBJECT["weight_kg"]
    c_ss = float(cpeptide.steady_state_concentration(isr, kin)) / cpeptide.PMOL_PER_NMOL
    checks.append(
        Check.at_most(
            "cpeptide/van_cauter_example/steady_state_nmol_l",
            f"|analytic steady-state C-peptide - 0.54| at {BASAL_SECRETION_PMOL_KG_MIN} "
            f"pmol/kg/min (got {c_ss:.4f} nmol/L)",
            abs(c_ss - STEADY_CPEPTIDE_NMOL_L),
            0.005,
            units="nmol/L",
            source=VAN_CAUTER_SOURCE,
            reference=STEADY_CPEPTIDE_NMOL_L,
        )
    )
    c_ode = _integrate_to_steady_state(kin, isr) / cpeptide.PMOL_PER_NMOL
    checks.append(
        Check.at_most(
            "cpeptide/ode/steady_state_relative_error",
            "|C(24 h) of the integrated ODE / analytic ISR/(k10 Vd) - 1|, constant secretion "
            "from zero",
            abs(c_ode / c_ss - 1.0),
            1e-6,
            units="1",
            source="mass balance of the two-compartment model (science reference 3.2)",
            reference=round(c_ss, 6),
        )
    )
    return checks


__all__ = ["cpeptide_checks", "glycation_checks", "physiology_suite"]
