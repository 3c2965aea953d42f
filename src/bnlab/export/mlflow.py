"""MLflow: one MLflow run per bnlab run, in an experiment named after the study. Needs bnlab[mlflow].

Each run gets params = every RunSpec field (seed included; tuples as '128-64', None as 'None'), metrics =
results.csv's per-epoch measurements (train_loss, train_acc, test_loss, test_acc, and train_loss_eval,
train_acc_eval where the store has them) plus `epoch`, each logged at the run's optimizer step count after
that epoch, what a run recorded between epochs at its step (eval/test_loss, eval/test_acc, probe/NAME/layerL:
export.source.step_series), and tags bnlab.run_id, bnlab.study, bnlab.seed, bnlab.version (the bnlab that
trained it), bnlab.config_hash, bnlab.device (and bnlab.diverged_epoch for a run that diverged); its MLflow
run name is the bnlab run_id.

Idempotent: runs already in the experiment (found by their bnlab.run_id tag, status FINISHED) are skipped; a
run left unfinished by an interrupted export (or a second copy of one) is deleted, and a missing run logged
again. A run is marked FINISHED only after all of its values are logged. A bnlab run retrained later (--fresh)
keeps its first export: delete that MLflow run to log it anew. MLflow's usage telemetry is turned off
(MLFLOW_DISABLE_TELEMETRY=true) unless the caller has set that variable."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from pathlib import Path

from ..config import RunSpec
from ..errors import ConfigError
from ..store import Store
from .extras import need
from .source import epoch_metrics, step_series

TAG = "bnlab.run_id"
DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
BATCH = 1000  # MLflow's most metrics in one log_batch


def tracking_uri(uri: str) -> str:
    """The URI as given, but a bare path to a .db/.sqlite file becomes sqlite:///ABSOLUTE_PATH."""
    if "://" not in uri and not uri.startswith("file:") and Path(uri).suffix in (".db", ".sqlite"):
        return "sqlite:///" + str(Path(uri).resolve())
    return uri


def modules(uri: str) -> None:
    """MLflow (and, for a database URI, SQLAlchemy and Alembic) importable, or the one-line ConfigError
    naming bnlab[mlflow]; a sqlite file's folder must exist. Opens nothing."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # bnlab sends nothing anywhere on its own
    need("mlflow", "mlflow")
    uri = tracking_uri(uri)
    if uri.split(":", 1)[0].split("+", 1)[0] in DB_SCHEMES:
        need("sqlalchemy", "mlflow")
        need("alembic", "mlflow")
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).parent
        if not folder.is_dir():
            raise ConfigError(
                f"--mlflow {uri}: folder {folder} does not exist; create it or pass another path"
            )


def client(uri: str):
    """An MlflowClient on `uri`, its store opened (a new database is created); MLflow missing or a store it
    refuses is one ConfigError line."""
    modules(uri)
    uri = tracking_uri(uri)
    for name in ("mlflow", "alembic"):  # "creating initial database tables" etc.: not for the user
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    errors: tuple = (MlflowException, OSError)
    if "sqlalchemy" in sys.modules:
        errors += (sys.modules["sqlalchemy"].exc.SQLAlchemyError,)
    try:
        c = MlflowClient(tracking_uri=uri)
        c.search_experiments(max_results=1)
    except errors as e:
        msg = str(e.message if hasattr(e, "message") else e)
        if "MLFLOW_ALLOW_FILE_STORE" in msg:
            raise ConfigError(
                f"MLflow refuses the file store {uri} (set MLFLOW_ALLOW_FILE_STORE=true to allow it); "
                "use a database such as --mlflow sqlite:///mlflow.db"
            ) from None
        raise ConfigError(
            f"MLflow cannot open {uri}: {msg.splitlines()[0] if msg else type(e).__name__}"
        ) from None
    return c


def params(spec: RunSpec) -> dict[str, str]:
    """Every RunSpec field as MLflow's text: tuples joined with '-' (hidden '128-64'), None as 'None'."""
    out = {}
    for f in dataclasses.fields(RunSpec):
        v = getattr(spec, f.name)
        out[f.name] = "-".join(map(str, v)) if isinstance(v, tuple) else str(v)
    return out


def log_study(store: Store, study: str, uri: str, mlflow_client=None) -> dict:
    """Log the study's runs into the experiment `study` at `uri`; returns study, experiment_id, logged,
    skipped."""
    c = mlflow_client or client(uri)
    from mlflow.entities import Metric, Param, RunTag, ViewType

    exp = c.get_experiment_by_name(study)
    if exp is not None and exp.lifecycle_stage != "active":
        raise ConfigError(
            f"MLflow experiment {study!r} at {uri} is deleted; restore it (mlflow experiments restore) "
            "or delete it for good (mlflow gc) first"
        )
    meta = store.study(study) or {}
    exp_id = (
        exp.experiment_id
        if exp
        else c.create_experiment(
            study, tags={"mlflow.note.content": meta.get("question") or "", "bnlab.study": study}
        )
    )
    have: dict[str, list] = {}
    token = None
    while True:
        page = c.search_runs([exp_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        for run in page:
            if TAG in run.data.tags:
                have.setdefault(run.data.tags[TAG], []).append(run.info)
        token = page.token
        if not token:
            break
    base = float(meta.get("created") or 0.0)
    rows = store.results(study)
    metrics = epoch_metrics(rows)
    per_run: dict[str, list[dict]] = {}
    for r in rows:
        per_run.setdefault(r["run_id"], []).append(r)
    between = step_series(store, study, per_run)
    logged = skipped = 0
    for r in store.runs(study):
        rid, spec = r["run_id"], r["spec"]
        old = have.get(rid, [])
        keep = next((i for i in old if i.status == "FINISHED"), None)
        for info in old:  # left RUNNING by an interrupted export, or a duplicate
            if info is not keep:
                c.delete_run(info.run_id)
        if keep is not None:
            skipped += 1
            continue
        epochs = per_run.get(rid, [])
        tags = {
            TAG: rid,
            "bnlab.study": study,
            "bnlab.seed": str(spec.seed),
            "bnlab.version": str(r["versions"].get("bnlab", "unknown")),
            "bnlab.config_hash": spec.config_hash(),
            "bnlab.device": str(r["device"]),
        }
        if r["diverged_epoch"] is not None:
            tags["bnlab.diverged_epoch"] = str(r["diverged_epoch"])
        run = c.create_run(exp_id, start_time=_ms(base), tags=tags, run_name=rid)
        values = [
            Metric(m, _float(e[m]), _ms(base + float(e["wall_s"])), int(e["steps"]))
            for e in epochs
            for m in (*metrics, "epoch")
        ]
        values += [
            Metric(tag, _float(v), _ms(base + wall), step) for tag, step, wall, v in between.get(rid, [])
        ]
        c.log_batch(
            run.info.run_id,
            params=[Param(k, v) for k, v in params(spec).items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        for i in range(0, len(values), BATCH):
            c.log_batch(run.info.run_id, metrics=values[i : i + BATCH])
        c.set_terminated(
            run.info.run_id, "FINISHED", end_time=_ms(base + float(epochs[-1]["wall_s"]) if epochs else base)
        )
        logged += 1
    return dict(study=study, experiment_id=exp_id, logged=logged, skipped=skipped)


def _ms(t: float) -> int:
    return int(round(t * 1000))


def _float(v) -> float:
    return math.nan if v is None else float(v)
