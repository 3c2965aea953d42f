"""TensorBoard: one TensorBoard run per bnlab run, grouped in a folder per study. Needs bnlab[tensorboard].

    DIR/<study>/events.out.tfevents.bnlab            the HParams experiment: hyperparameters, metric test_acc
    DIR/<study>/<run_id>/events.out.tfevents.bnlab   the run: its configuration (HParams session), one
                                                     scalar per epoch for each metric, at the step count,
                                                     and what it recorded between epochs (eval/…, probe/…)

Scalars are tagged with results.csv's column names (train_loss, train_acc, test_loss, test_acc, and
train_loss_eval, train_acc_eval where the store has them), at the run's optimizer step count after
that epoch; their wall time is the study's start plus the run's training seconds, so TensorBoard's
"relative" axis reads training time. A run that evaluated every `eval_every` steps or recorded probes
also has eval/test_loss, eval/test_acc and probe/NAME/layerL (probe/NAME for whole-model values) at
their steps (export.source.step_series). The HParams session of a run holds every RunSpec field but the
seed, grouped by configuration (config_hash), so the HParams table compares configurations across
seeds; its metric is test_acc, whose last value is the final test accuracy; a run that diverged
ends with status FAILURE.

Written with TensorBoard's own protos and record writer (no torch, no TensorFlow). Each event file
is written whole and atomically under a fixed name, so exporting again replaces it rather than
adding a second file of the same points.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import RunSpec
from ..errors import ConfigError
from ..outputs import write_with
from ..store import Store
from .extras import need
from .source import epoch_metrics, step_series

EVENT_FILE = "events.out.tfevents.bnlab"
METRIC = "test_acc"
HPARAMS = tuple(f.name for f in dataclasses.fields(RunSpec) if f.name != "seed")


def modules():
    """TensorBoard's pieces used here, or the one-line ConfigError naming bnlab[tensorboard]."""
    need("tensorboard", "tensorboard")
    return (
        need("tensorboard.compat.proto.event_pb2", "tensorboard"),
        need("tensorboard.compat.proto.summary_pb2", "tensorboard"),
        need("tensorboard.plugins.hparams.summary_v2", "tensorboard"),
        need("tensorboard.summary.writer.record_writer", "tensorboard"),
    )


def folder_name(study: str) -> str:
    """A study's folder under DIR: its name with anything but letters, digits, '-', '_' and '.' replaced."""
    name = re.sub(r"[^\w.-]", "_", study)
    return "_" + name if name.strip(".") == "" else name


def prepare(logdir: str | Path) -> Path:
    """The --tensorboard folder, created; one ConfigError line if it cannot be."""
    p = Path(logdir)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--tensorboard {p} is a file; pass a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --tensorboard {p} ({e.strerror}); pass another folder") from None
    return p


def hparam_values(specs: list[RunSpec]) -> list[dict]:
    """Each spec's HPARAMS as TensorBoard values, one type per field across the study: bool, number
    (when every value is one), else text (tuples joined with '-', None as 'none')."""
    out: list[dict] = [{} for _ in specs]
    for f in HPARAMS:
        vals = [getattr(s, f) for s in specs]
        conv: Callable[[Any], bool | float | str]
        if all(isinstance(v, bool) for v in vals):
            conv = bool
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            conv = float
        else:
            conv = _text
        for d, v in zip(out, vals):
            d[f] = conv(v)
    return out


def _text(v) -> str:
    if isinstance(v, tuple):
        return "-".join(map(str, v)) or "none"
    return "none" if v is None else str(v)


def write_study(store: Store, study: str, logdir: str | Path) -> dict:
    """Write the study's runs under logdir/<study>/ (see the module doc); returns study, folder, runs,
    scalars."""
    event_pb2, summary_pb2, hp, record_writer = modules()
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    folder = prepare(logdir) / folder_name(study)
    meta = store.study(study) or {}
    base = float(meta.get("created") or 0.0)
    rows = store.results(study)
    runs = store.runs(study)
    metrics = epoch_metrics(rows)
    per_run: dict[str, list[dict]] = {}
    for r in rows:
        per_run.setdefault(r["run_id"], []).append(r)
    values = hparam_values([r["spec"] for r in runs])

    def event(**kw):
        return event_pb2.Event(**kw)

    def write(path: Path, events: list) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)

        def fill(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                w = record_writer.RecordWriter(f)
                for e in [event(wall_time=base, file_version="brain.Event:2"), *events]:
                    w.write(e.SerializeToString(deterministic=True))

        write_with(path, fill)

    if not runs:
        return dict(study=study, folder=folder, runs=0, scalars=0)
    varying = [f for f in HPARAMS if len({v[f] for v in values}) > 1]
    infos = []
    for f in varying + [
        f for f in HPARAMS if f not in varying
    ]:  # what differs first, as TensorBoard shows it
        info = api_pb2.HParamInfo(name=f, differs=f in varying)
        hp.Discrete(sorted({v[f] for v in values})).update_hparam_info(info)
        infos.append(info)
    metric = hp.Metric(
        METRIC, display_name="final test accuracy", description="test accuracy after the last epoch"
    )
    experiment = api_pb2.Experiment(
        hparam_infos=infos, metric_infos=[metric.as_proto()], time_created_secs=base
    )
    config = _hparams_summary(
        summary_pb2, metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)
    )
    write(folder / EVENT_FILE, [event(wall_time=base, summary=config)])
    n_scalars = 0
    between = step_series(store, study, per_run)
    for r, hv in zip(runs, values):
        rid, epochs = r["run_id"], per_run.get(r["run_id"], [])
        start = hp.hparams_pb(hv, trial_id=r["spec"].config_hash(), start_time_secs=base)
        evs = [event(wall_time=base, step=0, summary=start)]
        points = [(int(e["steps"]), float(e["wall_s"]), [(m, e[m]) for m in metrics]) for e in epochs]
        points += [(step, wall, [(tag, v)]) for tag, step, wall, v in between.get(rid, [])]
        for step, wall, tv in sorted(points, key=lambda p: p[0]):
            vals = [summary_pb2.Summary.Value(tag=t, simple_value=_float(v)) for t, v in tv]
            evs.append(event(wall_time=base + wall, step=step, summary=summary_pb2.Summary(value=vals)))
            n_scalars += len(vals)
        end_time = base + (float(epochs[-1]["wall_s"]) if epochs else 0.0)
        status = api_pb2.STATUS_FAILURE if r["diverged_epoch"] is not None else api_pb2.STATUS_SUCCESS
        end = _hparams_summary(
            summary_pb2,
            metadata.SESSION_END_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(
                session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time)
            ),
        )
        evs.append(event(wall_time=end_time, step=int(epochs[-1]["steps"]) if epochs else 0, summary=end))
        write(folder / folder_name(rid) / EVENT_FILE, evs)
    return dict(study=study, folder=folder, runs=len(runs), scalars=n_scalars)


def _hparams_summary(summary_pb2, tag: str, data):
    """A Summary holding HParams plugin data under `tag`, as the plugin's own summary functions write it."""
    from tensorboard.plugins.hparams import metadata

    return summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(
                tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
            )
        ]
    )


def _float(v) -> float:
    return math.nan if v is None else float(v)
