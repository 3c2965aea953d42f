"""The contract train → store → report: what a trained run is, and the names of what is stored.

No torch here: the store writes `RunResult`s and the report reads the rows back by
these names, so both sides can be imported where no training can.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import RunSpec

# The version of training's numerics: bumped when the same RunSpec would now train to different numbers
# (1: up to bnlab 0.1.0's first studies; 2: Keras's Adam ε placement, renorm warm-up, per-sample noisy BN,
# smoothness along the update, denormals flushed). Stored with each run (versions["numerics"]); a run of
# another version is not reused from a store but trained again.
NUMERICS = 2

# Per-epoch metrics, in the store's column order. Added in store schema 1 (NaN where an older bnlab did not
# measure them): train_acc_eval, train_loss_eval: accuracy and mean loss on the whole training set
# (train_limit included) in eval mode after the epoch, as the test set is evaluated (precise BN statistics
# where RunSpec.precise_bn); train_loss_noise: the noise of the epoch's per-step training loss (each step's
# batch mean) around its trend, bnlab.stats.curve_noise (SD from second differences).
EPOCH_COLS = (
    "epoch",
    "steps",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "wall_s",
    "train_acc_eval",
    "train_loss_eval",
    "train_loss_noise",
)

# Probes recorded during training (bnlab.core.probes.record writes these names; see its docstring).
# act_p*: eval mode; act_train_p*: training mode (batch statistics of the probe batch, noisy BN's noise on);
# beta_hvp: ‖H g‖/‖g‖ along the gradient by double backpropagation.
PERCENTILES = (15, 50, 85)
STEP_NAMES = (
    *(f"act_p{q}" for q in PERCENTILES),
    "ics_l2",
    "ics_cos",
    "loss_variation",
    "grad_predictiveness",
    "beta_smoothness",
    *(f"act_train_p{q}" for q in PERCENTILES),
    "beta_hvp",
)

# Final probes (bnlab.core.final_probes): the invariance grid a·x + b and the latency batch sizes.
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
SHIFTS = (-0.5, 0.0, 0.5)
LATENCY_BATCHES = (1, 1000)


@dataclass
class RunResult:
    """Everything one member produced; the store writes it whole."""

    spec: RunSpec
    epochs: list[dict] = field(default_factory=list)  # EPOCH_COLS
    evals: list[dict] = field(default_factory=list)  # step, test_loss, test_acc, wall_s (RunSpec.eval_every)
    probes: list[dict] = field(default_factory=list)  # step, layer, name, value
    diverged_epoch: int | None = None
    device: str = "cpu"
    model: dict | None = None  # trained parameters (numpy), kept for final probe 'inference'
