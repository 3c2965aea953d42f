"""bnlab.load and StudyResult.df: real pandas frames of synthetic stores, checked value by value against the
store."""

import math
import sqlite3
import sys

import numpy as np
import pytest

import bnlab
from bnlab.api import StudyResult
from bnlab.config import RunSpec
from bnlab.errors import ConfigError
from bnlab.export.frames import RUN_COLUMNS
from bnlab.records import RunResult
from bnlab.results_csv import ADDED_COLUMNS, EXTRA_COLUMNS, RESULT_COLUMNS, write_results_csv
from bnlab.store import Store
from report.test_report import VERSIONS, make_store

pd = pytest.importorskip("pandas", reason="pandas is not installed: pip install 'bnlab[pandas]'")

TYPES = {
    "batch_size": "int64",
    "lr": "float64",
    "seed": "int64",
    "epoch": "int64",
    "steps": "int64",
    "test_acc": "float64",
    "train_loss": "float64",
    "diverged": "bool",
    "noise": "bool",
    "epochs": "int64",
    "train_limit": "Int64",
    "diverged_epoch": "Int64",
}
TEXT = ("run_id", "norm", "hidden", "init", "device")  # str in pandas 3, object in pandas 2


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """An output folder: a store of 8 runs × 3 epochs (one diverges at epoch 2) and nothing else."""
    out = tmp_path_factory.mktemp("out")
    make_store(out / "bnlab.sqlite", seeds=2, batch_sizes=(32, 64), diverge=[("batch", 32, 1)]).close()
    return out


def _same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if a is None:  # not measured: NA in an integer column, NaN in a float one
        return b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b))
    return a == b


def test_load_gives_the_store_s_rows_typed_from_a_folder_a_store_or_a_csv(out, tmp_path):
    with Store(out / "bnlab.sqlite") as st:
        rows = st.results("seed")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_results_csv(rows, csv_dir / "results.csv")
    df = bnlab.load(out)
    assert list(df.columns) == list(RESULT_COLUMNS + EXTRA_COLUMNS + ADDED_COLUMNS)
    assert len(df) == len(rows) == 7 * 3 + 2  # the diverged run stops at epoch 2
    assert {c: str(df[c].dtype) for c in TYPES} == TYPES
    assert all(pd.api.types.is_string_dtype(df[c]) for c in TEXT) and df.hidden.tolist()[0] == "128-64"
    for i, r in enumerate(rows):  # every value, NaN and None included
        got = df.iloc[i].to_dict()
        assert all(_same(r[c], got[c]) for c in r), (i, r, got)
    assert df.diverged.sum() == 1 and df[df.diverged].epoch.tolist() == [2]
    assert np.isnan(df[df.diverged].train_loss.iloc[0]) and df.diverged_epoch.notna().sum() == 2
    for other in (out / "bnlab.sqlite", csv_dir, csv_dir / "results.csv"):
        pd.testing.assert_frame_equal(bnlab.load(other), df)


def test_a_store_with_several_studies_needs_a_study(out, tmp_path):
    path = tmp_path / "two.sqlite"
    make_store(path, seeds=2, batch_sizes=(32,), epochs=2).close()
    make_store(path, study="mine", seeds=3, batch_sizes=(64,), epochs=2, lrs=(3e-3,)).close()
    with pytest.raises(ConfigError) as e:
        bnlab.load(path)
    assert str(e.value) == f"{path} holds 2 studies (seed, mine); pick one with study=NAME"
    assert (
        len(bnlab.load(path, study="mine")) == 2 * 3 * 2 and len(bnlab.load(path, study="seed")) == 2 * 2 * 2
    )
    with pytest.raises(ConfigError, match=r"study 'lr' is not in .*; stored studies: seed, mine$"):
        bnlab.load(path, study="lr")
    with pytest.raises(ConfigError, match="names no study"):
        bnlab.load(_csv_only(out, tmp_path), study="seed")


def _csv_only(out, tmp_path):
    folder = tmp_path / "csv_only"
    folder.mkdir(exist_ok=True)
    with Store(out / "bnlab.sqlite") as st:
        write_results_csv(st.results("seed"), folder / "results.csv")
    return folder


def test_probes_and_evals_frames(tmp_path):
    st = Store(tmp_path / "bnlab.sqlite")
    st.begin_study("mech", "q", {}, "cmd")
    for seed in (0, 1):
        r = RunResult(RunSpec(norm="batch", epochs=1, seed=seed, train_limit=1000))
        r.epochs.append(
            dict(epoch=1, steps=32, train_loss=0.5, train_acc=0.8, test_loss=0.6, test_acc=0.79, wall_s=1.0)
        )
        r.evals = [
            dict(step=s, test_loss=1.0 / s, test_acc=0.5 + s / 100, wall_s=s / 10) for s in (10, 20, 30)
        ]
        r.probes = [
            dict(step=s, layer=layer, name="act_p50", value=s * 10 + layer + seed)
            for s in (0, 16)
            for layer in (0, 1)
        ]
        st.save("mech", r, VERSIONS)
    st.close()
    probes = bnlab.load(tmp_path, table="probes")
    assert list(probes.columns) == [*RUN_COLUMNS, "step", "layer", "name", "value"]
    assert (
        len(probes) == 2 * 2 * 2
        and str(probes.step.dtype) == "int64"
        and str(probes.value.dtype) == "float64"
    )
    assert (probes.value == probes.step * 10 + probes.layer + probes.seed).all()
    evals = bnlab.load(tmp_path / "bnlab.sqlite", table="evals")
    assert list(evals.columns) == [*RUN_COLUMNS, "step", "test_loss", "test_acc", "wall_s"]
    assert evals.step.tolist() == [10, 20, 30] * 2 and np.allclose(evals.test_acc, 0.5 + evals.step / 100)
    assert evals.seed.tolist() == [0] * 3 + [1] * 3 and (evals.norm == "batch").all()
    with pytest.raises(ConfigError, match=r"table 'model' is not one of results, probes, evals"):
        bnlab.load(tmp_path, table="model")


def test_bad_paths_are_one_line_and_change_nothing(out, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    other = tmp_path / "mlflow.db"  # someone else's SQLite file
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE runs(x)")
    con.commit()
    con.close()
    before = other.read_bytes()
    all_out = tmp_path / "all"
    (all_out / "seed").mkdir(parents=True)
    (all_out / "seed" / "bnlab.sqlite").write_bytes((out / "bnlab.sqlite").read_bytes())
    cases = [
        (tmp_path / "nope", "no such file or folder"),
        (text, "neither a bnlab store (SQLite) nor a results.csv"),
        (other, "is a SQLite file but not a bnlab store (it lacks the tables epochs, studies, study_runs)"),
        (all_out, f"holds no bnlab.sqlite or results.csv; its study folders do ({all_out / 'seed'})"),
        (_csv_only(out, tmp_path) / "results.csv", None),
    ]
    for path, msg in cases[:-1]:
        with pytest.raises(ConfigError) as e:
            bnlab.load(path)
        assert msg in str(e.value) and "\n" not in str(e.value)
    assert other.read_bytes() == before
    with pytest.raises(ConfigError, match="probes live in the store"):
        bnlab.load(cases[-1][0], table="probes")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="is not a bnlab results.csv: it lacks the columns run_id, dataset"):
        bnlab.load(bad_csv)


def test_study_result_df_is_the_loaded_frame(out):
    with Store(out / "bnlab.sqlite") as st:
        res = StudyResult("seed", st.results("seed"), out, out / "bnlab.sqlite")
    pd.testing.assert_frame_equal(res.df, bnlab.load(out))
    assert repr(res) == f"StudyResult(study='seed', runs=8, rows=23, out={str(out)!r})"


def test_without_pandas_one_line_names_the_extra(out, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    for call in (lambda: bnlab.load(out), lambda: StudyResult("seed", [], out, out / "bnlab.sqlite").df):
        with pytest.raises(ConfigError) as e:
            call()
        assert str(e.value) == "pandas is not installed; pip install 'bnlab[pandas]'"
