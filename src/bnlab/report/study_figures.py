"""Figures of the claim studies: sweeps over a numeric field, convergence in steps and seconds,
the train–test gap over time, costs, and invariance maps. Means with 95% t-intervals over seeds.

`FIGURES[study]` lists (file, caption, function); `SKIP_GENERIC[study]` names the generic figures
(bnlab.figures) that a study's grid makes unreadable (e.g. 18 panels of 3-epoch curves).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from .. import stats
from ..records import SCALES, SHIFTS
from ..studydata import StudyData, acc_or_chance, final_probe, per_step_ms
from .plot_style import band, color, fit_axis, fit_scale, line, save


def _sweep(
    d: StudyData, field: str, path: Path, xlabel: str, panel: str | None = None, error: bool = False
) -> list[str]:
    """Final test accuracy (or error) vs a numeric field on a log axis; one line per norm (and placement),
    one panel per value of `panel`; seeds as dots, diverged runs as ✕ at chance. Returns fit_axis's notes."""
    panels = sorted({getattr(c.spec, panel) for c in d.configs}) if panel else [None]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(max(5.6 * len(panels), 9), 4.8),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    lines = list(
        dict.fromkeys((c.spec.norm, c.spec.placement if c.spec.norm != "none" else "") for c in d.configs)
    )
    notes: list[str] = []
    ys: list[np.ndarray] = []
    for ax, pv in zip(axes[0], panels):
        xs_panel, ys_panel = [], []
        for i, (norm, pl) in enumerate(lines):
            cs = sorted(
                [
                    c
                    for c in d.configs
                    if c.spec.norm == norm
                    and (not pl or c.spec.placement == pl)
                    and (panel is None or getattr(c.spec, panel) == pv)
                ],
                key=lambda c: getattr(c.spec, field),
            )
            col = f"C{i}"
            xs, ms, lo, hi = [], [], [], []
            for c in cs:
                x = getattr(c.spec, field)
                v = acc_or_chance(c) * 100
                v = 100 - v if error else v
                xs_panel.append(x if np.isfinite(v).any() else np.nan)  # the log x axis: drawn points only
                ys_panel.append(v)
                s = stats.summarize(v)
                xs.append(x)
                ms.append(s.mean)
                lo.append(s.mean - s.ci_low if np.isfinite(s.ci_low) else 0)
                hi.append(s.ci_high - s.mean if np.isfinite(s.ci_high) else 0)
                ok = np.array([r.diverged_epoch is None for r in c.runs])
                ax.scatter(np.full(ok.sum(), x), v[ok], s=10, color=col, alpha=0.35, lw=0)
                if (~ok).any():
                    ax.scatter([x], [v[~ok][0]], marker="x", s=60, color=col, lw=2, zorder=5)
                    ax.annotate(
                        f"{(~ok).sum()}/{len(ok)}",
                        (x, v[~ok][0]),
                        textcoords="offset points",
                        xytext=(4, 4),
                        fontsize=7,
                        color=col,
                    )
            ax.errorbar(
                xs,
                ms,
                yerr=[lo, hi],
                color=col,
                marker="o",
                ms=4,
                capsize=3,
                lw=1.4,
                label=f"{norm}{' ' + pl if pl and len({p for n, p in lines if n == norm}) > 1 else ''}",
            )
        where = f"{panel} = {pv}" if panel else "sweep"
        notes += fit_axis(ax, "y", ys_panel, where=where) + fit_scale(ax, "x", xs_panel, "log", ticks=False)
        ys += ys_panel
        if field == "batch_size":
            ax.set_xticks(sorted({c.spec.batch_size for c in d.configs}), minor=False)
            ax.xaxis.set_major_formatter("{x:g}")
            ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlabel(xlabel)
        if panel:
            ax.set_title(f"{panel} = {pv}")
    axes[0, 0].set_ylabel("final test error (%)" if error else "final test accuracy (%)")
    if error:
        notes += fit_scale(axes[0, 0], "y", ys, "log", where="error axis")
    else:  # from just below the lowest seed to 100%: a sweep that never fails is not squashed to the top
        v = np.concatenate(ys) if ys else np.array([])
        v = v[np.isfinite(v)]
        axes[0, 0].set_ylim(max(0.0, v.min() - 3) if len(v) else 0.0, 100)
    handles, _ = axes[0, 0].get_legend_handles_labels()
    handles += [Line2D([], [], color="0.4", marker="x", ls="", ms=7, label="diverged (n/seeds), at chance")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(
        f"study {d.name}: final test {'error' if error else 'accuracy'} after {d.epochs} "
        "(mean ± 95% CI over seeds; dots = single seeds)"
    )
    save(fig, path)
    return notes


def lr_sweep(d: StudyData, path: Path) -> list[str]:
    return _sweep(d, "lr", path, "learning rate (log scale)", panel="optimizer")


def init_sweep(d: StudyData, path: Path) -> list[str]:
    return _sweep(d, "init_scale", path, "initial weight scale × Glorot-uniform (log scale)")


def small_batch_sweep(d: StudyData, path: Path) -> list[str]:
    return _sweep(d, "batch_size", path, "batch size (log scale)", error=True)


def convergence_curves(d: StudyData, path: Path) -> list[str]:
    """Test accuracy at every evaluation vs steps and vs training seconds (Ioffe & Szegedy, Figure 1a)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True, layout="constrained")
    means = []
    for c in d.configs:
        steps = np.unique(np.concatenate([np.concatenate([r.evals["step"], r.m["steps"]]) for r in c.runs]))
        acc = np.full((len(c.runs), len(steps)), np.nan)
        wall = np.full_like(acc, np.nan)
        for i, r in enumerate(c.runs):
            s = np.concatenate([r.evals["step"], r.m["steps"]])
            idx = np.searchsorted(steps, s)
            acc[i, idx] = np.concatenate([r.evals["test_acc"], r.m["test_acc"]]) * 100
            wall[i, idx] = np.concatenate([r.evals["wall_s"], r.m["wall_s"]])
        mean, lo, hi = band(acc)
        means.append(mean)
        col = color(d, c.spec.norm)
        for ax, x in ((axes[0], steps), (axes[1], stats.nan_mean(wall, 0))):
            line(ax, x, mean, lo, hi, col, f"{c.spec.norm} (n = {len(c.runs)})")
    for ax, lab in zip(axes, ("optimizer steps", "training seconds per model (evaluation excluded)")):
        for thr in (97, 98):
            ax.axhline(thr, color="0.5", ls=":", lw=1)
        ax.set_xlabel(lab)
    axes[0].set_ylabel("test accuracy (%)")
    notes = [n for ax, w in zip(axes, ("vs steps", "vs seconds")) for n in fit_axis(ax, "y", means, where=w)]
    tail = np.concatenate(
        [r.evals["test_acc"][len(r.evals["test_acc"]) // 10 :] * 100 for r in d.runs] + [[]]
    )
    tail = tail[np.isfinite(tail)]
    if len(tail):  # from just below the lowest late evaluation, but no lower than 80% unless all are
        axes[0].set_ylim(tail.min() - 0.5 if tail.max() <= 80 else max(tail.min() - 0.5, 80), 99)
    axes[0].legend()
    fig.suptitle(f"study {d.name}: test accuracy during training (mean, 95% CI band; dotted: 97% and 98%)")
    save(fig, path)
    return notes


def gap_over_time(d: StudyData, path: Path) -> list[str]:
    """Train − test accuracy and test loss per epoch; returns fit_axis's notes."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    drawn: tuple[list, list] = ([], [])
    for c in d.configs:
        col = color(d, c.spec.norm)
        x = np.arange(1, c.spec.epochs + 1)
        for j, v in enumerate(((c.curve("train_acc") - c.curve("test_acc")) * 100, c.curve("test_loss"))):
            b = band(v)
            drawn[j].append(b[0])
            line(axes[j], x, *b, col, f"{c.spec.norm} (n = {len(c.runs)})")
    axes[0].axhline(0, color="0.5", lw=0.8)
    axes[0].set_ylabel("train − test accuracy (pp)")
    axes[1].set_ylabel("test loss (nats)")
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[0].legend()
    fig.suptitle(f"study {d.name}: generalization gap and test loss over {d.epochs} (mean, 95% CI band)")
    notes = fit_axis(axes[0], "y", drawn[0], where="gap") + fit_axis(
        axes[1], "y", drawn[1], where="test loss"
    )
    save(fig, path)
    return notes


def costs(d: StudyData, path: Path) -> list[str]:
    """Training ms per step, and inference latency at batch 1 and 1000 with and without folding; returns
    fit_axis's notes."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), layout="constrained")
    labels = [_config_label(d, c) for c in d.configs]
    x = np.arange(len(d.configs))
    panels: tuple[tuple[str, list[tuple[np.ndarray, np.ndarray | None]]], ...] = (
        ("training: ms per step (batch 32)", [(per_step_ms(c), None) for c in d.configs]),
        (
            "inference at batch 1: µs",
            [(final_probe(c, "latency_b1_us"), final_probe(c, "latency_b1_folded_us")) for c in d.configs],
        ),
        (
            "inference at batch 1000: µs",
            [
                (final_probe(c, "latency_b1000_us"), final_probe(c, "latency_b1000_folded_us"))
                for c in d.configs
            ],
        ),
    )
    notes: list[str] = []
    for ax, (title, vals) in zip(axes, panels):
        notes += fit_axis(ax, "y", [v for a, f in vals for v in (a, f) if v is not None], where=title)
        for j, (a, f) in enumerate(vals):
            for off, v, hatch, lab in (
                (-0.2 if f is not None else 0, a, "", "as trained"),
                (0.2, f, "//", "BN folded"),
            ):
                if v is None:
                    continue
                s = stats.summarize(v)
                ax.bar(
                    j + off,
                    s.mean,
                    width=0.38 if f is not None else 0.6,
                    color=f"C{j}",
                    hatch=hatch,
                    alpha=0.85,
                    yerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]] if s.n > 1 else None,
                    capsize=3,
                    label=lab if j == 0 else None,
                )
        ax.set_xticks(x, labels, rotation=15)
        ax.set_title(title)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"study {d.name}: what BN costs (mean ± 95% CI over models; hatched: BN folded into Linear)")
    save(fig, path)
    return notes


def invariance_maps(d: StudyData, path: Path) -> list[str]:
    """Mean test accuracy on a·x + b per configuration, eval statistics (top) and batch statistics
    (bottom); returns fit_axis's notes."""
    fig, axes = plt.subplots(
        2, len(d.configs), figsize=(3.6 * len(d.configs) + 1, 6.4), squeeze=False, layout="constrained"
    )
    im = None
    notes: list[str] = []
    for j, c in enumerate(d.configs):
        for i, mode in enumerate(("eval", "batch")):
            grid = np.array(
                [
                    [stats.nan_mean(final_probe(c, f"inv:{mode}:a={a:g}:b={b:g}")) * 100 for a in SCALES]
                    for b in SHIFTS
                ]
            )
            ax = axes[i, j]
            notes += fit_axis(ax, "y", [grid], where=f"{_config_label(d, c)}, {mode} statistics")
            im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto", origin="lower")
            for (bi, ai), v in np.ndenumerate(grid):
                ax.text(
                    ai,
                    bi,
                    f"{v:.0f}" if np.isfinite(v) else "—",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="w" if v < 60 else "k",
                )
            ax.set_xticks(range(len(SCALES)), [f"{a:g}" for a in SCALES])
            ax.set_yticks(range(len(SHIFTS)), [f"{b:g}" for b in SHIFTS])
            ax.grid(False)
            ax.set_title(f"{_config_label(d, c)}\n{mode} statistics", fontsize=9)
            ax.set_xlabel("scale a")
            if j == 0:
                ax.set_ylabel("shift b")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="test accuracy (%)")
    fig.suptitle(f"study {d.name}: accuracy on a·x + b (trained on x in [0, 1]; mean over seeds)")
    save(fig, path)
    return notes


def _trace_band(
    c, name: str, layer: int, log: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Probe steps and the mean and 95% CI over seeds of one trace (runs aligned on their common steps);
    log: the geometric mean and the t-interval of the mean log, back-transformed (a positive quantity on a log
    axis: the arithmetic interval of 3 seeds dips below 0 and fills the axis)."""
    rs = [r.traces[(name, layer)] for r in c.runs if (name, layer) in r.traces]
    if not rs:
        return None
    T = min(len(s) for s, _ in rs)
    v = np.stack([v[:T] for _, v in rs])
    if not log:
        return (rs[0][0][:T], *band(v))
    with np.errstate(divide="ignore", invalid="ignore"):
        m, lo, hi = band(np.log(np.where(v > 0, v, np.nan)))
    return (rs[0][0][:T], np.exp(m), np.exp(lo), np.exp(hi))


def _config_label(d: StudyData, c) -> str:
    """'batch before', 'batch + noise', 'none' (a model without a norm has no placement)."""
    if c.spec.norm == "none":
        return "none"
    return (
        d.label(c)
        .replace(", placement ", " ")
        .replace(", noise True", " + noise")
        .replace(", noise False", "")
    )


def percentile_traces(d: StudyData, path: Path) -> list[str]:
    """Ioffe & Szegedy, Figure 1 b, c: 15th/50th/85th percentiles of each layer's input to its
    nonlinearity; returns fit_axis's notes."""
    L = max((ly for r in d.runs for (n, ly) in r.traces if n == "act_p50"), default=0) + 1
    fig, axes = plt.subplots(
        len(d.configs),
        L,
        figsize=(3.6 * L + 1, 2.6 * len(d.configs) + 0.8),
        squeeze=False,
        sharex=True,
        sharey="col",
        layout="constrained",
    )
    notes: list[str] = []
    for i, c in enumerate(d.configs):
        for ly in range(L):
            ax = axes[i, ly]
            drawn = []
            for q, ls in (("p15", "--"), ("p50", "-"), ("p85", "--")):
                b = _trace_band(c, f"act_{q}", ly)
                if b:
                    line(ax, *b, f"C{i}", ls=ls)
                    drawn.append(b[1])
            ax.set_title(f"{_config_label(d, c)}: layer {ly + 1}", fontsize=9)
            notes += fit_axis(ax, "y", drawn, where=f"{_config_label(d, c)}, layer {ly + 1}")
            if i == len(d.configs) - 1:
                ax.set_xlabel("step")
    fig.suptitle(
        f"study {d.name}: input to each layer's nonlinearity over training\n15th / 50th (solid) / 85th "
        "percentiles on 1000 test images; mean over seeds, 95% CI band"
    )
    save(fig, path)
    return notes


def _trace_panels(
    d: StudyData, path: Path, panels: list[tuple[str, int, str, bool]], title: str
) -> list[str]:
    """One panel per (name, layer, ylabel, log): the trace per configuration vs step; returns fit_axis's
    notes."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels) + 0.5, 4.0), squeeze=False, layout="constrained"
    )
    notes: list[str] = []
    for ax, (name, layer, ylabel, log) in zip(axes[0], panels):
        drawn = []
        for i, c in enumerate(d.configs):
            b = _trace_band(c, name, layer, log)
            if b:
                line(ax, *b, f"C{i}", _config_label(d, c))
                drawn.append(b[1])
        ax.set_ylabel(ylabel)
        ax.set_xlabel("step")
        notes += fit_axis(ax, "y", drawn, "log" if log else None, where=ylabel, ticks=False)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)
    return notes


def ics_traces(d: StudyData, path: Path) -> list[str]:
    L = max((ly for r in d.runs for (n, ly) in r.traces if n == "ics_l2"), default=1) + 1  # ≥ 1 panel each
    panels = [("ics_l2", ly, f"layer {ly + 1}: ‖G − G'‖", True) for ly in range(1, L)]
    panels += [("ics_cos", ly, f"layer {ly + 1}: cos(G, G')", False) for ly in range(1, L)]
    return _trace_panels(
        d,
        path,
        panels,
        f"study {d.name}: internal covariate shift (Santurkar et al. Def. 2.1) over "
        "training\nmean over seeds (log axes: geometric mean), 95% CI band",
    )


def smoothness_traces(d: StudyData, path: Path) -> list[str]:
    return _trace_panels(
        d,
        path,
        [
            ("loss_variation", -1, "loss variation (nats)", True),
            ("grad_predictiveness", -1, "gradient predictiveness ‖Δ∇L‖", True),
            ("beta_smoothness", -1, "effective β-smoothness", True),
            ("beta_hvp", -1, "curvature ‖Hg‖ / ‖g‖", True),
        ],
        f"study {d.name}: loss landscape along the optimizer's update (Santurkar et al. Fig. 4 style) and "
        "the curvature along the gradient\ngeometric mean over seeds, 95% CI band",
    )
