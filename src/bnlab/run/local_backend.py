"""Groups on this machine: one after another in this process, or side by side in worker processes.

Local on a CPU runs a job's groups side by side in worker processes
(concurrent.futures.ProcessPoolExecutor), `cpus_per_group` torch threads each (the last
group left running takes them all), when a short measurement on this machine says that is
faster than one stack at a time with every thread (run.tuning). Every stack trains in a thread
that flushes denormal floats to zero (run.worker.flushed). Results are bit-identical either
way (tests/run/test_resume.py).
"""

from __future__ import annotations

import dataclasses
import glob
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import torch

from ..config import RunSpec
from ..core.train import DeviceData
from ..errors import BnlabError
from ..outputs import alive
from ..records import RunResult
from . import tuning
from .jobs import Progress, group_cost, steps_of
from .worker import resolve_device, train_group, train_here

_WORKER_DATA: dict = {}
_WORKER_COUNTS: dict = {}  # waiting, running: groups not yet started / training now (shared by the pool)
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _used(groups: list[list[RunSpec]], datasets: dict) -> dict:
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


def _to_files(datasets: dict, folder: str) -> dict:
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


def _room(data: dict) -> str | None:
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


TMP_PREFIX = "bnlab-data-"


def sweep_stale() -> None:
    """Remove the data folders of drivers that died without cleaning up (kill -9): bnlab-data-<pid>-*."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{TMP_PREFIX}*-*")):
        pid = os.path.basename(path)[len(TMP_PREFIX) :].split("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


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

    def __init__(self, device: str = "auto", *, cpus_per_group: int | None = None):
        self.device = resolve_device(device)
        self.cpus_per_group = cpus_per_group
        self.pool = None
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
            )
        else:
            self.plan = tuning.Plan(
                1,
                threads,
                why="one stack at a time: "
                + ("a study that measures time" if exclusive else str(self.device)),
            )
        if self.plan.workers >= 2:
            data = _used(groups, datasets)
            if (why := _room(data)) is None:
                yield from self._pool(
                    groups, data, n_train, self.plan.workers, self.plan.cpus, threads, progress
                )
                return
            print(
                f"bnlab: {why}; training one stack at a time in this process (set TMPDIR to a larger folder to "
                "train side by side)",
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
            yield train_here(group, cache[key], progress=lambda n, K=K: progress.advance(n * K))

    def _pool(self, groups, data, n_train: dict, workers: int, cpus: int, threads: int, progress: Progress):
        """`data`: the datasets cut to what the groups use (_used); `n_train` the full training set sizes."""
        cost = [group_cost(g, n_train[g[0].dataset]) for g in groups]
        sweep_stale()
        self.tmp = tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        files = _to_files(data, self.tmp.name)
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
