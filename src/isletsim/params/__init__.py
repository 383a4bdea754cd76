"""Parameter sets as data files, with their source, and their loaders."""

from isletsim.params.loaders import (
    COHORTS,
    UnknownPatientError,
    load_cohort,
    patient_names,
    select_patients,
)

__all__ = ["COHORTS", "UnknownPatientError", "load_cohort", "patient_names", "select_patients"]
