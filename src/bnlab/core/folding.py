"""Batch norm folded for inference: eval-mode BN is a fixed per-channel affine map, merged here into
the neighbouring linear layer (the preceding one for BN before the ReLU, the following one for BN after).

Like core/norms.py this module imports no torch (the folds call tensor methods only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def fold_batch_norm_before(
    W: Tensor, b: Tensor, gamma: Tensor, beta: Tensor, run_mean: Tensor, run_var: Tensor, eps: float
) -> tuple[Tensor, Tensor]:
    """Fold eval-mode BN that follows a linear layer into that layer.

    BN(xW + b) = (xW + b − μ)·s + β with s = γ/√(σ² + ε), so
    W' = W·s (column scale), b' = (b − μ)·s + β. Shapes: W (K, I, O), the rest (K, 1, O).
    """
    s = gamma * (run_var + eps).rsqrt()
    return W * s, (b - run_mean) * s + beta


def fold_batch_norm_after(
    W: Tensor, b: Tensor, gamma: Tensor, beta: Tensor, run_mean: Tensor, run_var: Tensor, eps: float
) -> tuple[Tensor, Tensor]:
    """Fold eval-mode BN that precedes a linear layer (BN after ReLU) into that layer.

    BN(h)W + b = (h·s + t)W + b with s = γ/√(σ² + ε), t = β − μ·s, so
    W' = diag(s)·W (row scale), b' = t·W + b. Shapes: W (K, I, O), b (K, 1, O), BN terms (K, 1, I).
    """
    s = gamma * (run_var + eps).rsqrt()
    t = beta - run_mean * s
    return W * s.transpose(1, 2), t.bmm(W) + b
