"""Seeds until decided, read back: the rounds of a sequential study, recomputed from the stored runs.

A sequential study (`bnlab study NAME --until-decided`) trains its configurations in rounds: the study's own
seeds first, then `round` more per round, up to `max_seeds` per configuration. Its plan is stored with the
study's spec (key SPEC_KEY). The rounds are prefixes of one seed list fixed by the plan, so the whole history
needs no table of its own: `history` replays the looks from the stored runs (each claim's fixed-sample test on
the first n seeds, then `stats.decide`), and a report regenerated later shows the same rounds.

The statistic of a claim at a look is its finding's p-value (two-sided; one-sided when its CI has an infinite
end, like the best-of test of claim d), read as a normal quantile and signed by its estimate or direction
(`claim_look`); the decision compares the p with the boundary's nominal level and keeps the finding's own side
condition (its CI on one side of 0). For Welch comparisons this is the significance-level approach of
Jennison & Turnbull (2000, §3.8); for rank, trend and interaction tests it assumes their successive p-values
behave like a z-process (exact at each look, approximate jointly).

Which configurations a claim needs (`needs`): a round trains a configuration only while some undecided claim
uses it, as the claim declares (`Claim.uses`): the seed study's claims a, b, c use none/batch at batch size
32, d and e BN at every batch size, f all.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import stats
from ..claims.finding import ALPHA, Finding, fmt, fmt_p
from ..claims.registry import claims_for, findings_of
from ..config import RunSpec
from ..errors import ConfigError
from ..limits import check_bound
from ..studydata import Config, StudyData

SPEC_KEY = "sequential"


def needs(d: StudyData, keys, spec: RunSpec) -> bool:
    """Whether a claim of `keys` uses the configuration of `spec` (each claim declares it: `Claim.uses`)."""
    return any(c.needs(spec) for c in claims_for(d) if c.key in keys)


@dataclass(frozen=True)
class Plan:
    """Looks after the first `seeds`, then every `round` seeds more, the last at `max_seeds` (N_max) per
    configuration; the seed list continues the first seeds with the smallest unused seeds 0, 1, 2, ..."""

    seeds: tuple[int, ...]
    round: int
    max_seeds: int
    alpha: float = ALPHA
    futility: float = 0.0  # a claim whose conditional power falls below this stops (stats.futility); 0: never

    def __post_init__(self):
        check_bound("seeds", self.round, "--round")
        check_bound("seeds", self.max_seeds, "--max-seeds")
        if not (isinstance(self.futility, (int, float)) and 0 <= self.futility < 1):
            raise ConfigError(f"--futility must be a conditional power in [0, 1), got {self.futility!r}")
        if len(self.seeds) < 2:
            raise ConfigError(
                f"a sequential study needs at least 2 seeds in its first round, got {len(self.seeds)}"
            )
        if self.max_seeds < len(self.seeds):
            raise ConfigError(
                f"--max-seeds {self.max_seeds} is below the first round's {len(self.seeds)} seeds; "
                f"give at least {len(self.seeds)}"
            )

    def seed_list(self) -> tuple[int, ...]:
        out, seen, s = list(self.seeds), set(self.seeds), 0
        while len(out) < self.max_seeds:
            if s not in seen:
                out.append(s)
            s += 1
        return tuple(out)

    def sizes(self) -> list[int]:
        """Seeds per configuration at each look."""
        n, out = len(self.seeds), []
        while n < self.max_seeds:
            out.append(n)
            n += self.round
        return out + [self.max_seeds]

    def fractions(self) -> np.ndarray:
        return np.array(self.sizes(), float) / self.max_seeds

    def to_json(self) -> dict:
        return dict(
            seeds=list(self.seeds),
            round=self.round,
            max_seeds=self.max_seeds,
            alpha=self.alpha,
            futility=self.futility,
        )

    @classmethod
    def of(cls, meta: dict | None) -> Plan | None:
        """The plan stored with a study (StudyData.meta), or None for a fixed-seed study."""
        p = ((meta or {}).get("spec") or {}).get(SPEC_KEY)
        if not p:
            return None
        # a plan stored before futility stopping existed had none: replay it as it ran
        futility = float(p.get("futility", 0.0))
        return cls(
            tuple(p["seeds"]), int(p["round"]), int(p["max_seeds"]), float(p.get("alpha", ALPHA)), futility
        )


def claim_look(f: Finding) -> stats.ClaimLook:
    """A finding as one look of its claim: its p (one-sided when its CI has an infinite end), the side that
    decides (its CI, or its direction for a rank test), its TOST p and its estimate."""
    one_sided = any(np.isinf(v) for v in f.effect_ci)
    lo, hi = f.effect_ci
    ci = (f.direction, f.direction) if np.isfinite(f.direction) else (lo, hi)
    sign = f.direction if np.isfinite(f.direction) else f.effect
    return stats.ClaimLook(f.p_value, ci, f.tost_p, one_sided, sign, f.expected_sign)


def restrict(d: StudyData, seeds) -> StudyData:
    """The study on `seeds` only (configurations left without runs dropped)."""
    keep = set(seeds)
    configs = [Config(c.spec, c.label, [r for r in c.runs if r.spec.seed in keep]) for c in d.configs]
    return dataclasses.replace(d, configs=[c for c in configs if c.runs])


@dataclass(frozen=True)
class Round:
    """One look: n seeds per configuration (the first n of the plan's list), the claims' fixed-sample findings
    on them, and the configurations this round needed."""

    n: int
    findings: tuple[Finding, ...]
    looks: tuple[stats.ClaimLook, ...]
    configs: tuple[str, ...]


@dataclass(frozen=True)
class History:
    """The looks taken so far and each claim's sequential decision after the last of them."""

    plan: Plan
    rounds: tuple[Round, ...]
    decisions: tuple[stats.Decision, ...]

    @property
    def finished(self) -> bool:
        """Every claim decided, or the last look (max_seeds) taken."""
        return self.rounds[-1].n == self.plan.max_seeds or all(
            x.verdict != "undecided" for x in self.decisions
        )

    def undecided(self) -> list[str]:
        return [f.key for f, x in zip(self.rounds[-1].findings, self.decisions) if x.verdict == "undecided"]

    def boundary(self, i: int, k: int) -> float:
        """The two-sided z boundary claim i faced at look k (its Holm share of α there)."""
        lv = self.decisions[i].levels
        return float(stats.boundaries(self.plan.fractions()[: k + 1], lv[min(k, len(lv) - 1)])[k])

    def interval(self, i: int, k: int) -> tuple[float, float]:
        """Repeated confidence interval of claim i's effect at look k (Jennison & Turnbull 1989): estimate ±
        c_k·SE, the SE implied by its test (|estimate| / |z|; from its 95% CI when either is 0), so that it
        excludes 0 exactly when the look crosses the boundary. Only for claims with a two-sided CI (NaN for
        rank tests and one-sided tests); approximate where the test is not a t-test (an F test, a trend)."""
        f, look = self.rounds[k].findings[i], self.rounds[k].looks[i]
        lo, hi = f.effect_ci
        if (
            look.one_sided
            or np.isfinite(f.direction)
            or not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(f.effect))
        ):
            return math.nan, math.nan
        c, z = self.boundary(i, k), look.z_abs
        se = abs(f.effect) / z if f.effect != 0 and z > 0.05 else (hi - lo) / (2 * 1.959964)
        return f.effect - c * se, f.effect + c * se


_CACHE: dict[tuple, tuple[Finding, ...]] = {}


def _findings(d: StudyData) -> tuple[Finding, ...]:
    """A study's findings on these runs (the claims' own fixed-sample tests, before Holm), memoised by the
    runs (ids, final accuracies, divergence): the round loop and the report replay the same looks."""
    key = (d.name, tuple(sorted((r.run_id, r.final("test_acc"), r.diverged_epoch) for r in d.runs)))
    if key not in _CACHE:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = tuple(findings_of(d))
    return _CACHE[key]


def needed_configs(d: StudyData, keys) -> list[Config]:
    """The configurations some claim in `keys` uses."""
    return [c for c in d.configs if needs(d, keys, c.spec)]


def history(d: StudyData, plan: Plan, looks: int | None = None) -> History | None:
    """Replay the plan's looks on the stored runs: look k is taken when every configuration needed by a claim
    still undecided has the first n_k seeds; stops after the last look whose runs are all there, when every
    claim is decided, or after `looks` looks. None before the first look is complete."""
    seed_list, sizes, t = plan.seed_list(), plan.sizes(), plan.fractions()
    rounds: list[Round] = []
    decisions: tuple[stats.Decision, ...] = ()
    for k, n in enumerate(sizes[:looks]):
        want = set(seed_list[:n])
        configs = (
            d.configs
            if not rounds
            else needed_configs(
                d, [f.key for f, x in zip(rounds[0].findings, decisions) if x.verdict == "undecided"]
            )
        )
        if not configs or any(not want <= {r.spec.seed for r in c.runs} for c in configs):
            break
        fs = _findings(restrict(d, want))
        rounds.append(Round(n, fs, tuple(claim_look(f) for f in fs), tuple(c.label for c in configs)))
        decisions = tuple(
            stats.decide(
                [[r.looks[i] for r in rounds] for i in range(len(fs))],
                [f.expected_sign for f in fs],
                t[: k + 1],
                alpha=plan.alpha,
                has_margin=[bool(np.isfinite(f.margin)) for f in fs],
                final=n == sizes[-1],
                futility=plan.futility,
            )
        )
        if all(x.verdict != "undecided" for x in decisions):
            break
    return History(plan, tuple(rounds), decisions) if rounds else None


def verdict_text(h: History, i: int) -> str:
    """The claim's sequential verdict in one sentence: where it was decided, or what it rules out."""
    x, k = h.decisions[i], h.decisions[i].look
    f, n = h.rounds[k].findings[i], h.rounds[k].n
    lo, hi = h.interval(i, k)
    u = f" {f.unit}" if f.unit else ""
    p = f"sequential p {fmt_p(x.p_seq)} against its level {x.alpha:.4g}" if np.isfinite(x.p_seq) else ""
    if x.verdict == "equivalent":
        return (
            f"equivalent after round {k + 1} ({n} seeds): {f.contrast} lies within "
            f"±{fmt(f.margin, f.unit).lstrip('+')}"
            f"{u} (sequential TOST{', ' + p if p else ''})."
        )
    rule = (
        f"; it rules out {f.contrast} below {fmt(lo, f.unit)} or above {fmt(hi, f.unit)}{u}"
        if np.isfinite(lo)
        else ""
    )
    if x.verdict == "futile":
        cp = f"{x.cond_power:.0%}" if x.cond_power >= 0.01 else "under 1%"
        return (
            f"undecided: futile at {n} seeds (round {k + 1}): if {f.contrast} stayed at "
            f"{fmt(f.effect, f.unit)}{u}, the last look ({h.plan.max_seeds} seeds) would decide it with "
            f"probability {cp}, below the plan's {h.plan.futility:.0%}, so it took no more "
            f"seeds{rule}."
        )
    if x.verdict != "undecided":
        ci = f"repeated CI [{fmt(lo, f.unit)}, {fmt(hi, f.unit)}]" if np.isfinite(lo) else f.decides
        return (
            f"{x.verdict} after round {k + 1} ({n} seeds): {f.contrast} = {fmt(f.effect, f.unit)}{u}"
            f"{', ' + ci if ci else ''}{'; ' + p if p else ''}."
        )
    if h.rounds[-1].n < h.plan.max_seeds:
        return f"undecided so far at {n} seeds (of at most {h.plan.max_seeds}){rule}."
    return f"undecided at {n} seeds{rule}{'; ' + p if p else ''}."
