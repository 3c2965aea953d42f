"""Verdicts: supported, contradicted, equivalent (TOST within a declared margin) or inconclusive."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .comparisons import equivalence, welch
from .summaries import finite

VERDICTS = ("supported", "contradicted", "inconclusive")  # what `verdict` can say
CLAIM_VERDICTS = (
    "supported",
    "contradicted",
    "equivalent",
    "inconclusive",
)  # `claim_verdict` adds 'equivalent'


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


def verdict_with_equivalence(
    p_value: float, ci, tost_p: float, *, expected_sign: int, alpha: float = 0.05
) -> str:
    """One of CLAIM_VERDICTS. 'supported' / 'contradicted' exactly as `verdict` (p < α and the whole CI on the
    claimed / the opposite side of 0); 'equivalent' if the difference is not significant (p ≥ α, a number) and
    the TOST p-value `tost_p` < α, i.e. |difference| < margin was shown; otherwise 'inconclusive' (NaN p or
    tost_p included). A significant difference wins over equivalence: a tiny but real effect inside the margin
    is 'supported' or 'contradicted', never 'equivalent'. Callers may pass Holm-adjusted p-values."""
    v = verdict(p_value, ci, expected_sign=expected_sign, alpha=alpha)
    if v != "inconclusive" or not p_value >= alpha:  # also NaN p: no claim of 'no significant difference'
        return v
    return "equivalent" if tost_p < alpha else "inconclusive"


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim about diff = mean_b − mean_a decided at α: the two-sided Welch test (p_value, diff_ci at 1 −
    α), the TOST of |diff| < margin (`equivalence` at α: tost_p, tost_ci at 1 − 2α) and the verdict from
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
    """Decide "mean_b − mean_a has sign `expected_sign`" with a declared equivalence margin (> 0, in the units
    of the data): supported = Welch p < α with the CI on the claimed side; contradicted = p < α on the other
    side; equivalent = p ≥ α and the TOST shows |diff| < margin at α; else inconclusive. Finite values only;
    degenerate samples (n < 2 a side, no variance at all) give NaN p-values and 'inconclusive'."""
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, got {expected_sign}")
    a, b = finite(a), finite(b)
    p, ci = welch(a, b, level=1 - alpha)
    e = equivalence(a, b, margin, level=1 - alpha)
    v = verdict_with_equivalence(p, ci, e.p_value, expected_sign=expected_sign, alpha=alpha)
    return ClaimVerdict(
        v, e.diff, ci, p, e.p_value, e.ci, float(margin), expected_sign, alpha, len(a), len(b)
    )
