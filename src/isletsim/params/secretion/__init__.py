"""Secretion (Dalla Man 2007) and C-peptide kinetics (Van Cauter 1992) parameters."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from isletsim.params.toml_file import (
    ParameterEntry,
    load_parameter_file,
    numeric_values,
    parameter_values,
    sources,
)

_PACKAGE = "isletsim.params.secretion"
_SECRETION_FILE = "dalla_man_2007.toml"
_RECIPIENT_FILE = "recipient_defaults.toml"
#: Parameters of ``dalla_man_2007.toml``.
SECRETION_NAMES: tuple[str, ...] = (
    "K", "alpha", "beta", "gamma", "Sb", "h", "m5", "kp4", "HE_max",
)  # fmt: skip
#: Parameters of ``recipient_defaults.toml`` (``sex`` and ``population`` are text).
RECIPIENT_NAMES: tuple[str, ...] = ("sex", "bmi_kg_m2", "population")


@cache
def _secretion_file() -> dict[str, ParameterEntry]:
    return load_parameter_file(
        _PACKAGE,
        _SECRETION_FILE,
        expected=SECRETION_NAMES,
        required_keys=("value", "unit", "source", "verified"),
    )


def load_secretion() -> dict[str, float]:
    """Values of ``dalla_man_2007.toml`` by name (see the file for units and sources).

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        If the file lacks or has an unknown parameter or field, or a value is not finite.
    """
    return numeric_values(_secretion_file(), file=_SECRETION_FILE)


def secretion_sources() -> pd.DataFrame:
    """The secretion parameters with unit, source and whether the value was verified."""
    return sources(_secretion_file())


@cache
def _recipient_defaults() -> dict[str, float | str]:
    return parameter_values(
        load_parameter_file(
            _PACKAGE, _RECIPIENT_FILE, expected=RECIPIENT_NAMES, text_values=("sex", "population")
        )
    )


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
        else 100.0 * np.sqrt(bw / float(d["bmi_kg_m2"]))
    )
    kin = van_cauter_kinetics(age, sex, bw, height, str(d["population"]))
    return {"k10": kin.k10, "k12": kin.k12, "k21": kin.k21, "vd_l": kin.vd_l}
