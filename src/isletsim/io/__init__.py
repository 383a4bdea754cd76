"""Input and output of external data: CGM device exports (:func:`read_cgm`)."""

from __future__ import annotations

from isletsim.io.cgm import (
    CGMFormatError,
    CGMWarning,
    read_cgm,
    read_report,
    rejected_counts,
)

__all__ = ["CGMFormatError", "CGMWarning", "read_cgm", "read_report", "rejected_counts"]
