"""Findings and the table for the small-batch claim study: BN's error at small batches (as trained and
with precise BN) and the batch-independent norms against it (Wu & He 2018).

Conventions as in `claim_findings`: diverged runs count as chance accuracy and a note says so.
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from ..studydata import Config, StudyData, acc_or_chance
from .claim import Claim
from .finding import Finding
from .findings import compare_finding
from .rows import comparison_row, holm_finite
from .sweeps import chance_note


def test_error(c: Config | None) -> np.ndarray:
    return 1 - acc_or_chance(c)


def _sizes(d: StudyData) -> tuple[int, int]:
    """The smallest batch size and the reference (32, else the largest); (0, 0) without runs."""
    bss = sorted({c.spec.batch_size for c in d.configs})
    return (bss[0], 32 if 32 in bss else bss[-1]) if bss else (0, 0)


def bn_degrades(claim: Claim, d: StudyData) -> Finding:
    """BN's error at the smallest batch against bs 32, as trained (running statistics) and with precise BN
    (population statistics recomputed over the training set before evaluation) where the study has both."""
    lo, ref = _sizes(d)

    def err(n: str, b: int, precise: bool = False) -> np.ndarray:
        return test_error(d.find(norm=n, batch_size=b, precise_bn=precise))

    precise_rows = (
        [
            comparison_row(
                f"precise BN (population statistics): bs {lo} − bs {ref} error",
                stats.compare(
                    err("batch", ref, True), err("batch", lo, True), label_a=f"bs {ref}", label_b=f"bs {lo}"
                ),
                100,
                +1,
            )
        ]
        if d.find(norm="batch", precise_bn=True)
        else []
    )
    return compare_finding(
        claim,
        f"Test error with BN at batch size {lo} minus at {ref} (after {d.epochs}), evaluated with the "
        "running statistics, as trained; the table adds the same with precise BN, whose population "
        "statistics do not depend on how far the running averages have converged (large batches take "
        "few steps here).",
        stats.compare(err("batch", ref), err("batch", lo), label_a=f"bs {ref}", label_b=f"bs {lo}"),
        unit="pp",
        scale=100,
        sign=+1,
        rows=precise_rows,
        notes=chance_note(d.configs),
    )


def independent_norms_win(claim: Claim, d: StudyData) -> Finding:
    """At the smallest batch size: the first batch-independent norm of the study against BN (headline), every
    other one exploratory."""
    lo, _ = _sizes(d)
    others = [
        n for n in ("group", "layer", "batch-renorm", "ghost-batch", "none") if d.find(norm=n, batch_size=lo)
    ]
    batch = test_error(d.find(norm="batch", batch_size=lo))
    comps = [
        stats.compare(batch, test_error(d.find(norm=n, batch_size=lo)), label_a="batch", label_b=n)
        for n in others
    ]
    adj = holm_finite([math.nan, *(c.p_value for c in comps[1:])])  # the headline is others[0]
    return compare_finding(
        claim,
        f"Test error at batch size {lo}: {others[0] if others else 'another norm'} minus batch; the table "
        "repeats it for every other norm (exploratory, Holm-corrected over them).",
        comps[0] if comps else stats.compare([], [], label_a="batch", label_b="other"),
        unit="pp",
        scale=100,
        sign=-1,
        rows=[
            comparison_row(f"bs {lo}: {n} − batch error", c, 100, -1, p)
            for n, c, p in list(zip(others, comps, adj))[1:]
        ],
    )


CLAIMS = (
    Claim(
        key="sb-bn",
        title="BN degrades at small batches",
        quote='"the performance of batch normalization may be affected by the batch size" — Wu & He (2018): '
        "BN's error rises sharply as the batch shrinks.",
        test=bn_degrades,
    ),
    Claim(
        key="sb-alt",
        title="Batch-independent norms beat BN at the smallest batch size",
        quote="Wu & He (2018): group normalization, which does not use the batch, keeps its error at small "
        "batches.",
        test=independent_norms_win,
    ),
)
