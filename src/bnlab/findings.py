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

from . import stats
from .studydata import Config, StudyData

ALPHA = 0.05
# The original's single runs (Keras, one seed each): (norm, batch size) -> final test accuracy as printed.
ORIGINAL = {("none", 32): (0.9770,), ("batch", 16): (0.9787,), ("batch", 32): (0.9785, 0.9781),
            ("batch", 64): (0.9788,), ("batch", 128): (0.9774,)}
ORIGINAL_TABLE = {16: 0.9786, 32: 0.9785, 64: 0.9787, 128: 0.9774}  # its hand-typed "Comparison Table" (BN)
SHARED_TIMING_NOTE = ("No seconds are compared: models with and without BN of one batch size trained in one stack "
                      "and share its time per step; the convergence and overhead studies time them apart.")
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


@dataclass(frozen=True)
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


def _finals(c: Config | None, col: str = "test_acc") -> np.ndarray:
    return c.finals(col) if c else np.array([])


def _holm(ps) -> np.ndarray:
    """Holm over the finite p-values; NaN stays NaN."""
    ps = np.asarray(ps, float)
    out = np.full(len(ps), np.nan)
    ok = np.isfinite(ps)
    if ok.any():
        out[ok] = stats.holm(ps[ok])
    return out


def _diverged(*configs: Config | None) -> tuple[str, ...]:
    return tuple(f"{c.n_diverged} of {len(c.runs)} runs of {c.label} diverged (non-finite loss at epoch "
                 f"{', '.join(str(r.diverged_epoch) for r in c.runs if r.diverged_epoch)}); they have no final "
                 f"value and are left out of this test." for c in configs if c and c.n_diverged)


def _compare_finding(key, title, claim, measure, c: stats.Comparison, *, unit, scale, sign, p_holm=math.nan,
                     rows=(), notes=()) -> Finding:
    ci = (c.diff_ci[0] * scale, c.diff_ci[1] * scale)
    p = p_holm if np.isfinite(p_holm) else c.p_value
    test = f"{c.test} (two-sided) on {c.label_b} − {c.label_a}, and a permutation test of the same difference"
    return Finding(key, title, claim, measure, test, f"{c.label_b} − {c.label_a}", c.diff * scale, ci, unit,
                   c.p_value, {c.label_a: c.n_a, c.label_b: c.n_b}, sign,
                   stats.verdict(p, c.diff_ci, expected_sign=sign, alpha=ALPHA), p_holm, c.perm_p, tuple(rows),
                   tuple(notes))


def _row(label: str, c: stats.Comparison, scale: float, sign: int, p_holm: float = math.nan) -> Row:
    p = p_holm if np.isfinite(p_holm) else c.p_value
    return Row(label, c.diff * scale, (c.diff_ci[0] * scale, c.diff_ci[1] * scale), c.p_value, p_holm,
               stats.verdict(p, c.diff_ci, expected_sign=sign, alpha=ALPHA))


def _trend_row(label: str, t: stats.Trend, sign: int) -> Row:
    return Row(label, t.slope, t.slope_ci, t.p_value, math.nan,
               stats.verdict(t.p_value, t.slope_ci, expected_sign=sign, alpha=ALPHA))


def _bn_vs_none(d: StudyData, bs: int, col: str = "test_acc") -> stats.Comparison:
    return stats.compare(_finals(d.find(norm="none", batch_size=bs), col),
                         _finals(d.find(norm="batch", batch_size=bs), col), label_a="none", label_b="batch")


def claim_a(d: StudyData) -> Finding:
    """BN improves final test accuracy: bs 32 (Welch + permutation), and every batch size with Holm."""
    bss = sorted(b for b in d.values("batch_size") if all(d.find(norm=n, batch_size=b) for n in ("none", "batch")))
    comps = [_bn_vs_none(d, b) for b in bss]
    adj = _holm([c.p_value for c in comps])
    main = comps[bss.index(32)] if 32 in bss else _bn_vs_none(d, 32)
    rows = [_row(f"bs {b}: batch − none", c, 100, +1, p) for b, c, p in zip(bss, comps, adj)]
    return _compare_finding(
        "a", "BN improves final test accuracy",
        '"the model with batch normalization achieves higher accuracy on the validation set compared to the model '
        'without" — one run each at batch size 32: no BN 0.9770, BN 0.9781.',
        f"Test accuracy after the last epoch ({d.epochs}), batch size 32; the table repeats the test at every "
        "batch size with Holm-corrected p-values.",
        main, unit="pp", scale=100, sign=+1, rows=rows,
        notes=_diverged(*(d.find(batch_size=32, norm=n) for n in ("none", "batch"))))


def _seconds_rows(d: StudyData, thr: float, wa, wb) -> list[Row]:
    """Seconds to `thr`, batch − none; none where the two shared stacks (and so their time per step)."""
    return [] if d.shared_timing else [_row(f"seconds to {thr:.0%}: batch − none",
                                            stats.compare(wa, wb, label_a="none", label_b="batch"), 1, -1)]


def claim_b(d: StudyData) -> Finding:
    """BN converges faster: steps (and seconds) to the threshold test accuracy at bs 32; fewer is better."""
    none, batch = d.find(norm="none", batch_size=32), d.find(norm="batch", batch_size=32)
    thr = d.threshold
    (sa, wa), (sb, wb) = [c.to_threshold(thr) if c else (np.array([]), np.array([])) for c in (none, batch)]
    reached = ", ".join(f"{name} {int(np.isfinite(s).sum())}/{len(s)}" for name, s in (("none", sa), ("batch", sb)))
    notes = [f"Reached {thr:.0%} test accuracy within {d.epochs}: {reached}. Runs that never reached it have no "
             "value and are left out of the test; a difference in these counts is itself evidence."]
    if none and none.runs:
        per = int(none.runs[0].m["steps"][0]) if len(none.runs[0].m["steps"]) else 0
        notes.append(f"Test accuracy is evaluated at the end of every epoch ({per} steps at bs 32)"
                     f"{' and every ' + str(none.spec.eval_every) + ' steps' if none.spec.eval_every else ''}; "
                     "steps are resolved to that grid.")
    if d.shared_timing:
        notes.append(SHARED_TIMING_NOTE)
    return _compare_finding(
        "b", "BN converges faster",
        '"Batch normalization helps neural networks converge more quickly" (no numbers were given).',
        f"Optimizer steps until test accuracy first reaches {thr:.0%}, batch size 32 (fewer is faster)"
        + ("." if d.shared_timing else "; the table adds training seconds to the same point."),
        stats.compare(sa, sb, label_a="none", label_b="batch"), unit="steps", scale=1, sign=-1,
        rows=_seconds_rows(d, thr, wa, wb),
        notes=notes + list(_diverged(none, batch)))


def claim_c(d: StudyData) -> Finding:
    """BN regularizes: a smaller train–test accuracy gap (and lower test loss) at bs 32."""
    none, batch = d.find(norm="none", batch_size=32), d.find(norm="batch", batch_size=32)
    gap = stats.compare(none.gaps() if none else [], batch.gaps() if batch else [], label_a="none", label_b="batch")
    return _compare_finding(
        "c", "BN regularizes (smaller generalization gap)",
        '"Batch normalization acts as a form of regularization ... This can prevent overfitting and lead to better '
        'generalization on unseen data" (no numbers were given).',
        "Train accuracy minus test accuracy at the last epoch, batch size 32 (train accuracy is the running mean "
        "over the epoch in training mode, as Keras reports it); the table adds the final test loss.",
        gap, unit="pp", scale=100, sign=-1,
        rows=[_row("final test loss (nats): batch − none", _bn_vs_none(d, 32, "test_loss"), 1, -1)],
        notes=_diverged(none, batch))


def claim_d(d: StudyData) -> Finding:
    """Small batches generalize best: BN bs 16 vs bs 128, a trend over log2(batch size), a group test."""
    bn = [c for c in d.configs if c.spec.norm == "batch"]
    x = np.concatenate([np.full(len(c.runs), math.log2(c.spec.batch_size)) for c in bn]) if bn else np.array([])
    y = np.concatenate([c.finals() * 100 for c in bn]) if bn else np.array([])
    g = stats.group_test({c.spec.batch_size: c.finals() for c in bn})
    rows = [_trend_row("slope of final test accuracy (pp) per doubling of batch size, BN", stats.trend(x, y), -1),
            Row(f"one-way ANOVA across {len(bn)} batch sizes, BN (F = {g.anova_f:.2f}; Kruskal–Wallis p = "
                f"{fmt_p(g.kruskal_p)})", math.nan, (math.nan, math.nan), g.anova_p)]
    a, b = d.find(norm="batch", batch_size=128), d.find(norm="batch", batch_size=16)
    return _compare_finding(
        "d", "Small batches (16) generalize best",
        '"a batch size of 16 appears to have yielded the highest validation accuracy" — one BN run each: bs 16 '
        '0.9786 vs bs 128 0.9774 (its table).',
        "Final test accuracy with BN at batch size 16 minus batch size 128; the table adds a linear trend of final "
        "accuracy against log2(batch size) and a test for any difference among the batch sizes.",
        stats.compare(_finals(a), _finals(b), label_a="bs 128", label_b="bs 16"), unit="pp", scale=100, sign=+1,
        rows=rows, notes=_diverged(*bn))


def claim_e(d: StudyData) -> Finding:
    """Larger batches give smoother curves: roughness of test accuracy vs log2(batch size), with BN."""
    def xy(norm):
        cs = [c for c in d.configs if c.spec.norm == norm]
        x = [math.log2(c.spec.batch_size) for c in cs for _ in c.runs]
        return np.array(x), np.array([r.roughness() * 100 for c in cs for r in c.runs])

    t = stats.trend(*xy("batch"))
    means = [Row(f"mean roughness (pp), BN, bs {c.spec.batch_size}", s.mean, (s.ci_low, s.ci_high), math.nan)
             for c in d.configs if c.spec.norm == "batch"
             for s in [stats.summarize([r.roughness() * 100 for r in c.runs])]]
    return Finding(
        "e", "Larger batches give smoother curves",
        '"As the batch size increases, training curves become smoother and more stable" (no curves were shown).',
        "Roughness of a run = mean |Δ test accuracy| between consecutive epochs among epochs 2..T (epoch 1's rise "
        "is left out), in pp; regressed on log2(batch size) over all BN runs. Steady improvement counts too, so a "
        "setting that is still climbing looks rougher: read it beside the curves.",
        "Least-squares slope with its t-interval (scipy linregress), two-sided", "slope per doubling of batch size",
        t.slope, t.slope_ci, "pp per doubling", t.p_value, {"BN runs": t.n}, -1,
        stats.verdict(t.p_value, t.slope_ci, expected_sign=-1, alpha=ALPHA),
        rows=(_trend_row("slope without BN (pp per doubling)", stats.trend(*xy("none")), -1), *means))


def claim_f(d: StudyData) -> Finding:
    """BN stabilizes across batch sizes: per-seed range of final accuracy over batch sizes, paired by seed."""
    def ranges(norm):
        per = [{r.spec.seed: r.final("test_acc") for r in c.runs} for c in d.configs if c.spec.norm == norm]
        seeds = sorted(set().union(*per)) if per else []
        return {s: float(np.ptp([p.get(s, np.nan) for p in per])) for s in seeds}

    rn, rb = ranges("none"), ranges("batch")
    seeds = sorted(set(rn) | set(rb))
    a, b = np.array([rn.get(s, np.nan) for s in seeds]), np.array([rb.get(s, np.nan) for s in seeds])
    dropped = int((~(np.isfinite(a) & np.isfinite(b))).sum())
    notes = [f"{dropped} seed(s) lack a final value at some batch size (diverged or missing) and are left out."]
    return _compare_finding(
        "f", "BN stabilizes training across batch sizes",
        '"Batch normalization helps stabilize training across different batch sizes" (no numbers were given).',
        f"Per seed, the range (max − min) of final test accuracy across the {len(d.values('batch_size'))} batch "
        "sizes, with and without BN; compared paired by seed (same seed = same shuffling).",
        stats.compare(a, b, label_a="none", label_b="batch", paired=True), unit="pp", scale=100, sign=-1,
        notes=notes if dropped else ())


def seed_findings(d: StudyData) -> list[Finding]:
    return [claim(d) for claim in (claim_a, claim_b, claim_c, claim_d, claim_e, claim_f)]


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
    adj = _holm([c.p_value for c in comps])
    where = [d.label(b, exclude=("norm",)).replace("all runs", f"bs {b.spec.batch_size}") for _, b in pairs]
    return [_compare_finding(
        f"bn{i + 1}", f"BN vs none at {w}",
        '"the model with batch normalization achieves higher accuracy" — the original, one run each at bs 32: '
        'no BN 0.9770, BN 0.9781.',
        f"Final test accuracy after the last epoch at {w}; p-values Holm-corrected over the {len(pairs)} "
        "setting(s) with both norms.", c, unit="pp", scale=100, sign=+1, p_holm=p, notes=_diverged(n, b))
        for i, ((n, b), c, p, w) in enumerate(zip(pairs, comps, adj, where))]


FINDINGS = {"seed": seed_findings}   # study name → findings; other studies get generic_findings
ORIGINALS = {"seed": ORIGINAL}       # study name → the original's single-run values to plot beside ours


def findings_for(d: StudyData) -> list[Finding]:
    from . import claims, mechanisms

    return {**FINDINGS, **claims.FINDINGS, **mechanisms.FINDINGS}.get(d.name, generic_findings)(d)
