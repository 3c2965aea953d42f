"""The builders of findings: a claim's primary test (a comparison, a censored comparison, a stabilization)
turned into its `Finding`, and `holm_headlines`, where every verdict is decided, once, on p Holm-adjusted
across the study's claims; a finding's table rows are exploratory, Holm within their family.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import stats
from ..studydata import Config, StudyData
from .claim import Claim
from .finding import MARGIN, POWER, Finding, p_is
from .rows import ALPHA, Row, comparison_row, holm_finite, holm_rows


def finals(c: Config | None, col: str = "test_acc") -> np.ndarray:
    return c.finals(col) if c else np.array([])


def gain_row(label: str, a: Config | None, b: Config | None, la: str, lb: str) -> Row:
    """An exploratory row: final test accuracy of `b` minus `a`, in pp, the claim being that b is higher."""
    return comparison_row(label, stats.compare(finals(a), finals(b), label_a=la, label_b=lb), 100, +1)


def diverged_notes(*configs: Config | None) -> tuple[str, ...]:
    return tuple(
        f"{c.n_diverged} of {len(c.runs)} runs of {c.label} diverged (non-finite loss at epoch "
        f"{', '.join(str(r.diverged_epoch) for r in c.runs if r.diverged_epoch)}); they have no final "
        f"value and are left out of this test."
        for c in configs
        if c and c.n_diverged
    )


def compare_finding(
    claim: Claim, measure, c: stats.Comparison, *, unit, scale, sign, margin=None, rows=(), notes=()
) -> Finding:
    """A finding whose primary test is the comparison `c` (data units × scale = `unit`); margin in `unit`
    (default MARGIN by unit, NaN: no equivalence claim)."""
    m = MARGIN.get(unit, math.nan) if margin is None else margin
    tost = stats.tost_p(c, m / scale)
    sd_a, sd_b = (c.diff_se * math.sqrt(c.n_a / 2),) * 2 if c.paired else (c.sd_a, c.sd_b)
    mde = stats.min_detectable_effect(sd_a, sd_b, c.n_a, c.n_b, ALPHA, POWER) * abs(scale)
    ci = (c.diff_ci[0] * scale, c.diff_ci[1] * scale)
    test = f"{c.test} (two-sided) on {c.label_b} − {c.label_a}, and a permutation test of the same difference"
    return Finding(
        key=claim.key,
        title=claim.title,
        claim=claim.quote,
        measure=measure,
        test=test,
        contrast=f"{c.label_b} − {c.label_a}",
        effect=c.diff * scale,
        effect_ci=ci,
        unit=unit,
        p_value=c.p_value,
        n={c.label_a: c.n_a, c.label_b: c.n_b},
        expected_sign=sign,
        perm_p=c.perm_p,
        rows=tuple(rows),
        notes=tuple(notes),
        margin=m,
        tost_p=tost,
        mde=mde,
        seeds_needed=stats.seeds_needed(abs(c.diff), sd_a, sd_b, ALPHA, POWER) if c.diff else None,
        perm_floor=stats.permutation_floor(c.n_a, c.n_b, paired=c.paired),
    )


def censored_finding(
    claim: Claim,
    measure,
    c: stats.CensoredComparison,
    *,
    labels=("none", "batch"),
    unit="steps",
    rows=(),
    notes=(),
) -> Finding:
    """Time to a threshold, b against a, runs that never reach it ranked last (primary test: Mann–Whitney on
    all runs; the reach counts by Fisher's exact test in the notes); effect: the Hodges–Lehmann shift among
    runs that reached it. The claim is that b is faster (sign −1)."""
    a, b = labels
    direction = c.prob_b_slower - 0.5 if np.isfinite(c.prob_b_slower) else math.nan
    reach = (
        f"Reached the threshold: {a} {c.reached_a}/{c.n_a}, {b} {c.reached_b}/{c.n_b} (Fisher's exact test "
        f"of these counts p {p_is(c.reach_p)}); a run that never reached it counts as slower than every run "
        f"that did (P({b} slower) = {c.prob_b_slower:.2f}); medians {_steps(c.median_a)} vs "
        f"{_steps(c.median_b)}."
    )
    return Finding(
        key=claim.key,
        title=claim.title,
        claim=claim.quote,
        measure=measure,
        test=f"Mann–Whitney U (two-sided, permutation) on {b} vs {a} over all runs, censored runs ranked "
        "last",
        contrast=f"{b} − {a} (Hodges–Lehmann, runs that reached it)",
        effect=c.shift,
        effect_ci=c.shift_ci,
        unit=unit,
        p_value=c.p_value,
        n={a: c.n_a, b: c.n_b},
        expected_sign=-1,
        rows=tuple(rows),
        notes=(reach, *notes),
        direction=direction,
        decides=f"P({b} slower) {c.prob_b_slower:.2f}" if np.isfinite(c.prob_b_slower) else "",
    )


def runs_per_norm(it: stats.Interaction) -> dict[str, int]:
    """Runs per norm, summed over the other factor's levels of a norm × factor layout."""
    n: dict[str, int] = {}
    for (norm, _), k in it.n.items():
        n[norm] = n.get(norm, 0) + k
    return n


def anova_row(it: stats.Interaction, what: str = "") -> Row:
    """The classic (equal-variance) two-way ANOVA interaction beside Welch–James: a row, no verdict."""
    return Row(
        f"classic two-way ANOVA {what}interaction (F = {it.f:.2f}; assumes equal variances)",
        math.nan,
        (math.nan, math.nan),
        it.p,
    )


def stabilization_finding(claim: Claim, st: stats.Stabilization, factor: str, *, notes=()) -> Finding:
    """ "BN makes the result depend less on `factor`": the norm × factor interaction (Welch–James) must be
    significant and BN's spread of configuration means over the factor smaller, its CI below 0."""
    it, sp = st.interaction, st.spread
    n = runs_per_norm(it)
    rows = [
        Row(
            f"spread of means over {factor} (SD, seed noise removed), none (pp)",
            sp.spread_a0 * 100,
            (math.nan, math.nan),
            math.nan,
        ),
        Row(f"spread of means over {factor}, batch (pp)", sp.spread_a1 * 100, (math.nan, math.nan), math.nan),
        anova_row(it),
    ]
    return Finding(
        key=claim.key,
        title=claim.title,
        claim=claim.quote,
        measure=f"Final test accuracy in a norm × {factor} layout ({len(sp.b_levels)} levels): does the "
        "effect of "
        f"{factor} depend on the norm (interaction), and is BN's spread of configuration means over {factor} "
        "smaller? The spread is the SD of the means over the levels with the seed noise taken out; its CI "
        "resamples seeds within each configuration.",
        test=f"Welch–James test of the norm × {factor} interaction (F = {it.welch_f:.2f} on {it.df1} and "
        f"{it.welch_df2:.1f} df; robust to unequal seed noise), with the bootstrap CI of the spread "
        "difference",
        contrast="spread batch − spread none",
        effect=sp.diff * 100,
        effect_ci=(sp.ci[0] * 100, sp.ci[1] * 100),
        unit="pp",
        p_value=it.welch_p,
        n=n,
        expected_sign=-1,
        rows=tuple(rows),
        notes=(
            "A smaller per-seed range alone is not evidence: a norm with less seed noise has a smaller range "
            f"even when {factor} changes nothing; the interaction test asks whether the {factor} profile "
            "itself "
            "differs.",
            *_few_seeds(min(it.n.values(), default=0)),
            *notes,
        ),
    )


def _few_seeds(k: int) -> tuple[str, ...]:
    """The caveat for a bootstrap that resamples fewer than 5 seeds per configuration."""
    return (
        ()
        if k >= 5
        else (
            f"The bootstrap CI resamples only {k} seeds per configuration: at such n bootstrap intervals are "
            "too "
            "narrow (they undercover), so read the interaction test's p; the verdict needs both.",
        )
    )


def _steps(v: float) -> str:
    return (
        "never (half or more did not reach it)"
        if v == math.inf
        else "n/a"
        if not np.isfinite(v)
        else f"{v:.0f}"
    )


def holm_headlines(fs: list[Finding]) -> list[Finding]:
    """The study's headline findings with p (and the TOST p) Holm-adjusted across them, and verdicts decided
    on the adjusted values: one primary test per claim, the family being the study's claims. Each finding's
    exploratory rows are adjusted within their own table (holm_rows)."""
    adj, adj_tost = holm_finite([f.p_value for f in fs]), holm_finite([f.tost_p for f in fs])

    def side(f: Finding) -> tuple[float, float]:
        return (f.direction, f.direction) if np.isfinite(f.direction) else f.effect_ci

    return [
        dataclasses.replace(
            f,
            p_holm=p,
            tost_p=t,
            rows=holm_rows(f.rows),
            verdict=stats.verdict_with_equivalence(p, side(f), t, expected_sign=f.expected_sign, alpha=ALPHA),
        )
        for f, p, t in zip(fs, adj, adj_tost)
    ]


def bn_vs_none(d: StudyData, bs: int, col: str = "test_acc") -> stats.Comparison:
    """Final `col` with BN minus without, at batch size `bs`."""
    return stats.compare(
        finals(d.find(norm="none", batch_size=bs), col),
        finals(d.find(norm="batch", batch_size=bs), col),
        label_a="none",
        label_b="batch",
    )
