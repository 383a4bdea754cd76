"""The root typer application; each sub-command module registers itself on import."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="isletsim",
    help="In-silico clinical trials of beta-cell replacement therapy in type 1 diabetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Register sub-commands (imported for their side effect of adding commands to ``app``).
from isletsim.cli import cgm as _cgm  # noqa: E402, F401
from isletsim.cli import replicate as _replicate  # noqa: E402, F401
from isletsim.cli import run as _run  # noqa: E402, F401
from isletsim.cli import simulate as _simulate  # noqa: E402, F401
from isletsim.cli import validate as _validate  # noqa: E402, F401
