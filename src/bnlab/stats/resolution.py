"""What a measurement can resolve: a series' noise around its trend, the smallest p an exact permutation
test can give, and the standard error one shared test set puts on a difference of accuracies."""

from __future__ import annotations

from math import comb

import numpy as np


def curve_noise(values, axis: int = -1):
    """Noise of a series around its trend (e.g. per-step training losses): σ̂ = √(mean((Δ²x_t)²)/6) over the
    second differences Δ²x_t = x_{t−1} − 2x_t + x_{t+1} (Gasser, Sroka & Jennen-Steinmetz 1986
    pseudo-residuals; for white noise of SD σ, Var Δ²x = 6σ²). A locally linear trend cancels: 0 for a
    straight line up to rounding; a curved trend f adds about mean(f''²)/6 to σ̂² (noiseless 1 −
    0.1·exp(−t/3), t = 0..199: σ̂ = 3.3e-4, raw SD 0.01). No window to choose; equally spaced points assumed;
    heteroscedastic noise gives its RMS. Triplets touching a non-finite value are skipped; fewer than 3 points
    (no triplet): NaN. values: [T] -> float, or [..., T] along `axis` -> array."""
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
    """Smallest p-value an exact permutation test (as in `compare`) can return: two-sided 2/C(n_a+n_b, n_a)
    for independent samples (0.1 for 3 vs 3, 2/252 for 5 vs 5), 2/2ⁿ for n pairs (sign flips; n = n_a = n_b);
    one-sided half that. Capped at 1. If it is ≥ α, no data can make the permutation test significant."""
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    if paired and n_a != n_b:
        raise ValueError(f"paired needs n_a == n_b, got {n_a} and {n_b}")
    if min(n_a, n_b) < 0:
        raise ValueError(f"sample sizes must be ≥ 0, got {n_a} and {n_b}")
    count = 2**n_a if paired else comb(n_a + n_b, n_a)
    return min(1.0, (2 if alternative == "two-sided" else 1) / count)


def mcnemar_se(n_test: int, acc_a: float, acc_b: float, discordant: float) -> float:
    """Standard error, over the sampling of test examples, of acc_b − acc_a for two models scored on the same
    n_test examples: √((d − (acc_b − acc_a)²)/n_test), where d = the fraction of examples that exactly one of
    the two gets right (p₁₀ + p₀₁; acc_b − acc_a = p₀₁ − p₁₀), the variance behind McNemar's test. It says how
    much of a difference one fixed test set can resolve; seed-to-seed variation is separate. NaN for n_test <
    1 or inconsistent inputs (|acc_b − acc_a| ≤ d ≤ min(acc_a + acc_b, 2 − acc_a − acc_b) must hold)."""
    diff = acc_b - acc_a
    ok = (
        n_test >= 1
        and 0 <= acc_a <= 1
        and 0 <= acc_b <= 1
        and abs(diff) - 1e-12 <= discordant <= min(acc_a + acc_b, 2 - acc_a - acc_b) + 1e-12
    )
    return float(np.sqrt(max(0.0, discordant - diff**2) / n_test)) if ok else np.nan
