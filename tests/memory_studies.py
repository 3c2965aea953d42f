"""Studies built in memory (no store), for simulations of many studies: `study_data` makes a StudyData from
per-run final and epoch-1 accuracies, as `StudyData.load` would from a store."""

import dataclasses
import math

import numpy as np

from bnlab.config import RunSpec
from bnlab.records import EPOCH_COLS
from bnlab.studydata import Config, Run, StudyData


def _run(spec: RunSpec, acc1: float, acc: float, gap: float) -> Run:
    """A two-epoch run: test accuracy acc1 after epoch 1 and acc after epoch 2, train − test gap `gap`."""
    m = {c: np.full(2, math.nan) for c in EPOCH_COLS}
    m.update(
        epoch=np.array([1.0, 2.0]),
        steps=np.array([100.0, 200.0]),
        test_acc=np.array([acc1, acc]),
        train_acc=np.array([acc1, acc]) + gap,
        train_acc_eval=np.array([acc1, acc]) + gap,
        wall_s=np.array([1.0, 2.0]),
    )
    evals = {k: np.array([]) for k in ("step", "test_acc", "wall_s")}
    return Run(spec.run_id, spec, None, "cpu", {}, m, evals)


def study_data(name: str, cells: dict[RunSpec, tuple], varying: list[str]) -> StudyData:
    """cells: a spec (its seed ignored) → (acc1, acc, gap), each an array over seeds 0..n-1."""
    configs = []
    for spec, (acc1, acc, gap) in cells.items():
        runs = [
            _run(dataclasses.replace(spec, seed=s), a1, a, g)
            for s, (a1, a, g) in enumerate(zip(acc1, acc, gap))
        ]
        configs.append(Config(spec, ", ".join(str(getattr(spec, f)) for f in varying), runs))
    return StudyData(name, {"spec": {}}, configs, varying)
