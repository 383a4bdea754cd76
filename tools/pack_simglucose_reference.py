"""Pack the simglucose 0.2.11 reference trajectories into compact Parquet files.

Run once by a developer who has the project's shared data folder (the CSVs written by
``make_ref.py``, copied next to the output as ``make_ref.py``):

    python tools/pack_simglucose_reference.py SHARED/data/reference/simglucose \
        src/isletsim/validation/data/simglucose_0_2_11

Values are copied unchanged (the CSVs carry 10 significant digits); only the columns the
validation suite uses are kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

CLOSED = ["minute", "BG_mgdl", "Gp_mgdl", "CGM_mgdl", "CHO_eaten_g", "insulin_U_per_min"]


def main(src: Path, out: Path) -> None:
    names = sorted(p.stem for p in src.glob("*#*.csv"))
    closed = []
    for name in names:
        df = pd.read_csv(src / f"{name}.csv", usecols=CLOSED)
        df.insert(0, "patient", name)
        closed.append(df)
    pd.concat(closed).to_parquet(out / "closed_loop.parquet", index=False, compression="zstd")
    raw = []
    for path in sorted((src / "raw").glob("*_states.csv")):
        df = pd.read_csv(path).drop(columns=["t", "CHO_announced_g"])
        df.insert(0, "patient", path.name.removesuffix("_states.csv"))
        raw.append(df)
    pd.concat(raw).to_parquet(out / "open_loop_states.parquet", index=False, compression="zstd")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
