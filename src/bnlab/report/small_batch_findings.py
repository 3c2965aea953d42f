"""Findings and the table for the small-batch claim study: BN's error at small batches (as trained and
with precise BN) and the batch-independent norms against it (Wu & He 2018).

Conventions as in `claim_findings`: diverged runs count as chance accuracy and a note says so.
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from .claim_findings import chance_note
from .findings import Finding, compare_finding
from .rows import comparison_row, holm_finite
from .studydata import Config, StudyData, acc_or_chance


def _err(c: Config | None) -> np.ndarray:
    return 1 - acc_or_chance(c)


def small_batch_findings(d: StudyData) -> list[Finding]:
    """BN's error at the smallest batch against bs 32, as trained (running statistics) and with precise BN
    (population statistics recomputed over the training set before evaluation) where the study has both."""
    bss = sorted({c.spec.batch_size for c in d.configs})
    if not bss:
        return []
    lo, ref = bss[0], (32 if 32 in bss else bss[-1])

    def err(n: str, b: int, precise: bool = False) -> np.ndarray:
        return _err(d.find(norm=n, batch_size=b, precise_bn=precise))

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
    fs = [
        compare_finding(
            "sb-bn",
            f"BN degrades at small batches (bs {lo} vs {ref})",
            '"the performance of batch normalization may be affected by the batch size" — Wu & He (2018): '
            "BN's error rises sharply as the batch shrinks.",
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
    ]
    others = [
        n for n in ("group", "layer", "batch-renorm", "ghost-batch", "none") if d.find(norm=n, batch_size=lo)
    ]
    comps = [stats.compare(err("batch", lo), err(n, lo), label_a="batch", label_b=n) for n in others]
    adj = holm_finite([math.nan, *(c.p_value for c in comps[1:])])  # the headline is others[0]
    if others:
        fs.append(
            compare_finding(
                "sb-alt",
                f"Batch-independent norms beat BN at batch size {lo}",
                "Wu & He (2018): group normalization, which does not use the batch, keeps its error at "
                "small batches.",
                f"Test error at batch size {lo}: {others[0]} minus batch; the table repeats it for every "
                "other norm (exploratory, Holm-corrected over them).",
                comps[0],
                unit="pp",
                scale=100,
                sign=-1,
                rows=[
                    comparison_row(f"bs {lo}: {n} − batch error", c, 100, -1, p)
                    for n, c, p in list(zip(others, comps, adj))[1:]
                ],
            )
        )
    return fs


def small_batch_tables(d: StudyData) -> list[tuple]:
    bss = sorted({c.spec.batch_size for c in d.configs})
    rows = []
    for n, precise in dict.fromkeys((c.spec.norm, c.spec.precise_bn) for c in d.configs):
        cells = []
        for b in bss:
            s = stats.summarize(_err(d.find(norm=n, batch_size=b, precise_bn=precise)) * 100)
            cells.append(
                "—"
                if s.n == 0
                else f"{s.mean:.2f}" + (f" ± {s.ci_high - s.mean:.2f}" if np.isfinite(s.ci_high) else "")
            )
        rows.append([f"{n}{', precise BN' if precise else ''}", *cells])
    return [
        ("h2", "Test error (%) by batch size, per norm (Wu & He 2018, Table 2 style)"),
        (
            "p",
            f"Mean ± half-width of the 95% CI over seeds, after {d.epochs}; diverged runs count as chance. "
            "'precise BN': the same trained networks evaluated with population statistics recomputed over "
            "the training set instead of the running averages.",
        ),
        ("table", ["norm", *[f"bs {b}" for b in bss]], rows),
    ]
