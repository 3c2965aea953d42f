"""Run specifications: one frozen dataclass per trained model, validated once.

A `RunSpec` is everything that determines one model's numbers (with the
device). `Profile` holds the framework defaults that the original study
inherited from Keras, or PyTorch's. Validation raises one `ConfigError` naming
the field, the bad value and the allowed values.

Limits on every number a user gives live in `bnlab.limits`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import typing
from dataclasses import dataclass, field

from .core.norms import NORMS, is_identity
from .errors import ConfigError
from .limits import (
    BOUNDS,
    CHOICES,
    IN_DIM,
    MAX_LAYERS,
    MAX_RUNS,
    MAX_SEEDS,
    MEMORY_LIMIT,
    N_CLASSES,
    check_bound,
    check_int,
    choice,
    show,
)


@dataclass(frozen=True)
class Profile:
    """Framework defaults. Momentum is the weight on the old running value."""

    name: str
    init: str  # weight init used when RunSpec.init == "default"
    bn_momentum: float  # running = momentum * running + (1 - momentum) * batch
    bn_eps: float
    bn_unbiased_running_var: bool  # torch keeps the unbiased variance, Keras the biased one
    adam_eps: float  # Adam's ε, placed as adam_eps_form says
    # torch: ε added to √v̂ (after bias correction, torch.optim.Adam); keras: ε added to √v before it,
    # an effective ε/√(1−β2ᵗ) in torch's form (see core/optim.py)
    adam_eps_form: str = "torch"


PROFILE = {
    "keras": Profile("keras", "glorot_uniform", 0.99, 1e-3, False, 1e-7, "keras"),
    "torch": Profile("torch", "torch_default", 0.9, 1e-5, True, 1e-8, "torch"),
}


@dataclass(frozen=True)
class RunSpec:
    """One model to train. Two specs equal in all fields give the same numbers.

    Every field is checked against its annotation, BOUNDS and CHOICES, and stored as its declared
    type: lr = 1 and lr = 1.0 are one spec (one hash, one run), a list of widths is a tuple."""

    dataset: str = "mnist"  # registry name (bnlab.data)
    hidden: tuple[int, ...] = (128, 64)  # hidden widths; input and output come from the dataset
    activation: str = "relu"  # relu | sigmoid
    norm: str = "none"  # one of NORMS
    placement: str = "after"  # after: Dense→ReLU→Norm (the original); before: Dense→Norm→ReLU (the BN paper)
    batch_size: int = 32
    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.0  # SGD momentum (ignored by Adam)
    init: str = "default"  # default = the profile's init
    init_scale: float = 1.0  # multiplies the initial weights (not biases)
    profile: str = "keras"  # keras | torch defaults (see PROFILE)
    seed: int = 0
    train_limit: int | None = None  # use only the first N training images (tests, quick looks)
    test_limit: int | None = None  # use only the first N test images
    eval_every: int = 0  # extra test evaluations every N steps (0: once per epoch only)
    group_size: int = 8  # group norm: channels per group
    ghost_batch: int = 16  # ghost batch norm: virtual batch size
    noise: bool = False  # Santurkar's noisy BN: random shift/scale after the norm
    final_probes: tuple[
        str, ...
    ] = ()  # measured on the trained model: inference, invariance (see bnlab.measure)
    probes: tuple[str, ...] = ()  # measured during training: activations, ics, smoothness (see bnlab.probes)
    probe_every: int = 0  # steps between probes (step 0, the initialization, included)
    precise_bn: bool = False  # evaluate with each BN layer's exact training-set statistics, not running ones
    train_eval: str = "last"  # the eval-mode pass over the training set: after the last epoch, or "every" one

    def __post_init__(self) -> None:
        for name, value in _typed(self).items():
            object.__setattr__(self, name, value)
        _check_together(self)
        blob = json.dumps(self.config_dict(), sort_keys=True)
        object.__setattr__(self, "_hash", hashlib.sha256(blob.encode()).hexdigest()[:16])  # not a field

    @property
    def norm_profile(self) -> Profile:
        return PROFILE[self.profile]

    @property
    def resolved_init(self) -> str:
        return PROFILE[self.profile].init if self.init == "default" else self.init

    def config_dict(self) -> dict:
        """All fields but the seed, as plain JSON types (final_probes only when set)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "seed"}
        for name in ("final_probes", "probes", "probe_every", "precise_bn"):
            if not d[name]:  # added after stores existed: absent at their defaults, so old hashes hold
                d.pop(name)
        if d["train_eval"] == "last":  # the same: a run stored before it measured every epoch, a superset
            d.pop("train_eval")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def config_hash(self) -> str:
        """Stable hash of everything but the seed: (config_hash, seed) keys a run."""
        return self.__dict__["_hash"]  # set by __post_init__; not a field, so not an annotated attribute

    @property
    def run_id(self) -> str:
        """Readable and unique: dataset_norm_bsB_lrLR_sSEED_hash."""
        return (
            f"{self.dataset}_{self.norm}_bs{self.batch_size}_lr{self.lr:g}_s{self.seed}_"
            f"{self.config_hash()[:8]}"
        )

    def to_json(self) -> dict:
        d = self.config_dict()
        d["seed"] = self.seed
        return d

    @classmethod
    def from_json(cls, d: dict) -> RunSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown run field {show(unknown[0])}; allowed: {', '.join(sorted(known))}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


def _rule(hint) -> tuple[type, bool, bool]:
    """A field's annotation as (scalar type, may be None, is a tuple of them)."""
    args = typing.get_args(hint)
    if type(None) in args:  # int | None
        return next(a for a in args if a is not type(None)), True, False
    if typing.get_origin(hint) is tuple:  # tuple[int, ...], tuple[str, ...]
        return args[0], False, True
    return hint, False, False


RULES = {name: _rule(hint) for name, hint in typing.get_type_hints(RunSpec).items()}  # from the annotations


def field_value(name: str, value):
    """`value` for RunSpec field `name` as the field's declared type (int → float where the field is a
    float, list → tuple); one ConfigError naming the field when it has another type, is out of
    BOUNDS (numbers) or not one of CHOICES (strings). Bools are only true/false; ints are neither
    bools nor floats."""
    kind, optional, many = RULES[name]
    if optional and value is None:
        return None
    if not many:
        return _scalar(name, kind, value, name)
    if not isinstance(value, (tuple, list)):
        raise ConfigError(f"{name} must be a list, got {show(value)}")
    return tuple(_scalar(name, kind, v, name) for v in value)


def _scalar(name: str, kind: type, value, label: str):
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {show(value)}")
        return value
    if kind is str:
        return choice(label, value, CHOICES[name])
    return check_bound(name, value, label)  # int or float: BOUNDS[name].integer says which


def _typed(s: RunSpec) -> dict:
    return {name: field_value(name, getattr(s, name)) for name in RULES}


def _check_together(s: RunSpec) -> None:
    """The rules that span fields (each field alone is already checked)."""
    if not 1 <= len(s.hidden) <= MAX_LAYERS:
        raise ConfigError(f"hidden must list 1 to {MAX_LAYERS} widths, got {len(s.hidden)}")
    if s.train_limit is not None and s.batch_size > s.train_limit:
        raise ConfigError(f"batch_size = {s.batch_size} is larger than train_limit = {s.train_limit}")
    kind = NORMS[s.norm]
    if s.batch_size < kind.min_batch:
        raise ConfigError(
            f"norm = {s.norm!r} normalizes over the batch; batch_size = {s.batch_size} must be >= "
            f"{kind.min_batch}"
        )
    if kind.grouped and any(w % s.group_size for w in s.hidden):
        raise ConfigError(f"group_size = {s.group_size} must divide every hidden width {list(s.hidden)}")
    if s.probes and not s.probe_every:
        raise ConfigError(f"probes = {list(s.probes)} need probe_every >= 1 (steps between probes)")
    if "inference" in s.final_probes and not kind.folds:
        raise ConfigError(
            f"final_probes = ['inference'] folds batch norm; norm = {s.norm!r} has nothing to fold "
            "(use norm none or batch)"
        )
    if s.noise and kind.identity:
        raise ConfigError("noise = true needs a norm (it perturbs the normalized activations); set norm")
    check_memory(s)


def validate(s: RunSpec) -> None:
    """Check every field; raise ConfigError naming the first bad one."""
    _typed(s)
    _check_together(s)


def _n_params(s: RunSpec) -> int:
    dims = (IN_DIM, *s.hidden, N_CLASSES)
    return sum(a * b + b for a, b in zip(dims, dims[1:])) + (0 if is_identity(s.norm) else 2 * sum(s.hidden))


def _copies(s: RunSpec) -> int:
    """float32 tensors the size of the parameters: weights, gradients, and Adam's two moments or SGD's
    buffer."""
    return 4 if s.optimizer == "adam" else 3 if s.momentum else 2


def memory_bytes(s: RunSpec, members: int = 1) -> int:
    """Estimated bytes to train `members` models shaped like `s` in one stack: float32 parameters,
    gradients and optimizer state, plus four float32 values per unit and example of one batch."""
    acts = 4 * s.batch_size * (IN_DIM + sum(s.hidden) + N_CLASSES)
    return 4 * members * (_n_params(s) * _copies(s) + acts)


def check_memory(s: RunSpec, members: int = 1) -> None:
    """ConfigError when training `members` models like `s` at once needs more than MEMORY_LIMIT."""
    need = memory_bytes(s, members)
    if need <= MEMORY_LIMIT:
        return
    what = f"hidden = {show(list(s.hidden))} with batch_size = {s.batch_size}"
    fix = "use narrower or fewer hidden layers or a smaller batch"
    if members > 1:
        what, fix = (
            f"a stack of {members} models with {what}",
            f"lower max_stack to {max(1, MEMORY_LIMIT // memory_bytes(s))} or less",
        )
    raise ConfigError(
        f"{what} needs about {need / 1e9:.3g} GB to train ({_n_params(s):,} "
        f"parameters per model, each with its gradient and {s.optimizer} state, and the "
        f"activations of a batch); the limit is {MEMORY_LIMIT / 1e9:g} GB "
        f"(bnlab.config.MEMORY_LIMIT); {fix}"
    )


def parse_seeds(value) -> tuple[int, ...]:
    """5 or '5' → seeds 0..4; '3,7,11' or [3, 7, 11] → those seeds (at most MAX_SEEDS)."""
    bad = ConfigError(f"seeds = {show(value)}: give a count (5) or a list of seeds (3,7,11)")
    if isinstance(value, str) and "," in value:
        try:
            value = [int(t) for t in value.split(",") if t.strip()]
        except ValueError:
            raise bad from None
    if isinstance(value, (list, tuple)):
        if not value or any(isinstance(s, bool) or not isinstance(s, int) for s in value):
            raise bad
        if len(value) > MAX_SEEDS:
            raise ConfigError(
                f"seeds lists {len(value):,} seeds; at most {MAX_SEEDS:,} are allowed ({BOUNDS['seeds'].why})"
            )
        if len(set(value)) != len(value):
            raise ConfigError(f"seeds = {show(list(value))} repeats a seed; give each once")
        return tuple(check_int("seed", s) for s in value)
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise bad from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad
    return tuple(range(check_int("seeds", value)))


def _reseed(spec: RunSpec, seed: int) -> RunSpec:
    """spec with another (checked) seed, without checking the rest again: no rule depends on the seed."""
    out = copy.copy(spec)
    object.__setattr__(out, "seed", seed)
    return out


@dataclass(frozen=True)
class Grid:
    """A cartesian grid of RunSpec fields × seeds."""

    axes: dict = field(default_factory=dict)  # field name -> tuple of values
    base: dict = field(default_factory=dict)  # fixed fields
    seeds: tuple[int, ...] = (0,)

    def size(self) -> int:
        """Runs the grid expands to (duplicates included), without expanding it."""
        return math.prod(len(v) for v in self.axes.values()) * len(self.seeds)

    def expand(self) -> list[RunSpec]:
        """Every combination of axis values, for every seed, in a stable order; at most MAX_RUNS runs.
        Each combination is checked once; its seeds share that check."""
        allowed = sorted(set(RULES) - {"seed"})
        for name in [*self.axes, *self.base]:
            if name not in RULES or name == "seed":
                raise ConfigError(f"unknown grid field {show(name)}; allowed: {', '.join(allowed)}")
        if not isinstance(self.seeds, (tuple, list)) or not self.seeds:
            raise ConfigError(f"grid seeds must be a non-empty list of seeds, got {show(self.seeds)}")
        for name, values in self.axes.items():
            if not isinstance(values, (tuple, list)) or not values:
                raise ConfigError(f"grid.{name} must be a non-empty list of values, got {show(values)}")
        if self.size() > MAX_RUNS:
            shape = " × ".join([*(f"{len(v)} {k}" for k, v in self.axes.items()), f"{len(self.seeds)} seeds"])
            raise ConfigError(
                f"the grid has {self.size():,} runs ({shape}); the limit is {MAX_RUNS:,} runs per grid "
                "(bnlab.config.MAX_RUNS); split it into several studies"
            )
        axes = {name: tuple(field_value(name, v) for v in values) for name, values in self.axes.items()}
        for name, values in axes.items():
            if len(set(values)) != len(values):
                raise ConfigError(
                    f"grid field {name!r} repeats a value in {show(list(values))}; give each once"
                )
        seeds = [check_int("seed", s) for s in self.seeds]
        specs = []
        for combo in itertools.product(*axes.values()):
            fields = {**self.base, **dict(zip(axes, combo))}
            if is_identity(fields.get("norm")) and "noise" in axes:
                fields["noise"] = (
                    False  # noise perturbs a norm's output: a grid's none cell is the plain control
                )
            if is_identity(fields.get("norm")):
                fields["placement"] = "after"  # without a norm, placement means nothing (as studies._dedupe)
            first = RunSpec(**fields, seed=seeds[0])
            specs += [first, *(_reseed(first, s) for s in seeds[1:])]
        return specs


# RunSpec fields that members of one stack share (all but seed, lr, norm, placement, init, init_scale, ...).
SHAPE_FIELDS = (
    "dataset",
    "hidden",
    "activation",
    "batch_size",
    "epochs",
    "optimizer",
    "momentum",
    "profile",
    "train_limit",
    "test_limit",
    "eval_every",
    "group_size",
    "ghost_batch",
    "noise",
    "probes",
    "probe_every",
    "train_eval",
)


def stack_key(spec: RunSpec) -> tuple:
    """Specs with equal keys can share a stack, given one norm kind and placement
    among the members that have a norm (members without one join any stack)."""
    return tuple(getattr(spec, f) for f in SHAPE_FIELDS)
