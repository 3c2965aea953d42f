"""The CLI end to end on a small slice of real MNIST (BNLAB_DATA_DIR), as a user runs it."""

import csv
import json

import pytest

from bnlab.cli import main
from bnlab.data import DATASETS
from bnlab.results_csv import RESULT_COLUMNS
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


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "seed", "--store", "{missing}"],
        ["report", "seed", "--store", "{missing}", "--out", "{tmp}/out"],
        ["export", "{missing}", "--tensorboard", "{tmp}/tb"],
        ["fold", "r1", "--store", "{missing}", "--out", "{tmp}/out/r1.pt"],
    ],
)
def test_a_read_only_command_given_a_missing_store_says_so_and_creates_nothing(args, tmp_path, capsys):
    missing = tmp_path / "typo" / "bnlab.sqlite"
    argv = [a.replace("{missing}", str(missing)).replace("{tmp}", str(tmp_path)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "does not exist" in err, err
    assert "pass" in err or "run" in err  # the fix
    assert list(tmp_path.iterdir()) == []  # nothing created: no store, no folder, no pilot


def _tiny(name, data_dir=None):
    from bnlab import data
    from helpers import learnable_data

    d = learnable_data(256, 64)
    arrays = (d.x_train, d.y_train, d.x_test, d.y_test)
    return data.Dataset(name, *(a.numpy() for a in arrays), source="test", n_classes=10)


PILOT = ["--epochs", "1", "--train-limit", "128", "--pilot-seeds", "2", "--device", "cpu"]


def test_plan_with_a_store_lacking_the_study_trains_no_pilot_unless_asked(tmp_path, capsys, monkeypatch):
    from bnlab import data
    from bnlab.store import Store

    monkeypatch.setattr(data, "load", _tiny)
    store = tmp_path / "other.sqlite"
    Store(store).close()
    before = sorted(tmp_path.iterdir())
    assert main(["plan", "seed", "--store", str(store), "--out", str(tmp_path / "o"), *PILOT]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(store) in err and "--pilot" in err, err
    assert sorted(tmp_path.iterdir()) == before  # no pilot folder
    argv = ["plan", "seed", "--store", str(store), "--out", str(tmp_path / "o"), "--pilot", *PILOT]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "training a pilot first" in said and str(tmp_path / "o" / "pilot") in said and "about" in said
    assert said.index("training a pilot first") < said.index("seeds")  # said before the plan


def test_plan_without_a_store_says_what_its_pilot_trains_before_it_starts(tmp_path, capsys, monkeypatch):
    from bnlab import api, data

    monkeypatch.setattr(data, "load", _tiny)
    said_first: list[str] = []
    real = api.run_study

    def run_study(*args, **kw):
        said_first.append(capsys.readouterr().out)
        return real(*args, **kw)

    monkeypatch.setattr(api, "run_study", run_study)
    assert main(["plan", "seed", "--out", str(tmp_path / "o"), *PILOT]) == 0
    assert "training a pilot first" in said_first[0] and "runs (" in said_first[0]
