"""The CLI end to end on a small slice of real MNIST (BNLAB_DATA_DIR), as a user runs it."""

import csv
import json

import pytest

from bnlab.cli import main
from bnlab.data import DATASETS
from bnlab.store import RESULT_COLUMNS
from helpers import bnlab, needs_mnist


@needs_mnist
def test_run_writes_results_csv_and_runs_json(tmp_path):
    out = tmp_path / "out"
    r = bnlab(
        "run",
        "--norm",
        "none",
        "batch",
        "--batch-size",
        "64",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--train-limit",
        "2000",
        "--test-limit",
        "1000",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert list(rows[0])[: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert len(rows) == 2 * 2 * 2  # norms × seeds × epochs
    assert {r["norm"] for r in rows} == {"none", "batch"} and {r["seed"] for r in rows} == {"0", "1"}
    assert [r["steps"] for r in rows if r["epoch"] == "2"] == ["64"] * 4  # 2000/64 → 32 steps an epoch
    specs = json.loads((out / "runs.json").read_text())
    assert len(specs) == 4 and specs[0]["train_limit"] == 2000
    assert "final test acc" in r.stdout
    again = bnlab(
        "run",
        "--norm",
        "none",
        "batch",
        "--batch-size",
        "64",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--train-limit",
        "2000",
        "--test-limit",
        "1000",
        "--out",
        str(out),
        "--quiet",
    )
    assert again.returncode == 0
    assert (
        list(csv.DictReader(open(out / "results.csv"))) == rows
    )  # resumed from the store, nothing retrained


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "--norm", "weird"], "norm = 'weird' is not allowed; choose one of"),
        (["run", "--batch-size", "0"], "batch_size = 0 is out of range"),
        (["run", "--lr", "-1"], "lr must be a finite number > 0"),
        (["run", "--seeds", "0"], "seeds = 0 is out of range"),
        (["run", "--epochs", "0"], "epochs = 0 is out of range"),
        (["run", "--profile", "jax"], "profile = 'jax' is not allowed"),
        (["study", "nope"], "unknown study 'nope'"),
        (["report", "seed"], "no store at"),
        (["run", "--out", "{file}/sub"], "is not writable"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(args, needle, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    assert main([*args, *([] if "--out" in args else ["--out", str(tmp_path / "o")])]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_error_exit_code_and_no_traceback_in_a_real_process(tmp_path):
    r = bnlab("run", "--norm", "weird", "--out", str(tmp_path))
    assert (
        r.returncode == 2
        and r.stderr.startswith("bnlab: error: norm = 'weird'")
        and "Traceback" not in r.stderr
    )


def test_missing_data_is_a_data_error(tmp_path):
    r = bnlab("run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--epochs", "1")
    assert r.returncode == 2
    assert f"--data-dir {tmp_path} has no mnist files" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # nothing written


def test_study_list_names_the_studies():
    r = bnlab("study", "--list")
    assert r.returncode == 0 and "seed" in r.stdout and "batch size" in r.stdout.lower()


@needs_mnist
@pytest.mark.slow
def test_one_epoch_full_mnist_bn_bs32_reaches_95_percent(tmp_path):
    r = bnlab(
        "run", "--norm", "batch", "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path), "--quiet"
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert float(rows[0]["test_acc"]) >= 0.95


def test_registry_has_mnist_md5s():
    assert DATASETS["mnist"].md5["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
