"""Replicate trials: executors, batch sizes, checkpoints, resume, retries, sweeps, CLI."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from isletsim.cli import app
from isletsim.trial import Protocol
from isletsim.trial.batch import run_batch
from isletsim.trial.replicates import (
    BATCH_PARTICIPANTS,
    OperatingCharacteristics,
    ReplicateError,
    default_batch_size,
    run_replicates,
    sweep_points,
)

SMALL = Path(__file__).parent / "data" / "small.toml"
SEED = 11

# Batch functions the worker processes must import: written to a directory on sys.path
# (spawned workers inherit the parent's sys.path).
HELPERS = '''
import os
from pathlib import Path

from isletsim.trial.batch import run_batch


def recording(protocol, seed, reps):
    """run_batch, appending the replicate indices to $REPLICATE_LOG."""
    with open(os.environ["REPLICATE_LOG"], "a") as fh:
        fh.write("".join(f"{k}\\n" for k in reps))
    return run_batch(protocol, seed, reps)


def killer(protocol, seed, reps):
    """Kill this worker process the first time (marker file $REPLICATE_MARKER, created
    atomically so that two workers racing for it kill only one of them)."""
    marker = Path(os.environ["REPLICATE_MARKER"])
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return run_batch(protocol, seed, reps)
    os.write(fd, b"killed")
    os.close(fd)
    os._exit(13)
'''


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("helpers")
    (d / "replicate_helpers.py").write_text(textwrap.dedent(HELPERS))
    sys.path.insert(0, str(d))
    import replicate_helpers

    yield replicate_helpers
    sys.path.remove(str(d))
    sys.modules.pop("replicate_helpers", None)


@pytest.fixture(scope="module")
def dask_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Marker of the killed-worker test, fixed for the cluster's lifetime."""
    return tmp_path_factory.mktemp("dask-killer") / "marker"


@pytest.fixture(scope="module")
def cluster(helpers, dask_marker):
    distributed = pytest.importorskip("distributed")
    # the environment is given to the nannies, so a worker restarted after a death still
    # finds the helpers module and the marker
    env = {
        "REPLICATE_MARKER": str(dask_marker),
        "PYTHONPATH": os.pathsep.join([str(Path(helpers.__file__).parent),
                                       os.environ.get("PYTHONPATH", "")]),
    }  # fmt: skip
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, env=env,
    ) as c:  # fmt: skip
        yield c


@pytest.fixture(scope="module")
def proto() -> Protocol:
    return Protocol.load(SMALL)


@pytest.fixture(scope="module")
def reference(proto: Protocol) -> dict[str, pd.DataFrame]:
    """Replicates 0 and 1 run in this process."""
    return run_batch(proto, SEED, [0, 1])


def _same(a: OperatingCharacteristics, b: OperatingCharacteristics) -> None:
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.endpoints, b.endpoints)
    pd.testing.assert_frame_equal(a.table(), b.table())


@pytest.fixture(scope="module")
def local_oc(proto: Protocol) -> OperatingCharacteristics:
    return run_replicates(proto, 2, SEED, workers=1, batch_size=1)


def test_local_matches_direct_run(local_oc, reference) -> None:
    got = local_oc.summary.drop(columns="point")
    pd.testing.assert_frame_equal(got, reference["summary"], check_dtype=False)
    assert local_oc.patient_days == reference["summary"]["patient_days"].sum()
    t = local_oc.table()
    assert {"point", "arm", "measure", "quantity", "mean", "mcse"} <= set(t.columns)
    assert "OperatingCharacteristics" in repr(local_oc)
    json.loads(local_oc.to_json())


def test_dask_and_batch_size_identical(proto, local_oc, cluster) -> None:
    oc = run_replicates(proto, 2, SEED, executor="dask", address=cluster.scheduler_address,
                        batch_size=2)  # fmt: skip
    _same(local_oc, oc)


def _setenv_workers(cluster, key: str, value: str) -> None:
    """Set an environment variable in the (already started) Dask workers."""
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        client.run(lambda k, v: __import__("os").environ.__setitem__(k, v), key, value)


def test_resume_after_killed_run(proto, helpers, cluster, tmp_path, monkeypatch,
                                 local_oc) -> None:  # fmt: skip
    log = tmp_path / "log.txt"
    monkeypatch.setenv("REPLICATE_LOG", str(log))
    _setenv_workers(cluster, "REPLICATE_LOG", str(log))
    dask = {"executor": "dask", "address": cluster.scheduler_address}
    out = tmp_path / "run"

    def stop(done: int, total: int, patient_days: float) -> None:
        if done >= 1:
            raise KeyboardInterrupt("killed after the first batch")

    with pytest.raises(KeyboardInterrupt):
        run_replicates(proto, 2, SEED, workers=1, batch_size=1, out=out, progress=stop,
                       batch_fn=helpers.recording)  # fmt: skip
    parts = sorted((out / "parts").glob("batch-*.parquet"))
    assert len(parts) == 1
    written = {int(parts[0].name.split("-")[1])}
    mtime = parts[0].stat().st_mtime_ns
    with pytest.raises(ReplicateError, match="already holds"):
        run_replicates(proto, 2, SEED, out=out)
    with pytest.raises(ReplicateError, match="different design"):
        run_replicates(proto, 2, SEED + 1, out=out, resume=True)
    log.write_text("")
    # Resume on another executor: replicate k is the same wherever it runs.
    oc = run_replicates(proto, 2, SEED, batch_size=1, out=out, resume=True,
                        batch_fn=helpers.recording, **dask)  # fmt: skip
    redone = {int(x) for x in log.read_text().split()}
    assert redone == {0, 1} - written
    assert parts[0].stat().st_mtime_ns == mtime
    assert sorted(oc.summary["replicate"].unique()) == [0, 1]
    _same(local_oc, oc)
    # A deleted part is recomputed, nothing else.
    parts = sorted((out / "parts").glob("batch-*.parquet"))
    parts[-1].unlink()
    log.write_text("")
    oc = run_replicates(proto, 2, SEED, out=out, resume=True, batch_fn=helpers.recording,
                        **dask)  # fmt: skip
    assert len(log.read_text().split()) == 1
    _same(local_oc, oc)
    assert json.loads((out / "design.json").read_text())["n"] == 2


def test_killed_local_worker_is_retried(proto, helpers, tmp_path, monkeypatch, local_oc) -> None:
    monkeypatch.setenv("REPLICATE_MARKER", str(tmp_path / "marker"))
    oc = run_replicates(proto, 2, SEED, workers=1, batch_size=2, batch_fn=helpers.killer)
    assert (tmp_path / "marker").exists()
    _same(local_oc, oc)


def test_killed_dask_worker_is_retried(proto, helpers, cluster, dask_marker,
                                       local_oc) -> None:  # fmt: skip
    assert not dask_marker.exists()
    oc = run_replicates(proto, 2, SEED, executor="dask", address=cluster.scheduler_address,
                        batch_size=1, batch_fn=helpers.killer)  # fmt: skip
    assert dask_marker.exists()
    _same(local_oc, oc)


@pytest.mark.parametrize(
    ("sweep", "match"),
    [
        ({"arms": [1]}, "unknown key"),
        ({"n": []}, "non-empty"),
        ({"n": [0]}, ">= 1"),
        ({"n": [1.5]}, ">= 1"),
        ({"dose": ["quarter"]}, "unknown dose"),
        ({"dose": [-1.0]}, "dose"),
        ({"n": [2, 2]}, "repeat"),
    ],
)
def test_bad_sweep(proto, sweep, match) -> None:
    with pytest.raises(ReplicateError, match=match):
        run_replicates(proto, 2, SEED, sweep=sweep)


def test_default_batch_size_aims_at_a_participant_count(proto) -> None:
    per_trial = proto.n_enrolled
    size = default_batch_size([proto], 10_000, 2)
    assert size == BATCH_PARTICIPANTS // per_trial
    assert default_batch_size([proto], 3, 2) == 2  # at least one batch per worker
    assert default_batch_size([proto], 1, 4) == 1
    big = proto.with_arms(n=100)  # the largest design point of a sweep sets the size
    assert default_batch_size([proto, big], 10_000, 1) == BATCH_PARTICIPANTS // big.n_enrolled


def test_sweep_points(proto) -> None:
    points = sweep_points(proto, {"n": [3, 5], "dose": ["half", 0.8e9]})
    assert [v for v, _ in points] == [
        {"n": 3, "dose": "half"}, {"n": 3, "dose": 0.8e9},
        {"n": 5, "dose": "half"}, {"n": 5, "dose": 0.8e9},
    ]  # fmt: skip
    last = points[-1][1]
    assert [a.n for a in last.arms] == [5, 5]
    assert all(a.dose == 0.8e9 for a in last.arms)
    assert last.population.max_screened >= proto.population.max_screened * 10 / 3


def test_bad_arguments(proto) -> None:
    with pytest.raises(ReplicateError, match="cannot reach"):
        run_replicates(proto, 2, SEED, executor="dask", address="tcp://127.0.0.1:1")
    for kwargs in ({"n": 0}, {"seed": -1}, {"executor": "ray"}, {"workers": 0},
                   {"resume": True}):  # fmt: skip
        args = {"n": 2, "seed": SEED, **kwargs}
        with pytest.raises(ReplicateError):
            run_replicates(proto, args.pop("n"), args.pop("seed"), **args)


def test_cli_json(cluster, tmp_path, local_oc) -> None:
    runner = CliRunner()
    out = str(tmp_path / "o")
    args = ["replicate", str(SMALL), "--n", "2", "--seed", str(SEED), "--executor", "dask",
            "--address", cluster.scheduler_address, "--out", out, "--json"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["patient_days"] == local_oc.patient_days
    assert obj["seconds"] > 0 and obj["patient_days_per_s"] > 0
    assert len(obj["table"]) == len(local_oc.table())
    html = (tmp_path / "o" / "replicates.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    res = runner.invoke(app, [*args[:-1], "--resume", "--sweep", "bogus=1"])
    assert res.exit_code == 2
    assert "unknown key" in res.output
