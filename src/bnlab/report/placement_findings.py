"""Findings and the table for the claim studies that compare BN after the ReLU (the original's
placement), BN before it (the BN paper's) and no BN: placement (accuracy), overhead (training time,
inference latency, memory, folding) and invariance (accuracy on inputs a·x + b).

Conventions as in `claim_findings`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import stats
from .findings import Finding, compare_finding, diverged_notes, finals
from .rows import Row, comparison_row
from .studydata import Config, StudyData, final_probe, per_step_ms


# ---- placement --------------------------------------------------------------------------------------
def placement_findings(d: StudyData) -> list[Finding]:
    none, after, before = (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )
    rows = [
        comparison_row(
            "after − none (pp)",
            stats.compare(finals(none), finals(after), label_a="none", label_b="after"),
            100,
            +1,
        ),
        comparison_row(
            "before − none (pp)",
            stats.compare(finals(none), finals(before), label_a="none", label_b="before"),
            100,
            +1,
        ),
    ]
    return [
        compare_finding(
            "place",
            "BN before the ReLU (the BN paper) beats BN after it (the original)",
            "The original put BN after each ReLU; Ioffe & Szegedy (2015) normalize the pre-activation, "
            "before the nonlinearity.",
            f"Final test accuracy after {d.epochs}, BN before minus BN after the ReLU; the table "
            "compares each placement with no BN.",
            stats.compare(finals(after), finals(before), label_a="after", label_b="before"),
            unit="pp",
            scale=100,
            sign=+1,
            rows=rows,
            notes=diverged_notes(none, after, before),
        )
    ]


# ---- overhead ---------------------------------------------------------------------------------------
def overhead_findings(d: StudyData) -> list[Finding]:
    none, after, before = (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )
    t = stats.compare(per_step_ms(none), per_step_ms(after), label_a="none", label_b="batch")
    ratio, rci = stats.log_ratio_ci(per_step_ms(after), per_step_ms(none))
    fs = [
        compare_finding(
            "ovh-train",
            "BN costs training time",
            '"batch normalization introduces additional computational overhead during training" '
            "(no numbers).",
            "Training milliseconds per step of one model, batch size 32, each model timed in a stack of its "
            f"own norm ({none.runs[0].device if none else '?'}); BN after the ReLU minus none.",
            t,
            unit="ms",
            scale=1,
            sign=+1,
            rows=[
                Row("time ratio batch/none, geometric means (t-interval on log ratio)", ratio, rci, math.nan),
                comparison_row(
                    "BN before the ReLU − none (ms)",
                    stats.compare(per_step_ms(none), per_step_ms(before), label_a="none", label_b="before"),
                    1,
                    +1,
                ),
            ],
        )
    ]
    for B in (1, 1000):
        rows = []
        for label, c in (("after", after), ("before", before)):
            rows.append(
                comparison_row(
                    f"BN {label}: folded − unfolded (µs)",
                    stats.compare(
                        final_probe(c, f"latency_b{B}_us"),
                        final_probe(c, f"latency_b{B}_folded_us"),
                        label_a="unfolded",
                        label_b="folded",
                        paired=True,
                    ),
                    1,
                    -1,
                )
            )
        fold_vs_none = stats.compare(
            final_probe(none, f"latency_b{B}_us"), final_probe(after, f"latency_b{B}_folded_us")
        )
        rows.append(
            Row(
                "folded BN (after) − no BN (µs); no direction claimed",
                fold_vs_none.diff,
                fold_vs_none.diff_ci,
                fold_vs_none.p_value,
            )
        )
        fs.append(
            compare_finding(
                f"ovh-infer-b{B}",
                f"BN costs inference time at batch {B}, and folding removes it",
                '"the additional computation and memory at inference time" (no numbers).',
                f"Latency of one forward pass at batch {B} in eval mode (plain nn.Sequential, median of 7 "
                "timed blocks): BN after the ReLU minus no BN; the table: folded minus unfolded (paired per "
                "model), and folded BN minus no BN.",
                stats.compare(
                    final_probe(none, f"latency_b{B}_us"),
                    final_probe(after, f"latency_b{B}_us"),
                    label_a="none",
                    label_b="batch",
                ),
                unit="µs",
                scale=1,
                sign=+1,
                rows=rows,
            )
        )
    errs = np.concatenate(
        [final_probe(c, "fold_max_abs_err") for c in (after, before) if c] or [np.array([])]
    )
    if len(errs):
        notes = (
            f"Folding is exact: the largest |folded − unfolded| test logit over {len(errs)} models is "
            f"{stats.nan_stat(errs):.1e} (float32; bnlab's tests require ≤ 1e-5).",
        )
        fs[-1] = dataclasses.replace(fs[-1], notes=fs[-1].notes + notes)
    return fs


def _median_cell(c: Config, name: str, k: float = 1.0, dg: int = 1) -> str:
    """The median over c's runs of final probe `name`, times k, with dg decimals."""
    return f"{stats.nan_stat(final_probe(c, name), np.median) * k:.{dg}f}"


def overhead_tables(d: StudyData) -> list[tuple]:
    rows = []
    for c in d.configs:
        rows.append(
            [
                d.label(c),
                f"{np.median(per_step_ms(c)):.3f}",
                _median_cell(c, "latency_b1_us"),
                _median_cell(c, "latency_b1_folded_us"),
                _median_cell(c, "latency_b1000_us"),
                _median_cell(c, "latency_b1000_folded_us"),
                _median_cell(c, "param_bytes", 1 / 1024),
                _median_cell(c, "state_bytes", 1 / 1024),
                _median_cell(c, "folded_bytes", 1 / 1024),
                f"{stats.nan_stat(final_probe(c, 'fold_max_abs_err')):.1e}",
            ]
        )
    return [
        ("h2", "Cost, measured"),
        (
            "p",
            "Medians over seeds. Training time is per step of one model; latency is one forward pass of "
            "a single plain PyTorch model in eval mode; memory counts float32 parameters (weights, biases, "
            "γ, β), BN's running statistics (state), and the folded model's parameters.",
        ),
        (
            "table",
            [
                "configuration",
                "train ms / step",
                "latency b1 (µs)",
                "b1 folded",
                "latency b1000 (µs)",
                "b1000 folded",
                "params (KiB)",
                "BN state (KiB)",
                "folded (KiB)",
                "max fold error",
            ],
            rows,
        ),
    ]


# ---- invariance -------------------------------------------------------------------------------------
def _drop(c: Config | None, mode: str) -> np.ndarray:
    """Per run: accuracy on the identity input minus the mean accuracy over the other (a, b) of the grid."""
    if c is None:
        return np.array([])
    out = []
    for r in c.runs:
        vals = {k: v for k, v in r.probes.items() if k.startswith(f"inv:{mode}:")}
        base = vals.pop(f"inv:{mode}:a=1:b=0", math.nan)
        out.append(base - np.mean(list(vals.values())) if vals else math.nan)
    return np.array(out)


def invariance_findings(d: StudyData) -> list[Finding]:
    none, after, before = (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )
    rows = []
    for mode in ("eval", "batch"):
        for label, c in (("after", after), ("before", before)):
            rows.append(
                comparison_row(
                    f"{mode} statistics, BN {label} − none",
                    stats.compare(_drop(none, mode), _drop(c, mode), label_a="none", label_b=label),
                    100,
                    -1,
                )
            )
    return [
        compare_finding(
            "inv",
            "BN makes the network invariant to input scale and shift",
            '"invariance to scaling and shifting" of the inputs, as the original listed '
            "among BN's properties.",
            "Accuracy lost on transformed test inputs a·x + b: accuracy at (a, b) = (1, 0) minus the mean "
            "over the other 14 points of the grid, in eval mode (running statistics, as deployed); BN after "
            "the ReLU minus no BN. The table adds BN before the ReLU and batch statistics of the "
            "transformed test set.",
            stats.compare(_drop(none, "eval"), _drop(after, "eval"), label_a="none", label_b="batch"),
            unit="pp",
            scale=100,
            sign=-1,
            rows=rows,
            notes=(
                "Exact property, tested in tests/test_claims.py: in training mode BN(x·cW) = BN(x·W) for "
                "c > 0 (up to ε), so BN before the ReLU is invariant to a·x + b at its first layer when it "
                "normalizes with the statistics of the inputs it sees.",
            ),
        )
    ]
