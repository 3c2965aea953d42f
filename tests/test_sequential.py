"""Group-sequential tests (bnlab.stats.sequential): boundaries against published values and the joint normal,
and simulated sequential studies: false positives with 10 looks, early stopping against the fixed design of
equal power, equivalence only when the true effect lies inside the margin."""

import math

import numpy as np
import pytest
import scipy.stats as st

from bnlab import stats
from bnlab.stats import sequential as S

ALPHA = 0.05


def mc_bound(p: float, sims: int, k: float = 3.0) -> float:
    """p plus k Monte-Carlo standard errors of a rate measured over `sims` simulations."""
    return p + k * math.sqrt(p * (1 - p) / sims)


def welch_looks(a: np.ndarray, b: np.ndarray, ns, margin: float = math.nan):
    """Welch's two-sided p, its TOST p against ±margin and b − a at each look (seed prefixes of length n), for
    every simulated study at once: a, b are (studies, N_max) per-seed values."""
    p, tost, d = [], [], []
    for n in ns:
        x, y = a[:, :n], b[:, :n]
        va, vb = x.var(1, ddof=1) / n, y.var(1, ddof=1) / n
        se, df = np.sqrt(va + vb), (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))
        diff = y.mean(1) - x.mean(1)
        p.append(2 * st.t.sf(np.abs(diff) / se, df))
        tost.append(np.maximum(st.t.sf((diff + margin) / se, df), st.t.cdf((diff - margin) / se, df)))
        d.append(diff)
    return np.array(p).T, np.array(tost).T, np.array(d).T


def run_design(p, tost, d, ns, n_max, alpha=ALPHA):
    """One claim's sequential verdict per simulated study, vectorised (what `decide` does for m = 1): at look
    k, a difference if p < the two-sided nominal level (the sign of d decides supported/contradicted), else
    equivalence if TOST p < the one-sided nominal level. Returns (verdict codes, seeds at stopping): 1
    supported, −1 contradicted, 2 equivalent, 0 undecided at n_max."""
    t = np.asarray(ns) / n_max
    nom2, nom1 = S.nominal_levels(t, alpha, sides=2), S.nominal_levels(t, alpha, sides=1)
    diff = p < nom2
    eq = ~diff & (tost < nom1)
    stop = diff | eq
    first = np.where(stop.any(1), stop.argmax(1), len(ns) - 1)
    rows = np.arange(len(p))
    code = np.where(diff[rows, first], np.sign(d[rows, first]), np.where(eq[rows, first], 2, 0))
    return code, np.asarray(ns)[first]


# --- the design's numbers -----------------------------------------------------------------------------------


def test_spending_starts_at_zero_ends_at_alpha_and_grows():
    t = np.linspace(0, 1, 11)
    a = S.obf_spending(t, ALPHA)
    assert a[0] == 0 and a[-1] == pytest.approx(ALPHA) and np.all(np.diff(a) > 0)
    assert S.obf_spending(0.5, ALPHA) == pytest.approx(
        2 - 2 * st.norm.cdf(st.norm.isf(ALPHA / 2) / math.sqrt(0.5))
    )


def test_boundaries_match_published_lan_demets_obrien_fleming_values():
    """gsDesign::gsDesign(k = 5, test.type = 1, alpha = 0.025, sfu = sfLDOF) upper bounds (also ldbounds)."""
    assert S.boundaries(np.arange(1, 6) / 5, 0.025, sides=1) == pytest.approx(
        [4.8769, 3.3570, 2.6803, 2.2898, 2.0310], abs=2e-4
    )
    # the first look has a closed form: c_1 = z_{α/2} / √t_1 two-sided
    assert S.boundaries([0.2, 1.0])[0] == pytest.approx(st.norm.isf(ALPHA / 2) / math.sqrt(0.2))
    # one look at t = 1 is the fixed design
    assert S.boundaries([1.0])[0] == pytest.approx(st.norm.isf(ALPHA / 2))


@pytest.mark.parametrize("t", [(0.3, 0.6, 1.0), (0.1, 0.15, 0.7, 1.0)])
def test_boundaries_spend_alpha_under_the_canonical_joint_normal(t):
    """P(|Z_k| < c_k at every look) = 1 − α with corr(Z_i, Z_j) = √(t_i/t_j) (scipy's multivariate normal
    CDF), and the first crossings spend α(t_k) − α(t_{k−1}) (the recursion, drift 0)."""
    t = np.array(t)
    c = S.boundaries(t, ALPHA)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    inside = st.multivariate_normal(np.zeros(len(t)), cov).cdf(
        c, lower_limit=-c, rng=np.random.default_rng(0)
    )
    assert inside == pytest.approx(1 - ALPHA, abs=2e-4)
    up, down = S.crossing_probabilities(t, c)
    assert up + down == pytest.approx(np.diff(np.concatenate([[0], S.obf_spending(t, ALPHA)])), abs=1e-7)
    assert up == pytest.approx(down, abs=1e-12)


def test_later_looks_do_not_move_earlier_boundaries():
    t = np.array([0.2, 0.45, 0.7, 1.0])
    assert S.boundaries(t[:2]) == pytest.approx(S.boundaries(t)[:2], abs=1e-9)
    with pytest.raises(ValueError, match="increase"):
        S.boundaries([0.5, 0.4])


def test_stagewise_p_is_uniform_under_the_null_and_agrees_with_the_boundaries():
    t = np.arange(1, 6) / 5
    c = S.boundaries(t)
    assert S.sequential_p(t, 2, c[2]) == pytest.approx(
        S.obf_spending(t[2]), abs=1e-7
    )  # on the boundary: α spent
    assert S.sequential_p(t, 2, 2.9) == pytest.approx(S.stagewise_p(t, c, 2, 2.9), abs=1e-12)
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((4000, 5)) * np.sqrt(0.2)).cumsum(1) / np.sqrt(t)  # canonical Brownian looks
    cross = np.abs(z) >= c
    k = np.where(cross.any(1), cross.argmax(1), 4)
    p = np.array([S.sequential_p(t, kk, zz) for kk, zz in zip(k, z[np.arange(len(k)), k])])
    for q in (0.05, 0.2, 0.5):
        assert abs(np.mean(p <= q) - q) < 4 * math.sqrt(q * (1 - q) / len(p))


def test_inflation_factor_and_expected_stopping_of_five_looks():
    t = np.arange(1, 6) / 5
    r = S.inflation_factor(t, ALPHA, 0.8)
    assert 1.02 < r < 1.06  # N_max a few percent above the fixed design
    drift = S.design_drift(t, ALPHA, 0.8)
    assert S.crossing_probabilities(t, S.boundaries(t), drift)[0].sum() == pytest.approx(0.8, abs=1e-6)
    assert S.expected_fraction(t, drift) * r < 0.85  # stops on average at < 85% of the fixed design's seeds


# --- simulated sequential studies (Welch t-tests on normal seeds, as the claims test them) ------------------


def test_type_one_error_with_ten_looks_stays_at_alpha():
    """True null, looks after 3, 6, ..., 30 seeds a side: re-testing at α after each round declares a
    difference in ~19% of studies; the sequential design stays at α within Monte-Carlo error."""
    sims, ns = 20000, np.arange(3, 31, 3)
    rng = np.random.default_rng(19)
    a, b = rng.standard_normal((sims, 30)), rng.standard_normal((sims, 30))
    p, _, d = welch_looks(a, b, ns)
    code, _ = run_design(p, np.full_like(p, np.nan), d, ns, 30)
    false = np.mean(np.isin(code, (1, -1)))
    naive = np.mean((p < ALPHA).any(1))
    print(f"type I, 10 looks, Welch: sequential {false:.4f}, naive {naive:.4f} ({sims} studies)")
    assert false <= mc_bound(ALPHA, sims)
    assert false >= ALPHA - 4 * math.sqrt(ALPHA * (1 - ALPHA) / sims)  # not needlessly conservative either
    assert naive > 0.15


def test_stops_earlier_on_average_than_the_fixed_design_of_equal_power():
    """δ = 0.8σ: the fixed design needs n = seeds_needed (80% power); the sequential design with N_max =
    inflation × n and 5 looks has the same power and stops after fewer seeds on average."""
    sims, delta = 20000, 0.8
    n_fix = stats.seeds_needed(delta, 1.0, 1.0, ALPHA, 0.8)
    n_max = math.ceil(S.inflation_factor(np.arange(1, 6) / 5, ALPHA, 0.8) * n_fix)
    ns = np.unique(np.round(np.arange(1, 6) * n_max / 5).astype(int))
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((sims, n_max)), delta + rng.standard_normal((sims, n_max))
    p, _, d = welch_looks(a, b, ns)
    code, n_stop = run_design(p, np.full_like(p, np.nan), d, ns, n_max)
    p_fix, _, d_fix = welch_looks(a, b, [n_fix])
    power_seq, power_fix = np.mean(code == 1), np.mean((p_fix[:, 0] < ALPHA) & (d_fix[:, 0] > 0))
    print(
        f"δ = 0.8σ: fixed n = {n_fix}, power {power_fix:.3f}; sequential N_max = {n_max}, looks "
        f"{ns.tolist()}, "
        f"power {power_seq:.3f}, mean seeds at stop {n_stop.mean():.1f} ({n_stop.mean() / n_fix:.2f} × fixed)"
    )
    assert power_seq >= power_fix - 0.02
    assert n_stop.mean() < 0.9 * n_fix


@pytest.mark.parametrize("delta_over_margin, rate", [(0.0, "high"), (1.0, "alpha"), (1.5, "zero")])
def test_equivalence_only_when_the_true_effect_is_inside_the_margin(delta_over_margin, rate):
    """Margin 0.5σ, 5 looks, N_max sized for 80% equivalence power at δ = 0: at δ = 0 equivalence is declared
    in most studies; at δ = margin (the edge of the null of the TOST) in at most α of them; beyond, almost
    never."""
    sims, margin = 6000, 0.5
    n_eq = stats.seeds_for_equivalence(margin, 1.0, 1.0, 0.0, ALPHA, 0.8)
    n_max = math.ceil(S.inflation_factor(np.arange(1, 6) / 5, ALPHA, 0.8, sides=1) * n_eq)
    ns = np.unique(np.round(np.arange(1, 6) * n_max / 5).astype(int))
    rng = np.random.default_rng(int(10 * delta_over_margin) + 1)
    a = rng.standard_normal((sims, n_max))
    b = delta_over_margin * margin + rng.standard_normal((sims, n_max))
    p, tost, d = welch_looks(a, b, ns, margin)
    code, n_stop = run_design(p, tost, d, ns, n_max)
    eq = np.mean(code == 2)
    print(
        f"δ = {delta_over_margin} × margin: equivalent in {eq:.4f} (N_max {n_max}, fixed TOST n {n_eq}, "
        f"mean seeds at stop {n_stop.mean():.1f})"
    )
    if rate == "high":
        assert eq >= 0.75
    elif rate == "alpha":
        assert eq <= mc_bound(ALPHA, sims)
    else:
        assert eq <= 0.005


# --- decide: several claims, Holm recycling -----------------------------------------------------------------


def _looks(p_row, d_row, tost_row=None):
    tost_row = np.full(len(p_row), np.nan) if tost_row is None else tost_row
    return [
        S.ClaimLook(float(p), (float(d),) * 2, float(q), effect=float(d))
        for p, d, q in zip(p_row, d_row, tost_row)
    ]


def test_decide_keeps_the_familywise_error_of_three_null_claims_at_alpha():
    sims, ns = 2000, np.arange(3, 31, 3)
    rng = np.random.default_rng(5)
    claims = [
        welch_looks(rng.standard_normal((sims, 30)), rng.standard_normal((sims, 30)), ns) for _ in range(3)
    ]
    any_false = 0
    for i in range(sims):
        ds = S.decide([_looks(c[0][i], c[2][i]) for c in claims], [1, 1, -1], ns / 30, alpha=ALPHA)
        any_false += any(x.verdict in ("supported", "contradicted") for x in ds)
    print(f"familywise false positives, 3 null claims, 10 looks: {any_false / sims:.4f} ({sims} studies)")
    assert any_false / sims <= mc_bound(ALPHA, sims)


def test_decide_holm_recycles_alpha_after_a_rejection_and_decides_each_claim_once():
    t = np.array([0.5, 1.0])

    def nom(a):
        return S.nominal_levels(t, a)

    p_b = (nom(ALPHA)[0] + nom(ALPHA / 2)[0]) / 2  # passes at α, not at α/2
    a = [S.ClaimLook(1e-9, (1.0, 1.0), effect=1.0), S.ClaimLook(0.5, (1.0, 1.0), effect=1.0)]
    b = [S.ClaimLook(p_b, (1.0, 1.0), effect=1.0), S.ClaimLook(0.9, (1.0, 1.0), effect=1.0)]
    da, db = S.decide([a, b], [1, 1], t)
    assert (da.verdict, da.look, da.alpha) == ("supported", 0, ALPHA / 2)
    assert (db.verdict, db.look, db.alpha) == ("supported", 0, ALPHA)  # tested again at the recycled level
    alone = S.decide([b, [S.ClaimLook(0.5, (0.0, 0.0))] * 2], [1, 1], t)[0]
    assert alone.verdict == "undecided" and alone.look == 1 and np.isfinite(alone.p_seq)


def test_decide_directions_one_sided_claims_and_equivalence():
    t = np.array([1.0])
    neg = [S.ClaimLook(1e-4, (-2.0, -1.0))]
    assert S.decide([neg], [1], t)[0].verdict == "contradicted"
    assert S.decide([neg], [-1], t)[0].verdict == "supported"
    # a one-sided p (CI with an infinite end) is tested at α/2 and cannot contradict
    assert S.decide([[S.ClaimLook(0.02, (0.1, math.inf), one_sided=True)]], [1], t)[0].verdict == "supported"
    assert S.decide([[S.ClaimLook(0.03, (0.1, math.inf), one_sided=True)]], [1], t)[0].verdict == "undecided"
    # equivalence needs a margin, a TOST p below the one-sided level, and no significant difference
    eq = S.decide([[S.ClaimLook(0.6, (-0.1, 0.1), tost_p=0.01)]], [1], t)[0]
    assert eq.verdict == "equivalent" and eq.p_seq == pytest.approx(0.01)
    assert S.decide([[S.ClaimLook(0.01, (0.1, 0.2), tost_p=0.01)]], [1], t)[0].verdict == "supported"
    assert S.decide([[S.ClaimLook(math.nan, (math.nan,) * 2)]], [1], t)[0].verdict == "undecided"


def test_decide_records_the_level_each_claim_faced_at_every_look():
    t = np.array([0.5, 1.0])
    strong = [S.ClaimLook(0.5, (0.0, 0.0)), S.ClaimLook(1e-9, (1.0, 1.0), effect=1.0)]
    weak = [S.ClaimLook(0.5, (0.0, 0.0))] * 2
    ds, dw = S.decide([strong, weak], [1, 1], t)
    assert ds.levels == (ALPHA / 2, ALPHA / 2) and dw.levels == (ALPHA / 2, ALPHA)


# --- futility (non-binding) ---------------------------------------------------------------------------------


def test_conditional_power_under_the_current_trend():
    """CP = 1 − Φ((c − z/√t)/√(1 − t)): at t = ½ and z = c/√2 the trend reaches c exactly (CP ½); the TOST's
    own conditional power counts for a claim with a margin; no CP at t = 1 or without a statistic."""
    c = st.norm.isf(0.025)
    assert stats.conditional_power(c * math.sqrt(0.5), 0.5, 0.05) == pytest.approx(0.5, abs=1e-12)
    assert stats.conditional_power(0.0, 0.5, 0.05) == pytest.approx(st.norm.sf(c / math.sqrt(0.5)))
    low = stats.conditional_power(0.0, 0.5, 0.05)
    assert stats.conditional_power(0.0, 0.5, 0.05, tost_p=0.01, alpha_eq=0.05) > 0.9 > low
    assert math.isnan(stats.conditional_power(1.0, 1.0, 0.05))
    assert math.isnan(stats.conditional_power(math.nan, 0.5, 0.05))


def test_decide_stops_a_hopeless_claim_for_futility_only_from_half_of_n_max():
    t = np.array([0.25, 0.5, 0.75, 1.0])
    flat = [S.ClaimLook(0.9, (-1.0, 1.0), effect=0.1)] * 4
    strong = [S.ClaimLook(0.2, (-0.1, 1.0), effect=0.5)] * 4
    assert S.decide([flat[:1]], [1], t[:1], final=False, futility=0.1)[0].verdict == "undecided"
    x = S.decide([flat[:2]], [1], t[:2], final=False, futility=0.1)[0]
    assert (x.verdict, x.look) == ("futile", 1) and 0 <= x.cond_power < 0.1
    assert S.decide([strong[:2]], [1], t[:2], final=False, futility=0.1)[0].verdict == "undecided"
    assert S.decide([flat], [1], t, futility=0.0)[0].verdict == "undecided"  # 0: never


def test_futility_never_adds_a_false_positive_and_costs_little_power():
    """The same simulated studies with and without futility: every study that futility lets reject also
    rejects without it (non-binding: it can only remove rejections), so the type I error stays at α; under
    the design's alternative (80% power) power stays ≥ 0.73, and under the null fewer seeds are used."""
    sims, ns, n_max = 2000, np.arange(5, 21, 5), 20
    t = ns / n_max
    rng = np.random.default_rng(11)
    delta = S.design_drift(t, ALPHA, 0.8) * math.sqrt(2 / n_max)  # the effect the design has 80% power for
    out = {}
    for name, shift in (("null", 0.0), ("alt", delta)):
        a, b = rng.standard_normal((sims, n_max)), shift + rng.standard_normal((sims, n_max))
        p, _, d = welch_looks(a, b, ns)
        rej, seeds = {}, {}
        for g in (0.0, 0.1):
            res = [S.decide([_looks(p[i], d[i])], [1], t, futility=g)[0] for i in range(sims)]
            rej[g] = np.array([x.verdict in ("supported", "contradicted") for x in res])
            seeds[g] = np.mean([ns[x.look] for x in res])
        assert not (rej[0.1] & ~rej[0.0]).any()
        out[name] = (rej[0.0].mean(), rej[0.1].mean(), seeds[0.0], seeds[0.1])
    print(f"futility 0.1 from t = 0.5, 4 looks: (rejections without, with; mean seeds without, with) {out}")
    assert out["null"][1] <= mc_bound(ALPHA, sims)
    assert out["alt"][1] >= 0.73 and out["alt"][0] - out["alt"][1] <= 0.07
    assert out["null"][3] <= 0.8 * out["null"][2]


def test_the_seed_studys_claim_d_stops_for_futility_where_batch_size_changes_nothing():
    """Claim (d) (bs 16 generalizes best) on a study where BN's accuracy is the same at every batch size: it
    is futile at the look at half of --max-seeds (10 of 20 seeds), so rounds stop training for it there, and
    its sentence says so; a plan stored without futility (before it existed) replays without it."""
    from bnlab.config import RunSpec
    from bnlab.planning.rounds import Plan, history, verdict_text
    from memory_studies import study_data

    rng = np.random.default_rng(4)
    same = rng.normal(0.978, 0.001, 20)
    cells = {}
    for bs in (16, 32, 64, 128):
        for norm in ("none", "batch"):
            acc = same if norm == "batch" else rng.normal(0.977, 0.001, 20)
            cells[RunSpec(norm=norm, batch_size=bs)] = (acc - 0.01, acc, np.full(20, 0.01))
    d = study_data("seed", cells, ["norm", "batch_size"])
    plan = Plan(tuple(range(5)), 5, 20, futility=0.1)
    h = history(d, plan)
    i = [f.key for f in h.rounds[0].findings].index("d")
    x = h.decisions[i]
    assert (x.verdict, h.rounds[x.look].n) == ("futile", 10)
    assert "d" not in h.undecided()
    assert verdict_text(h, i).startswith("undecided: futile at 10 seeds (round 2)")
    old = Plan.of({"spec": {"sequential": {"seeds": list(range(5)), "round": 5, "max_seeds": 20}}})
    assert old is not None and old.futility == 0.0
    assert history(d, old).decisions[i].verdict == "undecided"


def test_the_plans_expected_seeds_with_futility_agree_with_the_exact_design_and_with_decide():
    """Without futility the Monte Carlo expectation matches the exact one (numerical integration) within its
    error; with it, a true effect of 0 stops far earlier, as the simulated `decide` runs above show."""
    from bnlab.stats.futility import expected_fraction as with_futility

    t = np.array([0.25, 0.5, 0.75, 1.0])
    b = S.boundaries(t, ALPHA)
    drift = S.design_drift(t, ALPHA, 0.8)
    for th in (0.0, drift):
        assert with_futility(t, b, th, ALPHA, 0.0) == pytest.approx(
            S.expected_fraction(t, th, ALPHA), abs=0.01
        )
    assert with_futility(t, b, 0.0, ALPHA, 0.1) < 0.75 * S.expected_fraction(t, 0.0, ALPHA)
    assert with_futility(t, b, drift, ALPHA, 0.1) < S.expected_fraction(t, drift, ALPHA)
