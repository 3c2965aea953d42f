"""The look shared by every figure: matplotlib defaults, resolution, colours, CI bands, log ticks."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from .. import stats
from ..outputs import write_with
from .studydata import StudyData

matplotlib.use("Agg")  # files only; pyplot picks its backend at the first figure, so this may follow it

plt.rcParams.update(
    {
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
DPI = 110


def band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% t-interval per column of [runs, T]."""
    s = [stats.summarize(values[:, t]) for t in range(values.shape[1])]
    mean, lo, hi = (np.array([getattr(x, k) for x in s]) for k in ("mean", "ci_low", "ci_high"))
    return mean, lo, hi


def log_ticks(axis) -> None:
    """Log axis ticks at 1, 2, 5 × 10^k, labelled as plain numbers."""
    axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def norms(d: StudyData) -> list[str]:
    """The study's norms, in grid order."""
    return list(dict.fromkeys(c.spec.norm for c in d.configs))


def color(d: StudyData, norm: str) -> str:
    """One colour per norm, the same in every figure of a study."""
    return f"C{norms(d).index(norm)}"


def line(ax, x, mean, lo, hi, color: str, label: str | None = None, ls: str = "-") -> None:
    """A mean line with its 95% CI band."""
    ax.plot(x, mean, ls, color=color, lw=1.5, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def save(fig, path) -> None:
    """Write `fig` as a PNG at `path` atomically, then close it."""
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    finally:
        plt.close(fig)
