"""The vocabulary and the limits of every value a user gives bnlab: one table, used by the CLI, study
files and the Python API alike.

    BOUNDS[name]              the allowed range of each numeric knob: RunSpec's numeric fields
                              (batch_size, epochs, lr, hidden widths, ...), "seeds" (a count), "seed",
                              "max_stack" (also bench --stack), "cpus_per_group" and bench "repeats"
    check_bound(name, value, label=None) -> int | float
                              `value` checked against BOUNDS[name] and returned as its type; one
                              ConfigError naming `label` (e.g. "--max-stack") otherwise
    check_int(name, value, label=None) -> int
                              check_bound for a knob of integers, typed as int
    MAX_SEEDS = 10,000        seeds in one study or grid
    MAX_RUNS = 100,000        runs in one grid (Grid.size()), checked before it is expanded
    MEMORY_LIMIT = 8 GB       estimated training memory of one model, or of one stack
    memory_bytes(spec, members=1), check_memory(spec, members=1): that estimate, and the check

Each RunSpec field's type comes from its annotation (RULES); field_value(name, value) is the one
check of a field's value (its type, then BOUNDS or CHOICES), and returns it as the declared type:
lr = 1 and lr = 1.0 give one spec, one hash, one run.

The limit is fixed, not a share of this machine's memory, so that a spec valid
on one machine is valid on every other one and stored runs always load again.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass

from . import data as _data
from .core import norms as _norms
from .errors import ConfigError

NORMS = tuple(_norms.NORMS)  # the registry's names (bnlab.core.norms), one source
PLACEMENTS = ("after", "before")
OPTIMIZERS = ("adam", "sgd")
INITS = ("default", "glorot_uniform", "torch_default", "he_normal")
PROFILES = ("keras", "torch")
DATASETS = tuple(_data.DATASETS)  # the registered datasets (bnlab.data), one source
ACTIVATIONS = ("relu", "sigmoid")
FINAL_PROBES = ("inference", "invariance")
PROBES = ("activations", "ics", "smoothness")  # recorded during training by bnlab.core.probes
TRAIN_EVALS = ("last", "every")  # the eval-mode pass over the training set: after the last epoch, or each

MAX_SEEDS = 10_000
MAX_RUNS = 100_000
MAX_LAYERS = 100
MEMORY_LIMIT = 8_000_000_000  # bytes
IN_DIM, N_CLASSES = 784, 10  # every registered dataset's (bnlab.data): the memory estimate's input and output


@dataclass(frozen=True)
class Bound:
    """The allowed values of one numeric knob: lo <= value <= hi (< where open), integers or reals."""

    lo: float
    hi: float | None = None
    integer: bool = True
    lo_open: bool = False
    hi_open: bool = False
    why: str = ""  # said when a value is refused, where the limit is not self-evident

    def text(self) -> str:
        """'>= 1', '> 0', '>= 0 and < 1'."""
        lo = f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return lo if self.hi is None else f"{lo} and {'<' if self.hi_open else '<='} {self.hi:g}"

    def admits(self, v: float) -> bool:
        above = v > self.lo if self.lo_open else v >= self.lo
        return above and (self.hi is None or (v < self.hi if self.hi_open else v <= self.hi))


BOUNDS: dict[str, Bound] = {
    "seeds": Bound(1, MAX_SEEDS, why="every seed trains the whole grid once more"),  # a count
    "seed": Bound(0, 2**31 - 1),
    "epochs": Bound(1, 10_000),
    "batch_size": Bound(1),  # and at most the training images (bnlab.run.jobs.check_against_data)
    "train_limit": Bound(1),  # at most the dataset's images (likewise)
    "test_limit": Bound(1),
    "lr": Bound(0, integer=False, lo_open=True),
    "momentum": Bound(0, 1, integer=False, hi_open=True),
    "init_scale": Bound(0, integer=False, lo_open=True),
    "eval_every": Bound(0),  # 0: once per epoch only
    "probe_every": Bound(0),
    "group_size": Bound(1),
    "ghost_batch": Bound(1),
    "hidden": Bound(1),  # each width; the widths together are bounded by MEMORY_LIMIT
    "max_stack": Bound(1, 1024),  # models trained at once in one stack (CLI --max-stack, bench --stack)
    "cpus_per_group": Bound(1, 1024),
    "repeats": Bound(1, 100),  # bench: timings per median
}

CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": DATASETS,
    "activation": ACTIVATIONS,
    "norm": NORMS,
    "placement": PLACEMENTS,
    "optimizer": OPTIMIZERS,
    "init": INITS,
    "profile": PROFILES,
    "final_probes": FINAL_PROBES,
    "probes": PROBES,
    "train_eval": TRAIN_EVALS,
}


def check_bound(name: str, value, label: str | None = None) -> int | float:
    """`value` for the knob BOUNDS[name], as an int or a float; one ConfigError naming `label` (default
    `name`, e.g. "--max-stack" for a CLI option) when it is not a number of that kind or out of range."""
    b = BOUNDS[name]
    v = number(value, b.integer)
    if v is not None and b.admits(v):
        return v
    label, want = label or name, f"{'an integer' if b.integer else 'a finite number'} {b.text()}"
    why = f"; {b.why}" if b.why else ""
    if v is not None and b.integer:
        raise ConfigError(
            f"{label} = {show(v)} is out of range; it must be {b.text()} ({label} must be {want}){why}"
        )
    raise ConfigError(f"{label} must be {want}, got {show(value)}{why}")


def check_int(name: str, value, label: str | None = None) -> int:
    """check_bound for a knob whose values are integers (BOUNDS[name].integer), returned as an int."""
    v = check_bound(name, value, label)
    if not isinstance(v, int):  # BOUNDS[name] admits reals: the caller's mistake, not the user's
        raise TypeError(f"check_int({name!r}): BOUNDS[{name!r}] is not an integer bound")
    return v


def number(value, integer: bool) -> int | float | None:
    """value as an int (integer) or a finite float; None when it is not one (a bool is not a number here)."""
    if type(value) is (int if integer else float):  # the common case, without the ABC checks below
        return value if integer or math.isfinite(value) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value) if integer else float(value) if abs(int(value)) <= sys.float_info.max else None
    if integer or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def show(value) -> str:
    """A bad value's repr, shortened to fit in one line."""
    r = repr(value)
    return r if len(r) <= 60 else f"{r[:44]}…{r[-12:]}"


def choice(label: str, value, allowed) -> str:
    """`value` if it is one of `allowed` (strings); one ConfigError naming `label` otherwise."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{label} = {show(value)} is not allowed; choose one of: {', '.join(allowed)}")
    return str(value)
