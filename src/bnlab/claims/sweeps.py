"""Findings for the claim studies lr, init, convergence and regularization: each turns one sentence
of the original discussion into a test on its own data (small-batch is in `small_batch_findings`;
placement, overhead and invariance, which compare BN after and before the ReLU with no BN, are in
`placement_findings`).

Conventions as in `findings`: effects with 95% CIs, Welch (or paired) tests with a permutation check,
Holm over a family of settings, verdicts from `stats.verdict`. Where a diverged run must count (a
learning rate or an init that does not train is the evidence), it counts as chance accuracy 1/C and a
note says so. Some studies also have tables (`lr_tables`, ...; `registry` wires them) that the report
prints before its findings.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import stats
from ..studydata import Config, StudyData, acc_or_chance
from .claim import Claim
from .finding import Finding
from .findings import censored_finding, compare_finding, diverged_notes, stabilization_finding
from .rows import Row, comparison_row, holm_finite
from .seed import SAID_CONVERGES, SAID_REGULARIZES, SHARED_TIMING_NOTE, seconds_rows

STABLE_ACC = 0.90  # "trains": no seed diverged and mean final test accuracy at least this


def _stable(c: Config | None) -> bool:
    return bool(c and c.n_diverged == 0 and np.mean(acc_or_chance(c)) >= STABLE_ACC)


def chance_note(cs) -> tuple[str, ...]:
    """The note that diverged runs among configurations `cs` count as chance accuracy; () if none did."""
    n = sum(c.n_diverged for c in cs if c)
    return (
        (
            f"{n} diverged run(s) count as chance accuracy (10%) in these tests: not training is the outcome "
            "being measured.",
        )
        if n
        else ()
    )


# ---- lr ---------------------------------------------------------------------------------------------
def lr_limits(d: StudyData, optimizer: str) -> dict[str, tuple[float, float]]:
    """norm → (largest stable LR, best LR by mean final accuracy) for one optimizer."""
    out = {}
    for norm in ("none", "batch"):
        cs = [c for c in d.configs if c.spec.norm == norm and c.spec.optimizer == optimizer]
        if cs:
            stable = [c.spec.lr for c in cs if _stable(c)]
            best = max(cs, key=lambda c: np.mean(acc_or_chance(c)))
            out[norm] = (max(stable) if stable else math.nan, best.spec.lr)
    return out


def higher_lr(claim: Claim, d: StudyData) -> Finding:
    """BN allows higher learning rates (one optimizer, claim.uses): BN vs none at the first learning rate of
    the grid above the largest at which the net without BN still trains; the other rates exploratory."""
    (opt,) = claim.uses["optimizer"]
    lrs = sorted({c.spec.lr for c in d.configs if c.spec.optimizer == opt})
    pairs = [
        (lr, d.find(optimizer=opt, lr=lr, norm="none"), d.find(optimizer=opt, lr=lr, norm="batch"))
        for lr in lrs
    ]
    pairs = [(lr, n, b) for lr, n, b in pairs if n and b]
    comps = [
        stats.compare(acc_or_chance(n), acc_or_chance(b), label_a="none", label_b="batch")
        for _, n, b in pairs
    ] or [stats.compare([], [], label_a="none", label_b="batch")]
    lim = lr_limits(d, opt)
    none_max = lim.get("none", (math.nan,))[0]
    beyond = [i for i, (lr, _, _) in enumerate(pairs) if not lr <= none_max] or [max(len(pairs) - 1, 0)]
    i = beyond[0]
    adj = holm_finite([c.p_value if j != i else math.nan for j, c in enumerate(comps)])  # the other lrs
    rows = [
        comparison_row(f"lr {x:g}: batch − none", c, 100, +1, p)
        for j, ((x, _, _), c, p) in enumerate(zip(pairs, comps, adj))
        if j != i
    ]
    notes = [
        f"Largest stable learning rate (no seed diverged, mean final accuracy ≥ {STABLE_ACC:.0%}): "
        + "; ".join(f"{k} {lr_text(v[0])}" for k, v in lim.items())
        + ". Best learning rate (highest mean "
        "final accuracy): " + "; ".join(f"{k} {lr_text(v[1])}" for k, v in lim.items()) + "."
    ]
    at = f"lr {pairs[i][0]:g}" if pairs else "no learning rate with both norms"
    return compare_finding(
        claim,
        f"Final test accuracy with {opt} at {at}, the first learning rate of the grid above the "
        "largest one at which the net without BN still trains; the table repeats the test at the "
        "other learning rates (exploratory, Holm-corrected over them).",
        comps[i],
        unit="pp",
        scale=100,
        sign=+1,
        rows=rows,
        notes=notes + list(chance_note([x for _, *p in pairs for x in p])),
    )


def lr_text(v: float) -> str:
    return "none in the grid" if not np.isfinite(v) else f"{v:g}"


# ---- init -------------------------------------------------------------------------------------------
def init_insensitive(claim: Claim, d: StudyData) -> Finding:
    """BN reduces sensitivity to initialization: norm × init-scale interaction on final accuracy (diverged =
    chance), BN's spread over the scales smaller; the table compares the norms at every scale
    (exploratory)."""
    scales = sorted({c.spec.init_scale for c in d.configs})
    cells = {
        (c.spec.norm, c.spec.init_scale): acc_or_chance(c)
        for c in d.configs
        if c.spec.norm in ("none", "batch")
    }
    comps = [
        (
            a,
            stats.compare(
                cells.get(("none", a), []), cells.get(("batch", a), []), label_a="none", label_b="batch"
            ),
        )
        for a in scales
    ]
    adj = holm_finite([c.p_value for _, c in comps])
    f = stabilization_finding(
        claim,
        stats.stabilization(cells, "none", "batch"),
        "init scale",
        notes=chance_note(d.configs),
    )
    return dataclasses.replace(
        f,
        rows=f.rows
        + tuple(
            comparison_row(f"init × {a:g}: batch − none accuracy", c, 100, +1, p)
            for (a, c), p in zip(comps, adj)
        ),
    )


# ---- convergence ------------------------------------------------------------------------------------
CONVERGENCE_THRESHOLDS = (0.97, 0.98)


def converges_faster(thr: float):
    """The test of 'BN converges faster' to test accuracy `thr`: steps to it, runs that never reach it ranked
    last."""

    def test(claim: Claim, d: StudyData) -> Finding:
        none, batch = d.find(norm="none"), d.find(norm="batch")
        (sa, wa), (sb, wb) = [c.to_threshold(thr) if c else (np.array([]),) * 2 for c in (none, batch)]
        f, lo_hi = stats.log_ratio_ci(sa, sb)
        return censored_finding(
            claim,
            f"Optimizer steps until test accuracy first reaches {thr:.0%}, evaluated every "
            f"{none.spec.eval_every if none else '?'} steps (fewer is faster); the table adds training "
            "seconds (BN's per-step cost included) and the speed-up factor among runs that reached it; "
            "a run that never reaches it is slower than any run that does.",
            stats.censored_compare(sa, np.isfinite(sa), sb, np.isfinite(sb)),
            rows=[
                *seconds_rows(d, thr, wa, wb),
                Row(
                    "speed-up factor in steps, geometric mean none/batch over runs that reached it "
                    "(t-interval on log ratio)",
                    f,
                    lo_hi,
                    math.nan,
                ),
            ],
            notes=(*([SHARED_TIMING_NOTE] if d.shared_timing else []), *diverged_notes(none, batch)),
        )

    return test


# ---- regularization ---------------------------------------------------------------------------------
def _rise(c: Config | None) -> np.ndarray:
    """Final test loss minus its minimum over epochs: how far the run overfit."""
    if c is None:
        return np.array([])
    return np.array([r.final("test_loss") - np.nanmin(r.m["test_loss"], initial=np.inf) for r in c.runs])


def regularizes(claim: Claim, d: StudyData) -> Finding:
    none, batch = d.find(norm="none"), d.find(norm="batch")
    gap = stats.compare(
        none.gaps() if none else [], batch.gaps() if batch else [], label_a="none", label_b="batch"
    )
    rows = [
        comparison_row(
            "gap with the running training-mode accuracy (pp): batch − none",
            stats.compare(
                none.gaps("running") if none else [],
                batch.gaps("running") if batch else [],
                label_a="none",
                label_b="batch",
            ),
            100,
            -1,
        ),
        comparison_row(
            "final test loss (nats): batch − none",
            stats.compare(
                none.finals("test_loss") if none else [],
                batch.finals("test_loss") if batch else [],
                label_a="none",
                label_b="batch",
            ),
            1,
            -1,
        ),
        comparison_row(
            "test-loss rise from its minimum (nats): batch − none",
            stats.compare(_rise(none), _rise(batch), label_a="none", label_b="batch"),
            1,
            -1,
        ),
        comparison_row(
            "final test accuracy (pp): batch − none",
            stats.compare(
                none.finals() if none else [],
                batch.finals() if batch else [],
                label_a="none",
                label_b="batch",
            ),
            100,
            +1,
        ),
    ]
    return compare_finding(
        claim,
        f"Train minus test accuracy after {d.epochs}, both in eval mode (the trained network on the "
        "whole training set and on the test set); the table adds the gap with Keras's running "
        "training-mode accuracy, the final test loss, how far it rose from its minimum (overfitting), "
        "and the final test accuracy.",
        gap,
        unit="pp",
        scale=100,
        sign=-1,
        rows=rows,
        notes=diverged_notes(none, batch),
    )


CONVERGENCE = tuple(
    Claim(
        key=f"conv-{round(thr * 100)}",
        title=f"BN converges faster (steps to {thr:.0%})",
        quote=SAID_CONVERGES,
        test=converges_faster(thr),
    )
    for thr in CONVERGENCE_THRESHOLDS
)
LR = tuple(
    Claim(
        key=f"lr-{opt}",
        title=f"BN allows higher learning rates ({opt})",
        quote='"Batch normalization allows for the use of higher learning rates" (no numbers were given).',
        test=higher_lr,
        uses={"optimizer": (opt,)},
    )
    for opt in ("adam", "sgd")
)
INIT = (
    Claim(
        key="init",
        title="BN reduces sensitivity to initialization",
        quote='"Batch normalization reduces the sensitivity of the network to the initial weights" '
        "(no numbers were given).",
        test=init_insensitive,
    ),
)
REGULARIZATION = (
    Claim(
        key="reg",
        title="BN regularizes (smaller generalization gap)",
        quote=SAID_REGULARIZES,
        test=regularizes,
    ),
)
