"""From RunSpecs to stacked training jobs (groups), run by a backend; results go to the store.

Specs that share a stack key (and one norm kind among the members that have
one) form a group of at most `max_stack` members. Runs already in the store,
keyed by (config_hash, seed), are skipped unless `fresh`. A backend trains the
groups, on this machine (`local`) or as Ray tasks on a cluster (`ray`, see
raybackend; imported only when asked for), and hands each finished group back
here: this process alone writes the store, run by run, each run in one
transaction, so an interrupted study loses only the groups in flight.

Local on a CPU runs a large job's groups side by side in worker processes
(concurrent.futures.ProcessPoolExecutor), `cpus_per_group` torch threads each (the last
group left running takes them all): on 2 cores two
one-thread stacks train 22-30% more model-epochs per second than one
two-thread stack, whose element-wise ops and small matmuls scale poorly.
Results are bit-identical either way (tests/test_resume.py).
"""
from __future__ import annotations

import dataclasses
import glob
import math
import multiprocessing
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from . import __version__
from .config import RunSpec
from .errors import BnlabError, ConfigError
from .store import Store
from .train import DeviceData, RunResult, stack_key, train_stack

DEFAULT_MAX_STACK = 16
BACKENDS = ("local", "ray")
# Below this many model-steps a job trains in this process: starting workers (~3 s) would not pay.
PARALLEL_MIN_STEPS = 50_000


def resolve_device(name: str) -> torch.device:
    """auto → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"device = {name!r} is not allowed; choose one of: auto, cpu, cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device = cuda but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def plan_stacks(specs: list[RunSpec], max_stack: int = DEFAULT_MAX_STACK, mix_none: bool = True) -> list[list[RunSpec]]:
    """Partition specs into stacks: equal stack_key, at most one (norm, placement)
    among normed members; members without a norm fill the first stack of their key
    (or, with mix_none False, stacks of their own: a stack's time is then its norm's)."""
    by_key: dict[tuple, dict[tuple, list[RunSpec]]] = {}
    for s in specs:
        kind = ("none",) if s.norm == "none" else (s.norm, s.placement)
        by_key.setdefault(stack_key(s), {}).setdefault(kind, []).append(s)
    stacks = []
    for kinds in by_key.values():
        plain = kinds.pop(("none",), [])
        groups = list(kinds.values())
        if groups and mix_none:
            groups[0] = plain + groups[0]
        elif plain:
            groups = [plain] + groups
        for g in groups:
            n = math.ceil(len(g) / max_stack)
            size = math.ceil(len(g) / n)
            stacks += [g[i:i + size] for i in range(0, len(g), size)]
    return stacks


def versions(device: torch.device) -> dict:
    return dict(bnlab=__version__, torch=torch.__version__, python=platform.python_version(),
                device=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
                threads=torch.get_num_threads())


@dataclass
class Progress:
    """Callbacks the CLI wires to a rich progress bar; all optional."""

    start: Callable[[int, int, int], None] = lambda total_steps, total_runs, total_groups: None   # noqa: E731
    advance: Callable[[int], None] = lambda steps: None                                         # noqa: E731
    group_done: Callable[[int], None] = lambda runs: None                                       # noqa: E731


def steps_of(spec: RunSpec, n_train: int) -> int:
    n = min(spec.train_limit or n_train, n_train)
    return math.ceil(n / spec.batch_size) * spec.epochs


def check_against_data(specs: list[RunSpec], datasets: dict) -> None:
    """Batch sizes and limits that the dataset cannot serve: one ConfigError, before anything runs."""
    for s in specs:
        n, m = len(datasets[s.dataset].y_train), len(datasets[s.dataset].y_test)
        for lim, avail in (("train_limit", n), ("test_limit", m)):
            if (getattr(s, lim) or 0) > avail:
                raise ConfigError(f"{lim} = {getattr(s, lim)} is more than the {avail} images {s.dataset} has")
        if s.batch_size > min(s.train_limit or n, n):
            raise ConfigError(f"batch_size = {s.batch_size} is larger than the {n} training images; "
                              f"choose batch_size <= {n}")


def train_group(group: list[RunSpec], ds, device: str, threads: int,
                progress: Callable[[int], None] | None = None) -> tuple[list[RunResult], dict]:
    """One group in a worker (a pool process or a Ray task): its results and the versions
    (threads included: the most it ran with) it ran with."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    s0 = group[0]
    results = train_stack(group, DeviceData.from_dataset(ds, dev, s0.train_limit, s0.test_limit), progress=progress)
    return results, versions(dev)


def group_cost(group: list[RunSpec], n_train: int) -> float:
    """Relative training time of a group on a CPU: members × steps × (batch size + 31); the 31
    fits this net's measured seconds per model-epoch, ∝ 1 + 31/B (1 thread, bs 16 to 128)."""
    s0 = group[0]
    return len(group) * steps_of(s0, n_train) * (s0.batch_size + 31)


_WORKER_DATA: dict = {}
_WORKER_COUNTS: dict = {}   # waiting, running: groups not yet started / training now (shared by the pool)
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


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


TMP_PREFIX = "bnlab-data-"


def _sweep_stale() -> None:
    """Remove the data folders of drivers that died without cleaning up (kill -9): bnlab-data-<pid>-*."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{TMP_PREFIX}*-*")):
        pid = os.path.basename(path)[len(TMP_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process
        return True
    return True


def _worker_init(driver: int, files: dict, waiting, running, threads: int) -> None:
    """Pool worker: dies with the driver (on Linux, even on SIGKILL; a driver that died while this worker
    was starting is caught by its parent pid); leaves SIGINT to the driver (it kills the workers); maps the
    datasets read-only from the driver's files; keeps the shared group counts and the threads there are."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    if os.getppid() != driver:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_COUNTS.update(waiting=waiting, running=running, threads=threads)
    for name, (bare, paths) in files.items():
        _WORKER_DATA[name] = dataclasses.replace(bare, **{f: np.load(p, mmap_mode="r") for f, p in paths.items()})


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
    """Groups on this machine, on one device. On a CPU, a job of at least PARALLEL_MIN_STEPS model-steps
    (or any job, given `cpus_per_group`) runs its groups side by side in min(groups, threads / cpus_per_group)
    worker processes, longest first; default cpus_per_group: torch's threads / groups, at least 1.
    Otherwise the groups run one after another in this process with torch's threads."""

    name = "local"

    def __init__(self, device: str = "auto", *, cpus_per_group: int | None = None):
        self.device = resolve_device(device)
        self.cpus_per_group = cpus_per_group
        self.pool = None
        self.tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> "Local":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:   # stop now: kill the workers (their groups are not in the store yet)
            procs = list((self.pool._processes or {}).values())   # no public kill before Python 3.14
            self.pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.kill()
            self.pool = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def run(self, groups: list[list[RunSpec]], datasets: dict, progress: Progress,
            exclusive: bool = False) -> Iterator[tuple[list[RunResult], dict]]:
        """Yield each group's results and the versions they were trained with, as each finishes.
        exclusive (a study that measures time): one group at a time, in this process, nothing beside it."""
        n_train = {name: len(ds.y_train) for name, ds in datasets.items()}
        threads = torch.get_num_threads()
        cpus = self.cpus_per_group or max(1, threads // max(len(groups), 1))
        workers = min(len(groups), threads // cpus)
        big = bool(self.cpus_per_group) or (
            sum(len(g) * steps_of(g[0], n_train[g[0].dataset]) for g in groups) >= PARALLEL_MIN_STEPS)
        if self.device.type == "cpu" and workers >= 2 and big and not exclusive:
            yield from self._pool(groups, datasets, n_train, workers, cpus, threads, progress)
            return
        vers = versions(self.device)
        cache: dict[tuple, DeviceData] = {}
        for group in groups:
            s0 = group[0]
            key = (s0.dataset, s0.train_limit, s0.test_limit)
            if key not in cache:
                cache.clear()
                cache[key] = DeviceData.from_dataset(datasets[s0.dataset], self.device, s0.train_limit, s0.test_limit)
            K = len(group)
            yield train_stack(group, cache[key], progress=lambda n, K=K: progress.advance(n * K)), vers

    def _pool(self, groups, datasets, n_train: dict, workers: int, cpus: int, threads: int, progress: Progress):
        used = {g[0].dataset for g in groups}
        cost = [group_cost(g, n_train[g[0].dataset]) for g in groups]
        _sweep_stale()
        self.tmp = tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        files = _to_files({k: datasets[k] for k in used}, self.tmp.name)
        ctx = multiprocessing.get_context("spawn")   # fork is unsafe once OpenMP threads exist
        counts = (ctx.Value("i", len(groups)), ctx.Value("i", 0))          # waiting, running
        self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                        initargs=(os.getpid(), files, *counts, threads))
        try:   # longest first, so that the last group to start is a short one
            futures = {self.pool.submit(_worker_task, groups[i], cpus): i
                       for i in sorted(range(len(groups)), key=lambda i: -cost[i])}
            for f in as_completed(futures):
                g = groups[futures[f]]
                try:
                    results, vers = f.result()
                except BrokenProcessPool:
                    raise BnlabError("a worker process died (out of memory?) or could not start (in a script, "
                                      "call bnlab under `if __name__ == '__main__':`); finished runs are saved, "
                                      "rerun to resume, or pass --cpus-per-group with all threads "
                                      "to train in this process") from None
                progress.advance(len(g) * steps_of(g[0], n_train[g[0].dataset]))
                yield results, vers
        finally:
            self.__exit__()


def open_backend(name: str = "local", device: str = "auto", *, ray_address: str | None = None,
                 cpus_per_group: int | None = None):
    """The backend `name` (not yet entered): Local, or raybackend.Ray, whose module alone imports ray."""
    if name not in BACKENDS:
        raise ConfigError(f"backend = {name!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    if cpus_per_group is not None and (isinstance(cpus_per_group, bool) or not isinstance(cpus_per_group, int)
                                       or cpus_per_group < 1):
        raise ConfigError(f"cpus_per_group = {cpus_per_group!r} is out of range; choose an integer >= 1")
    if name == "local":
        if ray_address:
            raise ConfigError("--ray-address needs --backend ray")
        return Local(device, cpus_per_group=cpus_per_group)
    try:
        from .raybackend import Ray
    except ImportError as e:
        if e.name != "ray":
            raise
        raise ConfigError("ray is not installed; pip install 'bnlab[ray]'") from None
    return Ray(device, address=ray_address, cpus_per_group=cpus_per_group)


def run_specs(specs: list[RunSpec], store: Store, study: str, *, backend=None, data_dir=None, fresh: bool = False,
              max_stack: int = DEFAULT_MAX_STACK, progress: Progress | None = None, mix_none: bool = True) -> dict:
    """Train what is not yet in the store on an entered `backend` (default Local()), committing
    each group's runs as the group finishes; returns counts and the training wall time."""
    from . import data as D

    progress = progress or Progress()
    backend = backend or Local()
    done = store.done()
    todo = [s for s in specs if fresh or (s.config_hash(), s.seed) not in done]
    store.link(study, [done[(s.config_hash(), s.seed)] for s in specs if s not in todo])
    datasets = {name: D.load(name, data_dir) for name in sorted({s.dataset for s in todo})}
    check_against_data(todo, datasets)
    groups = plan_stacks(todo, max_stack, mix_none)
    progress.start(sum(steps_of(s, len(datasets[s.dataset].y_train)) for s in todo), len(todo), len(groups))
    t0 = time.perf_counter()
    for results, vers in backend.run(groups, datasets, progress, exclusive=not mix_none):
        for r in results:
            store.save(study, r, vers)
        progress.group_done(len(results))
    return dict(total=len(specs), trained=len(todo), skipped=len(specs) - len(todo),
                wall_s=time.perf_counter() - t0, device=str(backend.device), backend=backend.name)
