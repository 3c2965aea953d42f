"""Findings: one per claim of the original study, computed from the stored runs.

A `Finding` holds the claim (the original's words and single-run numbers), what is
measured, its one pre-declared primary test, the effect with its 95% CI, p, n, the
equivalence margin declared before the data, the design's power, and the verdict:
supported / contradicted (p < α, the CI on one side of 0), equivalent (TOST within
±margin) or inconclusive. Verdicts are decided on p Holm-adjusted across the study's
headline findings (`holm_headlines`); a finding's table rows are exploratory, Holm
within their family. No conclusion is canned: every sentence is assembled from the
numbers. Each study's findings come from its registry.StudyReport.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import stats
from .rows import ALPHA, Row, holm_finite, holm_rows
from .studydata import Config, StudyData

POWER = 0.8
DIGITS = {"pp": 2, "steps": 0, "pp per doubling": 3}  # decimals of an effect, by unit
# Equivalence margins declared before the data, by unit: a difference inside ±margin is too small to matter.
# Final accuracy or error: 0.2 pp, about 1.4 × the binomial SE of one accuracy on 10k test images (0.15 pp).
MARGIN = {"pp": 0.2}


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One claim of the original, tested. `effect` and `effect_ci` are in `unit`."""

    key: str
    title: str
    claim: str
    measure: str
    test: str
    contrast: str  # what `effect` is, e.g. "batch − none"
    effect: float
    effect_ci: tuple[float, float]
    unit: str
    p_value: float
    n: dict[str, int]
    expected_sign: int  # the sign of `effect` that the claim predicts
    verdict: str
    p_holm: float = (
        math.nan
    )  # Holm across the study's headline findings (holm_headlines); decides the verdict
    perm_p: float = math.nan
    rows: tuple[Row, ...] = ()  # exploratory, Holm within their family
    notes: tuple[str, ...] = ()
    margin: float = math.nan  # equivalence margin in `unit`, declared before the data (NaN: none)
    tost_p: float = math.nan  # TOST of |effect| < margin (Holm-adjusted like p_holm once adjusted)
    mde: float = math.nan  # smallest |effect| this design detects with POWER at ALPHA, in `unit`
    seeds_needed: int | None = None  # seeds per configuration to detect the observed effect with POWER
    perm_floor: float = math.nan  # the smallest p the exact permutation test can give with these n
    direction: float = math.nan  # for a test without an effect CI (rank tests): the sign that decides
    decides: str = ""  # for a rank test, the statistic whose side decides, in words: 'P(batch slower) 0.64'

    def effect_text(self) -> str:
        """'batch − none: +0.04 pp [-0.16, +0.24]', as the summary tables show it (a rank test adds what
        decides)."""
        lo, hi = self.effect_ci
        return (
            f"{self.contrast}: {fmt(self.effect, self.unit, True)} [{fmt(lo, self.unit)}, "
            f"{fmt(hi, self.unit)}]" + (f"; {self.decides}" if self.decides else "")
        )

    def sentence(self) -> str:
        """The result in one paragraph, from the numbers."""
        lo, hi = self.effect_ci
        ps = [f"p {p_is(self.p_value)}"]
        if np.isfinite(self.p_holm):
            ps.append(f"Holm-adjusted over the study's claims p {p_is(self.p_holm)}")
        if np.isfinite(self.perm_p):
            floor = (
                f", which cannot go below {self.perm_floor:.2f} with these seeds"
                if np.isfinite(self.perm_floor) and self.perm_floor >= ALPHA
                else ""
            )
            ps.append(f"permutation p {p_is(self.perm_p)}{floor}")
        if np.isfinite(self.tost_p):
            ps.append(f"equivalence (TOST, ±{self._amount(self.margin)}) p {p_is(self.tost_p)}")
        p_used = self.p_holm if np.isfinite(self.p_holm) else self.p_value
        side = "above" if self.expected_sign > 0 else "below"
        ranked = np.isfinite(self.direction)  # a rank test: its direction decides, not the CI
        if not (np.isfinite(p_used) and (ranked or np.isfinite(lo))):
            why = "there are too few runs with spread for a test"
        elif self.verdict == "supported":
            why = (
                f"p < {ALPHA} and the ranks favour the side the claim predicts"
                if ranked
                else f"p < {ALPHA} and the whole CI lies {side} 0, the side the claim predicts"
            )
        elif self.verdict == "contradicted":
            why = (
                f"p < {ALPHA} and the ranks favour the side opposite to the claim"
                if ranked
                else f"p < {ALPHA} and the whole CI lies on the side opposite to the claim"
            )
        elif self.verdict == "equivalent":
            why = f"the difference is shown to lie within ±{self._amount(self.margin)}"
        elif p_used >= ALPHA:
            why = f"p ≥ {ALPHA}: the data cannot tell this effect from 0"
        else:
            why = "the CI includes 0"
        n = ", ".join(f"{v} {k}" for k, v in self.n.items())
        return (
            f"{self.contrast} = {fmt(self.effect, self.unit, True)} (95% CI {fmt(lo, self.unit)} to "
            f"{fmt(hi, self.unit)}){'; ' + self.decides if self.decides else ''}; {'; '.join(ps)}; n = {n}. "
            "The claim predicts a "
            f"{'positive' if self.expected_sign > 0 else 'negative'} value; {why}: {self.verdict}."
            + self.power_text()
        )

    def _amount(self, v: float) -> str:
        """An unsigned amount with its unit, if any: '0.20 pp', '0.010'."""
        return fmt(v, self.unit).lstrip("+") + (f" {self.unit}" if self.unit else "")

    def power_text(self) -> str:
        """What the design can detect and, when undecided, what would decide it."""
        if not np.isfinite(self.mde):
            return ""
        text = (
            f" With these seeds the test detects an effect of {self._amount(self.mde)} or more with "
            f"{POWER:.0%} power."
        )
        if self.verdict == "inconclusive":
            text += (
                f" At the observed effect, about {self.seeds_needed} seeds per configuration would decide it."
                if self.seeds_needed
                else " The observed effect is too small to decide with any practical number of seeds."
            )
        return text


def fmt(v: float, unit: str = "", with_unit: bool = False) -> str:
    """A signed effect with the decimals its unit deserves (and the unit, if any and asked for)."""
    text = (
        ("+∞" if v > 0 else "−∞")
        if np.isinf(v)
        else "n/a"
        if not np.isfinite(v)
        else f"{v:+.{DIGITS.get(unit, 3)}f}"
    )
    return f"{text} {unit}" if with_unit and unit else text


def fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """'< 0.001', '= 0.012' or '= n/a': reads after 'p '."""
    return fmt_p(p) if np.isfinite(p) and p < 0.001 else f"= {fmt_p(p)}"


def finals(c: Config | None, col: str = "test_acc") -> np.ndarray:
    return c.finals(col) if c else np.array([])


def diverged_notes(*configs: Config | None) -> tuple[str, ...]:
    return tuple(
        f"{c.n_diverged} of {len(c.runs)} runs of {c.label} diverged (non-finite loss at epoch "
        f"{', '.join(str(r.diverged_epoch) for r in c.runs if r.diverged_epoch)}); they have no final "
        f"value and are left out of this test."
        for c in configs
        if c and c.n_diverged
    )


def compare_finding(
    key, title, claim, measure, c: stats.Comparison, *, unit, scale, sign, margin=None, rows=(), notes=()
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
        key=key,
        title=title,
        claim=claim,
        measure=measure,
        test=test,
        contrast=f"{c.label_b} − {c.label_a}",
        effect=c.diff * scale,
        effect_ci=ci,
        unit=unit,
        p_value=c.p_value,
        n={c.label_a: c.n_a, c.label_b: c.n_b},
        expected_sign=sign,
        verdict=stats.verdict_with_equivalence(c.p_value, c.diff_ci, tost, expected_sign=sign, alpha=ALPHA),
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
    key,
    title,
    claim,
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
        key=key,
        title=title,
        claim=claim,
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
        verdict=stats.verdict(c.p_value, (direction,) * 2, expected_sign=-1, alpha=ALPHA),
        rows=tuple(rows),
        notes=(reach, *notes),
        direction=direction,
        decides=f"P({b} slower) {c.prob_b_slower:.2f}" if np.isfinite(c.prob_b_slower) else "",
    )


def stabilization_finding(key, title, claim, st: stats.Stabilization, factor: str, *, notes=()) -> Finding:
    """ "BN makes the result depend less on `factor`": the norm × factor interaction (Welch–James) must be
    significant and BN's spread of configuration means over the factor smaller, its CI below 0."""
    it, sp = st.interaction, st.spread
    n: dict[str, int] = {}
    for (norm, _), k in it.n.items():  # runs per norm over the factor's levels
        n[norm] = n.get(norm, 0) + k
    rows = [
        Row(
            f"spread of means over {factor} (SD, seed noise removed), none (pp)",
            sp.spread_a0 * 100,
            (math.nan, math.nan),
            math.nan,
        ),
        Row(f"spread of means over {factor}, batch (pp)", sp.spread_a1 * 100, (math.nan, math.nan), math.nan),
        Row(
            f"classic two-way ANOVA interaction (F = {it.f:.2f}; assumes equal variances)",
            math.nan,
            (math.nan, math.nan),
            it.p,
        ),
    ]
    return Finding(
        key=key,
        title=title,
        claim=claim,
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
        verdict=stats.verdict(it.welch_p, sp.ci, expected_sign=-1, alpha=ALPHA),
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


def generic_findings(d: StudyData) -> list[Finding]:
    """BN vs none on final test accuracy for every setting that has both, Holm-corrected."""
    pairs = []
    for b in d.configs:
        if b.spec.norm == "batch":
            ref = dataclasses.replace(b.spec, norm="none", placement="after", noise=False).config_hash()
            n = next((c for c in d.configs if c.spec.config_hash() == ref), None)
            if n:
                pairs.append((n, b))
    comps = [stats.compare(n.finals(), b.finals(), label_a="none", label_b="batch") for n, b in pairs]
    where = [d.label(b, exclude=("norm",)).replace("all runs", f"bs {b.spec.batch_size}") for _, b in pairs]
    return [
        compare_finding(
            f"bn{i + 1}",
            f"BN vs none at {w}",
            '"the model with batch normalization achieves higher accuracy" — the original, one run each at '
            "bs 32: "
            "no BN 0.9770, BN 0.9781.",
            f"Final test accuracy after the last epoch at {w}; p-values Holm-corrected over the {len(pairs)} "
            "setting(s) with both norms.",
            c,
            unit="pp",
            scale=100,
            sign=+1,
            notes=diverged_notes(n, b),
        )
        for i, ((n, b), c, w) in enumerate(zip(pairs, comps, where))
    ]
