"""One `StudyReport` per named study: its tables, figures and the original's numbers (its claims are
declared in `bnlab.claims`).

Every study in `bnlab.studies.STUDIES` has an entry here (tests/report/test_claims.py checks both ways); a
study file (TOML) with another name gets `GENERIC`: the generic figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..claims import seed as S
from ..studydata import StudyData
from . import depth_figures as DF
from . import study_figures as SF
from . import tables as T
from .document import Block
from .figures import FIGURES as GENERIC_FIGURES


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A study's own figure: `draw(d, path)` writes `file` and returns notes of what it could not draw;
    `caption` goes under it."""

    name: str
    file: str
    caption: str
    draw: Callable[[StudyData, Path], list[str]]


def _no_tables(d: StudyData) -> list[Block]:
    """The default `StudyReport.tables`: no blocks before the findings."""
    return []


def _no_chance_notes(se: float, sd: float) -> list[str]:
    """The default `StudyReport.chance_notes`: nothing to add to the chance section."""
    return []


@dataclass(frozen=True, kw_only=True)
class StudyReport:
    """What a study's report holds beyond the common sections (summary, reproduce, configurations, chance)."""

    tables: Callable[[StudyData], list[Block]] = _no_tables  # blocks before the findings
    figures: tuple[Figure, ...] = ()  # the study's own figures
    generic: tuple[str, ...] = tuple(GENERIC_FIGURES)  # generic figures it keeps (figures.FIGURES)
    originals: dict | None = None  # the original's runs, plotted beside ours
    chance_notes: Callable[[float, float], list[str]] = _no_chance_notes  # (se, sd of a difference)


PERCENTILES = Figure(
    name="activations",
    file="activations.png",
    caption="15th, 50th and 85th percentiles of each hidden layer's input to its nonlinearity over "
    "training, on 1000 fixed test images (Ioffe & Szegedy 2015, Figure 1 b, c).",
    draw=SF.percentile_traces,
)
NO_CURVES = ("threshold",)  # sweeps: per-epoch curves of dozens of configurations are unreadable

GENERIC = StudyReport()
REPORTS: dict[str, StudyReport] = {
    "seed": StudyReport(tables=T.original_table, originals=S.ORIGINAL, chance_notes=S.chance_lines),
    "lr": StudyReport(
        tables=T.lr_tables,
        generic=NO_CURVES,
        figures=(
            Figure(
                name="lr",
                file="lr_sweep.png",
                draw=SF.lr_sweep,
                caption="Final test accuracy vs learning rate, per optimizer; ✕ marks diverged runs "
                "(counted at chance).",
            ),
        ),
    ),
    "init": StudyReport(
        generic=("accuracy", "loss", "threshold"),
        figures=(
            Figure(
                name="init",
                file="init_sweep.png",
                caption="Final test accuracy vs initial weight scale.",
                draw=SF.init_sweep,
            ),
        ),
    ),
    "convergence": StudyReport(
        figures=(
            Figure(
                name="convergence",
                file="convergence.png",
                draw=SF.convergence_curves,
                caption="Test accuracy every evaluation vs optimizer steps (left) and training seconds "
                "(right).",
            ),
        ),
    ),
    "regularization": StudyReport(
        figures=(
            Figure(
                name="gap",
                file="gap_over_time.png",
                caption="Train − test accuracy and test loss per epoch.",
                draw=SF.gap_over_time,
            ),
        ),
    ),
    "small-batch": StudyReport(
        tables=T.small_batch_tables,
        generic=NO_CURVES,
        figures=(
            Figure(
                name="small_batch",
                file="small_batch.png",
                draw=SF.small_batch_sweep,
                caption="Final test error (log scale) vs batch size, per norm.",
            ),
        ),
    ),
    "placement": StudyReport(),
    "overhead": StudyReport(
        tables=T.overhead_tables,
        generic=(),
        figures=(
            Figure(
                name="costs",
                file="costs.png",
                draw=SF.costs,
                caption="Training time per step and inference latency, as trained and with BN folded.",
            ),
        ),
    ),
    "invariance": StudyReport(
        generic=("final", "threshold"),
        figures=(
            Figure(
                name="invariance",
                file="invariance.png",
                draw=SF.invariance_maps,
                caption="Test accuracy on a·x + b, eval-mode (running) statistics and batch statistics of "
                "the transformed test set.",
            ),
        ),
    ),
    "activations": StudyReport(figures=(PERCENTILES,)),
    "ioffe-mnist": StudyReport(figures=(PERCENTILES,)),
    "ics": StudyReport(
        figures=(
            Figure(
                name="ics",
                file="ics.png",
                caption="‖G − G'‖ and cos(G, G') per layer over training.",
                draw=SF.ics_traces,
            ),
        ),
    ),
    "smoothness": StudyReport(
        figures=(
            Figure(
                name="smoothness",
                file="smoothness.png",
                draw=SF.smoothness_traces,
                caption="Loss variation, gradient predictiveness and effective β-smoothness along the "
                "optimizer's update (multiples of the step Δw), and the curvature ‖Hg‖/‖g‖ along the "
                "gradient, over training; log axes, geometric means over seeds.",
            ),
        ),
    ),
    "noisy-bn": StudyReport(figures=(PERCENTILES,)),
    "depth": StudyReport(
        figures=(
            Figure(
                name="depth",
                file="depth_gain.png",
                draw=DF.gain_vs_depth,
                caption="BN's gain (batch − none) in final test accuracy and in test accuracy after epoch 1 "
                "against the number of hidden layers, with Welch 95% CIs; diverged runs count at chance.",
            ),
        ),
    ),
    "width": StudyReport(),
    "transfer": StudyReport(tables=T.transfer_table, generic=("final", "accuracy")),
}


def report_for(study: str) -> StudyReport:
    """The named study's StudyReport; GENERIC for a study file's own name."""
    return REPORTS.get(study, GENERIC)
