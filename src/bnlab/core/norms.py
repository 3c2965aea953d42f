"""Normalization layers as pure functions on stacked activations.

Every function takes `x` of shape (K, B, C) — K independent models, B samples,
C channels — and per-model affine parameters `gamma, beta` of shape (K, 1, C).
Stateful norms take their running statistics in and return the new ones; no
module holds hidden state, so K models train side by side without mixing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class BNConfig:
    """Batch-norm constants. momentum is the weight on the old running value."""

    momentum: float = 0.99
    eps: float = 1e-3
    unbiased_running_var: bool = False


def update_running(run_mean: Tensor, run_var: Tensor, mu: Tensor, var_b: Tensor, n: int, cfg: BNConfig):
    """running = m·running + (1−m)·batch; torch keeps var·n/(n−1), Keras the biased var."""
    with torch.no_grad():
        v = var_b * (n / max(n - 1, 1)) if cfg.unbiased_running_var else var_b
        return (
            run_mean * cfg.momentum + mu * (1 - cfg.momentum),
            run_var * cfg.momentum + v * (1 - cfg.momentum),
        )


def batch_norm(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    run_mean: Tensor,
    run_var: Tensor,
    *,
    training: bool,
    cfg: BNConfig,
) -> tuple[Tensor, Tensor, Tensor]:
    """Ioffe & Szegedy (2015), per model k and channel c.

    training: μ_B = mean_b x,  σ²_B = mean_b (x − μ_B)²  (biased),
              x̂ = (x − μ_B)/√(σ²_B + ε),  y = γ·x̂ + β, running stats updated.
    eval:     x̂ = (x − running_mean)/√(running_var + ε), state unchanged.
    Returns (y, new_running_mean, new_running_var), stats shaped (K, 1, C).
    """
    if not training:
        return (x - run_mean) * torch.rsqrt(run_var + cfg.eps) * gamma + beta, run_mean, run_var
    mu = x.mean(1, keepdim=True)
    xc = x - mu
    var_b = (xc * xc).mean(1, keepdim=True)
    y = xc * (torch.rsqrt(var_b + cfg.eps) * gamma) + beta
    return (y, *update_running(run_mean, run_var, mu.detach(), var_b.detach(), x.shape[1], cfg))


def ghost_batch_norm(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    run_mean: Tensor,
    run_var: Tensor,
    *,
    training: bool,
    cfg: BNConfig,
    ghost: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Hoffer et al. (2017): batch norm over virtual batches of `ghost` samples.

    The batch is cut into ⌈B/ghost⌉ consecutive chunks, each normalized with its
    own statistics; the running estimates take one momentum update per chunk,
    in order. Eval mode is plain batch norm with the running estimates.
    """
    if not training or x.shape[1] <= ghost:
        return batch_norm(x, gamma, beta, run_mean, run_var, training=training, cfg=cfg)
    outs = []
    for chunk in x.split(ghost, dim=1):
        y, run_mean, run_var = batch_norm(chunk, gamma, beta, run_mean, run_var, training=True, cfg=cfg)
        outs.append(y)
    return torch.cat(outs, 1), run_mean, run_var


def batch_renorm(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    run_mean: Tensor,
    run_var: Tensor,
    *,
    training: bool,
    cfg: BNConfig,
    rmax: float,
    dmax: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Ioffe (2017), Batch Renormalization.

    σ_B = √(σ²_B + ε), σ = √(running_var + ε),
    r = stop_grad(clip(σ_B/σ, 1/rmax, rmax)), d = stop_grad(clip((μ_B − μ)/σ, −dmax, dmax)),
    x̂ = (x − μ_B)/σ_B · r + d,  y = γ·x̂ + β. With rmax = 1, dmax = 0 it is batch norm.
    Eval mode uses the running estimates, as batch norm does.
    """
    if not training:
        return batch_norm(x, gamma, beta, run_mean, run_var, training=False, cfg=cfg)
    mu = x.mean(1, keepdim=True)
    xc = x - mu
    var_b = (xc * xc).mean(1, keepdim=True)
    sigma_b = torch.sqrt(var_b + cfg.eps)
    with torch.no_grad():
        sigma = torch.sqrt(run_var + cfg.eps)
        r = (sigma_b / sigma).clamp(1.0 / rmax, rmax)
        d = ((mu - run_mean) / sigma).clamp(-dmax, dmax)
    y = (xc / sigma_b * r + d) * gamma + beta
    return (y, *update_running(run_mean, run_var, mu.detach(), var_b.detach(), x.shape[1], cfg))


RENORM_WARMUP_TIME_CONSTANTS = (
    3  # plain BN until the running statistics' initial (0, 1) weighs m^n ≤ e⁻³ ≈ 5%
)
RENORM_START_FRACTION = 0.05  # and for at least 5% of the run (Ioffe 2017: 5k of ~130k steps)
RENORM_RAMPS = (0.30, 0.20)  # rmax 1→3 over 30% of the run, dmax 0→5 over 20% (Ioffe: 40k and 25k of ~130k)


def renorm_start(total_steps: int, momentum: float) -> int:
    """The first step at which batch renorm relaxes r and d: n₀ = max(⌈3/(1 − m)⌉, ⌈0.05·total⌉).

    r and d correct the batch statistics towards the running ones, so they are only meaningful once the
    running statistics have forgotten their initial (0, 1): after n updates the initial values still weigh
    mⁿ ≈ exp(−n(1 − m)), and n ≥ 3/(1 − m) leaves at most e⁻³ ≈ 5% (300 steps at m = 0.99, Keras; 30 at
    m = 0.9, PyTorch). Ioffe (2017) trained 5k steps as plain BN (~4% of his run); the 5% floor keeps that
    proportion on long runs. A run shorter than n₀ is plain batch norm throughout.
    """
    warm = math.ceil(RENORM_WARMUP_TIME_CONSTANTS / (1.0 - momentum) - 1e-9)
    return max(warm, math.ceil(RENORM_START_FRACTION * total_steps - 1e-9))


def renorm_limits(step: int, total_steps: int, momentum: float) -> tuple[float, float]:
    """(rmax, dmax) at `step` (0-based, the step about to be taken): Ioffe (2017)'s ramps scaled to this run.

    Plain BN (rmax = 1, dmax = 0) before n₀ = renorm_start(total_steps, momentum); then linear ramps,
    rmax = 1 + 2·clip((step − n₀)/(0.30·total), 0, 1) and dmax = 5·clip((step − n₀)/(0.20·total), 0, 1):
    rmax reaches 3 at n₀ + 30% of the run, dmax reaches 5 at n₀ + 20% (Ioffe: rmax to 3 over 40k steps,
    dmax to 5 over 25k, of ~130k). A ramp cut off by the run's end stops where it got to.
    """
    n0, total = renorm_start(total_steps, momentum), max(total_steps, 1)
    ramp = lambda frac: min(max((step - n0) / (frac * total), 0.0), 1.0)  # noqa: E731
    return 1.0 + 2.0 * ramp(RENORM_RAMPS[0]), 5.0 * ramp(RENORM_RAMPS[1])


def layer_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    """Ba et al. (2016): normalize each sample over its C channels, then γ·x̂ + β."""
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdim=True)
    return xc * torch.rsqrt(var + eps) * gamma + beta


def group_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float, group_size: int) -> Tensor:
    """Wu & He (2018): normalize each sample over groups of `group_size` consecutive channels."""
    K, B, C = x.shape
    g = x.reshape(K, B, C // group_size, group_size)
    mu = g.mean(-1, keepdim=True)
    gc = g - mu
    var = (gc * gc).mean(-1, keepdim=True)
    return (gc * torch.rsqrt(var + eps)).reshape(K, B, C) * gamma + beta


def fold_batch_norm_before(
    W: Tensor, b: Tensor, gamma: Tensor, beta: Tensor, run_mean: Tensor, run_var: Tensor, eps: float
) -> tuple[Tensor, Tensor]:
    """Fold eval-mode BN that follows a linear layer into that layer.

    BN(xW + b) = (xW + b − μ)·s + β with s = γ/√(σ² + ε), so
    W' = W·s (column scale), b' = (b − μ)·s + β. Shapes: W (K, I, O), the rest (K, 1, O).
    """
    s = gamma * torch.rsqrt(run_var + eps)
    return W * s, (b - run_mean) * s + beta


def fold_batch_norm_after(
    W: Tensor, b: Tensor, gamma: Tensor, beta: Tensor, run_mean: Tensor, run_var: Tensor, eps: float
) -> tuple[Tensor, Tensor]:
    """Fold eval-mode BN that precedes a linear layer (BN after ReLU) into that layer.

    BN(h)W + b = (h·s + t)W + b with s = γ/√(σ² + ε), t = β − μ·s, so
    W' = diag(s)·W (row scale), b' = t·W + b. Shapes: W (K, I, O), b (K, 1, O), BN terms (K, 1, I).
    """
    s = gamma * torch.rsqrt(run_var + eps)
    t = beta - run_mean * s
    return W * s.transpose(1, 2), torch.bmm(t, W) + b
