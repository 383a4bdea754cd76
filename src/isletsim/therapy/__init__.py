"""Therapy policies: decisions taken every control step, vectorised over participants."""

from isletsim.therapy.aid import AutomatedInsulinDelivery
from isletsim.therapy.basal_bolus import BasalBolus
from isletsim.therapy.base import InsulinAction, Observation, Therapy
from isletsim.therapy.hypoglycemia import HypoglycemiaSelfCare
from isletsim.therapy.no_insulin import NoInsulin
from isletsim.therapy.open_loop import OpenLoop
from isletsim.therapy.pump import Pump
from isletsim.therapy.regimens import (
    BasalTitration,
    BolusBehaviour,
    MultipleDailyInjections,
    PumpTherapy,
    TherapySettings,
)
from isletsim.therapy.weaning import ClinicianWeaning, WeaningProtocol

THERAPIES = {
    "open-loop": OpenLoop,
    "basal-bolus": BasalBolus,
    "aid": AutomatedInsulinDelivery,
    "mdi": MultipleDailyInjections,
    "pump": PumpTherapy,
    "none": NoInsulin,
}

__all__ = [
    "THERAPIES",
    "AutomatedInsulinDelivery",
    "BasalBolus",
    "BasalTitration",
    "BolusBehaviour",
    "ClinicianWeaning",
    "HypoglycemiaSelfCare",
    "InsulinAction",
    "MultipleDailyInjections",
    "NoInsulin",
    "Observation",
    "OpenLoop",
    "Pump",
    "PumpTherapy",
    "Therapy",
    "TherapySettings",
    "WeaningProtocol",
]
