"""From RunSpecs to stacked training jobs, run in this process; results go to the store.

Specs that share a stack key (and one norm kind among the members that have
one) form a stack of at most `max_stack` members. Runs already in the store,
keyed by (config_hash, seed), are skipped unless `fresh`. Each finished stack
is committed run by run, each run in one transaction, so an interrupted study
loses only the stack in flight.
"""
from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import __version__
from .config import RunSpec
from .errors import ConfigError
from .store import Store
from .train import DeviceData, stack_key, train_stack

DEFAULT_MAX_STACK = 16


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

    start: Callable[[int, int], None] = lambda total_steps, total_runs: None   # noqa: E731
    advance: Callable[[int], None] = lambda steps: None                         # noqa: E731
    run_done: Callable[[int], None] = lambda runs: None                         # noqa: E731


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


def run_specs(specs: list[RunSpec], store: Store, study: str, *, device: str = "auto", data_dir=None,
              fresh: bool = False, max_stack: int = DEFAULT_MAX_STACK, progress: Progress | None = None,
              mix_none: bool = True) -> dict:
    """Train what is not yet in the store; returns counts and the training wall time."""
    from . import data as D

    progress = progress or Progress()
    dev = resolve_device(device)
    done = store.done()
    todo = [s for s in specs if fresh or (s.config_hash(), s.seed) not in done]
    store.link(study, [done[(s.config_hash(), s.seed)] for s in specs if s not in todo])
    datasets = {name: D.load(name, data_dir) for name in sorted({s.dataset for s in todo})}
    check_against_data(todo, datasets)
    progress.start(sum(steps_of(s, len(datasets[s.dataset].y_train)) for s in todo), len(todo))
    vers = versions(dev)
    cache: dict[tuple, DeviceData] = {}
    t0 = time.perf_counter()
    for stack in plan_stacks(todo, max_stack, mix_none):
        s0 = stack[0]
        key = (s0.dataset, s0.train_limit, s0.test_limit)
        if key not in cache:
            cache.clear()
            cache[key] = DeviceData.from_dataset(datasets[s0.dataset], dev, s0.train_limit, s0.test_limit)
        K = len(stack)
        results = train_stack(stack, cache[key], progress=lambda n, K=K: progress.advance(n * K))
        for r in results:
            store.save(study, r, vers)
        progress.run_done(K)
    return dict(total=len(specs), trained=len(todo), skipped=len(specs) - len(todo),
                wall_s=time.perf_counter() - t0, device=str(dev))
