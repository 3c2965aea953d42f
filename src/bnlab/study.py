"""A study as data: its question, a grid of RunSpec fields × seeds, and the run specs it expands to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .config import Grid, RunSpec, parse_seeds
from .core.norms import NORMS, is_identity


@dataclass(frozen=True)
class Study:
    """A named experiment: its question, grid and default seeds."""

    name: str
    question: str
    axes: dict = field(default_factory=dict)  # field -> tuple of values
    base: dict = field(default_factory=dict)  # fixed fields
    seeds: int | tuple[int, ...] = 5
    notes: str = ""
    mix_none: bool = (
        True  # members without a norm may share a stack with normed ones (False: own stacks, own timing)
    )
    max_stack: int | None = None  # most members per stack for this study (1: every model timed alone)
    claims: tuple[dict, ...] = ()  # a study file's own claims ([[claims]], checked: claims.declared)

    def grid(self, seeds=None, **overrides) -> Grid:
        """The grid with `seeds` (count or list) and fixed-field overrides (e.g. epochs=3)."""
        base = {**self.base, **{k: v for k, v in overrides.items() if v is not None}}
        axes = {k: v for k, v in self.axes.items() if k not in base}
        return Grid(axes, base, parse_seeds(self.seeds if seeds is None else seeds))

    def specs(self, seeds=None, **overrides) -> list[RunSpec]:
        return dedupe(self.grid(seeds, **overrides).expand())

    def to_json(self) -> dict:
        return dict(
            name=self.name,
            question=self.question,
            axes={k: list(v) for k, v in self.axes.items()},
            base=self.base,
            seeds=self.seeds if isinstance(self.seeds, int) else list(self.seeds),
            notes=self.notes,
            mix_none=self.mix_none,
            max_stack=self.max_stack,
            **({"claims": list(self.claims)} if self.claims else {}),
        )


def dedupe(specs: list[RunSpec]) -> list[RunSpec]:
    """Drop specs that train the same model twice: without a norm, placement means nothing,
    so every 'none' spec is written with placement 'after'; without running statistics (none,
    layer, group), precise_bn means nothing, so it is written False."""
    seen, out = set(), []
    for s in specs:
        if is_identity(s.norm) and s.placement != "after":  # copy only where it changes
            s = dataclasses.replace(s, placement="after")
        if s.precise_bn and not NORMS[s.norm].running_stats:
            s = dataclasses.replace(s, precise_bn=False)
        key = (s.config_hash(), s.seed)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
