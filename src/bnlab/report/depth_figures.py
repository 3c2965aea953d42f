"""The depth study's own figure: BN's gain (batch − none) against depth, with 95% CIs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import stats
from ..claims.depth import bn_pairs, epoch1_acc
from ..studydata import StudyData, acc_or_chance
from .plot_style import fit_axis, save


def gain_vs_depth(d: StudyData, path: Path) -> list[str]:
    """Two panels, final accuracy and accuracy after epoch 1: BN − none per depth (Welch difference of means
    and its 95% CI; diverged runs at chance), on a log2 depth axis; BN before the ReLU, where the study has
    it, a second series just right of its depth."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    notes: list[str] = []
    for ax, values, title in (
        (axes[0], acc_or_chance, "final test accuracy"),
        (axes[1], epoch1_acc, "test accuracy after epoch 1"),
    ):
        xs: list[int] = []
        drawn: list[np.ndarray] = []
        for placement, col, off in (("after", "C1", 0.0), ("before", "C2", 0.06)):
            pairs = bn_pairs(d, placement)
            if not pairs:
                continue
            cs = {
                L: stats.compare(values(a), values(b), label_a="none", label_b="batch")
                for L, (a, b) in pairs.items()
            }
            L = sorted(cs)
            m = np.array([cs[k].diff for k in L]) * 100
            low, high = (np.array([cs[k].diff_ci[i] for k in L]) * 100 for i in (0, 1))
            ax.errorbar(
                np.log2(L) + off,
                m,
                yerr=[m - low, high - m],
                fmt="o-",
                color=col,
                capsize=4,
                label=f"BN {placement} the ReLU − none",
            )
            xs = sorted(set(xs) | set(L))
            drawn += [m, low, high]
        notes += fit_axis(ax, "y", drawn, where=title)
        ax.axhline(0, color="0.5", lw=1, ls=":")
        ax.set_xticks(np.log2(xs), [str(x) for x in xs])  # log2 positions on a linear axis: never empty
        ax.set_xlabel("hidden layers (log scale)")
        ax.set_ylabel(f"BN's gain in {title} (pp)")
        ax.set_title(f"{title}: batch − none, 95% CI")
        if len(ax.containers) > 1:
            ax.legend(loc="best", fontsize=8)
    save(fig, path)
    return notes
