"""Rank-based two-sample quantities: the probability of improvement and the Hodges–Lehmann shift with its
exact distribution-free interval."""

from __future__ import annotations

import numpy as np
import scipy  # scipy.stats loads on first use (scipy's lazy submodules): importing bnlab.stats stays light

from .summaries import NAN2, finite


def prob_improvement(a, b, *, paired: bool = False) -> float:
    """P(b > a) + ½·P(b = a): over all (a_i, b_j) pairs, i.e. U_b/(n_a·n_b) from scipy.stats.mannwhitneyu
    (rliable's probability of improvement); over the given pairs when paired. NaN if a side is empty."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or not len(b):
        return np.nan
    if paired:
        return float(np.mean(np.sign(b - a) / 2 + 0.5))
    return float(scipy.stats.mannwhitneyu(b, a, method="asymptotic").statistic / (len(a) * len(b)))


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
