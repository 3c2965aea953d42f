"""One sample at a time: finite values, mean with a t-interval, bootstrap intervals, steps to a threshold
and a linear trend; the shared helpers (finite, pair, NAN2, the scipy bootstrap)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy  # scipy.stats loads on first use (scipy's lazy submodules): importing bnlab.stats stays light

NAN2 = (np.nan, np.nan)


def finite(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def nan_stat(x, reduce=np.max) -> float:
    """`reduce` (np.max, np.median, np.mean, ...) over x's values that are not NaN (infinities kept);
    NaN, without numpy's all-NaN or empty warning, when there are none."""
    a = np.asarray(x, dtype=float).ravel()
    a = a[~np.isnan(a)]
    return float(reduce(a)) if len(a) else np.nan


def nan_mean(x, axis: int | None = None) -> np.ndarray:
    """np.nanmean(x, axis) (axis None: over all of x, a 0-d array), NaN where a slice has no value that
    is not NaN, without numpy's warning."""
    a = np.asarray(x, dtype=float)
    ok = ~np.isnan(a)
    n = ok.sum(axis)
    return np.where(n > 0, np.where(ok, a, 0.0).sum(axis) / np.maximum(n, 1), np.nan)


def pair(ci) -> tuple[float, float]:
    return float(ci[0]), float(ci[1])


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


def bootstrap_interval(samples, statistic, *, paired: bool, level: float, n_resamples: int, seed: int):
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
    return bootstrap_interval((a,), statistic, paired=False, level=level, n_resamples=n_resamples, seed=seed)


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
