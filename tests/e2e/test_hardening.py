"""Hardening: bad data and configuration through the CLI, concurrency, determinism, random study files."""

import csv
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnlab import studies
from bnlab.cli import main
from bnlab.errors import ConfigError
from helpers import bnlab, needs_mnist

MNIST = os.path.join(os.environ.get("BNLAB_DATA_DIR", ""), "mnist")


def _corrupt(tmp_path, how):
    """A copy of real MNIST with one file broken in one way; returns (data_dir, broken file)."""
    root = tmp_path / "data"
    shutil.copytree(MNIST, root / "mnist")
    f = root / "mnist" / "train-labels-idx1-ubyte.gz"
    blob = f.read_bytes()
    if how == "folder missing":
        shutil.rmtree(root / "mnist")
        return root, root / "mnist"
    if how == "file missing":
        f.unlink()
    elif how == "truncated gz":
        f.write_bytes(blob[: len(blob) // 2])
    elif how == "corrupt gz":
        f.write_bytes(blob[:20] + bytes(len(blob) - 20))
    elif how == "wrong MD5":
        import gzip

        raw = bytearray(gzip.decompress(blob))
        raw[-1] = (raw[-1] + 1) % 10
        f.write_bytes(gzip.compress(bytes(raw)))
    return root, f


@needs_mnist
@pytest.mark.parametrize(
    "how, needle",
    [
        ("folder missing", "has no mnist files"),
        ("file missing", "has no mnist files"),
        ("truncated gz", "train-labels-idx1-ubyte.gz"),
        ("corrupt gz", "train-labels-idx1-ubyte.gz"),
        ("wrong MD5", "train-labels-idx1-ubyte.gz"),
    ],
)
def test_bad_data_exit_2_one_line_nothing_written(tmp_path, how, needle):
    root, _ = _corrupt(tmp_path, how)
    out = tmp_path / "out"
    r = bnlab("run", "--data-dir", str(root), "--out", str(out), "--epochs", "1")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
    assert ("--data-dir" in lines[0]) or ("re-download" in lines[0])
    assert not out.exists()
    dbg = bnlab("run", "--data-dir", str(root), "--out", str(out), "--epochs", "1", "--debug")
    assert "Traceback" in dbg.stderr


@needs_mnist
@pytest.mark.parametrize(
    "args, needle",
    [
        (["--batch-size", "70000"], "batch_size = 70000 is larger than the 60000 training images"),
        (["--batch-size", "64", "--train-limit", "32"], "batch_size = 64 is larger than train_limit = 32"),
        (["--lr", "nan"], "lr must be a finite number > 0"),
        (["--lr", "0.1", "0.1"], "repeats a value"),
        (["--dataset", "cifar10"], "dataset = 'cifar10' is not allowed; choose one of"),
        (["--init", "zeros"], "init = 'zeros' is not allowed; choose one of"),
        (["--seeds", "1,1"], "repeats a seed"),
    ],
)
def test_bad_config_from_cli(tmp_path, capsys, args, needle):
    assert main(["run", *args, "--epochs", "1", "--out", str(tmp_path / "o")]) == 2  # in-process: fast
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_toml_from_cli(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\n[grid]\nnorm = ["none", "batch", "instance"]\n')
    assert main(["study", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "norm = 'instance' is not allowed; choose one of" in capsys.readouterr().err


FIELDS = {
    "norm": st.sampled_from(["none", "batch", "layer", "bogus", 3]),
    "batch_size": st.one_of(st.integers(-5, 300), st.floats(allow_nan=True), st.text(max_size=3)),
    "lr": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 2), st.booleans()),
    "epochs": st.one_of(st.integers(-2, 3), st.none()),
    "placement": st.sampled_from(["after", "before", "sideways"]),
    "colour": st.integers(),
}


@settings(max_examples=150, deadline=None)
@given(
    base=st.dictionaries(st.sampled_from(list(FIELDS)), st.integers(0, 3)).flatmap(
        lambda d: st.fixed_dictionaries({k: FIELDS[k] for k in d})
    ),
    grid=st.dictionaries(
        st.sampled_from(["norm", "batch_size", "lr"]),
        st.lists(st.one_of(st.integers(1, 64), st.sampled_from(["none", "batch", "x"])), max_size=3),
    ),
    seeds=st.one_of(st.integers(-1, 4), st.lists(st.integers(-1, 5), max_size=3), st.text(max_size=2)),
    extra=st.sampled_from([{}, {"colour": 1}, {"question": 3}]),
)
def test_random_study_files_validate_or_raise_config_error(base, grid, seeds, extra):
    data = {
        "name": "h",
        "seeds": seeds,
        "base": {k: v for k, v in base.items() if v is not None},
        "grid": grid,
        **extra,
    }
    try:
        s = studies.from_dict(data)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert all(spec.seed >= 0 for spec in s.specs())


@needs_mnist
def test_two_processes_share_one_store(tmp_path):
    store = tmp_path / "shared.sqlite"
    common = [
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "300",
        "--quiet",
        "--store",
        str(store),
    ]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bnlab",
                "run",
                "--norm",
                norm,
                "--seeds",
                "3",
                "--batch-size",
                "50",
                "100",
                "--max-stack",
                "1",
                "--out",
                str(tmp_path / norm),
                *common,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for norm in ("none", "batch")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    import sqlite3

    con = sqlite3.connect(store)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT run_id) FROM runs").fetchone() == (12, 12)
    assert con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 12


@needs_mnist
def test_same_spec_twice_gives_identical_results(tmp_path):
    args = [
        "run",
        "--norm",
        "none",
        "batch",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--train-limit",
        "1500",
        "--test-limit",
        "500",
        "--quiet",
    ]
    for d in ("a", "b"):
        assert bnlab(*args, "--out", str(tmp_path / d)).returncode == 0
    rows = {
        d: [
            {k: v for k, v in r.items() if k != "wall_s"}
            for r in csv.DictReader(open(tmp_path / d / "results.csv"))
        ]
        for d in ("a", "b")
    }
    assert rows["a"] == rows["b"] and len(rows["a"]) == 8


# ------------------------------------------------------------------ malformed files, through the CLI
# Real MNIST fails its MD5 check before any structural check can run, so these cases use small
# well-formed fake sets registered with their own MD5s (as tests/test_data.py does) and break one
# thing each; the CLI must answer exit 2, one line naming the file and the fix, and write nothing.


@pytest.mark.parametrize(
    "how, needle",
    [
        ("wrong magic", "t10k-images-idx3-ubyte.gz"),
        ("wrong dims", "t10k-images-idx3-ubyte.gz"),
        ("labels out of range", "train-labels-idx1-ubyte.gz"),
        ("npz wrong keys", "mnist.npz"),
    ],
)
def test_malformed_files_exit_2_from_the_cli(tmp_path, capsys, offline_data, how, needle):
    import hashlib

    import numpy as np

    import test_data as T
    from bnlab import datafiles as F

    root = tmp_path / "data"
    args = ["--data-dir", str(root)]
    if how == "npz wrong keys":
        npz = tmp_path / "home" / ".keras" / "datasets" / "mnist.npz"
        npz.parent.mkdir(parents=True)
        np.savez(npz, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.uint8))
        T.register(keras_md5=hashlib.md5(npz.read_bytes()).hexdigest())
        args = []
    else:
        md5 = T.fake_set(root / "mnist", labels_max=12 if how == "labels out of range" else 9)
        bad = root / "mnist" / "t10k-images-idx3-ubyte.gz"
        if how == "wrong magic":
            import gzip

            raw = bytearray(gzip.decompress(bad.read_bytes()))
            raw[2] = 0x0D
            bad.write_bytes(gzip.compress(bytes(raw)))
        elif how == "wrong dims":
            F.write_idx(bad, np.zeros((T.N_TEST, 27, 28), np.uint8))
        md5["t10k-images-idx3-ubyte"] = hashlib.md5(F.read_bytes(bad)).hexdigest()
        T.register(md5=md5)
    out = tmp_path / "out"
    assert main(["run", *args, "--out", str(out), "--epochs", "1", "--batch-size", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and ("re-download" in err[0] or "--data-dir" in err[0]), err
    assert not out.exists()
