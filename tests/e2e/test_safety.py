"""Nothing lost, nothing silently wrong: outputs, stores and signals (issue: bound every input, write every
output atomically, survive every store failure)."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from bnlab import outputs
from bnlab import store as store_mod
from bnlab.api import _commit
from bnlab.cli import main
from bnlab.config import RunSpec
from bnlab.console import summary_table
from bnlab.errors import ConfigError, StoreError, StoreLocked
from bnlab.records import NUMERICS, RunResult
from bnlab.store import Store
from helpers import bnlab, needs_mnist

TINY = ["--epochs", "1", "--train-limit", "500", "--test-limit", "200", "--quiet"]
VERSIONS = {"bnlab": "test", "numerics": NUMERICS}


def one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize(
    "option, value, needle",
    [
        ("--max-stack", "-1", "max_stack = -1 is out of range"),
        ("--max-stack", "0", "max_stack = 0 is out of range"),
        ("--cpus-per-group", "0", "cpus_per_group = 0 is out of range"),
        ("--epochs", "0", "epochs = 0 is out of range"),
        ("--train-limit", "-5", "train_limit = -5 is out of range"),
        ("--seeds", "0", "seeds"),
        ("--seeds", "2147483648", "seeds"),
    ],
)
def test_numeric_options_are_bounded_before_anything_runs(tmp_path, capsys, option, value, needle):
    out = tmp_path / "o"
    assert main(["run", *TINY, "--out", str(out), option, value]) == 2
    one_line_error(capsys, needle)
    assert not (out / "bnlab.sqlite").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--repeats", "0"], "--repeats = 0 is out of range"),
        (["--stack", "-1"], "--stack = -1 is out of range"),
        (["--batch-size", "0"], "--batch-size = 0 is out of range"),
        (["--json", "."], "--json . is a folder"),
    ],
)
def test_bench_input_is_checked_before_the_benchmark(capsys, args, needle):
    t = time.time()
    assert main(["bench", *args]) == 2 and time.time() - t < 5
    one_line_error(capsys, needle)


def _run(out, *extra):
    return main(["run", "--norm", "none", *TINY, "--out", str(out), *extra])


@needs_mnist
def test_a_store_named_like_an_output_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "o"
    assert _run(out, "--store", str(out / "keep.sqlite")) == 0
    before = (out / "keep.sqlite").read_bytes()
    assert (
        main(
            [
                "study",
                "seed",
                *TINY,
                "--seeds",
                "1",
                "--out",
                str(out / "s"),
                "--store",
                str(out / "s" / "report.html"),
            ]
        )
        == 2
    )
    one_line_error(capsys, "would be overwritten by the outputs")
    (out / "report.html").write_text("<html>not a store</html>")
    assert _run(out, "--store", str(out / "report.html")) == 2
    one_line_error(capsys, "would be overwritten")
    assert (out / "keep.sqlite").read_bytes() == before


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    f = tmp_path / "x.sqlite"
    f.write_text("hello, not sqlite")
    with pytest.raises(ConfigError, match="is not a bnlab store"):
        Store(f)
    assert f.read_text() == "hello, not sqlite"


@needs_mnist
def test_a_folder_holding_another_study_is_refused(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["study", "seed", *TINY, "--seeds", "1", "--out", str(out)]) == 0
    html = (out / "report.html").read_bytes()
    assert _run(out) == 2
    one_line_error(capsys, "holds the outputs of study 'seed'")
    assert main(["study", "overhead", *TINY, "--seeds", "1", "--out", str(out)]) == 2
    one_line_error(capsys, "pass another --out for 'overhead'")
    assert (out / "report.html").read_bytes() == html
    (out / ".bnlab-study").unlink()  # an older bnlab's folder: its report's title tells
    assert _run(out) == 2
    one_line_error(capsys, "holds the outputs of study 'seed'")


@needs_mnist
def test_an_output_that_is_a_folder_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "o"
    (out / "results.csv").mkdir(parents=True)
    assert _run(out) == 2
    one_line_error(capsys, "results.csv is a folder")
    assert not (out / "bnlab.sqlite").exists() or not Store(out / "bnlab.sqlite").done()


KILLED_WRITER = """
import sys, time
from bnlab import outputs
def writer(tmp):
    with open(tmp, "w") as f:
        f.write("half of the new ")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
outputs.write_with(sys.argv[1], writer)
"""


def test_a_writer_killed_mid_write_leaves_the_old_file_and_its_debris_is_swept(tmp_path):
    target = tmp_path / "report.html"
    outputs.write_text(target, "the old, good report")  # written by bnlab: its to replace
    p = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "writing"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert target.read_text() == "the old, good report"
    assert len(list(tmp_path.glob(".report.html.*.tmp"))) == 1  # the dead writer's temporary file
    outputs.write_text(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert list(tmp_path.glob(".report.html.*.tmp")) == []


def test_text_is_utf8_under_an_ascii_locale(tmp_path):
    text = "γ·x̂ + β, σ²"
    code = f"import sys; from bnlab import outputs; outputs.write_text(sys.argv[1], {ascii(text)})"
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "r.md")],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"},
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.md").read_bytes().decode("utf-8") == text


def _saved_store(path, n=2, study="s"):
    st = Store(path)
    st.begin_study(study, "q", {}, "cmd")
    for seed in range(n):
        r = RunResult(RunSpec(seed=seed, epochs=1))
        r.epochs.append(
            dict(epoch=1, steps=10, train_loss=0.5, train_acc=0.9, test_loss=0.4, test_acc=0.91, wall_s=1.0)
        )
        st.save(study, r, VERSIONS)
    return st


def test_corrupt_pages_and_rows_are_one_line(tmp_path, capsys):
    db = tmp_path / "o" / "bnlab.sqlite"
    _saved_store(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET spec_json = '{not json' WHERE seed = 0")
    con.commit()
    con.close()
    assert main(["report", "s", "--out", str(tmp_path / "o")]) == 2
    one_line_error(capsys, "has an unreadable entry")
    data = bytearray(db.read_bytes())
    data[4096:8192] = os.urandom(4096)  # a page of garbage
    db.write_bytes(bytes(data))
    assert main(["report", "s", "--out", str(tmp_path / "o")]) == 2
    one_line_error(capsys, "bnlab.sqlite")


def test_a_read_only_store_still_reports_and_refuses_writes(tmp_path, monkeypatch):
    db = tmp_path / "ro.sqlite"
    _saved_store(db).close()
    monkeypatch.setattr(
        store_mod, "_exists_read_only", lambda p: True
    )  # root can write anything: say it can't
    with Store(db) as st:
        assert st.read_only and len(st.results("s")) == 2
        with pytest.raises(StoreError, match="is read-only"):
            st.begin_study("t", "q", {}, "")


def _hold_lock(db, seconds, ready):
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    ready.set()
    time.sleep(seconds)
    con.execute("COMMIT")
    con.close()


def test_a_locked_store_is_waited_for_then_runs_are_kept_and_retried(tmp_path, monkeypatch, capsys):
    db = tmp_path / "s.sqlite"
    st = _saved_store(db, n=1)
    st.conn.execute("PRAGMA busy_timeout = 100")
    monkeypatch.setenv("BNLAB_LOCK_WAIT_S", "3")
    results = []
    for seed in (5, 6):
        r = RunResult(RunSpec(seed=seed, epochs=1))
        r.epochs.append(
            dict(epoch=1, steps=10, train_loss=0.5, train_acc=0.9, test_loss=0.4, test_acc=0.9, wall_s=1.0)
        )
        results.append((r, VERSIONS))
    ready = threading.Event()
    t = threading.Thread(target=_hold_lock, args=(db, 1.5, ready))
    t.start()
    ready.wait()
    assert _commit(st, "s", results[:1], final=True) == []  # waited ~1.5 s, then saved
    t.join()
    assert "is locked by another process; waiting up to 3 s" in capsys.readouterr().err
    ready.clear()
    t = threading.Thread(target=_hold_lock, args=(db, 5, ready))
    t.start()
    ready.wait()
    assert _commit(st, "s", results[1:], final=False) == results[1:]  # refused: kept in memory
    t.join()
    assert _commit(st, "s", results[1:], final=True) == []
    assert len(st.done()) == 3
    ready.clear()
    t = threading.Thread(target=_hold_lock, args=(db, 5, ready))
    t.start()
    ready.wait()
    with pytest.raises(StoreLocked, match="stayed locked by another process"):
        _commit(st, "s", results[1:], final=True)
    t.join()


def test_the_summary_table_keeps_configurations_that_differ_only_in_noise_or_width():
    rows = []
    for i, (noise, hidden, h) in enumerate([(0, "128-64", "a"), (1, "128-64", "b"), (0, "256", "c")]):
        for seed in range(2):
            rows.append(
                dict(
                    run_id=f"r{i}{seed}",
                    dataset="mnist",
                    norm="batch",
                    placement="after",
                    batch_size=32,
                    lr=0.001,
                    optimizer="adam",
                    momentum=0.0,
                    init="glorot_uniform",
                    init_scale=1.0,
                    profile="keras",
                    epochs=1,
                    hidden=hidden,
                    activation="relu",
                    train_limit=None,
                    test_limit=None,
                    noise=noise,
                    config_hash=h,
                    test_acc=0.9 + i / 100,
                    diverged_epoch=None,
                )
            )
    t = summary_table(rows, "t")
    assert t.row_count == 3 and [c.header for c in t.columns][:2] == ["hidden", "noise"]
    same = [dict(r, noise=0, hidden="128-64") for r in rows]  # nothing shown tells them apart
    t = summary_table(same, "t")
    assert t.row_count == 3 and "config_hash" in [c.header for c in t.columns]


@needs_mnist
def test_sigterm_before_any_run_finished_claims_nothing(tmp_path):
    out = tmp_path / "o"
    p = subprocess.Popen(
        [sys.executable, "-m", "bnlab", "study", "seed", "--seeds", "1", "--out", str(out), "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)  # still importing or loading data
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "Traceback" not in err
    if not (out / "bnlab.sqlite").exists():
        assert "nothing was saved" in err


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.parametrize("entry", ["python -m bnlab", "bnlab script"])
def test_a_signal_while_the_command_line_imports_is_one_line(tmp_path, sig, code, entry):
    """Delivered the moment the early handlers are in (before bnlab.cli is imported): the exit code of a
    signal and one line, never a traceback or the signal's own death."""
    start = (
        "import bnlab.__main__ as m; m.run()"  # what the console script does
        if entry == "bnlab script"
        else "runpy.run_module('bnlab', run_name='__main__')"  # what python -m does
    )
    child = (
        "import os, runpy, signal, sys; real = signal.signal; "
        "signal.signal = lambda s, h: (real(s, h), s == signal.SIGINT and os.kill(os.getpid(), {sig}))[0]; "
        "sys.argv = ['bnlab', 'study', 'seed', '--out', {out!r}]; {start}"
    ).format(sig=int(sig), out=str(tmp_path / "o"), start=start)
    p = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert p.returncode == code, p.stderr
    assert p.stderr.strip() == "bnlab: stopped before it started; nothing was saved."
    assert not (tmp_path / "o").exists()


def test_the_report_of_a_study_whose_runs_all_diverged(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "report"))
    from test_report import make_store

    from bnlab.report.study_report import write_report

    every = [(n, b, s) for n in ("none", "batch") for b in (16, 32, 64, 128) for s in range(5)]
    for study in ("seed", "small-batch", "lr"):
        st = make_store(tmp_path / f"{study}.sqlite", study=study, diverge=every)
        paths = write_report(st, study, tmp_path / study)
        assert "diverged" in paths["md"].read_text() and paths["html"].stat().st_size > 0


def test_bnlab_fold_out_a_folder_is_one_line(tmp_path):
    db = tmp_path / "s.sqlite"
    _saved_store(db).close()
    r = bnlab("fold", "x", "--store", str(db), "--out", str(tmp_path))
    assert r.returncode == 2 and "is a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_data_folder_name_too_long_is_one_line(tmp_path):
    r = bnlab("run", *TINY, "--data-dir", str(tmp_path / ("a" * 300)), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "File name too long" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@needs_mnist
def test_a_path_with_a_non_utf8_byte_and_stdout_on_a_full_device(tmp_path):
    out = os.path.join(os.fsencode(tmp_path), b"bad\xff")
    r = subprocess.run(
        [sys.executable, "-m", "bnlab", "run", "--norm", "none", *TINY[:-1], "--out", out],
        capture_output=True,
    )
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(os.path.join(out, b"results.csv"))
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            r = subprocess.run(
                [sys.executable, "-m", "bnlab", "run", "--norm", "none", *TINY[:-1], "--out", out],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
            )
        assert r.returncode == 2 and "No space left on device" in r.stderr and "Traceback" not in r.stderr
