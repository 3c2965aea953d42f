"""Claims of the depth and width studies: does BN's benefit grow with depth, and does BN's effect depend on
width?

A diverged run counts at chance accuracy (1/C) throughout: a deep net that does not train is the evidence.
The depth claims' primary test is the Welch–James test of the norm × depth interaction
(`stats.interaction_test`); their effect is the least-squares slope of BN's per-seed gain (batch − none,
paired by seed number) against log2(depth) (`stats.trend`), whose CI must lie above 0: the verdict needs
both, as for `stabilization_finding`. The gain at each depth is an exploratory row, Holm within the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import stats
from ..studydata import Config, StudyData, acc_or_chance, chance
from .claim import Claim
from .finding import MARGIN, Finding
from .findings import anova_row, compare_finding, runs_per_norm, stabilization_finding
from .rows import comparison_row

NORMS = ("none", "batch")
DEEPEST = (128,) + (64,) * 15  # the depth study's deepest net (studies.DEPTHS, studies.stack_of)
Values = Callable[[Config], np.ndarray]  # per run of a configuration, in its seed order


def depth_of(c: Config) -> int:
    return len(c.spec.hidden)


def epoch1_acc(c: Config | None) -> np.ndarray:
    """Test accuracy after epoch 1 per run; a run that diverged in epoch 1 counts as chance."""
    if c is None:
        return np.array([])
    return np.array(
        [
            chance(c)
            if r.diverged_epoch == 1
            else (float(r.m["test_acc"][0]) if len(r.m["test_acc"]) else math.nan)
            for r in c.runs
        ]
    )


def divergence_note(d: StudyData) -> str:
    """'Diverged runs (counted at chance): none 2 layers 0/5, ...'."""
    counts = ", ".join(
        f"{c.spec.norm}{' before the ReLU' if c.spec.placement == 'before' else ''} {depth_of(c)} layers "
        f"{c.n_diverged}/{len(c.runs)}"
        for c in sorted(d.configs, key=lambda c: (c.spec.norm, c.spec.placement, depth_of(c)))
        if c.spec.norm in NORMS
    )
    return (
        f"Diverged runs (non-finite loss; counted at chance accuracy in these tests): {counts or 'no runs'}."
    )


def bn_pairs(d: StudyData, placement: str) -> dict[int, tuple[Config, Config]]:
    """depth → (none, batch with BN at `placement`) for every depth that has both."""
    pairs = {}
    for b in d.configs:
        a = d.find(norm="none", hidden=b.spec.hidden)
        if b.spec.norm == "batch" and b.spec.placement == placement and a:
            pairs[depth_of(b)] = (a, b)
    return pairs


def gain_rows(d: StudyData, values: Values, placement: str, only: int | None = None) -> list:
    """BN at `placement` (after the ReLU: the original's; before: the BN paper's) against none at each depth
    that has both (or at depth `only`): Welch, in pp, with the pp margin."""
    where = "batch" if placement == "after" else "batch before the ReLU"
    return [
        comparison_row(
            f"{L} hidden layers: {where} − none",
            stats.compare(values(n), values(b), label_a="none", label_b="batch"),
            100,
            +1,
            margin=MARGIN["pp"],
        )
        for L, (n, b) in sorted(bn_pairs(d, placement).items())
        if only in (None, L)
    ]


def _paired_gains(none: Config, batch: Config, values: Values) -> np.ndarray:
    """batch − none per seed that both configurations ran."""
    a = dict(zip((r.spec.seed for r in none.runs), values(none)))
    b = dict(zip((r.spec.seed for r in batch.runs), values(batch)))
    return np.array([b[s] - a[s] for s in sorted(a.keys() & b.keys())])


def gain_grows(values: Values, what: str) -> Callable[[Claim, StudyData], Finding]:
    """The test of "BN's gain in `what` grows with depth" on per-run `values`."""

    def test(claim: Claim, d: StudyData) -> Finding:
        pairs = bn_pairs(d, "after")
        depths = sorted(pairs)
        cells = {(n, L): values(c) for L in depths for n, c in zip(NORMS, pairs[L])}
        it = stats.interaction_test(cells)
        gains = {L: _paired_gains(*pairs[L], values) * 100 for L in depths}
        x = [math.log2(L) for L, g in gains.items() for _ in g]
        t = stats.trend(x, [v for g in gains.values() for v in g])
        rows = [
            *gain_rows(d, values, "after"),
            *gain_rows(d, values, "before"),
            anova_row(it, "norm × depth "),
        ]
        n = runs_per_norm(it)
        return Finding(
            key=claim.key,
            title=claim.title,
            claim=claim.quote,
            measure=f"{what} (diverged runs at chance) in a norm × depth layout ({len(depths)} depths): does "
            "BN's gain depend on depth (interaction), and does it grow? The effect is the least-squares "
            "slope of BN's per-seed gain (batch − none, paired by seed number) against log2(hidden layers); "
            "the table gives the gain at each depth (exploratory, Holm-corrected over the depths).",
            test=f"Welch–James test of the norm × depth interaction (F = {it.welch_f:.2f} on {it.df1} and "
            f"{it.welch_df2:.1f} df; robust to unequal seed noise), with the t-interval of the slope of the "
            "gain against log2(depth) (scipy linregress); the verdict needs both",
            contrast="slope of batch − none per doubling of depth",
            effect=t.slope,
            effect_ci=t.slope_ci,
            unit="pp per doubling",
            p_value=it.welch_p,
            n=n,
            expected_sign=+1,
            rows=tuple(rows),
            notes=(divergence_note(d),),
        )

    return test


def deepest_trains_worse(claim: Claim, d: StudyData) -> Finding:
    """Without BN the deepest net trains worse: BN − none at the deepest depth, final accuracy at chance for
    diverged runs; epoch-1 accuracy and the deepest against the shallowest net without BN as rows."""
    depths = sorted({depth_of(c) for c in d.configs})
    deep = max(depths, default=0)
    shallow = min(depths, default=0)

    def at(norm: str, depth: int) -> Config | None:
        return next(
            (
                c
                for c in d.configs
                if c.spec.norm == norm and c.spec.placement == "after" and depth_of(c) == depth
            ),
            None,
        )

    nd, bd, ns = at("none", deep), at("batch", deep), at("none", shallow)
    main = stats.compare(acc_or_chance(nd), acc_or_chance(bd), label_a="none", label_b="batch")
    rows = [
        comparison_row(
            f"accuracy after epoch 1 at {deep} hidden layers: batch − none",
            stats.compare(epoch1_acc(nd), epoch1_acc(bd), label_a="none", label_b="batch"),
            100,
            +1,
        ),
        *gain_rows(d, acc_or_chance, "before", only=deep),
        comparison_row(
            f"no BN, final accuracy: {deep} − {shallow} hidden layers",
            stats.compare(acc_or_chance(ns), acc_or_chance(nd), label_a=f"{shallow}", label_b=f"{deep}"),
            100,
            -1,
        ),
    ]
    return compare_finding(
        claim,
        f"Final test accuracy ({d.epochs}) at the deepest net ({deep} hidden layers), a diverged run counted "
        "at chance; the table adds accuracy after epoch 1 there and the deepest against the shallowest net "
        "without BN.",
        main,
        unit="pp",
        scale=100,
        sign=+1,
        rows=rows,
        notes=(divergence_note(d),),
    )


def width_stabilizes(claim: Claim, d: StudyData) -> Finding:
    """BN makes final accuracy depend less on width: the norm × width interaction and BN's spread of means
    over the widths (diverged runs at chance)."""
    cells = {(c.spec.norm, c.spec.hidden): acc_or_chance(c) for c in d.configs if c.spec.norm in NORMS}
    return stabilization_finding(
        claim,
        stats.stabilization(cells, "none", "batch"),
        "width",
        notes=tuple(
            f"{c.n_diverged} of {len(c.runs)} runs of {c.label} diverged (counted at chance)."
            for c in d.configs
            if c.n_diverged
        ),
    )


AFTER = {"norm": NORMS, "placement": ("after",)}  # the original's placement ("none" is written "after")
DEPTH = (
    Claim(
        key="depth-final",
        title="BN's gain in final test accuracy grows with depth",
        quote="The BN paper's case was deep networks: does BN's gain over no BN (about 0.15 pp at the seed's "
        "two hidden layers) grow with the number of hidden layers?",
        test=gain_grows(acc_or_chance, "Final test accuracy"),
        uses=AFTER,
    ),
    Claim(
        key="depth-epoch1",
        title="BN's gain in accuracy after epoch 1 grows with depth",
        quote="Early training: does BN's gain in test accuracy after the first epoch grow with depth?",
        test=gain_grows(epoch1_acc, "Test accuracy after epoch 1"),
        uses=AFTER,
    ),
    Claim(
        key="depth-deep",
        title="Without BN the deepest net trains worse",
        quote=f"At {len(DEEPEST)} hidden layers, does the net without BN reach a lower final test accuracy "
        "than with BN (diverged runs at chance)?",
        test=deepest_trains_worse,
        uses={**AFTER, "hidden": (DEEPEST,)},
    ),
)
WIDTH = (
    Claim(
        key="width",
        title="BN makes accuracy depend less on width",
        quote="Does BN's effect depend on width? Hidden widths (128, 64) × 0.25, 1 and 4, with and without "
        "BN.",
        test=width_stabilizes,
        uses={"norm": NORMS},
    ),
)
