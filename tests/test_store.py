"""The SQLite store: whole-run commits, resume keys, study membership, results rows."""

import json
import math
import sqlite3

import pytest

from bnlab import store as S
from bnlab.config import RunSpec
from bnlab.errors import ConfigError
from bnlab.records import NUMERICS, RunResult
from bnlab.results_csv import ADDED_COLUMNS, EXTRA_COLUMNS, RESULT_COLUMNS, write_results_csv
from bnlab.store import Store
from bnlab.store_schema import SCHEMA, SCHEMA_VERSION


def _result(seed=0, norm="batch", epochs=2, diverged=None):
    r = RunResult(RunSpec(norm=norm, seed=seed, epochs=epochs))
    for e in range(1, epochs + 1):
        bad = diverged == e
        r.epochs.append(
            dict(
                epoch=e,
                steps=10 * e,
                train_loss=math.nan if bad else 1 / e,
                train_acc=0.9,
                test_loss=math.nan if bad else 1.1 / e,
                test_acc=0.95,
                wall_s=0.5 * e,
            )
        )
    r.diverged_epoch = diverged
    r.evals.append(dict(step=5, test_loss=1.0, test_acc=0.5, wall_s=0.1))
    return r


def test_save_and_read_back(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("x", "q", {}, "cmd")
    st.save("x", _result(0), {"torch": "2", "numerics": NUMERICS})
    st.save("x", _result(1, diverged=2), {"torch": "2", "numerics": NUMERICS})
    rows = st.results("x")
    assert list(rows[0])[: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert len(rows) == 4
    div = [r for r in rows if r["seed"] == 1]
    assert [r["diverged"] for r in div] == [0, 1] and math.isnan(div[1]["train_loss"])
    assert st.evals("x")[rows[0]["run_id"]][0]["step"] == 5
    h = RunSpec(norm="batch", epochs=2).config_hash()
    assert set(st.done()) == {(h, 0), (h, 1)}


def test_a_failed_save_leaves_nothing(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("x", "q", {}, "cmd")
    r = _result(0)
    r.probes.append(dict(step=1, layer=0, name="ics"))  # missing 'value': fails mid-transaction
    with pytest.raises(KeyError):
        st.save("x", r, {})
    con = sqlite3.connect(tmp_path / "s.sqlite")
    assert [con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "epochs", "evals")] == [
        0,
        0,
        0,
    ]


def test_runs_of_older_numerics_are_not_reused(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("x", "q", {}, "cmd")
    st.save("x", _result(0), {"torch": "2"})  # before versions carried numerics
    st.save("x", _result(1), {"numerics": NUMERICS - 1})
    st.save("x", _result(2), {"numerics": NUMERICS})
    assert sorted(seed for _, seed in st.done()) == [2]  # the others are trained again
    assert len(st.results("x")) == 6  # and still readable until then


def test_rerun_replaces_not_duplicates_and_membership_resets(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("x", "q", {}, "cmd")
    st.save("x", _result(0), {"numerics": NUMERICS})
    st.save("x", _result(0), {"numerics": NUMERICS})
    assert len(st.results("x")) == 2
    st.begin_study("x", "q", {}, "cmd")  # a new grid: membership starts empty, runs stay
    assert st.results("x") == [] and len(st.done()) == 1
    st.link("x", list(st.done().values()))
    assert len(st.results("x")) == 2


def test_unwritable_store_is_a_config_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="cannot open the store .*pass a writable --store"):
        Store(tmp_path / "f" / "s.sqlite")


OLD_EPOCHS = """CREATE TABLE epochs(
  run_id TEXT NOT NULL REFERENCES runs(run_id), epoch INTEGER, steps INTEGER, train_loss REAL, train_acc REAL,
  test_loss REAL, test_acc REAL, wall_s REAL, PRIMARY KEY(run_id, epoch))"""


def _old_store(path):
    """A store as bnlab 0.1.0 wrote it: user_version 0, epochs without the schema-1 columns, one run."""
    con = sqlite3.connect(path)
    for stmt in SCHEMA.split(";"):
        if stmt.strip() and "TABLE IF NOT EXISTS epochs" not in stmt:
            con.execute(stmt)
    con.execute(OLD_EPOCHS)
    spec = RunSpec(norm="batch", epochs=1)
    con.execute(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
        (spec.run_id, spec.config_hash(), 0, json.dumps(spec.to_json()), None, "cpu", "{}", 0.0),
    )
    con.execute("INSERT INTO studies VALUES ('x','q','{}','cmd',0,0)")
    con.execute("INSERT INTO study_runs VALUES ('x',?)", (spec.run_id,))
    con.execute("INSERT INTO epochs VALUES (?,1,10,0.5,0.8,0.4,0.9,1.0)", (spec.run_id,))
    con.commit()
    con.close()


def test_new_measures_round_trip_and_columns_are_appended(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("x", "q", {}, "cmd")
    r = _result(0)
    for e in r.epochs:
        e.update(train_acc_eval=0.91, train_loss_eval=0.3, train_loss_noise=0.05)
    st.save("x", r, {})
    rows = st.results("x")
    assert (
        list(rows[0])
        == [
            *RESULT_COLUMNS,
            *EXTRA_COLUMNS,
            "train_acc_eval",
            "train_loss_eval",
            "train_loss_noise",
            "precise_bn",
        ]
        == [*RESULT_COLUMNS, *EXTRA_COLUMNS, *ADDED_COLUMNS]
    )
    assert (rows[0]["train_acc_eval"], rows[0]["train_loss_eval"], rows[0]["train_loss_noise"]) == (
        0.91,
        0.3,
        0.05,
    )
    assert rows[0]["precise_bn"] == 0
    assert st.epochs("x")[r.spec.run_id][0]["train_loss_noise"] == 0.05


def test_an_old_store_is_migrated_at_open(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_store(path)
    with Store(path) as st:
        rows = st.results("x")
        assert rows[0]["train_acc"] == 0.8 and rows[0]["test_acc"] == 0.9
        assert (
            rows[0]["train_acc_eval"] is None and rows[0]["train_loss_noise"] is None
        )  # not measured: empty
        assert math.isnan(st.epochs("x")[rows[0]["run_id"]][0]["train_loss_eval"])  # the report reads NaN
        write_results_csv(rows, tmp_path / "r.csv")
        st.save("x", _result(1), {})  # new runs write the new columns
    line = (tmp_path / "r.csv").read_text().splitlines()[1]
    assert line.endswith(",,,,0")
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    cols = [r[1] for r in con.execute("PRAGMA table_info(epochs)")]
    assert cols[-3:] == ["train_acc_eval", "train_loss_eval", "train_loss_noise"] and len(cols) == 11
    con.close()
    Store(path).close()  # opening again: nothing to do


def test_an_old_store_opened_read_only_reports_without_migrating(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    _old_store(path)
    monkeypatch.setattr(S, "_exists_read_only", lambda p: True)  # root can write anything: say it can't
    with Store(path) as st:
        rows = st.results("x")
        assert st.read_only and len(rows) == 1 and rows[0]["test_acc"] == 0.9
        assert rows[0]["train_acc_eval"] is None and rows[0]["train_loss_noise"] is None
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0  # untouched
    assert len([r for r in con.execute("PRAGMA table_info(epochs)")]) == 8
    con.close()


def test_a_store_from_a_newer_bnlab_is_refused_at_open(tmp_path):
    path = tmp_path / "new.sqlite"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(
        ConfigError,
        match=rf"has schema version {SCHEMA_VERSION + 1}, newer than this bnlab's "
        rf"{SCHEMA_VERSION} .*upgrade bnlab, or pass another --store",
    ):
        Store(path)
