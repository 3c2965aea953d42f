"""One stacked training job where it runs (this process, a pool worker or a Ray task): device, versions,
and the training thread that flushes denormal floats to zero."""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable
from typing import TypeVar

import torch

from .._version import __version__
from ..config import RunSpec
from ..core.train import DeviceData, train_stack
from ..errors import ConfigError
from ..records import NUMERICS, RunResult

T = TypeVar("T")


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
    """Raised inside the training thread at its next step once the caller was interrupted."""


def flushed(train: Callable[[Callable[[int], None]], T], progress: Callable[[int], None] | None = None) -> T:
    """train(tick) in a new thread that flushes denormal floats to zero (FTZ/DAZ); `tick(steps)` must be
    called every step (it forwards to `progress`, and stops the thread once the caller is interrupted).

    Denormals build up in training (tiny gradients, Adam's second moments, saturated activations) and cost
    many times a normal float on some CPUs. torch.set_flush_denormal sets the calling thread's MXCSR only:
    OpenMP's worker threads, once started, keep theirs, so flushing in the caller would reach a fraction of
    the work and leave the caller changed. A new thread's OpenMP team starts with its master's setting, so
    here the training thread and its team flush and the caller's threads are never touched: nothing to
    restore. Where flushing is unsupported (no DAZ), set_flush_denormal returns False and nothing changes.
    """
    box: dict = {}
    stop, done = threading.Event(), threading.Event()

    def tick(n: int) -> None:
        if stop.is_set():
            raise _Stopped
        if progress is not None:
            progress(n)

    def body() -> None:
        try:
            torch.set_flush_denormal(True)
            box["value"] = train(tick)
        except BaseException as e:  # handed to the caller, whatever it is
            box["error"] = e
        finally:
            done.set()

    t = threading.Thread(target=body, name="bnlab-train", daemon=True)
    t.start()
    try:
        while not done.wait(0.2):  # not t.join(): a join interrupted by Ctrl-C may later return too early
            pass
    except BaseException:  # Ctrl-C in the caller: stop the thread at its next step, then go on up
        stop.set()
        _wait_out(done)
        raise
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _wait_out(done: threading.Event) -> None:
    """Wait for the stopping thread (one step), through further Ctrl-Cs: a process that exits while torch
    runs in another thread aborts ("terminate called without an active exception")."""
    while True:
        try:
            if done.wait(0.2):
                return
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
    run = lambda tick: (train_stack(group, data, progress=tick), versions(dev))  # noqa: E731
    return flushed(run, progress) if dev.type == "cpu" else run(progress)
