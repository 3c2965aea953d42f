"""Findings of the mechanism studies (activations, ioffe-mnist, ics, smoothness, noisy-bn): does BN
work by removing internal covariate shift (Ioffe & Szegedy 2015), or by smoothing the loss landscape
(Santurkar et al. 2018)? Each finding tests one sentence on the probes recorded during training.

Per run, a trace (name, layer) → values over probe steps is reduced to one number (its mean over the
probe steps after the first, or its spread), then compared across norms like any final metric.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from .. import stats
from ..studydata import Config, StudyData
from .claim import Claim
from .finding import Finding
from .findings import compare_finding, diverged_notes, finals, gain_row
from .rows import comparison_row

ICS_MARGIN = 0.01  # 1 − cos(G, G'): differences inside ±0.01 are no effect (declared before the data)
SMOOTH_MARGIN = 0.1  # log10 of a smoothness measure: within a factor of 1.26


def per_run(c: Config | None, name: str, layer: int, reduce) -> np.ndarray:
    """reduce(values over probe steps) per run of c; NaN where a run has no such trace."""
    if c is None:
        return np.array([])
    return np.array(
        [reduce(r.traces[(name, layer)][1]) if (name, layer) in r.traces else math.nan for r in c.runs]
    )


def layers(c: Config | None, name: str) -> list[int]:
    return sorted({ly for r in (c.runs if c else []) for (n, ly) in r.traces if n == name})


def _drift(v: np.ndarray) -> float:
    """How far a percentile wanders over training: max − min over the probe steps."""
    return float(np.ptp(v)) if len(v) else math.nan


def _later_mean(v: np.ndarray) -> float:
    """Mean over the probe steps after the first (the first is at initialization)."""
    return float(np.mean(v[1:])) if len(v) > 1 else math.nan


def _pair(d: StudyData, **fields) -> tuple[Config | None, Config | None]:
    """No BN, and plain BN: before the nonlinearity where the study has it (Santurkar et al.'s placement)."""
    batch = d.find(norm="batch", noise=False, placement="before", **fields) or d.find(
        norm="batch", noise=False, **fields
    )
    return d.find(norm="none", **fields), batch


def _other_placement(d: StudyData, batch: Config | None) -> Config | None:
    """Plain BN at the other placement, when the study trained both."""
    if batch is None:
        return None
    return d.find(
        norm="batch", noise=False, placement="after" if batch.spec.placement == "before" else "before"
    )


def _vs_none(none: Sequence[float] | np.ndarray, batch: Sequence[float] | np.ndarray) -> stats.Comparison:
    """Per-run values without BN against with it: batch − none (stats.compare)."""
    return stats.compare(none, batch, label_a="none", label_b="batch")


def _mean_layers(c: Config | None, name: str, reduce, ls) -> np.ndarray:
    """Per run, the mean over layers `ls` of the reduced trace."""
    if c is None or not ls:
        return np.array([])
    with warnings.catch_warnings():  # a run with no value on any layer (one probe step only) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack([per_run(c, name, ly, reduce) for ly in ls]), axis=0)


def steady_inputs(claim: Claim, d: StudyData) -> Finding:
    none, batch = _pair(d)
    ls = layers(none or batch, "act_p50")
    rows = []
    for ly in ls:
        for q in ("p15", "p50", "p85"):
            rows.append(
                comparison_row(
                    f"layer {ly + 1}, {q}: drift batch − none",
                    _vs_none(
                        per_run(none, f"act_{q}", ly, _drift),
                        per_run(batch, f"act_{q}", ly, _drift),
                    ),
                    1,
                    -1,
                )
            )
    return compare_finding(
        claim,
        "Drift of the median of each hidden layer's input to its nonlinearity over training (max − min "
        "over the probe steps, on 1000 fixed test images in eval mode), averaged over layers; batch "
        "minus none. The table gives every layer and percentile.",
        _vs_none(
            _mean_layers(none, "act_p50", _drift, ls),
            _mean_layers(batch, "act_p50", _drift, ls),
        ),
        unit="",
        scale=1,
        sign=-1,
        rows=rows,
        notes=diverged_notes(none, batch),
    )


def ioffe_accuracy(claim: Claim, d: StudyData) -> Finding:
    none, batch = _pair(d)
    return compare_finding(
        claim,
        f"Final test accuracy after {d.epochs}, batch minus none.",
        _vs_none(
            none.finals() if none else [],
            batch.finals() if batch else [],
        ),
        unit="pp",
        scale=100,
        sign=+1,
        notes=diverged_notes(none, batch),
    )


def less_covariate_shift(claim: Claim, d: StudyData) -> Finding:
    none, batch = _pair(d)
    ls = [ly for ly in layers(none or batch, "ics_cos") if ly > 0]  # layer 0: G' = G by definition

    def one_minus(v: np.ndarray) -> float:
        return 1 - _later_mean(v)

    rows = []
    for ly in ls:
        rows.append(
            comparison_row(
                f"layer {ly + 1}: ‖G − G'‖ batch − none",
                _vs_none(
                    per_run(none, "ics_l2", ly, _later_mean),
                    per_run(batch, "ics_l2", ly, _later_mean),
                ),
                1,
                -1,
            )
        )
        rows.append(
            comparison_row(
                f"layer {ly + 1}: 1 − cos(G, G') batch − none",
                _vs_none(
                    per_run(none, "ics_cos", ly, one_minus),
                    per_run(batch, "ics_cos", ly, one_minus),
                ),
                1,
                -1,
            )
        )
    other = _other_placement(d, batch)
    if other is not None:
        rows.append(
            comparison_row(
                f"BN {other.spec.placement} the ReLU: 1 − cos(G, G') batch − none",
                _vs_none(
                    _mean_layers(none, "ics_cos", one_minus, ls),
                    _mean_layers(other, "ics_cos", one_minus, ls),
                ),
                1,
                -1,
                margin=ICS_MARGIN,
            )
        )
    return compare_finding(
        claim,
        "1 − cos(G, G') between layer i's gradient before and after the layers below it take their "
        "optimizer update (same batch), mean over probe steps after initialization and over layers 2…L "
        f"(layer 1 has nothing below it); BN {batch.spec.placement if batch else 'before'} the ReLU "
        "minus none. Scale-free; the table adds ‖G − G'‖ per layer and the other placement.",
        _vs_none(
            _mean_layers(none, "ics_cos", one_minus, ls),
            _mean_layers(batch, "ics_cos", one_minus, ls),
        ),
        unit="",
        scale=1,
        sign=-1,
        rows=rows,
        margin=ICS_MARGIN,
        notes=(
            "‖G − G'‖ depends on the gradient's scale, which BN changes; the cosine does not.",
            *diverged_notes(none, batch),
        ),
    )


def smoother_landscape(claim: Claim, d: StudyData) -> Finding:
    none, batch = _pair(d)
    other = _other_placement(d, batch)

    def log_mean(v: np.ndarray) -> float:
        """Mean log10 over the probe steps after the first (the first is at initialization)."""
        return float(np.mean(np.log10(v[1:]))) if len(v) > 1 else math.nan

    def row(label, name, c):
        return comparison_row(
            f"log10 {label}: batch − none",
            _vs_none(
                per_run(none, name, -1, log_mean),
                per_run(c, name, -1, log_mean),
            ),
            1,
            -1,
            margin=SMOOTH_MARGIN,
        )

    rows = [
        row(label, name, batch)
        for label, name in (
            ("loss variation", "loss_variation"),
            ("gradient predictiveness", "grad_predictiveness"),
            ("curvature ‖Hg‖/‖g‖", "beta_hvp"),
        )
    ]
    if other is not None:
        rows.append(row(f"effective β, BN {other.spec.placement} the ReLU", "beta_smoothness", other))
    where = batch.spec.placement if batch else "before"
    return compare_finding(
        claim,
        "log10 of the effective β-smoothness max_c ‖∇L(w) − ∇L(w + c·Δw)‖ / ‖c·Δw‖ along the "
        "optimizer's actual update Δw, c ∈ {0.5, 1, 2, 4}, mean over probe steps after "
        f"initialization; BN {where} the ReLU minus none (negative: smoother with BN). The table gives "
        "the other measures side by side — loss variation and gradient predictiveness along the same "
        "steps, and the local curvature ‖Hg‖/‖g‖ (Hessian-vector product by double backprop) — and the "
        "other placement; they need not agree, and where they disagree no single one settles the claim.",
        _vs_none(
            per_run(none, "beta_smoothness", -1, log_mean),
            per_run(batch, "beta_smoothness", -1, log_mean),
        ),
        unit="",
        scale=1,
        sign=-1,
        rows=rows,
        margin=SMOOTH_MARGIN,
        notes=(
            "The mechanism Santurkar et al. prove (their Theorem 4.1): BN rescales the gradient "
            "reaching a layer's weights by γ/σ, σ the batch standard deviation of that layer's "
            "pre-normalization output, and removes its component along the activations' mean and "
            "direction; where σ is large and γ moderate this bounds the loss's Lipschitz constant and "
            "β-smoothness below the unnormalized net's. Whether that happens here is what the numbers "
            "above say.",
            f"Margin ±{SMOOTH_MARGIN} in log10 (a factor of {10**SMOOTH_MARGIN:.2f}), declared before "
            "the data.",
            *diverged_notes(none, batch),
        ),
    )


def noise_costs_benefit(claim: Claim, d: StudyData) -> Finding:
    none, batch = _pair(d)
    noisy = d.find(norm="batch", noise=True)
    ls = layers(batch or noisy, "act_p50")
    return compare_finding(
        claim,
        f"Final test accuracy after {d.epochs}: noisy BN minus BN (the claim predicts negative). The "
        "table compares both with no BN, and the drift of the layers' median input measured in training "
        "mode with the noise on (each sample gets its own shift and scale, drawn around a mean and "
        "variance redrawn every step).",
        stats.compare(finals(batch), finals(noisy), label_a="batch", label_b="noisy BN"),
        unit="pp",
        scale=100,
        sign=-1,
        rows=[
            gain_row("BN − none (pp)", none, batch, "none", "batch"),
            gain_row("noisy BN − none (pp)", none, noisy, "none", "noisy"),
            comparison_row(
                "median-input drift in training mode (noise on): noisy BN − BN",
                stats.compare(
                    _mean_layers(batch, "act_train_p50", _drift, ls),
                    _mean_layers(noisy, "act_train_p50", _drift, ls),
                    label_a="batch",
                    label_b="noisy",
                ),
                1,
                +1,
            ),
        ],
        notes=diverged_notes(none, batch, noisy),
    )


STEADY_INPUTS = Claim(
    key="act",
    title="BN keeps each layer's input distribution steady",
    quote='The original: BN "reduces internal covariate shift", the change in the distribution of layer '
    "inputs during training (Ioffe & Szegedy 2015, Figure 1 b, c).",
    test=steady_inputs,
)
ACTIVATIONS = (STEADY_INPUTS,)
IOFFE = (
    STEADY_INPUTS,
    Claim(
        key="acc",
        title="BN trains the BN paper's MNIST net to higher test accuracy",
        quote="Ioffe & Szegedy (2015), Figure 1 a: with BN the test accuracy is higher and rises faster.",
        test=ioffe_accuracy,
    ),
)
ICS = (
    Claim(
        key="ics",
        title="BN reduces internal covariate shift",
        quote='The original: BN works by "reducing internal covariate shift". Santurkar et al. (2018) '
        "measured ICS as the change of a layer's gradient when the layers before it update, and found "
        "BN does not reduce it.",
        test=less_covariate_shift,
    ),
)
SMOOTHNESS = (
    Claim(
        key="smooth",
        title="BN makes the loss landscape smoother",
        quote="Santurkar et al. (2018): BN's benefit comes from a smoother loss landscape — smaller loss "
        "variation, more predictive gradients, a smaller effective β-smoothness along the step.",
        test=smoother_landscape,
    ),
)
NOISY = (
    Claim(
        key="noisy",
        title="Adding covariate shift after BN costs BN its benefit",
        quote="If BN helped by removing internal covariate shift, BN followed by random, time-varying, "
        "non-zero-mean, non-unit-variance noise (Santurkar et al. 2018, §2.1) should train worse than "
        "plain BN; Santurkar et al. found it trains as well.",
        test=noise_costs_benefit,
    ),
)
