"""Suite ``model``: the engine against the reference UVA/Padova implementation.

Reference: PyPI ``simglucose`` 0.2.11 trajectories shipped in ``data/simglucose_0_2_11``
(see its README for how they were made). Tolerances are those of the foundation issue:
closed loop, max |subcutaneous glucose - reference| <= 0.5 mg/dL at every minute of all 30
runs; open loop (3 raw runs), plasma and subcutaneous glucose within 0.05 mg/dL at every
minute and every state within 1 % of the reference or an absolute floor per state group
(gut compartments 500 mg, glucose masses 1 mg/kg, insulin amounts and actions 0.01 in their
units).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from isletsim.engine import simulate
from isletsim.meals import DailyMeals
from isletsim.model import uva_padova as model
from isletsim.params import load_cohort
from isletsim.therapy import BasalBolus, OpenLoop
from isletsim.validation.checks import Check, register

REFERENCE = "simglucose 0.2.11"
SOURCE = (
    "simglucose 0.2.11 (PyPI) run by make_ref.py; isletsim/validation/data/simglucose_0_2_11"
)
MEALS = DailyMeals.parse("07:00=45,12:00=70,18:00=80")
SC_TOL_CLOSED = 0.5  # mg/dL
GLUCOSE_TOL_OPEN = 0.05  # mg/dL
INSULIN_TOL_CLOSED = 0.01  # U per day
STATE_REL_TOL = 0.01
#: Absolute floor per state (units of the state).
STATE_FLOORS: dict[str, float] = {
    "Qsto1": 500.0, "Qsto2": 500.0, "Qgut": 500.0,
    "Gp": 1.0, "Gt": 1.0, "Gs": 1.0,
    "Ip": 0.01, "X": 0.01, "I1": 0.01, "Id": 0.01, "Il": 0.01, "Isc1": 0.01, "Isc2": 0.01,
}  # fmt: skip


@cache
def reference(kind: str) -> pd.DataFrame:
    """Reference table ``closed_loop`` or ``open_loop_states``."""
    folder = resources.files("isletsim.validation") / "data" / "simglucose_0_2_11"
    with (folder / f"{kind}.parquet").open("rb") as fh:
        return pd.read_parquet(fh)


@register("model", "UVA/Padova engine against simglucose 0.2.11 (30 closed-loop + 3 raw runs)")
def model_suite() -> list[Check]:
    """Run all checks of the ``model`` suite."""
    return steady_state_checks() + closed_loop_checks() + open_loop_checks() + no_graft_checks()


def no_graft_checks() -> list[Check]:
    """Without a graft the secretion states stay exactly zero (the model is S2008)."""
    run = simulate(load_cohort(), days=1, meals=MEALS, therapy=BasalBolus(), record=False)
    extra = np.abs(run.final_state[:, [model.IPO, model.CPC, model.CPP]]).max()
    return [
        Check.at_most(
            "no_graft/secretion_states",
            "max |portal insulin, C-peptide| after 24 h of the 30 patients with no graft",
            float(extra), 0.0, units="pmol/kg", reference=0.0,
            source="Dalla Man 2007 secretion scaled by graft fraction 0",
        )
    ]


def steady_state_checks() -> list[Check]:
    """Every patient's stored initial state is an equilibrium under basal insulin u2ss."""
    cohort = load_cohort()
    p = model.parameter_matrix(cohort)
    x = model.initial_state(cohort)
    worst = 0.0
    for i in range(len(cohort)):
        basal = p[i, model.P_U2SS] * p[i, model.P_BW] / 6000.0
        dx = model.rhs_numpy(x[i], p[i], 0.0, basal, 0.0)[: model.N_S2008_STATES]
        worst = max(worst, float(np.abs(dx).max()))
    return [
        Check.at_most(
            "steady_state/max_abs_derivative",
            "max |dx/dt| of the S2008 states at the basal state of all 30 patients under "
            "insulin u2ss (no graft)",
            worst, 1e-8, units="state units/min", source="Dalla Man 2007 basal steady state; "
            "patient file (simglucose vpatient_params.csv)", reference=0.0,
        )
    ]


def closed_loop_checks() -> list[Check]:
    """Basal-bolus runs of the 30 patients against the reference, minute by minute."""
    ref = reference("closed_loop")
    names = list(dict.fromkeys(ref["patient"]))
    run = simulate(names, days=1, meals=MEALS, therapy=BasalBolus(), record=True)
    checks = []
    for i, name in enumerate(names):
        r = ref[ref["patient"] == name].sort_values("minute")
        sc_err = np.abs(run.trace["glucose_sc_mg_dl"][i] - r["BG_mgdl"].to_numpy()).max()
        checks.append(Check.at_most(
            f"closed_loop/{name}/sc_glucose",
            "max over minutes 0..1440 of |subcutaneous glucose - reference|",
            sc_err, SC_TOL_CLOSED, units="mg/dL", source=SOURCE,
            reference=f"{REFERENCE} BBController trajectory",
        ))  # fmt: skip
        ins_ref = float(r["insulin_U_per_min"].iloc[:-1].sum())
        ins = float(run.trace["insulin_u"][i, :-1].sum())
        checks.append(Check.at_most(
            f"closed_loop/{name}/insulin_total",
            "|total insulin delivered in 24 h - reference|",
            abs(ins - ins_ref), INSULIN_TOL_CLOSED, units="U", source=SOURCE,
            reference=round(ins_ref, 4),
        ))  # fmt: skip
    return checks


def open_loop_checks() -> list[Check]:
    """Raw constant-basal runs, every state at every minute."""
    ref = reference("open_loop_states")
    checks = []
    for name in dict.fromkeys(ref["patient"]):
        r = ref[ref["patient"] == name].sort_values("minute")
        run = _open_loop_states(name, len(r) - 1)
        for col, ours in (("Gp_mgdl", "glucose_plasma_mg_dl"), ("Gsub_mgdl", "glucose_sc_mg_dl")):
            err = np.abs(run[ours] - r[col].to_numpy()).max()
            checks.append(Check.at_most(
                f"open_loop/{name}/{ours}",
                f"max over minutes of |{ours} - reference {col}|",
                err, GLUCOSE_TOL_OPEN, units="mg/dL", source=SOURCE,
                reference=f"{REFERENCE} T1DPatient trajectory",
            ))  # fmt: skip
        for j, state in enumerate(model.STATES[: model.N_S2008_STATES]):
            ref_x = r[f"x{j + 1}"].to_numpy()
            allowed = np.maximum(STATE_REL_TOL * np.abs(ref_x), STATE_FLOORS[state])
            used = float((np.abs(run["states"][:, j] - ref_x) / allowed).max())
            checks.append(Check.at_most(
                f"open_loop/{name}/state/{state}",
                f"max over minutes of |{state} - ref| / max(1% of |ref|, "
                f"{STATE_FLOORS[state]:g} {model.STATE_UNITS[state]})",
                used, 1.0, units="fraction of tolerance", source=SOURCE,
                reference=f"{REFERENCE} state x{j + 1}",
            ))  # fmt: skip
    return checks


def _open_loop_states(name: str, minutes: int) -> dict[str, np.ndarray]:
    """Constant-basal run of one patient (no bolus), keeping the full state every minute."""
    run = simulate([name], days=minutes / 1440, meals=MEALS, therapy=OpenLoop(meal_bolus=False),
                   record=True, record_states=True)
    return {
        "glucose_plasma_mg_dl": run.trace["glucose_plasma_mg_dl"][0],
        "glucose_sc_mg_dl": run.trace["glucose_sc_mg_dl"][0],
        "states": run.states[0],
    }
