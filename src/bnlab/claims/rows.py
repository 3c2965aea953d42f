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
    """Decide the verdict of every row that claims a direction (sign ≠ 0), once: on its p Holm-adjusted
    across such rows of the table (the family), or on the adjusted p its builder gave (a family of its own,
    e.g. the other learning rates); the TOST p unadjusted: equivalence is not what the family tests."""
    idx = [i for i, r in enumerate(rows) if r.sign and np.isfinite(r.p_value) and not np.isfinite(r.p_holm)]
    out = list(rows)
    for i, p in zip(idx, holm_finite([rows[i].p_value for i in idx])):
        out[i] = dataclasses.replace(rows[i], p_holm=float(p))
    return tuple(
        dataclasses.replace(
            r,
            verdict=stats.verdict_with_equivalence(
                r.p_holm if np.isfinite(r.p_holm) else r.p_value,
                r.ci,
                r.tost_p,
                expected_sign=r.sign,
                alpha=ALPHA,
            ),
        )
        if r.sign
        else r
        for r in out
    )


def comparison_row(
    label: str,
    c: stats.Comparison,
    scale: float,
    sign: int,
    p_holm: float = math.nan,
    margin: float = math.nan,
) -> Row:
    """An exploratory row; `margin` (scaled units) lets it say 'equivalent' like a headline. Its verdict is
    decided with its family's (holm_rows)."""
    ci = (c.diff_ci[0] * scale, c.diff_ci[1] * scale)
    return Row(
        label, c.diff * scale, ci, c.p_value, p_holm, sign=sign, tost_p=stats.tost_p(c, margin / scale)
    )


def trend_row(label: str, t: stats.Trend, sign: int) -> Row:
    return Row(label, t.slope, t.slope_ci, t.p_value, sign=sign)
