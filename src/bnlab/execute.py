"""From RunSpecs to stacked training jobs (groups), run by a backend; results go to the store.

Specs that share a stack key (and one norm kind among the members that have
one) form a group of at most `max_stack` members. Runs already in the store,
keyed by (config_hash, seed), are skipped unless `fresh`. A backend trains the
groups, in this process (`local`) or as Ray tasks on a cluster (`ray`, see
raybackend; imported only when asked for), and hands each finished group back
here: this process alone writes the store, run by run, each run in one
transaction, so an interrupted study loses only the groups in flight.
"""
from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from . import __version__
from .config import RunSpec
from .errors import ConfigError
from .store import Store
from .train import DeviceData, RunResult, stack_key, train_stack

DEFAULT_MAX_STACK = 16
BACKENDS = ("local", "ray")


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


class Local:
    """Groups one after another in this process, on one device, with torch's default threads."""

    name = "local"

    def __init__(self, device: str = "auto"):
        self.device = resolve_device(device)

    def __enter__(self) -> "Local":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def run(self, groups: list[list[RunSpec]], datasets: dict,
            progress: Progress) -> Iterator[tuple[list[RunResult], dict]]:
        """Yield each group's results and the versions they were trained with, as each finishes."""
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


def open_backend(name: str = "local", device: str = "auto", *, ray_address: str | None = None,
                 cpus_per_group: int | None = None):
    """The backend `name` (not yet entered): Local, or raybackend.Ray, whose module alone imports ray."""
    if name not in BACKENDS:
        raise ConfigError(f"backend = {name!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    if cpus_per_group is not None and (isinstance(cpus_per_group, bool) or not isinstance(cpus_per_group, int)
                                       or cpus_per_group < 1):
        raise ConfigError(f"cpus_per_group = {cpus_per_group!r} is out of range; choose an integer >= 1")
    if name == "local":
        if ray_address or cpus_per_group:
            raise ConfigError("--ray-address and --cpus-per-group need --backend ray")
        return Local(device)
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
    for results, vers in backend.run(groups, datasets, progress):
        for r in results:
            store.save(study, r, vers)
        progress.group_done(len(results))
    return dict(total=len(specs), trained=len(todo), skipped=len(specs) - len(todo),
                wall_s=time.perf_counter() - t0, device=str(backend.device), backend=backend.name)
