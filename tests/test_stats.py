"""Statistics against hand-worked numbers, textbook examples and scipy directly."""

import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats as ss

from bnlab import stats as S

NAN = float("nan")

# Wikipedia, "Welch's t-test", example 1: t = -2.46, df = 25.0, p = 0.021 (A1 against A2).
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_summarize_t_interval():
    s = S.summarize([1, 2, 3, 4, 5])
    half = ss.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)
    assert (s.n, s.mean, s.sd, s.level) == (5, 3.0, pytest.approx(math.sqrt(2.5)), 0.95)
    assert (s.ci_low, s.ci_high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    s90 = S.summarize([1, 2, 3, 4, 5], level=0.9)
    assert s90.ci_high == pytest.approx(3 + ss.t.ppf(0.95, 4) * math.sqrt(2.5) / math.sqrt(5))


def test_summarize_drops_nan_and_handles_tiny_samples():
    s = S.summarize([1.0, NAN, 3.0, math.inf])
    assert (s.n, s.mean) == (2, 2.0)
    one = S.summarize([0.97])
    assert one.n == 1 and one.mean == 0.97 and math.isnan(one.sd) and math.isnan(one.ci_low)
    flat = S.summarize([0.5, 0.5, 0.5])
    assert (flat.sd, flat.ci_low, flat.ci_high) == (0.0, 0.5, 0.5)
    assert S.summarize([]).n == 0 and math.isnan(S.summarize([]).mean)


def test_welch_textbook_example_and_hand_formula():
    c = S.compare(A2, A1, label_a="A2", label_b="A1")  # diff = mean(A1) - mean(A2), as in the example
    assert c.test == "Welch t-test" and (c.n_a, c.n_b) == (15, 15)
    assert c.p_value == pytest.approx(0.021, abs=5e-4)
    va, vb = np.var(A2, ddof=1) / 15, np.var(A1, ddof=1) / 15
    df = (va + vb) ** 2 / (va**2 / 14 + vb**2 / 14)
    assert df == pytest.approx(24.99, abs=0.01)
    se = math.sqrt(va + vb)
    assert c.diff / se == pytest.approx(-2.46, abs=0.005)
    assert c.p_value == pytest.approx(2 * ss.t.sf(abs(c.diff) / se, df))
    half = ss.t.ppf(0.975, df) * se
    assert c.diff_ci == (pytest.approx(c.diff - half), pytest.approx(c.diff + half))


def test_compare_matches_scipy_and_hedges_g():
    a = [0.9770, 0.9781, 0.9765, 0.9779, 0.9772]
    b = [0.9790, 0.9801, 0.9785, 0.9795, 0.9788]
    c = S.compare(a, b, label_a="none", label_b="batch")
    ref = ss.ttest_ind(b, a, equal_var=False)
    assert c.p_value == pytest.approx(ref.pvalue) and c.diff == pytest.approx(np.mean(b) - np.mean(a))
    assert c.diff_ci == (
        pytest.approx(ref.confidence_interval().low),
        pytest.approx(ref.confidence_interval().high),
    )
    sp = math.sqrt((np.var(a, ddof=1) * 4 + np.var(b, ddof=1) * 4) / 8)
    assert c.hedges_g == pytest.approx((1 - 3 / 31) * (np.mean(b) - np.mean(a)) / sp)
    assert c.prob_improvement == 1.0 and c.hedges_g_ci[0] > 0 and c.level == 0.95
    assert c.perm_p == pytest.approx(2 / 252)  # exact: the observed split is the most extreme of C(10,5)


def test_hedges_g_hand_computed():
    # means 2 and 4, both variances 1 -> s_pooled = 1; J = 1 - 3/(4*6 - 9) = 0.8
    assert S.hedges_g([1, 2, 3], [3, 4, 5]) == pytest.approx(1.6)
    assert S.hedges_g([3, 4, 5], [1, 2, 3]) == pytest.approx(-1.6)
    assert math.isnan(S.hedges_g([1, 1], [2, 2])) and math.isnan(S.hedges_g([1], [2, 3]))


def test_paired_beats_unpaired_when_pairs_share_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 8)
    a, b = base, base + 0.2 + rng.normal(0, 0.01, 8)
    p, u = S.compare(a, b, paired=True), S.compare(a, b)
    assert p.test == "paired t-test" and p.p_value < 1e-6 < 0.1 < u.p_value
    assert p.p_value == pytest.approx(ss.ttest_rel(b, a).pvalue)
    assert p.perm_p == pytest.approx(2 / 256)  # exact over 2^8 sign flips
    assert p.prob_improvement == 1.0 and u.prob_improvement < 0.8
    with pytest.raises(ValueError):
        S.compare([1, 2, 3], [1, 2], paired=True)


def test_compare_one_sided_and_prob_improvement_ties():
    c = S.compare([1, 2, 3, 4], [3, 4, 5, 6], alternative="greater")
    assert c.diff_ci[1] == math.inf and c.p_value == pytest.approx(
        ss.ttest_ind([3, 4, 5, 6], [1, 2, 3, 4], equal_var=False, alternative="greater").pvalue
    )
    assert S.verdict(c.p_value, c.diff_ci, expected_sign=1) == "supported"
    # pairs (a_i, b_j): b=[1,2] vs a=[1,3]: 2>1 wins, 1=1 and 1<3 and 2<3 -> (1 + 0.5) / 4
    assert S.prob_improvement([1, 3], [1, 2]) == pytest.approx(0.375)
    assert S.prob_improvement([1, 3], [1, 4], paired=True) == pytest.approx(0.75)


def test_holm_hand_worked():
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    assert np.allclose(S.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert S.holm([0.5, 0.6]).tolist() == [1.0, 1.0]
    got = S.holm([0.01, NAN, 0.02])
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)


def test_steps_to_threshold():
    steps = [100, 200, 300]
    vals = [[0.9, 0.97, 0.99], [0.96, 0.965, 0.969], [0.98, 0.99, 0.99]]
    got = S.steps_to_threshold(steps, vals, 0.97)
    assert got.shape == (3,) and got[0] == 200 and math.isnan(got[1]) and got[2] == 100
    assert S.steps_to_threshold(steps, [0.5, 0.98, 0.99], 0.97).tolist() == [200]
    assert S.steps_to_threshold(steps, [NAN, 0.98, 0.99], 0.97).tolist() == [200]
    with pytest.raises(ValueError):
        S.steps_to_threshold(steps, [0.5, 0.98], 0.97)


def test_verdicts():
    assert S.VERDICTS == ("supported", "contradicted", "inconclusive")
    assert S.verdict(0.01, (0.1, 0.3), expected_sign=1) == "supported"
    assert S.verdict(0.01, (-0.3, -0.1), expected_sign=1) == "contradicted"
    assert S.verdict(0.01, (-0.3, -0.1), expected_sign=-1) == "supported"
    assert S.verdict(0.01, (0.1, 0.3), expected_sign=-1) == "contradicted"
    assert S.verdict(0.20, (-0.1, 0.3), expected_sign=1) == "inconclusive"
    assert S.verdict(0.20, (0.1, 0.3), expected_sign=1) == "inconclusive"  # CI alone is not enough
    assert S.verdict(NAN, (NAN, NAN), expected_sign=1) == "inconclusive"
    assert S.verdict(0.01, (NAN, 0.3), expected_sign=1) == "inconclusive"
    with pytest.raises(ValueError):
        S.verdict(0.01, (0.1, 0.3), expected_sign=0)


def test_degenerate_inputs_do_not_raise():
    c = S.compare([0.9], [0.95])
    assert math.isnan(c.p_value) and math.isnan(c.perm_p) and c.diff == pytest.approx(0.05)
    c = S.compare([1, 1, 1], [1, 1, 1])
    assert math.isnan(c.p_value) and S.verdict(c.p_value, c.diff_ci, expected_sign=1) == "inconclusive"
    assert math.isnan(S.compare([1, 2, 3], [2, 3, 4], paired=True).p_value)  # constant differences
    assert S.compare([], []).n_a == 0
    assert math.isnan(S.trend([1, 1, 1], [1, 2, 3]).slope) and math.isnan(S.trend([1, 2], [1, 2]).slope)
    assert math.isnan(S.group_test({"a": [1, 1], "b": [1, 1]}).anova_p)
    assert math.isnan(S.group_test({"a": [1, 2]}).kruskal_p)
    assert math.isnan(S.equivalence([1], [1, 2], margin=0.1).p_value)
    assert S.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0) and np.isnan(S.bootstrap_ci([2.0])).all()


def test_trend_against_hand_formula():
    x, y = [4, 5, 6, 7] * 3, [0.979, 0.978, 0.977, 0.976] * 3
    t = S.trend(x, y)
    assert t.slope == pytest.approx(-0.001) and t.n == 12 and t.r == pytest.approx(-1)
    x, y = np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 4.1, 5.9, 8.2, 9.8])
    t = S.trend(x, y, level=0.9)
    sxx = ((x - x.mean()) ** 2).sum()
    b = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    se = math.sqrt(((y - y.mean() - b * (x - x.mean())) ** 2).sum() / 3 / sxx)
    assert t.slope == pytest.approx(b) and t.level == 0.9
    assert t.slope_ci == (
        pytest.approx(b - ss.t.ppf(0.95, 3) * se),
        pytest.approx(b + ss.t.ppf(0.95, 3) * se),
    )
    assert t.p_value == pytest.approx(2 * ss.t.sf(b / se, 3))


def test_group_test():
    g = S.group_test({"16": [1, 1.1, 0.9], "128": [2, 2.1, 1.9], "empty": []})
    assert g.n == {"16": 3, "128": 3, "empty": 0}
    assert g.anova_p == pytest.approx(ss.f_oneway([1, 1.1, 0.9], [2, 2.1, 1.9]).pvalue) and g.anova_p < 1e-3
    assert g.kruskal_p == pytest.approx(ss.kruskal([1, 1.1, 0.9], [2, 2.1, 1.9]).pvalue)


def test_equivalence():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.001, 20)
    e = S.equivalence(a, a + 0.0001, margin=0.002)
    assert e.equivalent and e.p_value < 0.05 and e.level == pytest.approx(0.9)
    assert -0.002 < e.ci[0] < e.diff < e.ci[1] < 0.002
    assert e.ci[0] == pytest.approx(ss.ttest_ind(a + 0.0001, a, equal_var=False).confidence_interval(0.9).low)
    far = S.equivalence(a, a + 0.005, margin=0.002)
    assert not far.equivalent and far.p_value > 0.5
    with pytest.raises(ValueError):
        S.equivalence(a, a, margin=0)


def test_bootstrap_ci_brackets_the_mean():
    lo, hi = S.bootstrap_ci(np.arange(20.0), n_resamples=999)
    assert lo < 9.5 < hi and (lo, hi) == S.bootstrap_ci(np.arange(20.0), n_resamples=999)  # seeded
    lo90, hi90 = S.bootstrap_ci(np.arange(20.0), level=0.9, n_resamples=999)
    assert lo < lo90 < hi90 < hi


def test_stats_does_not_import_torch():
    code = "import sys, bnlab.stats; assert 'torch' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_welch_with_one_constant_side_is_hand_computable_and_silent():
    """All of one side equal (e.g. every seed reaches 97% at the same epoch): Welch reduces to a one-sample
    t-test of the other side against that constant, t = (5625 − mean_a)/(s_a/√n_a), df = n_a − 1."""
    a, b = [3750.0, 5625.0, 3750.0, 7500.0, 5625.0], [5625.0] * 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = S.compare(a, b)
    t = (5625 - np.mean(a)) / (np.std(a, ddof=1) / math.sqrt(5))
    assert c.p_value == pytest.approx(2 * ss.t.sf(abs(t), 4), rel=1e-9)


def test_nan_stat_and_nan_mean_are_nan_without_a_warning_when_nothing_is_left():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(S.nan_stat([])) and np.isnan(S.nan_stat([np.nan, np.nan], np.median))
        assert S.nan_stat([np.nan, 2.0, np.inf]) == np.inf and S.nan_stat([1, 2, 7], np.median) == 2
        assert np.isnan(S.nan_mean([])) and S.nan_mean([np.nan, 1.0, 3.0]) == 2.0
        np.testing.assert_array_equal(S.nan_mean([[np.nan, 1.0], [np.nan, 3.0]], 0), [np.nan, 2.0])
