"""Glucagon subsystem parameters (UVA/Padova S2013, Dalla Man et al. 2014; all unverified)."""

from __future__ import annotations

from functools import cache

import pandas as pd

from isletsim.params.toml_file import (
    ParameterEntry,
    load_parameter_file,
    numeric_values,
    sources,
)

_FILE = "uva_padova_2013.toml"
#: Parameters of ``uva_padova_2013.toml`` (``glc_<name>`` in the model's parameter vector).
GLUCAGON_NAMES: tuple[str, ...] = (
    "n", "Hb", "rho", "sigma1", "sigma2", "delta", "xi", "kH", "Gb", "Gth",
    "kh1", "kh2", "kh3", "alpha_native", "alpha_per_phi",
)  # fmt: skip


@cache
def _glucagon_file() -> dict[str, ParameterEntry]:
    return load_parameter_file(
        "isletsim.params.glucagon",
        _FILE,
        expected=GLUCAGON_NAMES,
        required_keys=("value", "unit", "source", "verified"),
    )


def load_glucagon() -> dict[str, float]:
    """Values of ``uva_padova_2013.toml`` by name (see the file for units and sources).

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        If the file lacks or has an unknown parameter or field, or a value is not finite.
    """
    return numeric_values(_glucagon_file(), file=_FILE)


def glucagon_sources() -> pd.DataFrame:
    """The glucagon parameters with unit, source and whether the value was verified."""
    return sources(_glucagon_file())
