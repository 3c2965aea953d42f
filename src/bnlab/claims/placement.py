"""Findings and the table for the claim studies that compare BN after the ReLU (the original's
placement), BN before it (the BN paper's) and no BN: placement (accuracy), overhead (training time,
inference latency, memory, folding) and invariance (accuracy on inputs a·x + b).

Conventions as in `claim_findings`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from ..studydata import Config, StudyData, final_probe, per_step_ms
from .claim import Claim
from .finding import Finding
from .findings import compare_finding, diverged_notes, finals, gain_row
from .rows import Row, comparison_row


# ---- placement --------------------------------------------------------------------------------------
def before_beats_after(claim: Claim, d: StudyData) -> Finding:
    none, after, before = (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )
    rows = [
        gain_row("after − none (pp)", none, after, "none", "after"),
        gain_row("before − none (pp)", none, before, "none", "before"),
    ]
    return compare_finding(
        claim,
        f"Final test accuracy after {d.epochs}, BN before minus BN after the ReLU; the table "
        "compares each placement with no BN.",
        stats.compare(finals(after), finals(before), label_a="after", label_b="before"),
        unit="pp",
        scale=100,
        sign=+1,
        rows=rows,
        notes=diverged_notes(none, after, before),
    )


# ---- overhead ---------------------------------------------------------------------------------------
def _three(d: StudyData) -> tuple[Config | None, Config | None, Config | None]:
    """No BN, BN after the ReLU, BN before it."""
    return (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )


def training_cost(claim: Claim, d: StudyData) -> Finding:
    """BN's training milliseconds per step against none (each timed in a stack of its own norm)."""
    none, after, before = _three(d)
    t = stats.compare(per_step_ms(none), per_step_ms(after), label_a="none", label_b="batch")
    ratio, rci = stats.log_ratio_ci(per_step_ms(after), per_step_ms(none))
    return compare_finding(
        claim,
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


def inference_cost(B: int, folding_note: bool = False):
    """The test of 'BN costs inference time at batch B, and folding removes it' (and, with `folding_note`,
    the largest folding error seen)."""

    def test(claim: Claim, d: StudyData) -> Finding:
        none, after, before = _three(d)
        rows = [
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
            for label, c in (("after", after), ("before", before))
        ]
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
        errs = np.concatenate(
            [final_probe(c, "fold_max_abs_err") for c in (after, before) if c] or [np.array([])]
        )
        notes = (
            (
                f"Folding is exact: the largest |folded − unfolded| test logit over {len(errs)} models is "
                f"{stats.nan_stat(errs):.1e} (float32; bnlab's tests require ≤ 1e-5).",
            )
            if folding_note and len(errs)
            else ()
        )
        return compare_finding(
            claim,
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
            notes=notes,
        )

    return test


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


def input_invariance(claim: Claim, d: StudyData) -> Finding:
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
    return compare_finding(
        claim,
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


PLACEMENT = (
    Claim(
        key="place",
        title="BN before the ReLU (the BN paper) beats BN after it (the original)",
        quote="The original put BN after each ReLU; Ioffe & Szegedy (2015) normalize the pre-activation, "
        "before the nonlinearity.",
        test=before_beats_after,
    ),
)
SAID_INFERENCE = '"the additional computation and memory at inference time" (no numbers).'
OVERHEAD = (
    Claim(
        key="ovh-train",
        title="BN costs training time",
        quote='"batch normalization introduces additional computational overhead during training" '
        "(no numbers).",
        test=training_cost,
    ),
    Claim(
        key="ovh-infer-b1",
        title="BN costs inference time at batch 1, and folding removes it",
        quote=SAID_INFERENCE,
        test=inference_cost(1),
    ),
    Claim(
        key="ovh-infer-b1000",
        title="BN costs inference time at batch 1000, and folding removes it",
        quote=SAID_INFERENCE,
        test=inference_cost(1000, folding_note=True),
    ),
)
INVARIANCE = (
    Claim(
        key="inv",
        title="BN makes the network invariant to input scale and shift",
        quote='"invariance to scaling and shifting" of the inputs, as the original listed among BN\'s '
        "properties.",
        test=input_invariance,
    ),
)
