"""Thousands of replicate trials of a design, and their operating characteristics.

:func:`run_replicates` runs replicate trials ``0 .. n-1`` of a protocol (or of every point
of a sweep over sample size and dose) in batches on an executor, checkpoints each finished
batch and summarises them as :class:`OperatingCharacteristics`.

Executors
---------
``"local"``
    A :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method (one
    process per usable core by default). A batch whose worker dies (the pool breaks) or
    raises is resubmitted on a fresh pool, at most :data:`RETRIES` times.
``"dask"``
    :class:`distributed.Client` on ``address`` (``tcp://scheduler:8786``; a running cluster,
    e.g. one started by ``dask-jobqueue`` on SLURM/PBS or by the Dask Kubernetes operator),
    or, without an address, a ``LocalCluster`` of ``workers`` (default 2) single-threaded
    worker processes bound to 127.0.0.1. Tasks are submitted with ``retries=RETRIES``; a
    task whose worker dies is rescheduled by the scheduler.

Replicate ``k`` of a design is ``run_trial(protocol, replicate_seed(seed, k))`` whichever
batch or executor runs it (:mod:`isletsim.trial.batch`), so results do not depend on the
executor, the batch size or on resuming.

Checkpoints
-----------
With ``out``, ``out/design.json`` records the design (protocol dumps of every design point,
seed, n, sweep, batch layout) and each finished batch is written atomically (temporary file,
then rename) to ``out/parts/batch-<first>-<last>.parquet`` (design point ``i`` of a sweep:
``out/parts/p<i>/batch-<first>-<last>.parquet``): one table with a ``table`` column
(``"endpoints"`` or ``"summary"``). ``resume=True`` reads the parts, skips the replicates
they hold (never running or counting one twice) and refuses an ``out`` whose design.json
differs from the requested design.

Sweeps
------
``sweep={"n": [20, 30], "dose": [0.4e9, 0.8e9]}`` runs the full grid (``n`` varies
slowest). Rules:

* ``n``: the size of **every islet-product arm** (standard-care arms keep their size);
  ``population.max_screened`` is scaled up in proportion to the enrolled total so that
  enrolment stays feasible.
* ``dose``: the dose of every islet-product arm (cells, or a named dose of the product
  such as ``"half"``/``"full"``).

Operating characteristics
-------------------------
For each design point and arm (:meth:`OperatingCharacteristics.table`):

* ``success_probability`` of each endpoint: the fraction of replicates in which the
  endpoint "succeeds". A **binary** endpoint (the primary endpoint included) succeeds when
  the lower bound of its exact 95 % Clopper-Pearson interval lies above
  ``success_threshold`` (default 0.5: the trial shows that more than half of the arm
  responds; for the primary endpoint of Reichman 2025 this is "more than half free of
  severe hypoglycaemia with HbA1c < 7 % or a 1-point decrease"). A **continuous**
  endpoint (``insulin_dose_change_pct_d365``, ``hba1c_change_d365``; a decrease is the
  benefit) succeeds when the upper bound of its 95 % interval is below 0. Monte Carlo
  standard error ``sqrt(p (1 - p) / R)`` over ``R`` replicates.
* ``estimate`` and ``ci_width`` of each endpoint: mean (MCSE ``sd / sqrt(R)``), 2.5, 50
  and 97.5 percentiles over replicates.
* ``count_per_trial``: expected severe hypoglycaemic events, serious adverse events,
  deaths, participants insulin independent at day 365, enrolled participants and
  patient-days per trial, with MCSE; also for all arms together (arm ``"all"``).
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import io
import itertools
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from isletsim.engine import THREADS_ENV
from isletsim.trial.batch import SUMMARY_COLUMNS, run_batch
from isletsim.trial.protocol import Protocol, ProtocolError

#: How often a failed batch is retried (worker died or exception).
RETRIES = 2
#: Seconds to wait for a Dask scheduler before giving up.
CONNECT_TIMEOUT_S = 3
#: Keys a sweep may vary.
SWEEP_KEYS: tuple[str, ...] = ("n", "dose")
#: Endpoints where a decrease is the benefit (success: upper 95 % bound < 0).
CONTINUOUS_ENDPOINTS: tuple[str, ...] = ("insulin_dose_change_pct_d365", "hba1c_change_d365")
#: Per-trial counts summarised from the replicate summaries.
COUNTS: tuple[str, ...] = (
    "severe_hypoglycemia_events", "severe_hypoglycemia_d90_365", "serious_adverse_events",
    "deaths", "insulin_independent_d365", "n_enrolled", "patient_days",
)  # fmt: skip
TABLE_COLUMNS: tuple[str, ...] = (
    "point", "arm", "measure", "quantity", "replicates", "mean", "mcse", "p2_5", "p50",
    "p97_5",
)  # fmt: skip
_ENDPOINT_COLUMNS = ("replicate", "seed", "arm", "endpoint", "value", "n", "N", "ci_low",
                     "ci_high", "definition")  # fmt: skip

#: ``progress(done, total, patient_days)``: replicates finished (all design points), their
#: total, and the patient-days simulated so far.
ProgressFn = Callable[[int, int, float], None]
BatchFn = Callable[[Protocol, int, Sequence[int]], dict[str, pd.DataFrame]]


class ReplicateError(ValueError):
    """Replicates that cannot be run: bad arguments, sweep, checkpoint or cluster address."""


# --------------------------------------------------------------------------- design points
def _parse_dose(value: Any) -> float | str:
    if isinstance(value, bool):
        raise ReplicateError(f"sweep 'dose': not a dose: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    raise ReplicateError(f"sweep 'dose': not a dose: {value!r}")


def _parse_n(value: Any) -> int:
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise ReplicateError(f"sweep 'n': not an integer: {value!r}") from None
    if isinstance(value, bool) or not n.is_integer() or n < 1:
        raise ReplicateError(f"sweep 'n': arm sizes must be integers >= 1, got {value!r}")
    return int(n)


def sweep_points(
    protocol: Protocol, sweep: Mapping[str, Sequence[Any]] | None
) -> list[tuple[dict[str, Any], Protocol]]:
    """The design points of a sweep (the protocol alone without one), validated.

    Parameters
    ----------
    protocol
        The base design.
    sweep
        ``{"n": [...], "dose": [...]}`` (either or both; see the module docstring for the
        rules).

    Returns
    -------
    list
        ``(values, protocol)`` per grid point, ``n`` varying slowest.

    Raises
    ------
    ReplicateError
        Unknown key, empty or bad values, no islet arm to apply them to, or a point whose
        protocol does not validate.
    """
    if not sweep:
        return [({}, protocol)]
    unknown = [k for k in sweep if k not in SWEEP_KEYS]
    if unknown:
        raise ReplicateError(f"sweep: unknown key(s) {unknown}; allowed: {list(SWEEP_KEYS)}")
    islet = [a for a in protocol.arms if not a.is_control]
    if not islet:
        raise ReplicateError("sweep: the protocol has no islet-product arm to vary")
    parsed: dict[str, list[Any]] = {}
    for key in SWEEP_KEYS:
        if key not in sweep:
            continue
        values = sweep[key]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ReplicateError(f"sweep {key!r}: give a non-empty list of values")
        parse = _parse_n if key == "n" else _parse_dose
        parsed[key] = [parse(v) for v in values]
        if len(set(map(str, parsed[key]))) != len(parsed[key]):
            raise ReplicateError(f"sweep {key!r}: values repeat: {list(values)}")
    points = []
    base = protocol.model_dump()
    total0 = protocol.n_enrolled
    for combo in itertools.product(*parsed.values()):
        values = dict(zip(parsed, combo, strict=True))
        data = json.loads(json.dumps(base))
        for arm in data["arms"]:
            if arm.get("product") is None:
                continue
            if "n" in values:
                arm["n"] = values["n"]
            if "dose" in values:
                arm["dose"] = values["dose"]
        total = sum(a["n"] for a in data["arms"])
        screened = data["population"]["max_screened"]
        data["population"]["max_screened"] = min(
            1_000_000, max(screened, math.ceil(screened * total / total0))
        )
        label = ", ".join(f"{k}={v}" for k, v in values.items())
        try:
            proto = Protocol.from_dict(data, source=f"{protocol.source} (sweep {label})")
        except ProtocolError as exc:
            raise ReplicateError(f"sweep {label}: {exc}") from None
        points.append((values, proto))
    return points


# ---------------------------------------------------------------------------- checkpoints
def _design(points: list[tuple[dict[str, Any], Protocol]], n: int, seed: int,
            sweep: Mapping[str, Sequence[Any]] | None) -> dict[str, Any]:  # fmt: skip
    return {
        "seed": int(seed),
        "n": int(n),
        "sweep": {k: [str(v) for v in vs] for k, vs in (sweep or {}).items()},
        "points": [
            {"values": {k: str(v) for k, v in values.items()},
             "protocol": proto.model_dump(mode="json")}
            for values, proto in points
        ],
    }  # fmt: skip


def _parts_dir(out: Path, point: int, n_points: int) -> Path:
    return out / "parts" if n_points == 1 else out / "parts" / f"p{point}"


def _combine(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    ep = tables["endpoints"].reindex(columns=list(_ENDPOINT_COLUMNS)).copy()
    ep["table"] = "endpoints"
    sm = tables["summary"].reindex(columns=list(SUMMARY_COLUMNS)).copy()
    sm["table"] = "summary"
    frames = [f for f in (ep, sm) if len(f)]
    if not frames:
        return pd.DataFrame(columns=["table"])
    return pd.concat(frames, ignore_index=True)


def _split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Endpoints and summary rows back from a combined part, with their own dtypes."""
    ep = df[df["table"] == "endpoints"].reindex(columns=list(_ENDPOINT_COLUMNS))
    sm = df[df["table"] == "summary"].reindex(columns=list(SUMMARY_COLUMNS))
    ep = ep.astype({"replicate": "int64", "seed": "int64", "N": "int64"}).reset_index(drop=True)
    ints = [c for c in SUMMARY_COLUMNS if c not in ("arm", "patient_days")]
    sm = sm.astype(dict.fromkeys(ints, "int64")).reset_index(drop=True)
    return ep, sm


def _write_part(directory: Path, reps: Sequence[int], df: pd.DataFrame) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"batch-{reps[0]}-{reps[-1]}.parquet"
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    df.to_parquet(tmp, index=False)
    os.replace(tmp, final)
    return final


def _read_parts(directory: Path) -> pd.DataFrame:
    files = sorted(directory.glob("batch-*.parquet")) if directory.is_dir() else []
    frames = [pd.read_parquet(f) for f in files]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["table", *SUMMARY_COLUMNS])
    df = pd.concat(frames, ignore_index=True)
    # Parts of different batch layouts may overlap; replicate k is identical in each.
    key = ["table", "replicate", "arm", "endpoint"]
    return df.drop_duplicates(subset=[c for c in key if c in df.columns], keep="first")


def _batches(todo: Sequence[int], size: int) -> list[list[int]]:
    """Contiguous runs of ``todo`` cut into batches of at most ``size``."""
    out: list[list[int]] = []
    run: list[int] = []
    for k in todo:
        if run and (k != run[-1] + 1 or len(run) == size):
            out.append(run)
            run = []
        run.append(k)
    if run:
        out.append(run)
    return out


#: Participants a batch aims at: large populations amortise the per-control-step work of
#: the policies; the engine keeps about 2.7 MB per participant-year (3 columns every 5 min).
BATCH_PARTICIPANTS = 1000


def default_batch_size(protocols: Sequence[Protocol], n: int, workers: int) -> int:
    """Replicates per task: about :data:`BATCH_PARTICIPANTS` enrolled participants (of the
    largest design point), and at least one task per worker."""
    enrolled = max(sum(a.n for a in p.arms) for p in protocols)
    by_size = max(1, BATCH_PARTICIPANTS // max(enrolled, 1))
    return max(1, min(by_size, math.ceil(n / workers)))


# ------------------------------------------------------------------------------ executors
def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _connect(address: str | None, workers: int | None) -> tuple[Any, Any]:
    """A Dask client (and the LocalCluster it owns, or None); fails fast on a bad address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ReplicateError(f"executor 'dask' needs dask[distributed]: {exc}") from None
    if address:
        try:
            return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ReplicateError(
                f"cannot reach the Dask scheduler at {address!r} within "
                f"{CONNECT_TIMEOUT_S} s: {exc}"
            ) from None
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           env={THREADS_ENV: "1"})  # fmt: skip
    return Client(cluster, set_as_default=False), cluster


def _run_part(batch_fn: BatchFn, protocol: Protocol, seed: int, reps: list[int]) -> pd.DataFrame:
    """What a worker runs: one batch, as one combined table."""
    return _combine(batch_fn(protocol, seed, reps))


class _Job:
    """One batch of one design point."""

    def __init__(self, point: int, reps: list[int]) -> None:
        self.point = point
        self.reps = reps
        self.attempts = 0


def _init_local_worker(threads: int) -> None:
    """A pool worker's engine threads: the usable cores shared among the workers."""
    os.environ[THREADS_ENV] = str(threads)


def _run_local(jobs: list[_Job], protos: list[Protocol], seed: int, workers: int,
               batch_fn: BatchFn, done: Callable[[_Job, pd.DataFrame], None]) -> None:  # fmt: skip
    ctx = multiprocessing.get_context("spawn")
    pending = list(jobs)
    while pending:
        pool = cf.ProcessPoolExecutor(
            max_workers=min(workers, len(pending)), mp_context=ctx,
            initializer=_init_local_worker, initargs=(max(1, _usable_cores() // workers),),
        )  # fmt: skip
        retry: list[_Job] = []
        try:
            futures = {
                pool.submit(_run_part, batch_fn, protos[j.point], seed, j.reps): j for j in pending
            }
            for fut in cf.as_completed(futures):
                job = futures[fut]
                try:
                    df = fut.result()
                except Exception as exc:  # worker died (BrokenProcessPool) or batch raised
                    job.attempts += 1
                    if job.attempts > RETRIES:
                        raise RuntimeError(
                            f"batch {job.reps[0]}-{job.reps[-1]} failed "
                            f"{job.attempts} times; last error: {exc!r}"
                        ) from exc
                    retry.append(job)
                    continue
                done(job, df)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        pending = retry


def _run_dask(jobs: list[_Job], protos: list[Protocol], seed: int, client: Any,
              batch_fn: BatchFn, done: Callable[[_Job, pd.DataFrame], None]) -> None:  # fmt: skip
    from distributed import as_completed

    futures = {}
    for j in jobs:
        key = f"isletsim-replicates-p{j.point}-{j.reps[0]}-{j.reps[-1]}-{os.urandom(4).hex()}"
        fut = client.submit(_run_part, batch_fn, protos[j.point], seed, j.reps,
                            retries=RETRIES, pure=False, key=key)  # fmt: skip
        futures[fut] = j
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            done(futures[fut], fut.result())
    finally:
        client.cancel(list(futures))


# ----------------------------------------------------------------------------- the runner
def run_replicates(
    protocol: Protocol,
    n: int,
    seed: int,
    *,
    executor: Literal["local", "dask"] = "local",
    address: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    sweep: Mapping[str, Sequence[Any]] | None = None,
    success_threshold: float = 0.5,
    batch_fn: BatchFn = run_batch,
) -> OperatingCharacteristics:
    """Run replicate trials ``0 .. n-1`` of a design (or of each sweep point) and summarise them.

    Parameters
    ----------
    protocol
        The validated design.
    n
        Replicate trials per design point.
    seed
        Root seed; replicate ``k`` runs with ``replicate_seed(seed, k)``.
    executor
        ``"local"`` (process pool) or ``"dask"`` (see the module docstring).
    address
        Dask scheduler address (``tcp://host:8786``); without one, a LocalCluster on
        127.0.0.1.
    workers
        Worker processes (local default: usable cores; LocalCluster default: 2).
    batch_size
        Replicates per task (default :func:`default_batch_size`).
    out
        Checkpoint directory (``design.json`` and ``parts/``); None keeps results in memory.
    resume
        Skip replicates already in ``out``; refuse if ``out/design.json`` differs.
    progress
        ``progress(done, total, patient_days)`` after each finished batch (an exception
        from it stops the run; finished batches stay written).
    sweep
        ``{"n": [...], "dose": [...]}``: a grid of designs (module docstring).
    success_threshold
        A binary endpoint succeeds in a replicate when its lower 95 % bound exceeds this.
    batch_fn
        What a worker runs for a batch (default :func:`~isletsim.trial.batch.run_batch`);
        must be importable by the workers.

    Returns
    -------
    OperatingCharacteristics

    Raises
    ------
    ReplicateError
        Bad arguments, sweep, checkpoint directory or unreachable scheduler, all before any
        replicate runs.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ReplicateError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ReplicateError(f"seed must be an integer >= 0, got {seed!r}")
    if executor not in ("local", "dask"):
        raise ReplicateError(f"executor must be 'local' or 'dask', got {executor!r}")
    if address is not None and executor != "dask":
        raise ReplicateError("address is only used with executor='dask'")
    for name, val in (("workers", workers), ("batch_size", batch_size)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 1):
            raise ReplicateError(f"{name} must be an integer >= 1, got {val!r}")
    if not 0 <= success_threshold < 1:
        raise ReplicateError(f"success_threshold must be in [0, 1), got {success_threshold}")
    if resume and out is None:
        raise ReplicateError("resume needs out (the checkpoint directory)")
    n, seed = int(n), int(seed)
    points = sweep_points(protocol, sweep)
    protos = [p for _, p in points]
    nw = workers or (_usable_cores() if executor == "local" else 2)
    size = batch_size or default_batch_size(protos, n, nw)
    design = _design(points, n, seed, sweep)

    # Checkpoint directory: validate before any work.
    out_dir = Path(out) if out is not None else None
    have: list[list[pd.DataFrame]] = [[] for _ in points]
    todo: list[list[int]] = [list(range(n)) for _ in points]
    if out_dir is not None:
        dj = out_dir / "design.json"
        if dj.exists():
            if not resume:
                raise ReplicateError(
                    f"{out_dir} already holds a replicate run (design.json); pass resume "
                    "(--resume) to continue it or choose another directory"
                )
            try:
                old = json.loads(dj.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ReplicateError(f"{dj}: unreadable: {exc}") from None
            old_design = {k: old.get(k) for k in ("seed", "n", "sweep", "points")}
            if old_design != design:
                diff = [k for k in design if old_design.get(k) != design[k]]
                raise ReplicateError(
                    f"{dj} describes a different design (differs in {diff}); resume needs "
                    "the same protocol, seed, n and sweep"
                )
            for i in range(len(points)):
                df = _read_parts(_parts_dir(out_dir, i, len(points)))
                df = df[df["replicate"].between(0, n - 1)]
                have[i].append(df)
                got = set(df["replicate"].astype(int))
                todo[i] = [k for k in range(n) if k not in got]
        out_dir.mkdir(parents=True, exist_ok=True)

    jobs = [_Job(i, reps) for i in range(len(points)) for reps in _batches(todo[i], size)]
    client = cluster = None
    if executor == "dask" and jobs:
        client, cluster = _connect(address, workers)
    if out_dir is not None:
        layout = {"batch_size": size, "executor": executor, "workers": nw}
        tmp = out_dir / ".design.json.tmp"
        tmp.write_text(json.dumps({**design, "layout": layout}, indent=1))
        os.replace(tmp, out_dir / "design.json")

    total = n * len(points)
    state = {"done": total - sum(len(t) for t in todo), "days": 0.0}
    for i in range(len(points)):
        for df in have[i]:
            if len(df):
                state["days"] += float(df.loc[df["table"] == "summary", "patient_days"].sum())
    t0 = time.perf_counter()
    days0 = state["days"]

    def done(job: _Job, df: pd.DataFrame) -> None:
        if out_dir is not None:
            _write_part(_parts_dir(out_dir, job.point, len(points)), job.reps, df)
        have[job.point].append(df)
        state["done"] += len(job.reps)
        if len(df):
            state["days"] += float(df.loc[df["table"] == "summary", "patient_days"].sum())
        if progress is not None:
            progress(state["done"], total, state["days"])

    try:
        if progress is not None:
            progress(state["done"], total, state["days"])
        if executor == "local" and jobs:
            _run_local(jobs, protos, seed, nw, batch_fn, done)
        elif jobs:
            _run_dask(jobs, protos, seed, client, batch_fn, done)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    seconds = time.perf_counter() - t0

    endpoints, summaries = [], []
    for i in range(len(points)):
        frames = [f for f in have[i] if len(f)]
        if frames:
            ep, sm = _split(pd.concat(frames, ignore_index=True))
        else:
            ep, sm = _split(pd.DataFrame(columns=["table", *SUMMARY_COLUMNS]))
        for frame in (ep, sm):
            frame.insert(0, "point", i)
        endpoints.append(ep)
        summaries.append(sm)
    ep_all = pd.concat(endpoints, ignore_index=True).sort_values(["point", "replicate"],
                                                                 kind="stable")  # fmt: skip
    sm_all = pd.concat(summaries, ignore_index=True).sort_values(["point", "replicate"],
                                                                 kind="stable")  # fmt: skip
    return OperatingCharacteristics(
        endpoints=ep_all.reset_index(drop=True),
        summary=sm_all.reset_index(drop=True),
        points=[values for values, _ in points],
        protocols=protos,
        n=n,
        seed=seed,
        success_threshold=success_threshold,
        seconds=seconds,
        patient_days_run=state["days"] - days0,
    )


# ------------------------------------------------------------------ operating characteristics
def _describe(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)]
    r = x.size
    if r == 0:
        return {"replicates": 0, "mean": math.nan, "mcse": math.nan, "p2_5": math.nan,
                "p50": math.nan, "p97_5": math.nan}  # fmt: skip
    q = np.percentile(x, [2.5, 50, 97.5])
    sd = float(x.std(ddof=1)) if r > 1 else math.nan
    return {"replicates": r, "mean": float(x.mean()), "mcse": sd / math.sqrt(r),
            "p2_5": float(q[0]), "p50": float(q[1]), "p97_5": float(q[2])}  # fmt: skip


class OperatingCharacteristics:
    """Operating characteristics of replicate trials (see the module docstring).

    Attributes
    ----------
    endpoints, summary
        The per-replicate endpoint rows and per-arm summaries, with a ``point`` column
        (index into :attr:`points`).
    points
        The sweep values of each design point (``[{}]`` without a sweep).
    protocols
        The protocol of each design point.
    n, seed, success_threshold
        As given to :func:`run_replicates`.
    seconds, patient_days_run
        Wall time of this call's simulation and the patient-days it simulated (resumed
        replicates excluded).
    """

    def __init__(self, *, endpoints: pd.DataFrame, summary: pd.DataFrame,
                 points: list[dict[str, Any]], protocols: list[Protocol], n: int, seed: int,
                 success_threshold: float = 0.5, seconds: float = math.nan,
                 patient_days_run: float = math.nan) -> None:  # fmt: skip
        self.endpoints = endpoints
        self.summary = summary
        self.points = points
        self.protocols = protocols
        self.n = n
        self.seed = seed
        self.success_threshold = success_threshold
        self.seconds = seconds
        self.patient_days_run = patient_days_run
        self._table: pd.DataFrame | None = None

    @property
    def patient_days(self) -> float:
        """Patient-days of all replicates held (resumed ones included)."""
        return float(self.summary["patient_days"].sum()) if len(self.summary) else 0.0

    @property
    def sweep_keys(self) -> list[str]:
        """The swept keys, in grid order."""
        return list(self.points[0]) if self.points else []

    def _success(self, ep: pd.DataFrame) -> np.ndarray:
        name = ep["endpoint"].iloc[0]
        if name in CONTINUOUS_ENDPOINTS:
            ok = ep["ci_high"].to_numpy(float) < 0
        else:
            ok = ep["ci_low"].to_numpy(float) > self.success_threshold
        return ok.astype(float)

    def table(self) -> pd.DataFrame:
        """One row per design point, arm, measure and quantity (module docstring).

        Columns: ``point``, the sweep keys, ``arm``, ``measure`` (``success_probability``,
        ``estimate``, ``ci_width``, ``count_per_trial``), ``quantity`` (endpoint or count),
        ``replicates``, ``mean``, ``mcse``, ``p2_5``, ``p50``, ``p97_5``.
        """
        if self._table is not None:
            return self._table.copy()
        rows: list[dict[str, Any]] = []
        for (point, arm, name), ep in self.endpoints.groupby(["point", "arm", "endpoint"],
                                                             sort=False):  # fmt: skip
            base = {"point": point, "arm": arm, "quantity": name}
            ok = self._success(ep)
            p, r = float(ok.mean()), ok.size
            rows.append({**base, "measure": "success_probability", "replicates": r, "mean": p,
                         "mcse": math.sqrt(p * (1 - p) / r), "p2_5": math.nan,
                         "p50": math.nan, "p97_5": math.nan})  # fmt: skip
            rows.append({**base, "measure": "estimate",
                         **_describe(ep["value"].to_numpy(float))})  # fmt: skip
            width = (ep["ci_high"] - ep["ci_low"]).to_numpy(float)
            rows.append({**base, "measure": "ci_width", **_describe(width)})
        sm = self.summary
        if len(sm):
            allarms = sm.groupby(["point", "replicate"], as_index=False)[list(COUNTS)].sum()
            allarms["arm"] = "all"
            for (point, arm), g in pd.concat([sm, allarms], ignore_index=True).groupby(
                ["point", "arm"], sort=False
            ):
                for c in COUNTS:
                    rows.append({"point": point, "arm": arm, "measure": "count_per_trial",
                                 "quantity": c, **_describe(g[c].to_numpy(float))})  # fmt: skip
        df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
        for j, key in enumerate(self.sweep_keys):
            df.insert(1 + j, key, [str(self.points[int(p)][key]) for p in df["point"]])
        df["replicates"] = df["replicates"].astype(int)
        self._table = df.sort_values(["point"], kind="stable").reset_index(drop=True)
        return self._table.copy()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: design, timing and the :meth:`table` rows."""
        table = self.table().astype(object).where(self.table().notna(), None)
        return {
            "protocol": self.protocols[0].protocol.name if self.protocols else None,
            "n": self.n,
            "seed": self.seed,
            "points": [{k: str(v) for k, v in p.items()} for p in self.points],
            "success_threshold": self.success_threshold,
            "patient_days": self.patient_days,
            "patient_days_run": self.patient_days_run,
            "seconds": self.seconds,
            "patient_days_per_s": self.patient_days_run / self.seconds
            if self.seconds and self.seconds > 0
            else None,
            "table": table.to_dict(orient="records"),
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), default=_jsonable, **kwargs)

    def __repr__(self) -> str:
        name = self.protocols[0].protocol.name if self.protocols else "?"
        lines = [f"OperatingCharacteristics({name!r}, n={self.n} replicates x "
                 f"{len(self.points)} design point(s), seed={self.seed})"]  # fmt: skip
        t = self.table()
        shown = ("severe_hypoglycemia_events", "serious_adverse_events", "deaths")
        main = t[(t["measure"] == "success_probability")
                 | ((t["measure"] == "count_per_trial") & (t["arm"] == "all")
                    & t["quantity"].isin(shown))]  # fmt: skip
        for r in main.itertuples(index=False):
            where = ", ".join(f"{k}={getattr(r, k)}" for k in self.sweep_keys)
            lines.append(f"  [{where or 'design'}] {r.arm} {r.measure} {r.quantity}: "
                         f"{r.mean:.3g} (MCSE {r.mcse:.2g})")  # fmt: skip
        return "\n".join(lines)

    # ------------------------------------------------------------------------ plotting
    def _curves(self) -> pd.DataFrame:
        t = self.table()
        succ = t[t["measure"] == "success_probability"]
        if len(succ):
            return succ
        keep = ["insulin_independent_d365", "severe_hypoglycemia_events",
                "serious_adverse_events"]  # fmt: skip
        return t[(t["measure"] == "count_per_trial") & t["quantity"].isin(keep)]

    def _x(self, point: int, key: str) -> float:
        """The numeric value of a sweep key at a point (a named dose in cells)."""
        value = self.points[point][key]
        if key == "dose" and isinstance(value, str):
            from isletsim.therapy.graft import load_islet_product

            arm = next(a for a in self.protocols[point].arms if not a.is_control)
            return float(load_islet_product(arm.product).named_doses[value])
        return float(value)

    def plot(self) -> Any:
        """A matplotlib figure: sample-size and dose curves of a sweep, else a bar chart.

        Each swept key gets a panel with the success probability of every endpoint and
        arm (without endpoints: expected counts per trial) against that key, one line per
        value of the other key, with +-1 MCSE bars.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        data = self._curves()
        ylabel = ("P(success)" if (data["measure"] == "success_probability").any()
                  else "expected count per trial")  # fmt: skip
        keys = [k for k in self.sweep_keys if len({str(p[k]) for p in self.points}) > 1]
        if not keys:
            fig, ax = plt.subplots(figsize=(7, 3.5))
            labels = [f"{r.arm}: {r.quantity}" for r in data.itertuples()]
            ax.barh(labels, data["mean"], xerr=data["mcse"].fillna(0), color="tab:blue")
            ax.set_xlabel(ylabel)
            ax.set_title(f"{self.n} replicate trials")
            fig.tight_layout()
            return fig
        fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            others = [k for k in keys if k != key]
            xs = [self._x(int(p), key) for p in data["point"]]
            d = data.assign(_x=xs)
            for lab, g in d.groupby(["arm", "quantity", *others], sort=False):
                g = g.sort_values("_x")
                label = ": ".join(map(str, lab[:2])) + "".join(
                    f", {k}={v}" for k, v in zip(others, lab[2:], strict=True)
                )
                ax.errorbar(g["_x"], g["mean"], yerr=g["mcse"].fillna(0), marker="o",
                            capsize=3, label=label)  # fmt: skip
            ax.set_xlabel("participants per islet arm" if key == "n" else "dose (cells)")
            ax.set_ylabel(ylabel)
            ax.set_title("sample-size curve" if key == "n" else "dose curve")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    def report(self, directory: str | Path) -> Path:
        """Write ``directory/replicates.html``: curves (base64 PNG) and the table; no JS."""
        import html

        import matplotlib.pyplot as plt

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fig = self.plot()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        png = base64.b64encode(buf.getvalue()).decode("ascii")
        t = self.table()
        name = self.protocols[0].protocol.name if self.protocols else "?"
        rate = (f"{self.patient_days_run / self.seconds:,.0f} patient-days/s"
                if self.seconds and self.seconds > 0 else "")  # fmt: skip
        body = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(name)}: replicate trials</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
            "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
            "</style></head><body>",
            f"<h1>{html.escape(name)}: operating characteristics</h1>",
            f"<p>{self.n} replicate trials per design point, {len(self.points)} design "
            f"point(s), seed {self.seed}; {self.patient_days:,.0f} patient-days; {rate}. A "
            f"binary endpoint succeeds when the lower 95 % Clopper-Pearson bound exceeds "
            f"{self.success_threshold}; a continuous one when the upper 95 % bound is below "
            "0. MCSE: Monte Carlo standard error.</p>",
            f"<img alt='operating characteristics' src='data:image/png;base64,{png}'>",
            t.to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep=""),
            "</body></html>",
        ]
        path = directory / "replicates.html"
        path.write_text("\n".join(body), encoding="utf-8")
        return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)


__all__ = [
    "BATCH_PARTICIPANTS",
    "CONTINUOUS_ENDPOINTS",
    "COUNTS",
    "RETRIES",
    "SWEEP_KEYS",
    "OperatingCharacteristics",
    "ReplicateError",
    "default_batch_size",
    "run_replicates",
    "sweep_points",
]
