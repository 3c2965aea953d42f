"""One stacked training job where it runs (this process, a pool worker or a Ray task): device and versions."""
from __future__ import annotations

import platform
from typing import Callable

import torch

from .._version import __version__
from ..config import RunSpec
from ..core.train import DeviceData, train_stack
from ..errors import ConfigError
from ..records import NUMERICS, RunResult


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
    return dict(bnlab=__version__, torch=torch.__version__, python=platform.python_version(),
                device=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
                threads=torch.get_num_threads(), numerics=NUMERICS)


def train_group(group: list[RunSpec], ds, device: str, threads: int,
                progress: Callable[[int], None] | None = None) -> tuple[list[RunResult], dict]:
    """One group in a worker (a pool process or a Ray task): its results and the versions
    (threads included: the most it ran with) it ran with."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    s0 = group[0]
    results = train_stack(group, DeviceData.from_dataset(ds, dev, s0.train_limit, s0.test_limit), progress=progress)
    return results, versions(dev)
