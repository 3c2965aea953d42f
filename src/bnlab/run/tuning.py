"""How a CPU job trains on this machine: one stack at a time with every thread, or stacks side by side in
worker processes with fewer threads each, chosen from a short measurement (cached for the process).

Which is faster depends on the CPU: on a 2-core AMD EPYC two one-thread stacks side by side train more
model-epochs per second than one two-thread stack (element-wise ops and small matmuls scale poorly to the
second core), while on an Intel Xeon whose two CPUs were one core's hyper-threads, side by side was slower.
No fixed rule holds on both, so `choose` times the job's costliest stack shape both ways on synthetic data
(a few hundred steps, ~1-3 s, in threads of this process: stacks in threads contend as stacks in processes
do, for cores, caches and memory bandwidth; the GIL is released in every op) and picks the faster plan for
the whole job, counting the worker processes' start-up (WORKER_START_S).

A measurement is kept for later processes in $BNLAB_TUNING_CACHE (default ~/.cache/bnlab/tuning.json),
under this machine's key (`machine`: CPU model, the CPUs this process may use, torch's version and a hash
of the training code) and the probe's shape, so a machine measures each shape once, not once per study.
`retune` measures again and replaces the kept one. The file is a cache: unreadable, it is measured over
(said once on stderr); unwritable, nothing is kept (said once); two processes writing at once may lose
one's entry, never corrupt the file (written whole, then renamed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import environment
from ..config import RunSpec, stack_key
from ..core.train import DeviceData, train_stack
from .jobs import group_cost

InThreads = Callable[[list[Callable[[Callable[[int], None]], Any]]], list[Any]]  # each train(tick) at once

WORKER_START_S = 3.0  # spawning a worker, importing torch, mapping the data: 2.5-3.5 s measured on 2 cores
PROBE_STEPS = 150  # steps timed per stack, after as many as warm-up
# A slow CPU's seconds per unit of jobs.group_cost with 2 threads (3.5x this project's 2-core EPYC, 4.3e-6
# at bs 32 and K=16): a job whose serial time at this rate could not repay the workers' start-up is not
# measured at all.
SLOW_UNIT_S = 1.5e-5


@dataclass(frozen=True)
class Plan:
    """workers == 1: one stack at a time in this process with `cpus` (= all) threads; else `workers` worker
    processes with `cpus` threads each. serial_s, side_s: measured seconds per step of the probe stack alone
    with all threads, and per step of each of `workers` such stacks at once (None: not measured)."""

    workers: int
    cpus: int
    serial_s: float | None = None
    side_s: float | None = None
    why: str = ""

    @property
    def side_gain(self) -> float | None:
        """Model-steps per second side by side ÷ one stack at a time (> 1: side by side is faster)."""
        if self.serial_s is None or self.side_s is None:
            return None
        return self.serial_s * self.workers / self.side_s


CACHE_FORMAT = 1  # the tuning file's layout; a file of another is measured over
CACHE_MACHINES = 16  # machine keys kept in the file (newest first): one home shared by a cluster's nodes


@dataclass(frozen=True)
class Probe:
    """A measurement (see `measure`): seconds per step serial and side by side (None: not measured), when
    it was taken (UTC, ISO 8601) and whether it came from the tuning file (taken by another process)."""

    serial_s: float
    side_s: float | None
    measured: str
    kept: bool = False


_CACHE: dict[tuple, Probe] = {}
_SAID: set[str] = set()  # the tuning file's problems already said on stderr, once each per process


@functools.cache
def machine() -> str:
    """This machine's key in the tuning file: what a step's time depends on beyond the stack's shape."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    code = hashlib.sha256()
    for path in sorted((Path(__file__).parents[1] / "core").glob("*.py")):
        code.update(path.read_bytes())
    return f"{model} | {cpus} CPUs | torch {torch.__version__} | bnlab.core {code.hexdigest()[:12]}"


def _say(problem: str) -> None:
    if problem not in _SAID:
        _SAID.add(problem)
        print(f"bnlab: {problem}", file=sys.stderr)


def _read_kept(path: Path) -> dict:
    """The tuning file's machines → {shape: entry}; {} when absent or unreadable (said once)."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != CACHE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, not {CACHE_FORMAT}")
        return dict(data["machines"])
    except (FileNotFoundError, NotADirectoryError):  # nothing kept yet (writing says why it cannot be)
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        _say(f"tuning cache {path} is unreadable ({type(e).__name__}: {e}); measuring again over it")
        return {}


def _kept(key: tuple) -> Probe | None:
    path = environment.tuning_cache()
    if path is None:
        return None
    entry = _read_kept(path).get(machine(), {}).get(repr(key))
    try:
        serial = _seconds(entry["serial_s"])
        side = None if entry["side_s"] is None else _seconds(entry["side_s"])
        return Probe(serial, side, str(entry["measured"]), kept=True)
    except (TypeError, KeyError, ValueError):  # not an entry this code wrote: measured over
        return None


def _seconds(value: object) -> float:
    """A kept time: a positive finite number of seconds, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(value)
    return float(value)


def _keep(key: tuple, probe: Probe) -> None:
    """Write `probe` into the tuning file under this machine: the file written whole, then renamed."""
    path = environment.tuning_cache()
    if path is None:
        return
    machines = _read_kept(path)
    mine = dict(machines.pop(machine(), {}))
    mine[repr(key)] = {"serial_s": probe.serial_s, "side_s": probe.side_s, "measured": probe.measured}
    kept = {machine(): mine, **dict(list(machines.items())[: CACHE_MACHINES - 1])}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "machines": kept}, indent=1))
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        _say(f"tuning cache {path} is not writable ({e.strerror}); this process keeps its measurements")


def _probe_data(s0: RunSpec, in_dim: int, n_classes: int, steps: int) -> DeviceData:
    g = torch.Generator().manual_seed(0)
    n = s0.batch_size * steps
    x = torch.rand(n, in_dim, generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    return DeviceData(x, y, x[: s0.batch_size], y[: s0.batch_size], n_classes)


def _stepper(group: list[RunSpec], data: DeviceData, threads: int, steps: int) -> Callable:
    """train(tick) → seconds per step of `group` as one stack with `threads` torch threads: the second of
    two epochs of `steps` steps (the first is warm-up). Run it in `in_threads` (run.local.flushed_each)."""
    specs = [
        dataclasses.replace(
            s, epochs=2, train_limit=None, test_limit=None, eval_every=0, probes=(), final_probes=()
        )
        for s in group
    ]

    def run(tick):
        torch.set_num_threads(threads)
        r = train_stack(specs, data, progress=tick)[0]
        return (r.epochs[1]["wall_s"] - r.epochs[0]["wall_s"]) * len(specs) / steps

    return run


def measure(
    group: list[RunSpec],
    in_dim: int,
    n_classes: int,
    threads: int,
    workers: int,
    cpus: int,
    steps: int = PROBE_STEPS,
    side: bool = True,
    *,
    in_threads: InThreads,
    retune: bool = False,
) -> Probe:
    """Seconds per step of `group`'s shape as one stack with `threads` threads, and (if `side`) per step of
    each of `workers` such stacks trained at once with `cpus` threads each. Kept per shape, in this process
    and in the tuning file (`retune`: not read from the file)."""
    key = (
        stack_key(group[0]),
        tuple(sorted({(s.norm, s.placement) for s in group})),
        len(group),
        in_dim,
        n_classes,
        threads,
        workers,
        cpus,
        steps,
    )
    if key not in _CACHE and not retune and (kept := _kept(key)) is not None:
        _CACHE[key] = kept
    old = _CACHE.get(key)
    if old is not None and (old.side_s is not None or not side):
        return old
    data = _probe_data(group[0], in_dim, n_classes, steps)
    try:
        serial = old.serial_s if old else in_threads([_stepper(group, data, threads, steps)])[0]
        side_s = max(in_threads([_stepper(group, data, cpus, steps)] * workers)) if side else None
    finally:
        torch.set_num_threads(threads)  # the threads above set torch's global count; a new thread reads it
    _CACHE[key] = Probe(serial, side_s, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    _keep(key, _CACHE[key])
    return _CACHE[key]


def choose(
    groups: list[list[RunSpec]],
    n_train: dict,
    in_dims: dict,
    n_classes: dict,
    threads: int,
    cpus_per_group: int | None = None,
    *,
    in_threads: InThreads,
    retune: bool = False,
) -> Plan:
    """The plan for a CPU job of `groups` with `threads` torch threads. cpus_per_group given: side by side
    with that many threads each (if two fit). Else measure (see the module's doc) in `in_threads`, or take
    the tuning file's measurement (unless `retune`), and take the faster."""
    if threads < 2 or len(groups) < 2:
        return Plan(1, threads, why="one stack at a time: " + ("one thread" if threads < 2 else "one stack"))
    if cpus_per_group:
        w = min(len(groups), threads // cpus_per_group)
        return (
            Plan(w, cpus_per_group, why="--cpus-per-group")
            if w >= 2
            else Plan(1, threads, why="--cpus-per-group: one group fits")
        )
    cpus = max(1, threads // len(groups))
    workers = min(len(groups), threads // cpus)
    cost = [group_cost(g, n_train[g[0].dataset]) for g in groups]
    if sum(cost) * SLOW_UNIT_S * (1 - 1 / workers) <= WORKER_START_S:
        return Plan(1, threads, why="one stack at a time: too small a job for worker processes to pay")
    big = max(range(len(groups)), key=cost.__getitem__)
    g = groups[big]
    ds = g[0].dataset
    probe = measure(
        g,
        in_dims[ds],
        n_classes[ds],
        threads,
        workers,
        cpus,
        side=False,
        in_threads=in_threads,
        retune=retune,
    )
    serial = probe.serial_s
    per_unit = serial / (len(g) * (g[0].batch_size + 31))  # seconds per unit of jobs.group_cost
    t_serial = sum(cost) * per_unit
    if t_serial * (1 - 1 / workers) <= WORKER_START_S:  # even perfect scaling would not pay
        return Plan(
            1,
            threads,
            serial,
            why=f"one stack at a time: the job takes ~{t_serial:.0f} s, too short "
            f"for worker processes to pay{_source(probe)}",
        )
    probe = measure(
        g, in_dims[ds], n_classes[ds], threads, workers, cpus, in_threads=in_threads, retune=retune
    )
    serial, side_s = probe.serial_s, probe.side_s
    assert side_s is not None  # measure(side=True) always measures side by side
    gain = serial * workers / side_s
    # side by side: `workers` stacks at once, each at side_s per step; the longest group bounds the end
    t_side = max(sum(cost) / workers, max(cost)) * per_unit * side_s / serial + WORKER_START_S
    measured = f"measured {gain:.2f}× one stack with {threads}{_source(probe)}"
    if t_side < t_serial:
        return Plan(workers, cpus, serial, side_s, f"side by side: {workers} × {cpus} thread(s) {measured}")
    return Plan(
        1,
        threads,
        serial,
        side_s,
        f"one stack at a time: side by side ({workers} × {cpus} thread(s)) {measured}",
    )


def _source(probe: Probe) -> str:
    """Where a kept measurement came from, for a plan's `why`."""
    return f" (kept from {probe.measured}; --retune measures again)" if probe.kept else ""
