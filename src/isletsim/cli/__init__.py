"""The ``isletsim`` command line.

Sub-commands live in their own modules and are registered here.
"""

from __future__ import annotations

from isletsim.cli._app import app


def main() -> None:
    """Entry point of the ``isletsim`` console script."""
    app()


__all__ = ["app", "main"]
