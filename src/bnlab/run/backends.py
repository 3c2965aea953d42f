"""A backend by name: Local (this machine) or Ray (a cluster; its module alone imports ray)."""

from __future__ import annotations

from ..errors import ConfigError
from ..options import BACKENDS
from .local import Local


def open_backend(
    name: str = "local",
    device: str = "auto",
    *,
    ray_address: str | None = None,
    cpus_per_group: int | None = None,
    retune: bool = False,
):
    """The backend `name` (not yet entered): Local, or ray_backend.Ray, whose module alone imports ray.
    retune: Local measures this machine's tuning again (Ray's workers do not tune: refused there)."""
    if name not in BACKENDS:
        raise ConfigError(f"backend = {name!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    if name == "local":
        if ray_address:
            raise ConfigError("--ray-address needs --backend ray")
        return Local(device, cpus_per_group=cpus_per_group, retune=retune)
    if retune:
        raise ConfigError("--retune needs --backend local (Ray's workers do not tune); drop --retune")
    try:
        from .ray_backend import Ray
    except ImportError as e:
        if e.name != "ray":
            raise
        raise ConfigError("ray is not installed; pip install 'bnlab[ray]'") from None
    return Ray(device, address=ray_address, cpus_per_group=cpus_per_group)
