"""isletsim: in-silico clinical trials of beta-cell replacement therapy in type 1 diabetes."""

from __future__ import annotations

from isletsim.glucose_table import GlucoseTable

__version__ = "0.1.0"

__all__ = ["GlucoseTable", "__version__"]
