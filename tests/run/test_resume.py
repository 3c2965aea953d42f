"""Interrupted studies: SIGKILL and SIGINT mid-way lose only the stacks in flight; a rerun completes.
Also with stacks side by side in worker processes (--cpus-per-group 1), whose results equal the serial
ones."""

import glob
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import needs_mnist

ARGS = [
    "run",
    "--norm",
    "none",
    "batch",
    "--batch-size",
    "50",
    "100",
    "200",
    "--seeds",
    "2",
    "--epochs",
    "3",
    "--train-limit",
    "3000",
    "--test-limit",
    "500",
    "--max-stack",
    "2",
    "--quiet",
]


def _start(out, extra):
    return subprocess.Popen(
        [sys.executable, "-m", "bnlab", *ARGS, *extra, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*), COUNT(DISTINCT config_hash || seed) FROM runs").fetchone()
    finally:
        con.close()


def _wait_for_first_runs(db, proc, timeout=120):
    t = time.time()
    while time.time() - t < timeout and proc.poll() is None:
        try:
            if db.exists() and _runs(db)[0] >= 2:
                return
        except sqlite3.OperationalError:  # the file exists, its schema is not written yet
            pass
        time.sleep(0.05)
    pytest.fail("the study never saved a run")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def _gone(pid: int, timeout: float = 10) -> bool:
    t = time.time()
    while time.time() - t < timeout:
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            return True
        time.sleep(0.1)
    return False


POOL = ["--cpus-per-group", "1"]


@needs_mnist
@pytest.mark.parametrize(
    "sig, code, extra",
    [
        (signal.SIGKILL, -signal.SIGKILL, []),
        (signal.SIGINT, 130, []),
        pytest.param(
            signal.SIGKILL,
            -signal.SIGKILL,
            POOL,
            marks=pytest.mark.skipif(
                os.cpu_count() < 2 or not sys.platform.startswith("linux"),
                reason="worker processes need 2 CPUs, Linux",
            ),
        ),
        pytest.param(
            signal.SIGINT, 130, POOL, marks=pytest.mark.skipif(os.cpu_count() < 2, reason="needs 2 CPUs")
        ),
        (signal.SIGTERM, 143, []),
        pytest.param(
            signal.SIGTERM, 143, POOL, marks=pytest.mark.skipif(os.cpu_count() < 2, reason="needs 2 CPUs")
        ),
    ],
)
def test_interrupt_then_resume(tmp_path, sig, code, extra):
    out = tmp_path / "o"
    db = out / "bnlab.sqlite"
    proc = _start(out, extra)
    _wait_for_first_runs(db, proc)
    workers = _children(proc.pid)
    assert len(workers) >= (2 if extra else 0)  # the pool's workers (and multiprocessing's resource tracker)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    assert all(_gone(w) for w in workers)  # no worker outlives the driver, even after SIGKILL
    if sig != signal.SIGKILL:
        word = "interrupted" if sig == signal.SIGINT else "terminated"
        assert word in err and "Run the same command again to resume" in err and "Traceback" not in err
    saved, distinct = _runs(db)
    assert saved == distinct and 2 <= saved < 12  # whole runs only, some missing
    con = sqlite3.connect(db)
    partial = con.execute(
        "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM epochs e WHERE e.run_id = r.run_id) != 3"
    ).fetchone()[0]
    con.close()
    assert partial == 0  # no run with missing epochs
    rerun = subprocess.run(
        [sys.executable, "-m", "bnlab", *ARGS, *extra, "--out", str(out)], capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _runs(db) == (12, 12)  # 3 bs × 2 norms × 2 seeds, each once
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"bnlab-data-{proc.pid}-*"))  # swept or cleaned
    fresh = tmp_path / "fresh"
    ref = subprocess.run(
        [sys.executable, "-m", "bnlab", *ARGS, "--out", str(fresh)], capture_output=True, text=True
    )
    assert ref.returncode == 0

    def strip(p):  # all but wall_s
        return [",".join(line.split(",")[:16]) for line in open(p).read().splitlines()]

    assert strip(out / "results.csv") == strip(
        fresh / "results.csv"
    )  # same numbers as uninterrupted and serial
    con = sqlite3.connect(db)
    threads = {json.loads(v)["threads"] for (v,) in con.execute("SELECT versions FROM runs")}
    con.close()
    con = sqlite3.connect(fresh / "bnlab.sqlite")
    serial = {json.loads(v)["threads"] for (v,) in con.execute("SELECT versions FROM runs")}
    con.close()
    assert len(serial) == 1  # torch's threads, one stack at a time
    # with workers: one thread per stack; the last stack left running takes them all
    assert threads == serial if not extra else (1 in threads and threads <= {1, *serial})


@needs_mnist
@pytest.mark.skipif(os.cpu_count() < 2, reason="worker processes need 2 CPUs")
def test_a_study_that_measures_time_trains_alone_in_this_process(tmp_path):
    """mix_none = false (own stacks, own timing): even with --cpus-per-group 1, no group trains beside
    another."""
    import torch

    from bnlab import api
    from bnlab.store import Store

    toml = tmp_path / "t.toml"
    toml.write_text(
        'name = "t"\nseeds = 2\nmix_none = false\n[base]\nepochs = 1\ntrain_limit = 500\n'
        'test_limit = 100\n[grid]\nnorm = ["none", "batch"]\n'
    )
    api.run_study(str(toml), out=tmp_path / "o", cpus_per_group=1, report=False)
    st = Store(tmp_path / "o" / "bnlab.sqlite")
    assert {r["versions"]["threads"] for r in st.runs("t")} == {torch.get_num_threads()}
    st.close()


@needs_mnist
@pytest.mark.skipif(os.cpu_count() < 2, reason="worker processes need 2 CPUs")
def test_an_unguarded_script_gets_the_fix_in_one_line(tmp_path):
    """Worker processes import the calling script again; without the __main__ guard they cannot start,
    and the error says how to fix it."""
    script = tmp_path / "s.py"
    script.write_text(
        "import bnlab\n"
        f"bnlab.run_grid({{'batch_size': (32, 64)}}, {{'epochs': 1, 'train_limit': 300}}, seeds=1, "
        f"out={str(tmp_path / 'o')!r}, cpus_per_group=1)\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert "call bnlab under `if __name__ == '__main__':`" in r.stderr.strip().splitlines()[-1]


@needs_mnist
@pytest.mark.skipif(os.cpu_count() < 2 or not sys.platform.startswith("linux"), reason="needs 2 CPUs, Linux")
def test_workers_still_starting_die_with_a_killed_driver(tmp_path):
    """SIGKILL the driver while its workers are still importing torch: none of them lives on (an orphan
    would take queued groups and hold the driver's output pipes open)."""
    proc = _start(tmp_path / "o", POOL)
    t = time.time()
    while len(_children(proc.pid)) < 3 and time.time() - t < 60:  # 2 workers + the resource tracker
        time.sleep(0.01)
    workers = _children(proc.pid)
    proc.kill()
    proc.communicate(timeout=60)  # hangs while an orphan holds the pipes
    assert len(workers) >= 2 and all(_gone(w, 30) for w in workers)
    from bnlab.run.pool_data import sweep_stale

    sweep_stale()  # what the next run does first
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"bnlab-data-{proc.pid}-*"))
