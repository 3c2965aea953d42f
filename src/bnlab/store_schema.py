"""The store's SQL schema and its migrations.

The schema is versioned (SQLite's PRAGMA user_version = SCHEMA_VERSION); bnlab.store creates the
tables, or migrates an older store forward with MIGRATIONS (version n → n + 1, each guarded so that
it can meet a half-old table).
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies(
  name TEXT PRIMARY KEY, question TEXT, spec_json TEXT, command TEXT, created REAL, updated REAL);
CREATE TABLE IF NOT EXISTS runs(
  run_id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, seed INTEGER NOT NULL, spec_json TEXT NOT NULL,
  diverged_epoch INTEGER, device TEXT, versions TEXT, created REAL, UNIQUE(config_hash, seed));
CREATE TABLE IF NOT EXISTS study_runs(
  study TEXT NOT NULL, run_id TEXT NOT NULL REFERENCES runs(run_id), PRIMARY KEY(study, run_id));
CREATE TABLE IF NOT EXISTS epochs(
  run_id TEXT NOT NULL REFERENCES runs(run_id), epoch INTEGER, steps INTEGER, train_loss REAL,
  train_acc REAL, test_loss REAL, test_acc REAL, wall_s REAL, train_acc_eval REAL, train_loss_eval REAL,
  train_loss_noise REAL, PRIMARY KEY(run_id, epoch));
CREATE TABLE IF NOT EXISTS evals(
  run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER, test_loss REAL, test_acc REAL, wall_s REAL,
  PRIMARY KEY(run_id, step));
CREATE TABLE IF NOT EXISTS models(
  run_id TEXT PRIMARY KEY REFERENCES runs(run_id), npz BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS probes(
  run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER, layer INTEGER, name TEXT, value REAL,
  PRIMARY KEY(run_id, step, layer, name));
"""

# Schema versions (PRAGMA user_version): 0, stores from before versioning (bnlab 0.1.0);
# 1, epochs gains train_acc_eval, train_loss_eval, train_loss_noise (records.EPOCH_COLS).
SCHEMA_VERSION = 1
# bnlab's mark (PRAGMA application_id, "bnlb"): set when bnlab creates a store or first opens one from
# before the mark; a database without it that holds anything but bnlab's tables is another program's.
APPLICATION_ID = 0x626E6C62
TABLES = ("studies", "runs", "study_runs", "epochs", "evals", "models", "probes")
EPOCH_COLS_V1 = ("train_acc_eval", "train_loss_eval", "train_loss_noise")


def _add_columns(c, table: str, cols: tuple[str, ...]) -> None:
    have = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
    for col in cols:
        if col not in have:
            c.execute(f"ALTER TABLE {table} ADD COLUMN {col} REAL")


MIGRATIONS = {0: lambda c: _add_columns(c, "epochs", EPOCH_COLS_V1)}  # from version n to n + 1


def foreign(c) -> str | None:
    """What makes the database on connection `c` another program's (its mark, or its tables that are
    not bnlab's), or None when it is bnlab's: bnlab's mark, or no mark and bnlab's tables only (a new
    file, or a store from before the mark)."""
    app = c.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    other = sorted(tables - set(TABLES))
    if app == APPLICATION_ID or (app == 0 and not other):
        return None
    return f"application id {app:#x}" if app else f"tables {', '.join(other[:5])}"
