"""Which RunSpecs train together, and how long that takes: stack planning without torch.

Specs that share a stack key (config.stack_key) and one norm kind among the members
that have one form a group of at most `max_stack` members; a group trains as one stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..config import RunSpec, stack_key
from ..errors import ConfigError

DEFAULT_MAX_STACK = 16


def _no_start(total_steps: int, total_runs: int, total_groups: int) -> None:
    """Default Progress.start: show nothing."""


def _no_advance(steps: int) -> None:
    """Default Progress.advance: show nothing."""


def _no_group_done(runs: int) -> None:
    """Default Progress.group_done: show nothing."""


@dataclass
class Progress:
    """Callbacks the CLI wires to a rich progress bar; all optional."""

    start: Callable[[int, int, int], None] = _no_start
    advance: Callable[[int], None] = _no_advance
    group_done: Callable[[int], None] = _no_group_done


def plan_stacks(
    specs: list[RunSpec], max_stack: int = DEFAULT_MAX_STACK, mix_none: bool = True
) -> list[list[RunSpec]]:
    """Partition specs into stacks: equal stack_key, at most one (norm, placement)
    among normed members; members without a norm fill the first stack of their key
    (or, with mix_none False, stacks of their own: a stack's time is then its norm's).
    Linear in the number of specs (dicts keyed by stack key and norm kind)."""
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
            stacks += [g[i : i + size] for i in range(0, len(g), size)]
    return stacks


def steps_of(spec: RunSpec, n_train: int) -> int:
    """Optimizer steps of one run on a training set of n_train images."""
    n = min(spec.train_limit or n_train, n_train)
    return math.ceil(n / spec.batch_size) * spec.epochs


def group_cost(group: list[RunSpec], n_train: int) -> float:
    """Relative training time of a group on a CPU: members × steps × (batch size + 31); the 31
    fits this net's measured seconds per model-epoch, ∝ 1 + 31/B (1 thread, bs 16 to 128)."""
    s0 = group[0]
    return len(group) * steps_of(s0, n_train) * (s0.batch_size + 31)


def check_against_data(specs: list[RunSpec], datasets: dict) -> None:
    """Batch sizes and limits that the dataset cannot serve: one ConfigError, before anything runs."""
    for s in specs:
        n, m = len(datasets[s.dataset].y_train), len(datasets[s.dataset].y_test)
        for lim, avail in (("train_limit", n), ("test_limit", m)):
            if (getattr(s, lim) or 0) > avail:
                raise ConfigError(
                    f"{lim} = {getattr(s, lim)} is more than the {avail} images {s.dataset} has"
                )
        if s.batch_size > min(s.train_limit or n, n):
            raise ConfigError(
                f"batch_size = {s.batch_size} is larger than the {n} training images; "
                f"choose batch_size <= {n}"
            )
