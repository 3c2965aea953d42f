"""Figures from the store: curves per epoch, final accuracy and time to threshold, with 95% CIs over seeds.

Every band and error bar is the t-interval of `stats.summarize` over the seeds
of one configuration. Lines are coloured by series (norm, or norm and the
other varying fields); train is dashed, test solid.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, NullLocator

from .. import stats
from ..studydata import Config, StudyData
from .plot_style import DOMAIN, band, color, fit_axis, fit_scale, norms, save


def _panels(d: StudyData) -> list[tuple[str, list[Config]]]:
    """One panel per setting of the varying fields other than norm; norms share a panel."""
    panels: dict[str, list[Config]] = {}
    for c in d.configs:
        panels.setdefault(d.label(c, exclude=("norm",)), []).append(c)
    return list(panels.items())


def curves(d: StudyData, metric: str, path: Path) -> list[str]:
    """metric 'acc' or 'loss': train (dashed) and test (solid) per epoch, one panel per setting; returns
    notes of what could not be drawn."""
    panels = _panels(d)
    ncols = 2 if len(panels) == 4 else min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(max(3.4 * ncols + 0.8, 8.0), 3.0 * nrows + 1.2),  # wide enough for title and legend
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    notes: list[str] = []
    means = []
    for ax, (title, cfgs) in zip(axes.flat, panels):
        drawn = []
        for c in cfgs:
            for split, ls in (("train", "--"), ("test", "-")):
                mean, lo, hi = band(c.curve(f"{split}_{metric}"))
                drawn.append(mean)
                x = np.arange(1, len(mean) + 1)
                col = color(d, c.spec.norm)
                ax.plot(x, mean, ls, color=col, lw=1.6, marker="o" if split == "test" else None, ms=3)
                ax.fill_between(x, lo, hi, color=col, alpha=0.2, lw=0)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        notes += fit_axis(ax, "y", drawn, where=f"panel '{title}'")
        means += drawn
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    notes += _logit_axis(axes[0, 0], means) if metric == "acc" else fit_scale(axes[0, 0], "y", means, "log")
    scale = axes[0, 0].get_yscale()
    for ax in axes[:, 0]:
        ax.set_ylabel(
            ("accuracy (%, logit scale)" if scale == "logit" else "accuracy (fraction)")
            if metric == "acc"
            else f"cross-entropy loss (nats{', log scale' if scale == 'log' else ''})"
        )
    n = {c.spec.norm: len(c.runs) for c in d.configs}
    handles: list[Artist] = [
        Line2D([], [], color=color(d, k), lw=2, label=f"{k} (n = {v} seeds)") for k, v in n.items()
    ]
    handles += [
        Line2D([], [], color="k", ls="-", marker="o", ms=3, label="test"),
        Line2D([], [], color="k", ls="--", label="train (running mean over the epoch)"),
        Patch(color="0.6", alpha=0.4, label="95% CI over seeds"),
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=3 if ncols <= 2 else len(handles), frameon=False
    )
    what = "accuracy" if metric == "acc" else "loss"
    fig.suptitle(f"study {d.name}: train and test {what} per epoch (mean over seeds, 95% CI band)")
    save(fig, path)
    return notes


ACC_TICKS = (0.5, 0.8, 0.9, 0.95, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995, 0.998, 0.999)


def _logit_axis(ax, arrays) -> list[str]:
    """Accuracy on a logit scale (90%, 99%, 99.9% equally spaced), ticks labelled in %, where fit_axis
    allows it; returns its notes."""
    notes = fit_scale(ax, "y", arrays, "logit", where="accuracy axis")
    if ax.get_yscale() != "logit":
        return notes
    v = np.concatenate([np.ravel(a) for a in arrays])
    v = v[(v > DOMAIN["logit"][0]) & (v < DOMAIN["logit"][1])]
    lo, hi = v.min(), v.max()
    lo, hi = lo - 0.1 * lo * (1 - lo), hi + 0.3 * hi * (1 - hi)
    ax.set_ylim(lo, hi)
    ticks = [t for t in ACC_TICKS if lo <= t <= hi] or [lo, hi]
    ticks = ticks[:: max(1, len(ticks) // 7)]
    ax.set_yticks(ticks, [f"{t * 100:g}" for t in ticks])
    ax.yaxis.set_minor_locator(NullLocator())
    return notes


def _series(d: StudyData) -> tuple[list[tuple[str, str, list[tuple[float, Config]]]], list, list, str, bool]:
    """Series (label, colour, [(x, config)]) for the summary plots, with x ticks, x label and log-x flag.
    x is the batch size when it varies, else one category per setting of the other varying fields."""
    other = [f for f in d.varying if f != "norm"]
    if "batch_size" in other:
        groups: dict[str, list[Config]] = {}
        for c in d.configs:
            groups.setdefault(d.label(c, exclude=("batch_size",)), []).append(c)
        series = [
            (k, f"C{i}", [(float(c.spec.batch_size), c) for c in cs])
            for i, (k, cs) in enumerate(groups.items())
        ]
        ticks = sorted({c.spec.batch_size for c in d.configs})
        return series, ticks, [str(t) for t in ticks], "batch size (log scale)", True
    cats = list(dict.fromkeys(d.label(c, exclude=("norm",)) for c in d.configs))
    series = [
        (
            n,
            color(d, n),
            [(float(cats.index(d.label(c, exclude=("norm",)))), c) for c in d.configs if c.spec.norm == n],
        )
        for n in norms(d)
    ]
    return series, list(range(len(cats))), cats, "setting", False


def _offset(x: float, i: int, k: int, log: bool) -> float:
    o = (i - (k - 1) / 2) * 0.08
    return x * 2**o if log else x + o


def _summary_axes(
    ax,
    d: StudyData,
    values,
    ylabel: str,
    *,
    note_missing: bool = False,
    scale: float = 1.0,
    yscale: str | None = None,
    where: str = "",
) -> tuple[list, list[str]]:
    """Mean ± 95% CI per configuration (error bars), single seeds as faint dots, the y axis by fit_axis;
    returns legend handles and fit_axis's notes."""
    series, ticks, labels, xlabel, log = _series(d)
    handles = []
    drawn, drawn_x = [], []
    for i, (label, col, pts) in enumerate(series):
        xs, ms, err = [], [], []
        for x, c in pts:
            v = values(c) * scale
            drawn.append(v)
            drawn_x.append(x if np.isfinite(v).any() else np.nan)
            s = stats.summarize(v)
            xo = _offset(x, i, len(series), log)
            ax.scatter(np.full(len(v), xo), v, s=10, color=col, alpha=0.35, lw=0)
            if note_missing and np.isnan(v).any():  # at the mean, or at the bottom if no run reached it
                ax.annotate(
                    f"{s.n}/{len(v)} reached",
                    (xo, s.mean if s.n else 0.03),
                    textcoords="offset points",
                    xycoords="data" if s.n else ax.get_xaxis_transform(),
                    xytext=(6, 4) if s.n else (0, 4),
                    ha="left" if s.n else "center",
                    fontsize=8,
                    color=col,
                )
            xs.append(xo)
            ms.append(s.mean)
            err.append((s.mean - s.ci_low, s.ci_high - s.mean) if s.n > 1 else (np.nan, np.nan))
        e = np.array(err).T.reshape(2, -1)
        ax.errorbar(
            xs,
            ms,
            yerr=np.nan_to_num(e),
            color=col,
            marker="o",
            ms=5,
            capsize=4,
            lw=1.4,
            ls="-" if log else "none",
        )  # lines only along a numeric axis
        handles.append(Line2D([], [], color=col, marker="o", label=f"{label}: mean ± 95% CI"))
    notes = fit_axis(ax, "y", drawn, yscale, where=where)
    if log:
        notes += fit_scale(ax, "x", drawn_x, "log", where=where, ticks=False, base=2)
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, labels, rotation=0 if log or len(labels) < 5 else 30)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    seeds = Line2D([], [], color="0.5", marker="o", ls="", ms=3, alpha=0.5, label="single seeds")
    return handles + [seeds], notes


def final_accuracy(d: StudyData, path: Path, originals: dict | None = None) -> list[str]:
    """Final test accuracy per configuration, with the original's single runs as markers; returns notes of
    what could not be drawn."""
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    handles, notes = _summary_axes(
        ax, d, lambda c: c.finals("test_acc"), "final test accuracy (%)", scale=100, where="final accuracy"
    )
    if originals:
        for (norm, bs), vals in originals.items():
            if d.find(norm=norm, batch_size=bs) and norm in norms(d):
                ax.scatter(
                    [bs] * len(vals),
                    np.array(vals) * 100,
                    marker="*",
                    s=110,
                    color=color(d, norm),
                    edgecolor="k",
                    lw=0.6,
                    zorder=5,
                )
        handles.append(
            Line2D(
                [],
                [],
                marker="*",
                ls="",
                ms=11,
                color="0.7",
                markeredgecolor="k",
                label="original study, one Keras run (colour = norm)",
            )
        )
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_title(f"study {d.name}: final test accuracy after {d.epochs} (mean ± 95% CI over seeds)")
    save(fig, path)
    return notes


def threshold(d: StudyData, path: Path) -> list[str]:
    """Steps and training seconds until test accuracy first reaches the study's threshold; returns notes of
    what could not be drawn."""
    thr = d.threshold
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    axes[0].set_title(f"steps to {thr:.0%} test accuracy")
    axes[1].set_title(
        f"wall seconds to {thr:.0%} test accuracy"
        + ("\n(with and without BN in one stack: equal time per step)" if d.shared_timing else "")
    )
    if any(np.isfinite(c.to_threshold(thr)[0]).any() for c in d.configs):
        handles, notes = _summary_axes(
            axes[0],
            d,
            lambda c: c.to_threshold(thr)[0],
            "optimizer steps",
            note_missing=True,
            yscale="log",
            where="steps",
        )
        notes += _summary_axes(
            axes[1],
            d,
            lambda c: c.to_threshold(thr)[1],
            "training seconds per model",
            note_missing=True,
            where="seconds",
        )[1]
        axes[0].legend(handles=handles, fontsize=8, loc="best")
    else:
        notes = [f"none of the {len(d.runs)} runs reached {thr:.0%} test accuracy: no times to draw"]
        for ax in axes:
            ax.set_axis_off()
            ax.text(
                0.5,
                0.5,
                f"none of the {len(d.runs)} runs reached {thr:.0%} test accuracy",
                transform=ax.transAxes,
                ha="center",
                color="0.3",
            )
    fig.suptitle(
        f"study {d.name}: time to {thr:.0%} test accuracy (first evaluation at or above it; "
        f"runs that never reach it are counted, not averaged)"
    )
    save(fig, path)
    return notes


FIGURES = {  # name → (file, caption)
    "accuracy": (
        "accuracy_curves.png",
        "Train (dashed) and test (solid) accuracy per epoch; mean over seeds with "
        "a 95% t-interval band; one panel per setting.",
    ),
    "loss": (
        "loss_curves.png",
        "Train (dashed) and test (solid) cross-entropy loss per epoch, log scale; mean with a 95% CI band.",
    ),
    "final": (
        "final_accuracy.png",
        "Final test accuracy: mean ± 95% CI over seeds, single seeds as dots; stars "
        "mark the original study's single runs where it has one.",
    ),
    "threshold": (
        "time_to_threshold.png",
        "Optimizer steps (log scale) and training seconds until the first "
        "evaluation at or above the threshold test accuracy; mean ± 95% CI over the runs that reached it.",
    ),
}


def write_generic(
    d: StudyData, out: Path, which, originals: dict | None = None
) -> dict[str, tuple[Path, str, list[str]]]:
    """Write the generic figures named in `which` (keys of FIGURES) into `out`; name → (path, caption, notes
    of what could not be drawn)."""
    draw = {
        "accuracy": lambda p: curves(d, "acc", p),
        "loss": lambda p: curves(d, "loss", p),
        "final": lambda p: final_accuracy(d, p, originals),
        "threshold": lambda p: threshold(d, p),
    }
    paths = {}
    for k in which:
        f, cap = FIGURES[k]
        paths[k] = (out / f, cap, draw[k](out / f))
    return paths
