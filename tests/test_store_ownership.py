"""bnlab writes only into files it created: an SQLite database of another program is refused in one line
by every command that opens a store, and its bytes are unchanged."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

from bnlab.errors import ConfigError
from bnlab.store import Store
from bnlab.store_schema import APPLICATION_ID, TABLES


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign(path, app_id: int = 0, tables=("users",)):
    con = sqlite3.connect(path)
    for t in tables:
        con.execute(f"CREATE TABLE {t}(id INTEGER PRIMARY KEY, name TEXT)")
    con.execute(f"INSERT INTO {tables[0]} VALUES (1, 'ada')")
    if app_id:
        con.execute(f"PRAGMA application_id = {app_id}")
    con.commit()
    con.close()
    return path


def _app_id(path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA application_id").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize(
    "app_id,tables,said",
    [
        (0, ("users",), "tables users"),  # another program's tables, no mark
        (0, ("runs", "users"), "tables users"),  # bnlab's table names beside another's
        (0x12345678, ("runs",), "application id 0x12345678"),  # another program's mark, bnlab-like tables
    ],
)
def test_a_database_of_another_program_is_refused_and_left_untouched(tmp_path, app_id, tables, said):
    db = _foreign(tmp_path / "app.db", app_id, tables)
    before = _digest(db)
    with pytest.raises(ConfigError) as e:
        Store(db)
    msg = str(e.value)
    assert "another program" in msg and said in msg and "pass a new --store" in msg and "\n" not in msg
    assert _digest(db) == before and not (tmp_path / "app.db-wal").exists()


def test_a_new_store_carries_the_mark_and_opens_again(tmp_path):
    with Store(tmp_path / "s.sqlite"):
        pass
    assert _app_id(tmp_path / "s.sqlite") == APPLICATION_ID
    with Store(tmp_path / "s.sqlite") as st:
        assert st.studies() == []


def test_a_store_from_before_the_mark_is_accepted_and_marked(tmp_path):
    db = tmp_path / "old.sqlite"
    with Store(db) as st:
        st.begin_study("s", "q?", {}, "bnlab study s")
        st.conn.execute("PRAGMA application_id = 0")  # as bnlab 0.1.0 left it
    assert _app_id(db) == 0
    with Store(db) as st:
        assert st.studies() == ["s"]
    assert _app_id(db) == APPLICATION_ID


def test_an_empty_sqlite_file_becomes_a_store(tmp_path):
    db = tmp_path / "empty.sqlite"
    sqlite3.connect(db).close()
    with Store(db) as st:
        assert st.studies() == []
    con = sqlite3.connect(db)
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")} == set(TABLES)
    con.close()


COMMANDS = [
    ["study", "seed", "--seeds", "1", "--epochs", "1", "--train-limit", "500", "--quiet"],
    ["run", "--norm", "batch", "--epochs", "1", "--train-limit", "500", "--quiet"],
    ["plan", "seed"],
    ["report", "seed"],
    ["export", "{store}", "--tensorboard", "{tmp}/tb"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_every_command_that_opens_a_store_refuses_another_program_s_database(tmp_path, args):
    db = _foreign(tmp_path / "app.db")
    before = _digest(db)
    argv = [a.format(store=db, tmp=tmp_path) for a in args]
    if argv[0] != "export":
        argv += ["--store", str(db), "--out", str(tmp_path / "out")]
    p = subprocess.run(
        [sys.executable, "-m", "bnlab", *argv], capture_output=True, text=True, timeout=300, env=os.environ
    )
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "not a bnlab store" in lines[-1], p.stderr
    assert _digest(db) == before
