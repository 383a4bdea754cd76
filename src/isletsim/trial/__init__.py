"""Virtual trials: protocol files, the runner, endpoints and the result."""

from isletsim.trial.protocol import Protocol, ProtocolError
from isletsim.trial.result import TrialResult, run_seeds, run_trial
from isletsim.trial.runner import EnrolmentError

__all__ = ["EnrolmentError", "Protocol", "ProtocolError", "TrialResult", "run_seeds", "run_trial"]
