"""The SQLite store: whole-run commits, resume keys, study membership, results rows."""
import math
import sqlite3

import pytest

from bnlab.config import RunSpec
from bnlab.errors import ConfigError
from bnlab.store import RESULT_COLUMNS, Store
from bnlab.records import RunResult


def _result(seed=0, norm="batch", epochs=2, diverged=None):
    r = RunResult(RunSpec(norm=norm, seed=seed, epochs=epochs))
    for e in range(1, epochs + 1):
        bad = diverged == e
        r.epochs.append(dict(epoch=e, steps=10 * e, train_loss=math.nan if bad else 1 / e, train_acc=0.9,
                             test_loss=math.nan if bad else 1.1 / e, test_acc=0.95, wall_s=0.5 * e))
    r.diverged_epoch = diverged
    r.evals.append(dict(step=5, test_loss=1.0, test_acc=0.5, wall_s=0.1))
    return r


def test_save_and_read_back(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("x", "q", {}, "cmd")
    st.save("x", _result(0), {"torch": "2"})
    st.save("x", _result(1, diverged=2), {"torch": "2"})
    rows = st.results("x")
    assert list(rows[0])[:len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
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
    r.probes.append(dict(step=1, layer=0, name="ics"))      # missing 'value': fails mid-transaction
    with pytest.raises(KeyError):
        st.save("x", r, {})
    con = sqlite3.connect(tmp_path / "s.sqlite")
    assert [con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "epochs", "evals")] == [0, 0, 0]


def test_rerun_replaces_not_duplicates_and_membership_resets(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("x", "q", {}, "cmd")
    st.save("x", _result(0), {})
    st.save("x", _result(0), {})
    assert len(st.results("x")) == 2
    st.begin_study("x", "q", {}, "cmd")            # a new grid: membership starts empty, runs stay
    assert st.results("x") == [] and len(st.done()) == 1
    st.link("x", list(st.done().values()))
    assert len(st.results("x")) == 2


def test_unwritable_store_is_a_config_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="cannot open the store .*pass a writable --store"):
        Store(tmp_path / "f" / "s.sqlite")
