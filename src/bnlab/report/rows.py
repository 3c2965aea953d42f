"""Rows: the exploratory lines of a finding's sub-table, their tests and their Holm family.

A `Row` is one comparison or trend with its effect, 95% CI, p and, where it claims a direction, a verdict.
The rows of one finding's table are one family: `holm_rows` adjusts the p of the rows that claim a
direction and that their builder did not adjust, and decides each verdict on its adjusted p.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Row:
    """One line of a finding's sub-table; verdict '' where the test claims no direction."""

    label: str
    effect: float
    ci: tuple[float, float]
    p_value: float
    p_holm: float = math.nan
    verdict: str = ""
    sign: int = 0  # the direction the row's test expects (+1/−1); 0: it claims none (no verdict)
    tost_p: float = math.nan  # equivalence p where the row has a margin


def holm_finite(ps) -> np.ndarray:
    """Holm over the finite p-values; NaN stays NaN."""
    ps = np.asarray(ps, float)
    out = np.full(len(ps), np.nan)
    ok = np.isfinite(ps)
    if ok.any():
        out[ok] = stats.holm(ps[ok])
    return out


def holm_rows(rows: tuple[Row, ...]) -> tuple[Row, ...]:
    """Exploratory rows that claim a direction (sign ≠ 0) and that their builder did not adjust: Holm across
    them, the family being the finding's table, and each verdict decided on its adjusted p (the TOST p
    unadjusted: equivalence is not what the family tests)."""
    idx = [i for i, r in enumerate(rows) if r.sign and np.isfinite(r.p_value) and not np.isfinite(r.p_holm)]
    out = list(rows)
    for i, p in zip(idx, holm_finite([rows[i].p_value for i in idx])):
        r = rows[i]
        out[i] = dataclasses.replace(
            r,
            p_holm=float(p),
            verdict=stats.verdict_with_equivalence(p, r.ci, r.tost_p, expected_sign=r.sign, alpha=ALPHA),
        )
    return tuple(out)


def comparison_row(
    label: str,
    c: stats.Comparison,
    scale: float,
    sign: int,
    p_holm: float = math.nan,
    margin: float = math.nan,
) -> Row:
    """An exploratory row; `margin` (scaled units) lets it say 'equivalent' like a headline."""
    p, tost = (p_holm if np.isfinite(p_holm) else c.p_value), stats.tost_p(c, margin / scale)
    return Row(
        label,
        c.diff * scale,
        (c.diff_ci[0] * scale, c.diff_ci[1] * scale),
        c.p_value,
        p_holm,
        stats.verdict_with_equivalence(p, c.diff_ci, tost, expected_sign=sign, alpha=ALPHA),
        sign,
        tost,
    )


def trend_row(label: str, t: stats.Trend, sign: int) -> Row:
    return Row(
        label,
        t.slope,
        t.slope_ci,
        t.p_value,
        math.nan,
        stats.verdict(t.p_value, t.slope_ci, expected_sign=sign, alpha=ALPHA),
        sign,
    )
