"""The training path is short: from the CLI's entry (bnlab.cli.main) to the training step's first matmul,
the stack crosses at most MAX_FILES of bnlab's source files, the training thread's creator included."""

import threading
import traceback
from pathlib import Path

import torch

import bnlab
from bnlab import data
from bnlab.cli import main
from helpers import learnable_data

SRC = Path(bnlab.__file__).resolve().parent
MAX_FILES = 6
MATMULS = ("baddbmm", "bmm", "matmul")  # the fast step's and the autograd step's first matmul


def _tiny_mnist(name, data_dir=None):
    d = learnable_data(256, 64)
    arrays = (d.x_train, d.y_train, d.x_test, d.y_test)
    return data.Dataset(name, *(a.numpy() for a in arrays), source="test", n_classes=10)


def test_the_cli_reaches_the_matmul_through_at_most_six_files(tmp_path, monkeypatch):
    spawned: dict[threading.Thread, list] = {}  # a thread → the stack that started it

    def stack() -> list:  # this thread's stack, below the stacks of the threads that started it
        return spawned.get(threading.current_thread(), []) + traceback.extract_stack()[:-2]

    real_start = threading.Thread.start

    def start(self):
        spawned[self] = stack()
        real_start(self)

    first: list = []

    def recording(name):
        real = getattr(torch, name)

        def matmul(*args, **kw):
            if not first:
                first.append(stack())
            return real(*args, **kw)

        return matmul

    monkeypatch.setattr(threading.Thread, "start", start)
    for name in MATMULS:
        monkeypatch.setattr(torch, name, recording(name))
    monkeypatch.setattr(data, "load", _tiny_mnist)
    argv = ["run", "--norm", "batch", "--epochs", "1", "--device", "cpu", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    assert first, "no matmul was recorded"
    files = []
    for frame in first[0]:
        path = Path(frame.filename).resolve()
        if path.is_relative_to(SRC) and (rel := str(path.relative_to(SRC))) not in files:
            files.append(rel)
    assert files[0] == "cli.py" and len(files) <= MAX_FILES, files
