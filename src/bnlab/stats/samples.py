"""Summaries, intervals and two-sample comparisons of per-seed results; shared helpers (finite, pair, welch)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy  # scipy.stats loads on first use (scipy's lazy submodules): importing bnlab.stats stays light

NAN2 = (np.nan, np.nan)


def finite(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def pair(ci) -> tuple[float, float]:
    return float(ci[0]), float(ci[1])


def welch(a, b, *, alternative: str = "two-sided", level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """p and CI at `level` of Welch's test of mean_b − mean_a over finite arrays (the numbers of
    scipy.stats.ttest_ind(b, a, equal_var=False), computed directly: the helper runs inside simulations);
    a one-sided CI has an infinite end. NaN when n < 2 a side or neither side varies (as in `compare`)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return np.nan, NAN2
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    se, d = np.sqrt(va + vb), b.mean() - a.mean()
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    t = d / se
    if alternative == "two-sided":
        h = scipy.stats.t.ppf((1 + level) / 2, df) * se
        return float(2 * scipy.stats.t.sf(abs(t), df)), (float(d - h), float(d + h))
    h = scipy.stats.t.ppf(level, df) * se
    if alternative == "greater":
        return float(scipy.stats.t.sf(t, df)), (float(d - h), np.inf)
    return float(scipy.stats.t.cdf(t, df)), (-np.inf, float(d + h))


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
    a = finite(values)
    n = len(a)
    mean = float(a.mean()) if n else np.nan
    if n < 2:
        return Summary(n, mean, np.nan, np.nan, np.nan, level)
    sd = float(a.std(ddof=1))
    if sd == 0:
        return Summary(n, mean, 0.0, mean, mean, level)
    lo, hi = scipy.stats.t.interval(level, n - 1, loc=mean, scale=sd / np.sqrt(n))
    return Summary(n, mean, sd, float(lo), float(hi), level)


def _bootstrap(samples, statistic, *, paired: bool, level: float, n_resamples: int, seed: int):
    """scipy.stats.bootstrap CI: BCa, else percentile; NaN pair if both are undefined (an infinite end,
    from resamples with an unbounded statistic, is kept)."""
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = scipy.stats.bootstrap(
                samples,
                statistic,
                paired=paired,
                confidence_level=level,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
            ).confidence_interval
        if not np.isnan([ci.low, ci.high]).any():
            return pair(ci)
    return NAN2


def bootstrap_ci(
    values, statistic=np.mean, level: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, float]:
    """Distribution-free CI of `statistic` over the finite values (scipy.stats.bootstrap, BCa;
    percentile where BCa is degenerate, e.g. all values equal -> (v, v)). Fewer than 2 values: NaN."""
    a = finite(values)
    if len(a) < 2:
        return NAN2
    return _bootstrap((a,), statistic, paired=False, level=level, n_resamples=n_resamples, seed=seed)


def ratio_ci(
    a, b, level: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """mean(a)/mean(b) of two independent samples (finite values) with a bootstrap CI (scipy, BCa;
    percentile fallback): e.g. a speed-up factor steps_none/steps_bn. NaN with fewer than 2 values a side.
    Undercovers at few seeds (a nominal 95% interval covers about 78% of the time at 3 seeds a side and 88% at 5,
    lognormal data): prefer `log_ratio_ci` (ratio of geometric means) or `fieller_ci` (ratio of means) there."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2 or b.mean() == 0:
        return np.nan, NAN2
    stat = lambda x, y, axis=-1: np.mean(x, axis=axis) / np.mean(y, axis=axis)  # noqa: E731
    return float(a.mean() / b.mean()), _bootstrap(
        (a, b), stat, paired=False, level=level, n_resamples=n_resamples, seed=seed
    )


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
    a, b = finite(a), finite(b)
    return float(_g(a, b)) if len(a) >= 2 and len(b) >= 2 else np.nan


@dataclass(frozen=True, kw_only=True)
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
    sd_a: float = np.nan  # sample SDs (ddof 1): the seed-to-seed spread, for power statements
    sd_b: float = np.nan
    diff_se: float = np.nan  # SE of diff (Welch: √(s_a²/n_a + s_b²/n_b); paired: s_d/√n) and its t df,
    df: float = np.nan  # for TOST against a margin (tost_p)


def compare(
    a,
    b,
    *,
    label_a: str = "a",
    label_b: str = "b",
    paired: bool = False,
    level: float = 0.95,
    alternative: str = "two-sided",
    n_resamples: int = 9999,
    seed: int = 0,
) -> Comparison:
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
        a, b = finite(a), finite(b)
    na, nb = len(a), len(b)
    mean_a, mean_b = (float(x.mean()) if len(x) else np.nan for x in (a, b))
    test = "paired t-test" if paired else "Welch t-test"
    sd = lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else np.nan  # noqa: E731
    se, df = _se_df(a, b, paired)
    common = dict(
        label_a=label_a,
        label_b=label_b,
        n_a=na,
        n_b=nb,
        mean_a=mean_a,
        mean_b=mean_b,
        diff=mean_b - mean_a,
        test=test,
        prob_improvement=prob_improvement(a, b, paired=paired),
        paired=paired,
        level=level,
        alternative=alternative,
        sd_a=sd(a),
        sd_b=sd(b),
        diff_se=se,
        df=df,
    )
    if na < 2 or nb < 2 or (np.ptp(b - a) == 0 if paired else np.ptp(a) == 0 and np.ptp(b) == 0):
        return Comparison(
            **common, diff_ci=NAN2, p_value=np.nan, perm_p=np.nan, hedges_g=hedges_g(a, b), hedges_g_ci=NAN2
        )
    if paired:
        t = scipy.stats.ttest_rel(b, a, alternative=alternative)
        perm = scipy.stats.permutation_test(
            (b, a),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            vectorized=True,
            permutation_type="samples",
            alternative=alternative,
            n_resamples=n_resamples,
            rng=np.random.default_rng(seed),
        )
    else:
        with warnings.catch_warnings():  # one side constant (e.g. all seeds reach 97% at the same epoch):
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)  # Welch is still defined
            t = scipy.stats.ttest_ind(b, a, equal_var=False, alternative=alternative)
        perm = scipy.stats.permutation_test(
            (b, a),
            lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
            vectorized=True,
            permutation_type="independent",
            alternative=alternative,
            n_resamples=n_resamples,
            rng=np.random.default_rng(seed),
        )
    g_ci = _bootstrap(
        (a, b), partial(_g, limit=True), paired=paired, level=level, n_resamples=n_resamples, seed=seed
    )
    return Comparison(
        **common,
        diff_ci=pair(t.confidence_interval(level)),
        p_value=float(t.pvalue),
        perm_p=float(perm.pvalue),
        hedges_g=float(_g(a, b)),
        hedges_g_ci=g_ci,
    )


def _se_df(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[float, float]:
    """The t statistic's standard error of mean_b − mean_a and its degrees of freedom (Welch–Satterthwaite)."""
    if paired:
        n = len(a)
        return (float(np.std(b - a, ddof=1) / np.sqrt(n)), float(n - 1)) if n > 1 else (np.nan, np.nan)
    if len(a) < 2 or len(b) < 2:
        return np.nan, np.nan
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0:
        return 0.0, np.nan
    return float(np.sqrt(va + vb)), float((va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)))


def tost_p(c: Comparison, margin: float) -> float:
    """Two one-sided tests that |mean_b − mean_a| < margin, from a comparison's diff, SE and df:
    p = max(P(T ≥ (diff + margin)/se), P(T ≤ (diff − margin)/se)) with T ~ t(df). NaN without a margin
    or a spread; p < α declares equivalence within ±margin (Schuirmann 1987)."""
    if not (
        np.isfinite(margin) and margin > 0 and np.isfinite(c.diff_se) and c.diff_se > 0 and np.isfinite(c.df)
    ):
        return np.nan
    lower = scipy.stats.t.sf((c.diff + margin) / c.diff_se, c.df)
    upper = scipy.stats.t.cdf((c.diff - margin) / c.diff_se, c.df)
    return float(max(lower, upper))


def prob_improvement(a, b, *, paired: bool = False) -> float:
    """P(b > a) + ½·P(b = a): over all (a_i, b_j) pairs, i.e. U_b/(n_a·n_b) from scipy.stats.mannwhitneyu
    (rliable's probability of improvement); over the given pairs when paired. NaN if a side is empty."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or not len(b):
        return np.nan
    if paired:
        return float(np.mean(np.sign(b - a) / 2 + 0.5))
    return float(scipy.stats.mannwhitneyu(b, a, method="asymptotic").statistic / (len(a) * len(b)))


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
        raise ValueError(
            f"values must be [T] or [R, T] with T = {len(steps)} steps, got shape {np.shape(values)}"
        )
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
        return Trend(np.nan, NAN2, np.nan, np.nan, n, level)
    r = scipy.stats.linregress(x, y)
    h = scipy.stats.t.ppf((1 + level) / 2, n - 2) * r.stderr
    return Trend(
        float(r.slope), (float(r.slope - h), float(r.slope + h)), float(r.pvalue), float(r.rvalue), n, level
    )


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
    arrs = {k: finite(v) for k, v in groups.items()}
    vals = [v for v in arrs.values() if len(v)]
    n = {k: len(v) for k, v in arrs.items()}
    if len(vals) < 2 or any(len(v) < 2 for v in vals) or np.ptp(np.concatenate(vals)) == 0:
        return GroupTest(n, np.nan, np.nan, np.nan, np.nan)
    f, k = scipy.stats.f_oneway(*vals), scipy.stats.kruskal(*vals)
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
    a, b = finite(a), finite(b)
    ci_level = round(2 * level - 1, 12)  # the (1 − 2α) level
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else np.nan
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return Equivalence(diff, margin, np.nan, NAN2, ci_level, False)
    p_low = scipy.stats.ttest_ind(
        b + margin, a, equal_var=False, alternative="greater"
    ).pvalue  # H0: diff ≤ −margin
    p_high = scipy.stats.ttest_ind(
        b - margin, a, equal_var=False, alternative="less"
    ).pvalue  # H0: diff ≥ +margin
    lo, hi = pair(scipy.stats.ttest_ind(b, a, equal_var=False).confidence_interval(ci_level))
    return Equivalence(
        diff, margin, float(max(p_low, p_high)), (lo, hi), ci_level, bool(-margin < lo and hi < margin)
    )


def hodges_lehmann(a, b, level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Shift of b against a: the Hodges–Lehmann estimate median(b_j − a_i) and its distribution-free CI
    (Lehmann 1975, §2.6): with the m·n differences sorted, [D_(k), D_(mn+1−k)] where k − 1 is the largest u
    with P(U ≤ u) ≤ (1 − level)/2 under the Mann–Whitney null (exact, counted below). Coverage ≥ level for
    any continuous shift family (conservative with ties). Finite values only; CI NaN when the samples are too
    small for any such k (e.g. 2 vs 2 at 95%)."""
    a, b = finite(a), finite(b)
    if not (len(a) and len(b)):
        return np.nan, NAN2
    d = np.sort(np.subtract.outer(b, a).ravel())
    cdf = np.cumsum(_mann_whitney_null(len(a), len(b)))
    k = int(np.searchsorted(cdf, (1 - level) / 2 + 1e-12, side="right"))  # k − 1 = largest u with cdf ≤ α/2
    ci = (float(d[k - 1]), float(d[len(d) - k])) if k >= 1 else NAN2
    return float(np.median(d)), ci


def _mann_whitney_null(m: int, n: int) -> np.ndarray:
    """P(U = u), u = 0..m·n, for U = #{(i, j): b_j > a_i} with no ties under exchangeability: counts of
    m-subsets of ranks 1..m+n by rank sum (dynamic programming), shifted by m(m+1)/2, over C(m+n, m)."""
    N = m + n
    ways = np.zeros((m + 1, N * (N + 1) // 2 + 1))
    ways[0, 0] = 1.0
    for r in range(1, N + 1):  # add rank r to the subsets that lack it
        ways[1:, r:] = ways[1:, r:] + ways[:-1, :-r]
    row = ways[m, m * (m + 1) // 2 : m * (m + 1) // 2 + m * n + 1]
    return row / row.sum()
