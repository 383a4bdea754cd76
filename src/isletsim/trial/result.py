"""The result of a virtual trial: tables, endpoints, summary, storage and published comparison."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isletsim.metrics.endpoints import clopper_pearson
from isletsim.therapy.graft import IsletProduct, load_islet_product, participant_streams
from isletsim.trial import tables
from isletsim.trial.endpoints import mean_ci
from isletsim.trial.protocol import Protocol
from isletsim.trial.runner import dose_value

#: Columns of ``by_visit`` in the JSON summary (mean over the arm's participants at a visit).
BY_VISIT: dict[str, str] = {
    "hba1c_mean": "hba1c_pct",
    "tir_mean": "tir_pct",
    "tbr_54_mean": "tbr_54_pct",
    "insulin_u_per_day_mean": "insulin_u_per_day",
    "cpeptide_fasting_pmol_l_mean": "cpeptide_fasting_pmol_l",
    "cpeptide_mmtt_peak_pmol_l_mean": "cpeptide_mmtt_peak_pmol_l",
}
STORED = ("participants", "visits", "events", "daily", "cgm", "endpoints")


def _num(x: Any) -> float | None:
    """JSON number (None for NaN)."""
    x = float(x)
    return None if math.isnan(x) else x


@dataclass
class TrialResult:
    """A virtual trial's outcome (tables laid out in :mod:`isletsim.trial.tables`).

    Attributes
    ----------
    protocol : Protocol
    seed : int
    participants, visits, events, daily, cgm, endpoints : pandas.DataFrame
    per_participant : pandas.DataFrame
        Every endpoint's value per enrolled participant.
    seconds : float
        Wall time of the run.
    """

    protocol: Protocol
    seed: int
    participants: pd.DataFrame
    visits: pd.DataFrame
    events: pd.DataFrame
    daily: pd.DataFrame
    cgm: pd.DataFrame
    endpoints: pd.DataFrame
    per_participant: pd.DataFrame
    seconds: float = 0.0
    _seed_results: list[TrialResult] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ for report and CLI
    @property
    def protocol_name(self) -> str:
        """``protocol.name`` of the protocol file."""
        return self.protocol.protocol.name

    @property
    def protocol_title(self) -> str:
        """``protocol.title``."""
        return self.protocol.protocol.title

    @property
    def arms(self) -> list[str]:
        """Arm names in protocol order."""
        return self.protocol.arm_names

    @property
    def visit_days(self) -> list[int]:
        """Visit days of the protocol."""
        return list(self.protocol.visits.days)

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict[str, Any]:
        """The run as one JSON-ready object (``isletsim run --json``).

        ``{"protocol", "seed", "arms": {ARM: {"n_dosed", "endpoints": {NAME: {"value", "n",
        "N", "ci95"}}, "by_visit": {DAY: {...means..., "insulin_independent_n"}}}}}``.
        """
        arms: dict[str, Any] = {}
        for arm in self.arms:
            p = self.participants[self.participants["arm"] == arm]
            ep = self.endpoints[self.endpoints["arm"] == arm]
            endpoints = {
                r.endpoint: {
                    "value": _num(r.value),
                    "n": _num(r.n),
                    "N": int(r.N),
                    "ci95": [_num(r.ci_low), _num(r.ci_high)],
                }
                for r in ep.itertuples(index=False)
            }
            vis = self.visits[self.visits["arm"] == arm]
            by_visit: dict[str, Any] = {}
            for day in self.visit_days:
                v = vis[vis["day"] == day]
                entry = {k: _num(v[c].mean()) if len(v) else None for k, c in BY_VISIT.items()}
                entry["insulin_independent_n"] = int(v["insulin_independent"].sum())
                entry["n"] = len(v)
                by_visit[str(day)] = entry
            arms[arm] = {
                "n_enrolled": int(p["enrolled"].sum()),
                "n_dosed": int(p["dosed"].sum()),
                "n_completed": int(p["completed"].sum()),
                "endpoints": endpoints,
                "by_visit": by_visit,
            }
        return {
            "protocol": self.protocol_name,
            "seed": int(self.seed),
            "screened": len(self.participants),
            "eligible": int(self.participants["eligible"].sum()),
            "arms": arms,
        }

    def endpoint_frame(self) -> pd.DataFrame:
        """The endpoint table, one row per arm and endpoint, with n/N and the 95 % CI."""
        return self.endpoints.copy()

    def __repr__(self) -> str:
        lines = [f"TrialResult({self.protocol_name!r}, seed={self.seed}, "
                 f"{int(self.participants['enrolled'].sum())} enrolled of "
                 f"{len(self.participants)} screened, {self.seconds:.1f} s)"]  # fmt: skip
        for r in self.endpoints.itertuples(index=False):
            if r.definition.startswith("mean") or "continuous" in r.definition:
                val = f"{r.value:.2f} (95% CI {r.ci_low:.2f} to {r.ci_high:.2f}, n={r.n:.0f})"
            else:
                val = (f"{r.n:.0f}/{r.N} = {100 * r.value:.0f}% "
                       f"(95% CI {100 * r.ci_low:.0f}-{100 * r.ci_high:.0f}%)")  # fmt: skip
            lines.append(f"  {r.arm:>14}  {r.endpoint:<31} {val}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ published figures
    def attach_seeds(self, results: Sequence[TrialResult]) -> TrialResult:
        """Keep runs of the same protocol with other seeds for :meth:`compare_published`.

        ``results`` are the other seeds' results (this one is included automatically).
        Returns ``self``.
        """
        others = [r for r in results if r is not self]
        for r in others:
            if r.protocol_name != self.protocol_name:
                raise ValueError(
                    f"cannot compare seeds of different protocols: {r.protocol_name!r} vs "
                    f"{self.protocol_name!r}"
                )
        self._seed_results = [self, *others]
        return self

    @property
    def seeds(self) -> list[int]:
        """Seeds behind :meth:`compare_published` (this run's alone unless seeds attached)."""
        return [r.seed for r in self._seed_results] or [self.seed]

    def compare_published(self, results: Sequence[TrialResult] | None = None) -> pd.DataFrame:
        """Each published figure beside the simulated value and its interval.

        With one result (``results`` None and no seeds attached) the interval is the 95 %
        confidence interval of the simulated trial (exact binomial for proportions, t for
        means); over several seeds (``results``, e.g. from :func:`run_seeds`) the value is
        the mean over seeds and the interval the 2.5-97.5 percentiles of the seeds' values.

        Returns
        -------
        pandas.DataFrame
            Layout ``tables.PUBLISHED``; empty when no published figures are packaged for
            this protocol.
        """
        figures = published_figures(self.protocol_name)
        if not figures:
            return tables.empty("published")
        runs = list(results) if results is not None else (self._seed_results or [self])
        rows = []
        for f in figures:
            values = [r._figure_value(f) for r in runs]
            if len(runs) == 1:
                sim, lo, hi = values[0]
            else:
                xs = np.array([v[0] for v in values], dtype=float)
                xs = xs[np.isfinite(xs)]
                sim = float(xs.mean()) if xs.size else math.nan
                lo, hi = (float(np.percentile(xs, 2.5)), float(np.percentile(xs, 97.5))) if (
                    xs.size) else (math.nan, math.nan)  # fmt: skip
            pub = float(f["published"])
            rows.append({
                "figure": f["figure"], "arm": f["arm"], "published": pub,
                "published_text": f.get("text", ""), "simulated": sim,
                "sim_low": lo, "sim_high": hi,
                "within": bool(lo - 1e-9 <= pub <= hi + 1e-9),  # False when not simulated
                "source": f"{f['source']} [{f['tag']}]",
            })  # fmt: skip
        return tables.conform("published", pd.DataFrame(rows))

    def _figure_value(self, f: dict[str, Any]) -> tuple[float, float, float]:
        """Simulated value and 95 % CI of one published figure in this run."""
        arm = f["arm"]
        pp = self.per_participant
        sub = pp if arm == "*" else pp[pp["arm"] == arm]
        if "endpoint" in f:
            if f["endpoint"] not in sub:  # not an endpoint of this run's protocol
                return math.nan, math.nan, math.nan
            col = sub[f["endpoint"]].to_numpy()
            if col.dtype == bool:
                k, n = int(col.sum()), col.size
                lo, hi = clopper_pearson(k, n)
                return k / n, lo, hi
            return mean_ci(col.astype(float))
        if "visit" in f:
            if int(f["visit"]) not in self.visit_days:
                return math.nan, math.nan, math.nan
            v = self.visits[(self.visits["day"] == int(f["visit"]))]
            if arm != "*":
                v = v[v["arm"] == arm]
            return mean_ci(v[f["column"]].to_numpy(float))
        ev = self.events[self.events["term"] == f["count"]]
        if f.get("serious"):
            ev = ev[ev["serious"]]
        if arm != "*":
            ev = ev[ev["arm"] == arm]
        n = len(sub)
        k = int(ev["participant"].isin(sub["participant"]).groupby(ev["participant"]).any().sum())
        lo, hi = clopper_pearson(k, n)
        return k / n, lo, hi

    # ------------------------------------------------------------------ storage
    def to_parquet(self, directory: str | Path) -> Path:
        """Write every table as ``DIR/<table>.parquet`` plus ``DIR/trial.json``, atomically.

        The tables are written into a temporary sibling directory that then replaces
        ``DIR`` (an interrupted run leaves no half-written result).
        """
        out = Path(directory)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            for name in STORED:
                getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=False)
            self.per_participant.to_parquet(tmp / "per_participant.parquet", index=False)
            meta = {"seed": self.seed, "seconds": self.seconds,
                    "protocol": self.protocol.model_dump(mode="json"),
                    "source": self.protocol.source}  # fmt: skip
            (tmp / "trial.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    @classmethod
    def from_parquet(cls, directory: str | Path) -> TrialResult:
        """Read a result written by :meth:`to_parquet`."""
        d = Path(directory)
        meta = json.loads((d / "trial.json").read_text(encoding="utf-8"))
        protocol = Protocol.from_dict(meta["protocol"], source=meta.get("source", str(d)))
        frames = {
            name: tables.conform(name, pd.read_parquet(d / f"{name}.parquet")) for name in STORED
        }
        return cls(protocol=protocol, seed=int(meta["seed"]),
                   per_participant=pd.read_parquet(d / "per_participant.parquet"),
                   seconds=float(meta.get("seconds", 0.0)), **frames)  # fmt: skip

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL over the tables with DuckDB (tables named as the attributes).

        Example: ``result.query("select arm, avg(tir_pct) from visits where day = 365
        group by arm")``.
        """
        import duckdb

        con = duckdb.connect()
        try:
            for name in (*STORED, "per_participant"):
                con.register(name, getattr(self, name))
            return con.execute(sql).df()
        finally:
            con.close()

    def report(self, directory: str | Path) -> Path:
        """Write the HTML report ``DIR/report.html`` (:mod:`isletsim.report.trial`)."""
        from isletsim.report.trial import write_trial_report

        return write_trial_report(self, Path(directory))


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``, replacing an existing result directory."""
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def published_figures(protocol_name: str) -> list[dict[str, Any]]:
    """The packaged published figures of a protocol (``trial/published/<name>.toml``)."""
    path = resources.files("isletsim.trial") / "published" / f"{protocol_name}.toml"
    if not path.is_file():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return list(data.get("figure", []))


def run_trial(
    protocol: Protocol | str | Path,
    seed: int | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    products: Mapping[str, IsletProduct] | None = None,
) -> TrialResult:
    """Run a virtual trial (see :mod:`isletsim.trial.runner` for the flow).

    Parameters
    ----------
    protocol
        A :class:`Protocol` or the path of a protocol TOML file.
    seed
        Root seed (default: the protocol's ``seed``). Same protocol and seed, same result.
    progress
        Called as ``progress(minutes_done, minutes_total)`` during the simulation.
    products
        Islet products replacing the packaged ones by name (e.g. a
        :meth:`~isletsim.therapy.graft.IsletProduct.with_values` variant for calibration or
        sensitivity analysis).

    Returns
    -------
    TrialResult
    """
    from isletsim.trial import runner
    from isletsim.trial.records import build_events, build_records

    start = time.perf_counter()
    proto = protocol if isinstance(protocol, Protocol) else Protocol.load(protocol)
    seed = proto.protocol.seed if seed is None else int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    screened = runner.screen(proto, seed)
    enrolled = screened[screened["enrolled"]].reset_index(drop=True)
    safety, death = runner.run_safety(enrolled, proto, seed)
    inputs = runner.trial_inputs(enrolled, proto, seed, products)
    runs, phi_all = runner.run_groups(enrolled, proto, inputs, seed, progress=progress)
    assay = participant_streams(runner.purpose_seed(seed, "assay"), len(enrolled))
    recs = build_records(runs, phi_all, enrolled, proto, assay, death)
    events = build_events(runs, phi_all, enrolled, proto, safety, death)
    return assemble(proto, seed, screened, enrolled, recs, events, death,
                    seconds=time.perf_counter() - start)  # fmt: skip


def assemble(protocol: Protocol, seed: int, screened: pd.DataFrame, enrolled: pd.DataFrame,
             recs: dict[str, pd.DataFrame], events: pd.DataFrame, death: np.ndarray,
             seconds: float = 0.0) -> TrialResult:  # fmt: skip
    """A :class:`TrialResult` from one trial's records and events (endpoints derived)."""
    from isletsim.trial.endpoints import endpoint_table, participant_endpoints

    participants = _participant_table(screened, enrolled, recs["visits"], protocol, death)
    per = participant_endpoints(participants, recs["visits"], events, recs["daily"], protocol)
    return TrialResult(
        protocol=protocol, seed=seed, participants=participants, visits=recs["visits"],
        events=events, daily=recs["daily"], cgm=recs["cgm"],
        endpoints=endpoint_table(per, protocol), per_participant=per, seconds=seconds,
    )  # fmt: skip


def _participant_table(screened: pd.DataFrame, enrolled: pd.DataFrame, visits: pd.DataFrame,
                       protocol: Protocol, death: np.ndarray) -> pd.DataFrame:  # fmt: skip
    arms = {a.name: a for a in protocol.arms}
    end = float(protocol.protocol.follow_up_days)
    death_of = dict(zip(enrolled["Name"].astype(str), death, strict=True))
    base = visits[visits["day"] == 0].set_index("participant")
    out = pd.DataFrame({
        "participant": screened["Name"].astype(str),
        "arm": screened["arm"],
        "eligible": screened["eligible"].astype(bool),
        "screen_failure": screened["screen_failure"],
        "enrolled": screened["enrolled"].astype(bool),
        "model_patient": screened["model_patient"].astype(str),
        "age_years": screened["age_years"].astype(float),
        "sex": screened["sex"].astype(str),
        "body_weight_kg": screened["BW"].astype(float),
        "diabetes_duration_years": screened["diabetes_duration_years"].astype(float),
        "gold_score": screened["gold_score"].astype(float),
        "severe_events_prior_year": screened["severe_events_prior_year"].astype("int64"),
        "therapy": screened["therapy"].astype(str),
    })  # fmt: skip
    dd = out["participant"].map(death_of).astype(float)
    out["death_day"] = dd.where(np.isfinite(dd), np.nan)
    out["dosed"] = out["enrolled"] & out["arm"].map(
        lambda a: bool(a) and not arms[a].is_control
    ).astype(bool)
    out["last_followup_day"] = np.where(
        out["enrolled"], np.fmin(out["death_day"].fillna(np.inf), end), np.nan
    )
    out["completed"] = out["enrolled"] & out["death_day"].isna()
    dose, unit = [], []
    for a in out["arm"]:
        arm = arms.get(a)
        if arm is None or arm.is_control:
            dose.append(0.0)
            unit.append("")
            continue
        dose.append(dose_value(arm, arm.dose))
        unit.append(load_islet_product(arm.product).dose_unit)  # type: ignore[arg-type]
    out["dose"] = dose
    out["dose_unit"] = unit
    for col, src in (("baseline_hba1c_pct", "hba1c_pct"), ("baseline_tir_pct", "tir_pct"),
                     ("baseline_insulin_u_per_day", "insulin_u_per_day")):  # fmt: skip
        out[col] = out["participant"].map(base[src]).astype(float)
    return tables.conform("participants", out)


def run_seeds(protocol: Protocol | str | Path, seeds: Sequence[int]) -> TrialResult:
    """Run the protocol once per seed; the first result carries the others for
    :meth:`TrialResult.compare_published` (value = mean over seeds, interval = 2.5-97.5
    percentiles)."""
    results = [run_trial(protocol, s) for s in seeds]
    return results[0].attach_seeds(results[1:])


__all__ = ["BY_VISIT", "TrialResult", "published_figures", "run_seeds", "run_trial"]
