"""Several groups or several claims at once: Holm's adjustment, one-way ANOVA and Kruskal–Wallis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy  # scipy.stats loads on first use (scipy's lazy submodules): importing bnlab.stats stays light

from .summaries import finite


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
