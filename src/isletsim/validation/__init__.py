"""Validation as a product feature: named suites of checks against independent references.

``isletsim validate --suite NAME [--json]`` prints each :class:`Check` with its reference,
value, tolerance, source and pass/fail.
"""

from isletsim.validation.checks import SUITES, Check, run_suite

__all__ = ["SUITES", "Check", "run_suite"]
