"""Two samples: Welch's and the paired t-test with a permutation test, Hedges' g, and equivalence (TOST)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy  # scipy.stats loads on first use (scipy's lazy submodules): importing bnlab.stats stays light

from .ranks import prob_improvement
from .summaries import NAN2, bootstrap_interval, finite, pair


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


def _g(a, b, axis=-1, *, limit=False):
    """Vectorised Hedges' g along `axis`. Where both samples are constant (s_pooled = 0): NaN, or with
    limit=True the limiting value ±inf (0 if the means are equal), so such bootstrap resamples sit in the
    tails."""
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
    se, df = _se_df(a, b, paired)
    if na < 2 or nb < 2 or (np.ptp(b - a) == 0 if paired else np.ptp(a) == 0 and np.ptp(b) == 0):
        diff_ci, p_value, perm_p, g, g_ci = NAN2, np.nan, np.nan, hedges_g(a, b), NAN2
    else:
        diff_ci, p_value, perm_p = _t_and_permutation(a, b, paired, level, alternative, n_resamples, seed)
        g = float(_g(a, b))
        g_ci = bootstrap_interval(
            (a, b), partial(_g, limit=True), paired=paired, level=level, n_resamples=n_resamples, seed=seed
        )
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        n_a=na,
        n_b=nb,
        mean_a=mean_a,
        mean_b=mean_b,
        diff=mean_b - mean_a,
        diff_ci=diff_ci,
        test="paired t-test" if paired else "Welch t-test",
        p_value=p_value,
        perm_p=perm_p,
        hedges_g=g,
        hedges_g_ci=g_ci,
        prob_improvement=prob_improvement(a, b, paired=paired),
        paired=paired,
        level=level,
        alternative=alternative,
        sd_a=_sd(a),
        sd_b=_sd(b),
        diff_se=se,
        df=df,
    )


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else np.nan


def _mean_of_differences(x, y, axis):
    return np.mean(x - y, axis=axis)


def _difference_of_means(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _t_and_permutation(
    a: np.ndarray, b: np.ndarray, paired: bool, level: float, alternative: str, n_resamples: int, seed: int
) -> tuple[tuple[float, float], float, float]:
    """The t-test's CI and p of mean_b − mean_a, and the permutation test's p of the same difference."""
    if paired:
        t = scipy.stats.ttest_rel(b, a, alternative=alternative)
    else:
        with warnings.catch_warnings():  # one side constant (e.g. all seeds reach 97% at the same epoch):
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)  # Welch is still defined
            t = scipy.stats.ttest_ind(b, a, equal_var=False, alternative=alternative)
    perm = scipy.stats.permutation_test(
        (b, a),
        _mean_of_differences if paired else _difference_of_means,
        vectorized=True,
        permutation_type="samples" if paired else "independent",
        alternative=alternative,
        n_resamples=n_resamples,
        rng=np.random.default_rng(seed),
    )
    return pair(t.confidence_interval(level)), float(t.pvalue), float(perm.pvalue)


def _se_df(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[float, float]:
    """The t statistic's standard error of mean_b − mean_a and its degrees of freedom
    (Welch–Satterthwaite)."""
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
    return tost(c.diff, c.diff_se, c.df, margin)


def tost(diff: float, se: float, df: float, margin: float) -> float:
    """`tost_p` of an estimate `diff` with standard error `se` on `df` t degrees of freedom."""
    if not (np.isfinite(margin) and margin > 0 and np.isfinite(se) and se > 0 and np.isfinite(df)):
        return np.nan
    lower = scipy.stats.t.sf((diff + margin) / se, df)
    upper = scipy.stats.t.cdf((diff - margin) / se, df)
    return float(max(lower, upper))


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
    """Two one-sided Welch tests (scipy.stats.ttest_ind): H0 diff ≤ −margin and H0 diff ≥ +margin, α = 1 −
    level. Degenerate input (n < 2 a side, or no variance at all): p and ci NaN, not equivalent."""
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
