"""`bnlab plan`: how many seeds each claim needs, and what they cost, from a study's runs (stored, or a
pilot).

Per claim: the seed-to-seed SD its test implies, the seeds per configuration to detect an effect X with the
given power (stats.seeds_needed, exact normal-theory Welch power) and to show equivalence within the claim's
margin when the true difference is 0 (stats.seeds_for_equivalence), at the claim's first Holm level α/m (the
level every claim starts at in a sequential study, so the numbers are safe for each); for `--until-decided`,
the --max-seeds that gives the same power (fixed seeds × the group-sequential inflation factor of its rounds)
and the seeds expected at the effect X; and the cost in model-epochs and minutes (seconds per model-epoch
measured on the runs, scaled to the full training set).

The SD: for a Welch comparison, the SD at which the finding's own smallest detectable effect (Finding.mde) is
reached with these seeds (exact for equal SDs); for other tests (rank, trend, interaction, best-of) the SE
implied by the test, |effect| / z, scaled as se·√(n/2): an approximation, marked '≈'.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

import numpy as np

from .. import stats
from ..claims.finding import ALPHA, POWER, Finding, fmt
from ..claims.registry import claims_for, findings_of
from ..data import DATASETS
from ..stats.futility import expected_fraction as futility_fraction
from ..studydata import StudyData
from .rounds import claim_look


@dataclass(frozen=True)
class ClaimPlan:
    """Seeds and cost for one claim; seeds are per configuration, None where no practical number
    reaches it."""

    finding: Finding
    target: float  # the effect to detect, in the claim's unit
    target_from: str  # '--effect', 'margin' or 'observed'
    sd: float  # per-seed SD its test implies (unit)
    approximate: bool  # SD from the test's implied SE, not a Welch comparison
    level: float  # α/m: the claim's first Holm level
    fixed: int | None  # fixed design: seeds to detect `target` with the power
    max_seeds: int | None  # --until-decided with the same power
    expected: float  # expected seeds per configuration at `target` under --until-decided (no futility)
    expected_futile: float  # the same with the default futility rule (stats.FUTILITY)
    null_futile: float  # ... when the true effect is 0
    equivalence: int | None  # fixed TOST at α/m_eq: seeds to show |difference| < margin (true difference 0)
    configs: int  # configurations the claim uses
    uses: str  # which, as the claim declares them: 'batch size 32, norm none/batch'
    epochs: int
    seconds: float  # summed over its configurations: seconds per model-epoch (full training set)

    def cost(self, seeds: float | None) -> tuple[float, float]:
        """(model-epochs, minutes) for `seeds` per configuration of this claim."""
        if seeds is None or not np.isfinite(seeds):
            return math.nan, math.nan
        return seeds * self.configs * self.epochs, seeds * self.epochs * self.seconds / 60


def seconds_per_model_epoch(run) -> float:
    """A run's training seconds per epoch (its share of its stack), scaled to the full training set."""
    w = run.m["wall_s"]
    if not len(w):
        return math.nan
    full = DATASETS[run.spec.dataset].n_train
    return float(w[-1] / len(w)) * full / min(run.spec.train_limit or full, full)


def implied_sd(f: Finding, n: int) -> tuple[float, bool]:
    """Per-seed SD of the claim's measure (see the module docstring) and whether it is approximate."""
    if np.isfinite(f.mde) and n >= 2:
        return f.mde / stats.min_detectable_effect(1.0, 1.0, n, n, ALPHA, POWER), False
    look, (lo, hi) = claim_look(f), f.effect_ci
    z = abs(look.z)  # |Φ⁻¹(1 − p)| for a one-sided p, also when the estimate lies on the untested side
    if np.isfinite(f.effect) and f.effect != 0 and z > 0.05:
        se = abs(f.effect) / z
    elif np.isfinite(lo) and np.isfinite(hi):
        se = (hi - lo) / (2 * 1.959964)
    else:
        return math.nan, True
    return se * math.sqrt(n / 2), True


MAX_LOOKS = 20  # planning a sequential design with more rounds than this assumes this many equal rounds


def _sizes(first: int, round_seeds: int, n_max: int) -> np.ndarray:
    """Looks at first, first + round, ..., n_max (at most MAX_LOOKS, rounds widened to fit)."""
    step = max(round_seeds, math.ceil((n_max - first) / (MAX_LOOKS - 1)))
    return np.array([*range(first, n_max, step), n_max], float)


def _sequential(
    fixed: int | None, first: int, round_seeds: int, level: float, power: float
) -> tuple[int | None, float, float, float]:
    """--max-seeds with the fixed design's power; the expected seeds at the target effect; the same with the
    default futility rule (stats.futility), at the target effect and at 0."""
    if fixed is None:
        return None, math.nan, math.nan, math.nan
    n_max = max(fixed, first)
    for _ in range(6):
        new = max(
            first,
            math.ceil(
                stats.inflation_factor(_sizes(first, round_seeds, n_max) / n_max, level, power) * fixed
            ),
        )
        if new == n_max:
            break
        n_max = new
    t = _sizes(first, round_seeds, n_max) / n_max
    drift, bounds = stats.design_drift(t, level, power), stats.boundaries(t, level)
    futile, futile0 = (futility_fraction(t, bounds, th, level, stats.FUTILITY) * n_max for th in (drift, 0.0))
    return n_max, stats.expected_fraction(t, drift, level) * n_max, futile, futile0


def plan_claims(
    d: StudyData,
    *,
    effect: float | None = None,
    power: float = POWER,
    first: int | None = None,
    round_seeds: int | None = None,
    alpha: float = ALPHA,
    findings: list[Finding] | None = None,
) -> list[ClaimPlan]:
    """One ClaimPlan per headline claim of the study's runs `d`. effect: X in pp for the claims measured in pp
    (others keep their margin or observed effect); first/round_seeds: the sequential rounds (default: the
    seeds per configuration in `d`, and as many again per round); findings: `d`'s, if computed already."""
    fs = findings if findings is not None else findings_of(d)
    m, m_eq = len(fs), sum(np.isfinite(f.margin) for f in fs)
    plans = []
    for claim, f in zip(claims_for(d), fs):
        configs = [c for c in d.configs if claim.needs(c.spec)]
        n = min((len(c.runs) for c in configs), default=0)
        k1 = first or n
        sd, approx = implied_sd(f, n)
        if effect is not None and f.unit == "pp":
            target, src = abs(effect), "--effect"
        elif np.isfinite(f.margin):
            target, src = f.margin, "margin"
        else:
            target, src = abs(f.effect), "observed"
        level = alpha / m
        fixed = stats.seeds_needed(target, sd, sd, level, power) if np.isfinite(sd) and target > 0 else None
        n_max, expected, futile, futile0 = _sequential(
            fixed, max(k1, 2), round_seeds or max(k1, 2), level, power
        )
        eq = (
            stats.seeds_for_equivalence(f.margin, sd, sd, 0.0, alpha / m_eq, power)
            if np.isfinite(f.margin) and np.isfinite(sd)
            else None
        )
        secs = sum(float(np.nanmedian([seconds_per_model_epoch(r) for r in c.runs])) for c in configs)
        plans.append(
            ClaimPlan(
                f,
                target,
                src,
                sd,
                approx,
                level,
                fixed,
                n_max,
                expected,
                futile,
                futile0,
                eq,
                len(configs),
                claim.uses_text(),
                max((c.spec.epochs for c in configs), default=0),
                secs,
            )
        )
    return plans


def _n(v) -> str:
    return (
        "—"
        if v is None or (isinstance(v, float) and not np.isfinite(v))
        else f"{v:.1f}"
        if isinstance(v, float)
        else str(v)
    )


def _cost(p: ClaimPlan, seeds) -> str:
    me, minutes = p.cost(seeds)
    return "—" if not np.isfinite(me) else f"{me:,.0f} / {minutes:,.1f} min"


def plan_text(d: StudyData, source: str, **kw) -> str:
    """The plan as plain text: where the numbers come from, the seed SD per configuration, then per claim."""
    plans = plan_claims(d, **kw)
    power = kw.get("power", POWER)
    lines = [
        f"bnlab plan {d.name}: from {source}.",
        "Seed-to-seed SD of final test accuracy per configuration: "
        + "; ".join(
            f"{c.label} {np.std(f, ddof=1) * 100:.3f} pp (n {len(f)})"
            for c in d.configs
            for f in [c.finals()[np.isfinite(c.finals())]]
            if len(f) > 1
        )
        + ".",
        f"Seeds per configuration at power {power:.0%}, each claim at its first Holm level α/m = "
        f"{ALPHA}/{len(plans)}; cost in model-epochs / minutes on this machine (seconds per model-epoch "
        "measured on these runs, scaled to the full training set).",
        "",
    ]
    head = [
        "claim",
        "effect to detect",
        "SD per seed",
        "fixed",
        "cost (fixed)",
        "--until-decided max / expected",
        "cost (expected)",
        f"with futility {stats.FUTILITY:g}: expected at the effect / at 0",
        "equivalence (margin)",
        "cost (equivalence)",
    ]
    rows = []
    for p in plans:
        f, u = p.finding, p.finding.unit
        rows.append(
            [
                f"({f.key})",
                f"{fmt(p.target, u).lstrip('+')} {u} ({p.target_from})",
                f"{'≈' if p.approximate else ''}{fmt(p.sd, u).lstrip('+')}",
                _n(p.fixed),
                _cost(p, p.fixed),
                f"{_n(p.max_seeds)} / {_n(p.expected)}",
                _cost(p, p.expected),
                f"{_n(p.expected_futile)} / {_n(p.null_futile)} ({_cost(p, p.null_futile)} at 0)",
                "—"
                if not np.isfinite(f.margin)
                else f"{_n(p.equivalence)} (±{fmt(f.margin, u).lstrip('+')})",
                _cost(p, p.equivalence),
            ]
        )
    width = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, width)).rstrip() for r in [head, *rows]]
    lines += [
        "",
        *(
            f"({p.finding.key}) {p.finding.title}: uses {p.configs} configuration(s) ({p.uses}), "
            f"{p.epochs} epochs"
            for p in plans
        ),
        "'—': not reachable with 10,000 seeds, or no spread to plan from. '≈': SD implied by a test that is "
        "not a "
        "Welch comparison. Equivalence assumes a true difference of 0. The --until-decided numbers take "
        "rounds "
        f"of the first round's size (or --round; at most {MAX_LOOKS} rounds) and hold for the "
        "group-sequential "
        "design of `bnlab study NAME --until-decided` (normal theory); 'with futility' adds its default "
        f"futility rule (a claim stops once its conditional power is below {stats.FUTILITY:.0%}, from half "
        "of --max-seeds on; Monte Carlo, the difference test only), at the effect and at a true effect of 0. "
        "Minutes from short runs (few images, "
        "small "
        "stacks, a busy machine) overstate the full study's: a fixed part of every epoch is scaled up too.",
    ]
    return "\n".join(lines)


def decide_hints(d: StudyData, fs: list[Finding], command: str) -> dict[str, str]:
    """Claim key → how to decide it, for each inconclusive claim of a fixed-seed study: the `--until-decided`
    command (the study's own command, without --fresh) with the --max-seeds that gives the plan's power, and
    the seeds and minutes of training it is expected to take here (`plan_claims`)."""
    words = [w for w in shlex.split(command) if w != "--fresh"] or ["bnlab", "study", d.name]
    hints = {}
    for p in plan_claims(d, findings=fs):
        f = p.finding
        if f.verdict != "inconclusive" or p.max_seeds is None:
            continue
        cmd = shlex.join([*words, "--until-decided", "--max-seeds", str(p.max_seeds)])
        size = fmt(p.target, f.unit).lstrip("+")
        what = "the observed effect" if p.target_from == "observed" else f"an effect of {size} {f.unit}"
        _, minutes = p.cost(p.expected)
        hints[f.key] = (
            f"**To decide it:** `{cmd}`, which detects {what} with {POWER:.0%} power at α/m = "
            f"{p.level:.3g}; expected {p.expected:.0f} seeds per configuration, about {minutes:,.0f} min of "
            f"training on this machine in all (`bnlab plan {d.name}` gives every claim's numbers)."
        )
    return hints
