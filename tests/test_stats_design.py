"""Statistics for claims as worded: four verdicts, power and seeds, the norm × batch-size interaction, the
intersection–union test for "best", censored times-to-threshold, ratio intervals, curve noise, permutation
floors. Hand-worked values, scipy cross-checks and seeded, vectorised simulations (each with a reference that
the simulation shows to fail, so the checks can fail)."""
import math

import numpy as np
import pytest
from scipy import stats as ss

from bnlab import stats as S

NAN = float("nan")


def mc_se(p, n):
    """Monte-Carlo standard error of a rate p over n simulated studies."""
    return math.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------- 1. four verdicts

def test_verdict_names_old_and_new():
    assert S.VERDICTS == ("supported", "contradicted", "inconclusive")       # `verdict` is unchanged
    assert S.CLAIM_VERDICTS == ("supported", "contradicted", "equivalent", "inconclusive")


@pytest.mark.parametrize("p, ci, tost_p, sign, want", [
    (0.01, (0.1, 0.3), 0.01, 1, "supported"),          # significant wins over equivalence
    (0.01, (0.1, 0.3), 0.01, -1, "contradicted"),
    (0.30, (-0.1, 0.2), 0.01, 1, "equivalent"),
    (0.30, (-0.1, 0.2), 0.20, 1, "inconclusive"),
    (0.30, (-0.1, 0.2), NAN, 1, "inconclusive"),
    (NAN, (NAN, NAN), 0.01, 1, "inconclusive"),        # no test of the difference: no 'equivalent' either
    (0.01, (-0.1, 0.2), 0.01, 1, "inconclusive"),      # p and CI disagree: never 'equivalent'
    (0.05, (-0.1, 0.2), 0.049, 1, "equivalent"),       # p = α is not significant; tost_p < α is
])
def test_verdict_with_equivalence_table(p, ci, tost_p, sign, want):
    assert S.verdict_with_equivalence(p, ci, tost_p, expected_sign=sign) == want


def test_claim_verdict_four_outcomes_match_scipy():
    rng = np.random.default_rng(10)
    a = rng.normal(0, 1, 12)
    z = rng.normal(0, 1, 12)
    up = S.claim_verdict(a, z + 3, expected_sign=1, margin=0.5)
    ref = ss.ttest_ind(z + 3, a, equal_var=False)
    assert up.verdict == "supported" and up.p_value == pytest.approx(ref.pvalue)
    assert up.diff_ci[0] == pytest.approx(ref.confidence_interval(0.95).low) and up.diff == pytest.approx(
        np.mean(z + 3) - np.mean(a))
    assert S.claim_verdict(a, z + 3, expected_sign=-1, margin=0.5).verdict == "contradicted"
    # b = a shifted by a tenth of the margin, tiny noise: not different, provably within the margin
    tight = rng.normal(0, 0.01, 20)
    eq = S.claim_verdict(tight, tight[::-1] + 0.0001, expected_sign=1, margin=0.01)
    assert eq.verdict == "equivalent" and eq.p_value > 0.05 and eq.tost_p < 0.05
    assert -0.01 < eq.tost_ci[0] < eq.tost_ci[1] < 0.01
    assert eq.tost_p == pytest.approx(S.equivalence(tight, tight[::-1] + 0.0001, 0.01).p_value)
    wide = S.claim_verdict(a[:4], z[:4], expected_sign=1, margin=0.1)       # 4 noisy seeds: cannot tell
    assert wide.verdict == "inconclusive" and wide.p_value > 0.05 and wide.tost_p > 0.05
    assert (wide.n_a, wide.n_b, wide.alpha, wide.margin) == (4, 4, 0.05, 0.1)


def test_claim_verdict_degenerate_and_invalid():
    c = S.claim_verdict([1.0, NAN], [1.0, 2.0], expected_sign=1, margin=1)
    assert c.verdict == "inconclusive" and math.isnan(c.p_value) and c.n_a == 1
    assert S.claim_verdict([1, 1, 1], [1, 1, 1], expected_sign=1, margin=1).verdict == "inconclusive"
    with pytest.raises(ValueError):
        S.claim_verdict([1, 2], [1, 2], expected_sign=0, margin=1)
    with pytest.raises(ValueError):
        S.claim_verdict([1, 2], [1, 2], expected_sign=1, margin=0)
