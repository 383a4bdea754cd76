"""Secretion (Dalla Man 2007) and C-peptide kinetics (Van Cauter 1992) parameters."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd


@cache
def _secretion_file() -> dict[str, dict[str, object]]:
    with (resources.files("isletsim.params.secretion") / "dalla_man_2007.toml").open("rb") as fh:
        return tomllib.load(fh)


def load_secretion() -> dict[str, float]:
    """Values of ``dalla_man_2007.toml`` by name (see the file for units and sources)."""
    return {name: float(entry["value"]) for name, entry in _secretion_file().items()}


def secretion_sources() -> pd.DataFrame:
    """The secretion parameters with unit, source and whether the value was verified."""
    return pd.DataFrame.from_dict(_secretion_file(), orient="index")


@cache
def _recipient_defaults() -> dict[str, object]:
    folder = resources.files("isletsim.params.secretion")
    with (folder / "recipient_defaults.toml").open("rb") as fh:
        return {k: v["value"] for k, v in tomllib.load(fh).items()}


def kinetics_for_patients(patients: pd.DataFrame) -> dict[str, np.ndarray]:
    """Van Cauter C-peptide kinetics (k10, k12, k21 in 1/min, vd_l in L) per patient.

    Uses the columns ``Age`` (years), ``BW`` (kg) and, where present, ``sex`` and
    ``height_cm``; missing sex and height come from ``recipient_defaults.toml``
    (unverified modelling choices, see the file).
    """
    from isletsim.model.cpeptide import van_cauter_kinetics

    d = _recipient_defaults()
    n = len(patients)
    bw = patients["BW"].to_numpy(dtype=np.float64)
    age = (
        patients["Age"].to_numpy(dtype=np.float64) if "Age" in patients else np.full(n, 40.0)
    )
    sex = patients["sex"].to_numpy() if "sex" in patients else np.full(n, str(d["sex"]))
    height = (
        patients["height_cm"].to_numpy(dtype=np.float64)
        if "height_cm" in patients
        else 100.0 * np.sqrt(bw / float(d["bmi_kg_m2"]))  # type: ignore[arg-type]
    )
    kin = van_cauter_kinetics(age, sex, bw, height, str(d["population"]))
    return {"k10": kin.k10, "k12": kin.k12, "k21": kin.k21, "vd_l": kin.vd_l}
