"""Training on this machine: the Local backend, and one stack where it trains (this process, a pool
worker or a Ray task): device, versions, and the training thread that flushes denormal floats to zero
and never outlives an interrupt.

Local on a CPU runs a job's groups side by side in worker processes
(concurrent.futures.ProcessPoolExecutor), `cpus_per_group` torch threads each (the last
group left running takes them all), when a short measurement on this machine says that is
faster than one stack at a time with every thread (run.tuning). Every stack trains in a thread
that flushes denormal floats to zero (flushed). Results are bit-identical either
way (tests/run/test_resume.py).

Denormals build up in training (tiny gradients, Adam's second moments, saturated activations) and cost
many times a normal float on some CPUs. torch.set_flush_denormal sets the calling thread's MXCSR only:
OpenMP's worker threads, once started, keep theirs, so flushing in the caller would reach a fraction of
the work and leave the caller changed. A new thread's OpenMP team starts with its master's setting, so
training runs in new threads whose teams flush, and the caller's threads are never touched: nothing to
restore. Where flushing is unsupported (no DAZ), set_flush_denormal returns False and nothing changes.

A process must not exit while one of these threads is inside torch: Python ends a daemon thread that
wants the GIL back after finalization by unwinding it, and unwinding through torch's C++ frames aborts
the process ("terminate called without an active exception", exit -6 instead of 130 or 143). So a
thread touches torch only once the caller has released it (`go`) inside the block that handles an
interrupt, and that block waits for every released thread to stop at its next step.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import platform
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import numpy as np
import torch

from .._version import __version__
from ..config import RunSpec
from ..core.train import DeviceData, train_stack
from ..errors import BnlabError, ConfigError
from ..records import NUMERICS, RunResult
from . import tuning
from .jobs import Progress, group_cost, steps_of
from .pool_data import TMP_PREFIX, room, sweep_stale, to_files, used

_WORKER_DATA: dict = {}
_WORKER_COUNTS: dict = {}  # waiting, running: groups not yet started / training now (shared by the pool)

T = TypeVar("T")
Tick = Callable[[int], None]


def resolve_device(name: str) -> torch.device:
    """auto → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"device = {name!r} is not allowed; choose one of: auto, cpu, cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device = cuda but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def versions(device: torch.device) -> dict:
    """What a run was trained with, stored beside it."""
    return dict(
        bnlab=__version__,
        torch=torch.__version__,
        python=platform.python_version(),
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        threads=torch.get_num_threads(),
        numerics=NUMERICS,
    )


def flushes_denormals() -> bool:
    """Whether this thread flushes subnormal float32 to zero: torch has no getter, so compute 2 × the
    smallest subnormal (bits 0x1), which is the subnormal 0x2 unless flushed (then 0)."""
    tiny = torch.tensor([1], dtype=torch.int32).view(torch.float32)
    return int((tiny * 2).view(torch.int32)) == 0


class _Stopped(BaseException):
    """Raised inside a training thread at its next step once the caller was interrupted."""


def flushed(train: Callable[[Tick], T], progress: Tick | None = None) -> T:
    """train(tick) in a new flushing thread (see the module's doc); `tick(steps)` must be called every
    step (it forwards to `progress`, and stops the thread once the caller is interrupted)."""
    return flushed_each([train], progress)[0]


def flushed_each(trains: Sequence[Callable[[Tick], Any]], progress: Tick | None = None) -> list[Any]:
    """Each train(tick) in its own new flushing thread, all at once; their results in order, or the first
    error. Ctrl-C (or SIGTERM) in the caller stops every thread at its next step before it goes on up."""
    stop, go = threading.Event(), threading.Event()
    boxes: list[dict] = [{} for _ in trains]
    dones = [threading.Event() for _ in trains]

    def tick(n: int) -> None:
        if stop.is_set():
            raise _Stopped
        if progress is not None:
            progress(n)

    def body(train: Callable[[Tick], Any], box: dict, done: threading.Event) -> None:
        try:
            while not go.wait(0.1):  # pure Python until released: safe to abandon at exit
                pass
            if stop.is_set():
                raise _Stopped
            torch.set_flush_denormal(True)
            box["value"] = train(tick)
        except BaseException as e:  # handed to the caller, whatever it is
            box["error"] = e
        finally:
            done.set()

    threads = [
        threading.Thread(target=body, args=(tr, box, done), name="bnlab-train", daemon=True)
        for tr, box, done in zip(trains, boxes, dones)
    ]
    try:
        for t in threads:
            t.start()
        go.set()
        while not all(d.wait(0.2) for d in dones):  # not join(): a join interrupted may return early
            pass
    except BaseException:  # Ctrl-C in the caller: stop the released threads at their next step, go on up
        stop.set()
        released = go.is_set()
        go.set()  # threads not yet released now see `stop` and end without touching torch
        if released:
            _wait_out(threads)
        raise
    for t in threads:
        t.join()
    for box in boxes:
        if "error" in box:
            raise box["error"]
    return [box["value"] for box in boxes]


def _wait_out(threads: list[threading.Thread]) -> None:
    """Wait for stopping threads (one step each), through further Ctrl-Cs."""
    for t in threads:
        while t.is_alive():
            try:
                t.join(0.2)
            except KeyboardInterrupt:
                continue


def train_group(
    group: list[RunSpec], ds, device: str, threads: int, progress: Callable[[int], None] | None = None
) -> tuple[list[RunResult], dict]:
    """One group in a worker (a pool process or a Ray task): its results and the versions
    (threads included: the most it ran with) it ran with. On a CPU it trains in a flushed() thread."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    s0 = group[0]
    data = DeviceData.from_dataset(ds, dev, s0.train_limit, s0.test_limit)
    return train_here(group, data, progress)


def train_here(
    group: list[RunSpec], data: DeviceData, progress: Callable[[int], None] | None = None
) -> tuple[list[RunResult], dict]:
    """train_stack on data's device, in this process: on a CPU in a flushed() thread; with the versions
    (read where it trained: torch's thread count is per thread)."""
    dev = data.x_train.device

    def run(tick: Callable[[int], None] | None) -> tuple[list[RunResult], dict]:
        return train_stack(group, data, progress=tick), versions(dev)

    return flushed(run, progress) if dev.type == "cpu" else run(progress)


def _worker_init(driver: int, files: dict, waiting, running, threads: int) -> None:
    """Pool worker: dies with the driver (on Linux, even on SIGKILL; a driver that died while this worker
    was starting is caught by its parent pid); leaves SIGINT to the driver (it kills the workers); maps the
    datasets read-only from the driver's files; keeps the shared group counts and the threads there are."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != driver:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_COUNTS.update(waiting=waiting, running=running, threads=threads)
    for name, (bare, paths) in files.items():
        _WORKER_DATA[name] = dataclasses.replace(
            bare, **{f: np.load(p, mmap_mode="r") for f, p in paths.items()}
        )


def _worker_task(group: list[RunSpec], threads: int) -> tuple[list[RunResult], dict]:
    """One group; once it is the only group left (none waiting, no other running) it takes every
    thread, so the last stack of a study does not leave cores idle (numbers are the same either way)."""
    c = _WORKER_COUNTS
    with c["waiting"].get_lock():
        c["waiting"].value -= 1
    with c["running"].get_lock():
        c["running"].value += 1

    def widen(_steps: int) -> None:
        if c["waiting"].value == 0 and c["running"].value == 1 and torch.get_num_threads() < c["threads"]:
            torch.set_num_threads(c["threads"])

    try:
        return train_group(group, _WORKER_DATA[group[0].dataset], "cpu", threads, progress=widen)
    finally:
        with c["running"].get_lock():
            c["running"].value -= 1


class Local:
    """Groups on this machine, on one device. On a CPU, given `cpus_per_group` or when run.tuning.choose
    measures it to be faster, a job runs its groups side by side in min(groups, threads / cpus_per_group)
    worker processes, longest first; default cpus_per_group: torch's threads / groups, at least 1.
    Otherwise the groups run one after another in this process with torch's threads."""

    name = "local"

    def __init__(self, device: str = "auto", *, cpus_per_group: int | None = None, retune: bool = False):
        self.device = resolve_device(device)
        self.cpus_per_group = cpus_per_group
        self.retune = retune  # measure this machine again, not from the tuning file (run.tuning)
        self.pool: ProcessPoolExecutor | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.plan: tuning.Plan | None = None  # how the last run() trained (see run.tuning)

    def __enter__(self) -> Local:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:  # stop now: kill the workers (their groups are not in the store yet)
            procs = list((self.pool._processes or {}).values())  # no public kill before Python 3.14
            self.pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.kill()
            self.pool = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def run(
        self, groups: list[list[RunSpec]], datasets: dict, progress: Progress, exclusive: bool = False
    ) -> Iterator[tuple[list[RunResult], dict]]:
        """Yield each group's results and the versions they were trained with, as each finishes.
        exclusive (a study that measures time): one group at a time, in this process, nothing beside it."""
        n_train = {name: len(ds.y_train) for name, ds in datasets.items()}
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and not exclusive:
            self.plan = tuning.choose(
                groups,
                n_train,
                {n: ds.x_train.shape[1] for n, ds in datasets.items()},
                {n: ds.n_classes for n, ds in datasets.items()},
                threads,
                self.cpus_per_group,
                in_threads=flushed_each,
                retune=self.retune,
            )
        else:
            self.plan = tuning.Plan(
                1,
                threads,
                why="one stack at a time: "
                + ("a study that measures time" if exclusive else str(self.device)),
            )
        if self.plan.workers >= 2:
            data = used(groups, datasets)
            if (why := room(data)) is None:
                yield from self._pool(
                    groups, data, n_train, self.plan.workers, self.plan.cpus, threads, progress
                )
                return
            print(
                f"bnlab: {why}; training one stack at a time in this process (set TMPDIR to a larger "
                "folder to train side by side)",
                file=sys.stderr,
            )
        cache: dict[tuple, DeviceData] = {}
        for group in groups:
            s0 = group[0]
            key = (s0.dataset, s0.train_limit, s0.test_limit)
            if key not in cache:
                cache.clear()
                cache[key] = DeviceData.from_dataset(
                    datasets[s0.dataset], self.device, s0.train_limit, s0.test_limit
                )
            K = len(group)

            def advance(n: int, K: int = K) -> None:  # a stack of K models: K model-steps per step
                progress.advance(n * K)

            yield train_here(group, cache[key], progress=advance)

    def _pool(self, groups, data, n_train: dict, workers: int, cpus: int, threads: int, progress: Progress):
        """`data`: the datasets cut to what the groups use (pool_data.used); `n_train` the full training
        set sizes."""
        cost = [group_cost(g, n_train[g[0].dataset]) for g in groups]
        sweep_stale()
        self.tmp = tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        files = to_files(data, self.tmp.name)
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe once OpenMP threads exist
        counts = (ctx.Value("i", len(groups)), ctx.Value("i", 0))  # waiting, running
        self.pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(), files, *counts, threads)
        )
        try:  # longest first, so that the last group to start is a short one
            futures = {
                self.pool.submit(_worker_task, groups[i], cpus): i
                for i in sorted(range(len(groups)), key=lambda i: -cost[i])
            }
            for f in as_completed(futures):
                g = groups[futures[f]]
                try:
                    results, vers = f.result()
                except BrokenProcessPool:
                    raise BnlabError(
                        "a worker process died (out of memory?) or could not start (in a script, "
                        "call bnlab under `if __name__ == '__main__':`); finished runs are saved, "
                        "rerun to resume, or pass --cpus-per-group with all threads "
                        "to train in this process"
                    ) from None
                progress.advance(len(g) * steps_of(g[0], n_train[g[0].dataset]))
                yield results, vers
        finally:
            self.__exit__()
