"""Hand-written forward and backward for the stacked MLP: the fast path.

Autograd on CPU spends more time on bookkeeping and small broadcast ops than
on the matmuls of this tiny net; here one training step is a fixed sequence of
batched matmuls and fused element-wise ops, gradients written straight into
the gradient buffer (contiguous per tensor, see model.Layout). Checked against
autograd (tests/core/test_backprop.py). Covers ReLU and sigmoid, and the norms
none, batch, ghost-batch, layer and group; batch-renorm and noisy BN (which need
a per-step StepContext) train through autograd.

Per hidden layer i (placement 'after'; 'before' swaps the nonlinearity φ and the norm):
    z = h W + b,  a = φ(z),  norm: x̂ = (a − μ)·r, r = 1/√(σ² + ε),  y = γ x̂ + β
μ, σ² are taken over the batch (BN), over chunks of `ghost_batch` samples (ghost BN),
over a sample's C channels (layer norm) or over its groups of `group_size` channels (group norm).
Backward, with g = ∂L/∂y and ĝ = γ g:
    ∂β = Σ_b g,  ∂γ = Σ_b g·x̂,  ∂a = r (ĝ − mean(ĝ) − x̂ mean(ĝ x̂))   (means over μ's set)
    ∂z = ∂a·φ'(z) (ReLU: [z > 0]; sigmoid: a(1 − a)),  ∂W = hᵀ ∂z,  ∂b = Σ_b ∂z,  ∂h = ∂z Wᵀ
For BN, γ is constant over the batch, so ∂a = γ r (g − ∂β/B − x̂ ∂γ/B).
Softmax cross-entropy, mean over the batch: ∂logits = (softmax − onehot)/B.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import model as M
from .norms import update_running

NORMS = ("none", "batch", "ghost-batch", "layer", "group")
ACTIVATIONS = ("relu", "sigmoid")


def supported(cfg: M.StackConfig) -> bool:
    """Whether `step` trains this stack (else train.py uses autograd)."""
    return cfg.norm in NORMS and cfg.activation in ACTIVATIONS


def _act(z: Tensor, cfg: M.StackConfig) -> Tensor:
    return torch.relu(z) if cfg.activation == "relu" else torch.sigmoid(z)


def _act_back(d: Tensor, a: Tensor, cfg: M.StackConfig) -> Tensor:
    """d·φ'(z) from the activation's output a = φ(z), in one pass: ReLU d·[a > 0], sigmoid d·a(1 − a)."""
    if cfg.activation == "relu":
        return torch.ops.aten.threshold_backward(d, a, 0)
    return torch.ops.aten.sigmoid_backward(d, a)


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


def _whiten(v: Tensor, dim: int, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x̂, μ, σ², r): x̂ = (v − μ)·r, r = 1/√(σ² + ε), with μ, σ² (biased) over `dim`. (torch.var_mean over a
    middle dim is ~10x slower than these four ops on CPU.)"""
    mu = v.mean(dim, keepdim=True)
    xc = v - mu
    var = xc.square().mean(dim, keepdim=True)
    r = torch.rsqrt(var + eps)
    return xc.mul_(r), mu, var, r


def _norm_forward(i: int, v: Tensor, p: dict, st: dict, new_st: dict, cfg: M.StackConfig):
    """Hidden layer i's norm on v (K, B, C): (y, x̂ (K, B, C), saved for the backward)."""
    gamma, beta, eps = p[f"gamma{i}"], p[f"beta{i}"], cfg.bn.eps
    K, B, C = v.shape
    if cfg.norm == "batch":
        xhat, mu, var, r = _whiten(v, 1, eps)  # stats (K, 1, C)
        new_st[f"mean{i}"], new_st[f"var{i}"] = update_running(
            st[f"mean{i}"], st[f"var{i}"], mu, var, B, cfg.bn
        )
        saved = r
    elif cfg.norm == "ghost-batch":
        m, s = st[f"mean{i}"], st[f"var{i}"]
        parts, saved = [], []
        for c in _chunks(v, cfg.ghost_batch):  # (K, n, g, C)
            xh, mu, var, r = _whiten(c, 2, eps)
            parts.append(xh.view(K, -1, C))
            saved.append(r)
            for j in range(c.shape[1]):  # one running update per chunk, in order
                m, s = update_running(m, s, mu[:, j], var[:, j], c.shape[2], cfg.bn)
        new_st[f"mean{i}"], new_st[f"var{i}"] = m, s
        xhat = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
    else:  # layer, group: per sample
        gs = C if cfg.norm == "layer" else cfg.group_size
        w = v.view(K, B, C // gs, gs)
        xh, _, _, r = _whiten(w, -1, eps)  # r (K, B, G, 1)
        xhat = xh.view(K, B, C)
        saved = r
    return torch.addcmul(beta, xhat, gamma), xhat, saved


def _norm_backward(
    i: int, dout: Tensor, xhat: Tensor, saved, p: dict, g: dict, cfg: M.StackConfig, mask: Tensor | None
) -> Tensor:
    """∂L/∂(norm input) from dout = ∂L/∂y (K, B, C); writes ∂γ, ∂β into g."""
    gamma = p[f"gamma{i}"]
    K, B, C = dout.shape
    dbeta = dout.sum(1, keepdim=True)
    dgamma = (dout * xhat).sum(1, keepdim=True)
    if cfg.norm == "batch":
        gr = gamma * saved  # (K, 1, C)
        dv = torch.addcmul(gr * dbeta * (-1 / B), dout, gr).addcmul_(xhat, gr * dgamma * (-1 / B))
    elif cfg.norm == "ghost-batch":
        dg = dout * gamma
        parts, at = [], 0
        for r, c in zip(saved, _chunks(dg, cfg.ghost_batch)):  # (K, n, g, C)
            n, gsz = c.shape[1], c.shape[2]
            xh = xhat[:, at : at + n * gsz].view(K, n, gsz, C)
            at += n * gsz
            parts.append(_whiten_back(c, xh, r, 2).view(K, -1, C))
        dv = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
    else:
        gs = C if cfg.norm == "layer" else cfg.group_size
        dg = (dout * gamma).view(K, B, C // gs, gs)
        xh = xhat.view(K, B, C // gs, gs)
        dv = _whiten_back(dg, xh, saved, -1).view(K, B, C)
    if mask is not None:
        dv = torch.where(mask, dv, dout)
        dbeta.mul_(mask)
        dgamma.mul_(mask)
    g[f"beta{i}"].copy_(dbeta)
    g[f"gamma{i}"].copy_(dgamma)
    return dv


def _whiten_back(dg: Tensor, xh: Tensor, r: Tensor, dim: int) -> Tensor:
    """r (ĝ − mean(ĝ) − x̂ mean(ĝ x̂)), means over `dim`, in two passes over the big tensors (plus the means)."""
    m1 = dg.mean(dim, keepdim=True)
    m2 = (dg * xh).mean(dim, keepdim=True)
    return torch.addcmul(-m1 * r, dg, r).addcmul_(xh, -m2 * r)


@torch.no_grad()
def step(
    p: dict[str, Tensor],
    g: dict[str, Tensor],
    st: dict[str, Tensor],
    x: Tensor,
    y: Tensor,
    cfg: M.StackConfig,
    mask: Tensor | None,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """One training step's forward and backward. x (K, B, in), y (K, B).

    Writes ∂(Σ_k L_k)/∂θ into the gradient views `g`; returns (loss (K,), correct (K,), new state).
    """
    normed = cfg.norm != "none"
    after = cfg.placement == "after"
    B = x.shape[1]
    L = cfg.n_hidden
    new_st = dict(st)
    cache = []
    h = x
    for i in range(L):
        z = torch.baddbmm(p[f"b{i}"], h, p[f"W{i}"])  # (K, B, C)
        pre = _act(z, cfg) if after else z  # the norm's input
        if normed:
            out, xhat, saved = _norm_forward(i, pre, p, st, new_st, cfg)
            if mask is not None:
                out = torch.where(mask, out, pre)
        else:
            out, xhat, saved = pre, None, None
        h_next = out if after else _act(out, cfg)
        cache.append((h, pre if after else h_next, xhat, saved))  # φ's output, for φ'
        h = h_next
    logits = torch.baddbmm(p[f"b{L}"], h, p[f"W{L}"])  # (K, B, classes)
    logp = torch.log_softmax(logits, -1)
    loss = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
    correct = (logits.argmax(-1) == y).sum(1)
    d = logp.exp_()
    d.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(d[..., :1], -1.0))
    d.div_(B)  # ∂L/∂logits
    torch.bmm(h.transpose(1, 2), d, out=g[f"W{L}"])
    g[f"b{L}"].copy_(d.sum(1, keepdim=True))
    dh = torch.bmm(d, p[f"W{L}"].transpose(1, 2))
    for i in reversed(range(L)):
        h_in, a, xhat, saved = cache[i]
        dout = dh if after else _act_back(dh, a, cfg)  # through φ(out) when 'before'
        dpre = _norm_backward(i, dout, xhat, saved, p, g, cfg, mask) if normed else dout
        dz = _act_back(dpre, a, cfg) if after else dpre
        torch.bmm(h_in.transpose(1, 2), dz, out=g[f"W{i}"])
        g[f"b{i}"].copy_(dz.sum(1, keepdim=True))
        if i > 0:
            dh = torch.bmm(dz, p[f"W{i}"].transpose(1, 2))
    return loss, correct, new_st
