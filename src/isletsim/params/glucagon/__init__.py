"""Glucagon subsystem parameters (UVA/Padova S2013, Dalla Man et al. 2014; all unverified)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

import pandas as pd


@cache
def _glucagon_file() -> dict[str, dict[str, object]]:
    folder = resources.files("isletsim.params.glucagon")
    with (folder / "uva_padova_2013.toml").open("rb") as fh:
        return tomllib.load(fh)


def load_glucagon() -> dict[str, float]:
    """Values of ``uva_padova_2013.toml`` by name (see the file for units and sources)."""
    return {name: float(entry["value"]) for name, entry in _glucagon_file().items()}  # type: ignore[arg-type]


def glucagon_sources() -> pd.DataFrame:
    """The glucagon parameters with unit, source and whether the value was verified."""
    return pd.DataFrame.from_dict(_glucagon_file(), orient="index")
