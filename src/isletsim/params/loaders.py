"""Loaders for the parameter-set data files shipped in :mod:`isletsim.params`.

Each cohort is a folder with a ``README.md`` giving its source and licence.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

import pandas as pd

#: Known cohorts: name -> folder inside ``isletsim/params``.
COHORTS: dict[str, str] = {
    "uva-padova-2008": "uva_padova_2008",
    "dalla-man-2007-normal": "dalla_man_2007_normal",
}


class UnknownPatientError(KeyError):
    """A patient or cohort name that is not in the parameter sets."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@cache
def _load(cohort: str) -> pd.DataFrame:
    if cohort not in COHORTS:
        raise UnknownPatientError(
            f"unknown cohort {cohort!r}; valid cohorts: {', '.join(sorted(COHORTS))}"
        )
    folder = resources.files("isletsim.params") / COHORTS[cohort]
    with (folder / "patients.csv").open() as fh:
        physiology = pd.read_csv(fh)
    with (folder / "quest.csv").open() as fh:
        therapy = pd.read_csv(fh)
    table = physiology.merge(therapy, on="Name", how="left", validate="one_to_one")
    if table[["CR", "CF"]].isna().any().any():
        bad = table.loc[table["CR"].isna(), "Name"].tolist()
        raise ValueError(f"{cohort}: patients without a therapy row in quest.csv: {bad}")
    return table.set_index("Name", drop=False)


def load_cohort(cohort: str = "uva-padova-2008") -> pd.DataFrame:
    """All patients of a cohort: physiology parameters joined with CR, CF, Age, TDI.

    Parameters
    ----------
    cohort
        Cohort name, one of :data:`COHORTS`.

    Returns
    -------
    pandas.DataFrame
        One row per patient, indexed by ``Name`` (a copy: edit freely).
    """
    return _load(cohort).copy()


def patient_names(cohort: str = "uva-padova-2008") -> list[str]:
    """Names of the patients of ``cohort`` in file order."""
    return list(_load(cohort)["Name"])


def select_patients(names: Sequence[str], cohort: str = "uva-padova-2008") -> pd.DataFrame:
    """Rows of the named patients, in the order given.

    Raises
    ------
    UnknownPatientError
        If a name is not in the cohort; the message lists the valid names.
    """
    table = _load(cohort)
    unknown = [n for n in names if n not in table.index]
    if unknown:
        raise UnknownPatientError(
            f"unknown patient(s) {', '.join(map(repr, unknown))} in cohort {cohort!r}; "
            f"valid names: {', '.join(table.index)}"
        )
    return table.loc[list(names)].copy()
