"""Run specifications: one frozen dataclass per trained model, validated once.

A `RunSpec` is everything that determines one model's numbers (with the
device). `Profile` holds the framework defaults that the original study
inherited from Keras, or PyTorch's. Validation raises `ConfigError` naming
the field and the allowed values.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from .errors import ConfigError

NORMS = ("none", "batch", "layer", "group", "batch-renorm", "ghost-batch")
PLACEMENTS = ("after", "before")
OPTIMIZERS = ("adam", "sgd")
INITS = ("default", "glorot_uniform", "torch_default", "he_normal")
PROFILES = ("keras", "torch")
DATASETS = ("mnist", "fashion-mnist")
FINAL_PROBES = ("inference", "invariance")
PROBES = ("activations", "ics", "smoothness")   # recorded during training by bnlab.core.probes


@dataclass(frozen=True)
class Profile:
    """Framework defaults. Momentum is the weight on the old running value."""

    name: str
    init: str           # weight init used when RunSpec.init == "default"
    bn_momentum: float  # running = momentum * running + (1 - momentum) * batch
    bn_eps: float
    bn_unbiased_running_var: bool  # torch keeps the unbiased variance, Keras the biased one
    adam_eps: float


PROFILE = {
    "keras": Profile("keras", "glorot_uniform", 0.99, 1e-3, False, 1e-7),
    "torch": Profile("torch", "torch_default", 0.9, 1e-5, True, 1e-8),
}


@dataclass(frozen=True)
class RunSpec:
    """One model to train. Two specs equal in all fields give the same numbers."""

    dataset: str = "mnist"            # registry name (bnlab.data)
    hidden: tuple[int, ...] = (128, 64)  # hidden widths; input and output come from the dataset
    activation: str = "relu"          # relu | sigmoid
    norm: str = "none"                # one of NORMS
    placement: str = "after"          # after: Dense→ReLU→Norm (the original); before: Dense→Norm→ReLU (the BN paper)
    batch_size: int = 32
    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"           # adam | sgd
    momentum: float = 0.0             # SGD momentum (ignored by Adam)
    init: str = "default"             # default = the profile's init
    init_scale: float = 1.0           # multiplies the initial weights (not biases)
    profile: str = "keras"            # keras | torch defaults (see PROFILE)
    seed: int = 0
    train_limit: int | None = None    # use only the first N training images (tests, quick looks)
    test_limit: int | None = None     # use only the first N test images
    eval_every: int = 0               # extra test evaluations every N steps (0: once per epoch only)
    group_size: int = 8               # group norm: channels per group
    ghost_batch: int = 16             # ghost batch norm: virtual batch size
    noise: bool = False               # Santurkar's noisy BN: random shift/scale after the norm
    final_probes: tuple[str, ...] = ()  # measured on the trained model: inference, invariance (see bnlab.measure)
    probes: tuple[str, ...] = ()      # measured during training: activations, ics, smoothness (see bnlab.probes)
    probe_every: int = 0              # steps between probes (step 0, the initialization, included)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def norm_profile(self) -> Profile:
        return PROFILE[self.profile]

    @property
    def resolved_init(self) -> str:
        return PROFILE[self.profile].init if self.init == "default" else self.init

    def config_dict(self) -> dict:
        """All fields but the seed, as plain JSON types (final_probes only when set)."""
        d = dataclasses.asdict(self)
        d.pop("seed")
        for name in ("final_probes", "probes", "probe_every"):
            if not d[name]:   # added after stores existed: absent at their defaults, so old hashes hold
                d.pop(name)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def config_hash(self) -> str:
        """Stable hash of everything but the seed: (config_hash, seed) keys a run."""
        blob = json.dumps(self.config_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def run_id(self) -> str:
        """Readable and unique: dataset_norm_bsB_lrLR_sSEED_hash."""
        return f"{self.dataset}_{self.norm}_bs{self.batch_size}_lr{self.lr:g}_s{self.seed}_{self.config_hash()[:8]}"

    def to_json(self) -> dict:
        d = self.config_dict()
        d["seed"] = self.seed
        return d

    @classmethod
    def from_json(cls, d: dict) -> "RunSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown run field {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


def _int(name: str, value, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{name} = {value} is out of range; it must be {rng}")


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def validate(s: RunSpec) -> None:
    """Check every field; raise ConfigError naming the first bad one."""
    _choice("dataset", s.dataset, DATASETS)
    _choice("norm", s.norm, NORMS)
    _choice("placement", s.placement, PLACEMENTS)
    _choice("optimizer", s.optimizer, OPTIMIZERS)
    _choice("init", s.init, INITS)
    _choice("profile", s.profile, PROFILES)
    _choice("activation", s.activation, ("relu", "sigmoid"))
    if not isinstance(s.hidden, tuple) or not s.hidden:
        raise ConfigError(f"hidden must be a non-empty list of widths, got {s.hidden!r}")
    for w in s.hidden:
        _int("hidden width", w, 1)
    _int("batch_size", s.batch_size, 1)
    _int("epochs", s.epochs, 1)
    _int("seed", s.seed, 0, 2**31 - 1)
    _positive("lr", s.lr)
    _positive("init_scale", s.init_scale)
    if isinstance(s.momentum, bool) or not isinstance(s.momentum, (int, float)) or not 0 <= s.momentum < 1:
        raise ConfigError(f"momentum must be a number in [0, 1), got {s.momentum!r}")
    for name in ("train_limit", "test_limit"):
        v = getattr(s, name)
        if v is not None:
            _int(name, v, 1)
    if s.train_limit is not None and s.batch_size > s.train_limit:
        raise ConfigError(f"batch_size = {s.batch_size} is larger than train_limit = {s.train_limit}")
    _int("eval_every", s.eval_every, 0)
    _int("group_size", s.group_size, 1)
    _int("ghost_batch", s.ghost_batch, 1)
    if s.norm == "group" and any(w % s.group_size for w in s.hidden):
        raise ConfigError(f"group_size = {s.group_size} must divide every hidden width {list(s.hidden)}")
    if not isinstance(s.final_probes, tuple):
        raise ConfigError(f"final_probes must be a list, got {s.final_probes!r}")
    for fp in s.final_probes:
        _choice("final_probes", fp, FINAL_PROBES)
    if not isinstance(s.probes, tuple):
        raise ConfigError(f"probes must be a list, got {s.probes!r}")
    for pr in s.probes:
        _choice("probes", pr, PROBES)
    _int("probe_every", s.probe_every, 0)
    if s.probes and not s.probe_every:
        raise ConfigError(f"probes = {list(s.probes)} need probe_every >= 1 (steps between probes)")
    if "inference" in s.final_probes and s.norm not in ("none", "batch"):
        raise ConfigError(f"final_probes = ['inference'] folds batch norm; norm = {s.norm!r} has nothing to fold "
                          "(use norm none or batch)")
    if s.noise and s.norm == "none":
        raise ConfigError("noise = true needs a norm (it perturbs the normalized activations); set norm")


def parse_seeds(value) -> tuple[int, ...]:
    """5 or '5' → seeds 0..4; '3,7,11' or [3, 7, 11] → those seeds."""
    bad = ConfigError(f"seeds = {value!r}: give a count (5) or a list of seeds (3,7,11)")
    if isinstance(value, str) and "," in value:
        try:
            value = [int(t) for t in value.split(",") if t.strip()]
        except ValueError:
            raise bad from None
    if isinstance(value, (list, tuple)):
        if not value or any(isinstance(s, bool) or not isinstance(s, int) for s in value):
            raise bad
        if len(set(value)) != len(value):
            raise ConfigError(f"seeds = {list(value)} repeats a seed; give each once")
        for s in value:
            _int("seed", s, 0, 2**31 - 1)
        return tuple(value)
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise bad from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad
    _int("seeds", value, 1)
    return tuple(range(value))


@dataclass(frozen=True)
class Grid:
    """A cartesian grid of RunSpec fields × seeds."""

    axes: dict = field(default_factory=dict)  # field name -> tuple of values
    base: dict = field(default_factory=dict)  # fixed fields
    seeds: tuple[int, ...] = (0,)

    def expand(self) -> list[RunSpec]:
        """Every combination of axis values, for every seed, in a stable order."""
        import itertools

        fields = {f.name for f in dataclasses.fields(RunSpec)}
        for name in [*self.axes, *self.base]:
            if name not in fields or name == "seed":
                raise ConfigError(f"unknown grid field {name!r}; allowed: {', '.join(sorted(fields - {'seed'}))}")
        for name, values in self.axes.items():
            if len(set(values)) != len(values):
                raise ConfigError(f"grid field {name!r} repeats a value in {list(values)}; give each once")
        names = list(self.axes)
        specs = []
        for combo in itertools.product(*(self.axes[n] for n in names)):
            fields = {**self.base, **dict(zip(names, combo))}
            if fields.get("norm") == "none" and "noise" in self.axes:
                fields["noise"] = False   # noise perturbs a norm's output: a grid's none cell is the plain control
            for seed in self.seeds:
                specs.append(RunSpec(**fields, seed=seed))
        return specs


# RunSpec fields that members of one stack share (all but seed, lr, norm, placement, init, init_scale, ...).
SHAPE_FIELDS = ("dataset", "hidden", "activation", "batch_size", "epochs", "optimizer", "momentum", "profile",
                "train_limit", "test_limit", "eval_every", "group_size", "ghost_batch",
                "noise", "probes", "probe_every")


def stack_key(spec: RunSpec) -> tuple:
    """Specs with equal keys can share a stack, given one norm kind and placement
    among the members that have a norm (members without one join any stack)."""
    return tuple(getattr(spec, f) for f in SHAPE_FIELDS)
