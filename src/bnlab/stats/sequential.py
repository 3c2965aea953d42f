"""Group-sequential tests: seeds added in rounds, each claim re-tested after each round until decided.

Why a group-sequential design and not confidence sequences. Re-testing a fixed-n test after every round
inflates the false-positive rate (five looks at α = 0.05 reject a true null about 14% of the time). Two valid
fixes exist: anytime-valid confidence sequences (Howard et al. 2021) and group-sequential designs with an
α-spending function (Lan & DeMets 1983). Confidence sequences need a known sub-Gaussian scale or bounded
observations; a test accuracy is bounded in [0, 1], but bounds that hold for any distribution there are tens
of times wider than seed-to-seed differences of 0.1 pp, so with 3–50 seeds they would almost never decide. A
group-sequential design fixes the largest number of seeds N_max in advance and spends α over the looks, so
nearly all of it is left for the last look (O'Brien & Fleming 1979): at N_max it is within a few percent of
the fixed design, and it stops early when the evidence is strong.

The design. Look k at information fraction t_k = n_k / N_max (n_k seeds per configuration, fixed in advance),
the O'Brien–Fleming-type spending function of Lan & DeMets (1983)

    α(t) = 2 − 2Φ(z_{α/2} / √t),                  α(1) = α,

and boundaries c_1..c_K such that, under the null, P(first crossing at look k) = α(t_k) − α(t_{k−1}):
two-sided, |Z_k| ≥ c_k; one-sided (each half of a TOST), Z_k ≥ c_k. The z statistics of successive looks have
the canonical joint distribution (independent increments: Z_k√t_k = S_k is a Brownian motion in t, so
corr(Z_i, Z_j) = √(t_i / t_j)); the crossing probabilities are computed by recursive numerical integration of
the density of Z_k on the region where no earlier look stopped (Armitage, McPherson & Rowe 1969; Jennison &
Turnbull 2000, ch. 19), Simpson's rule on a fine grid: exact to about 1e-6 here (tests check published
values). Because α(t) depends only on t, looks may be taken at any fractions fixed before the data, and a
design whose last look is N_max spends exactly α.

The statistic. Seeds are few and their variance unknown, so each look's test is the fixed-sample test of the
claim (Welch t, Mann–Whitney, ...) and its p-value is compared with the nominal level of the boundary,
2(1 − Φ(c_k)) (two-sided) or 1 − Φ(c_k) (one-sided): the "significance level approach" of Jennison & Turnbull
(2000, §3.8), which keeps each look's null distribution exact and the joint one close to canonical
(tests/test_sequential.py measures the false-positive rate of Welch tests with 10 looks from 3 seeds).

Many claims. The claims of a study form a family; `decide` controls the familywise error with Holm's procedure
made sequential (Maurer & Bretz 2013, graphical Holm): claim i is tested at α/(m − r), r the claims already
rejected, and the boundaries of every remaining claim are recomputed at the larger level after each rejection.
Differences (supported/contradicted) and equivalences (a TOST within the declared margin, each one-sided half
a one-sided design at α) are two families, as in the fixed-sample report.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy  # scipy.stats loads on first use, as in the rest of bnlab.stats

from .futility import FUTILITY_FROM, conditional_power
from .verdicts import verdict


def _ndtr(x):  # Φ, without scipy.stats' per-call overhead (scipy.special loads on first use)
    return scipy.special.ndtr(x)


_TAIL = 8.0  # a one-sided continuation region is cut this many SDs below the mean of Z_k
_STEP = 0.02  # the Simpson grid's spacing in z (finer where looks are close together)


def obf_spending(t, alpha: float = 0.05) -> np.ndarray:
    """Lan–DeMets O'Brien–Fleming-type α spent by information fraction t: α(t) = 2 − 2Φ(z_{α/2}/√t), α(0) = 0,
    α(t ≥ 1) = α."""
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    z = scipy.stats.norm.isf(alpha / 2)
    with np.errstate(divide="ignore"):
        return np.where(t > 0, 2 * scipy.stats.norm.sf(z / np.sqrt(np.where(t > 0, t, 1.0))), 0.0)


def _check_fractions(t) -> np.ndarray:
    t = np.asarray(t, float).ravel()
    if not len(t) or not (np.all(np.diff(t) > 0) and t[0] > 0 and t[-1] <= 1 + 1e-12):
        raise ValueError(f"information fractions must increase within (0, 1], got {t.tolist()}")
    return t


def _simpson(lo: float, hi: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Simpson's rule on [lo, hi] with spacing about h."""
    m = max(1, math.ceil((hi - lo) / (2 * h)))
    z = np.linspace(lo, hi, 2 * m + 1)
    w = np.full(2 * m + 1, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return z, w * (hi - lo) / (6 * m)


class _Walk:
    """The sub-density of Z_k on the paths that have not stopped, carried look by look: `mass` holds the
    probability of each grid node (density × Simpson weight) of the last continuation region."""

    def __init__(self, t, drift: float, sides: int):
        self.t, self.drift, self.sides = t, drift, sides
        gaps = np.diff(np.concatenate([[0.0], t]))
        self.h = min(_STEP, float(np.min(np.sqrt(gaps / t))) / 8)
        self.z, self.mass, self.k, self.t_prev = np.zeros(1), np.ones(1), 0, 0.0

    def _kernel(self) -> tuple[np.ndarray, float]:
        """Mean of Z_k given each node of Z_{k−1}, and its SD: Z_k√t_k = Z_{k−1}√t_{k−1} + N(θΔ, Δ)."""
        tk, dt = self.t[self.k], self.t[self.k] - self.t_prev
        return (self.z * math.sqrt(self.t_prev) + self.drift * dt) / math.sqrt(tk), math.sqrt(dt / tk)

    def upper(self, c: float) -> float:
        """P(no stop before look k, Z_k ≥ c)."""
        mean, sd = self._kernel()
        return float(self.mass @ _ndtr((mean - c) / sd))

    def lower(self, c: float) -> float:
        """P(no stop before look k, Z_k ≤ −c) (two-sided designs)."""
        mean, sd = self._kernel()
        return float(self.mass @ _ndtr((-c - mean) / sd))

    def cross(self, c: float) -> float:
        return self.upper(c) + (self.lower(c) if self.sides == 2 else 0.0)

    def advance(self, c: float) -> None:
        """Condition on not stopping at look k (boundary c) and move to look k + 1."""
        mean, sd = self._kernel()
        centre = self.drift * math.sqrt(self.t[self.k])  # E[Z_k]; the grid spans it ± _TAIL at most
        hi = min(c, abs(centre) + _TAIL)
        lo = max(-c, -abs(centre) - _TAIL) if self.sides == 2 else min(c, centre) - _TAIL
        z, w = _simpson(lo, hi, self.h) if hi > lo else (np.zeros(1), np.zeros(1))
        dens = (
            np.exp(-0.5 * ((z[:, None] - mean[None, :]) / sd) ** 2)
            @ self.mass
            / (sd * math.sqrt(2 * math.pi))
        )
        self.z, self.mass, self.t_prev, self.k = z, dens * w, self.t[self.k], self.k + 1


@functools.lru_cache(maxsize=512)
def _design(t: tuple, alpha: float, sides: int) -> tuple[tuple, tuple]:
    """Boundaries of the design, and the null walk's state (nodes, masses, t_{k−1}) before each look."""
    spend = np.diff(np.concatenate([[0.0], obf_spending(np.array(t), alpha)]))
    walk, out, states = _Walk(np.array(t), 0.0, sides), [], []
    for k, a in enumerate(spend):
        states.append((walk.z, walk.mass, walk.t_prev))
        if k == 0:  # the first look has a closed form
            c = float(scipy.stats.norm.isf(a / sides))
        elif a <= 1e-15:
            c = math.inf
        else:
            hi = 1.0
            while walk.cross(hi) > a:
                hi *= 2
            c = float(scipy.optimize.brentq(lambda c, a=a: walk.cross(c) - a, 0.0, hi, xtol=1e-10))
        out.append(c)
        if k + 1 < len(spend):
            walk.advance(c)
    return tuple(out), tuple(states)


def _key(t, alpha: float, sides: int) -> tuple:
    if sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2, got {sides}")
    if not 0 < alpha < 1:
        raise ValueError(f"need 0 < alpha < 1, got {alpha}")
    return tuple(np.round(_check_fractions(t), 12)), float(alpha), sides


def boundaries(t, alpha: float = 0.05, *, sides: int = 2) -> np.ndarray:
    """z boundaries c_1..c_K of the Lan–DeMets O'Brien–Fleming-type design at level α for looks at information
    fractions t (increasing, in (0, 1]): two-sided, stop at look k when |Z_k| ≥ c_k; one-sided, when Z_k ≥
    c_k. Each c_k solves P_0(no crossing before k, crossing at k) = α(t_k) − α(t_{k−1}) (recursive
    integration, see the module docstring). Only the looks taken so far are needed: later looks do not change
    earlier boundaries."""
    return np.array(_design(*_key(t, alpha, sides))[0])


def nominal_levels(t, alpha: float = 0.05, *, sides: int = 2) -> np.ndarray:
    """The p-value each look must beat: 2(1 − Φ(c_k)) two-sided, 1 − Φ(c_k) one-sided."""
    return sides * scipy.stats.norm.sf(boundaries(t, alpha, sides=sides))


def crossing_probabilities(t, bounds, drift: float = 0.0, *, sides: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """P(first crossing at look k) above (Z_k ≥ c_k) and, two-sided, below (Z_k ≤ −c_k), when E[Z_k] =
    drift·√t_k (drift = the true effect / its standard error at N_max). Their sums are the power, and at drift
    0 the α spent."""
    t = _check_fractions(t)
    walk, up, down = _Walk(t, float(drift), sides), [], []
    for k, c in enumerate(np.asarray(bounds, float)):
        up.append(walk.upper(c))
        down.append(walk.lower(c) if sides == 2 else 0.0)
        if k + 1 < len(t):
            walk.advance(c)
    return np.array(up), np.array(down)


def stagewise_p(t, bounds, k: int, z: float, *, sides: int = 2) -> float:
    """Sequential p-value under the stage-wise ordering (Fairbanks & Madsen 1982; Jennison & Turnbull 2000,
    §8.4) of a design stopped at look k (0-based) with statistic z: the null probability of stopping earlier,
    plus that of reaching look k and seeing a statistic at least as extreme (|Z_k| ≥ |z| two-sided, Z_k ≥ z
    one-sided). It is ≤ the level exactly when the design rejects at look k, and uniform under the null
    when taken at the design's stopping look."""
    t = _check_fractions(t)
    if not np.isfinite(z) or not 0 <= k < len(t):
        return math.nan
    walk, p = _Walk(t, 0.0, sides), 0.0
    for j in range(k):
        p += walk.cross(bounds[j])
        walk.advance(bounds[j])
    p += walk.cross(abs(z)) if sides == 2 else walk.upper(z)
    return float(min(1.0, p))


def sequential_p(t, k: int, z: float, alpha: float = 0.05, *, sides: int = 2) -> float:
    """`stagewise_p` of the O'Brien–Fleming-type design at level α with looks at t (the null walk cached)."""
    key = _key(t, alpha, sides)
    if not np.isfinite(z) or not 0 <= k < len(key[0]):
        return math.nan
    bounds, states = _design(*key)
    walk = _Walk(np.array(key[0]), 0.0, sides)
    p = 0.0
    for j in range(k + 1):
        walk.z, walk.mass, walk.t_prev = states[j]
        walk.k = j
        p += walk.cross(bounds[j]) if j < k else walk.cross(abs(z)) if sides == 2 else walk.upper(z)
    return float(min(1.0, p))


def design_drift(t, alpha: float = 0.05, power: float = 0.8, *, sides: int = 2) -> float:
    """The drift θ (true effect over its standard error at N_max) at which the design rejects in the effect's
    direction with probability `power`."""
    b = boundaries(t, alpha, sides=sides)
    return float(
        scipy.optimize.brentq(
            lambda th: crossing_probabilities(t, b, th, sides=sides)[0].sum() - power, 0.0, 20.0, xtol=1e-8
        )
    )


def inflation_factor(t, alpha: float = 0.05, power: float = 0.8, *, sides: int = 2) -> float:
    """N_max / n_fixed: how many more seeds the sequential design needs at most to have the power of the fixed
    design (Jennison & Turnbull 2000, Table 2.x: about 1.03 for 5 equally spaced O'Brien–Fleming looks)."""
    fixed = scipy.stats.norm.isf(alpha / sides) + scipy.stats.norm.isf(1 - power)
    return (design_drift(t, alpha, power, sides=sides) / fixed) ** 2


def expected_fraction(t, drift: float, alpha: float = 0.05, *, sides: int = 2) -> float:
    """E[t at stopping] when the true drift is `drift`: Σ_k t_k P(stop at k), the last look taking the
    rest."""
    t = _check_fractions(t)
    up, down = crossing_probabilities(t, boundaries(t, alpha, sides=sides), drift, sides=sides)
    stop = up + down
    stop[-1] = 1.0 - stop[:-1].sum()
    return float(t @ stop)


@dataclass(frozen=True)
class ClaimLook:
    """One claim's fixed-sample test at one look: p two-sided (or one-sided for the claimed direction, with
    `one_sided`); `ci` decides the side as in `verdict` (a CI, or (d, d) for a direction d); tost_p: TOST of
    |effect| < margin (NaN: the claim declares no margin)."""

    p: float
    ci: tuple[float, float]
    tost_p: float = math.nan
    one_sided: bool = False
    effect: float = math.nan  # the estimate, for the sign of z (default: the side of the CI)
    sign: int = 1  # one-sided p: the direction it tests (+1: effect > 0)

    @property
    def p2(self) -> float:
        """A one-sided p as a two-sided one: min(1, 2p), so the upper half of a two-sided design at α tests it
        at α/2 (valid, and no 'contradicted' can come from a one-sided test)."""
        return min(1.0, 2 * self.p) if self.one_sided else self.p

    @property
    def z_abs(self) -> float:
        """The statistic the two-sided boundary is compared with: Φ⁻¹(1 − p2/2) ≥ 0 (0 for a one-sided
        p ≥ ½)."""
        return float(scipy.stats.norm.isf(self.p2 / 2)) if np.isfinite(self.p2) else math.nan

    @property
    def z(self) -> float:
        """Signed z for display: two-sided, Φ⁻¹(1 − p/2) with the sign of the estimate (else of the CI's
        side); one-sided, Φ⁻¹(1 − p) in the tested direction."""
        if not np.isfinite(self.p):
            return math.nan
        if self.one_sided:
            return float(self.sign * scipy.stats.norm.isf(self.p))
        lo, hi = self.ci
        s = np.sign(self.effect) if np.isfinite(self.effect) else 1.0 if lo > 0 else -1.0 if hi < 0 else 1.0
        return float(s * self.z_abs)


@dataclass(frozen=True)
class Decision:
    """A claim's sequential verdict: 'supported', 'contradicted', 'equivalent', 'futile' (undecided, stopped
    for futility: `stats.futility`) or 'undecided' (not decided by the last look taken); `look` (0-based)
    where it was decided or stopped, else the last look; alpha: the level it was last tested at (its Holm
    share of α in the family that decided it); p_seq: stage-wise p of that family's design at that level (NaN
    while undecided before the last planned look); levels: its share of α in the difference family at each
    look up to `look` (the two-sided boundary it faced there)."""

    verdict: str
    look: int
    alpha: float
    p_seq: float
    levels: tuple[float, ...] = ()
    cond_power: float = (
        math.nan
    )  # for 'futile': its conditional power at the look it stopped (stats.futility)


def _holm_share(alpha: float, rejected: int, m: int) -> float:
    """Holm: α shared over the claims not yet rejected."""
    return alpha / (m - rejected) if m > rejected else alpha


def decide(
    claims: list[list[ClaimLook]],
    expected_signs: list[int],
    t,
    *,
    alpha: float = 0.05,
    has_margin: list[bool] | None = None,
    final: bool = True,
    futility: float = 0.0,
) -> list[Decision]:
    """Sequential verdicts for a family of claims observed at looks with information fractions t (looks taken
    so far; `final`: the last of them is N_max). claims[i][k] is claim i at look k. At each look, with Holm
    recycling within each family (see the module docstring): a claim is supported/contradicted when its p
    beats the two-sided nominal level of the design at its share of α and its CI lies on one side of 0
    (`verdict`); otherwise, if it declares a margin and its TOST p beats the one-sided nominal level at its
    share of α, it is equivalent. A decided claim is not tested again. futility γ > 0: after a look from half
    of N_max and before it (FUTILITY_FROM ≤ t < 1), a claim still undecided whose conditional power is below
    γ is 'futile' and not tested again (non-binding: `stats.futility`)."""
    t = _check_fractions(t)
    m = len(claims)
    margin = (
        list(has_margin)
        if has_margin is not None
        else [any(np.isfinite(c.tost_p) for c in cl) for cl in claims]
    )
    m_eq = sum(margin)
    done: list[Decision | None] = [None] * m
    levels: list[list[float]] = [[] for _ in claims]
    rej, rej_eq = 0, 0
    for k in range(len(t)):
        changed = True
        while changed:
            changed = False
            a2, a1 = _holm_share(alpha, rej, m), _holm_share(alpha, rej_eq, m_eq)
            nom2 = float(nominal_levels(t, a2, sides=2)[k])  # boundary k does not depend on later looks
            nom1 = float(nominal_levels(t, a1, sides=1)[k])
            for i, cl in enumerate(claims):
                if done[i] is not None:
                    continue
                look = cl[k]
                v = verdict(look.p2, look.ci, expected_sign=expected_signs[i], alpha=nom2)
                if v != "inconclusive":
                    done[i] = Decision(
                        v, k, a2, sequential_p(t[: k + 1], k, look.z_abs, a2), (*levels[i], a2)
                    )
                    rej, changed = rej + 1, True
                elif margin[i] and look.p2 >= nom2 and look.tost_p < nom1:
                    z1 = float(scipy.stats.norm.isf(look.tost_p))
                    done[i] = Decision(
                        "equivalent", k, a1, sequential_p(t[: k + 1], k, z1, a1, sides=1), (*levels[i], a2)
                    )
                    rej_eq, changed = rej_eq + 1, True
                if changed:
                    break
        for i in range(m):
            if done[i] is None:
                levels[i].append(_holm_share(alpha, rej, m))
        a2, a1 = _holm_share(alpha, rej, m), _holm_share(alpha, rej_eq, m_eq)
        for i, cl in enumerate(claims):
            if futility > 0 and done[i] is None and FUTILITY_FROM <= t[k] < 1:
                cp = conditional_power(cl[k].z_abs, t[k], a2, cl[k].tost_p, a1 if margin[i] else None)
                if cp < futility:
                    done[i] = Decision("futile", k, a2, math.nan, tuple(levels[i]), cp)
    k = len(t) - 1
    a2 = _holm_share(alpha, rej, m)
    return [
        d
        if d is not None
        else Decision(
            "undecided", k, a2, sequential_p(t, k, cl[k].z_abs, a2) if final else math.nan, tuple(lv)
        )
        for d, cl, lv in zip(done, claims, levels)
    ]
