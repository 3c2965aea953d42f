"""The look shared by every figure: matplotlib defaults, resolution, colours, CI bands, log ticks, and
`fit_axis`, the one rule for values a scale cannot show (NaN, infinite, ≤ 0 on a log axis)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from .. import stats
from ..outputs import write_with
from ..studydata import StudyData

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


DOMAIN = {"log": (0.0, np.inf, "> 0"), "logit": (0.0, 1.0, "in (0, 1)")}  # open intervals a scale shows


def _finite(arrays) -> np.ndarray:
    v = np.concatenate([np.ravel(np.asarray(a, float)) for a in arrays]) if len(arrays) else np.array([])
    return v[np.isfinite(v)]


def fit_axis(
    ax, axis: str, arrays, scale: str | None = None, *, where: str = "", ticks: bool = True, **kw
) -> list[str]:
    """The rule for every plotted axis: a panel whose `arrays` hold no finite value says so in its middle;
    else `fit_scale`. Returns notes of what could not be drawn, each led by `where`."""
    if not len(_finite(arrays)):
        ax.text(
            0.5,
            0.5,
            "no finite values to draw\n(all NaN, infinite or empty)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=11,
            color="0.25",
            bbox={"boxstyle": "round", "fc": "0.95", "ec": "0.7"},
        )
        ax.tick_params(labelleft=False, labelbottom=False)  # ticks of no data mean nothing
        return [f"{where + ': ' if where else ''}no finite values (all NaN, infinite or empty)"]
    return fit_scale(ax, axis, arrays, scale, where=where, ticks=ticks, **kw)


def fit_scale(
    ax, axis: str, arrays, scale: str | None, *, where: str = "", ticks: bool = True, **kw
) -> list[str]:
    """Put `ax`'s `axis` ("x" or "y") on `scale` ("log", "logit"; None: leave it; kw to set_yscale) only if
    some finite value of `arrays` lies in its domain, else leave it linear; `ticks`: log_ticks on a log
    axis. Silent without finite values (fit_axis marks such a panel). Returns notes, led by `where`."""
    v = _finite(arrays)
    if scale is None or not len(v):
        return []
    lead = f"{where}: " if where else ""
    lo, hi, text = DOMAIN[scale]
    out = int(((v <= lo) | (v >= hi)).sum())
    if out == len(v):
        return [f"{lead}none of its {out} finite values is {text}: linear axis instead of {scale}"]
    getattr(ax, f"set_{axis}scale")(scale, **kw)
    if scale == "log" and ticks:
        log_ticks(getattr(ax, f"{axis}axis"))
    return [f"{lead}{out} of {len(v)} finite values not {text}, left off the {scale} axis"] if out else []


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
