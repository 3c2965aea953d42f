"""Tests shaped to a claim: interaction (norm × batch size) and stabilization, a contrast of cell means,
best of several, censored times to a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy  # scipy.stats loads on first use (scipy's lazy submodules): importing bnlab.stats stays light

from .comparisons import tost, welch
from .ranks import hodges_lehmann
from .summaries import NAN2, finite, pair


@dataclass(frozen=True)
class Interaction:
    """A×B interaction in a two-way layout of per-seed values (does the effect of A depend on the level of
    B?). Classic least-squares F (assumes equal variances in all cells): f, df1, df2, p. Welch–James test of
    the same hypothesis with Johansen's approximate F (each cell keeps its own variance): welch_f on (df1,
    welch_df2), welch_p. n: the finite values per non-empty cell."""

    f: float
    df1: int
    df2: int
    p: float
    welch_f: float
    welch_df2: float
    welch_p: float
    n: dict


def _cell_design(keys) -> np.ndarray:
    """Additive-model design at the cells: rows (one per cell key (a, b)) = [1, one-hot a, one-hot b]."""
    a_lv, b_lv = list(dict.fromkeys(k[0] for k in keys)), list(dict.fromkeys(k[1] for k in keys))
    x = np.zeros((len(keys), 1 + len(a_lv) + len(b_lv)))
    x[:, 0] = 1
    for i, (a, b) in enumerate(keys):
        x[i, 1 + a_lv.index(a)] = x[i, 1 + len(a_lv) + b_lv.index(b)] = 1
    return x


def interaction_test(cells: dict) -> Interaction:
    """Test of "no A×B interaction" (cell means additive, μ_ab = μ + α_a + β_b) over `cells`: {(a, b):
    per-seed values}; unbalanced and incomplete layouts allowed; non-finite values dropped, empty cells
    ignored.

    Classic F: RSS_full = Σ within-cell squared deviations (df2 = N − k, k non-empty cells); RSS_add = RSS of
    the additive model fitted by least squares (weighted least squares on the cell means, weights n_ab); df1 =
    k − rank(additive design) ((a−1)(b−1) for a complete layout);
    F = ((RSS_add − RSS_full)/df1)/(RSS_full/df2).

    Welch–James (Johansen 1980; Keselman, Wilcox & Lix 2003): C = an orthonormal basis (df1 × k) of the
    cell-mean contrasts orthogonal to the additive model, V = diag(s²_ab/n_ab), T = (Cȳ)'(CVC')⁻¹(Cȳ), P =
    VC'(CVC')⁻¹C, A = Σ P_jj²/(n_j − 1), c = df1 + 2A − 6A/(df1 + 2): welch_f = T/c ~ F(df1, df1(df1 +
    2)/(3A)). For a 2 × 2 layout this is Welch's t test of the interaction contrast (welch_f = t², welch_df2 =
    Welch–Satterthwaite df). Why both: BN and no-BN differ in seed SD (about 2×). In a 2 × 4 layout with 5
    seeds per cell the classic F then rejects a true "no interaction" 5.7% of the time at α = .05 (6.5% at a
    4× SD ratio; 5.9% and 7.2% with 3 seeds; 20 000 simulated normal studies each); the Welch–James test gave
    3–5% over 3–10 seeds, SD ratios 1–4 and unbalanced cells (a parametric bootstrap of T gave the same rates
    at far more cost). Verdicts use welch_p.

    NaN: F when df1 = 0, df2 = 0 or RSS_full = 0; the Welch–James test also when a cell has < 2 values or no
    variance (its mean would count as exact)."""
    data = {k: finite(v) for k, v in cells.items()}
    n = {k: len(v) for k, v in data.items()}
    keys = [k for k, v in data.items() if len(v)]
    nan = Interaction(np.nan, 0, 0, np.nan, np.nan, np.nan, np.nan, n)
    if not keys:
        return nan
    x = _cell_design(keys)
    nj = np.array([n[k] for k in keys], float)
    m = np.array([data[k].mean() for k in keys])
    ssw = np.array([((data[k] - data[k].mean()) ** 2).sum() for k in keys])
    u, sv, _ = np.linalg.svd(x, full_matrices=True)
    r = int((sv > 1e-10 * sv[0]).sum())
    k, df2 = len(keys), int(nj.sum()) - len(keys)
    df1 = k - r
    if df1 == 0:
        return nan
    w = np.sqrt(nj)
    beta = np.linalg.lstsq(x * w[:, None], m * w, rcond=None)[0]
    ss_int = float((nj * (m - x @ beta) ** 2).sum())
    rss = float(ssw.sum())
    f = (ss_int / df1) / (rss / df2) if df2 > 0 and rss > 0 else np.nan
    p = float(scipy.stats.f.sf(f, df1, df2)) if np.isfinite(f) else np.nan
    wf = wdf2 = wp = np.nan
    if nj.min() >= 2 and ssw.min() > 0:
        c = u[:, r:].T  # df1 × k, rows orthonormal, c @ x = 0
        v = ssw / (nj - 1) / nj
        cm = c @ m
        minv = np.linalg.inv((c * v) @ c.T)
        t = float(cm @ minv @ cm)
        pjj = np.einsum("jq,qr,rj->j", v[:, None] * c.T, minv, c)
        a = float((pjj**2 / (nj - 1)).sum())
        wf, wdf2 = t / (df1 + 2 * a - 6 * a / (df1 + 2)), df1 * (df1 + 2) / (3 * a)
        wp = float(scipy.stats.f.sf(wf, df1, wdf2))
    return Interaction(float(f), df1, max(df2, 0), p, float(wf), float(wdf2), wp, n)


@dataclass(frozen=True)
class Contrast:
    """A linear contrast L = Σ w_j ȳ_j of independent cell means with Welch's t: se² = Σ w_j² s_j²/n_j,
    df (Welch–Satterthwaite) = se⁴ / Σ (w_j² s_j²/n_j)²/(n_j − 1), CI L ± t(1−α/2, df)·se, p two-sided.
    sd_a, sd_b: the two SDs of a balanced two-sample design with the same se at n seeds a side (the power
    functions' inputs): √Σ w_j²s_j² over the cells of negative and of positive weight."""

    estimate: float
    ci: tuple[float, float]
    se: float
    df: float
    p_value: float
    level: float
    n: dict
    sd_a: float = np.nan
    sd_b: float = np.nan

    def tost_p(self, margin: float) -> float:
        """Two one-sided tests that |L| < margin (`comparisons.tost`)."""
        return tost(self.estimate, self.se, self.df, margin)


def contrast(cells: dict, weights: dict, *, level: float = 0.95) -> Contrast:
    """Welch's t test of Σ w_j μ_j = 0 over `cells` {key: per-seed values} with `weights` {key: w}; for the
    2 × 2 interaction (weights ±1) it is the Welch–James test of `interaction_test` (welch_p equal). NaN
    when a weighted cell has < 2 finite values or every cell has no variance."""
    data = {k: finite(cells.get(k, ())) for k in weights}
    n = {k: len(v) for k, v in data.items()}
    est = float(sum(w * data[k].mean() for k, w in weights.items())) if min(n.values()) else np.nan
    if min(n.values()) < 2:
        return Contrast(est, NAN2, np.nan, np.nan, np.nan, level, n)
    v = {k: w**2 * np.var(data[k], ddof=1) / n[k] for k, w in weights.items()}
    se2 = sum(v.values())
    sds = [
        float(np.sqrt(sum(w**2 * np.var(data[k], ddof=1) for k, w in weights.items() if side(w))))
        for side in (lambda w: w < 0, lambda w: w > 0)
    ]
    if se2 == 0:
        return Contrast(est, (est, est), 0.0, np.nan, np.nan, level, n, *sds)
    se = float(np.sqrt(se2))
    df = float(se2**2 / sum(v[k] ** 2 / (n[k] - 1) for k in weights))
    h = float(scipy.stats.t.ppf((1 + level) / 2, df)) * se
    p = float(2 * scipy.stats.t.sf(abs(est) / se, df))
    return Contrast(est, (est - h, est + h), se, df, p, level, n, *sds)


@dataclass(frozen=True)
class SpreadDifference:
    """How much the configuration means of level a1 (e.g. BN) and a0 (no BN) move across the B levels (batch
    sizes) they share. sd_means_*: the plain SD over B of the cell means; spread_*: the same with the seed
    noise taken out, √max(0, var_B(ȳ_b) − mean_B(s_b²/n_b)), an estimate of the SD of the true means over B.
    diff = spread_a1 − spread_a0 (< 0: a1 moves less) with a percentile bootstrap CI at `level` (seeds
    resampled within each cell; NaN without resamples)."""

    b_levels: tuple
    sd_means_a0: float
    sd_means_a1: float
    spread_a0: float
    spread_a1: float
    diff: float
    ci: tuple[float, float]
    level: float


def _spreads(means, var_means):
    """Over the last axis (B levels): plain SD of the means, and
    √max(0, var(means) − mean(var of each mean))."""
    v = means.var(axis=-1, ddof=1)
    return np.sqrt(v), np.sqrt(np.maximum(0.0, v - var_means.mean(axis=-1)))


def spread_difference(
    cells: dict, a0, a1, *, level: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> SpreadDifference:
    """Spread over B of the configuration means, a1 against a0, from `cells` {(a, b): per-seed values} (finite
    values only; B levels with ≥ 2 values in both the a0 and the a1 cell). The plain SD of the means is
    inflated by seed noise, E[var_B(ȳ_b)] = var_B(μ_b) + mean_B(σ_b²/n_b), so a norm with less seed noise
    would look "more stable" with no batch-size effect at all; spread_* subtract that term. The SD (not the
    range) is used because its noise term has this closed form. Bootstrap: n_resamples resamples of the seeds
    within each cell (numpy, seeded), percentile interval of diff. NaN when fewer than 2 shared B levels."""
    data = {k: finite(v) for k, v in cells.items()}
    bs = tuple(
        b for (a, b) in data if a == a0 and len(data[(a0, b)]) >= 2 and len(data.get((a1, b), ())) >= 2
    )
    if len(bs) < 2:
        return SpreadDifference(bs, np.nan, np.nan, np.nan, np.nan, np.nan, NAN2, level)
    xs = [[data[(a, b)] for b in bs] for a in (a0, a1)]
    m = np.array([[x.mean() for x in row] for row in xs])
    vm = np.array([[x.var(ddof=1) / len(x) for x in row] for row in xs])
    sd, spread = _spreads(m, vm)
    diff = float(spread[1] - spread[0])
    ci = NAN2
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        bm, bv = np.empty((n_resamples, 2, len(bs))), np.empty((n_resamples, 2, len(bs)))
        for i, row in enumerate(xs):
            for j, x in enumerate(row):
                r = x[rng.integers(0, len(x), size=(n_resamples, len(x)))]
                bm[:, i, j], bv[:, i, j] = r.mean(axis=1), r.var(axis=1, ddof=1) / len(x)
        _, bspread = _spreads(bm, bv)
        ci = pair(np.quantile(bspread[:, 1] - bspread[:, 0], [(1 - level) / 2, (1 + level) / 2]))
    return SpreadDifference(
        bs, float(sd[0]), float(sd[1]), float(spread[0]), float(spread[1]), diff, ci, level
    )


@dataclass(frozen=True)
class Stabilization:
    """ "a1 (e.g. BN) makes the result less dependent on B (batch size) than a0": the Welch–James A×B
    interaction test over the a0/a1 cells at the shared B levels, the noise-corrected spread difference, and
    the verdict."""

    interaction: Interaction
    spread: SpreadDifference
    verdict: str
    alpha: float


def stabilization(
    cells: dict, a0, a1, *, alpha: float = 0.05, level: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> Stabilization:
    """'supported' only when the a×B interaction is significant (Welch–James p < α: the B-profile of a1
    differs from a0's beyond seed noise) AND a1's noise-corrected spread of means over B is smaller (diff <
    0); 'contradicted' when it is significant and a1's spread is larger; otherwise 'inconclusive'. A smaller
    spread alone is not evidence: the comparison of per-seed ranges, or of raw SDs of means, calls a norm with
    less seed noise "stable" even when B changes nothing (see the tests). Cells other than a0/a1 and B levels
    not shared (≥ 2 values in both) are left out of both parts."""
    sp = spread_difference(cells, a0, a1, level=level, n_resamples=n_resamples, seed=seed)
    it = interaction_test({(a, b): cells[(a, b)] for a in (a0, a1) for b in sp.b_levels})
    v = "inconclusive"
    if it.welch_p < alpha and sp.diff != 0:
        v = "supported" if sp.diff < 0 else "contradicted"
    return Stabilization(it, sp, v, alpha)


@dataclass(frozen=True)
class BestOf:
    """ "`best` beats every other configuration" as an intersection–union test. p_value = max over the others
    of the one-sided Welch p-value of best against that one (`weakest` names the largest); diffs[label] =
    mean_best − mean_label with the one-sided Welch CI cis[label] at `level` (one infinite end) and
    p_values[label]. prob_best: bootstrap share of resamples (seeds resampled within each configuration) in
    which best has the largest mean ("greater") or the smallest ("less"): descriptive, not a p-value. n_best,
    n[label]: finite values."""

    p_value: float
    weakest: object
    diffs: dict
    cis: dict
    p_values: dict
    prob_best: float
    n_best: int
    n: dict
    alternative: str
    level: float


def best_of(
    best,
    others: dict,
    *,
    alternative: str = "greater",
    level: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> BestOf:
    """Intersection–union test (Berger 1982) of H1: mean_best > mean_k for every k in `others` (alternative
    "greater"; "less" for e.g. error rates): reject at α iff every one-sided Welch test
    (scipy.stats.ttest_ind) rejects at α, so p = max_k p_k, with no multiplicity correction and size ≤ α; the
    worst case, best tied with one competitor and clearly ahead of the rest, rejects about α of the time.
    Finite values only; a competitor with no usable test (n < 2 a side, no variance at all) makes p NaN; no
    competitors: NaN. n_resamples = 0 skips the bootstrap (prob_best NaN)."""
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    x = finite(best)
    ys = {k: finite(v) for k, v in others.items()}
    diffs, cis, ps = {}, {}, {}
    for k, y in ys.items():
        ps[k], cis[k] = welch(y, x, alternative=alternative, level=level)
        diffs[k] = float(x.mean() - y.mean()) if len(x) and len(y) else np.nan
    pv = np.array(list(ps.values()), float)
    p = float(pv.max()) if len(pv) and not np.isnan(pv).any() else np.nan
    weakest = list(ps)[int(pv.argmax())] if np.isfinite(p) else None
    prob = np.nan
    if n_resamples > 0 and len(x) and ys and all(len(y) for y in ys.values()):
        rng = np.random.default_rng(seed)
        bx = _resampled_means(x, rng, n_resamples)
        rest = np.stack([_resampled_means(y, rng, n_resamples) for y in ys.values()])
        prob = float(
            np.mean(bx > rest.max(axis=0)) if alternative == "greater" else np.mean(bx < rest.min(axis=0))
        )
    return BestOf(
        p, weakest, diffs, cis, ps, prob, len(x), {k: len(y) for k, y in ys.items()}, alternative, level
    )


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else np.nan


def _resampled_means(v: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """The means of n_resamples bootstrap resamples of v (drawn from rng, which advances)."""
    return v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(axis=1)


@dataclass(frozen=True)
class CensoredComparison:
    """Time to a threshold (e.g. steps to 97%), b against a, where runs that never reached it are censored at
    the end of training. reached_*: runs that reached it, of n_*. median_*: median over all runs with the
    censored ones at +inf (inf when half or more never reach; with a common censoring time this is the
    Kaplan–Meier median). shift: Hodges–Lehmann median of b_j − a_i over the reached runs only (NaN if a side
    reached nothing); shift_ci: its distribution-free 95% CI (ranks.hodges_lehmann; NaN with too few reached
    runs). prob_b_slower: P(T_b > T_a) + ½·P(T_b = T_a) over all pairs of runs, censored = +inf (two censored
    runs tie). p_value: two-sided Mann–Whitney U on all runs, censored ranked last and tied (permutation
    distribution). reach_p: two-sided Fisher exact test of reached / not reached."""

    n_a: int
    n_b: int
    reached_a: int
    reached_b: int
    median_a: float
    median_b: float
    shift: float
    prob_b_slower: float
    p_value: float
    reach_p: float
    shift_ci: tuple[float, float] = NAN2


def _censored_side(steps, reached) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(steps, float).ravel()
    r = np.isfinite(s) if reached is None else np.asarray(reached, bool).ravel()
    if r.shape != s.shape:
        raise ValueError(f"steps and reached need equal lengths, got {len(s)} and {len(r)}")
    keep = ~r | np.isfinite(s)  # a 'reached' run without a finite step is unusable: dropped
    return np.where(r, s, np.inf)[keep], r[keep]


def censored_compare(
    steps_a, reached_a, steps_b, reached_b, *, n_resamples: int = 9999, seed: int = 0
) -> CensoredComparison:
    """Compare times to a threshold where a run that never reaches it is slower than every run that does: its
    time is +inf (censored at the end of training; all runs must share that horizon). Dropping such runs
    instead would make a configuration where half the seeds never get there look fast. reached_* may be None:
    then a run reached iff its step is finite (the NaN of `steps_to_threshold`); steps of unreached runs are
    ignored, and reached runs with a non-finite step are dropped. Mann–Whitney U (scipy.stats.mannwhitneyu
    with a permutation distribution: exact when C(n_a+n_b, n_a) ≤ n_resamples, seeded Monte Carlo otherwise)
    and Fisher's exact test (scipy.stats.fisher_exact). NaN: p_value when a side has < 2 runs or all runs tie
    (e.g. nothing reached anywhere); everything but the counts when a side is empty."""
    a, ra = _censored_side(steps_a, reached_a)
    b, rb = _censored_side(steps_b, reached_b)
    na, nb = len(a), len(b)
    ha, hb = a[ra], b[rb]
    shift, shift_ci = hodges_lehmann(ha, hb)
    prob = p = reach_p = np.nan
    if na and nb:
        big = np.concatenate([ha, hb, [0.0]]).max() + 1.0  # ranks only: censored = last, tied
        fa, fb = np.where(ra, a, big), np.where(rb, b, big)
        prob = float((np.sign(fb[:, None] - fa[None, :]) / 2 + 0.5).mean())
        if min(na, nb) >= 2 and np.ptp(np.concatenate([fa, fb])) > 0:
            method = scipy.stats.PermutationMethod(n_resamples=n_resamples, rng=np.random.default_rng(seed))
            p = float(scipy.stats.mannwhitneyu(fb, fa, alternative="two-sided", method=method).pvalue)
        reach_p = float(
            scipy.stats.fisher_exact([[ra.sum(), na - ra.sum()], [rb.sum(), nb - rb.sum()]]).pvalue
        )
    return CensoredComparison(
        na, nb, int(ra.sum()), int(rb.sum()), _median(a), _median(b), shift, prob, p, reach_p, shift_ci
    )
