"""pandas: a study's rows as a DataFrame (`bnlab.load`, `StudyResult.df`). Needs bnlab[pandas].

    >>> df = bnlab.load("bnlab-out/seed")                     # results.csv's rows: one per run and epoch
    >>> df[df.epoch == df.epoch.max()].groupby(["norm", "batch_size"]).test_acc.agg(["mean", "std", "count"])
    >>> probes = bnlab.load("bnlab-out/activations", table="probes")

Columns as in results.csv (results_csv.RESULT_COLUMNS first, in order, then EXTRA_COLUMNS, ADDED_COLUMNS
and any column a newer store adds), typed: whole numbers as int64 (Int64 where a value may be missing:
train_limit, test_limit, diverged_epoch), measurements as float64 (NaN where a run diverged), `diverged`
and `noise` as bool, names as strings."""

from __future__ import annotations

from pathlib import Path

from .. import reading
from ..errors import ConfigError
from ..results_csv import ADDED_COLUMNS, EXTRA_COLUMNS, RESULT_COLUMNS
from ..store import Store
from .extras import need
from .source import find, pick_study

TABLES = ("results", "probes", "evals")
MAX_CSV_BYTES = 1 << 30  # a results.csv of a million runs is a few hundred MB
INTS = ("batch_size", "seed", "epoch", "steps", "epochs", "step", "layer")
NULLABLE_INTS = ("train_limit", "test_limit", "diverged_epoch")
BOOLS = ("diverged", "noise", "precise_bn")
FLOATS = (
    "lr",
    "momentum",
    "init_scale",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "wall_s",
    "train_loss_eval",
    "train_acc_eval",
    "train_loss_noise",
    "value",
)
STRINGS = (
    "run_id",
    "dataset",
    "norm",
    "placement",
    "init",
    "profile",
    "optimizer",
    "hidden",
    "activation",
    "config_hash",
    "device",
    "name",
)
RUN_COLUMNS = RESULT_COLUMNS[: RESULT_COLUMNS.index("seed") + 1]  # what names a run: run_id … seed


def load(path: str | Path, study: str | None = None, table: str = "results"):
    """A pandas.DataFrame of a study from `path`: an output folder (holding bnlab.sqlite, or results.csv
    alone), a store file or a results.csv. `study` picks one when a store holds several (default: the
    only one). `table`: "results" (one row per run and epoch, results.csv's columns), "probes" (one row
    per run, step, layer and probe: RUN_COLUMNS, step, layer, name, value) or "evals" (test loss and
    accuracy every eval_every steps: RUN_COLUMNS, step, test_loss, test_acc, wall_s)."""
    need("pandas", "pandas")
    if table not in TABLES:
        raise ConfigError(f"table {table!r} is not one of {', '.join(TABLES)}")
    src = find(path)
    if src.store is None:
        if study is not None:
            raise ConfigError(
                f"{src.csv} is a results.csv alone, which names no study; pass the folder or store "
                "that holds the study to pick one"
            )
        if table != "results":
            raise ConfigError(f"{src.csv} is a results.csv alone; {table} live in the store (bnlab.sqlite)")
        assert src.csv is not None  # find: a store, or else a results.csv
        return read_results_csv(src.csv)
    name = pick_study(src.store, study)
    with Store(src.store) as st:
        rows = st.results(name)
        if table == "results":
            return results_frame(rows)
        per_run = st.probes(name) if table == "probes" else st.evals(name)
    ids = {r["run_id"]: {c: r[c] for c in RUN_COLUMNS} for r in rows}
    cols = (
        ("step", "layer", "name", "value")
        if table == "probes"
        else ("step", "test_loss", "test_acc", "wall_s")
    )
    return typed(
        need("pandas", "pandas").DataFrame.from_records(
            [{**ids[rid], **item} for rid, items in per_run.items() for item in items],
            columns=[*RUN_COLUMNS, *cols],
        )
    )


def results_frame(rows: list[dict]):
    """Store.results rows (StudyResult.rows) as a typed DataFrame, columns in the rows' order."""
    pd = need("pandas", "pandas")
    cols = list(rows[0]) if rows else list(RESULT_COLUMNS + EXTRA_COLUMNS + ADDED_COLUMNS)
    return typed(pd.DataFrame.from_records(rows, columns=cols))


def read_results_csv(path: str | Path):
    """A results.csv written by bnlab, typed as results_frame types the store's rows."""
    pd = need("pandas", "pandas")

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{path} {problem}; pass a results.csv that bnlab wrote")

    reading.check_file(path, MAX_CSV_BYTES, fail)
    try:
        df = pd.read_csv(
            path, dtype={c: str for c in STRINGS}, keep_default_na=False, na_values=["", "nan", "NaN", "-nan"]
        )
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path} as a results.csv ({str(e).splitlines()[0]})") from None
    if missing := [c for c in RESULT_COLUMNS if c not in df.columns]:
        raise ConfigError(f"{path} is not a bnlab results.csv: it lacks the columns {', '.join(missing)}")
    return typed(df)


def typed(df):
    """Columns cast to their types (INTS, NULLABLE_INTS, BOOLS, FLOATS); strings and unknown columns as
    read."""
    casts = {
        **{c: "int64" for c in INTS},
        **{c: "Int64" for c in NULLABLE_INTS},
        **{c: "bool" for c in BOOLS},
        **{c: "float64" for c in FLOATS},
    }
    try:
        return df.astype({c: t for c, t in casts.items() if c in df.columns})
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"a column does not hold the values bnlab writes ({str(e).splitlines()[0]})"
        ) from None
