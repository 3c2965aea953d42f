"""A `Finding`: one claim, tested. It holds the claim (its words), what is measured, its one pre-declared
primary test, the effect with its 95% CI, p, n, the equivalence margin declared before the data, the design's
power, and the verdict: supported / contradicted (p < α, the CI on one side of 0), equivalent (TOST within
±margin) or inconclusive, decided once, on p Holm-adjusted across the study's claims
(`findings.holm_headlines`). No conclusion is canned: every sentence is assembled from the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .rows import ALPHA, Row

POWER = 0.8
DIGITS = {"pp": 2, "steps": 0, "pp per doubling": 3}  # decimals of an effect, by unit
# Equivalence margins declared before the data, by unit: a difference inside ±margin is too small to matter.
# Final accuracy or error: 0.2 pp, about 1.4 × the binomial SE of one accuracy on 10k test images (0.15 pp).
MARGIN = {"pp": 0.2}


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One claim of the original, tested. `effect` and `effect_ci` are in `unit`."""

    key: str
    title: str
    claim: str
    measure: str
    test: str
    contrast: str  # what `effect` is, e.g. "batch − none"
    effect: float
    effect_ci: tuple[float, float]
    unit: str
    p_value: float
    n: dict[str, int]
    expected_sign: int  # the sign of `effect` that the claim predicts
    p_holm: float = math.nan  # Holm across the study's headline findings (holm_headlines)
    verdict: str = ""  # decided once, on p_holm, by holm_headlines; '' before
    perm_p: float = math.nan
    rows: tuple[Row, ...] = ()  # exploratory, Holm within their family
    notes: tuple[str, ...] = ()
    margin: float = math.nan  # equivalence margin in `unit`, declared before the data (NaN: none)
    tost_p: float = math.nan  # TOST of |effect| < margin (Holm-adjusted like p_holm once adjusted)
    mde: float = math.nan  # smallest |effect| this design detects with POWER at ALPHA, in `unit`
    seeds_needed: int | None = None  # seeds per configuration to detect the observed effect with POWER
    perm_floor: float = math.nan  # the smallest p the exact permutation test can give with these n
    direction: float = math.nan  # for a test without an effect CI (rank tests): the sign that decides
    decides: str = ""  # for a rank test, the statistic whose side decides, in words: 'P(batch slower) 0.64'

    def effect_text(self) -> str:
        """'batch − none: +0.04 pp [-0.16, +0.24]', as the summary tables show it (a rank test adds what
        decides)."""
        lo, hi = self.effect_ci
        return (
            f"{self.contrast}: {fmt(self.effect, self.unit, True)} [{fmt(lo, self.unit)}, "
            f"{fmt(hi, self.unit)}]" + (f"; {self.decides}" if self.decides else "")
        )

    def sentence(self) -> str:
        """The result in one paragraph, from the numbers."""
        lo, hi = self.effect_ci
        ps = [f"p {p_is(self.p_value)}"]
        if np.isfinite(self.p_holm):
            ps.append(f"Holm-adjusted over the study's claims p {p_is(self.p_holm)}")
        if np.isfinite(self.perm_p):
            floor = (
                f", which cannot go below {self.perm_floor:.2f} with these seeds"
                if np.isfinite(self.perm_floor) and self.perm_floor >= ALPHA
                else ""
            )
            ps.append(f"permutation p {p_is(self.perm_p)}{floor}")
        if np.isfinite(self.tost_p):
            ps.append(f"equivalence (TOST, ±{self._amount(self.margin)}) p {p_is(self.tost_p)}")
        p_used = self.p_holm if np.isfinite(self.p_holm) else self.p_value
        side = "above" if self.expected_sign > 0 else "below"
        ranked = np.isfinite(self.direction)  # a rank test: its direction decides, not the CI
        if not (np.isfinite(p_used) and (ranked or np.isfinite(lo))):
            why = "there are too few runs with spread for a test"
        elif self.verdict == "supported":
            why = (
                f"p < {ALPHA} and the ranks favour the side the claim predicts"
                if ranked
                else f"p < {ALPHA} and the whole CI lies {side} 0, the side the claim predicts"
            )
        elif self.verdict == "contradicted":
            why = (
                f"p < {ALPHA} and the ranks favour the side opposite to the claim"
                if ranked
                else f"p < {ALPHA} and the whole CI lies on the side opposite to the claim"
            )
        elif self.verdict == "equivalent":
            why = f"the difference is shown to lie within ±{self._amount(self.margin)}"
        elif p_used >= ALPHA:
            why = f"p ≥ {ALPHA}: the data cannot tell this effect from 0"
        else:
            why = "the CI includes 0"
        n = ", ".join(f"{v} {k}" for k, v in self.n.items())
        return (
            f"{self.contrast} = {fmt(self.effect, self.unit, True)} (95% CI {fmt(lo, self.unit)} to "
            f"{fmt(hi, self.unit)}){'; ' + self.decides if self.decides else ''}; {'; '.join(ps)}; n = {n}. "
            "The claim predicts a "
            f"{'positive' if self.expected_sign > 0 else 'negative'} value; {why}: {self.verdict}."
            + self.power_text()
        )

    def _amount(self, v: float) -> str:
        """An unsigned amount with its unit, if any: '0.20 pp', '0.010'."""
        return fmt(v, self.unit).lstrip("+") + (f" {self.unit}" if self.unit else "")

    def power_text(self) -> str:
        """What the design can detect and, when undecided, what would decide it."""
        if not np.isfinite(self.mde):
            return ""
        text = (
            f" With these seeds the test detects an effect of {self._amount(self.mde)} or more with "
            f"{POWER:.0%} power."
        )
        if self.verdict == "inconclusive":
            text += (
                f" At the observed effect, about {self.seeds_needed} seeds per configuration would decide it."
                if self.seeds_needed
                else " The observed effect is too small to decide with any practical number of seeds."
            )
        return text


def fmt(v: float, unit: str = "", with_unit: bool = False) -> str:
    """A signed effect with the decimals its unit deserves (and the unit, if any and asked for)."""
    text = (
        ("+∞" if v > 0 else "−∞")
        if np.isinf(v)
        else "n/a"
        if not np.isfinite(v)
        else f"{v:+.{DIGITS.get(unit, 3)}f}"
    )
    return f"{text} {unit}" if with_unit and unit else text


def fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """'< 0.001', '= 0.012' or '= n/a': reads after 'p '."""
    return fmt_p(p) if np.isfinite(p) and p < 0.001 else f"= {fmt_p(p)}"
