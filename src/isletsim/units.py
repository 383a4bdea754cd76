"""Unit conversions, in one place.

Sources (see ``docs`` / science reference, "Conventions"):

* glucose: 1 mmol/L = 18.016 mg/dL (molar mass of glucose 180.16 g/mol).
* insulin: 1 U = 6000 pmol, as in UVA/Padova and simglucose ``t1dpatient.py``
  (1 uU/mL = 6 pmol/L).
* C-peptide: 1 ng/mL = 0.331 nmol/L (Igls: 0.5 ng/mL = 0.17 nmol/L).
* HbA1c: IFCC (mmol/mol) = 10.929 * (NGSP % - 2.15) (IFCC-NGSP master equation).
"""

from __future__ import annotations

MGDL_PER_MMOLL: float = 18.016
PMOL_PER_U_INSULIN: float = 6000.0
NMOLL_PER_NGML_CPEPTIDE: float = 0.331


def mmol_to_mg_dl(x):
    """Glucose mmol/L -> mg/dL."""
    return x * MGDL_PER_MMOLL


def mg_dl_to_mmol(x):
    """Glucose mg/dL -> mmol/L."""
    return x / MGDL_PER_MMOLL


def hba1c_ngsp_to_ifcc(pct):
    """HbA1c NGSP % -> IFCC mmol/mol (master equation)."""
    return 10.929 * (pct - 2.15)


def hba1c_ifcc_to_ngsp(mmol_mol):
    """HbA1c IFCC mmol/mol -> NGSP %."""
    return mmol_mol / 10.929 + 2.15


def cpeptide_ng_ml_to_nmol_l(x):
    """C-peptide ng/mL -> nmol/L."""
    return x * NMOLL_PER_NGML_CPEPTIDE


def cpeptide_nmol_l_to_ng_ml(x):
    """C-peptide nmol/L -> ng/mL."""
    return x / NMOLL_PER_NGML_CPEPTIDE
