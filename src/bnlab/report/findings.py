"""Findings: one per claim of the original study, computed from the stored runs.

A `Finding` holds the claim (the original's words and single-run numbers), what
is measured, the test, the effect with its 95% CI, p, n and `stats.verdict`.
No conclusion is canned: every sentence is assembled from the numbers, so new
data give new verdicts. Study findings are looked up by study name in
`FINDINGS`; any other study gets `generic_findings` (BN vs none per setting).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import stats
from .studydata import Config, StudyData

ALPHA = 0.05
DIGITS = {"pp": 2, "steps": 0, "pp per doubling": 3}  # decimals of an effect, by unit


@dataclass(frozen=True)
class Row:
    """One line of a finding's sub-table; verdict '' where the test claims no direction."""

    label: str
    effect: float
    ci: tuple[float, float]
    p_value: float
    p_holm: float = math.nan
    verdict: str = ""


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One claim of the original, tested. `effect` and `effect_ci` are in `unit`."""

    key: str
    title: str
    claim: str
    measure: str
    test: str
    contrast: str          # what `effect` is, e.g. "batch − none"
    effect: float
    effect_ci: tuple[float, float]
    unit: str
    p_value: float
    n: dict[str, int]
    expected_sign: int     # the sign of `effect` that the claim predicts
    verdict: str
    p_holm: float = math.nan
    perm_p: float = math.nan
    rows: tuple[Row, ...] = ()
    notes: tuple[str, ...] = ()

    def effect_text(self) -> str:
        """'batch − none: +0.04 pp [-0.16, +0.24]', as the summary tables show it."""
        lo, hi = self.effect_ci
        return f"{self.contrast}: {fmt(self.effect, self.unit, True)} [{fmt(lo, self.unit)}, {fmt(hi, self.unit)}]"

    def sentence(self) -> str:
        """The result in one paragraph, from the numbers."""
        lo, hi = self.effect_ci
        ps = [f"p {p_is(self.p_value)}"]
        if np.isfinite(self.p_holm):
            ps.append(f"Holm-adjusted p {p_is(self.p_holm)}")
        if np.isfinite(self.perm_p):
            ps.append(f"permutation p {p_is(self.perm_p)}")
        p_used = self.p_holm if np.isfinite(self.p_holm) else self.p_value
        side = "above" if self.expected_sign > 0 else "below"
        if not (np.isfinite(p_used) and np.isfinite(lo)):
            why = "there are too few runs with spread for a test"
        elif self.verdict == "supported":
            why = f"p < {ALPHA} and the whole CI lies {side} 0, the side the claim predicts"
        elif self.verdict == "contradicted":
            why = f"p < {ALPHA} and the whole CI lies on the side opposite to the claim"
        elif p_used >= ALPHA:
            why = f"p ≥ {ALPHA}: the data cannot tell this effect from 0"
        else:
            why = "the CI includes 0"
        n = ", ".join(f"{v} {k}" for k, v in self.n.items())
        return (f"{self.contrast} = {fmt(self.effect, self.unit, True)} (95% CI {fmt(lo, self.unit)} to "
                f"{fmt(hi, self.unit)}); {'; '.join(ps)}; n = {n}. The claim predicts a "
                f"{'positive' if self.expected_sign > 0 else 'negative'} value; {why}: {self.verdict}.")


def fmt(v: float, unit: str = "", with_unit: bool = False) -> str:
    """A signed effect with the decimals its unit deserves (and the unit, if any and asked for)."""
    text = "n/a" if not np.isfinite(v) else f"{v:+.{DIGITS.get(unit, 3)}f}"
    return f"{text} {unit}" if with_unit and unit else text


def fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """'< 0.001', '= 0.012' or '= n/a': reads after 'p '."""
    return fmt_p(p) if np.isfinite(p) and p < 0.001 else f"= {fmt_p(p)}"


def finals(c: Config | None, col: str = "test_acc") -> np.ndarray:
    return c.finals(col) if c else np.array([])


def holm_finite(ps) -> np.ndarray:
    """Holm over the finite p-values; NaN stays NaN."""
    ps = np.asarray(ps, float)
    out = np.full(len(ps), np.nan)
    ok = np.isfinite(ps)
    if ok.any():
        out[ok] = stats.holm(ps[ok])
    return out


def diverged_notes(*configs: Config | None) -> tuple[str, ...]:
    return tuple(f"{c.n_diverged} of {len(c.runs)} runs of {c.label} diverged (non-finite loss at epoch "
                 f"{', '.join(str(r.diverged_epoch) for r in c.runs if r.diverged_epoch)}); they have no final "
                 f"value and are left out of this test." for c in configs if c and c.n_diverged)


def compare_finding(key, title, claim, measure, c: stats.Comparison, *, unit, scale, sign, p_holm=math.nan,
                     rows=(), notes=()) -> Finding:
    ci = (c.diff_ci[0] * scale, c.diff_ci[1] * scale)
    p = p_holm if np.isfinite(p_holm) else c.p_value
    test = f"{c.test} (two-sided) on {c.label_b} − {c.label_a}, and a permutation test of the same difference"
    return Finding(key=key, title=title, claim=claim, measure=measure, test=test,
                   contrast=f"{c.label_b} − {c.label_a}", effect=c.diff * scale, effect_ci=ci, unit=unit,
                   p_value=c.p_value, n={c.label_a: c.n_a, c.label_b: c.n_b}, expected_sign=sign,
                   verdict=stats.verdict(p, c.diff_ci, expected_sign=sign, alpha=ALPHA), p_holm=p_holm,
                   perm_p=c.perm_p, rows=tuple(rows), notes=tuple(notes))


def comparison_row(label: str, c: stats.Comparison, scale: float, sign: int, p_holm: float = math.nan) -> Row:
    p = p_holm if np.isfinite(p_holm) else c.p_value
    return Row(label, c.diff * scale, (c.diff_ci[0] * scale, c.diff_ci[1] * scale), c.p_value, p_holm,
               stats.verdict(p, c.diff_ci, expected_sign=sign, alpha=ALPHA))


def trend_row(label: str, t: stats.Trend, sign: int) -> Row:
    return Row(label, t.slope, t.slope_ci, t.p_value, math.nan,
               stats.verdict(t.p_value, t.slope_ci, expected_sign=sign, alpha=ALPHA))


def bn_vs_none(d: StudyData, bs: int, col: str = "test_acc") -> stats.Comparison:
    """Final `col` with BN minus without, at batch size `bs`."""
    return stats.compare(finals(d.find(norm="none", batch_size=bs), col),
                         finals(d.find(norm="batch", batch_size=bs), col), label_a="none", label_b="batch")


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
    adj = holm_finite([c.p_value for c in comps])
    where = [d.label(b, exclude=("norm",)).replace("all runs", f"bs {b.spec.batch_size}") for _, b in pairs]
    return [compare_finding(
        f"bn{i + 1}", f"BN vs none at {w}",
        '"the model with batch normalization achieves higher accuracy" — the original, one run each at bs 32: '
        'no BN 0.9770, BN 0.9781.',
        f"Final test accuracy after the last epoch at {w}; p-values Holm-corrected over the {len(pairs)} "
        "setting(s) with both norms.", c, unit="pp", scale=100, sign=+1, p_holm=p, notes=diverged_notes(n, b))
        for i, ((n, b), c, p, w) in enumerate(zip(pairs, comps, adj, where))]
