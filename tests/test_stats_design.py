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


# ------------------------------------------------------ 1. four verdicts


def test_verdict_names_old_and_new():
    assert S.VERDICTS == ("supported", "contradicted", "inconclusive")  # `verdict` is unchanged
    assert S.CLAIM_VERDICTS == ("supported", "contradicted", "equivalent", "inconclusive")


@pytest.mark.parametrize(
    "p, ci, tost_p, sign, want",
    [
        (0.01, (0.1, 0.3), 0.01, 1, "supported"),  # significant wins over equivalence
        (0.01, (0.1, 0.3), 0.01, -1, "contradicted"),
        (0.30, (-0.1, 0.2), 0.01, 1, "equivalent"),
        (0.30, (-0.1, 0.2), 0.20, 1, "inconclusive"),
        (0.30, (-0.1, 0.2), NAN, 1, "inconclusive"),
        (NAN, (NAN, NAN), 0.01, 1, "inconclusive"),  # no test of the difference: no 'equivalent' either
        (0.01, (-0.1, 0.2), 0.01, 1, "inconclusive"),  # p and CI disagree: never 'equivalent'
        (0.05, (-0.1, 0.2), 0.049, 1, "equivalent"),  # p = α is not significant; tost_p < α is
    ],
)
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
        np.mean(z + 3) - np.mean(a)
    )
    assert S.claim_verdict(a, z + 3, expected_sign=-1, margin=0.5).verdict == "contradicted"
    # b = a shifted by a tenth of the margin, tiny noise: not different, provably within the margin
    tight = rng.normal(0, 0.01, 20)
    eq = S.claim_verdict(tight, tight[::-1] + 0.0001, expected_sign=1, margin=0.01)
    assert eq.verdict == "equivalent" and eq.p_value > 0.05 and eq.tost_p < 0.05
    assert -0.01 < eq.tost_ci[0] < eq.tost_ci[1] < 0.01
    assert eq.tost_p == pytest.approx(S.equivalence(tight, tight[::-1] + 0.0001, 0.01).p_value)
    wide = S.claim_verdict(a[:4], z[:4], expected_sign=1, margin=0.1)  # 4 noisy seeds: cannot tell
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


# ------------------------------------------------------ 2. power and seeds


def _welch_reject(a, b, alpha=0.05):
    """Two-sided Welch test on each row of [R, n] arrays (scipy, vectorised)."""
    return ss.ttest_ind(b, a, axis=1, equal_var=False).pvalue < alpha


def _tost_reject(a, b, margin, alpha=0.05):
    """Welch TOST on each row: the (1 − 2α) Welch interval inside (−margin, margin)."""
    n_a, n_b = a.shape[1], b.shape[1]
    va, vb = a.var(1, ddof=1) / n_a, b.var(1, ddof=1) / n_b
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    d, h = b.mean(1) - a.mean(1), ss.t.ppf(1 - alpha, df) * np.sqrt(va + vb)
    return (d - h > -margin) & (d + h < margin)


def _nct_power(effect, sd, n, alpha=0.05):
    """Textbook power of the pooled two-sample t test (noncentral t, df = 2n − 2)."""
    df, nc = 2 * n - 2, effect / (sd * math.sqrt(2 / n))
    tc = ss.t.ppf(1 - alpha / 2, df)
    return ss.nct.sf(tc, df, nc) + ss.nct.cdf(-tc, df, nc)


def test_seeds_needed_textbook_values():
    # Cohen (1988), two-sided α = .05, power .8: d = 1 -> 17, 0.8 -> 26, 0.5 -> 64, 0.2 -> 393/394 per group
    assert [S.seeds_needed(d, 1, 1) for d in (1.0, 0.8, 0.5)] == [17, 26, 64]
    assert S.seeds_needed(0.2, 1, 1) in (393, 394)
    assert S.seeds_needed(-0.5, 1, 1) == 64 and S.seeds_needed(0.05, 0.1, 0.1) == 64  # sign, scale
    assert S.seeds_needed(0.01, 1, 1) is None  # > 10000
    assert S.seeds_needed(0.5, 1, 1, max_n=50) is None and S.seeds_needed(0.5, 1, 1, max_n=64) == 64
    assert all(
        S.seeds_needed(*bad) is None for bad in [(0, 1, 1), (NAN, 1, 1), (1, 0, 0), (1, NAN, 1), (1, -1, 1)]
    )
    assert S.seeds_needed(1, 0, 1) == S.seeds_needed(1, 1, 0) > 2  # one side without noise still needs seeds
    assert S.seeds_needed(1, 0.5, 1.5) > S.seeds_needed(
        1, 1, 1
    )  # same total variance, Welch pays for inequality
    with pytest.raises(ValueError):
        S.seeds_needed(1, 1, 1, power=0.01)
    with pytest.raises(ValueError):
        S.min_detectable_effect(1, 1, 5, 5, alpha=1.5)


def test_welch_power_against_noncentral_t_and_simulation():
    # equal SDs, 17 per group: Welch is the pooled t test (textbook 0.807) less 0.001 for estimating its df
    assert 0 < _nct_power(1, 1, 17) - S.welch_power(1, 1, 1, 17, 17) < 2e-3
    assert S.welch_power(1, 1, 1, 17, 17) == pytest.approx(0.807, abs=2e-3)
    assert S.welch_power(0, 1, 1, 200, 200) == pytest.approx(0.05, abs=1e-3)
    assert math.isnan(S.welch_power(1, 1, 1, 1, 5)) and math.isnan(S.welch_power(1, 0, 0, 5, 5))
    # 3 vs 3 seeds: the noncentral-t value (df 4) overstates Welch's power; the exact value matches simulation
    rng = np.random.default_rng(20)
    R, delta = 20000, 3.0709  # the pooled-t MDE at 3 vs 3
    emp = _welch_reject(rng.normal(0, 1, (R, 3)), rng.normal(delta, 1, (R, 3))).mean()
    assert _nct_power(delta, 1, 3) == pytest.approx(0.80, abs=2e-3)
    assert abs(emp - S.welch_power(delta, 1, 1, 3, 3)) < 3 * mc_se(0.7, R)
    assert emp < 0.80 - 3 * mc_se(0.8, R)  # the textbook value is wrong for Welch here
    emp = _welch_reject(rng.normal(0, 1, (R, 5)), rng.normal(2, 3, (R, 8))).mean()
    assert abs(emp - S.welch_power(2, 1, 3, 5, 8)) < 3 * mc_se(0.5, R)


def test_min_detectable_effect_inverts_power_and_simulates():
    mde17, mde16 = S.min_detectable_effect(1, 1, 17, 17), S.min_detectable_effect(1, 1, 16, 16)
    assert mde17 <= 1 < mde16  # consistent with 17 seeds for effect 1
    assert S.welch_power(mde17, 1, 1, 17, 17) == pytest.approx(0.8, abs=1e-6)
    z = ss.norm.ppf(0.975) + ss.norm.ppf(0.8)  # large n: the normal-theory value
    assert S.min_detectable_effect(1, 1, 5000, 5000) == pytest.approx(z * math.sqrt(2 / 5000), rel=1e-3)
    assert S.min_detectable_effect(2, 2, 10, 10) == pytest.approx(2 * S.min_detectable_effect(1, 1, 10, 10))
    assert math.isnan(S.min_detectable_effect(1, 1, 1, 10)) and math.isnan(
        S.min_detectable_effect(0, 0, 5, 5)
    )
    rng = np.random.default_rng(21)
    R = 8000
    for sd_a, sd_b, n_a, n_b in [(1, 1, 3, 3), (1, 2, 5, 8), (0.5, 1.5, 4, 4)]:
        e = S.min_detectable_effect(sd_a, sd_b, n_a, n_b)
        emp = _welch_reject(rng.normal(0, sd_a, (R, n_a)), rng.normal(e, sd_b, (R, n_b))).mean()
        assert abs(emp - 0.8) < 3 * mc_se(0.8, R), (sd_a, sd_b, n_a, n_b, emp)


@pytest.mark.parametrize("effect, sd_a, sd_b", [(1, 1, 1), (1, 0.5, 1.5), (2, 1, 3), (0.5, 1, 1)])
def test_seeds_needed_reach_the_power_by_simulation(effect, sd_a, sd_b):
    rng = np.random.default_rng(22)
    R, n = 6000, S.seeds_needed(effect, sd_a, sd_b)
    at_n = _welch_reject(rng.normal(0, sd_a, (R, n)), rng.normal(effect, sd_b, (R, n))).mean()
    below = _welch_reject(rng.normal(0, sd_a, (R, n - 1)), rng.normal(effect, sd_b, (R, n - 1))).mean()
    assert at_n >= 0.8 - 3 * mc_se(0.8, R) and below < 0.8 + 3 * mc_se(0.8, R), (n, at_n, below)


def _normal_tost_n(m):
    """The normal approximation 2(z(.95) + z(.9))²σ²/m² per group: a lower bound at true_diff = 0."""
    return 2 * (ss.norm.ppf(0.95) + ss.norm.ppf(0.9)) ** 2 / m**2


def test_seeds_for_equivalence_values_and_simulation():
    z = _normal_tost_n
    assert S.seeds_for_equivalence(0.5, 1, 1) == 70 and math.ceil(z(0.5)) == 69
    assert S.seeds_for_equivalence(1, 1, 1) == 18 >= math.ceil(z(1))
    assert S.seeds_for_equivalence(1, 1, 1, true_diff=0.3) > 18
    assert S.seeds_for_equivalence(1, 1, 1, true_diff=-0.3) == S.seeds_for_equivalence(1, 1, 1, true_diff=0.3)
    assert (
        S.seeds_for_equivalence(1, 1, 1, true_diff=1.0) is None and S.seeds_for_equivalence(0, 1, 1) is None
    )
    assert S.seeds_for_equivalence(0.001, 1, 1) is None  # > 10000
    # the vectorised TOST used below is `equivalence`'s decision
    rng = np.random.default_rng(23)
    a, b = rng.normal(0, 1, (20, 18)), rng.normal(0, 1, (20, 18))
    assert _tost_reject(a, b, 0.8).tolist() == [S.equivalence(x, y, 0.8).equivalent for x, y in zip(a, b)]
    R = 6000
    for margin, sd_a, sd_b, td in [(1, 1, 1, 0.0), (1, 1, 1, 0.3), (2, 1, 3, 0.5), (0.5, 0.2, 0.6, 0.0)]:
        n = S.seeds_for_equivalence(margin, sd_a, sd_b, true_diff=td)
        at_n = _tost_reject(rng.normal(0, sd_a, (R, n)), rng.normal(td, sd_b, (R, n)), margin).mean()
        below = _tost_reject(rng.normal(0, sd_a, (R, n - 1)), rng.normal(td, sd_b, (R, n - 1)), margin).mean()
        assert at_n >= 0.8 - 3 * mc_se(0.8, R) and below < 0.8 + 3 * mc_se(0.8, R), (margin, n, at_n, below)


# ------------------------------------------------------ 3. norm × batch-size interaction


def test_interaction_balanced_matches_textbook_sums_of_squares():
    rng = np.random.default_rng(30)
    y = rng.normal(0, 1, (2, 4, 5)) + np.array([[0, 1, 2, 3], [0, 0.5, 0, 0.5]])[..., None]
    cells = {
        (a, b): y[i, j] for i, a in enumerate(("none", "batch")) for j, b in enumerate((16, 32, 64, 128))
    }
    r = S.interaction_test(cells)
    m = y.mean(-1)
    ss_ab = 5 * ((m - m.mean(1, keepdims=True) - m.mean(0, keepdims=True) + m.mean()) ** 2).sum()
    mse = ((y - m[..., None]) ** 2).sum() / (8 * 4)
    assert (r.df1, r.df2) == (3, 32) and r.f == pytest.approx(ss_ab / 3 / mse)
    assert r.p == pytest.approx(ss.f.sf(ss_ab / 3 / mse, 3, 32)) and r.p < 0.05
    assert r.n == {k: 5 for k in cells} and 0 < r.welch_p < 0.05


def test_interaction_2x2_unbalanced_is_the_t_test_of_the_interaction_contrast():
    rng = np.random.default_rng(31)
    c = {
        (0, 0): rng.normal(0, 1, 4),
        (0, 1): rng.normal(0, 1, 6),
        (1, 0): rng.normal(1, 2, 5),
        (1, 1): rng.normal(0, 1, 3),
    }
    r = S.interaction_test(c)
    mean = {k: v.mean() for k, v in c.items()}
    con = mean[0, 0] - mean[0, 1] - mean[1, 0] + mean[1, 1]
    mse = sum(((v - v.mean()) ** 2).sum() for v in c.values()) / (18 - 4)
    t_pooled = con / math.sqrt(mse * sum(1 / len(v) for v in c.values()))
    var = [v.var(ddof=1) / len(v) for v in c.values()]
    t_welch = con / math.sqrt(sum(var))
    df_welch = sum(var) ** 2 / sum(x**2 / (len(v) - 1) for x, v in zip(var, c.values()))
    assert (r.df1, r.df2) == (1, 14) and r.f == pytest.approx(t_pooled**2)
    assert r.welch_f == pytest.approx(t_welch**2) and r.welch_df2 == pytest.approx(df_welch)
    assert r.welch_p == pytest.approx(2 * ss.t.sf(abs(t_welch), df_welch))


def test_interaction_ignores_additive_effects_and_handles_gaps():
    rng = np.random.default_rng(32)
    cells = {(a, b): rng.normal(0, 1 + a, 6) for a in range(2) for b in range(4)}
    shifted = {(a, b): v + 10 * a - 3 * b**2 for (a, b), v in cells.items()}  # row + column effects only
    r, s = S.interaction_test(cells), S.interaction_test(shifted)
    assert (
        s.f == pytest.approx(r.f)
        and s.welch_f == pytest.approx(r.welch_f)
        and s.welch_p == pytest.approx(r.welch_p)
    )
    gappy = dict(cells)
    gappy[(1, 3)] = [NAN, math.inf]  # an empty cell: (2−1)(4−1) − 1 = 2 interaction df
    gappy[(0, 0)] = np.append(cells[(0, 0)], NAN)
    g = S.interaction_test(gappy)
    assert (
        (g.df1, g.df2) == (2, 7 * 6 - 7) and g.n[(1, 3)] == 0 and g.n[(0, 0)] == 6 and np.isfinite(g.welch_p)
    )
    one = dict(cells)
    one[(0, 1)] = [0.3]  # one seed: classic F still defined, Welch–James is not
    o = S.interaction_test(one)
    assert np.isfinite(o.p) and math.isnan(o.welch_p)
    assert math.isnan(S.interaction_test({(0, b): [1.0, 2.0] for b in range(3)}).p)  # one row: no interaction
    assert math.isnan(S.interaction_test({}).p)
    flat = S.interaction_test({(a, b): [1.0, 1.0] for a in range(2) for b in range(2)})
    assert math.isnan(flat.f) and math.isnan(flat.welch_p)


def test_spread_difference_hand_computed():
    cells = {
        ("none", 16): [1.0, 3.0],
        ("none", 64): [5.0, 7.0],
        ("none", 256): [9.0, 11.0],
        ("batch", 16): [2.0, 2.0],
        ("batch", 64): [2.0, 4.0],
        ("batch", 256): [3.0, 3.0],
        ("batch", 512): [1.0, 2.0],
        ("none", 512): [4.0],
    }  # 512: one seed for none -> left out
    d = S.spread_difference(cells, "none", "batch", n_resamples=2000, seed=1)
    assert d.b_levels == (16, 64, 256)
    # none: means 2, 6, 10 -> var 16, each mean's variance 2/2 = 1 -> spread √15;
    # batch: means 2, 3, 3 -> var 1/3, mean variances 0, 1, 0 -> 1/3 - 1/3 = 0
    assert d.sd_means_a0 == pytest.approx(4.0) and d.spread_a0 == pytest.approx(math.sqrt(15))
    assert d.sd_means_a1 == pytest.approx(math.sqrt(1 / 3)) and d.spread_a1 == pytest.approx(0.0, abs=1e-7)
    assert d.diff == pytest.approx(-math.sqrt(15)) and d.ci[0] <= d.diff <= d.ci[1] < 0
    assert d == S.spread_difference(cells, "none", "batch", n_resamples=2000, seed=1)  # seeded
    assert np.isnan(S.spread_difference(cells, "none", "batch", n_resamples=0).ci).all()
    assert math.isnan(
        S.spread_difference({("none", 16): [1, 2], ("batch", 16): [1, 2]}, "none", "batch").diff
    )


def _study(rng, n_studies, n, mu_none, sd_none=0.002, sd_bn=0.001, base=0.98):
    """[S, 2, 4, n] simulated final accuracies: no-BN (row 0) with cell means base + mu_none,
    BN (row 1) flat."""
    mu = base + np.array([mu_none, [0.0] * 4])[None, :, :, None]
    return mu + rng.standard_normal((n_studies, 2, 4, n)) * np.array([sd_none, sd_bn])[None, :, None, None]


def _supported_rate(y):
    bs = (16, 32, 64, 128)
    out = []
    for st in y:
        cells = {(a, b): st[i, j] for i, a in enumerate(("none", "batch")) for j, b in enumerate(bs)}
        out.append(S.stabilization(cells, "none", "batch", n_resamples=0).verdict == "supported")
    return float(np.mean(out))


def _old_per_seed_range_rate(y):
    """The old analysis: per seed, the range of its values over batch sizes; BN 'stabilizes' if its ranges are
    significantly smaller (one-sided Welch)."""
    r = np.ptp(y, axis=2)  # [S, 2, n]
    return float(
        (ss.ttest_ind(r[:, 1], r[:, 0], axis=-1, equal_var=False, alternative="less").pvalue < 0.05).mean()
    )


@pytest.mark.parametrize("n", [5, 10])
def test_stabilization_type_one_error_under_no_batch_size_effect(n):
    """No batch-size effect at all, BN has half the seed SD: 'supported' at most 5% (+3 MC SE); the old
    per-seed range comparison calls BN stabilizing most of the time."""
    rng = np.random.default_rng(33 + n)
    R = 2000
    y = _study(rng, R, n, [0.0] * 4)
    rate = _supported_rate(y)
    assert rate <= 0.05 + 3 * mc_se(0.05, R), rate
    assert _old_per_seed_range_rate(y) > 0.5  # the reference fails: 0.67 (5) / 0.96 (10)


def test_stabilization_power_under_a_real_interaction():
    """No-BN's mean alternates ±0.5 of its seed SD over the batch sizes, BN flat: 10 seeds find it ~60% of
    the time."""
    rng = np.random.default_rng(34)
    y = _study(rng, 1000, 10, [0.001, -0.001, 0.001, -0.001])
    assert _supported_rate(y) >= 0.5


def test_stabilization_verdicts_on_clear_cases():
    rng = np.random.default_rng(35)
    bs = (16, 32, 64, 128)
    moving, flat = [0.0, 0.01, 0.02, 0.03], [0.0] * 4
    cells = {("none", b): 0.97 + m + rng.normal(0, 0.002, 6) for b, m in zip(bs, moving)}
    cells.update({("batch", b): 0.98 + m + rng.normal(0, 0.001, 6) for b, m in zip(bs, flat)})
    s = S.stabilization(cells, "none", "batch", n_resamples=999)
    assert s.verdict == "supported" and s.interaction.welch_p < 1e-6 and s.spread.ci[1] < 0
    assert S.stabilization(cells, "batch", "none", n_resamples=0).verdict == "contradicted"
    cells[("layer", 16)] = [0.5, 0.6]  # other norms do not enter
    assert S.stabilization(cells, "none", "batch", n_resamples=999) == s
    same = {(a, b): 0.97 + m + rng.normal(0, 0.002, 6) for a in ("none", "batch") for b, m in zip(bs, moving)}
    assert S.stabilization(same, "none", "batch", n_resamples=0).verdict == "inconclusive"


# ------------------------------------------------------ 4. "bs 16 generalizes best": intersection–union


def test_best_of_hand_values_match_scipy():
    best, o = (
        [0.990, 0.991, 0.989, 0.992],
        {32: [0.985, 0.986, 0.984, 0.987, NAN], 64: [0.980, 0.982, 0.981, 0.979]},
    )
    r = S.best_of(best, o, n_resamples=999)
    p32 = ss.ttest_ind(best, o[32][:4], equal_var=False, alternative="greater")
    assert r.p_values[32] == pytest.approx(p32.pvalue) and r.cis[32][1] == math.inf
    assert r.cis[32][0] == pytest.approx(p32.confidence_interval(0.95).low)
    assert r.p_value == pytest.approx(max(r.p_values.values())) and r.weakest == 32
    assert r.diffs[64] == pytest.approx(np.mean(best) - np.mean(o[64])) and (r.n_best, r.n) == (
        4,
        {32: 4, 64: 4},
    )
    assert r.prob_best == 1.0 and r.alternative == "greater"
    err = S.best_of([1 - v for v in best], {k: [1 - v for v in x] for k, x in o.items()}, alternative="less")
    assert err.p_value == pytest.approx(r.p_value) and err.prob_best == 1.0  # error rates: lower is better
    worse = S.best_of(o[64], {16: best, 32: o[32]}, n_resamples=999)
    assert worse.p_value > 0.99 and worse.prob_best == 0.0
    assert math.isnan(S.best_of(best, {32: [0.9]}).p_value) and math.isnan(S.best_of(best, {}).p_value)
    assert math.isnan(S.best_of(best, o, n_resamples=0).prob_best)
    with pytest.raises(ValueError):
        S.best_of(best, o, alternative="two-sided")


def test_best_of_size_when_best_ties_one_competitor():
    """Best ties bs 32 and beats 64 and 128 by 3 SD: the IUT rejects ≤ 5% (+3 MC SE). The old reading, 'best
    has the highest mean and the groups differ (ANOVA p < .05)', says 'best' about half the time."""
    rng = np.random.default_rng(40)
    R, n = 2000, 5
    mu = np.array([0.0, 0.0, -3.0, -3.0])  # best, 32 (tied), 64, 128
    y = mu[None, :, None] + rng.standard_normal((R, 4, n))
    p = np.array([S.best_of(s[0], {32: s[1], 64: s[2], 128: s[3]}, n_resamples=0).p_value for s in y])
    rate = (p < 0.05).mean()
    assert rate <= 0.05 + 3 * mc_se(0.05, R), rate
    old = (y.mean(2).argmax(1) == 0) & (ss.f_oneway(*y.transpose(1, 0, 2), axis=1).pvalue < 0.05)
    assert old.mean() > 0.3
    ties = rng.standard_normal((500, 4, n))  # all four equal: the IUT is far below α
    assert (
        np.mean([S.best_of(s[0], {1: s[1], 2: s[2], 3: s[3]}, n_resamples=0).p_value < 0.05 for s in ties])
        < 0.02
    )


def test_best_of_power_when_best_is_clearly_ahead():
    rng = np.random.default_rng(41)
    y = np.array([2.5, 0.0, 0.0, -1.0])[None, :, None] + rng.standard_normal((300, 4, 5))
    p = np.array([S.best_of(s[0], {32: s[1], 64: s[2], 128: s[3]}, n_resamples=0).p_value for s in y])
    assert (p < 0.05).mean() > 0.8 and np.median(p) < 0.01


# ------------------------------------------------------ 5. censored time to threshold


def test_censored_compare_hand_values():
    c = S.censored_compare([1, 2], None, [3, NAN], None)
    assert (c.n_a, c.n_b, c.reached_a, c.reached_b) == (2, 2, 2, 1) and c.prob_b_slower == 1.0
    assert (c.median_a, c.median_b) == (1.5, math.inf) and c.shift == pytest.approx(1.5)  # median of 3−1, 3−2
    # both censored once: pairs (2,1) b slower, (2,inf) faster, (inf,1) slower, (inf,inf) tie -> 2.5/4
    c = S.censored_compare([1, 5000], [True, False], [2, 5000], [True, False])
    assert c.prob_b_slower == pytest.approx(0.625) and c.shift == 1.0
    # no censoring, no ties: the plain exact Mann–Whitney test
    a, b = [110, 130, 90, 100, 120], [140, 150, 125, 160, 135, 145]
    c = S.censored_compare(a, None, b, None)
    assert c.p_value == pytest.approx(ss.mannwhitneyu(b, a, method="exact").pvalue)
    assert c.shift == pytest.approx(np.median(np.subtract.outer(b, a))) and c.reach_p == 1.0
    # Fisher: 10/10 against 5/10 reached; all 5 misses in b has probability C(10,5)/C(20,5), doubled
    c = S.censored_compare(np.arange(10.0), None, np.r_[np.arange(5.0), [NAN] * 5], None)
    assert c.reach_p == pytest.approx(2 * math.comb(10, 5) / math.comb(20, 5))
    assert c.reach_p == pytest.approx(ss.fisher_exact([[10, 0], [5, 5]]).pvalue)


def test_hodges_lehmann_ci_by_hand_exact_null_and_coverage():
    """5 vs 5: P(U ≤ 2) = 4/252 ≤ 0.025 < P(U ≤ 3) = 7/252, so k = 3 and the CI is [D_(3), D_(23)] of the 25
    sorted differences; the null matches scipy's exact Mann–Whitney; simulated coverage equals the exact
    1 − 2·P(U ≤ k − 1) for a continuous shift (6 vs 6: k − 1 = 5)."""
    from bnlab.stats.ranks import _mann_whitney_null, hodges_lehmann

    a, b = np.array([1.0, 2, 3, 4, 5]), np.array([3.5, 6, 7, 8, 9])
    d = np.sort(np.subtract.outer(b, a).ravel())
    assert hodges_lehmann(a, b) == (np.median(d), (d[2], d[22])) == (4.0, (0.5, 7.0))
    assert np.cumsum(_mann_whitney_null(5, 5))[:4] * 252 == pytest.approx([1, 2, 4, 7])
    rng = np.random.default_rng(3)
    for m, n in ((3, 4), (6, 6), (7, 3)):
        null = _mann_whitney_null(m, n)
        for _ in range(10):
            z = rng.permutation(m + n).astype(float)
            u = int((z[m:, None] > z[None, :m]).sum())
            assert null[: u + 1].sum() == pytest.approx(
                ss.mannwhitneyu(z[m:], z[:m], alternative="less", method="exact").pvalue
            )
    exact = 1 - 2 * np.cumsum(_mann_whitney_null(6, 6))[5]
    sims = 4000
    x = rng.standard_normal((sims, 6)), rng.standard_normal((sims, 6)) + 1.0
    covered = np.mean([lo <= 1.0 <= hi for lo, hi in (hodges_lehmann(p, q)[1] for p, q in zip(*x))])
    assert exact == pytest.approx(0.959, abs=1e-3) and abs(covered - exact) < 4 * math.sqrt(
        exact * (1 - exact) / sims
    )
    assert math.isnan(hodges_lehmann([1.0, 2.0], [3.0, 4.0])[1][0])  # 2 vs 2: no 95% interval exists
    c = S.censored_compare([1.0, 2, 3, 4, 5, NAN], None, [3.5, 6, 7, 8, 9, NAN], None)
    assert (c.shift, c.shift_ci) == (4.0, (0.5, 7.0))  # over the runs that reached it


def test_censored_compare_counts_never_reached_as_slower():
    """Half of b's seeds never reach the threshold; the ones that do are 5 steps faster than a's matching
    seeds. Dropping the censored runs (the old analysis) calls b faster; ranking them last calls b slower."""
    a = 900 + 10 * np.arange(20.0)  # 900 ... 1090
    b = np.r_[a[::2] - 5, [NAN] * 10]
    old = S.compare(a, b[np.isfinite(b)])
    assert old.diff == pytest.approx(985 - 995)  # "faster"
    c = S.censored_compare(a, None, b, None)
    # b's reached run 2j − 5 beats 2j of a's runs: Σ 2j = 90 of 200 pairs; its 10 censored runs lose all 200
    assert c.prob_b_slower == pytest.approx((90 + 200) / 400) and c.median_b == math.inf > c.median_a
    assert c.shift < 0 and c.p_value < 0.05 and c.reach_p < 0.001 and (c.reached_a, c.reached_b) == (20, 10)
    # an explicit reached mask: b's unreached runs carry the last step, which must not count as a time
    steps_b, mask = np.where(np.isfinite(b), b, 5000.0), np.isfinite(b)
    assert S.censored_compare(a, np.ones(20, bool), steps_b, mask) == c


def _u(x, y):
    """Mann–Whitney U of x over y (ties count ½)."""
    return (np.sign(x[:, None] - y[None, :]) / 2 + 0.5).sum()


def test_censored_compare_exact_p_by_enumeration_and_degenerate():
    """5 vs 5 with censored (tied, last) runs: p is the exact two-sided permutation p of U over all C(10, 5)
    splits, 2·min(P(U* ≥ U), P(U* ≤ U)), enumerated here by hand."""
    import itertools

    a, b = np.array([3.0, 5.0, 1.0, 4.0, NAN]), np.array([6.0, 2.0, NAN, NAN, 7.0])
    c = S.censored_compare(a, None, b, None)
    pooled = np.r_[np.nan_to_num(a, nan=99.0), np.nan_to_num(b, nan=99.0)]
    u_obs = _u(pooled[5:], pooled[:5])
    us = np.array(
        [
            _u(pooled[list(i)], pooled[[j for j in range(10) if j not in i]])
            for i in itertools.combinations(range(10), 5)
        ]
    )
    want = min(1.0, 2 * min((us >= u_obs - 1e-9).mean(), (us <= u_obs + 1e-9).mean()))
    assert c.p_value == pytest.approx(want) and c.prob_b_slower == pytest.approx(u_obs / 25)
    nothing = S.censored_compare([NAN] * 3, None, [NAN] * 3, None)
    assert math.isnan(nothing.p_value) and nothing.prob_b_slower == 0.5 and math.isnan(nothing.shift)
    assert math.isnan(S.censored_compare([], None, [1.0], None).p_value)
    assert math.isnan(S.censored_compare([1.0], None, [2.0, 3.0], None).p_value)
    assert (
        S.censored_compare([1.0, 2.0, NAN], [True, True, True], [3.0], None).n_a == 2
    )  # unusable run dropped
    with pytest.raises(ValueError):
        S.censored_compare([1.0, 2.0], [True], [3.0], None)


# ------------------------------------------------------ 6. ratio intervals


def test_log_ratio_ci_hand_values():
    a, b = [2.0, 4.0, 8.0], [1.0, 1.0, 2.0]
    r, (lo, hi) = S.log_ratio_ci(a, b)
    la, lb = np.log(a), np.log(b)
    ref = ss.ttest_ind(la, lb, equal_var=False).confidence_interval(0.95)
    assert r == pytest.approx(math.exp(la.mean() - lb.mean())) == pytest.approx(4 / 2 ** (1 / 3))
    assert (lo, hi) == (pytest.approx(math.exp(ref.low)), pytest.approx(math.exp(ref.high))) and lo < r < hi
    r2, (lo2, hi2) = S.log_ratio_ci(b, a)  # the reciprocal, interval flipped
    assert r2 == pytest.approx(1 / r) and (lo2, hi2) == (pytest.approx(1 / hi), pytest.approx(1 / lo))
    assert S.log_ratio_ci([1.0, 2.0, NAN], [1.0, 2.0])[0] == pytest.approx(1.0)
    assert math.isnan(S.log_ratio_ci([1.0, 0.0], [1.0, 2.0])[0]) and math.isnan(
        S.log_ratio_ci([1.0], [1.0, 2.0])[0]
    )


def test_fieller_hand_values_and_unbounded():
    a, b = np.array([10.0, 12.0, 11.0, 13.0]), np.array([5.0, 5.5, 4.5, 5.0])
    r, (lo, hi) = S.fieller_ci(a, b)
    assert r == pytest.approx(11.5 / 5.0) and lo < r < hi
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 4
    df = (va + r**2 * vb) ** 2 / (va**2 / 3 + r**4 * vb**2 / 3)
    t = ss.t.ppf(0.975, df)
    for rho in (lo, hi):  # the ends are where the Welch-type test of ā − ρb̄ = 0
        assert abs(a.mean() - rho * b.mean()) == pytest.approx(
            t * math.sqrt(va + rho**2 * vb)
        )  # is on its edge
    # b's mean not distinguishable from 0: no finite interval
    r, ci = S.fieller_ci([1.0, 2.0, 3.0], [-1.0, 0.5, 1.0])
    assert ci == (-math.inf, math.inf) and r == pytest.approx(2.0 / (0.5 / 3))
    assert (
        math.isnan(S.fieller_ci([1.0], [1.0, 2.0])[0])
        and np.isnan(S.fieller_ci([1.0, 1.0], [2.0, 2.0])[1]).all()
    )
    r, (lo, hi) = S.fieller_ci([4.0, 4.0], [1.0, 3.0])  # a exact, b's t-interval spans 0: unbounded
    blo, bhi = ss.ttest_1samp([1.0, 3.0], 0).confidence_interval(0.95)
    assert bhi > 0 > blo and (lo, hi) == (-math.inf, math.inf) and r == 2.0
    r, (lo, hi) = S.fieller_ci([4.0, 4.0], [10.0, 11.0, 12.0])  # a exact, b's t-interval (L, U) > 0:
    blo, bhi = ss.ttest_1samp([10.0, 11.0, 12.0], 0).confidence_interval(0.95)  # the ratio's is (4/U, 4/L)
    assert (lo, hi) == (pytest.approx(4 / bhi), pytest.approx(4 / blo))


def test_ratio_interval_coverage_by_simulation():
    """Lognormal data, ratio of geometric means 2 (= ratio of means at equal log-SDs): the log t-interval
    covers within 0.95 ± 3 MC SE (its Welch df makes it a little conservative at 3 vs 3 with equal SDs: ≥ 0.95
    − 3 SE and ≤ 0.975 there); Fieller on normal data likewise; the bootstrap ratio_ci undercovers."""
    rng = np.random.default_rng(60)
    R = 3000
    band = 3 * mc_se(0.95, R)
    for n, sa, sb in [(3, 0.3, 0.1), (3, 0.5, 0.2), (5, 0.3, 0.3), (3, 0.3, 0.3)]:
        a = np.exp(rng.normal(math.log(2), sa, (R, n)))
        b = np.exp(rng.normal(0, sb, (R, n)))
        cov = np.mean([lo < 2 < hi for lo, hi in (S.log_ratio_ci(x, y)[1] for x, y in zip(a, b))])
        if (n, sa, sb) == (3, 0.3, 0.3):
            assert 0.95 - band <= cov <= 0.975, cov
        else:
            assert abs(cov - 0.95) <= band, (n, sa, sb, cov)
    for n, ca, cb in [(5, 0.2, 0.2), (3, 0.5, 0.2)]:
        a, b = rng.normal(2, 2 * ca, (R, n)), rng.normal(1, cb, (R, n))
        cov = np.mean([lo < 2 < hi for lo, hi in (S.fieller_ci(x, y)[1] for x, y in zip(a, b))])
        assert abs(cov - 0.95) <= band, (n, ca, cb, cov)
    R = 300
    a, b = np.exp(rng.normal(math.log(2), 0.3, (R, 3))), np.exp(rng.normal(0, 0.3, (R, 3)))
    boot = np.mean([lo < 2 < hi for lo, hi in (S.ratio_ci(x, y, n_resamples=999)[1] for x, y in zip(a, b))])
    assert boot < 0.95 - 3 * mc_se(0.95, R)  # the reason for the two intervals above (≈ 0.78)


# ------------------------------------------------------ 7. detrended curve noise


def test_curve_noise_trends_cancel():
    t = np.arange(200.0)
    assert S.curve_noise(0.5 - 0.001 * t) < 1e-12 and S.curve_noise(3 + 2 * t) < 1e-12
    smooth = 1 - 0.1 * np.exp(-t / 3)
    assert S.curve_noise(smooth) < 0.05 * np.std(smooth)  # raw SD 0.010, detrended 0.0003
    assert S.curve_noise(2.3 * np.exp(-t / 40) + 0.1) < 1e-3 * 2.3  # a slow loss decay
    # hand: [0, 1, 4, 9] has second differences 2, 2 -> √(4/6)
    assert S.curve_noise([0.0, 1.0, 4.0, 9.0]) == pytest.approx(math.sqrt(4 / 6))


def test_curve_noise_recovers_white_noise_sd():
    rng = np.random.default_rng(70)
    t = np.arange(200.0)
    for sd in (0.01, 0.1):
        noisy = 1 - 0.1 * np.exp(-t / 3) + rng.normal(0, sd, (500, 200))
        est = S.curve_noise(noisy)  # one estimate per row
        assert (
            est.shape == (500,) and np.mean(np.abs(est / sd - 1) < 0.2) > 0.99
        )  # 200-point series within 20%
        assert abs(est.mean() / sd - 1) < 0.02
    # noise at a third of the curve's own floor (3.3e-4): biased up by √(1 + 0.33²) − 1 ≈ 5%, still within 20%
    est = S.curve_noise(1 - 0.1 * np.exp(-t / 3) + rng.normal(0, 0.001, (500, 200)))
    assert 1.02 < est.mean() / 0.001 < 1.09 and np.mean(np.abs(est / 0.001 - 1) < 0.2) > 0.95
    # the raw SD mixes in the trend: useless for "which curve is smoother" at low noise
    assert np.std(1 - 0.1 * np.exp(-t / 3) + rng.normal(0, 0.001, 200)) > 5 * 0.001
    assert S.curve_noise(noisy.T, axis=0) == pytest.approx(S.curve_noise(noisy))


def test_curve_noise_nan_and_short():
    assert math.isnan(S.curve_noise([1.0, 2.0])) and math.isnan(S.curve_noise([]))
    assert S.curve_noise([1.0, NAN, 3.0, 4.0, 5.0]) == 0.0  # only the finite triplet (3, 4, 5)
    assert S.curve_noise([0.0, 1.0, NAN, 9.0, 16.0, 25.0]) == pytest.approx(math.sqrt(4 / 6))
    assert math.isnan(S.curve_noise([1.0, NAN, 3.0, NAN]))
    got = S.curve_noise([[0.0, 1.0, 4.0], [1.0, 1.0, 1.0]])
    assert got.tolist() == [pytest.approx(math.sqrt(4 / 6)), 0.0]


# ------------------------------------------------------ 8. permutation floor


def test_permutation_floor_values():
    assert S.permutation_floor(3, 3) == pytest.approx(0.1)  # 2 / C(6, 3) = 2/20
    assert S.permutation_floor(5, 5) == pytest.approx(2 / 252)
    assert S.permutation_floor(3, 5) == pytest.approx(2 / 56) and S.permutation_floor(
        3, 5, alternative="less"
    ) == pytest.approx(1 / 56)
    assert S.permutation_floor(8, 8, paired=True) == pytest.approx(2 / 256)
    assert S.permutation_floor(1, 1) == 1.0 and S.permutation_floor(2, 2) == pytest.approx(1 / 3)
    assert (
        S.permutation_floor(3, 4) > 0.05 > S.permutation_floor(4, 4)
    )  # 2/35 vs 2/70: 3 vs 4 never reaches .05
    with pytest.raises(ValueError):
        S.permutation_floor(3, 4, paired=True)
    with pytest.raises(ValueError):
        S.permutation_floor(3, 3, alternative="both")


@pytest.mark.parametrize("n_a, n_b, paired", [(3, 3, False), (3, 5, False), (4, 4, False), (5, 5, True)])
def test_permutation_floor_is_what_compare_returns_for_the_most_extreme_split(n_a, n_b, paired):
    a, b = np.arange(n_a, dtype=float), 100 + np.arange(n_b, dtype=float)
    if paired:
        a, b = np.array([1.0, 2, 3, 4, 5]), np.array([11.0, 13, 12, 15, 14])
    assert S.compare(a, b, paired=paired).perm_p == pytest.approx(
        S.permutation_floor(n_a, n_b, paired=paired)
    )


# ------------------------------------------------------ 9. test-set SE of a paired accuracy difference


def test_mcnemar_se_hand_and_simulation():
    # p(both) .97, a only .01, b only .015, neither .005: d = .025, diff = .005
    se = S.mcnemar_se(10000, 0.98, 0.985, 0.025)
    assert se == pytest.approx(math.sqrt((0.025 - 0.005**2) / 10000))
    rng = np.random.default_rng(90)
    cells = (
        rng.multinomial(10000, [0.97, 0.01, 0.015, 0.005], size=20000) / 10000
    )  # both, a only, b only, neither
    diff = cells[:, 2] - cells[:, 1]
    assert np.std(diff) == pytest.approx(se, rel=0.03)
    # the unpaired binomial SE ignores that both models see the same examples: too wide (0.00185 vs 0.00158)
    assert math.sqrt((0.98 * 0.02 + 0.985 * 0.015) / 10000) > 1.15 * se
    assert S.mcnemar_se(10000, 0.98, 0.98, 0.0) == 0.0  # identical predictions
    assert math.isnan(S.mcnemar_se(10000, 0.98, 0.99, 0.005))  # d < |diff|: impossible
    assert math.isnan(S.mcnemar_se(10000, 0.98, 0.99, 0.05))  # d > 2 − acc_a − acc_b
    assert math.isnan(S.mcnemar_se(0, 0.98, 0.99, 0.02))


# ------------------------------------------------------ 10. Holm with NaN


def test_holm_nan_is_kept_and_not_counted():
    got = S.holm([0.01, NAN, 0.04, NAN])
    assert np.isnan(got[[1, 3]]).all() and got[0] == pytest.approx(0.02) and got[2] == pytest.approx(0.04)
    assert got[0] != pytest.approx(0.04)  # m = 2, not 4
    assert S.holm([0.01, NAN]).tolist()[0] == pytest.approx(0.01)
    assert np.isnan(S.holm([NAN, NAN])).all() and S.holm([]).shape == (0,)
    # the same family with and without the NaN entries: identical adjusted values
    p = np.array([0.003, 0.02, NAN, 0.04, 0.5])
    assert np.allclose(S.holm(p)[~np.isnan(p)], S.holm(p[~np.isnan(p)]))
