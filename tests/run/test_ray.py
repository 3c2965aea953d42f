"""The Ray backend on a real local Ray cluster (ray.init(num_cpus=2) in this process): the same numbers
and verdicts as the local backend on CPU, a worker killed mid-group, a driver interrupted mid-study, bad
input."""

import csv
import glob
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import ray

from bnlab import api
from bnlab.claims.registry import findings_of
from bnlab.cli import main
from bnlab.store import Store
from bnlab.studydata import StudyData
from helpers import bnlab, needs_mnist

pytestmark = needs_mnist


STUDY = dict(seeds=2, epochs=1, train_limit=1000, test_limit=500)
GRID = (
    dict(norm=("none", "batch"), batch_size=(25, 50)),
    dict(epochs=2, train_limit=2000, test_limit=500),
    2,
)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The local backend's outputs for STUDY and GRID, made before the cluster starts (on 2 cores,
    a running Ray slows torch's two-thread training several-fold)."""
    out = tmp_path_factory.mktemp("local")
    api.run_study("seed", **STUDY, out=out / "study", device="cpu")
    api.run_grid(*GRID, out=out / "grid", device="cpu")
    return out


@pytest.fixture(scope="module")
def cluster(local):
    """A local Ray cluster with 2 CPUs and no GPU, started after `local`; its address, for bnlab processes."""
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _csv_but_wall_s(path) -> list[list[str]]:
    rows = list(csv.reader(open(path)))
    i = rows[0].index("wall_s")  # measured time: the one column that may differ
    return [r[:i] + r[i + 1 :] for r in rows]


def _stored(db) -> tuple[int, int, int]:
    """(runs, distinct (config_hash, seed), runs whose epochs are not all there)."""
    con = sqlite3.connect(db)
    try:
        n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT config_hash || seed) FROM runs").fetchone()
        partial = con.execute(
            "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM epochs e WHERE "
            "e.run_id = r.run_id) != json_extract(r.spec_json, '$.epochs')"
        ).fetchone()[0]
        return n, distinct, partial
    finally:
        con.close()


def _verdicts(db, study):
    st = Store(db)
    try:  # every finding's verdict, and its sub-rows' but those timed in seconds
        return [
            (f.key, f.verdict, [(r.label, r.verdict) for r in f.rows if not r.label.startswith("seconds")])
            for f in findings_of(StudyData.load(st, study))
        ]
    finally:
        st.close()


def test_study_on_ray_gives_the_local_results_bit_for_bit(local, cluster, tmp_path):
    r = bnlab(
        "study",
        "seed",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "500",
        "--quiet",
        "--out",
        str(tmp_path),
        "--backend",
        "ray",
        "--ray-address",
        cluster,
    )
    assert r.returncode == 0, r.stderr
    rows = _csv_but_wall_s(tmp_path / "results.csv")
    assert len(rows) == 1 + 2 * 4 * 2  # header + norms × batch sizes × seeds
    assert rows == _csv_but_wall_s(local / "study" / "results.csv")
    assert _stored(tmp_path / "bnlab.sqlite") == (16, 16, 0)
    assert _verdicts(tmp_path / "bnlab.sqlite", "seed") == _verdicts(local / "study" / "bnlab.sqlite", "seed")


def _kill_first_group_task(killed: list, stop: threading.Event) -> None:
    """SIGKILL the first Ray worker seen running a group (Ray titles it ray::train_group)."""
    while not stop.is_set():
        for path in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                running = open(path, "rb").read().startswith(b"ray::train_group")
            except OSError:
                continue
            if running:
                pid = int(path.split("/")[2])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.01)


def test_a_worker_killed_mid_group_is_retried_and_each_run_stored_once(local, cluster, tmp_path):
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_first_group_task, args=(killed, stop))
    killer.start()
    try:
        res = api.run_grid(*GRID, out=tmp_path, backend="ray")  # on this process's Ray
    finally:
        stop.set()
        killer.join()
    assert killed, "no group task was seen running"
    assert res.counts["trained"] == 8 and _stored(tmp_path / "bnlab.sqlite") == (8, 8, 0)
    assert _csv_but_wall_s(tmp_path / "results.csv") == _csv_but_wall_s(local / "grid" / "results.csv")


def test_driver_interrupted_mid_study_resumes_from_the_store(cluster, tmp_path):
    grid = dict(norm=("none", "batch"), batch_size=(25, 50, 100))
    base = dict(epochs=2, train_limit=3000, test_limit=500)
    args = [
        "run",
        "--norm",
        *grid["norm"],
        "--batch-size",
        *map(str, grid["batch_size"]),
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--train-limit",
        "3000",
        "--test-limit",
        "500",
        "--max-stack",
        "2",
        "--quiet",
        "--backend",
        "ray",
        "--out",
        str(tmp_path),
    ]  # 6 groups of 2, 2 at a time
    db = tmp_path / "bnlab.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bnlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAY_ADDRESS": cluster},
    )
    t = time.time()
    while proc.poll() is None and time.time() - t < 120:
        try:
            if db.exists() and _stored(db)[0] >= 2:  # the first group is committed
                break
        except sqlite3.OperationalError:  # schema not written yet
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Run the same command again to resume" in err and "Traceback" not in err
    saved, distinct, partial = _stored(db)
    assert saved == distinct and 2 <= saved < 12 and partial == 0  # whole runs only, some missing
    res = api.run_grid(grid, base, 2, out=tmp_path, backend="ray", max_stack=2)  # the same grid again
    assert res.counts["trained"] == 12 - saved and _stored(db) == (12, 12, 0)


def test_bad_ray_input_is_one_line(cluster, tmp_path, monkeypatch, capsys):
    cases = [
        (["--backend", "spark"], "backend = 'spark' is not allowed; choose one of: local, ray"),
        (["--ray-address", "127.0.0.1:6379"], "--ray-address needs --backend ray"),
        (["--backend", "ray", "--retune"], "--retune needs --backend local (Ray's workers do not tune)"),
        (["--cpus-per-group", "0"], "cpus_per_group = 0 is out of range"),  # local too
        (["--backend", "ray", "--cpus-per-group", "0"], "cpus_per_group = 0 is out of range"),
        (["--backend", "ray", "--cpus-per-group", "3"], "cpus_per_group = 3 is more than any Ray node has"),
        (["--backend", "ray", "--device", "cuda"], "device = cuda but the Ray cluster has no GPU"),
    ]
    for args, needle in cases:
        assert main(["run", "--epochs", "1", "--out", str(tmp_path / "o"), *args]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
    monkeypatch.delitem(sys.modules, "bnlab.run.ray_backend", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    assert main(["run", "--epochs", "1", "--out", str(tmp_path / "o"), "--backend", "ray"]) == 2
    assert capsys.readouterr().err.strip() == "bnlab: error: ray is not installed; pip install 'bnlab[ray]'"
    assert not (tmp_path / "o").exists()


def test_unreachable_ray_address_fails_fast_and_writes_nothing(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free again once closed: nothing listens
    t = time.time()
    r = bnlab(
        "run",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "o"),
        "--backend",
        "ray",
        "--ray-address",
        f"127.0.0.1:{port}",
    )
    assert r.returncode == 2 and time.time() - t < 60
    assert r.stderr.startswith(
        f"bnlab: error: cannot reach the Ray cluster at --ray-address 127.0.0.1:{port}"
    )
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_core_and_the_local_backend_never_import_ray(tmp_path):
    code = (
        "import sys\nimport bnlab.cli, bnlab.api, bnlab.run.backends\nassert 'ray' not in sys.modules\n"
        "assert bnlab.cli.main(['run', '--epochs', '1', '--train-limit', '200', '--test-limit', '100', "
        "'--quiet', "
        f"'--backend', 'local', '--out', {str(tmp_path)!r}]) == 0\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_a_study_that_measures_time_gets_a_whole_node_per_task(cluster, tmp_path):
    """mix_none = false: each task asks for all of the largest node's CPUs (2 here) and trains with them;
    other studies get one CPU per task when there are more stacks than CPUs."""
    toml = tmp_path / "t.toml"
    toml.write_text(
        'name = "t"\nseeds = 2\nmix_none = false\n[base]\nepochs = 1\ntrain_limit = 500\n'
        'test_limit = 100\n[grid]\nnorm = ["none", "batch"]\nbatch_size = [25, 50]\n'
    )
    for mix, want in (("false", {2}), ("true", {1})):
        toml.write_text(
            toml.read_text()
            .replace("mix_none = false", f"mix_none = {mix}")
            .replace("mix_none = true", f"mix_none = {mix}")
        )
        api.run_study(str(toml), out=tmp_path / mix, backend="ray", report=False)
        st = Store(tmp_path / mix / "bnlab.sqlite")
        assert {r["versions"]["threads"] for r in st.runs("t")} == want, mix
        st.close()
