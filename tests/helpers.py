"""Helpers shared by test modules in several folders (tests/ is on sys.path through conftest.py)."""

import os
import subprocess
import sys
import threading

import pytest

from bnlab import data
from bnlab.records import NUMERICS

# the versions a generated store's runs are saved with (Store.save), at this bnlab's numerics
VERSIONS = {
    "bnlab": "0.1.0",
    "torch": "x",
    "python": "3.11",
    "device": "cpu",
    "threads": 1,
    "numerics": NUMERICS,
}

needs_mnist = pytest.mark.skipif(
    not data.available("mnist"),
    reason="real MNIST not found: set BNLAB_DATA_DIR to a folder holding mnist/ (CI does)",
)


def bnlab(*args, env=None):
    """Run the CLI as a user does, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "bnlab", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def learnable_data(n_train: int, n_test: int):
    """A learnable 10-class problem of 784-pixel images (labels from a fixed random linear map), as
    DeviceData: the first n_train of one seeded draw for training, the next n_test for testing."""
    import torch

    from bnlab.core.train import DeviceData

    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_train + n_test, 784, generator=g)
    y = (x @ torch.randn(784, 10, generator=g)).argmax(1)
    return DeviceData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10)


def in_thread(fn):
    """fn() in a new plain thread (its own torch settings); its result."""
    out = {}
    t = threading.Thread(target=lambda: out.update(v=fn()))
    t.start()
    t.join()
    return out["v"]
