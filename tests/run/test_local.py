"""Training flushes denormal floats to zero in its own thread, and leaves the caller's setting as it was."""

import os
import signal
import threading
import time

import pytest
import torch

from bnlab.config import RunSpec
from bnlab.core.train import train_stack
from bnlab.run import local as run_local
from bnlab.run.jobs import Progress, plan_stacks
from bnlab.run.local import Local
from helpers import learnable_data

BIG = 1 << 21  # elements: enough for torch to split an element-wise op over its threads


def _all_threads_flush() -> float:
    """Fraction of a subnormal product flushed to zero, over a tensor every OpenMP thread works on."""
    z = torch.full((BIG,), 1e-30) * 1e-9  # 1e-39 is subnormal in float32
    return (z == 0).float().mean().item()


def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(v=fn()))
    t.start()
    t.join()
    return out["v"]


def test_the_probe_reads_the_setting():
    def probe():
        torch.set_flush_denormal(False)
        off = run_local.flushes_denormals()
        assert torch.set_flush_denormal(True)  # x86 with DAZ: the machines bnlab runs on
        on = run_local.flushes_denormals()
        torch.set_flush_denormal(False)
        return off, on, run_local.flushes_denormals()

    assert _in_thread(probe) == (False, True, False)


def test_flushed_training_thread_flushes_everywhere_and_the_caller_is_untouched():
    torch.randn(512, 512).mul(2).sum()  # the caller's OpenMP team exists already
    before = (run_local.flushes_denormals(), _all_threads_flush())
    assert before == (False, 0.0)
    inside = run_local.flushed(lambda tick: (run_local.flushes_denormals(), _all_threads_flush()))
    assert inside == (True, 1.0)  # the training thread and all its OpenMP threads
    assert (run_local.flushes_denormals(), _all_threads_flush()) == before


def test_a_caller_that_flushes_keeps_flushing():
    def caller():
        torch.set_flush_denormal(True)
        run_local.flushed(lambda tick: None)
        on = run_local.flushes_denormals()
        torch.set_flush_denormal(False)
        return on

    assert _in_thread(caller)


def test_errors_reach_the_caller():
    def boom(tick):
        raise ValueError("from the training thread")

    with pytest.raises(ValueError, match="from the training thread"):
        run_local.flushed(boom)


def test_ctrl_c_stops_the_training_thread():
    steps = []

    def train(tick):
        while True:
            tick(1)
            steps.append(1)
            time.sleep(0.01)

    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        run_local.flushed(train)
    n = len(steps)
    time.sleep(0.1)
    assert n > 0 and len(steps) == n  # stopped, not left running
    assert not any(t.name == "bnlab-train" for t in threading.enumerate())


def test_results_and_versions_from_the_local_backend():
    """In this process, training runs flushed and gives the numbers train_stack gives in a flushing thread;
    the versions' thread count is the training thread's."""
    data = learnable_data(200, 100)
    specs = [
        RunSpec(norm=n, epochs=2, batch_size=50, seed=s, train_limit=200, test_limit=100)
        for n in ("none", "batch")
        for s in range(2)
    ]

    def ref():
        torch.set_flush_denormal(True)
        return train_stack(specs, data)

    expected = _in_thread(ref)

    class DS:  # a Dataset's fields, what Local needs
        name, n_classes = "mnist", 10
        x_train, y_train, x_test, y_test = (
            t.numpy() for t in (data.x_train, data.y_train, data.x_test, data.y_test)
        )

    with Local("cpu") as local:
        [(results, vers)] = list(local.run(plan_stacks(specs, 16), {"mnist": DS}, Progress()))

    def strip(rs):
        return [[{k: v for k, v in e.items() if k != "wall_s"} for e in r.epochs] for r in rs]

    assert strip(results) == strip(expected)  # bit for bit
    assert vers["threads"] == torch.get_num_threads()
    assert local.plan.workers == 1
