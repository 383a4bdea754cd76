"""Regenerate ``iglu_python_mage.csv``: iglu_python 0.4.3 MAGE on the real example data.

Run from the repository root with the test extra installed::

    .venv/bin/python tests/data/iglu-mage/make_iglu_python_reference.py

iglu_python is called once per subject (``id, time, gl`` with naive UTC times, as
``GlucoseTable.to_iglu()`` gives them); a direction that raises for a subject is left
empty, with the exception named in ``error``.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from pathlib import Path

import iglu_python as iglu
import pandas as pd

from isletsim.glucose_table import GlucoseTable

HERE = Path(__file__).resolve().parent
CGM = HERE.parent / "cgm"
DIRECTIONS = ("avg", "service", "max", "plus", "minus")


def main() -> None:
    warnings.simplefilter("ignore")
    rows = []
    for name in ("example_data_5_subject.csv", "example_data_hall.csv"):
        tab = GlucoseTable.from_frame(pd.read_csv(CGM / name))
        directions = DIRECTIONS if "5_subject" in name else ("avg",)
        for pid in tab.ids:
            frame = tab.subset([pid]).to_iglu()
            for d in directions:
                try:
                    value, error = float(iglu.mage(frame, direction=d)["MAGE"].iloc[0]), ""
                except Exception as exc:  # recorded in the output, not hidden
                    value, error = float("nan"), type(exc).__name__
                rows.append(
                    {"file": name, "id": pid, "direction": d, "mage": value, "error": error}
                )
    out = pd.DataFrame(rows)
    out.to_csv(HERE / "iglu_python_mage.csv", index=False, float_format="%.12g")
    print(f"wrote {len(out)} rows (iglu_python {version('iglu-python')})")


if __name__ == "__main__":
    main()
