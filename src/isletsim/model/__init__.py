"""Physiology as pure right-hand-side functions over participants' states."""

from isletsim.model import uva_padova

__all__ = ["uva_padova"]
