"""The seed study's six claims (a–f), each tested on the stored runs; the original's own numbers.

The keys a–f follow the original discussion; each function is named by what it tests.
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from ..studydata import Config, StudyData
from .claim import Claim
from .finding import MARGIN, Finding, fmt_p
from .findings import (
    bn_vs_none,
    censored_finding,
    compare_finding,
    diverged_notes,
    finals,
    stabilization_finding,
)
from .rows import Row, comparison_row, holm_finite, trend_row

# The original's single runs (Keras, one seed each): (norm, batch size) -> final test accuracy as printed.
ORIGINAL = {
    ("none", 32): (0.9770,),
    ("batch", 16): (0.9787,),
    ("batch", 32): (0.9785, 0.9781),
    ("batch", 64): (0.9788,),
    ("batch", 128): (0.9774,),
}
ORIGINAL_TABLE = {16: 0.9786, 32: 0.9785, 64: 0.9787, 128: 0.9774}  # its hand-typed "Comparison Table" (BN)
SHARED_TIMING_NOTE = (
    "No seconds are compared: models with and without BN of one batch size trained in one stack "
    "and share its time per step; the convergence and overhead studies time them apart."
)


def bn_improves_accuracy(claim: Claim, d: StudyData) -> Finding:
    """BN improves final test accuracy: bs 32 (Welch + permutation), and every batch size with Holm."""
    bss = sorted(
        b for b in d.values("batch_size") if all(d.find(norm=n, batch_size=b) for n in ("none", "batch"))
    )
    comps = [bn_vs_none(d, b) for b in bss if b != 32]
    adj = holm_finite([c.p_value for c in comps])
    main = bn_vs_none(d, 32)
    rows = [
        comparison_row(f"bs {b}: batch − none", c, 100, +1, p, margin=MARGIN["pp"])
        for b, c, p in zip([b for b in bss if b != 32], comps, adj)
    ]
    return compare_finding(
        claim,
        f"Test accuracy after the last epoch ({d.epochs}), batch size 32; the table repeats the test at the "
        "other batch sizes (exploratory, Holm-corrected over them).",
        main,
        unit="pp",
        scale=100,
        sign=+1,
        rows=rows,
        notes=diverged_notes(*(d.find(batch_size=32, norm=n) for n in ("none", "batch"))),
    )


def seconds_rows(d: StudyData, thr: float, wa, wb) -> list[Row]:
    """Seconds to `thr`, batch − none; none where the two shared stacks (and so their time per step)."""
    return (
        []
        if d.shared_timing
        else [
            comparison_row(
                f"seconds to {thr:.0%}: batch − none",
                stats.compare(wa, wb, label_a="none", label_b="batch"),
                1,
                -1,
            )
        ]
    )


def bn_converges_faster(claim: Claim, d: StudyData) -> Finding:
    """BN converges faster: steps to the threshold test accuracy at bs 32, runs that never reach it
    ranked last."""
    none, batch = d.find(norm="none", batch_size=32), d.find(norm="batch", batch_size=32)
    thr = d.threshold
    (sa, wa), (sb, wb) = [c.to_threshold(thr) if c else (np.array([]), np.array([])) for c in (none, batch)]
    notes = []
    if none and none.runs:
        per = int(none.runs[0].m["steps"][0]) if len(none.runs[0].m["steps"]) else 0
        notes.append(
            f"Test accuracy is evaluated at the end of every epoch ({per} steps at bs 32)"
            f"{' and every ' + str(none.spec.eval_every) + ' steps' if none.spec.eval_every else ''}; "
            "steps are resolved to that grid, so many runs tie: the convergence study evaluates every "
            "100 steps and is the finer test of this claim."
        )
    if d.shared_timing:
        notes.append(SHARED_TIMING_NOTE)
    return censored_finding(
        claim,
        f"Optimizer steps until test accuracy first reaches {thr:.0%} within {d.epochs}, batch size 32 "
        "(fewer is faster); a run that never reaches it is slower than any run that does"
        + ("." if d.shared_timing else "; the table adds training seconds to the same point."),
        stats.censored_compare(sa, np.isfinite(sa), sb, np.isfinite(sb)),
        rows=seconds_rows(d, thr, wa, wb),
        notes=(*notes, *diverged_notes(none, batch)),
    )


def bn_regularizes(claim: Claim, d: StudyData) -> Finding:
    """BN regularizes: a smaller train–test accuracy gap (and lower test loss) at bs 32."""
    none, batch = d.find(norm="none", batch_size=32), d.find(norm="batch", batch_size=32)

    def gap(train: str) -> stats.Comparison:
        return stats.compare(
            none.gaps(train) if none else [],
            batch.gaps(train) if batch else [],
            label_a="none",
            label_b="batch",
        )

    return compare_finding(
        claim,
        "Train accuracy minus test accuracy at the last epoch, batch size 32, both measured the same way: "
        "the trained network in eval mode on the whole training set and on the test set. The table adds the "
        "gap with Keras's running training-mode accuracy (the mean over the epoch while the weights move, "
        "with batch statistics, which pull BN's down and so flatter its gap) and the final test loss.",
        gap("eval"),
        unit="pp",
        scale=100,
        sign=-1,
        rows=[
            comparison_row(
                "gap with the running training-mode accuracy (pp): batch − none",
                gap("running"),
                100,
                -1,
                margin=MARGIN["pp"],
            ),
            comparison_row("final test loss (nats): batch − none", bn_vs_none(d, 32, "test_loss"), 1, -1),
        ],
        notes=diverged_notes(none, batch),
    )


def small_batches_generalize_best(claim: Claim, d: StudyData) -> Finding:
    """Small batches generalize best: BN at bs 16 beats each other batch size (intersection–union test)."""
    bn = {c.spec.batch_size: c for c in d.configs if c.spec.norm == "batch"}
    x = np.concatenate([np.full(len(c.runs), math.log2(b)) for b, c in bn.items()]) if bn else np.array([])
    y = np.concatenate([c.finals() * 100 for c in bn.values()]) if bn else np.array([])
    g = stats.group_test({b: c.finals() for b, c in bn.items()})
    best = stats.best_of(
        finals(bn.get(16)), {f"bs {b}": c.finals() for b, c in sorted(bn.items()) if b != 16}
    )
    rows = [
        Row(
            f"bs 16 − {k} (one-sided Welch)",
            best.diffs[k] * 100,
            tuple(v * 100 for v in best.cis[k]),
            best.p_values[k],
        )
        for k in best.diffs
    ]
    rows += [
        trend_row("slope of final test accuracy (pp) per doubling of batch size, BN", stats.trend(x, y), -1),
        Row(
            f"one-way ANOVA across {len(bn)} batch sizes, BN (F = {g.anova_f:.2f}; Kruskal–Wallis p = "
            f"{fmt_p(g.kruskal_p)})",
            math.nan,
            (math.nan, math.nan),
            g.anova_p,
        ),
    ]
    w = best.weakest
    return Finding(
        key=claim.key,
        title=claim.title,
        claim=claim.quote,
        measure="Final test accuracy with BN at batch size 16 against every other batch size; the claim "
        "holds only if bs 16 beats each of them. The table adds each pair, a linear trend against "
        "log2(batch size) and a test for any difference among the batch sizes. Bootstrap P(bs 16 has the "
        f"highest mean) = {best.prob_best:.2f}.",
        test="intersection–union test (Berger 1982): the largest of the one-sided Welch p-values of bs 16 "
        "against each other batch size",
        contrast=f"bs 16 − {w} (the closest competitor)" if w else "bs 16 − others",
        effect=best.diffs.get(w, math.nan) * 100,
        effect_ci=tuple(v * 100 for v in best.cis.get(w, (math.nan,) * 2)),
        unit="pp",
        p_value=best.p_value,
        n={"bs 16": best.n_best, **best.n},
        expected_sign=+1,
        rows=tuple(rows),
        notes=diverged_notes(*bn.values()),
    )


def larger_batches_smoother_curves(claim: Claim, d: StudyData) -> Finding:
    """Larger batches give smoother curves: the noise of the per-step training loss around its trend, against
    log2(batch size), with BN."""

    def xy(norm, per_run):
        cs = [c for c in d.configs if c.spec.norm == norm]
        return (
            np.array([math.log2(c.spec.batch_size) for c in cs for _ in c.runs]),
            np.concatenate([per_run(c) for c in cs]) if cs else np.array([]),
        )

    def roughness(c: Config) -> np.ndarray:
        return np.array([r.roughness() * 100 for r in c.runs])

    t = stats.trend(*xy("batch", lambda c: c.loss_noise()))
    means = [
        Row(f"mean log10 loss noise, BN, bs {c.spec.batch_size}", s.mean, (s.ci_low, s.ci_high), math.nan)
        for c in d.configs
        if c.spec.norm == "batch"
        for s in [stats.summarize(c.loss_noise())]
    ]
    return Finding(
        key=claim.key,
        title=claim.title,
        claim=claim.quote,
        measure="Noise of a run's training curve: the standard deviation of its per-step training loss "
        "around its trend, √(mean((Δ²x)²)/6) from second differences (zero for any straight line, so the "
        "curve's own descent is not counted as noise), averaged over epochs; log10 of it regressed on "
        "log2(batch size) over all BN runs. The table adds the slope without BN, the means per batch size "
        "and the old per-epoch test-accuracy roughness (which mixes the slope of a rising curve with its "
        "noise).",
        test="Least-squares slope with its t-interval (scipy linregress), two-sided",
        contrast="slope per doubling of batch size",
        effect=t.slope,
        effect_ci=t.slope_ci,
        unit="log10 per doubling",
        p_value=t.p_value,
        n={"BN runs": t.n},
        expected_sign=-1,
        rows=(
            trend_row(
                "slope without BN (log10 per doubling)",
                stats.trend(*xy("none", lambda c: c.loss_noise())),
                -1,
            ),
            *means,
            trend_row(
                "test-accuracy roughness, BN (pp per doubling; not detrended)",
                stats.trend(*xy("batch", roughness)),
                -1,
            ),
        ),
    )


def bn_stabilizes_across_batch_sizes(claim: Claim, d: StudyData) -> Finding:
    """BN stabilizes across batch sizes: the norm × batch-size interaction, and BN's spread of means
    over them."""
    cells = {
        (c.spec.norm, c.spec.batch_size): c.finals() for c in d.configs if c.spec.norm in ("none", "batch")
    }
    return stabilization_finding(
        claim,
        stats.stabilization(cells, "none", "batch"),
        "batch size",
        notes=diverged_notes(*d.configs),
    )


# The original's words, once: the regularization study tests the same claim (c) over more epochs.
SAID_REGULARIZES = (
    '"Batch normalization acts as a form of regularization ... This can prevent overfitting and lead to '
    'better generalization on unseen data" (no numbers were given).'
)
SAID_CONVERGES = '"Batch normalization helps neural networks converge more quickly" (no numbers were given).'
BS32 = {"batch_size": (32,), "norm": ("none", "batch")}  # the original's own comparison
BN_ONLY = {"norm": ("batch",)}

CLAIMS = (
    Claim(
        key="a",
        title="BN improves final test accuracy",
        quote='"the model with batch normalization achieves higher accuracy on the validation set compared '
        'to the model without" — one run each at batch size 32: no BN 0.9770, BN 0.9781.',
        test=bn_improves_accuracy,
        uses=BS32,
    ),
    Claim(key="b", title="BN converges faster", quote=SAID_CONVERGES, test=bn_converges_faster, uses=BS32),
    Claim(
        key="c",
        title="BN regularizes (smaller generalization gap)",
        quote=SAID_REGULARIZES,
        test=bn_regularizes,
        uses=BS32,
    ),
    Claim(
        key="d",
        title="Small batches (16) generalize best",
        quote='"a batch size of 16 appears to have yielded the highest validation accuracy" — one BN run '
        "each: bs 16 0.9786 vs bs 128 0.9774 (its table).",
        test=small_batches_generalize_best,
        uses=BN_ONLY,
    ),
    Claim(
        key="e",
        title="Larger batches give smoother curves",
        quote='"As the batch size increases, training curves become smoother and more stable" '
        "(no curves were shown).",
        test=larger_batches_smoother_curves,
        uses=BN_ONLY,
    ),
    Claim(
        key="f",
        title="BN stabilizes training across batch sizes",
        quote='"Batch normalization helps stabilize training across different batch sizes" '
        "(no numbers were given).",
        test=bn_stabilizes_across_batch_sizes,
        uses={"norm": ("none", "batch")},
    ),
)  # the original's claims a–f, in its order


def chance_lines(se_diff: float, sd_diff: float) -> list[str]:
    """The original's two headline differences, in units of the standard error of a difference
    (`se_diff`) and of the seed-to-seed sd of a difference measured here (`sd_diff`)."""
    o, t = ORIGINAL, ORIGINAL_TABLE
    out = []
    for what, (hi, lo) in (
        ("BN vs no BN at bs 32", (o["batch", 32][1], o["none", 32][0])),
        ("bs 16 vs bs 128 with BN", (t[16], t[128])),
    ):
        diff = hi - lo
        out.append(
            f"The original's difference {what} ({hi:.4f} − {lo:.4f}) is {diff * 100:.2f} pp: "
            f"{times(diff, se_diff)} the standard error of a difference and "
            f"{times(diff, sd_diff)} the seed-to-seed sd of a difference measured here."
        )
    return out


def times(x: float, ref: float) -> str:
    """'1.23 times' x / ref, or 'n/a times'."""
    return "n/a times" if not (np.isfinite(ref) and ref > 0) else f"{x / ref:.2f} times"
