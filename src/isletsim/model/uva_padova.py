"""UVA/Padova S2008 type 1 diabetes model as a compiled right-hand side.

Equations (Dalla Man, Rizza & Cobelli, *IEEE TBME* 2007;54:1740; gastric emptying Dalla Man,
Camilleri & Cobelli, *IEEE TBME* 2006;53:2472; T1D form Kovatchev et al., *JDST* 2009;3:44)
in the form implemented by the reference open implementation, PyPI ``simglucose`` 0.2.11
(``T1DPatient.model``), including its conventions:

* ``Gs`` (subcutaneous glucose) is kept on the ``Gp`` mass scale; what simglucose calls "BG"
  is ``Gs / Vg``.
* ``Km`` is fixed at ``Km0``; ``m3`` at ``m30`` unless a graft secretes; glucagon stays at
  its basal value unless alpha cells respond (see below).
* ``EGP`` is floored at 0; renal excretion above ``ke2``.
* Non-negativity: simglucose multiplies the derivative of ``Gp, Gt, Ip, Il, Isc1, Isc2, Gs``
  by ``(x >= 0)``, which freezes a state forever once integration overshoots below 0
  (simglucose-notes quirk 2). **Our choice:** for these states a *negative* state may not
  decrease further but may recover (``dx = max(dx, 0)`` when ``x < 0``). For ``x >= 0`` this is
  identical to the reference, so trajectories that stay non-negative are unchanged.

The right-hand side works on one participant's state vector; the solver (:mod:`isletsim.solver`)
vectorises it over participants. Parameters are a flat float64 vector ordered as
:data:`PARAMS` + :data:`DERIVED_PARAMS` (built by :func:`parameter_matrix`); inputs held over a
minute are a small vector ordered as :data:`INPUTS` (built by :func:`prepare_inputs`).

Endogenous secretion of an islet graft (Dalla Man 2007 beta-cell model: static and dynamic
secretion into the portal vein, hepatic extraction that falls with secretion, the portal term
``-kp4 * Ipo`` in EGP) scaled by the graft's functional fraction ``phi`` (an input, see
:data:`INPUTS`), and co-secreted C-peptide with Van Cauter (1992) two-compartment kinetics,
are extra states appended after the 13 S2008 states. With ``phi = 0`` they stay at zero and
the model is exactly S2008 (checked by ``isletsim validate --suite model``).

Glucagon and counter-regulation (S2013: Dalla Man et al., *JDST* 2014;8:26, equations as in
the SmartCGMS and LoopInsighT1 reimplementations [I]; every parameter value unverified [U],
``params/glucagon/uva_padova_2013.toml``) appends the states ``H`` (plasma glucagon, pg/mL),
``XH`` (glucagon action), ``SRsH`` (static secretion) and the subcutaneous depots ``Hsc1,
Hsc2`` (Lv, Breton & Farhy 2013; infusion input 0 until a rescue-glucagon policy uses it):

* dH/dt = -n H + SRsH + SRdH + kh3 Hsc2;  SRdH = a delta max(-dG/dt, 0);
* dSRsH/dt = -rho (SRsH - T), with T = SRbH + a (max(S(G, I), 0) - SRbH) floored at 0,
  S = sigma2 (Gth - G) + SRbH for G >= Gb, sigma1 (Gth - G)/(I + 1) + SRbH for G < Gb
  (I plasma insulin, pmol/L), SRbH = n Hb;
* dXH/dt = -kH XH + kH max(H - Hb, 0);  EGP gains + xi XH;
* dHsc1/dt = -(kh1 + kh2) Hsc1 + HIR/BW;  dHsc2/dt = kh1 Hsc1 - kh3 Hsc2.

**Our choice [U]:** the alpha-cell response to hypoglycaemia is lost in type 1 diabetes while
basal glucagon is kept, so only the *response* is scaled by an alpha-cell fraction
``a = glc_alpha_native + glc_alpha_per_phi * phi`` (defaults 0 and 1): 0 without a graft, and
an islet graft, which contains alpha cells, restores counter-regulation in proportion to its
functional fraction. With ``a = 0`` and no s.c. glucagon, ``H`` and ``SRsH`` stay at their
basal initial values, ``XH = 0`` and the model is exactly S2008. The graft's alpha cells use
the normal-subject set point (``Gb = Gth = 94.68`` mg/dL, as the graft's beta cells), so
basal (G = Gb, H = Hb) is their steady state. Later sub-models append states and parameters
the same way; the solver and engine are generic.

Time-varying insulin sensitivity (opt-in): a per-participant multiplier ``s >= 0`` (an input,
:data:`INPUTS` ``insulin_sensitivity``; 1 = the nominal S2008 participant) scales insulin
action on peripheral utilisation (``Vmx``) and on the liver (``kp3``), as the UVA/Padova
simulator represents intra-day variability of insulin sensitivity by time-varying ``Vmx`` and
``kp3`` [U] (Visentin R et al., "Circadian variability of insulin sensitivity: physiological
input for in silico artificial pancreas", *Diabetes Technol Ther* 2015;17:1-7; Visentin R et
al., "The UVA/Padova type 1 diabetes simulator goes from single meal to single day", *J
Diabetes Sci Technol* 2018;12:273-281, whose abstract [V] says intraday SI variability was
modelled from clinical T1D data; which parameters carry it is as remembered, [U]). With
``s = 1`` the products are exact in IEEE arithmetic, so the model is bit-identical to S2008.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pandas as pd

# ----------------------------------------------------------------------------- state layout
#: State names, in order (simglucose code index in brackets in the docs).
STATES: tuple[str, ...] = (
    "Qsto1",  # solid glucose in stomach, mg
    "Qsto2",  # liquid glucose in stomach, mg
    "Qgut",  # glucose in gut, mg
    "Gp",  # plasma glucose mass, mg/kg
    "Gt",  # tissue glucose mass, mg/kg
    "Ip",  # plasma insulin mass, pmol/kg
    "X",  # remote insulin action on utilisation, pmol/L
    "I1",  # first delay of insulin signal to liver, pmol/L
    "Id",  # second delay (XL), pmol/L
    "Il",  # liver insulin mass, pmol/kg
    "Isc1",  # subcutaneous insulin 1, pmol/kg
    "Isc2",  # subcutaneous insulin 2, pmol/kg
    "Gs",  # subcutaneous glucose, mg/kg (Gp scale)
    # --- endogenous secretion of a graft (Dalla Man 2007); zero without a graft
    "Ipo",  # portal insulin, pmol/kg
    "Y",  # static (provision) secretion, pmol/kg/min
    "CPc",  # C-peptide, central compartment, pmol/kg (Van Cauter 1992)
    "CPp",  # C-peptide, peripheral compartment, pmol/kg
    # --- glucagon (S2013, Dalla Man 2014); constant at basal without alpha-cell function
    "H",  # plasma glucagon, pg/mL
    "XH",  # glucagon action on EGP, pg/mL
    "SRsH",  # static glucagon secretion, pg/mL/min
    "Hsc1",  # s.c. glucagon depot 1, pg/mL plasma-equivalent (Lv 2013)
    "Hsc2",  # s.c. glucagon depot 2, pg/mL plasma-equivalent
)
STATE_UNITS: dict[str, str] = {
    "Qsto1": "mg", "Qsto2": "mg", "Qgut": "mg", "Gp": "mg/kg", "Gt": "mg/kg",
    "Ip": "pmol/kg", "X": "pmol/L", "I1": "pmol/L", "Id": "pmol/L", "Il": "pmol/kg",
    "Isc1": "pmol/kg", "Isc2": "pmol/kg", "Gs": "mg/kg",
    "Ipo": "pmol/kg", "Y": "pmol/kg/min", "CPc": "pmol/kg", "CPp": "pmol/kg",
    "H": "pg/mL", "XH": "pg/mL", "SRsH": "pg/mL/min", "Hsc1": "pg/mL", "Hsc2": "pg/mL",
}  # fmt: skip
N_STATES = len(STATES)
(
    QSTO1, QSTO2, QGUT, GP, GT, IP, XX, I1, ID, IL, ISC1, ISC2, GS,
    IPO, YS, CPC, CPP,
    HH, XH, SRSH, HSC1, HSC2,
) = range(N_STATES)  # fmt: skip
#: The S2008 states, which the simglucose parameter file initialises.
N_S2008_STATES = 13

#: Parameter names, in the order of the flat parameter vector.
PARAMS: tuple[str, ...] = (
    "BW", "kabs", "kmax", "kmin", "b", "d", "f",
    "kp1", "kp2", "kp3", "Fsnc", "Vm0", "Vmx", "Km0",
    "k1", "k2", "ke1", "ke2",
    "m1", "m2", "m4", "m30", "Vi", "ka1", "ka2", "kd",
    "p2u", "Ib", "ki", "ksc", "Vg", "u2ss",
)  # fmt: skip
#: Secretion and C-peptide parameters (defaults from ``params/secretion``; a patient table may
#: carry its own columns of these names to override them per participant).
SECRETION_PARAMS: tuple[str, ...] = (
    "HEb", "sec_K", "sec_alpha", "sec_beta", "sec_gamma", "sec_Sb", "sec_h", "sec_m5",
    "sec_kp4", "sec_HE_max", "cp_k10", "cp_k12", "cp_k21", "cp_vd_l",
)  # fmt: skip
#: Glucagon parameters (S2013; defaults from ``params/glucagon/uva_padova_2013.toml``, all
#: unverified; a patient table may carry columns of these names to override them).
GLUCAGON_PARAMS: tuple[str, ...] = (
    "glc_n", "glc_Hb", "glc_rho", "glc_sigma1", "glc_sigma2", "glc_delta", "glc_xi",
    "glc_kH", "glc_Gb", "glc_Gth", "glc_kh1", "glc_kh2", "glc_kh3",
    "glc_alpha_native", "glc_alpha_per_phi",
)  # fmt: skip
#: Parameters of the optional sub-models, with defaults from data files (one mechanism:
#: :func:`secretion_defaults`, overridden by same-named table columns).
OPTIONAL_PARAMS: tuple[str, ...] = SECRETION_PARAMS + GLUCAGON_PARAMS
#: Parameters derived from the above and appended to the parameter vector (saves divisions
#: in the right-hand side). ``glc_SRbH = glc_n * glc_Hb`` is basal glucagon secretion.
DERIVED_PARAMS: tuple[str, ...] = (
    "f_kabs_over_BW", "inv_Vi", "inv_Vg", "m3_at_HEb", "glc_SRbH",
)  # fmt: skip
N_PARAMS = len(PARAMS) + len(OPTIONAL_PARAMS) + len(DERIVED_PARAMS)
(
    P_BW, P_KABS, P_KMAX, P_KMIN, P_B, P_D, P_F,
    P_KP1, P_KP2, P_KP3, P_FSNC, P_VM0, P_VMX, P_KM0,
    P_K1, P_K2, P_KE1, P_KE2,
    P_M1, P_M2, P_M4, P_M30, P_VI, P_KA1, P_KA2, P_KD,
    P_P2U, P_IB, P_KI, P_KSC, P_VG, P_U2SS,
    P_HEB, P_SK, P_SALPHA, P_SBETA, P_SGAMMA, P_SSB, P_SH, P_SM5, P_KP4, P_HEMAX,
    P_CP_K10, P_CP_K12, P_CP_K21, P_CP_VD,
    P_GN, P_GHB, P_GRHO, P_GSIGMA1, P_GSIGMA2, P_GDELTA, P_GXI,
    P_GKH, P_GGB, P_GGTH, P_GKH1, P_GKH2, P_GKH3,
    P_GA_NATIVE, P_GA_PHI,
    P_F_KABS_BW, P_INV_VI, P_INV_VG, P_M3_HEB, P_GSRBH,
) = range(N_PARAMS)  # fmt: skip

#: Per-minute inputs (held constant over a minute), built by :func:`prepare_inputs`.
INPUTS: tuple[str, ...] = (
    "meal_mg_min",  # carbohydrate ingestion D(t), mg/min
    "insulin_pmol_kg_min",  # s.c. insulin infusion IIR/BW, pmol/kg/min
    "ge_alpha", "ge_beta", "ge_b_dbar", "ge_d_dbar",  # gastric-emptying shape for this Dbar
    "ge_has_meal",  # 1 when a meal size is remembered (Dbar > 0), else kempt = kmax
    "graft_fraction",  # functional beta-cell mass / normal pancreas (phi), 0 without graft
    "alpha_cell_fraction",  # a = glc_alpha_native + glc_alpha_per_phi * phi
    "glucagon_sc_pg_ml_min",  # s.c. glucagon infusion HIR/BW, pg/mL plasma-equivalent/min
    "insulin_sensitivity",  # multiplier s of Vmx and kp3 (1 = nominal; Visentin 2015, 2018)
)  # fmt: skip
N_INPUTS = len(INPUTS)
(
    U_MEAL, U_INS, U_ALPHA, U_BETA, U_BDBAR, U_DDBAR, U_HASMEAL, U_PHI, U_ACELL, U_HIR, U_SI,
) = range(N_INPUTS)  # fmt: skip

#: Columns of the simglucose parameter file holding the initial state of the S2008 states.
INITIAL_STATE_COLUMNS: tuple[str, ...] = tuple(
    f"x0_{i:2d}" for i in range(1, N_S2008_STATES + 1)
)

PMOL_PER_U = 6000.0  # 1 U insulin = 6000 pmol (simglucose ``t1dpatient.py``)
MG_PER_G = 1000.0


def parameter_matrix(patients: pd.DataFrame) -> np.ndarray:
    """Flat parameter matrix, one row per participant.

    Columns are ordered as :data:`PARAMS` + :data:`OPTIONAL_PARAMS` + :data:`DERIVED_PARAMS`.
    :data:`PARAMS` must be columns of ``patients``; secretion, C-peptide and glucagon
    parameters are taken from ``patients`` where present, else from
    :func:`secretion_defaults` (see :func:`optional_parameters`).

    Every assembled value must be finite and >= 0. No parameter of the model may be
    negative: :data:`PARAMS` are body weight, rate constants (``kabs, kmax, kmin, kp2, kp3,
    k1, k2, ke1, m1, m2, m4, m30, ka1, ka2, kd, p2u, ki, ksc``), volumes (``Vi, Vg``),
    fractions (``f, b, d``), the basal EGP ``kp1``, the renal threshold ``ke2``, Michaelis-Menten
    ``Fsnc, Vm0, Vmx, Km0``, basal insulin ``Ib`` and basal infusion ``u2ss`` (0 for a
    healthy subject). The secretion, C-peptide and glucagon parameters are gains, rates,
    thresholds, volumes, basal levels or fractions (``glc_alpha_native`` may be 0), and the
    derived parameters are built from these. Zero is accepted (e.g. ``u2ss``); a zero
    body weight or volume shows up as a non-finite derived parameter.

    Raises
    ------
    KeyError
        If a column of :data:`PARAMS` is missing.
    ValueError
        Naming the parameter (column) and the participant (row label) of the first value
        that is non-finite or negative.
    """
    missing = [c for c in PARAMS if c not in patients.columns]
    if missing:
        raise KeyError(f"patient parameter table lacks column(s) {missing}")
    base = patients.loc[:, list(PARAMS)].to_numpy(dtype=np.float64)
    _check_parameter_matrix(base, patients.index, PARAMS)  # before BW etc. feed the defaults
    opt = optional_parameters(patients)
    optional = np.column_stack([opt[c] for c in OPTIONAL_PARAMS])
    heb = opt["HEb"]
    with np.errstate(divide="ignore", invalid="ignore"):  # zeros are reported just below
        derived = np.column_stack([
            base[:, P_F] * base[:, P_KABS] / base[:, P_BW],
            1.0 / base[:, P_VI],
            1.0 / base[:, P_VG],
            heb * base[:, P_M1] / (1.0 - heb),
            opt["glc_n"] * opt["glc_Hb"],  # basal glucagon secretion SRbH (steady state)
        ])  # fmt: skip
    matrix = np.ascontiguousarray(np.hstack([base, optional, derived]))
    _check_parameter_matrix(matrix, patients.index, PARAMS + OPTIONAL_PARAMS + DERIVED_PARAMS)
    return matrix


def _check_parameter_matrix(matrix: np.ndarray, rows: pd.Index, names: tuple[str, ...]) -> None:
    """Raise ValueError naming the column and row of the first non-finite or negative value.

    ``names`` labels the columns of ``matrix`` (a prefix of the full parameter order).
    """
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(matrix) | (matrix < 0.0)
    if not bad.any():
        return
    cols = np.flatnonzero(bad.any(axis=0))
    j = int(cols[0])
    i = int(np.flatnonzero(bad[:, j])[0])
    value = matrix[i, j]
    what = "non-finite" if not math.isfinite(value) else "negative"
    source = "derived from other parameters" if j >= len(PARAMS) + len(OPTIONAL_PARAMS) else ""
    others = [names[c] for c in cols[1:]]
    raise ValueError(
        f"parameter {names[j]!r}{f' ({source})' if source else ''} of participant "
        f"{rows[i]!r} is {what} ({value!r}); every parameter must be finite and >= 0"
        + (f"; further bad parameters: {', '.join(others)}" if others else "")
    )


def optional_parameters(patients: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-participant values of :data:`OPTIONAL_PARAMS`: table columns over defaults.

    Parameters
    ----------
    patients : parameter table; a column named as one of :data:`OPTIONAL_PARAMS`
        (e.g. ``sec_beta``, ``glc_xi``) overrides the default for every row.

    Returns
    -------
    dict of (N,) float64 arrays, one per name of :data:`OPTIONAL_PARAMS`.
    """
    n = len(patients)
    values = secretion_defaults(patients)
    for col in OPTIONAL_PARAMS:
        if col in patients.columns:
            values[col] = patients[col].to_numpy(dtype=np.float64)
    return {c: np.ascontiguousarray(np.broadcast_to(values[c], n), dtype=np.float64)
            for c in OPTIONAL_PARAMS}


def secretion_defaults(patients: pd.DataFrame) -> dict[str, np.ndarray]:
    """Default parameters of the optional sub-models (:data:`OPTIONAL_PARAMS`).

    Secretion parameters come from ``params/secretion/dalla_man_2007.toml``; C-peptide
    kinetics per participant from :func:`isletsim.model.cpeptide.van_cauter_kinetics` using
    the table's age, body weight, sex and height (population defaults where absent);
    glucagon parameters (``glc_<name>``) from ``params/glucagon/uva_padova_2013.toml``.
    """
    from isletsim.params.glucagon import load_glucagon
    from isletsim.params.secretion import kinetics_for_patients, load_secretion

    n = len(patients)
    sec = load_secretion()
    out: dict[str, np.ndarray] = {
        "HEb": np.full(n, 0.6),  # S2008 basal hepatic extraction (all 30 patients)
        "sec_K": np.full(n, sec["K"]), "sec_alpha": np.full(n, sec["alpha"]),
        "sec_beta": np.full(n, sec["beta"]), "sec_gamma": np.full(n, sec["gamma"]),
        "sec_Sb": np.full(n, sec["Sb"]), "sec_h": np.full(n, sec["h"]),
        "sec_m5": np.full(n, sec["m5"]), "sec_kp4": np.full(n, sec["kp4"]),
        "sec_HE_max": np.full(n, sec["HE_max"]),
    }  # fmt: skip
    kin = kinetics_for_patients(patients)
    out["cp_k10"], out["cp_k12"], out["cp_k21"], out["cp_vd_l"] = (
        kin["k10"], kin["k12"], kin["k21"], kin["vd_l"],
    )
    glc = load_glucagon()
    for col in GLUCAGON_PARAMS:
        out[col] = np.full(n, glc[col.removeprefix("glc_")])
    return out


def initial_state(patients: pd.DataFrame) -> np.ndarray:
    """Initial state, one row per participant, columns ordered as :data:`STATES`.

    The S2008 states come from the parameter file (the T1D basal steady state). Later states
    start at their no-graft basal value unless the table has a column ``x0_<state>`` for
    them (e.g. ``x0_Ipo`` for a healthy subject at its basal state): portal insulin,
    secretion and C-peptide at zero (no endogenous secretion); glucagon at its basal state
    ``H = glc_Hb``, ``SRsH = glc_n * glc_Hb`` (basal secretion), ``XH = 0`` and empty s.c.
    depots ``Hsc1 = Hsc2 = 0`` (Dalla Man 2014 basal state; SmartCGMS starts H at Hb).
    """
    missing = [c for c in INITIAL_STATE_COLUMNS if c not in patients.columns]
    if missing:
        raise KeyError(f"patient parameter table lacks initial-state column(s) {missing}")
    x = np.zeros((len(patients), N_STATES))
    x[:, :N_S2008_STATES] = patients.loc[:, list(INITIAL_STATE_COLUMNS)].to_numpy(np.float64)
    glc = optional_parameters(patients)
    x[:, HH] = glc["glc_Hb"]
    x[:, SRSH] = glc["glc_n"] * glc["glc_Hb"]  # = derived glc_SRbH, bit for bit
    for j in range(N_S2008_STATES, N_STATES):
        col = f"x0_{STATES[j]}"
        if col in patients.columns:
            x[:, j] = patients[col].to_numpy(np.float64)
    return x


@nb.njit(cache=True, inline="always", error_model="numpy")
def _gate(x: float, dx: float) -> float:
    """Non-negativity gate: a negative state may not fall further but may recover."""
    if x < 0.0 and dx < 0.0:
        return 0.0
    return dx


@nb.njit(cache=True, error_model="numpy")
def gastric_emptying_rate(qsto: float, dbar: float, kmax: float, kmin: float,
                          b: float, d: float) -> float:
    """Emptying rate kempt(Qsto) of Dalla Man 2006 (1/min), kmax when no meal (Dbar = 0).

    kempt = kmin + (kmax-kmin)/2 [tanh(a(Qsto - b Dbar)) - tanh(c(Qsto - d Dbar)) + 2],
    a = 5/(2 Dbar (1-b)), c = 5/(2 Dbar d).
    """
    if dbar > 0.0:
        aa = 5.0 / (2.0 * dbar * (1.0 - b))
        cc = 5.0 / (2.0 * dbar * d)
        return kmin + (kmax - kmin) / 2.0 * (
            math.tanh(aa * (qsto - b * dbar)) - math.tanh(cc * (qsto - d * dbar)) + 2.0
        )
    return kmax


# Rational approximation of tanh (the form used by Eigen's vectorised ``ptanh``), clamped;
# max absolute error 2.6e-7 over the real line (tested). libm's tanh blocks vectorisation and
# is the slowest operation of the right-hand side (docs/engine-speed.md).
_TANH_CLAMP = 7.90531110763549805
_A1, _A3 = 4.89352455891786e-03, 6.37261928875436e-04
_A5, _A7 = 1.48572235717979e-05, 5.12229709037114e-08
_A9, _A11, _A13 = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
_B0, _B2 = 4.89352518554385e-03, 2.26843463243900e-03
_B4, _B6 = 1.18534705686654e-04, 1.19825839466702e-06


@nb.njit(cache=True, inline="always", error_model="numpy")
def fast_tanh(x: float) -> float:
    """tanh(x) to 2.6e-7 absolute, branch-free apart from the clamp."""
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    num = x * (_A1 + x2 * (_A3 + x2 * (_A5 + x2 * (_A7 + x2 * (_A9 + x2 * (_A11 + x2 * _A13))))))
    return num / (_B0 + x2 * (_B2 + x2 * (_B4 + x2 * _B6)))


@nb.njit(cache=True, error_model="numpy")
def prepare_inputs(p: np.ndarray, cho_g_min: float, insulin_u_min: float, dbar_mg: float,
                   phi: float, u: np.ndarray, glucagon_pg_ml_min: float = 0.0,
                   insulin_sensitivity: float = 1.0) -> None:
    """Per-minute inputs of one participant (see :data:`INPUTS`), written into ``u``.

    Parameters
    ----------
    p : parameter vector of the participant (see :func:`parameter_matrix`).
    cho_g_min : carbohydrate eaten, g/min.
    insulin_u_min : s.c. insulin, U/min (1 U = 6000 pmol).
    dbar_mg : meal-size memory of gastric emptying, mg (see :mod:`isletsim.meals`).
    phi : functional graft fraction (0 = no endogenous secretion); also sets the alpha-cell
        fraction ``a = glc_alpha_native + glc_alpha_per_phi * phi`` of glucagon secretion.
    u : output, ordered as :data:`INPUTS`.
    glucagon_pg_ml_min : s.c. glucagon infusion (``HIR/BW``) in pg/mL plasma-equivalent per
        minute, into ``Hsc1``; 0 until a rescue-glucagon policy converts doses with a
        glucagon distribution volume.
    insulin_sensitivity : multiplier ``s >= 0`` of insulin action on peripheral utilisation
        (``Vmx``) and on the liver (``kp3``); 1 (default) is the nominal participant
        (intra-day variability of insulin sensitivity, Visentin 2015 and 2018 [U]).
    """
    u[U_PHI] = phi
    u[U_SI] = insulin_sensitivity
    u[U_ACELL] = p[P_GA_NATIVE] + p[P_GA_PHI] * phi
    u[U_HIR] = glucagon_pg_ml_min
    u[U_MEAL] = cho_g_min * MG_PER_G
    u[U_INS] = insulin_u_min * PMOL_PER_U / p[P_BW]
    if dbar_mg > 0.0:
        u[U_ALPHA] = 5.0 / (2.0 * dbar_mg * (1.0 - p[P_B]))
        u[U_BETA] = 5.0 / (2.0 * dbar_mg * p[P_D])
        u[U_BDBAR] = p[P_B] * dbar_mg
        u[U_DDBAR] = p[P_D] * dbar_mg
        u[U_HASMEAL] = 1.0
    else:
        u[U_ALPHA] = 0.0
        u[U_BETA] = 0.0
        u[U_BDBAR] = 0.0
        u[U_DDBAR] = 0.0
        u[U_HASMEAL] = 0.0


@nb.njit(cache=True, error_model="numpy")
def rhs(x: np.ndarray, p: np.ndarray, u: np.ndarray, dx: np.ndarray) -> None:
    """Right-hand side dx/dt of one participant (minutes), written into ``dx``.

    Parameters
    ----------
    x : state vector ordered as :data:`STATES`.
    p : parameter vector ordered as :data:`PARAMS` + :data:`OPTIONAL_PARAMS` +
        :data:`DERIVED_PARAMS`.
    u : per-minute inputs ordered as :data:`INPUTS` (from :func:`prepare_inputs`).
    dx : output array.
    """
    # --- gastro-intestinal tract (Dalla Man 2006): kempt(Qsto), kmax when no meal remembered
    qsto = x[QSTO1] + x[QSTO2]
    kmax = p[P_KMAX]
    kempt = kmax
    if u[U_HASMEAL] > 0.0:
        kempt = p[P_KMIN] + (kmax - p[P_KMIN]) / 2.0 * (
            fast_tanh(u[U_ALPHA] * (qsto - u[U_BDBAR]))
            - fast_tanh(u[U_BETA] * (qsto - u[U_DDBAR])) + 2.0
        )
    dx[QSTO1] = -kmax * x[QSTO1] + u[U_MEAL]
    dx[QSTO2] = kmax * x[QSTO1] - kempt * x[QSTO2]
    dx[QGUT] = kempt * x[QSTO2] - p[P_KABS] * x[QGUT]
    ra = p[P_F_KABS_BW] * x[QGUT]  # f kabs Qgut / BW, mg/kg/min

    # --- glucose subsystem (Dalla Man 2007; the portal term -kp4*Ipo is 0 without a graft).
    # S2013 glucagon action +xi*XH (Dalla Man 2014 [I: LoopInsighT1, SmartCGMS; values U]);
    # XH stays exactly 0 without alpha-cell function, so the sum is the S2008 value.
    # Time-varying insulin sensitivity s = u[U_SI] scales the hepatic insulin action kp3 and
    # the insulin-dependent utilisation Vmx (UVA/Padova intra-day SI variability: Visentin
    # 2015 DTT 17:1, Visentin 2018 JDST 12:273 [U]); s * p is exact for s = 1 (S2008 bit for bit).
    si = u[U_SI]
    egp = (p[P_KP1] - p[P_KP2] * x[GP] - si * p[P_KP3] * x[ID] - p[P_KP4] * x[IPO]
           + p[P_GXI] * x[XH])
    if egp < 0.0:
        egp = 0.0
    renal = p[P_KE1] * (x[GP] - p[P_KE2]) if x[GP] > p[P_KE2] else 0.0
    dx[GP] = _gate(
        x[GP], egp + ra - p[P_FSNC] - renal - p[P_K1] * x[GP] + p[P_K2] * x[GT]
    )
    uid = (p[P_VM0] + si * p[P_VMX] * x[XX]) * x[GT] / (p[P_KM0] + x[GT])
    dx[GT] = _gate(x[GT], -uid + p[P_K1] * x[GP] - p[P_K2] * x[GT])

    # --- insulin subsystem
    dx[IP] = _gate(
        x[IP],
        -(p[P_M2] + p[P_M4]) * x[IP] + p[P_M1] * x[IL]
        + p[P_KA1] * x[ISC1] + p[P_KA2] * x[ISC2],
    )
    i_plasma = x[IP] * p[P_INV_VI]  # pmol/L
    dx[XX] = -p[P_P2U] * x[XX] + p[P_P2U] * (i_plasma - p[P_IB])
    dx[I1] = -p[P_KI] * (x[I1] - i_plasma)
    dx[ID] = -p[P_KI] * (x[ID] - x[I1])
    # liver: m3 = m30 without secretion; with a graft HE(S) = HEb - m5*S (Dalla Man 2007,
    # anchored at the recipient's HEb), m3 = HE*m1/(1-HE); secretion S enters the liver.
    s_liver = p[P_SGAMMA] * x[IPO]  # pmol/kg/min
    m3 = p[P_M30]
    if s_liver != 0.0:
        he = min(max(p[P_HEB] - p[P_SM5] * s_liver, 0.0), p[P_HEMAX])
        m3 = p[P_M30] + (he * p[P_M1] / (1.0 - he) - p[P_M3_HEB])
    dx[IL] = _gate(x[IL], -(m3 + p[P_M1]) * x[IL] + p[P_M2] * x[IP] + s_liver)

    # --- subcutaneous insulin
    dx[ISC1] = _gate(x[ISC1], u[U_INS] - (p[P_KA1] + p[P_KD]) * x[ISC1])
    dx[ISC2] = _gate(x[ISC2], p[P_KD] * x[ISC1] - p[P_KA2] * x[ISC2])

    # --- subcutaneous glucose (on the Gp scale, as simglucose)
    dx[GS] = _gate(x[GS], -p[P_KSC] * x[GS] + p[P_KSC] * x[GP])

    # --- endogenous secretion of a graft (Dalla Man 2007), scaled by the functional
    # fraction phi; dG/dt from the Gp right-hand side, as sbmlutils evaluates it.
    g = x[GP] * p[P_INV_VG]
    drive = p[P_SBETA] * (g - p[P_SH])
    if drive >= -p[P_SSB]:
        dx[YS] = -p[P_SALPHA] * (x[YS] - drive)
    else:
        dx[YS] = -p[P_SALPHA] * x[YS] - p[P_SALPHA] * p[P_SSB]
    dgdt = dx[GP] * p[P_INV_VG]
    spo = x[YS] + p[P_SSB]
    if dgdt > 0.0:
        spo += p[P_SK] * dgdt
    spo = u[U_PHI] * max(spo, 0.0)  # pmol/kg/min into the portal vein
    dx[IPO] = _gate(x[IPO], -p[P_SGAMMA] * x[IPO] + spo)
    # --- C-peptide, co-secreted equimolar, no hepatic extraction (Van Cauter 1992)
    dx[CPC] = spo - (p[P_CP_K10] + p[P_CP_K12]) * x[CPC] + p[P_CP_K21] * x[CPP]
    dx[CPP] = p[P_CP_K12] * x[CPC] - p[P_CP_K21] * x[CPP]

    # --- glucagon (S2013, Dalla Man 2014 [I: SmartCGMS uva_padova_s2013.cpp, LoopInsighT1
    # UvaPadova_T1DMS.ts; all values U]). Static secretion follows its target
    #   G >= Gb: max(sigma2 (Gth - G) + SRbH, 0);  G < Gb: max(sigma1 (Gth - G)/(I + 1) + SRbH, 0)
    # with rate rho; dynamic secretion SRdH = delta max(-dG/dt, 0). [U, our choice] Only the
    # response (departure from basal SRbH, and SRdH) is scaled by the alpha-cell fraction
    # a = alpha_native + alpha_per_phi * phi (T1D: a = 0, basal glucagon kept, no
    # counter-regulation); with a = 0 the target is SRbH and nothing here is evaluated.
    a = u[U_ACELL]
    srbh = p[P_GSRBH]
    target = srbh
    srdh = 0.0
    if a != 0.0:
        if g >= p[P_GGB]:
            resp = p[P_GSIGMA2] * (p[P_GGTH] - g) + srbh
        else:
            resp = p[P_GSIGMA1] * (p[P_GGTH] - g) / (i_plasma + 1.0) + srbh
        target = max(srbh + a * (max(resp, 0.0) - srbh), 0.0)
        if dgdt < 0.0:
            srdh = -a * p[P_GDELTA] * dgdt
    dx[SRSH] = -p[P_GRHO] * (x[SRSH] - target)
    # plasma glucagon dH/dt = -n H + SRsH + SRdH + RaH, RaH = kh3 Hsc2 (Dalla Man 2014;
    # s.c. route Lv, Breton & Farhy 2013 model 6 [I: LoopInsighT1; U]). No gate needed: the
    # inflows are >= 0 (the target is floored at 0, Hsc2 is gated), so H cannot turn negative.
    dx[HH] = x[SRSH] + srdh - p[P_GN] * x[HH] + p[P_GKH3] * x[HSC2]
    # glucagon action dXH/dt = -kH XH + kH max(H - Hb, 0) [I: SmartCGMS, LoopInsighT1; U]
    dx[XH] = p[P_GKH] * (max(x[HH] - p[P_GHB], 0.0) - x[XH])
    dx[HSC1] = _gate(x[HSC1], u[U_HIR] - (p[P_GKH1] + p[P_GKH2]) * x[HSC1])
    dx[HSC2] = _gate(x[HSC2], p[P_GKH1] * x[HSC1] - p[P_GKH3] * x[HSC2])


def rhs_numpy(x: np.ndarray, p: np.ndarray, cho_g_min: float, insulin_u_min: float,
              dbar_mg: float, phi: float = 0.0, glucagon_pg_ml_min: float = 0.0,
              insulin_sensitivity: float = 1.0) -> np.ndarray:
    """Convenience wrapper returning dx/dt for one participant (for tests and scipy).

    Arguments as :func:`prepare_inputs` (``insulin_sensitivity`` scales ``Vmx`` and ``kp3``
    exactly as in the solver); returns dx/dt ordered as :data:`STATES`.
    """
    p = np.asarray(p, dtype=np.float64)
    u = np.empty(N_INPUTS)
    prepare_inputs(p, float(cho_g_min), float(insulin_u_min), float(dbar_mg), float(phi), u,
                   float(glucagon_pg_ml_min), float(insulin_sensitivity))
    dx = np.empty(N_STATES)
    rhs(np.asarray(x, dtype=np.float64), p, u, dx)
    return dx


#: Participants per block of :func:`rhs_lanes` (SIMD lanes: 16 float64 = four AVX2 registers).
#: Not 8: LLVM treats a loop of fewer than 16 iterations as tiny and then refuses the runtime
#: overlap checks between the arrays that vectorising this loop needs.
LANES = 16


@nb.njit(cache=True, error_model="numpy")
def rhs_lanes(x: np.ndarray, p: np.ndarray, u: np.ndarray, dx: np.ndarray) -> None:
    """:func:`rhs` for a block of :data:`LANES` participants laid out in lanes.

    Structure of arrays, flattened: ``x`` and ``dx`` hold (:data:`N_STATES`, :data:`LANES`),
    ``p`` (:data:`N_PARAMS`, :data:`LANES`) and ``u`` (:data:`N_INPUTS`, :data:`LANES`) in C
    order, i.e. state ``j`` of lane ``l`` is ``x[j * LANES + l]``. Each lane gets bit for bit
    the value :func:`rhs` gives on it: the same IEEE operations in the same order, but with
    both sides of each branch of :func:`rhs` evaluated and merged by a select, so the loop over
    lanes has no control flow and compiles to SIMD instructions. A select picks one of two
    computed values (no arithmetic blend), so a discarded side that is not finite cannot leak
    into the result. The flat layout makes every offset a compile-time constant, which lets
    LLVM check the arrays for overlap once per array instead of once per state.
    """
    W = LANES
    for k in range(W):
        # states of lane k
        qsto1, qsto2, qgut = x[QSTO1 * W + k], x[QSTO2 * W + k], x[QGUT * W + k]
        gp, gt, ip, xx = x[GP * W + k], x[GT * W + k], x[IP * W + k], x[XX * W + k]
        i1, idl, il = x[I1 * W + k], x[ID * W + k], x[IL * W + k]
        isc1, isc2, gs = x[ISC1 * W + k], x[ISC2 * W + k], x[GS * W + k]
        ipo, ys, cpc, cpp = x[IPO * W + k], x[YS * W + k], x[CPC * W + k], x[CPP * W + k]
        hh, xh, srsh = x[HH * W + k], x[XH * W + k], x[SRSH * W + k]
        hsc1, hsc2 = x[HSC1 * W + k], x[HSC2 * W + k]

        # --- gastro-intestinal tract
        qsto = qsto1 + qsto2
        kmax = p[P_KMAX * W + k]
        kmin = p[P_KMIN * W + k]
        kmeal = kmin + (kmax - kmin) / 2.0 * (
            fast_tanh(u[U_ALPHA * W + k] * (qsto - u[U_BDBAR * W + k]))
            - fast_tanh(u[U_BETA * W + k] * (qsto - u[U_DDBAR * W + k]))
            + 2.0
        )
        kempt = kmeal if u[U_HASMEAL * W + k] > 0.0 else kmax
        dx[QSTO1 * W + k] = -kmax * qsto1 + u[U_MEAL * W + k]
        dx[QSTO2 * W + k] = kmax * qsto1 - kempt * qsto2
        dx[QGUT * W + k] = kempt * qsto2 - p[P_KABS * W + k] * qgut
        ra = p[P_F_KABS_BW * W + k] * qgut

        # --- glucose subsystem
        si = u[U_SI * W + k]
        egp = (
            p[P_KP1 * W + k]
            - p[P_KP2 * W + k] * gp
            - si * p[P_KP3 * W + k] * idl
            - p[P_KP4 * W + k] * ipo
            + p[P_GXI * W + k] * xh
        )
        egp = 0.0 if egp < 0.0 else egp
        ke2 = p[P_KE2 * W + k]
        renal_above = p[P_KE1 * W + k] * (gp - ke2)
        renal = renal_above if gp > ke2 else 0.0
        k1, k2 = p[P_K1 * W + k], p[P_K2 * W + k]
        dgp = _gate(gp, egp + ra - p[P_FSNC * W + k] - renal - k1 * gp + k2 * gt)
        dx[GP * W + k] = dgp
        uid = (p[P_VM0 * W + k] + si * p[P_VMX * W + k] * xx) * gt / (p[P_KM0 * W + k] + gt)
        dx[GT * W + k] = _gate(gt, -uid + k1 * gp - k2 * gt)

        # --- insulin subsystem
        m1, m2 = p[P_M1 * W + k], p[P_M2 * W + k]
        ka1, ka2, kd = p[P_KA1 * W + k], p[P_KA2 * W + k], p[P_KD * W + k]
        dx[IP * W + k] = _gate(ip, -(m2 + p[P_M4 * W + k]) * ip + m1 * il + ka1 * isc1 + ka2 * isc2)
        i_plasma = ip * p[P_INV_VI * W + k]
        p2u = p[P_P2U * W + k]
        dx[XX * W + k] = -p2u * xx + p2u * (i_plasma - p[P_IB * W + k])
        ki = p[P_KI * W + k]
        dx[I1 * W + k] = -ki * (i1 - i_plasma)
        dx[ID * W + k] = -ki * (idl - i1)
        sgamma = p[P_SGAMMA * W + k]
        s_liver = sgamma * ipo
        he = min(max(p[P_HEB * W + k] - p[P_SM5 * W + k] * s_liver, 0.0), p[P_HEMAX * W + k])
        m30 = p[P_M30 * W + k]
        m3_graft = m30 + (he * m1 / (1.0 - he) - p[P_M3_HEB * W + k])
        m3 = m3_graft if s_liver != 0.0 else m30
        dx[IL * W + k] = _gate(il, -(m3 + m1) * il + m2 * ip + s_liver)

        # --- subcutaneous insulin and glucose
        dx[ISC1 * W + k] = _gate(isc1, u[U_INS * W + k] - (ka1 + kd) * isc1)
        dx[ISC2 * W + k] = _gate(isc2, kd * isc1 - ka2 * isc2)
        ksc = p[P_KSC * W + k]
        dx[GS * W + k] = _gate(gs, -ksc * gs + ksc * gp)

        # --- endogenous secretion of a graft and C-peptide
        inv_vg = p[P_INV_VG * W + k]
        g = gp * inv_vg
        salpha, ssb = p[P_SALPHA * W + k], p[P_SSB * W + k]
        drive = p[P_SBETA * W + k] * (g - p[P_SH * W + k])
        dy_above = -salpha * (ys - drive)
        dy_below = -salpha * ys - salpha * ssb
        dx[YS * W + k] = dy_above if drive >= -ssb else dy_below
        dgdt = dgp * inv_vg
        spo = ys + ssb
        spo_rising = spo + p[P_SK * W + k] * dgdt
        spo = spo_rising if dgdt > 0.0 else spo
        spo = u[U_PHI * W + k] * max(spo, 0.0)
        dx[IPO * W + k] = _gate(ipo, -sgamma * ipo + spo)
        k10, k12, k21 = p[P_CP_K10 * W + k], p[P_CP_K12 * W + k], p[P_CP_K21 * W + k]
        dx[CPC * W + k] = spo - (k10 + k12) * cpc + k21 * cpp
        dx[CPP * W + k] = k12 * cpc - k21 * cpp

        # --- glucagon
        a = u[U_ACELL * W + k]
        srbh = p[P_GSRBH * W + k]
        gth = p[P_GGTH * W + k]
        resp_above = p[P_GSIGMA2 * W + k] * (gth - g) + srbh
        resp_below = p[P_GSIGMA1 * W + k] * (gth - g) / (i_plasma + 1.0) + srbh
        resp = resp_above if g >= p[P_GGB * W + k] else resp_below
        target_alpha = max(srbh + a * (max(resp, 0.0) - srbh), 0.0)
        has_alpha = a != 0.0
        target = target_alpha if has_alpha else srbh
        srdh_alpha = -a * p[P_GDELTA * W + k] * dgdt
        srdh = srdh_alpha if (has_alpha & (dgdt < 0.0)) else 0.0
        kh1, kh3 = p[P_GKH1 * W + k], p[P_GKH3 * W + k]
        dx[SRSH * W + k] = -p[P_GRHO * W + k] * (srsh - target)
        dx[HH * W + k] = srsh + srdh - p[P_GN * W + k] * hh + kh3 * hsc2
        dx[XH * W + k] = p[P_GKH * W + k] * (max(hh - p[P_GHB * W + k], 0.0) - xh)
        dx[HSC1 * W + k] = _gate(hsc1, u[U_HIR * W + k] - (kh1 + p[P_GKH2 * W + k]) * hsc1)
        dx[HSC2 * W + k] = _gate(hsc2, kh1 * hsc1 - kh3 * hsc2)


@nb.njit(cache=True, error_model="numpy")
def prepare_inputs_lanes(
    p: np.ndarray, cho_g_min: np.ndarray, insulin_u_min: np.ndarray, dbar_mg: np.ndarray,
    phi: np.ndarray, u: np.ndarray, glucagon_pg_ml_min: np.ndarray,
    insulin_sensitivity: np.ndarray,
) -> None:  # fmt: skip
    """:func:`prepare_inputs` for a block of :data:`LANES` participants, bit for bit.

    ``p`` is flat (:data:`N_PARAMS`, :data:`LANES`) and ``u`` flat (:data:`N_INPUTS`,
    :data:`LANES`) as in :func:`rhs_lanes`; the other arguments are (:data:`LANES`,) arrays
    with one value per lane. The ``dbar_mg > 0`` branch is a select, as in :func:`rhs_lanes`.
    """
    W = LANES
    for k in range(W):
        ph = phi[k]
        u[U_PHI * W + k] = ph
        u[U_SI * W + k] = insulin_sensitivity[k]
        u[U_ACELL * W + k] = p[P_GA_NATIVE * W + k] + p[P_GA_PHI * W + k] * ph
        u[U_HIR * W + k] = glucagon_pg_ml_min[k]
        u[U_MEAL * W + k] = cho_g_min[k] * MG_PER_G
        u[U_INS * W + k] = insulin_u_min[k] * PMOL_PER_U / p[P_BW * W + k]
        dbar = dbar_mg[k]
        b = p[P_B * W + k]
        d = p[P_D * W + k]
        alpha = 5.0 / (2.0 * dbar * (1.0 - b))
        beta = 5.0 / (2.0 * dbar * d)
        has_meal = dbar > 0.0
        u[U_ALPHA * W + k] = alpha if has_meal else 0.0
        u[U_BETA * W + k] = beta if has_meal else 0.0
        u[U_BDBAR * W + k] = b * dbar if has_meal else 0.0
        u[U_DDBAR * W + k] = d * dbar if has_meal else 0.0
        u[U_HASMEAL * W + k] = 1.0 if has_meal else 0.0
