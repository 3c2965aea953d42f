"""The driver: from RunSpecs to groups on an entered backend; the only writer of the store.

Runs already in the store, keyed by (config_hash, seed), are skipped unless `fresh`.
A backend trains the groups, on this machine (`local`) or as Ray tasks on a cluster
(`ray`, imported only when asked for), and hands each finished group back here: this
process alone writes the store, run by run, each run in one transaction, so an
interrupted study loses only the groups in flight.
"""

from __future__ import annotations

import time

from ..config import RunSpec, check_memory
from ..errors import ConfigError, StoreError, StoreLocked
from ..store import Store
from .jobs import DEFAULT_MAX_STACK, Progress, plan_stacks, steps_of
from .local_backend import Local

BACKENDS = ("local", "ray")


def open_backend(
    name: str = "local",
    device: str = "auto",
    *,
    ray_address: str | None = None,
    cpus_per_group: int | None = None,
):
    """The backend `name` (not yet entered): Local, or ray_backend.Ray, whose module alone imports ray."""
    if name not in BACKENDS:
        raise ConfigError(f"backend = {name!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    if name == "local":
        if ray_address:
            raise ConfigError("--ray-address needs --backend ray")
        return Local(device, cpus_per_group=cpus_per_group)
    try:
        from .ray_backend import Ray
    except ImportError as e:
        if e.name != "ray":
            raise
        raise ConfigError("ray is not installed; pip install 'bnlab[ray]'") from None
    return Ray(device, address=ray_address, cpus_per_group=cpus_per_group)


def run_specs(
    specs: list[RunSpec],
    store: Store,
    study: str,
    datasets: dict,
    *,
    backend=None,
    fresh: bool = False,
    max_stack: int = DEFAULT_MAX_STACK,
    progress: Progress | None = None,
    mix_none: bool = True,
) -> dict:
    """Train what is not yet in the store on an entered `backend` (default Local()), committing
    each group's runs as the group finishes; returns counts and the training wall time.
    `datasets`: name → data.Dataset for every spec's dataset, loaded and checked by the caller
    (jobs.check_against_data)."""
    progress = progress or Progress()
    backend = backend or Local()
    done = store.done()
    todo, stored = [], []
    for s in specs:
        key = (s.config_hash(), s.seed)
        (stored if key in done and not fresh else todo).append(s)
    if store.read_only:
        if todo:
            raise StoreError(
                f"the store {store.path} is read-only and lacks {len(todo)} of the {len(specs)} runs; "
                "make it writable or pass another --store"
            )
    else:
        store.link(study, [done[(s.config_hash(), s.seed)] for s in stored])
    groups = plan_stacks(todo, max_stack, mix_none)
    for g in groups:  # before any training: a stack too large for memory says which max_stack fits
        check_memory(g[0], len(g))
    progress.start(sum(steps_of(s, len(datasets[s.dataset].y_train)) for s in todo), len(todo), len(groups))
    t0 = time.perf_counter()
    pending: list[tuple] = []
    for results, vers in backend.run(groups, datasets, progress, exclusive=not mix_none):
        pending = _commit(store, study, pending + [(r, vers) for r in results], final=False)
        progress.group_done(len(results))
    _commit(store, study, pending, final=True)
    return dict(
        total=len(specs),
        trained=len(todo),
        skipped=len(stored),
        wall_s=time.perf_counter() - t0,
        device=str(backend.device),
        backend=backend.name,
    )


def _commit(store: Store, study: str, pending: list[tuple], *, final: bool) -> list[tuple]:
    """Save finished runs in order; runs a locked store refused stay pending (kept in memory) and are
    tried again after the next group, and once more at the end, where a refusal is final."""
    for i, (result, vers) in enumerate(pending):
        try:
            store.save(study, result, vers)
        except StoreLocked:
            if final:
                raise
            return pending[i:]
    return []
