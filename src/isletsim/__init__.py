"""isletsim: in-silico clinical trials of beta-cell replacement therapy in type 1 diabetes."""

from __future__ import annotations

from isletsim import metrics
from isletsim.engine import SimulationResult, simulate
from isletsim.glucose_table import GlucoseTable
from isletsim.io import read_cgm
from isletsim.meals import DailyMeals, MealEvents
from isletsim.mmtt import MMTTResult, OGTTResult, mmtt, ogtt
from isletsim.params import load_cohort, patient_names
from isletsim.sensors import CGM
from isletsim.therapy import BasalBolus, NoInsulin, OpenLoop, Pump
from isletsim.variability import InsulinSensitivity

__version__ = "0.1.0"

__all__ = [
    "CGM",
    "BasalBolus",
    "DailyMeals",
    "GlucoseTable",
    "InsulinSensitivity",
    "MMTTResult",
    "MealEvents",
    "NoInsulin",
    "OGTTResult",
    "OpenLoop",
    "Pump",
    "SimulationResult",
    "__version__",
    "load_cohort",
    "metrics",
    "mmtt",
    "ogtt",
    "patient_names",
    "read_cgm",
    "simulate",
]
