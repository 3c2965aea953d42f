"""`bnlab export PATH --tensorboard DIR --mlflow URI`: every study under PATH into each tool asked for.

>>> from bnlab.export.command import export
>>> export("bnlab-out/seed", tensorboard="tb", mlflow="sqlite:///mlflow.db")   # one line per study and tool
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..store import Store
from . import mlflow as ml
from . import tensorboard as tb
from .source import export_sources


def export(
    path: str | Path,
    *,
    studies: list[str] | None = None,
    tensorboard: str | Path | None = None,
    mlflow: str | None = None,
) -> list[str]:
    """Export the studies stored under `path` (all, or those named in `studies`) as TensorBoard runs under
    `tensorboard` and/or MLflow runs at the tracking URI `mlflow`; one line per study and tool says what
    was written. Missing extras, a bad PATH or target fail before anything is written."""
    if tensorboard is None and mlflow is None:
        raise ConfigError("bnlab export needs --tensorboard DIR and/or --mlflow URI")
    if tensorboard is not None:
        tb.modules()
    if mlflow is not None:
        ml.modules(mlflow)
    sources = export_sources(path, studies)
    if tensorboard is not None:
        tb.prepare(tensorboard)
    client = ml.client(mlflow) if mlflow is not None else None
    lines = []
    for store_path, names in sources:
        with Store(store_path) as st:
            for name in names:
                if tensorboard is not None:
                    r = tb.write_study(st, name, tensorboard)
                    lines.append(
                        f"tensorboard: {r['runs']} runs of {name} ({r['scalars']} scalars) → {r['folder']}"
                    )
                if client is not None and mlflow is not None:
                    r = ml.log_study(st, name, mlflow, client)
                    lines.append(
                        f"mlflow: {r['logged']} runs of {name} logged, {r['skipped']} already there → "
                        f"experiment {name!r} (id {r['experiment_id']}) at {ml.tracking_uri(mlflow)}"
                    )
    if tensorboard is not None:
        lines.append(f"view: tensorboard --logdir {tensorboard}")
    if mlflow is not None:
        lines.append(
            f"view: mlflow ui --backend-store-uri {ml.tracking_uri(mlflow)} (needs the full mlflow package)"
        )
    return lines
