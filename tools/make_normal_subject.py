"""Compute the Dalla Man 2007 healthy "normal subject" parameter set and its basal state.

Writes ``src/isletsim/params/dalla_man_2007_normal/patients.csv`` and ``quest.csv``::

    .venv/bin/python tools/make_normal_subject.py [OUTPUT_FOLDER]

Sources (science reference, ``docs/science.md``):

* Table 1 of Dalla Man C, Rizza RA, Cobelli C. *IEEE TBME* 2007;54:1740, column A of §1.3
  and §2.2 (two transcriptions agree: sbmlutils ``examples/dallaman/model.py``,
  LoopInsighT1) [V/I].
* s.c. insulin ``kd, ka1, ka2``: GIM 2007 values given in §1.3 column A [V/I]; they are
  irrelevant for a subject who receives no exogenous insulin (``u2ss = 0``).
* ``ksc = 1/Td`` with ``Td = 10 min`` (§1.2, 2014 form) [V].
* Basal values ``Gpb = 178``, ``Gtb = 135`` mg/kg and ``Sb = 1.8`` pmol/kg/min
  (§2.2, [V: sbmlutils]); ``h = Gb = Gpb / VG`` (§2.1) [V].

The basal steady state (§1.4, with the 2007 portal term) is solved in closed form with the
model's own equations (:mod:`isletsim.model.uva_padova`) at graft fraction 1:

* secretion: ``Y = 0`` (``G = h``), ``Ipo = Sb / gamma``, ``S = gamma Ipo = Sb``;
* hepatic extraction ``HE = m6 - m5 Sb`` (``HEb`` column = ``m6``, so the model's
  ``HE(S) = HEb - m5 S`` is the 2007 ``HE = -m5 S + m6``), ``m3 = HE m1 / (1 - HE)``;
* insulin: ``Ip = Sb / [(m1 + m3)(m2 + m4)/m1 - m2]``, ``Il = (m2 + m4) Ip / m1``,
  ``Ib = Ip / VI``, ``X = 0``, ``I1 = Id = Ib``;
* glucose: ``Uidb = k1 Gpb - k2 Gtb``, ``EGPb = Fcns + Uidb`` (no renal excretion below
  ``ke2``), ``Vm0 = Uidb (Km0 + Gtb) / Gtb``, ``kp1 = EGPb + kp2 Gpb + kp3 Ib + kp4 Ipo``;
* C-peptide (Van Cauter 1992, §3.2): ``CPc = Sb / k10``, ``CPp = k12 CPc / k21`` (pmol/kg).

Table 1's ``kp1 = 2.70``, ``Vm0 = 2.50``, ``Ib = 25`` and ``Ipb, Ilb = 1.25, 4.5`` are not an
exact steady state of the published equations with ``Sb = 1.8``; the derived values replace
them (see the folder's README). The script checks that the right-hand side vanishes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from isletsim.model import uva_padova as m

OUT = Path(__file__).resolve().parents[1] / "src/isletsim/params/dalla_man_2007_normal"
NAME = "normal#001"

#: Dalla Man 2007 Table 1 (science reference §1.3 column A, §2.2).
TABLE_1: dict[str, float] = {
    "BW": 78.0, "Vg": 1.88, "k1": 0.065, "k2": 0.079, "Vi": 0.05,
    "m1": 0.190, "m2": 0.484, "m4": 0.194, "m5": 0.0304, "m6": 0.6471,
    "kmax": 0.0558, "kmin": 0.0080, "kabs": 0.057, "f": 0.90, "b": 0.82, "d": 0.010,
    "kp2": 0.0021, "kp3": 0.009, "kp4": 0.0618, "ki": 0.0079, "Fsnc": 1.0,
    "Vmx": 0.047, "Km0": 225.59, "p2u": 0.0331, "ke1": 0.0005, "ke2": 339.0,
    "K": 2.30, "alpha": 0.050, "beta": 0.11, "gamma": 0.5, "Sb": 1.8,
}  # fmt: skip
#: Published basal masses (§2.2, sbmlutils) and values the steady state replaces.
GPB, GTB = 178.0, 135.0
PUBLISHED = {"kp1": 2.70, "Vm0": 2.50, "Ib": 25.0, "Ipb": 1.25, "Ilb": 4.5}
#: s.c. insulin of GIM 2007 (§1.3 column A) and the CGM lag (Td = 10 min).
SC_INSULIN = {"kd": 0.0164, "ka1": 0.0018, "ka2": 0.0182}
KSC = 1.0 / 10.0
#: Body characteristics for the C-peptide kinetics: the Van Cauter worked-example subject
#: (male, 40 y, 178 cm; science reference §3.2) with the Dalla Man body weight. [U] choice.
SEX, HEIGHT_CM, AGE_Y = "male", 178.0, 40.0
#: Therapy placeholders (never used with NoInsulin): S2008 adult means of quest.csv [I].
CR_G_PER_U, CF_MG_DL_PER_U, TDI_U_PER_DAY = 10.3, 16.18, 0.0


def normal_subject() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The physiology row (``patients.csv``) and therapy row (``quest.csv``)."""
    t = TABLE_1
    heb = t["m6"]
    gb = GPB / t["Vg"]
    ipob = t["Sb"] / t["gamma"]
    s = t["gamma"] * ipob
    he = heb - t["m5"] * s
    m3 = he * t["m1"] / (1.0 - he)
    ipb = s / ((t["m1"] + m3) * (t["m2"] + t["m4"]) / t["m1"] - t["m2"])
    ilb = (t["m2"] + t["m4"]) * ipb / t["m1"]
    ib = ipb / t["Vi"]
    uidb = t["k1"] * GPB - t["k2"] * GTB
    egpb = t["Fsnc"] + uidb
    vm0 = uidb * (t["Km0"] + GTB) / GTB
    kp1 = egpb + t["kp2"] * GPB + t["kp3"] * ib + t["kp4"] * ipob
    row: dict[str, object] = {"Name": NAME}
    row.update({k: t[k] for k in ("BW", "kabs", "kmax", "kmin", "b", "d", "f")})
    row.update({"kp1": kp1, "kp2": t["kp2"], "kp3": t["kp3"], "Fsnc": t["Fsnc"],
                "Vm0": vm0, "Vmx": t["Vmx"], "Km0": t["Km0"], "k1": t["k1"], "k2": t["k2"],
                "ke1": t["ke1"], "ke2": t["ke2"], "m1": t["m1"], "m2": t["m2"], "m4": t["m4"],
                "m30": heb * t["m1"] / (1.0 - heb), "Vi": t["Vi"], **SC_INSULIN,
                "p2u": t["p2u"], "Ib": ib, "ki": t["ki"], "ksc": KSC, "Vg": t["Vg"],
                "u2ss": 0.0})  # fmt: skip
    row.update({"HEb": heb, "sec_K": t["K"], "sec_alpha": t["alpha"], "sec_beta": t["beta"],
                "sec_gamma": t["gamma"], "sec_Sb": t["Sb"], "sec_h": gb, "sec_m5": t["m5"],
                "sec_kp4": t["kp4"]})  # fmt: skip
    # glucagon sub-model (S2013 form, science reference 1.2): its basal glucose and threshold
    # are this subject's Gb, so that the basal state is steady (read only by a model that has
    # the glucagon columns; harmless otherwise).
    row.update({"glc_Gb": gb, "glc_Gth": gb})
    row.update({"sex": SEX, "height_cm": HEIGHT_CM})
    row.update({"Gb": gb, "Gpb": GPB, "Gtb": GTB, "EGPb": egpb, "Ipb": ipb, "Ilb": ilb,
                "Ipob": ipob, "m5": t["m5"], "m6": t["m6"], "HE_basal": he})  # fmt: skip
    x0 = {c: 0.0 for c in m.INITIAL_STATE_COLUMNS}
    x0[m.INITIAL_STATE_COLUMNS[m.GP]] = GPB
    x0[m.INITIAL_STATE_COLUMNS[m.GT]] = GTB
    x0[m.INITIAL_STATE_COLUMNS[m.IP]] = ipb
    x0[m.INITIAL_STATE_COLUMNS[m.I1]] = ib
    x0[m.INITIAL_STATE_COLUMNS[m.ID]] = ib
    x0[m.INITIAL_STATE_COLUMNS[m.IL]] = ilb
    x0[m.INITIAL_STATE_COLUMNS[m.GS]] = GPB
    row.update(x0)
    quest = pd.DataFrame([{"Name": NAME, "CR": CR_G_PER_U, "CF": CF_MG_DL_PER_U, "Age": AGE_Y,
                           "TDI": TDI_U_PER_DAY}])  # fmt: skip
    # C-peptide steady state needs the participant's Van Cauter kinetics (age, sex, BW, height)
    table = pd.DataFrame([row]).merge(quest, on="Name")
    p = m.parameter_matrix(table)[0]
    cpc = t["Sb"] / p[m.P_CP_K10]
    row.update({"x0_Ipo": ipob, "x0_Y": 0.0, "x0_CPc": cpc,
                "x0_CPp": p[m.P_CP_K12] * cpc / p[m.P_CP_K21]})  # fmt: skip
    return pd.DataFrame([row]), quest


def max_abs_derivative(patients: pd.DataFrame, quest: pd.DataFrame) -> float:
    """max |dx/dt| at the initial state, graft fraction 1, no meal, no insulin."""
    table = patients.merge(quest, on="Name")
    p = m.parameter_matrix(table)[0]
    x = m.initial_state(table)[0]
    return float(np.max(np.abs(m.rhs_numpy(x, p, 0.0, 0.0, 0.0, phi=1.0))))


def main(out: Path = OUT) -> None:
    patients, quest = normal_subject()
    resid = max_abs_derivative(patients, quest)
    if not resid < 1e-10:
        raise SystemExit(f"basal state is not a steady state: max |dx/dt| = {resid:.3g}")
    out.mkdir(parents=True, exist_ok=True)
    patients.to_csv(out / "patients.csv", index=False)
    quest.to_csv(out / "quest.csv", index=False)
    r = patients.iloc[0]
    print(f"wrote {out}: max |dx/dt| = {resid:.3g}")
    for k in ("kp1", "Vm0", "Ib", "Ipb", "Ilb"):
        print(f"  {k} = {r[k]:.6g} (Table 1: {PUBLISHED[k]})")
    print(f"  EGPb = {r['EGPb']:.6g}, Gb = {r['Gb']:.6g}, HE = {r['HE_basal']:.6g}, "
          f"CPc = {r['x0_CPc']:.6g} pmol/kg")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
