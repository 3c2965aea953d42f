"""The results.csv contract: its columns and their order, the rows a study yields, and the writer.

One row per run and epoch: RESULT_COLUMNS first, in this order, then EXTRA_COLUMNS, then
ADDED_COLUMNS (bnlab.store reads the runs and epochs; bnlab.export.frames reads the file back).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from .config import RunSpec
from .outputs import write_text
from .store_schema import EPOCH_COLS_V1

# The results.csv contract: these columns first, in this order, one row per run and epoch.
RESULT_COLUMNS = (
    "run_id",
    "dataset",
    "norm",
    "placement",
    "batch_size",
    "lr",
    "init",
    "profile",
    "seed",
    "epoch",
    "steps",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "diverged",
    "wall_s",
)
EXTRA_COLUMNS = (
    "optimizer",
    "momentum",
    "init_scale",
    "epochs",
    "hidden",
    "activation",
    "train_limit",
    "test_limit",
    "noise",
    "diverged_epoch",
    "config_hash",
    "device",
)
# Appended after every older column (schema 1): empty where not measured (runs stored by an older bnlab) or
# not a number; precise_bn is 0 or 1 (0 for older runs, which had no precise BN).
ADDED_COLUMNS = (*EPOCH_COLS_V1, "precise_bn")


def result_rows(runs: list[dict], epochs: dict[str, list[dict]]) -> list[dict]:
    """One row per run and epoch (a study's Store.runs and Store.epochs): RESULT_COLUMNS, EXTRA_COLUMNS,
    then ADDED_COLUMNS. `diverged` is 1 on the epoch at which the run's loss turned non-finite (its last
    row), else 0."""
    rows = []
    for r in runs:
        s: RunSpec = r["spec"]
        spec = dict(
            dataset=s.dataset,
            norm=s.norm,
            placement=s.placement,
            batch_size=s.batch_size,
            lr=s.lr,
            init=s.resolved_init,
            profile=s.profile,
            seed=s.seed,
        )
        extra = dict(
            optimizer=s.optimizer,
            momentum=s.momentum,
            init_scale=s.init_scale,
            epochs=s.epochs,
            hidden="-".join(map(str, s.hidden)),
            activation=s.activation,
            train_limit=s.train_limit,
            test_limit=s.test_limit,
            noise=int(s.noise),
            diverged_epoch=r["diverged_epoch"],
            config_hash=s.config_hash(),
            device=r["device"],
            precise_bn=int(s.precise_bn),
        )
        for e in epochs.get(r["run_id"], []):
            e = {
                **e,
                **{c: None if math.isnan(e[c]) else e[c] for c in EPOCH_COLS_V1},
            }  # empty, not 'nan'
            rows.append(
                dict(
                    run_id=r["run_id"],
                    **spec,
                    **e,
                    diverged=int(r["diverged_epoch"] == e["epoch"]),
                    **extra,
                )
            )
    return [{c: row[c] for c in RESULT_COLUMNS + EXTRA_COLUMNS + ADDED_COLUMNS} for row in rows]


def write_results_csv(rows: list[dict], path: str | Path) -> None:
    """results.csv: the rows' columns in order (RESULT_COLUMNS first), NaN written as 'nan'."""
    cols = list(rows[0]) if rows else list(RESULT_COLUMNS + EXTRA_COLUMNS + ADDED_COLUMNS)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, cols)
    w.writeheader()
    w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    write_text(path, buf.getvalue())
