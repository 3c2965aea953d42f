"""The SQLite store: studies, runs, per-epoch metrics, step evaluations, probes.

A run is written whole, in one transaction, when its training completes; a
run is keyed by (config_hash, seed), so a rerun skips what is done, and one
store can be shared by several studies (and processes: WAL, busy timeout).

Failures at any moment become one StoreError line naming the file and the fix: a file
that is not a store, corrupt pages or rows, a full disk, a read-only store (opened
read-only: it still yields its reports), and a write lock that another process holds
for longer than $BNLAB_LOCK_WAIT_S seconds (default 600; writes wait for it, saying so once, then
StoreLocked).

bnlab writes only into its own stores: a store carries bnlab's mark (PRAGMA application_id =
store_schema.APPLICATION_ID), set when bnlab creates it. An SQLite database with another mark, or
without one and with tables that are not bnlab's, is refused with one ConfigError before anything is
written to it; a store from before the mark (bnlab's tables only) gets it when first opened to write.

The schema is versioned (SQLite's PRAGMA user_version = SCHEMA_VERSION). Opening a store
migrates an older one forward in one transaction (MIGRATIONS: version n → n + 1, each
guarded so that it can meet a half-old table), and refuses, with one ConfigError, a store
written by a newer bnlab, before anything trains. The schema and its migrations are in
bnlab.store_schema; the results.csv columns, rows and writer in bnlab.results_csv.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import math
import os
import sqlite3
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from . import environment, store_rows
from ._version import __version__
from .config import RunSpec
from .errors import ConfigError, StoreError, StoreLocked
from .records import EPOCH_COLS, NUMERICS, RunResult
from .results_csv import result_rows
from .store_schema import APPLICATION_ID, MIGRATIONS, SCHEMA, SCHEMA_VERSION, foreign

SQLITE_MAGIC = b"SQLite format 3\x00"


def _guard(write: bool = False):
    """Method decorator: sqlite and decoding errors become one StoreError line; a write that finds the
    store locked is retried until $BNLAB_LOCK_WAIT_S seconds have passed (saying once that it waits)."""

    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            if write and self.read_only:
                raise StoreError(
                    f"the store {self.path} is read-only; make it writable or pass another --store "
                    "(its finished runs can still be reported: bnlab report)"
                )
            wait_s, deadline = 0.0, math.inf
            while True:
                try:
                    return method(self, *args, **kwargs)
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) and "busy" not in str(e):
                        raise _store_error(self.path, e) from None
                    if deadline == math.inf:  # the first wait: read how long to wait, say so once
                        wait_s = environment.lock_wait_s()
                        deadline = time.monotonic() + wait_s
                        print(
                            f"bnlab: the store {self.path} is locked by another process; waiting up to "
                            f"{wait_s:.0f} s",
                            file=sys.stderr,
                        )
                    if time.monotonic() >= deadline:
                        raise StoreLocked(
                            f"the store {self.path} stayed locked by another process for "
                            f"{wait_s:.0f} s; finished runs not yet saved are kept and retried "
                            "until this command ends; rerun it to resume"
                        ) from None
                    time.sleep(0.5)
                except (sqlite3.Error, OSError) as e:
                    raise _store_error(self.path, e) from None
                except (ValueError, KeyError, zipfile.BadZipFile) as e:  # a stored row that does not decode
                    if write:
                        raise
                    raise _store_error(self.path, e) from None

        return guarded

    return wrap


def _store_error(path: Path, e: Exception) -> StoreError:
    """One line for a failure inside the store file."""
    msg = str(e)
    if "disk is full" in msg or getattr(e, "errno", None) == errno.ENOSPC:
        return StoreError(
            f"the disk holding the store {path} is full; free space and rerun (finished runs are saved)"
        )
    if isinstance(e, sqlite3.DatabaseError) and ("malformed" in msg or "not a database" in msg):
        return StoreError(
            f"the store {path} is corrupt ({msg}); restore it from a backup or pass another --store "
            f"(`sqlite3 {path} .recover` may rescue its runs)"
        )
    return StoreError(
        f"the store {path} has an unreadable entry ({type(e).__name__}: {msg}); restore it from a "
        "backup or pass another --store"
    )


def _num(v):
    """SQLite stores NaN as NULL; read it back as NaN."""
    return math.nan if v is None else v


class Store:
    """One SQLite file. Every write is one short transaction. A context manager: `with Store(p) as st:`
    closes the connection on exit."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.read_only = _exists_read_only(self.path)
        try:
            if self.path.is_dir():
                raise ConfigError(f"the store {self.path} is a folder; pass a file path with --store")
            with open(self.path, "rb") if self.path.is_file() else contextlib.nullcontext() as f:
                head = f.read(len(SQLITE_MAGIC)) if f else b""
            if head and head != SQLITE_MAGIC:
                raise ConfigError(
                    f"{self.path} is not a bnlab store (not an SQLite file); pass another --store"
                )
            if self.read_only:
                self.conn = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60, isolation_level=None
                )
                self._owned(self.conn)
                self._version(self.conn)
                self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._owned(self.conn)  # before anything is written: WAL mode, tables, the mark
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            raise _store_error(self.path, e) from None
        except (OSError, sqlite3.Error) as e:
            self._close_quietly()
            raise ConfigError(
                f"cannot open the store {self.path}: {e}; pass a writable --store or --out"
            ) from None
        except ConfigError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.conn.close()

    def _owned(self, c) -> None:
        """Refuse (one ConfigError, nothing written) a database that is not bnlab's (store_schema.foreign)."""
        if what := foreign(c):
            raise ConfigError(
                f"{self.path} is an SQLite database of another program ({what}), not a bnlab store; bnlab "
                "leaves it untouched: pass a new --store path (or --out)"
            )

    def _version(self, c) -> int:
        v = c.execute("PRAGMA user_version").fetchone()[0]
        if v > SCHEMA_VERSION:
            raise ConfigError(
                f"the store {self.path} has schema version {v}, newer than this bnlab's "
                f"{SCHEMA_VERSION} (bnlab {__version__}): it was written by a newer bnlab; "
                "upgrade bnlab, or pass another --store"
            )
        return v

    def _migrate(self) -> None:
        """Create the tables, or bring an older store up to SCHEMA_VERSION and bnlab's mark (one
        transaction)."""

        def marked(c) -> bool:
            return c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID

        if self._version(self.conn) == SCHEMA_VERSION and marked(self.conn):
            return
        with self._tx() as c:
            v = self._version(c)  # again, under the write lock: another process may have migrated
            self._owned(c)
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            for n in range(v, SCHEMA_VERSION):
                MIGRATIONS[n](c)
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if not marked(c):
                c.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tx(self):
        return _Transaction(self.conn)

    @_guard(write=True)
    def begin_study(self, name: str, question: str, spec: dict, command: str) -> None:
        """Record the study and reset its membership: it holds the runs of its current grid
        (linked as they are found done or finish); other runs stay in the store for reuse."""
        now = time.time()
        with self._tx() as c:
            c.execute("DELETE FROM study_runs WHERE study=?", (name,))
            c.execute(
                "INSERT INTO studies VALUES (?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "question=excluded.question, spec_json=excluded.spec_json, command=excluded.command, "
                "updated=excluded.updated",
                (name, question, json.dumps(spec, sort_keys=True), command, now, now),
            )

    @_guard()
    def study(self, name: str) -> dict | None:
        row = self.conn.execute(
            "SELECT name, question, spec_json, command, created, updated FROM studies WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            return None
        return dict(
            name=row[0],
            question=row[1],
            spec=store_rows.json_object(self.path, f"study {name}", "spec_json", row[2]),
            command=row[3],
            created=row[4],
            updated=row[5],
        )

    @_guard()
    def studies(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM studies ORDER BY created")]

    @_guard()
    def done(self) -> dict[tuple[str, int], str]:
        """(config_hash, seed) → run_id for every completed run trained with today's numerics
        (records.NUMERICS); older runs are trained again, replacing their rows."""
        return {
            (h, s): r
            for r, h, s in self.conn.execute(
                "SELECT run_id, config_hash, seed FROM runs WHERE json_extract(versions, '$.numerics') = ?",
                (NUMERICS,),
            )
        }

    @_guard(write=True)
    def link(self, study: str, run_ids) -> None:
        with self._tx() as c:
            c.executemany("INSERT OR IGNORE INTO study_runs VALUES (?,?)", [(study, r) for r in run_ids])

    @_guard(write=True)
    def save(self, study: str, result: RunResult, versions: dict) -> None:
        """Write one finished run and its rows in one transaction (all or nothing)."""
        s = result.spec
        rid = s.run_id
        with self._tx() as c:
            for table in ("epochs", "evals", "probes", "models", "study_runs"):
                c.execute(f"DELETE FROM {table} WHERE run_id=?", (rid,))
            c.execute("DELETE FROM runs WHERE run_id=?", (rid,))
            c.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
                (
                    rid,
                    s.config_hash(),
                    s.seed,
                    json.dumps(s.to_json(), sort_keys=True),
                    result.diverged_epoch,
                    result.device,
                    json.dumps(versions, sort_keys=True),
                    time.time(),
                ),
            )
            c.execute("INSERT OR IGNORE INTO study_runs VALUES (?,?)", (study, rid))
            c.executemany(
                f"INSERT INTO epochs (run_id, {', '.join(EPOCH_COLS)}) VALUES "
                f"({', '.join('?' * (len(EPOCH_COLS) + 1))})",
                [(rid, *(e.get(k) for k in EPOCH_COLS)) for e in result.epochs],
            )
            c.executemany(
                "INSERT INTO evals VALUES (?,?,?,?,?)",
                [(rid, e["step"], e["test_loss"], e["test_acc"], e["wall_s"]) for e in result.evals],
            )
            c.executemany(
                "INSERT INTO probes VALUES (?,?,?,?,?)",
                [(rid, p["step"], p["layer"], p["name"], p["value"]) for p in result.probes],
            )
            if model := getattr(result, "model", None):
                buf = io.BytesIO()
                np.savez(buf, **model)
                c.execute("INSERT INTO models VALUES (?,?)", (rid, buf.getvalue()))

    @_guard()
    def model(self, run_id: str) -> tuple[RunSpec, dict] | None:
        """A run's spec and its stored trained parameters (name → array), or None if it kept none."""
        row = self.conn.execute(
            "SELECT r.spec_json, m.npz FROM models m JOIN runs r ON r.run_id = m.run_id WHERE m.run_id=?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        where = f"run {run_id}"
        return store_rows.spec(self.path, where, row[0]), store_rows.arrays(self.path, where, row[1])

    @_guard()
    def models(self) -> list[str]:
        """run_ids of the runs with stored parameters."""
        return [r[0] for r in self.conn.execute("SELECT run_id FROM models ORDER BY run_id")]

    @_guard()
    def runs(self, study: str) -> list[dict]:
        """Every run of a study: run_id, spec (RunSpec), diverged_epoch, device, versions."""
        rows = self.conn.execute(
            "SELECT r.run_id, r.spec_json, r.diverged_epoch, r.device, r.versions FROM runs r "
            "JOIN study_runs s ON s.run_id = r.run_id WHERE s.study=? ORDER BY r.run_id",
            (study,),
        )
        return [
            dict(
                run_id=r[0],
                spec=store_rows.spec(self.path, f"run {r[0]}", r[1]),
                diverged_epoch=r[2],
                device=r[3],
                versions=store_rows.json_object(self.path, f"run {r[0]}", "versions", r[4] or "{}"),
            )
            for r in rows
        ]

    @_guard()
    def results(self, study: str) -> list[dict]:
        """One row per run and epoch, as results.csv has them (results_csv.result_rows)."""
        eps = self.epochs(study)
        return result_rows(self.runs(study), eps)

    @_guard()
    def _rows(self, table: str, cols: tuple[str, ...], order: str, study: str) -> dict[str, list[dict]]:
        """Columns an older store lacks (one opened read-only is not migrated) read as NULL, i.e. NaN."""
        have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
        q = (
            f"SELECT t.run_id, {', '.join('t.' + c if c in have else 'NULL' for c in cols)} FROM {table} t "
            f"JOIN study_runs s ON s.run_id = t.run_id WHERE s.study=? ORDER BY t.run_id, {order}"
        )
        out: dict[str, list[dict]] = {}
        for r in self.conn.execute(q, (study,)):
            out.setdefault(r[0], []).append({c: _num(v) for c, v in zip(cols, r[1:])})
        return out

    def epochs(self, study: str) -> dict[str, list[dict]]:
        """run_id → per-epoch rows (EPOCH_COLS), in epoch order."""
        return self._rows("epochs", EPOCH_COLS, "t.epoch", study)

    def evals(self, study: str) -> dict[str, list[dict]]:
        return self._rows("evals", ("step", "test_loss", "test_acc", "wall_s"), "t.step", study)

    def probes(self, study: str) -> dict[str, list[dict]]:
        return self._rows("probes", ("step", "layer", "name", "value"), "t.step, t.layer, t.name", study)


def _exists_read_only(path: Path) -> bool:
    """An existing store this process may not write (file or folder read-only): opened read-only."""
    return path.is_file() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK))


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, ROLLBACK on any exception (a run is never half-written)."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
