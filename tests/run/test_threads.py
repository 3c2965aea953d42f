"""Training threads (bnlab.run.local): they flush denormal floats to zero, leave the caller's setting as it
was, and none is left inside torch after an interrupt."""

import os
import signal
import threading
import time

import pytest
import torch

from bnlab.run import local as run_threads
from helpers import in_thread

BIG = 1 << 21  # elements: enough for torch to split an element-wise op over its threads


def _all_threads_flush() -> float:
    """Fraction of a subnormal product flushed to zero, over a tensor every OpenMP thread works on."""
    z = torch.full((BIG,), 1e-30) * 1e-9  # 1e-39 is subnormal in float32
    return (z == 0).float().mean().item()


def test_the_probe_reads_the_setting():
    def probe():
        torch.set_flush_denormal(False)
        off = run_threads.flushes_denormals()
        assert torch.set_flush_denormal(True)  # x86 with DAZ: the machines bnlab runs on
        on = run_threads.flushes_denormals()
        torch.set_flush_denormal(False)
        return off, on, run_threads.flushes_denormals()

    assert in_thread(probe) == (False, True, False)


def test_flushed_training_thread_flushes_everywhere_and_the_caller_is_untouched():
    torch.randn(512, 512).mul(2).sum()  # the caller's OpenMP team exists already
    before = (run_threads.flushes_denormals(), _all_threads_flush())
    assert before == (False, 0.0)
    inside = run_threads.flushed(lambda tick: (run_threads.flushes_denormals(), _all_threads_flush()))
    assert inside == (True, 1.0)  # the training thread and all its OpenMP threads
    assert (run_threads.flushes_denormals(), _all_threads_flush()) == before


def test_a_caller_that_flushes_keeps_flushing():
    def caller():
        torch.set_flush_denormal(True)
        run_threads.flushed(lambda tick: None)
        on = run_threads.flushes_denormals()
        torch.set_flush_denormal(False)
        return on

    assert in_thread(caller)


def test_errors_reach_the_caller():
    def boom(tick):
        raise ValueError("from the training thread")

    with pytest.raises(ValueError, match="from the training thread"):
        run_threads.flushed(boom)


def test_ctrl_c_stops_the_training_thread():
    steps = []

    def train(tick):
        while True:
            tick(1)
            steps.append(1)
            time.sleep(0.01)

    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        run_threads.flushed(train)
    n = len(steps)
    time.sleep(0.1)
    assert n > 0 and len(steps) == n  # stopped, not left running
    assert not any(t.name == "bnlab-train" for t in threading.enumerate())


def test_ctrl_c_stops_every_thread_side_by_side():
    steps = [[], []]

    def train(w):
        def run(tick):
            while True:
                tick(1)
                steps[w].append(1)
                time.sleep(0.01)

        return run

    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        run_threads.flushed_each([train(0), train(1)])
    counts = [len(s) for s in steps]
    time.sleep(0.1)
    assert all(c > 0 for c in counts) and [len(s) for s in steps] == counts
    assert not any(t.name == "bnlab-train" for t in threading.enumerate())


def test_side_by_side_results_in_order_and_the_first_error():
    assert run_threads.flushed_each([lambda tick, i=i: i * i for i in range(4)]) == [0, 1, 4, 9]

    def boom(tick):
        raise ValueError("second")

    with pytest.raises(ValueError, match="second"):
        run_threads.flushed_each([lambda tick: 1, boom])


def test_an_interrupt_while_threads_start_leaves_none_inside_torch(monkeypatch):
    """The race that aborted a SIGTERMed study 1 time in 20 (exit -6): the signal lands after a thread is
    started but before the caller waits for it. No thread may then begin its work, and none is left."""
    started = []
    real_start = threading.Thread.start

    def start_then_interrupt(self):
        real_start(self)
        started.append(self)
        if len(started) == 2:
            raise KeyboardInterrupt  # as a signal handler raises, between two bytecodes

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    calls = []
    with pytest.raises(KeyboardInterrupt):
        run_threads.flushed_each([calls.append] * 3)
    monkeypatch.undo()
    for t in started:
        t.join(2)
    assert len(started) == 2 and not any(t.is_alive() for t in started)
    assert calls == []  # no train(tick) began: the threads saw `stop` before touching torch
