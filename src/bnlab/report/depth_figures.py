"""The depth study's own figure: BN's gain (batch − none) against depth, with 95% CIs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import stats
from ..claims.depth import depth_of, epoch1_acc
from ..studydata import StudyData, acc_or_chance
from .plot_style import fit_axis, save


def gain_vs_depth(d: StudyData, path: Path) -> list[str]:
    """Two panels, final accuracy and accuracy after epoch 1: BN − none per depth (Welch difference of means
    and its 95% CI; diverged runs at chance), on a log2 depth axis."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    notes: list[str] = []
    for ax, values, title in (
        (axes[0], acc_or_chance, "final test accuracy"),
        (axes[1], epoch1_acc, "test accuracy after epoch 1"),
    ):
        xs, ms, lo, hi = [], [], [], []
        for b in sorted((c for c in d.configs if c.spec.norm == "batch"), key=depth_of):
            a = d.find(norm="none", hidden=b.spec.hidden)
            if a is None:
                continue
            c = stats.compare(values(a), values(b), label_a="none", label_b="batch")
            xs.append(depth_of(b))
            ms.append(c.diff * 100)
            lo.append(c.diff_ci[0] * 100)
            hi.append(c.diff_ci[1] * 100)
        m, low, high = np.array(ms), np.array(lo), np.array(hi)
        if len(xs):
            ax.errorbar(
                np.log2(xs),
                m,
                yerr=[m - low, high - m],
                fmt="o-",
                color="C1",
                capsize=4,
                label="batch − none",
            )
        ax.axhline(0, color="0.5", lw=1, ls=":")
        ax.set_xticks(np.log2(xs), [str(x) for x in xs])  # log2 positions on a linear axis: never empty
        ax.set_xlabel("hidden layers (log scale)")
        ax.set_ylabel(f"BN's gain in {title} (pp)")
        ax.set_title(f"{title}: batch − none, 95% CI")
        notes += fit_axis(ax, "y", [m, low, high], where=title)
    save(fig, path)
    return notes
