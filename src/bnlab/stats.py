"""Statistics as small pure functions over arrays of per-seed results (numpy + scipy.stats only).

No torch here. Non-finite entries (diverged runs) are dropped, never imputed; callers
count and report them. Every interval carries its level. Degenerate inputs (too few
values, no variance) give NaN statistics rather than errors, and NaN reads as
"inconclusive" in `verdict`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from math import comb

import numpy as np
from scipy import stats as ss
from scipy.optimize import brentq

VERDICTS = ("supported", "contradicted", "inconclusive")     # what `verdict` can say
CLAIM_VERDICTS = ("supported", "contradicted", "equivalent", "inconclusive")   # `claim_verdict` adds 'equivalent'
_NAN2 = (np.nan, np.nan)


def _finite(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _pair(ci) -> tuple[float, float]:
    return float(ci[0]), float(ci[1])


def _welch(a, b, *, alternative: str = "two-sided", level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """p and CI at `level` of Welch's test of mean_b − mean_a over finite arrays (the numbers of
    scipy.stats.ttest_ind(b, a, equal_var=False), computed directly: the helper runs inside simulations);
    a one-sided CI has an infinite end. NaN when n < 2 a side or neither side varies (as in `compare`)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return np.nan, _NAN2
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    se, d = np.sqrt(va + vb), b.mean() - a.mean()
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    t = d / se
    if alternative == "two-sided":
        h = ss.t.ppf((1 + level) / 2, df) * se
        return float(2 * ss.t.sf(abs(t), df)), (float(d - h), float(d + h))
    h = ss.t.ppf(level, df) * se
    if alternative == "greater":
        return float(ss.t.sf(t, df)), (float(d - h), np.inf)
    return float(ss.t.cdf(t, df)), (-np.inf, float(d + h))


@dataclass(frozen=True)
class Summary:
    """n, mean, sample sd (ddof=1) and the t-interval mean ± t(1−α/2, n−1)·sd/√n at `level`."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    level: float


def summarize(values, level: float = 0.95) -> Summary:
    """Mean with a t-interval over the finite values (NaN/inf, e.g. diverged runs, are dropped;
    the caller counts them). n == 1: sd and CI are NaN; all values equal: sd 0, CI (mean, mean)."""
    a = _finite(values)
    n = len(a)
    mean = float(a.mean()) if n else np.nan
    if n < 2:
        return Summary(n, mean, np.nan, np.nan, np.nan, level)
    sd = float(a.std(ddof=1))
    if sd == 0:
        return Summary(n, mean, 0.0, mean, mean, level)
    lo, hi = ss.t.interval(level, n - 1, loc=mean, scale=sd / np.sqrt(n))
    return Summary(n, mean, sd, float(lo), float(hi), level)


def _bootstrap(samples, statistic, *, paired: bool, level: float, n_resamples: int, seed: int):
    """scipy.stats.bootstrap CI: BCa, else percentile; NaN pair if both are undefined (an infinite end,
    from resamples with an unbounded statistic, is kept)."""
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ss.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = ss.bootstrap(samples, statistic, paired=paired, confidence_level=level, n_resamples=n_resamples,
                              method=method, rng=np.random.default_rng(seed)).confidence_interval
        if not np.isnan([ci.low, ci.high]).any():
            return _pair(ci)
    return _NAN2


def bootstrap_ci(values, statistic=np.mean, level: float = 0.95, n_resamples: int = 9999,
                 seed: int = 0) -> tuple[float, float]:
    """Distribution-free CI of `statistic` over the finite values (scipy.stats.bootstrap, BCa;
    percentile where BCa is degenerate, e.g. all values equal -> (v, v)). Fewer than 2 values: NaN."""
    a = _finite(values)
    if len(a) < 2:
        return _NAN2
    return _bootstrap((a,), statistic, paired=False, level=level, n_resamples=n_resamples, seed=seed)


def ratio_ci(a, b, level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """mean(a)/mean(b) of two independent samples (finite values) with a bootstrap CI (scipy, BCa;
    percentile fallback): e.g. a speed-up factor steps_none/steps_bn. NaN with fewer than 2 values a side.
    Undercovers at few seeds (a nominal 95% interval covers about 78% of the time at 3 seeds a side and 88% at 5,
    lognormal data): prefer `log_ratio_ci` (ratio of geometric means) or `fieller_ci` (ratio of means) there."""
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2 or b.mean() == 0:
        return np.nan, _NAN2
    stat = lambda x, y, axis=-1: np.mean(x, axis=axis) / np.mean(y, axis=axis)  # noqa: E731
    return float(a.mean() / b.mean()), _bootstrap((a, b), stat, paired=False, level=level,
                                                  n_resamples=n_resamples, seed=seed)


def _g(a, b, axis=-1, *, limit=False):
    """Vectorised Hedges' g along `axis`. Where both samples are constant (s_pooled = 0): NaN, or with
    limit=True the limiting value ±inf (0 if the means are equal), so such bootstrap resamples sit in the tails."""
    na, nb = a.shape[axis], b.shape[axis]
    d = b.mean(axis=axis) - a.mean(axis=axis)
    sp = np.sqrt(((na - 1) * a.var(axis=axis, ddof=1) + (nb - 1) * b.var(axis=axis, ddof=1)) / (na + nb - 2))
    flat = (np.ptp(a, axis=axis) == 0) & (np.ptp(b, axis=axis) == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1 - 3 / (4 * (na + nb) - 9)) * d / sp
        return np.where(flat, np.where(d == 0, 0.0, np.sign(d) * np.inf) if limit else np.nan, g)


def hedges_g(a, b) -> float:
    """Bias-corrected standardized mean difference of b over a (finite values only):
    g = J·(mean_b − mean_a)/s_pooled, J = 1 − 3/(4(n_a+n_b) − 9). NaN if n < 2 a side or s_pooled = 0."""
    a, b = _finite(a), _finite(b)
    return float(_g(a, b)) if len(a) >= 2 and len(b) >= 2 else np.nan


@dataclass(frozen=True)
class Comparison:
    """b against a. diff = mean_b − mean_a with `diff_ci` from `test` (Welch, or paired t on b − a);
    `p_value` from that test and `perm_p` from a permutation test of the same difference, both for
    `alternative` (a one-sided CI has an infinite end). hedges_g_ci: bootstrap (scipy, BCa, percentile
    fallback; pairs resampled together when paired), two-sided at `level`. prob_improvement:
    P(b > a) over all (a_i, b_j) pairs, or over the pairs when paired; ties count ½.
    Degenerate input (n < 2 a side, no variance in either sample, or constant paired differences) has no
    test: p-values and CIs are NaN (read as 'inconclusive'); hedges_g is NaN unless it is still defined."""

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
    alternative: str = "two-sided"


def compare(a, b, *, label_a: str = "a", label_b: str = "b", paired: bool = False, level: float = 0.95,
            alternative: str = "two-sided", n_resamples: int = 9999, seed: int = 0) -> Comparison:
    """Welch's t-test (scipy.stats.ttest_ind, equal_var=False) or, if paired, scipy.stats.ttest_rel, plus a
    permutation test (exact when the number of permutations is ≤ n_resamples) of mean_b − mean_a.
    Non-finite values are dropped (whole pairs when paired; paired inputs must have equal length)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired comparison needs equal lengths, got {len(a)} and {len(b)}")
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
    else:
        a, b = _finite(a), _finite(b)
    na, nb = len(a), len(b)
    mean_a, mean_b = (float(x.mean()) if len(x) else np.nan for x in (a, b))
    test = "paired t-test" if paired else "Welch t-test"
    head = (label_a, label_b, na, nb, mean_a, mean_b, mean_b - mean_a)
    tail = (prob_improvement(a, b, paired=paired), paired, level, alternative)
    if na < 2 or nb < 2 or (np.ptp(b - a) == 0 if paired else np.ptp(a) == 0 and np.ptp(b) == 0):
        return Comparison(*head, _NAN2, test, np.nan, np.nan, hedges_g(a, b), _NAN2, *tail)
    if paired:
        t = ss.ttest_rel(b, a, alternative=alternative)
        perm = ss.permutation_test((b, a), lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                                   permutation_type="samples", alternative=alternative,
                                   n_resamples=n_resamples, rng=np.random.default_rng(seed))
    else:
        with warnings.catch_warnings():   # one side constant (e.g. all seeds reach 97% at the same epoch):
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)   # Welch is still defined
            t = ss.ttest_ind(b, a, equal_var=False, alternative=alternative)
        perm = ss.permutation_test((b, a), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                   vectorized=True, permutation_type="independent", alternative=alternative,
                                   n_resamples=n_resamples, rng=np.random.default_rng(seed))
    g_ci = _bootstrap((a, b), partial(_g, limit=True), paired=paired, level=level, n_resamples=n_resamples, seed=seed)
    return Comparison(*head, _pair(t.confidence_interval(level)), test, float(t.pvalue), float(perm.pvalue),
                      float(_g(a, b)), g_ci, *tail)


def prob_improvement(a, b, *, paired: bool = False) -> float:
    """P(b > a) + ½·P(b = a): over all (a_i, b_j) pairs, i.e. U_b/(n_a·n_b) from scipy.stats.mannwhitneyu
    (rliable's probability of improvement); over the given pairs when paired. NaN if a side is empty."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or not len(b):
        return np.nan
    if paired:
        return float(np.mean(np.sign(b - a) / 2 + 0.5))
    return float(ss.mannwhitneyu(b, a, method="asymptotic").statistic / (len(a) * len(b)))


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values: sort ascending, p_(i)·(m − i + 1) for i = 1..m, running maximum,
    capped at 1. NaN entries stay NaN and do not count towards m."""
    p = np.asarray(pvalues, float).ravel()
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    order = idx[np.argsort(p[idx], kind="stable")]
    out[order] = np.minimum(np.maximum.accumulate(p[order] * (m - np.arange(m))), 1.0)
    return out


def steps_to_threshold(steps, values, threshold: float) -> np.ndarray:
    """Per run, the first step whose value ≥ threshold, NaN if never reached.
    steps: [T] increasing; values: [R, T] (runs × evaluations) or [T] (one run) -> [R] (or [1])."""
    steps = np.asarray(steps, float)
    v = np.atleast_2d(np.asarray(values, float))
    if v.ndim != 2 or v.shape[1] != len(steps):
        raise ValueError(f"values must be [T] or [R, T] with T = {len(steps)} steps, got shape {np.shape(values)}")
    hit = v >= threshold
    return np.where(hit.any(axis=1), steps[hit.argmax(axis=1)], np.nan)


@dataclass(frozen=True)
class Trend:
    """Least-squares slope of y on x, its t-interval at `level`, the p-value for slope ≠ 0, Pearson r, n."""

    slope: float
    slope_ci: tuple[float, float]
    p_value: float
    r: float
    n: int
    level: float


def trend(x, y, level: float = 0.95) -> Trend:
    """scipy.stats.linregress over finite (x, y) pairs; CI = slope ± t(1−α/2, n−2)·stderr.
    Fewer than 3 points or constant x: all NaN (constant y: slope 0, CI and p NaN)."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3 or np.ptp(x) == 0:
        return Trend(np.nan, _NAN2, np.nan, np.nan, n, level)
    r = ss.linregress(x, y)
    h = ss.t.ppf((1 + level) / 2, n - 2) * r.stderr
    return Trend(float(r.slope), (float(r.slope - h), float(r.slope + h)), float(r.pvalue), float(r.rvalue), n, level)


@dataclass(frozen=True)
class GroupTest:
    """Do the groups differ at all? Classic one-way ANOVA (F, p; equal variances) and the rank-based
    Kruskal–Wallis test (H, p), with the finite n per group."""

    n: dict
    anova_f: float
    anova_p: float
    kruskal_h: float
    kruskal_p: float


def group_test(groups: dict) -> GroupTest:
    """scipy.stats.f_oneway and scipy.stats.kruskal over the non-empty groups (finite values only).
    NaN statistics when fewer than 2 groups, a group with < 2 values, or all values equal."""
    arrs = {k: _finite(v) for k, v in groups.items()}
    vals = [v for v in arrs.values() if len(v)]
    n = {k: len(v) for k, v in arrs.items()}
    if len(vals) < 2 or any(len(v) < 2 for v in vals) or np.ptp(np.concatenate(vals)) == 0:
        return GroupTest(n, np.nan, np.nan, np.nan, np.nan)
    f, k = ss.f_oneway(*vals), ss.kruskal(*vals)
    return GroupTest(n, float(f.statistic), float(f.pvalue), float(k.statistic), float(k.pvalue))


@dataclass(frozen=True)
class Equivalence:
    """TOST of |mean_b − mean_a| < margin: p = the larger of the two one-sided Welch p-values;
    ci = the (1 − 2α) Welch interval of the difference (its level in `level`, 0.90 for α = 0.05);
    equivalent iff that ci lies inside (−margin, +margin), which is the same as p < α."""

    diff: float
    margin: float
    p_value: float
    ci: tuple[float, float]
    level: float
    equivalent: bool


def equivalence(a, b, margin: float, *, level: float = 0.95) -> Equivalence:
    """Two one-sided Welch tests (scipy.stats.ttest_ind): H0 diff ≤ −margin and H0 diff ≥ +margin, α = 1 − level.
    Degenerate input (n < 2 a side, or no variance at all): p and ci NaN, not equivalent."""
    if not margin > 0:
        raise ValueError(f"equivalence margin must be > 0, got {margin}")
    a, b = _finite(a), _finite(b)
    ci_level = round(2 * level - 1, 12)   # the (1 − 2α) level
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else np.nan
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return Equivalence(diff, margin, np.nan, _NAN2, ci_level, False)
    p_low = ss.ttest_ind(b + margin, a, equal_var=False, alternative="greater").pvalue   # H0: diff ≤ −margin
    p_high = ss.ttest_ind(b - margin, a, equal_var=False, alternative="less").pvalue     # H0: diff ≥ +margin
    lo, hi = _pair(ss.ttest_ind(b, a, equal_var=False).confidence_interval(ci_level))
    return Equivalence(diff, margin, float(max(p_low, p_high)), (lo, hi), ci_level, bool(-margin < lo and hi < margin))


def verdict(p_value: float, ci, *, expected_sign: int, alpha: float = 0.05) -> str:
    """'supported' if p < α and the whole CI is on the expected side of 0 (expected_sign +1: > 0, −1: < 0);
    'contradicted' if p < α and the whole CI is on the opposite side; otherwise 'inconclusive' (NaN p or CI
    included). One-sided CIs with an infinite end are fine."""
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, got {expected_sign}")
    lo, hi = sorted(float(c) * expected_sign for c in ci)
    if np.isnan([p_value, lo, hi]).any() or not p_value < alpha:
        return "inconclusive"
    if lo > 0:
        return "supported"
    if hi < 0:
        return "contradicted"
    return "inconclusive"


def verdict_with_equivalence(p_value: float, ci, tost_p: float, *, expected_sign: int, alpha: float = 0.05) -> str:
    """One of CLAIM_VERDICTS. 'supported' / 'contradicted' exactly as `verdict` (p < α and the whole CI on the
    claimed / the opposite side of 0); 'equivalent' if the difference is not significant (p ≥ α, a number) and the
    TOST p-value `tost_p` < α, i.e. |difference| < margin was shown; otherwise 'inconclusive' (NaN p or tost_p
    included). A significant difference wins over equivalence: a tiny but real effect inside the margin is
    'supported' or 'contradicted', never 'equivalent'. Callers may pass Holm-adjusted p-values."""
    v = verdict(p_value, ci, expected_sign=expected_sign, alpha=alpha)
    if v != "inconclusive" or not p_value >= alpha:   # also NaN p: no claim of 'no significant difference'
        return v
    return "equivalent" if tost_p < alpha else "inconclusive"


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim about diff = mean_b − mean_a decided at α: the two-sided Welch test (p_value, diff_ci at 1 − α),
    the TOST of |diff| < margin (`equivalence` at α: tost_p, tost_ci at 1 − 2α) and the verdict from
    `verdict_with_equivalence`."""

    verdict: str
    diff: float
    diff_ci: tuple[float, float]
    p_value: float
    tost_p: float
    tost_ci: tuple[float, float]
    margin: float
    expected_sign: int
    alpha: float
    n_a: int
    n_b: int


def claim_verdict(a, b, *, expected_sign: int, margin: float, alpha: float = 0.05) -> ClaimVerdict:
    """Decide "mean_b − mean_a has sign `expected_sign`" with a declared equivalence margin (> 0, in the units of
    the data): supported = Welch p < α with the CI on the claimed side; contradicted = p < α on the other side;
    equivalent = p ≥ α and the TOST shows |diff| < margin at α; else inconclusive. Finite values only; degenerate
    samples (n < 2 a side, no variance at all) give NaN p-values and 'inconclusive'."""
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, got {expected_sign}")
    a, b = _finite(a), _finite(b)
    p, ci = _welch(a, b, level=1 - alpha)
    e = equivalence(a, b, margin, level=1 - alpha)
    v = verdict_with_equivalence(p, ci, e.p_value, expected_sign=expected_sign, alpha=alpha)
    return ClaimVerdict(v, e.diff, ci, p, e.p_value, e.ci, float(margin), expected_sign, alpha, len(a), len(b))


def _welch_se_df(sd_a: float, sd_b: float, n_a: float, n_b: float) -> tuple[float, float]:
    """se = √(σ_a²/n_a + σ_b²/n_b) and the Welch–Satterthwaite df = se⁴ / (σ_a⁴/(n_a²(n_a−1)) + σ_b⁴/(n_b²(n_b−1)))."""
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    return float(np.sqrt(va + vb)), float((va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1)))


def _check_alpha_power(alpha: float, power: float) -> None:
    if not (0 < alpha < 1 and alpha < power < 1):
        raise ValueError(f"need 0 < alpha < power < 1, got alpha={alpha}, power={power}")


def _usable_sds(*sds) -> bool:
    return all(np.isfinite(s) and s >= 0 for s in sds) and any(s > 0 for s in sds)


_GL_NODES = 64


def _welch_nodes(sd_a: float, sd_b: float, n_a: int, n_b: int):
    """Quadrature for Welch's test under normal sampling: the sample variances are independent, s² ~ σ²·χ²_{n−1}/(n−1),
    and independent of the means. Gauss–Legendre nodes on the χ² quantile scale of each side give the estimated
    standard error ŝe, the estimated Welch df ν̂ and the weights (summing to 1) of a 2-D integral over (s_a², s_b²)."""
    x, w = np.polynomial.legendre.leggauss(_GL_NODES)
    u, w = (x + 1) / 2, w / 2
    va = (sd_a ** 2 * ss.chi2.ppf(u, n_a - 1) / (n_a - 1) / n_a)[:, None]
    vb = (sd_b ** 2 * ss.chi2.ppf(u, n_b - 1) / (n_b - 1) / n_b)[None, :]
    return np.sqrt(va + vb), (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1)), w[:, None] * w[None, :]


def _welch_power(deltas, sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float, *, tost_margin=None):
    """Exact (normal-theory) rejection probability of the two-sided Welch test at α, or with tost_margin = m of the
    Welch TOST at α, for each true difference δ in `deltas`. Given (s_a², s_b²), d̂ ~ N(δ, se²): two-sided,
    P = Φ((δ − c)/se) + Φ((−δ − c)/se) with c = t(1−α/2, ν̂)·ŝe; TOST,
    P = max(0, Φ((m − c − δ)/se) − Φ((−m + c − δ)/se)) with c = t(1−α, ν̂)·ŝe; then averaged over the
    (s_a², s_b²) quadrature of `_welch_nodes`."""
    se = np.sqrt(sd_a ** 2 / n_a + sd_b ** 2 / n_b)
    se_hat, df_hat, w = _welch_nodes(sd_a, sd_b, n_a, n_b)
    d = np.asarray(deltas, float)[..., None, None]
    if tost_margin is None:
        c = ss.t.ppf(1 - alpha / 2, df_hat) * se_hat
        p = ss.norm.cdf((d - c) / se) + ss.norm.cdf((-d - c) / se)
    else:
        c = ss.t.ppf(1 - alpha, df_hat) * se_hat
        p = np.maximum(0.0, ss.norm.cdf((tost_margin - c - d) / se) - ss.norm.cdf((-tost_margin + c - d) / se))
    return (p * w).sum(axis=(-2, -1))


def welch_power(effect: float, sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float = 0.05) -> float:
    """P(two-sided Welch test at α rejects) when the true mean_b − mean_a is `effect`: exact under normal sampling
    (numerical integration over both sample variances, see `_welch_power`), not the noncentral-t approximation,
    which overstates Welch's power at 3–5 seeds (0.80 claimed, 0.70 true for 3 vs 3 at equal SDs). Equals α at
    effect 0 only asymptotically (Welch is conservative at tiny n). NaN for n < 2 a side or unusable SDs."""
    if not (0 < alpha < 1):
        raise ValueError(f"need 0 < alpha < 1, got {alpha}")
    if not (n_a >= 2 and n_b >= 2 and _usable_sds(sd_a, sd_b) and np.isfinite(effect)):
        return np.nan
    return float(_welch_power(effect, sd_a, sd_b, int(n_a), int(n_b), alpha))


def min_detectable_effect(sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float = 0.05,
                          power: float = 0.8) -> float:
    """Smallest |mean_b − mean_a| that the two-sided Welch test at α detects with probability `power` (in the units
    of the data), for true SDs σ_a, σ_b and n_a, n_b seeds: solves `welch_power`(δ) = power (exact normal-theory
    Welch power). The textbook noncentral-t value (scipy.stats.nct with the Welch–Satterthwaite df) is within 1%
    from 10 seeds a side but 3% too optimistic at 5 and 14% at 3 (σ = 1: 3.07 claimed, 3.51 needed). NaN when
    n < 2 a side or the SDs are not finite, negative or both 0."""
    _check_alpha_power(alpha, power)
    if not (n_a >= 2 and n_b >= 2 and _usable_sds(sd_a, sd_b)):
        return np.nan
    n_a, n_b = int(n_a), int(n_b)
    se, _ = _welch_se_df(sd_a, sd_b, n_a, n_b)
    hi = se
    while _welch_power(hi, sd_a, sd_b, n_a, n_b, alpha) < power:
        hi *= 2
    return float(brentq(lambda d: _welch_power(d, sd_a, sd_b, n_a, n_b, alpha) - power, 0.0, hi, xtol=1e-9 * se))


def _smallest_n(ok, max_n: int) -> int | None:
    """Smallest n in [2, max_n] with ok(n) (ok monotone in n), None if ok(max_n) is false."""
    if max_n < 2 or not ok(max_n):
        return None
    lo, hi = 1, max_n                    # ok(hi) holds; ok(lo) is taken to fail (one seed tests nothing)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def seeds_needed(effect: float, sd_a: float, sd_b: float, alpha: float = 0.05, power: float = 0.8,
                 max_n: int = 10000) -> int | None:
    """Seeds per configuration (n_a = n_b = n) for the two-sided Welch test at α to detect a true difference
    `effect` with probability ≥ `power`: the smallest n ≥ 2 with `welch_power` ≥ power (exact normal-theory Welch
    power). At equal SDs this reproduces the textbook t-test numbers (Cohen: 17 per group for effect = σ, 26 for
    0.8σ, 64 for 0.5σ). None when more than max_n would be needed or the input is degenerate (effect 0 or not
    finite; SDs not finite, negative or both 0)."""
    _check_alpha_power(alpha, power)
    if not (np.isfinite(effect) and effect != 0 and _usable_sds(sd_a, sd_b)):
        return None
    return _smallest_n(lambda n: _welch_power(abs(effect), sd_a, sd_b, n, n, alpha) >= power, int(max_n))


def seeds_for_equivalence(margin: float, sd_a: float, sd_b: float, true_diff: float = 0.0, alpha: float = 0.05,
                          power: float = 0.8, max_n: int = 10000) -> int | None:
    """Seeds per configuration for the Welch TOST (`equivalence` at level 1 − α: both one-sided Welch tests at α)
    to show |mean_b − mean_a| < margin with probability ≥ `power` when the true difference is `true_diff`. Power:
    exact normal-theory rejection probability P(−m + c < d̂ < m − c), c = t(1−α, ν̂)·ŝe, integrated over both
    sample variances (`_welch_power`). At true_diff = 0 it is a little above the normal approximation
    n = 2(z(1−α) + z(1−β/2))²σ²/margin² per group (69 → 70 for margin 0.5σ). None when more than max_n would be
    needed, |true_diff| ≥ margin (never equivalent), or the input is degenerate (margin ≤ 0 or not finite; SDs as
    in `seeds_needed`)."""
    _check_alpha_power(alpha, power)
    if not (np.isfinite(margin) and margin > 0 and np.isfinite(true_diff) and abs(true_diff) < margin
            and _usable_sds(sd_a, sd_b)):
        return None
    return _smallest_n(lambda n: _welch_power(true_diff, sd_a, sd_b, n, n, alpha, tost_margin=margin) >= power,
                       int(max_n))


@dataclass(frozen=True)
class Interaction:
    """A×B interaction in a two-way layout of per-seed values (does the effect of A depend on the level of B?).
    Classic least-squares F (assumes equal variances in all cells): f, df1, df2, p. Welch–James test of the same
    hypothesis with Johansen's approximate F (each cell keeps its own variance): welch_f on (df1, welch_df2),
    welch_p. n: the finite values per non-empty cell."""

    f: float
    df1: int
    df2: int
    p: float
    welch_f: float
    welch_df2: float
    welch_p: float
    n: dict


def _cell_design(keys) -> np.ndarray:
    """Additive-model design at the cells: rows (one per cell key (a, b)) = [1, one-hot a, one-hot b]."""
    a_lv, b_lv = list(dict.fromkeys(k[0] for k in keys)), list(dict.fromkeys(k[1] for k in keys))
    x = np.zeros((len(keys), 1 + len(a_lv) + len(b_lv)))
    x[:, 0] = 1
    for i, (a, b) in enumerate(keys):
        x[i, 1 + a_lv.index(a)] = x[i, 1 + len(a_lv) + b_lv.index(b)] = 1
    return x


def interaction_test(cells: dict) -> Interaction:
    """Test of "no A×B interaction" (cell means additive, μ_ab = μ + α_a + β_b) over `cells`: {(a, b): per-seed
    values}; unbalanced and incomplete layouts allowed; non-finite values dropped, empty cells ignored.

    Classic F: RSS_full = Σ within-cell squared deviations (df2 = N − k, k non-empty cells); RSS_add = RSS of the
    additive model fitted by least squares (weighted least squares on the cell means, weights n_ab); df1 = k −
    rank(additive design) ((a−1)(b−1) for a complete layout); F = ((RSS_add − RSS_full)/df1)/(RSS_full/df2).

    Welch–James (Johansen 1980; Keselman, Wilcox & Lix 2003): C = an orthonormal basis (df1 × k) of the cell-mean
    contrasts orthogonal to the additive model, V = diag(s²_ab/n_ab), T = (Cȳ)'(CVC')⁻¹(Cȳ), P = VC'(CVC')⁻¹C,
    A = Σ P_jj²/(n_j − 1), c = df1 + 2A − 6A/(df1 + 2): welch_f = T/c ~ F(df1, df1(df1 + 2)/(3A)). For a 2 × 2
    layout this is Welch's t test of the interaction contrast (welch_f = t², welch_df2 = Welch–Satterthwaite df).
    Why both: BN and no-BN differ in seed SD (about 2×). In a 2 × 4 layout with 5 seeds per cell the classic F
    then rejects a true "no interaction" 5.7% of the time at α = .05 (6.5% at a 4× SD ratio; 5.9% and 7.2% with 3
    seeds; 20 000 simulated normal studies each); the Welch–James test gave 3–5% over 3–10 seeds, SD ratios 1–4
    and unbalanced cells (a parametric bootstrap of T gave the same rates at far more cost). Verdicts use welch_p.

    NaN: F when df1 = 0, df2 = 0 or RSS_full = 0; the Welch–James test also when a cell has < 2 values or no
    variance (its mean would count as exact)."""
    data = {k: _finite(v) for k, v in cells.items()}
    n = {k: len(v) for k, v in data.items()}
    keys = [k for k, v in data.items() if len(v)]
    nan = Interaction(np.nan, 0, 0, np.nan, np.nan, np.nan, np.nan, n)
    if not keys:
        return nan
    x = _cell_design(keys)
    nj = np.array([n[k] for k in keys], float)
    m = np.array([data[k].mean() for k in keys])
    ssw = np.array([((data[k] - data[k].mean()) ** 2).sum() for k in keys])
    u, sv, _ = np.linalg.svd(x, full_matrices=True)
    r = int((sv > 1e-10 * sv[0]).sum())
    k, df2 = len(keys), int(nj.sum()) - len(keys)
    df1 = k - r
    if df1 == 0:
        return nan
    w = np.sqrt(nj)
    beta = np.linalg.lstsq(x * w[:, None], m * w, rcond=None)[0]
    ss_int = float((nj * (m - x @ beta) ** 2).sum())
    rss = float(ssw.sum())
    f = (ss_int / df1) / (rss / df2) if df2 > 0 and rss > 0 else np.nan
    p = float(ss.f.sf(f, df1, df2)) if np.isfinite(f) else np.nan
    wf = wdf2 = wp = np.nan
    if nj.min() >= 2 and ssw.min() > 0:
        c = u[:, r:].T                                  # df1 × k, rows orthonormal, c @ x = 0
        v = ssw / (nj - 1) / nj
        cm = c @ m
        minv = np.linalg.inv((c * v) @ c.T)
        t = float(cm @ minv @ cm)
        pjj = np.einsum("jq,qr,rj->j", v[:, None] * c.T, minv, c)
        a = float((pjj ** 2 / (nj - 1)).sum())
        wf, wdf2 = t / (df1 + 2 * a - 6 * a / (df1 + 2)), df1 * (df1 + 2) / (3 * a)
        wp = float(ss.f.sf(wf, df1, wdf2))
    return Interaction(float(f), df1, max(df2, 0), p, float(wf), float(wdf2), wp, n)


@dataclass(frozen=True)
class SpreadDifference:
    """How much the configuration means of level a1 (e.g. BN) and a0 (no BN) move across the B levels (batch
    sizes) they share. sd_means_*: the plain SD over B of the cell means; spread_*: the same with the seed noise
    taken out, √max(0, var_B(ȳ_b) − mean_B(s_b²/n_b)), an estimate of the SD of the true means over B. diff =
    spread_a1 − spread_a0 (< 0: a1 moves less) with a percentile bootstrap CI at `level` (seeds resampled within
    each cell; NaN without resamples)."""

    b_levels: tuple
    sd_means_a0: float
    sd_means_a1: float
    spread_a0: float
    spread_a1: float
    diff: float
    ci: tuple[float, float]
    level: float


def _spreads(means, var_means):
    """Over the last axis (B levels): plain SD of the means, and √max(0, var(means) − mean(var of each mean))."""
    v = means.var(axis=-1, ddof=1)
    return np.sqrt(v), np.sqrt(np.maximum(0.0, v - var_means.mean(axis=-1)))


def spread_difference(cells: dict, a0, a1, *, level: float = 0.95, n_resamples: int = 9999,
                      seed: int = 0) -> SpreadDifference:
    """Spread over B of the configuration means, a1 against a0, from `cells` {(a, b): per-seed values} (finite values
    only; B levels with ≥ 2 values in both the a0 and the a1 cell). The plain SD of the means is inflated by seed
    noise, E[var_B(ȳ_b)] = var_B(μ_b) + mean_B(σ_b²/n_b), so a norm with less seed noise would look "more stable"
    with no batch-size effect at all; spread_* subtract that term. The SD (not the range) is used because its noise
    term has this closed form. Bootstrap: n_resamples resamples of the seeds within each cell (numpy, seeded),
    percentile interval of diff. NaN when fewer than 2 shared B levels."""
    data = {k: _finite(v) for k, v in cells.items()}
    bs = tuple(b for (a, b) in data if a == a0 and len(data[(a0, b)]) >= 2 and len(data.get((a1, b), ())) >= 2)
    if len(bs) < 2:
        return SpreadDifference(bs, np.nan, np.nan, np.nan, np.nan, np.nan, _NAN2, level)
    xs = [[data[(a, b)] for b in bs] for a in (a0, a1)]
    m = np.array([[x.mean() for x in row] for row in xs])
    vm = np.array([[x.var(ddof=1) / len(x) for x in row] for row in xs])
    sd, spread = _spreads(m, vm)
    diff = float(spread[1] - spread[0])
    ci = _NAN2
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        bm, bv = np.empty((n_resamples, 2, len(bs))), np.empty((n_resamples, 2, len(bs)))
        for i, row in enumerate(xs):
            for j, x in enumerate(row):
                r = x[rng.integers(0, len(x), size=(n_resamples, len(x)))]
                bm[:, i, j], bv[:, i, j] = r.mean(axis=1), r.var(axis=1, ddof=1) / len(x)
        _, bspread = _spreads(bm, bv)
        ci = _pair(np.quantile(bspread[:, 1] - bspread[:, 0], [(1 - level) / 2, (1 + level) / 2]))
    return SpreadDifference(bs, float(sd[0]), float(sd[1]), float(spread[0]), float(spread[1]), diff, ci, level)


@dataclass(frozen=True)
class Stabilization:
    """"a1 (e.g. BN) makes the result less dependent on B (batch size) than a0": the Welch–James A×B interaction
    test over the a0/a1 cells at the shared B levels, the noise-corrected spread difference, and the verdict."""

    interaction: Interaction
    spread: SpreadDifference
    verdict: str
    alpha: float


def stabilization(cells: dict, a0, a1, *, alpha: float = 0.05, level: float = 0.95, n_resamples: int = 9999,
                  seed: int = 0) -> Stabilization:
    """'supported' only when the a×B interaction is significant (Welch–James p < α: the B-profile of a1 differs from
    a0's beyond seed noise) AND a1's noise-corrected spread of means over B is smaller (diff < 0); 'contradicted'
    when it is significant and a1's spread is larger; otherwise 'inconclusive'. A smaller spread alone is not
    evidence: the comparison of per-seed ranges, or of raw SDs of means, calls a norm with less seed noise
    "stable" even when B changes nothing (see the tests). Cells other than a0/a1 and B levels not shared (≥ 2
    values in both) are left out of both parts."""
    sp = spread_difference(cells, a0, a1, level=level, n_resamples=n_resamples, seed=seed)
    it = interaction_test({(a, b): cells[(a, b)] for a in (a0, a1) for b in sp.b_levels})
    v = "inconclusive"
    if it.welch_p < alpha and sp.diff != 0:
        v = "supported" if sp.diff < 0 else "contradicted"
    return Stabilization(it, sp, v, alpha)


@dataclass(frozen=True)
class BestOf:
    """"`best` beats every other configuration" as an intersection–union test. p_value = max over the others of the
    one-sided Welch p-value of best against that one (`weakest` names the largest); diffs[label] = mean_best −
    mean_label with the one-sided Welch CI cis[label] at `level` (one infinite end) and p_values[label].
    prob_best: bootstrap share of resamples (seeds resampled within each configuration) in which best has the
    largest mean ("greater") or the smallest ("less"): descriptive, not a p-value. n_best, n[label]: finite values."""

    p_value: float
    weakest: object
    diffs: dict
    cis: dict
    p_values: dict
    prob_best: float
    n_best: int
    n: dict
    alternative: str
    level: float


def best_of(best, others: dict, *, alternative: str = "greater", level: float = 0.95, n_resamples: int = 9999,
            seed: int = 0) -> BestOf:
    """Intersection–union test (Berger 1982) of H1: mean_best > mean_k for every k in `others` (alternative
    "greater"; "less" for e.g. error rates): reject at α iff every one-sided Welch test (scipy.stats.ttest_ind)
    rejects at α, so p = max_k p_k, with no multiplicity correction and size ≤ α; the worst case, best tied
    with one competitor and clearly ahead of the rest, rejects about α of the time. Finite values only; a
    competitor with no usable test (n < 2 a side, no variance at all) makes p NaN; no competitors: NaN.
    n_resamples = 0 skips the bootstrap (prob_best NaN)."""
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    x = _finite(best)
    ys = {k: _finite(v) for k, v in others.items()}
    diffs, cis, ps = {}, {}, {}
    for k, y in ys.items():
        ps[k], cis[k] = _welch(y, x, alternative=alternative, level=level)
        diffs[k] = float(x.mean() - y.mean()) if len(x) and len(y) else np.nan
    pv = np.array(list(ps.values()), float)
    p = float(pv.max()) if len(pv) and not np.isnan(pv).any() else np.nan
    weakest = list(ps)[int(pv.argmax())] if np.isfinite(p) else None
    prob = np.nan
    if n_resamples > 0 and len(x) and ys and all(len(y) for y in ys.values()):
        rng = np.random.default_rng(seed)
        boot = lambda v: v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(axis=1)   # noqa: E731
        bx, rest = boot(x), np.stack([boot(y) for y in ys.values()])
        prob = float(np.mean(bx > rest.max(axis=0)) if alternative == "greater" else np.mean(bx < rest.min(axis=0)))
    return BestOf(p, weakest, diffs, cis, ps, prob, len(x), {k: len(y) for k, y in ys.items()}, alternative, level)


@dataclass(frozen=True)
class CensoredComparison:
    """Time to a threshold (e.g. steps to 97%), b against a, where runs that never reached it are censored at the
    end of training. reached_*: runs that reached it, of n_*. median_*: median over all runs with the censored ones
    at +inf (inf when half or more never reach; with a common censoring time this is the Kaplan–Meier median).
    shift: Hodges–Lehmann median of b_j − a_i over the reached runs only (NaN if a side reached nothing).
    prob_b_slower: P(T_b > T_a) + ½·P(T_b = T_a) over all pairs of runs, censored = +inf (two censored runs tie).
    p_value: two-sided Mann–Whitney U on all runs, censored ranked last and tied (permutation distribution).
    reach_p: two-sided Fisher exact test of reached / not reached."""

    n_a: int
    n_b: int
    reached_a: int
    reached_b: int
    median_a: float
    median_b: float
    shift: float
    prob_b_slower: float
    p_value: float
    reach_p: float


def _censored_side(steps, reached) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(steps, float).ravel()
    r = np.isfinite(s) if reached is None else np.asarray(reached, bool).ravel()
    if r.shape != s.shape:
        raise ValueError(f"steps and reached need equal lengths, got {len(s)} and {len(r)}")
    keep = ~r | np.isfinite(s)                      # a 'reached' run without a finite step is unusable: dropped
    return np.where(r, s, np.inf)[keep], r[keep]


def censored_compare(steps_a, reached_a, steps_b, reached_b, *, n_resamples: int = 9999,
                     seed: int = 0) -> CensoredComparison:
    """Compare times to a threshold where a run that never reaches it is slower than every run that does: its
    time is +inf (censored at the end of training; all runs must share that horizon). Dropping such runs instead
    would make a configuration where half the seeds never get there look fast. reached_* may be None: then a run
    reached iff its step is finite (the NaN of `steps_to_threshold`); steps of unreached runs are ignored, and
    reached runs with a non-finite step are dropped. Mann–Whitney U (scipy.stats.mannwhitneyu with a permutation
    distribution: exact when C(n_a+n_b, n_a) ≤ n_resamples, seeded Monte Carlo otherwise) and Fisher's exact test
    (scipy.stats.fisher_exact). NaN: p_value when a side has < 2 runs or all runs tie (e.g. nothing reached
    anywhere); everything but the counts when a side is empty."""
    a, ra = _censored_side(steps_a, reached_a)
    b, rb = _censored_side(steps_b, reached_b)
    na, nb = len(a), len(b)
    ha, hb = a[ra], b[rb]
    med = lambda x: float(np.median(x)) if len(x) else np.nan    # noqa: E731
    shift = float(np.median(np.subtract.outer(hb, ha))) if len(ha) and len(hb) else np.nan
    prob = p = reach_p = np.nan
    if na and nb:
        big = np.concatenate([ha, hb, [0.0]]).max() + 1.0     # ranks only: censored = last, tied
        fa, fb = np.where(ra, a, big), np.where(rb, b, big)
        prob = float((np.sign(fb[:, None] - fa[None, :]) / 2 + 0.5).mean())
        if min(na, nb) >= 2 and np.ptp(np.concatenate([fa, fb])) > 0:
            method = ss.PermutationMethod(n_resamples=n_resamples, rng=np.random.default_rng(seed))
            p = float(ss.mannwhitneyu(fb, fa, alternative="two-sided", method=method).pvalue)
        reach_p = float(ss.fisher_exact([[ra.sum(), na - ra.sum()], [rb.sum(), nb - rb.sum()]]).pvalue)
    return CensoredComparison(na, nb, int(ra.sum()), int(rb.sum()), med(a), med(b), shift, prob, p, reach_p)


def log_ratio_ci(a, b, level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Ratio of geometric means exp(mean log a − mean log b) with the exponentiated Welch t-interval of
    mean(log a) − mean(log b) at `level`, for positive data such as step counts or times (a speed-up factor).
    For lognormal data with equal log-SDs it is also the ratio of means and of medians. Finite values only; NaN
    when a value is ≤ 0 (no logarithm), n < 2 a side, or neither side varies (CI only)."""
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2 or (a <= 0).any() or (b <= 0).any():
        return np.nan, _NAN2
    la, lb = np.log(a), np.log(b)
    _, (lo, hi) = _welch(lb, la, level=level)
    return float(np.exp(la.mean() - lb.mean())), (float(np.exp(lo)), float(np.exp(hi)))


def fieller_ci(a, b, level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """mean(a)/mean(b) with Fieller's interval for independent samples: the ρ with (ā − ρb̄)² ≤ t²(v_a + ρ²v_b),
    v = s²/n, t = t((1+level)/2, ν) and ν the Welch–Satterthwaite df of ā − ρ̂b̄ at ρ̂ = ā/b̄. If b̄² > t²v_b
    (b̄ significantly ≠ 0): [(āb̄ ∓ t√(ā²v_b + b̄²v_a − t²v_a v_b)) / (b̄² − t²v_b)]. Otherwise the confidence set is
    unbounded (the whole line, or two rays) and (−inf, inf) is returned. Finite values only; NaN with fewer than 2
    values a side, or no variance on either side (CI only; ratio NaN also when b̄ = 0)."""
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2:
        return np.nan, _NAN2
    ma, mb = a.mean(), b.mean()
    ratio = float(ma / mb) if mb != 0 else np.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va == 0 and vb == 0:
        return ratio, _NAN2
    r = ratio if np.isfinite(ratio) else 0.0
    df = (va + r ** 2 * vb) ** 2 / (va ** 2 / (len(a) - 1) + r ** 4 * vb ** 2 / (len(b) - 1))
    t2 = ss.t.ppf((1 + level) / 2, df) ** 2
    den = mb ** 2 - t2 * vb
    if not den > 0:
        return ratio, (-np.inf, np.inf)
    h = np.sqrt(t2 * (ma ** 2 * vb + mb ** 2 * va - t2 * va * vb))
    return ratio, (float((ma * mb - h) / den), float((ma * mb + h) / den))


def curve_noise(values, axis: int = -1):
    """Noise of a series around its trend (e.g. per-step training losses): σ̂ = √(mean((Δ²x_t)²)/6) over the second
    differences Δ²x_t = x_{t−1} − 2x_t + x_{t+1} (Gasser, Sroka & Jennen-Steinmetz 1986 pseudo-residuals; for white
    noise of SD σ, Var Δ²x = 6σ²). A locally linear trend cancels: 0 for a straight line up to rounding; a curved
    trend f adds about mean(f''²)/6 to σ̂² (noiseless 1 − 0.1·exp(−t/3), t = 0..199: σ̂ = 3.3e-4, raw SD 0.01).
    No window to choose; equally spaced points assumed; heteroscedastic noise gives its RMS. Triplets touching a
    non-finite value are skipped; fewer than 3 points (no triplet): NaN. values: [T] -> float, or [..., T] along
    `axis` -> array."""
    x = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    if x.shape[-1] < 3:
        out = np.full(x.shape[:-1], np.nan)
    else:
        d = x[..., :-2] - 2 * x[..., 1:-1] + x[..., 2:]
        ok = np.isfinite(d)
        cnt = ok.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(cnt > 0, np.sqrt((np.where(ok, d, 0.0) ** 2).sum(axis=-1) / (6 * cnt)), np.nan)
    return float(out) if out.ndim == 0 else out


def permutation_floor(n_a: int, n_b: int, *, paired: bool = False, alternative: str = "two-sided") -> float:
    """Smallest p-value an exact permutation test (as in `compare`) can return: two-sided 2/C(n_a+n_b, n_a) for
    independent samples (0.1 for 3 vs 3, 2/252 for 5 vs 5), 2/2ⁿ for n pairs (sign flips; n = n_a = n_b);
    one-sided half that. Capped at 1. If it is ≥ α, no data can make the permutation test significant."""
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    if paired and n_a != n_b:
        raise ValueError(f"paired needs n_a == n_b, got {n_a} and {n_b}")
    if min(n_a, n_b) < 0:
        raise ValueError(f"sample sizes must be ≥ 0, got {n_a} and {n_b}")
    count = 2 ** n_a if paired else comb(n_a + n_b, n_a)
    return min(1.0, (2 if alternative == "two-sided" else 1) / count)


def mcnemar_se(n_test: int, acc_a: float, acc_b: float, discordant: float) -> float:
    """Standard error, over the sampling of test examples, of acc_b − acc_a for two models scored on the same
    n_test examples: √((d − (acc_b − acc_a)²)/n_test), where d = the fraction of examples that exactly one of the
    two gets right (p₁₀ + p₀₁; acc_b − acc_a = p₀₁ − p₁₀), the variance behind McNemar's test. It says how much
    of a difference one fixed test set can resolve; seed-to-seed variation is separate. NaN for n_test < 1 or
    inconsistent inputs (|acc_b − acc_a| ≤ d ≤ min(acc_a + acc_b, 2 − acc_a − acc_b) must hold)."""
    diff = acc_b - acc_a
    ok = (n_test >= 1 and 0 <= acc_a <= 1 and 0 <= acc_b <= 1
          and abs(diff) - 1e-12 <= discordant <= min(acc_a + acc_b, 2 - acc_a - acc_b) + 1e-12)
    return float(np.sqrt(max(0.0, discordant - diff ** 2) / n_test)) if ok else np.nan
