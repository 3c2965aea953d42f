"""Statistics against hand-worked numbers and scipy directly."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as ss

from bnlab import stats as S


def test_summarize_t_interval():
    s = S.summarize([1, 2, 3, 4, 5])
    half = ss.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)
    assert (s.n, s.mean, s.sd) == (5, 3.0, pytest.approx(math.sqrt(2.5)))
    assert (s.ci_low, s.ci_high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert S.summarize([1.0, float("nan"), 3.0]).n == 2
    one = S.summarize([0.97])
    assert one.n == 1 and math.isnan(one.sd) and math.isnan(one.ci_low)


def test_compare_welch_matches_scipy_and_hedges_g():
    a = [0.9770, 0.9781, 0.9765, 0.9779, 0.9772]
    b = [0.9790, 0.9801, 0.9785, 0.9795, 0.9788]
    c = S.compare(a, b, label_a="none", label_b="batch")
    ref = ss.ttest_ind(b, a, equal_var=False)
    assert c.p_value == pytest.approx(ref.pvalue) and c.diff == pytest.approx(np.mean(b) - np.mean(a))
    assert c.diff_ci[0] == pytest.approx(ref.confidence_interval().low)
    sp = math.sqrt((np.var(a, ddof=1) * 4 + np.var(b, ddof=1) * 4) / 8)
    assert c.hedges_g == pytest.approx((1 - 3 / 31) * (np.mean(b) - np.mean(a)) / sp)
    assert c.prob_improvement == 1.0 and c.perm_p < 0.05 and c.hedges_g_ci[0] > 0


def test_paired_beats_unpaired_when_pairs_share_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 8)
    a, b = base, base + 0.2 + rng.normal(0, 0.01, 8)
    assert S.compare(a, b, paired=True).p_value < 1e-6 < S.compare(a, b).p_value


def test_holm_hand_worked():
    assert np.allclose(S.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_steps_to_threshold():
    steps = [100, 200, 300]
    vals = [[0.9, 0.97, 0.99], [0.96, 0.965, 0.969], [0.98, 0.99, 0.99]]
    got = S.steps_to_threshold(steps, vals, 0.97)
    assert got[0] == 200 and math.isnan(got[1]) and got[2] == 100
    assert S.steps_to_threshold(steps, [0.5, 0.98, 0.99], 0.97).tolist() == [200]


def test_verdicts():
    assert S.verdict(0.01, (0.1, 0.3), expected_sign=1) == "supported"
    assert S.verdict(0.01, (-0.3, -0.1), expected_sign=1) == "contradicted"
    assert S.verdict(0.01, (-0.3, -0.1), expected_sign=-1) == "supported"
    assert S.verdict(0.20, (-0.1, 0.3), expected_sign=1) == "inconclusive"
    assert S.verdict(float("nan"), (float("nan"),) * 2, expected_sign=1) == "inconclusive"


def test_degenerate_inputs_do_not_raise():
    c = S.compare([0.9], [0.95])
    assert math.isnan(c.p_value) and c.diff == pytest.approx(0.05)
    c = S.compare([1, 1, 1], [1, 1, 1])
    assert math.isnan(c.p_value) and S.verdict(c.p_value, c.diff_ci, expected_sign=1) == "inconclusive"
    assert math.isnan(S.trend([1, 1, 1], [1, 2, 3]).slope)
    assert math.isnan(S.group_test({"a": [1, 1], "b": [1, 1]}).anova_p)


def test_trend_group_equivalence():
    t = S.trend([4, 5, 6, 7] * 3, [0.979, 0.978, 0.977, 0.976] * 3)
    assert t.slope == pytest.approx(-0.001) and t.slope_ci[1] < 0
    g = S.group_test({"16": [1, 1.1, 0.9], "128": [2, 2.1, 1.9]})
    assert g.anova_p < 0.001 and g.kruskal_p < 0.1
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.001, 20)
    assert S.equivalence(a, a + 0.0001, margin=0.002).equivalent
    assert not S.equivalence(a, a + 0.005, margin=0.002).equivalent


def test_bootstrap_ci_brackets_the_mean():
    lo, hi = S.bootstrap_ci(np.arange(20.0))
    assert lo < 9.5 < hi


def test_stats_does_not_import_torch():
    code = "import sys, bnlab.stats; assert 'torch' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
