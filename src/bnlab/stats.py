"""Statistics as small pure functions over arrays of per-seed results (numpy + scipy.stats).

No torch here. NaN entries (diverged runs) are dropped by `summarize`; callers
count and report them. Every interval carries its level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as ss

VERDICTS = ("supported", "contradicted", "inconclusive")


def _arr(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


@dataclass(frozen=True)
class Summary:
    """n, mean, sample sd and the t-interval mean ± t(1−α/2, n−1)·sd/√n."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    level: float


def summarize(values, level: float = 0.95) -> Summary:
    a = _arr(values)
    n = len(a)
    if n == 0:
        return Summary(0, np.nan, np.nan, np.nan, np.nan, level)
    m = float(a.mean())
    if n == 1:
        return Summary(1, m, np.nan, np.nan, np.nan, level)
    sd = float(a.std(ddof=1))
    if sd == 0:
        return Summary(n, m, 0.0, m, m, level)
    lo, hi = ss.t.interval(level, n - 1, loc=m, scale=sd / np.sqrt(n))
    return Summary(n, m, sd, float(lo), float(hi), level)


def bootstrap_ci(values, statistic=np.mean, level: float = 0.95, n_resamples: int = 9999,
                 seed: int = 0) -> tuple[float, float]:
    """Distribution-free CI (scipy.stats.bootstrap, BCa; percentile when BCa is degenerate)."""
    a = _arr(values)
    if len(a) < 2 or np.all(a == a[0]):
        v = float(statistic(a)) if len(a) else np.nan
        return (v, v)
    for method in ("BCa", "percentile"):
        r = ss.bootstrap((a,), statistic, confidence_level=level, n_resamples=n_resamples, method=method,
                         random_state=np.random.default_rng(seed))
        lo, hi = r.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return float(lo), float(hi)
    return (np.nan, np.nan)


def hedges_g(a, b) -> float:
    """g = J·(mean_b − mean_a)/s_pooled, J = 1 − 3/(4(n_a+n_b) − 9)."""
    a, b = _arr(a), _arr(b)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return np.nan
    sp = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    if sp == 0:
        return np.nan
    return float((1 - 3 / (4 * (na + nb) - 9)) * (b.mean() - a.mean()) / sp)


@dataclass(frozen=True)
class Comparison:
    """b against a: difference of means (b − a) with CI, the test's p, a permutation p,
    Hedges' g with a bootstrap CI, and P(b > a) over pairs (ties count ½)."""

    label_a: str
    label_b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    diff_ci: tuple[float, float]
    test: str
    p_value: float
    perm_p: float
    hedges_g: float
    hedges_g_ci: tuple[float, float]
    prob_improvement: float
    paired: bool
    level: float


def compare(a, b, *, label_a: str = "a", label_b: str = "b", paired: bool = False, level: float = 0.95,
            alternative: str = "two-sided", n_resamples: int = 9999, seed: int = 0) -> Comparison:
    """Welch's t-test (or the paired t-test) and a permutation test of mean(b) − mean(a).
    With fewer than 2 values a side, or no variance at all, p-values and CIs are NaN."""
    a_raw, b_raw = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if paired:
        keep = np.isfinite(a_raw) & np.isfinite(b_raw)
        a_, b_ = a_raw[keep], b_raw[keep]
    else:
        a_, b_ = _arr(a_raw), _arr(b_raw)
    na, nb = len(a_), len(b_)
    diff = float(b_.mean() - a_.mean()) if na and nb else np.nan
    nan2 = (np.nan, np.nan)
    degenerate = na < 2 or nb < 2 or (np.ptp(a_) == 0 and np.ptp(b_) == 0) or (paired and np.ptp(b_ - a_) == 0)
    if degenerate:
        return Comparison(label_a, label_b, na, nb, _mean(a_), _mean(b_), diff, nan2,
                          "paired t-test" if paired else "Welch t-test", np.nan, np.nan, np.nan, nan2,
                          _prob_improvement(a_, b_, paired), paired, level)
    if paired:
        t = ss.ttest_rel(b_, a_, alternative=alternative)
        perm = ss.permutation_test((b_, a_), lambda x, y: np.mean(x - y), permutation_type="samples",
                                   alternative=alternative, n_resamples=n_resamples, random_state=seed)
    else:
        t = ss.ttest_ind(b_, a_, equal_var=False, alternative=alternative)
        perm = ss.permutation_test((b_, a_), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                                   alternative=alternative, n_resamples=n_resamples, random_state=seed)
    ci = t.confidence_interval(level)
    g = hedges_g(a_, b_)
    rng = np.random.default_rng(seed)
    boots = [hedges_g(rng.choice(a_, na), rng.choice(b_, nb)) for _ in range(2000)]
    boots = np.asarray(boots)[np.isfinite(boots)]
    gci = tuple(map(float, np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]))) if len(boots) else nan2
    return Comparison(label_a, label_b, na, nb, float(a_.mean()), float(b_.mean()), diff,
                      (float(ci.low), float(ci.high)), "paired t-test" if paired else "Welch t-test",
                      float(t.pvalue), float(perm.pvalue), g, gci, _prob_improvement(a_, b_, paired), paired, level)


def _mean(a) -> float:
    return float(a.mean()) if len(a) else np.nan


def _prob_improvement(a, b, paired: bool) -> float:
    if not len(a) or not len(b):
        return np.nan
    if paired:
        d = b - a
        return float(np.mean((d > 0) + 0.5 * (d == 0)))
    d = b[:, None] - a[None, :]
    return float(np.mean((d > 0) + 0.5 * (d == 0)))


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni: sort p ascending, p_(i)·(m − i + 1), running max, capped at 1."""
    p = np.asarray(pvalues, float)
    m = len(p)
    order = np.argsort(p)
    adj = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def steps_to_threshold(steps, values, threshold: float) -> np.ndarray:
    """Per run, the first step whose value ≥ threshold; NaN if never. values: [T] or [R, T]."""
    steps = np.asarray(steps, float)
    v = np.atleast_2d(np.asarray(values, float))
    hit = v >= threshold
    first = np.where(hit.any(1), steps[hit.argmax(1)], np.nan)
    return first if np.ndim(values) > 1 else first[:1]


@dataclass(frozen=True)
class Trend:
    """Least-squares slope of y on x with its t-interval (scipy.stats.linregress)."""

    slope: float
    slope_ci: tuple[float, float]
    p_value: float
    r: float
    n: int
    level: float


def trend(x, y, level: float = 0.95) -> Trend:
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3 or np.ptp(x) == 0:
        return Trend(np.nan, (np.nan, np.nan), np.nan, np.nan, n, level)
    r = ss.linregress(x, y)
    h = ss.t.ppf((1 + level) / 2, n - 2) * r.stderr
    return Trend(float(r.slope), (float(r.slope - h), float(r.slope + h)), float(r.pvalue), float(r.rvalue), n, level)


@dataclass(frozen=True)
class GroupTest:
    """One-way ANOVA (scipy.stats.f_oneway) and Kruskal–Wallis across groups."""

    n: dict
    anova_f: float
    anova_p: float
    kruskal_h: float
    kruskal_p: float


def group_test(groups: dict) -> GroupTest:
    arrs = {k: _arr(v) for k, v in groups.items()}
    n = {k: len(v) for k, v in arrs.items()}
    vals = [v for v in arrs.values() if len(v)]
    if len(vals) < 2 or any(len(v) < 2 for v in vals) or np.ptp(np.concatenate(vals)) == 0:
        return GroupTest(n, np.nan, np.nan, np.nan, np.nan)
    f = ss.f_oneway(*vals)
    k = ss.kruskal(*vals)
    return GroupTest(n, float(f.statistic), float(f.pvalue), float(k.statistic), float(k.pvalue))


@dataclass(frozen=True)
class Equivalence:
    """TOST: b − a within ±margin if both one-sided Welch tests reject; p = the larger p;
    ci is the (1 − 2α) interval of the difference."""

    margin: float
    p_value: float
    ci: tuple[float, float]
    equivalent: bool


def equivalence(a, b, margin: float, *, level: float = 0.95) -> Equivalence:
    a, b = _arr(a), _arr(b)
    if len(a) < 2 or len(b) < 2:
        return Equivalence(margin, np.nan, (np.nan, np.nan), False)
    lo = ss.ttest_ind(b + margin, a, equal_var=False, alternative="greater").pvalue   # H0: diff <= −margin
    hi = ss.ttest_ind(b - margin, a, equal_var=False, alternative="less").pvalue      # H0: diff >= +margin
    p = float(max(lo, hi))
    ci = ss.ttest_ind(b, a, equal_var=False).confidence_interval(1 - 2 * (1 - level))
    return Equivalence(margin, p, (float(ci.low), float(ci.high)), p < 1 - level)


def verdict(p_value: float, ci, *, expected_sign: int, alpha: float = 0.05) -> str:
    """'supported' if p < α and the CI lies wholly on the expected side of 0; 'contradicted'
    if p < α and it lies wholly on the other side; otherwise (NaN included) 'inconclusive'."""
    lo, hi = ci
    if not (np.isfinite(p_value) and np.isfinite(lo) and np.isfinite(hi)) or p_value >= alpha:
        return "inconclusive"
    lo, hi = lo * expected_sign, hi * expected_sign
    lo, hi = min(lo, hi), max(lo, hi)
    if lo > 0:
        return "supported"
    if hi < 0:
        return "contradicted"
    return "inconclusive"
