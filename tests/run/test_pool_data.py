"""What the worker pool writes to the temp folder: only the rows the runs use, and only where there is
room."""

import shutil

import numpy as np

from bnlab.config import RunSpec
from bnlab.data import Dataset
from bnlab.run import pool_data as L


def _ds(n=1000, m=300):
    return Dataset(
        "mnist",
        np.zeros((n, 784), np.float32),
        np.zeros(n, np.int64),
        np.zeros((m, 784), np.float32),
        np.zeros(m, np.int64),
        "test",
        10,
    )


def test_the_pool_writes_only_the_rows_the_runs_use():
    ds = {"mnist": _ds()}
    cut = L.used([[RunSpec(train_limit=200, test_limit=50)], [RunSpec(train_limit=500, batch_size=64)]], ds)
    assert cut["mnist"].x_train.shape == (500, 784) and cut["mnist"].x_test.shape == (300, 784)
    full = L.used([[RunSpec(train_limit=200)], [RunSpec()]], ds)
    assert full["mnist"].x_train.shape == (1000, 784)


def test_no_room_in_the_temp_folder_is_said_not_crashed(monkeypatch):
    data = {"mnist": _ds()}
    assert L.room(data) is None  # 4 MB fit anywhere here
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 10**5, 10**5))
    why = L.room(data)
    assert "has 0 MB free" in why and "needs 5 MB" in why
