"""The Ray backend: each group is a Ray task; the driver alone writes the store.

Each dataset's arrays go into the object store once; a task builds its
DeviceData from them, so workers need bnlab and torch but no data files. A task
declares `num_cpus` (and trains with that many torch threads) and `num_gpus=1`
on CUDA. By default a group gets the cluster's CPUs divided by the number of
groups (at least 1, at most the smallest node's), so a few groups spread over
the nodes and many groups fill every core. A task lost with its worker is run
again (`max_retries`); its result reaches the driver once, which commits it;
runs in flight when the driver stops are cancelled and, not being in the
store, trained again by the next run of the same command.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import ray
import torch

from .. import environment
from ..config import RunSpec
from ..errors import ConfigError
from ..records import RunResult
from .jobs import Progress, steps_of
from .local import train_group

MAX_RETRIES = 3


def _check_reachable(address: str) -> None:
    """A host:port that refuses connections fails now, rather than after ray.init's minutes of retries."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "6379")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot reach the Ray cluster at --ray-address {address} ({e}); start one with "
            f"`ray start --head` and pass the address it prints (or set RAY_ADDRESS)"
        ) from None


class Ray:
    """Connects on enter: to `address` (default $RAY_ADDRESS), to the Ray this process has already
    initialised, or else to a local Ray started for the run and shut down on exit."""

    name = "ray"

    def __init__(
        self, device: str = "auto", *, address: str | None = None, cpus_per_group: int | None = None
    ):
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise ConfigError(f"device = {device!r} is not allowed; choose one of: auto, cpu, cuda")
        self.device_name, self.cpus_per_group = device, cpus_per_group
        self.address = address or environment.ray_address()
        self.owned = False
        self.pending: dict = {}

    def __enter__(self) -> Ray:
        if not ray.is_initialized():
            if self.address:
                _check_reachable(self.address)
                try:
                    ray.init(address=self.address, logging_level=logging.WARNING)
                except ConnectionError as e:
                    raise ConfigError(
                        f"cannot connect to the Ray cluster at {self.address} ({e}); is it up "
                        f"(`ray status`)? If it uses token authentication, set RAY_AUTH_MODE=token"
                    ) from None
            else:
                ray.init(include_dashboard=False, logging_level=logging.WARNING)
                self.owned = True
        gpus = ray.cluster_resources().get("GPU", 0)
        cpus = (n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"])
        self.node_cpus = [int(c) for c in cpus if c >= 1]
        problem = None
        if self.device_name.startswith("cuda") and not gpus:
            problem = "device = cuda but the Ray cluster has no GPU; use --device cpu or auto"
        elif not self.node_cpus:
            problem = "the Ray cluster has no node with a CPU"
        elif (self.cpus_per_group or 0) > max(self.node_cpus):
            problem = (
                f"cpus_per_group = {self.cpus_per_group} is more than any Ray node has "
                f"(largest: {max(self.node_cpus)} CPUs)"
            )
        if problem:
            self.__exit__()
            raise ConfigError(problem)
        self.device = torch.device(
            "cuda" if self.device_name.startswith("cuda") or (self.device_name == "auto" and gpus) else "cpu"
        )
        return self

    def __exit__(self, *exc) -> None:
        for ref in self.pending:
            ray.cancel(ref, force=True)
        self.pending.clear()
        if self.owned:
            ray.shutdown()
            self.owned = False

    def run(
        self, groups: list[list[RunSpec]], datasets: dict, progress: Progress, exclusive: bool = False
    ) -> Iterator[tuple[list[RunResult], dict]]:
        """Submit every group, then yield each one's results (and versions) as it completes.
        exclusive (a study that measures time): each CPU task asks for a whole node of the largest size."""
        if not groups:
            return
        cuda = self.device.type == "cuda"
        cpus = self.cpus_per_group or (
            1
            if cuda
            else max(self.node_cpus)
            if exclusive
            else max(1, min(min(self.node_cpus), sum(self.node_cpus) // len(groups)))
        )
        task = ray.remote(train_group).options(
            num_cpus=cpus, num_gpus=1 if cuda else 0, max_retries=MAX_RETRIES
        )
        arrays = {name: ray.put(ds) for name, ds in datasets.items()}
        self.pending = {task.remote(g, arrays[g[0].dataset], self.device.type, cpus): g for g in groups}
        while self.pending:
            [ref], _ = ray.wait(list(self.pending), num_returns=1)
            results = ray.get(ref)
            group = self.pending.pop(ref)
            progress.advance(sum(steps_of(s, len(datasets[s.dataset].y_train)) for s in group))
            yield results
