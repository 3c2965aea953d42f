"""The datasets handed to pool workers: cut to what the groups use, written as .npy files that the workers
map read-only, in a temp folder that must have room; folders of drivers that died are swept."""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import tempfile

import numpy as np

from ..config import RunSpec
from ..outputs import alive

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
TMP_PREFIX = "bnlab-data-"


def used(groups: list[list[RunSpec]], datasets: dict) -> dict:
    """Per dataset the groups train on, the arrays cut to what they use: the largest train_limit and
    test_limit among its groups (None: all of it). Workers then map only those rows."""
    lim: dict[str, list] = {}
    for g in groups:
        s = g[0]
        cur = lim.setdefault(s.dataset, [0, 0])
        for i, v in enumerate((s.train_limit, s.test_limit)):
            cur[i] = None if v is None or cur[i] is None else max(cur[i], v)
    return {
        n: dataclasses.replace(
            datasets[n],
            x_train=datasets[n].x_train[:tr],
            y_train=datasets[n].y_train[:tr],
            x_test=datasets[n].x_test[:te],
            y_test=datasets[n].y_test[:te],
        )
        for n, (tr, te) in lim.items()
    }


def to_files(datasets: dict, folder: str) -> dict:
    """Each dataset's arrays as .npy files in `folder` (workers map them; a few hundred MB through the
    spawn pipe would block the driver if a worker died before reading them): {name: (Dataset without
    arrays, {field: path})}."""
    out = {}
    for name, ds in datasets.items():
        paths = {f: os.path.join(folder, f"{name}.{f}.npy") for f in ARRAYS}
        for f, path in paths.items():
            np.save(path, getattr(ds, f))
        out[name] = (dataclasses.replace(ds, **dict.fromkeys(ARRAYS)), paths)
    return out


def room(data: dict) -> str | None:
    """None when the temp folder has room for the workers' data files (with 10% to spare), else why not."""
    need = sum(getattr(ds, f).nbytes for ds in data.values() for f in ARRAYS) * 1.1 + 1e6
    tmp = tempfile.gettempdir()
    try:
        free = shutil.disk_usage(tmp).free
    except OSError as e:
        return f"the temp folder {tmp} cannot be used ({e.strerror})"
    return (
        None
        if free >= need
        else f"the temp folder {tmp} has {free / 1e6:.0f} MB free, the workers' data needs "
        f"{need / 1e6:.0f} MB"
    )


def sweep_stale() -> None:
    """Remove the data folders of drivers that died without cleaning up (kill -9): bnlab-data-<pid>-*."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{TMP_PREFIX}*-*")):
        pid = os.path.basename(path)[len(TMP_PREFIX) :].split("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
