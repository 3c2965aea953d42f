"""The norms: one registry, `NORMS`, name → `Norm`, and every fact bnlab keeps about a norm.

Each entry holds its forward as a pure function on stacked activations: `x` (K, B, C) for K
independent models, B samples, C channels, affine parameters `gamma, beta` (K, 1, C), the running
statistics `state` = (mean, var), each (K, 1, C), in (None for a norm without) and the new ones out;
no module holds hidden state, so K models train side by side without mixing. An entry with a
hand-written `backward` trains by the fast step (core/backprop.py), the others by autograd; both run
this one forward. tests/core/test_norm_registry.py checks every entry against what it declares.

This module imports no torch (the kernels call tensor methods only), so `bnlab.limits`, `config`
and `studies` read the registry where torch is not installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import Tensor

State = tuple["Tensor", "Tensor"] | None  # (running mean, running var), each (K, 1, C)
Saved = Any  # what a forward keeps for its hand-written backward; (x̂, ...) with x̂ (K, B, C) first


@dataclass(frozen=True)
class BNConfig:
    """Batch-norm constants. momentum is the weight on the old running value."""

    momentum: float = 0.99
    eps: float = 1e-3
    unbiased_running_var: bool = False


@dataclass(frozen=True)
class NormArgs:
    """What a forward reads besides its input, parameters and state (one stack's, one step's)."""

    bn: BNConfig
    group_size: int = 1  # group norm's channels per group
    ghost: int = 1  # ghost batch norm's virtual batch
    rmax: float = 1.0  # batch renorm's limits at this step (renorm_limits)
    dmax: float = 0.0


class Forward(Protocol):
    def __call__(
        self,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        state: State,
        args: NormArgs,
        *,
        training: bool,
        keep: bool = False,
    ) -> tuple[Tensor, State, Saved]: ...


# (∂L/∂y, γ, saved, args) → (∂L/∂x, ∂γ, ∂β); ∂γ, ∂β summed over the batch, (K, 1, C)
Backward = Callable[["Tensor", "Tensor", Saved, NormArgs], tuple["Tensor", "Tensor", "Tensor"]]


@dataclass(frozen=True)
class Norm:
    """One norm and its facts; the registry below is the only place a norm's name decides anything."""

    name: str
    forward: Forward  # (y, new state, saved); eval mode returns the state unchanged and saves nothing;
    # keep=True (the fast step) saves what `backward` reads, and may round the affine step differently
    backward: Backward | None = None  # the fast step's hand-written backward; None: autograd trains it
    identity: bool = False  # no normalization, no γ, β (norm 'none')
    running_stats: bool = False  # keeps a running mean and variance, read in eval mode (and precise_bn)
    min_batch: int = 1  # the smallest batch_size it trains on: 2 for norms over the batch
    folds: bool = False  # eval mode folds into the neighbouring linear layer (final probe 'inference')
    scheduled: bool = False  # reads per-step limits (rmax, dmax, renorm_limits) from the training loop
    grouped: bool = False  # reads group_size, which must divide every hidden width

    @property
    def needs_batch(self) -> bool:
        """Whether a sample's output depends on the other samples of its training batch."""
        return self.min_batch > 1


def update_running(run_mean: Tensor, run_var: Tensor, mu: Tensor, var_b: Tensor, n: int, cfg: BNConfig):
    """running = m·running + (1−m)·batch; torch keeps var·n/(n−1), Keras the biased var."""
    mu, var_b = mu.detach(), var_b.detach()
    v = var_b * (n / max(n - 1, 1)) if cfg.unbiased_running_var else var_b
    return (
        run_mean * cfg.momentum + mu * (1 - cfg.momentum),
        run_var * cfg.momentum + v * (1 - cfg.momentum),
    )


def _center(v: Tensor, dim: int, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(v − μ, μ, σ², r), r = 1/√(σ² + ε), with μ, σ² (biased) over `dim`. (torch.var_mean over a middle
    dim is ~10x slower than these four ops on CPU.)"""
    mu = v.mean(dim, keepdim=True)
    xc = v - mu
    var = (xc * xc).mean(dim, keepdim=True)  # not square(): its gradient rounds differently
    return xc, mu, var, (var + eps).rsqrt()


def _whiten(v: Tensor, dim: int, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x̂, μ, σ², r): x̂ = (v − μ)·r (in place where autograd does not need v − μ)."""
    xc, mu, var, r = _center(v, dim, eps)
    return _scaled(xc, r), mu, var, r


def _scaled(xc: Tensor, r: Tensor) -> Tensor:
    return xc * r if xc.requires_grad else xc.mul_(r)


def _whiten_back(dg: Tensor, xh: Tensor, r: Tensor, dim: int) -> Tensor:
    """r (ĝ − mean(ĝ) − x̂ mean(ĝ x̂)), means over `dim`, in two passes over the big tensors (plus the
    means)."""
    m1 = dg.mean(dim, keepdim=True)
    m2 = (dg * xh).mean(dim, keepdim=True)
    return (-m1 * r).addcmul(dg, r).addcmul_(xh, -m2 * r)


def _affine_grads(dout: Tensor, xhat: Tensor) -> tuple[Tensor, Tensor]:
    """(∂γ, ∂β) = (Σ_b g·x̂, Σ_b g) of y = γ x̂ + β."""
    return (dout * xhat).sum(1, keepdim=True), dout.sum(1, keepdim=True)


def _cat1(parts: list[Tensor]) -> Tensor:
    """torch.cat(parts, 1) by tensor methods (this module imports no torch)."""
    if len(parts) == 1:
        return parts[0]
    K, _, C = parts[0].shape
    out = parts[0].new_empty(K, sum(t.shape[1] for t in parts), C)
    at = 0
    for t in parts:
        out[:, at : at + t.shape[1]] = t
        at += t.shape[1]
    return out


def _none(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    state: State,
    args: NormArgs,
    *,
    training: bool,
    keep: bool = False,
):
    return x, state, None


def _none_back(dout: Tensor, gamma: Tensor, saved: Saved, args: NormArgs):
    return dout, gamma.new_zeros(gamma.shape), gamma.new_zeros(gamma.shape)


def _batch_eval(x: Tensor, gamma: Tensor, beta: Tensor, state: State, eps: float):
    """x̂ = (x − running_mean)/√(running_var + ε), y = γ·x̂ + β; the state unchanged."""
    assert state is not None
    mean, var = state
    return (x - mean) * (var + eps).rsqrt() * gamma + beta, state, None


def batch(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    state: State,
    args: NormArgs,
    *,
    training: bool,
    keep: bool = False,
):
    """Ioffe & Szegedy (2015), per model k and channel c. Training: μ_B = mean_b x, σ²_B = mean_b (x − μ_B)²
    (biased), x̂ = (x − μ_B)/√(σ²_B + ε), y = γ·x̂ + β, running statistics updated."""
    if not training:
        return _batch_eval(x, gamma, beta, state, args.bn.eps)
    assert state is not None
    xc, mu, var, r = _center(x, 1, args.bn.eps)
    new = update_running(*state, mu, var, x.shape[1], args.bn)
    if not keep:  # x̂ not kept: y = (x − μ_B)·(rγ) + β
        return xc * (r * gamma) + beta, new, None
    xhat = _scaled(xc, r)  # the fast step's spelling: x̂ kept for the backward, y = β + x̂γ in one fused op
    return beta.addcmul(xhat, gamma), new, (xhat, r)


def _batch_back(dout: Tensor, gamma: Tensor, saved: Saved, args: NormArgs):
    """γ constant over the batch: ∂x = γ r (g − ∂β/B − x̂ ∂γ/B)."""
    xhat, r = saved
    B = dout.shape[1]
    dgamma, dbeta = _affine_grads(dout, xhat)
    gr = gamma * r  # (K, 1, C)
    dx = (gr * dbeta * (-1 / B)).addcmul(dout, gr).addcmul_(xhat, gr * dgamma * (-1 / B))
    return dx, dgamma, dbeta


def _chunks(v: Tensor, ghost: int) -> list[Tensor]:
    """Ghost BN's virtual batches of (K, B, C) as (K, n, g, C) views, in order: the full chunks of
    `ghost` samples, then the remainder (if any) as one chunk."""
    K, B, C = v.shape
    if B <= ghost:
        return [v.unsqueeze(1)]
    full = B // ghost * ghost
    out = [v[:, :full].view(K, B // ghost, ghost, C)]
    if full < B:
        out.append(v[:, full:].unsqueeze(1))
    return out


def ghost_batch(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    state: State,
    args: NormArgs,
    *,
    training: bool,
    keep: bool = False,
):
    """Hoffer et al. (2017): batch norm over ⌈B/ghost⌉ consecutive virtual batches, each with its own
    statistics; the running estimates take one update per chunk, in order. Eval mode is batch norm's."""
    if not training:
        return _batch_eval(x, gamma, beta, state, args.bn.eps)
    assert state is not None
    if not keep:  # batch norm's own spelling, chunk by chunk
        ys = []
        for c in x.split(args.ghost, 1):
            y, state, _ = batch(c, gamma, beta, state, args, training=True)
            ys.append(y)
        return _cat1(ys), state, None
    K, _, C = x.shape
    m, s = state
    parts, rs = [], []
    for c in _chunks(x, args.ghost):  # (K, n, g, C)
        xh, mu, var, r = _whiten(c, 2, args.bn.eps)
        parts.append(xh.view(K, -1, C))
        rs.append(r)
        for j in range(c.shape[1]):
            m, s = update_running(m, s, mu[:, j], var[:, j], c.shape[2], args.bn)
    xhat = _cat1(parts)
    return beta.addcmul(xhat, gamma), (m, s), (xhat, rs)


def _ghost_back(dout: Tensor, gamma: Tensor, saved: Saved, args: NormArgs):
    xhat, rs = saved
    K, _, C = dout.shape
    parts, at = [], 0
    for r, c in zip(rs, _chunks(dout * gamma, args.ghost)):  # (K, n, g, C)
        n, g = c.shape[1], c.shape[2]
        parts.append(_whiten_back(c, xhat[:, at : at + n * g].view(K, n, g, C), r, 2).view(K, -1, C))
        at += n * g
    return (_cat1(parts), *_affine_grads(dout, xhat))


def _per_sample(x: Tensor, gamma: Tensor, beta: Tensor, state: State, eps: float, size: int, keep: bool):
    """Normalize each sample over consecutive groups of `size` channels; the same in either mode."""
    K, B, C = x.shape
    xh, _, _, r = _whiten(x.reshape(K, B, C // size, size), -1, eps)  # r (K, B, G, 1)
    xhat = xh.view(K, B, C)
    if not keep:
        return xhat * gamma + beta, state, None
    return beta.addcmul(xhat, gamma), state, (xhat, r)  # as in batch: the fast step's fused spelling


def _per_sample_back(dout: Tensor, gamma: Tensor, saved: Saved, size: int):
    xhat, r = saved
    K, B, C = dout.shape
    dg = (dout * gamma).view(K, B, C // size, size)
    dx = _whiten_back(dg, xhat.view(K, B, C // size, size), r, -1).view(K, B, C)
    return (dx, *_affine_grads(dout, xhat))


def layer(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    state: State,
    args: NormArgs,
    *,
    training: bool,
    keep: bool = False,
):
    """Ba et al. (2016): normalize each sample over its C channels, then γ·x̂ + β."""
    return _per_sample(x, gamma, beta, state, args.bn.eps, x.shape[-1], keep)


def group(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    state: State,
    args: NormArgs,
    *,
    training: bool,
    keep: bool = False,
):
    """Wu & He (2018): normalize each sample over groups of `group_size` consecutive channels."""
    return _per_sample(x, gamma, beta, state, args.bn.eps, args.group_size, keep)


def batch_renorm(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    state: State,
    args: NormArgs,
    *,
    training: bool,
    keep: bool = False,
):
    """Ioffe (2017). σ_B = √(σ²_B + ε), σ = √(running_var + ε), r = stop_grad(clip(σ_B/σ, 1/rmax, rmax)),
    d = stop_grad(clip((μ_B − μ)/σ, −dmax, dmax)), x̂ = (x − μ_B)/σ_B · r + d, y = γ·x̂ + β. With rmax = 1,
    dmax = 0 it is batch norm. Eval mode is batch norm's."""
    if not training:
        return _batch_eval(x, gamma, beta, state, args.bn.eps)
    assert state is not None
    run_mean, run_var = state
    mu = x.mean(1, keepdim=True)
    xc = x - mu
    var_b = (xc * xc).mean(1, keepdim=True)
    sigma_b = (var_b + args.bn.eps).sqrt()
    sigma = (run_var + args.bn.eps).sqrt()
    r = (sigma_b.detach() / sigma).clamp(1.0 / args.rmax, args.rmax)
    d = ((mu.detach() - run_mean) / sigma).clamp(-args.dmax, args.dmax)
    y = (xc / sigma_b * r + d) * gamma + beta
    return y, update_running(run_mean, run_var, mu, var_b, x.shape[1], args.bn), None


NORMS: dict[str, Norm] = {
    n.name: n
    for n in (
        Norm("none", _none, _none_back, identity=True, folds=True),
        Norm("batch", batch, _batch_back, running_stats=True, min_batch=2, folds=True),
        Norm("layer", layer, lambda d, g, s, a: _per_sample_back(d, g, s, d.shape[-1])),
        Norm("group", group, lambda d, g, s, a: _per_sample_back(d, g, s, a.group_size), grouped=True),
        Norm("batch-renorm", batch_renorm, running_stats=True, min_batch=2, scheduled=True),
        Norm("ghost-batch", ghost_batch, _ghost_back, running_stats=True, min_batch=2),
    )
}


PLAIN = next(n.name for n in NORMS.values() if n.identity)  # 'none', the default and the control


def is_identity(name: object) -> bool:
    """Whether `name` (any value, valid or not) names the identity norm."""
    return name == PLAIN


RENORM_WARMUP_TIME_CONSTANTS = 3  # plain BN until the running statistics' initial (0, 1) weighs ≤ e⁻³ ≈ 5%
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

    def ramp(frac: float) -> float:
        return min(max((step - n0) / (frac * total), 0.0), 1.0)

    return 1.0 + 2.0 * ramp(RENORM_RAMPS[0]), 5.0 * ramp(RENORM_RAMPS[1])
