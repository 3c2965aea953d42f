"""Interrupted studies: SIGKILL and SIGINT mid-way lose only the stack in flight; a rerun completes."""
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from test_cli import needs_mnist

ARGS = ["run", "--norm", "none", "batch", "--batch-size", "50", "100", "200", "--seeds", "2", "--epochs", "3",
        "--train-limit", "3000", "--test-limit", "500", "--max-stack", "2", "--quiet"]


def _start(out):
    return subprocess.Popen([sys.executable, "-m", "bnlab", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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
        except sqlite3.OperationalError:   # the file exists, its schema is not written yet
            pass
        time.sleep(0.05)
    pytest.fail("the study never saved a run")


@needs_mnist
@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 130)])
def test_interrupt_then_resume(tmp_path, sig, code):
    out = tmp_path / "o"
    db = out / "bnlab.sqlite"
    proc = _start(out)
    _wait_for_first_runs(db, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    if sig == signal.SIGINT:
        assert "interrupted" in err and "Run the same command again to resume" in err and "Traceback" not in err
    saved, distinct = _runs(db)
    assert saved == distinct and 2 <= saved < 12                       # whole runs only, some missing
    con = sqlite3.connect(db)
    partial = con.execute("SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM epochs e "
                          "WHERE e.run_id = r.run_id) != 3").fetchone()[0]
    con.close()
    assert partial == 0                                               # no run with missing epochs
    rerun = subprocess.run([sys.executable, "-m", "bnlab", *ARGS, "--out", str(out)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert _runs(db) == (12, 12)                                      # 3 bs × 2 norms × 2 seeds, each once
    fresh = tmp_path / "fresh"
    ref = subprocess.run([sys.executable, "-m", "bnlab", *ARGS, "--out", str(fresh)], capture_output=True, text=True)
    assert ref.returncode == 0
    strip = lambda p: [",".join(l.split(",")[:16]) for l in open(p).read().splitlines()]   # all but wall_s
    assert strip(out / "results.csv") == strip(fresh / "results.csv")  # same numbers as uninterrupted
