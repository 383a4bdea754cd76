"""Therapy policies: decisions taken every control step, vectorised over participants."""

from isletsim.therapy.aid import AutomatedInsulinDelivery
from isletsim.therapy.basal_bolus import BasalBolus
from isletsim.therapy.base import InsulinAction, Observation, Therapy
from isletsim.therapy.no_insulin import NoInsulin
from isletsim.therapy.open_loop import OpenLoop
from isletsim.therapy.pump import Pump
from isletsim.therapy.weaning import ClinicianWeaning, WeaningProtocol

THERAPIES = {
    "open-loop": OpenLoop,
    "basal-bolus": BasalBolus,
    "aid": AutomatedInsulinDelivery,
    "none": NoInsulin,
}

__all__ = [
    "THERAPIES",
    "AutomatedInsulinDelivery",
    "BasalBolus",
    "ClinicianWeaning",
    "InsulinAction",
    "NoInsulin",
    "Observation",
    "OpenLoop",
    "Pump",
    "Therapy",
    "WeaningProtocol",
]
