"""Named studies as data, and TOML study files.

A study is a question, a grid of RunSpec fields × seeds, and the findings its
report tests. TOML schema (see README):

    name = "my-study"                 # required, letters, digits, - and _
    question = "Does BN help at bs 128?"
    seeds = 5                         # a count (seeds 0..N-1) or a list [0, 3, 7]
    [base]                            # fixed RunSpec fields
    epochs = 10
    [grid]                            # axes: field = [values]; the study is their product × seeds
    norm = ["none", "batch"]
    batch_size = [32, 128]
"""
from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .config import Grid, RunSpec, parse_seeds
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Study:
    """A named experiment: its question, grid and default seeds."""

    name: str
    question: str
    axes: dict = field(default_factory=dict)     # field -> tuple of values
    base: dict = field(default_factory=dict)     # fixed fields
    seeds: int | tuple[int, ...] = 5
    notes: str = ""

    def grid(self, seeds=None, **overrides) -> Grid:
        """The grid with `seeds` (count or list) and fixed-field overrides (e.g. epochs=3)."""
        base = {**self.base, **{k: v for k, v in overrides.items() if v is not None}}
        axes = {k: v for k, v in self.axes.items() if k not in base}
        return Grid(axes, base, parse_seeds(self.seeds if seeds is None else seeds))

    def specs(self, seeds=None, **overrides) -> list[RunSpec]:
        return _dedupe(self.grid(seeds, **overrides).expand())

    def to_json(self) -> dict:
        return dict(name=self.name, question=self.question, axes={k: list(v) for k, v in self.axes.items()},
                    base=self.base, seeds=self.seeds if isinstance(self.seeds, int) else list(self.seeds),
                    notes=self.notes)


def _dedupe(specs: list[RunSpec]) -> list[RunSpec]:
    """Drop specs that train the same model twice: without a norm, placement means nothing,
    so every 'none' spec is written with placement 'after'."""
    seen, out = set(), []
    for s in specs:
        if s.norm == "none":
            s = dataclasses.replace(s, placement="after")
        key = (s.config_hash(), s.seed)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


STUDIES: dict[str, Study] = {
    s.name: s
    for s in [
        Study(
            "seed",
            "The original study, done properly: does BN (after each hidden ReLU) change final accuracy, "
            "convergence and the train-test gap of a 784-128-64-10 MLP on MNIST, and how does batch size "
            "(16/32/64/128) interact with it? Full factorial with a no-BN control at every batch size.",
            axes={"norm": ("none", "batch"), "batch_size": (16, 32, 64, 128)},
            base={"epochs": 10},
            seeds=5,
            notes="Adam lr 1e-3, 10 epochs, profile keras (Glorot init, BN momentum 0.99, eps 1e-3), as the original.",
        ),
    ]
}


def get(name_or_path: str) -> Study:
    """A named study, or a study read from a TOML file."""
    if name_or_path in STUDIES:
        return STUDIES[name_or_path]
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        return load_toml(Path(name_or_path))
    raise ConfigError(f"unknown study {name_or_path!r}; choose one of: {', '.join(STUDIES)} "
                      f"(bnlab study --list), or give a path to a .toml study file")


TOML_KEYS = ("name", "question", "seeds", "base", "grid", "notes")


def load_toml(path: Path) -> Study:
    """Read and validate a study file; every problem is one ConfigError naming the field."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"study file {path} not found; check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read study file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    return from_dict(data, str(path))


def from_dict(data: dict, where: str = "study") -> Study:
    for k in data:
        if k not in TOML_KEYS:
            raise ConfigError(f"{where}: unknown key {k!r}; allowed: {', '.join(TOML_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ConfigError(f"{where}: name must be 1-64 letters, digits, '-' or '_', got {name!r}")
    question = data.get("question", "")
    notes = data.get("notes", "")
    if not isinstance(question, str) or not isinstance(notes, str):
        raise ConfigError(f"{where}: question and notes must be strings")
    seeds = data.get("seeds", 5)
    if isinstance(seeds, list):
        seeds = tuple(seeds)
    parse_seeds(seeds)
    base, grid = data.get("base", {}), data.get("grid", {})
    for key, table in (("base", base), ("grid", grid)):
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{key}] must be a table of RunSpec fields")
    axes = {}
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{where}: grid.{k} must be a non-empty list of values, got {v!r}")
        axes[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in base.items()}
    study = Study(name, question, axes, base, seeds, notes)
    try:
        study.specs()  # validates every field and value now, not mid-study
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None
    return study
