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
from pathlib import Path

from . import reading, toml_text
from .claims.declared import check_claims
from .config import (
    check_bound,
    check_memory,
    memory_bytes,
    parse_seeds,
)
from .core.norms import NORMS
from .errors import ConfigError
from .limits import show
from .study import Study

LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
BN = {"norm": ("none", "batch")}
DEPTHS = (2, 4, 8, 16)  # hidden layers of the depth study: the first 128 wide, the rest 64
WIDTHS = (0.25, 1.0, 4.0)  # the width study's multipliers of the seed's hidden widths (128, 64)


def stack_of(depth: int) -> tuple[int, ...]:
    """The depth study's hidden widths: 128, then 64 for every further layer (the seed's net at depth 2)."""
    return (128,) + (64,) * (depth - 1)


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
            notes=(
                "Adam lr 1e-3, 10 epochs, profile keras (Glorot init, BN momentum 0.99, eps 1e-3), as the "
                "original."
            ),
        ),
        Study(
            "lr",
            "Does BN allow higher learning rates? Final accuracy over a learning-rate sweep 1e-4 … 1.0, "
            "with and without BN, for Adam and for plain SGD (where Bjorck et al. 2018 see the effect most "
            "clearly).",
            axes={"optimizer": ("adam", "sgd"), "lr": LRS, **BN},
            base={"epochs": 3},
            seeds=3,
            notes=(
                "3 epochs and 3 seeds per setting to keep the 108-run sweep near 7 minutes on 2 CPU cores; a "
                "run whose loss blows up is marked diverged and counts as chance accuracy where noted."
            ),
        ),
        Study(
            "init",
            "Does BN reduce sensitivity to the initial weight scale? Glorot-uniform weights × "
            "{0.1, 0.3, 1, 3, 10}, with and without BN.",
            axes={"init_scale": (0.1, 0.3, 1.0, 3.0, 10.0), **BN},
            base={"epochs": 5},
            seeds=3,
            notes="5 epochs, 3 seeds; Adam lr 1e-3, batch size 32.",
        ),
        Study(
            "convergence",
            "Does BN converge faster? Test accuracy every 100 steps (full test set, eval mode); "
            "steps and seconds to 97% and 98%; BN's speed-up factor.",
            axes=dict(BN),
            base={"epochs": 5, "eval_every": 100},
            seeds=5,
            mix_none=False,
            notes=(
                "5 epochs (9375 steps at batch size 32), 5 seeds; models with and without BN train in "
                "separate stacks, so each one's seconds include its own per-step cost; evaluation time is "
                "not counted as training time."
            ),
        ),
        Study(
            "regularization",
            "Does BN regularize? 30 epochs with and without BN: train–test gap over time, "
            "final test loss and its rise from its minimum (overfitting).",
            axes=dict(BN),
            base={"epochs": 30},
            seeds=3,
            notes="30 epochs, 3 seeds (about 5 minutes on 2 CPU cores).",
        ),
        Study(
            "small-batch",
            "How do BN and the other norms fare at small batches (Wu & He 2018, Table 2 on this "
            "net)? norm {none, batch, layer, group, batch-renorm, ghost-batch} × batch size {2 … 128}.",
            axes={
                "batch_size": (2, 4, 8, 16, 32, 128),
                "norm": tuple(NORMS),
                "precise_bn": (False, True),
            },
            base={"epochs": 2, "train_limit": 10000},
            seeds=3,
            notes=(
                "The first 10,000 training images, 2 epochs, 3 seeds, so that batch size 2 (10,000 steps) "
                "fits the budget; group norm uses groups of 8 channels, ghost batch norm virtual batches of "
                "16 (plain BN at batch size 16 or less). The norms with running statistics (batch, "
                "batch-renorm, ghost-batch) are evaluated twice over: with their running statistics and with "
                "precise BN (each layer's exact statistics over the 10,000 training images, recomputed "
                "before every evaluation); both readings train the same model. Batch renorm is plain BN for "
                "its first max(300, 5%) steps (the running statistics' warm-up at momentum 0.99), so at "
                "batch size 128 (158 steps) it is plain BN throughout."
            ),
        ),
        Study(
            "placement",
            "Where should BN go: after the ReLU (the original study) or before it (the BN paper)?",
            axes={"norm": ("none", "batch"), "placement": ("after", "before")},
            base={"epochs": 5},
            seeds=3,
            notes="5 epochs, 3 seeds, batch size 32.",
        ),
        Study(
            "overhead",
            "What does BN cost? Training time per step with and without BN; inference latency at batch "
            "1 and 1000 and memory, with BN and with BN folded into the neighbouring Linear layer.",
            axes={"norm": ("none", "batch"), "placement": ("after", "before")},
            base={"epochs": 1, "final_probes": ("inference",)},
            seeds=3,
            mix_none=False,
            max_stack=1,
            notes=(
                "1 epoch, 3 seeds; every model trains alone (a stack of one), so its training time is its "
                "own. Trained parameters are kept in the store (bnlab fold exports them)."
            ),
        ),
        Study(
            "invariance",
            "Is a BN network invariant to scaling and shifting its input? Test accuracy on a·x + b "
            "for a in {0.25 … 4}, b in {-0.5, 0, 0.5}, in eval mode and with batch statistics.",
            axes={"norm": ("none", "batch"), "placement": ("after", "before")},
            base={"epochs": 3, "final_probes": ("invariance",)},
            seeds=3,
            notes="3 epochs, 3 seeds, batch size 32; trained on x in [0, 1] only.",
        ),
        Study(
            "activations",
            "Does BN keep the distribution of each layer's input to its nonlinearity steady over "
            "training (Ioffe & Szegedy 2015, Figure 1 b, c)? 15th/50th/85th percentiles on 1000 test images.",
            axes=dict(BN),
            base={"epochs": 3, "probes": ("activations",), "probe_every": 200},
            seeds=3,
            notes="3 epochs, 3 seeds, percentiles every 200 steps, eval mode.",
        ),
        Study(
            "ioffe-mnist",
            "The BN paper's own MNIST setup: 3 hidden layers of 100 sigmoid units, batch 60, 50k steps, BN "
            "before the nonlinearity; test accuracy and input distributions over training (Figure 1).",
            axes=dict(BN),
            base={
                "hidden": (100, 100, 100),
                "activation": "sigmoid",
                "placement": "before",
                "batch_size": 60,
                "epochs": 50,
                "optimizer": "sgd",
                "lr": 0.1,
                "probes": ("activations",),
                "probe_every": 1000,
            },
            seeds=3,
            notes=(
                "50 epochs of 1000 steps = 50k steps; plain SGD at lr 0.1 (the paper names neither optimizer "
                "nor rate for this experiment); 3 seeds."
            ),
        ),
        Study(
            "ics",
            "Does BN reduce internal covariate shift as Santurkar et al. (2018, Definition 2.1) measure it: "
            "how much a layer's gradient changes when the layers before it take their update?",
            axes={**BN, "placement": ("after", "before")},
            base={"epochs": 2, "probes": ("ics",), "probe_every": 250},
            seeds=3,
            notes=(
                "2 epochs, 3 seeds, every 250 steps; Adam lr 1e-3, batch size 32, as the original; BN after "
                "the ReLU (the original) and before it (Santurkar et al., the BN paper)."
            ),
        ),
        Study(
            "smoothness",
            "Does BN make the loss landscape smoother (Santurkar et al. 2018, §3): loss variation, gradient "
            "predictiveness and effective β-smoothness along the optimizer's step, and the curvature "
            "‖Hg‖/‖g‖ along the gradient?",
            axes={**BN, "placement": ("after", "before")},
            base={"epochs": 2, "probes": ("smoothness",), "probe_every": 250},
            seeds=3,
            notes=(
                "2 epochs, 3 seeds, every 250 steps; points at 0.5, 1, 2 and 4 times the optimizer's actual "
                "update (Adam's step, not the gradient's direction); ‖Hg‖/‖g‖ by double backpropagation; BN "
                "after the ReLU (the original) and before it (Santurkar et al.)."
            ),
        ),
        Study(
            "noisy-bn",
            "If BN worked by removing internal covariate shift, BN followed by random time-varying "
            "shifts and scales (Santurkar et al. 2018, §2.1) should lose its benefit. Does it?",
            axes={"norm": ("none", "batch"), "noise": (False, True)},
            base={"epochs": 5, "probes": ("activations",), "probe_every": 200},
            seeds=3,
            notes=(
                "5 epochs, 3 seeds; noise i.i.d. per sample and unit, y' = scale·y + shift, shift ~ N(μ, "
                "σ²), scale ~ N(a, ρ²), with μ ~ U(−0.5, 0.5), σ ~ U(0, 0.5), a ~ U(1, 1.25), ρ ~ U(0, 0.1) "
                "drawn anew every step for every layer and unit (bnlab.core.noise). Activation percentiles "
                "in eval mode (act_p*, no noise) and in training mode with the noise on (act_train_p*)."
            ),
        ),
        Study(
            "depth",
            "Does BN's benefit grow with depth? The seed's protocol on MLPs of 2, 4, 8 and 16 hidden "
            "layers (the first 128 wide, the rest 64; depth 2 is the seed's 784-128-64-10 net), with and "
            "without BN after each hidden ReLU (the original), and with BN before it (the BN paper): final "
            "accuracy, accuracy after epoch 1, divergence.",
            axes={"hidden": tuple(stack_of(n) for n in DEPTHS), **BN, "placement": ("after", "before")},
            base={"epochs": 10},
            seeds=5,
            notes=(
                "Adam lr 1e-3, batch size 32, 10 epochs, 5 seeds, profile keras (Glorot init, BN momentum "
                "0.99, eps 1e-3), as the seed study; hidden widths 128 then 64 (not all 128). The claims "
                "test BN after the ReLU, the original's placement; BN before it is in each table's rows."
            ),
        ),
        Study(
            "width",
            "Does BN's effect depend on width? The seed's net with its hidden widths (128, 64) × 0.25, 1 "
            "and 4, i.e. (32, 16), (128, 64) and (512, 256), with and without BN after each hidden ReLU.",
            axes={"hidden": tuple((round(128 * t), round(64 * t)) for t in WIDTHS), **BN},
            base={"epochs": 10},
            seeds=5,
            notes="Adam lr 1e-3, batch size 32, 10 epochs, 5 seeds, profile keras, as the seed study.",
        ),
        Study(
            "transfer",
            "Does BN's effect carry over to a harder dataset? The seed study (norm × batch size "
            "16/32/64/128) on MNIST and on Fashion-MNIST: the seed study's claims on each, side by side, and "
            "whether BN's effect differs between them (dataset × norm interaction).",
            axes={
                "dataset": ("mnist", "fashion-mnist"),
                "norm": ("none", "batch"),
                "batch_size": (16, 32, 64, 128),
            },
            base={"epochs": 10},
            seeds=5,
            notes=(
                "The seed study's protocol (Adam lr 1e-3, 10 epochs, 5 seeds, profile keras) on both "
                "datasets; Fashion-MNIST from BNLAB_DATA_DIR/fashion-mnist (Debian: "
                "dataset-fashion-mnist). Its convergence threshold is 85% test accuracy (MNIST's 97%)."
            ),
        ),
    ]
}
ALL = "all"  # bnlab study all: every study above, then one summary report


def get(name_or_path: str) -> Study:
    """A named study, or a study read from a TOML file."""
    if name_or_path in STUDIES:
        return STUDIES[name_or_path]
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        return load_toml(Path(name_or_path))
    raise ConfigError(
        f"unknown study {show(name_or_path)}; choose one of: {', '.join(STUDIES)} "
        f"(bnlab study --list), or give a path to a .toml study file"
    )


TOML_KEYS = ("name", "question", "seeds", "base", "grid", "notes", "mix_none", "max_stack", "claims")


MAX_STUDY_BYTES = 1 << 20  # a study file is a few lines; 1 MiB is room for any real one


def load_toml(path: Path) -> Study:
    """Read and validate a study file (UTF-8 TOML, at most MAX_STUDY_BYTES); every problem is one
    ConfigError naming the file, the problem and the fix."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"study file {path} {problem}; {_fix(problem)}")

    return from_dict(toml_text.parse(reading.read_text(path, MAX_STUDY_BYTES, fail), str(path)), str(path))


def _fix(problem: str) -> str:
    """The fix for a study file `reading` refused."""
    if problem == "does not exist":
        return "check the path"
    if "more than" in problem:
        return f"a study file holds at most {MAX_STUDY_BYTES:,} bytes: pass the right file"
    if "UTF-8" in problem:
        return "save it as UTF-8"
    return "pass a readable study file"


def from_dict(data: dict, where: str = "study") -> Study:
    """A study from a parsed study file, checked whole (every run's spec, the grid's size, the stack's
    memory) before anything runs; every problem is one ConfigError that starts with `where`."""
    try:
        return _from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _from_dict(data: dict) -> Study:
    for k in data:
        if k not in TOML_KEYS:
            raise ConfigError(f"unknown key {show(k)}; allowed: {', '.join(TOML_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ConfigError(f"name must be 1-64 letters, digits, '-' or '_', got {show(name)}")
    if name in STUDIES or name == ALL:
        raise ConfigError(
            f"name = {name!r} is taken by a built-in study (bnlab study --list), whose record in a "
            "shared store this study would overwrite; choose another name"
        )
    question = data.get("question", "")
    notes = data.get("notes", "")
    if not isinstance(question, str) or not isinstance(notes, str):
        raise ConfigError("question and notes must be strings")
    seeds = data.get("seeds", 5)
    if isinstance(seeds, list):
        seeds = tuple(seeds)
    parse_seeds(seeds)
    base, grid = data.get("base", {}), data.get("grid", {})
    for key, table in (("base", base), ("grid", grid)):
        if not isinstance(table, dict):
            raise ConfigError(f"[{key}] must be a table of RunSpec fields")
    axes = {
        k: tuple(v) if isinstance(v, list) else v for k, v in grid.items()
    }  # Grid.expand checks each axis
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in base.items()}
    mix_none, max_stack = data.get("mix_none", True), data.get("max_stack")
    if not isinstance(mix_none, bool):
        raise ConfigError(f"mix_none must be true or false, got {show(mix_none)}")
    if max_stack is not None:
        max_stack = int(check_bound("max_stack", max_stack))  # an integer bound: the int itself
    study = Study(name, question, axes, base, seeds, notes, mix_none, max_stack)
    specs = study.specs()  # checks every field and value now, not mid-study
    if max_stack:
        check_memory(max(specs, key=memory_bytes), max_stack)
    if "claims" in data:
        study = dataclasses.replace(study, claims=check_claims(data["claims"], specs))
    return study
