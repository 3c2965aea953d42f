"""Hand-written forward and backward for the stacked MLP with batch norm or none: the fast path.

Autograd on CPU spends more time on bookkeeping and small broadcast ops than
on the matmuls of this tiny net; here one training step is a fixed sequence of
batched matmuls and fused element-wise ops, gradients written straight into
the gradient buffer (contiguous per tensor, see model.Layout). Checked against autograd (tests/test_backprop.py).

Per hidden layer i (placement 'after'; 'before' swaps ReLU and BN):
    z = h W + b,  a = relu(z),  BN: x̂ = (a − μ_B)·r, r = 1/√(σ²_B + ε),  y = γ x̂ + β
Backward, with g = ∂L/∂y (B samples):
    ∂β = Σ_b g,  ∂γ = Σ_b g·x̂,  ∂a = γ r (g − ∂β/B − x̂ ∂γ/B)
    ∂z = ∂a·[z > 0],  ∂W = hᵀ ∂z,  ∂b = Σ_b ∂z,  ∂h = ∂z Wᵀ
Softmax cross-entropy, mean over the batch: ∂logits = (softmax − onehot)/B.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import model as M
from .norms import update_running


def supported(cfg: M.StackConfig) -> bool:
    return cfg.norm in ("none", "batch") and cfg.activation == "relu"


@torch.no_grad()
def step(p: dict[str, Tensor], g: dict[str, Tensor], st: dict[str, Tensor], x: Tensor, y: Tensor,
         cfg: M.StackConfig, mask: Tensor | None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """One training step's forward and backward. x (K, B, in), y (K, B).

    Writes ∂(Σ_k L_k)/∂θ into the gradient views `g`; returns (loss (K,), correct (K,), new state).
    """
    bn = cfg.norm == "batch"
    after = cfg.placement == "after"
    B = x.shape[1]
    L = cfg.n_hidden
    new_st = dict(st)
    cache = []
    h = x
    for i in range(L):
        z = torch.baddbmm(p[f"b{i}"], h, p[f"W{i}"])                   # (K, B, C)
        pre = torch.relu(z) if after else z
        if bn:
            mu = pre.mean(1, keepdim=True)
            xc = pre - mu
            var = xc.square().mean(1, keepdim=True)
            r = torch.rsqrt(var + cfg.bn.eps)
            xhat = xc.mul_(r)
            out = torch.addcmul(p[f"beta{i}"], xhat, p[f"gamma{i}"])
            if mask is not None:
                out = torch.where(mask, out, pre)
            new_st[f"mean{i}"], new_st[f"var{i}"] = update_running(st[f"mean{i}"], st[f"var{i}"], mu, var, B, cfg.bn)
        else:
            out, xhat, r = pre, None, None
        h_next = out if after else torch.relu(out)
        cache.append((h, z, xhat, r, out))
        h = h_next
    logits = torch.baddbmm(p[f"b{L}"], h, p[f"W{L}"])                  # (K, B, classes)
    logp = torch.log_softmax(logits, -1)
    loss = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
    correct = (logits.argmax(-1) == y).sum(1)
    d = logp.exp_()
    d.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(d[..., :1], -1.0))
    d.div_(B)                                                           # ∂L/∂logits
    torch.bmm(h.transpose(1, 2), d, out=g[f"W{L}"])
    g[f"b{L}"].copy_(d.sum(1, keepdim=True))
    dh = torch.bmm(d, p[f"W{L}"].transpose(1, 2))
    for i in reversed(range(L)):
        h_in, z, xhat, r, out = cache[i]
        dout = dh if after else dh.mul_(out > 0)                         # through relu(out) when 'before'
        if bn:
            gamma = p[f"gamma{i}"]
            dbeta = dout.sum(1, keepdim=True)
            dgamma = (dout * xhat).sum(1, keepdim=True)
            dpre = (dout - dbeta / B - xhat * (dgamma / B)).mul_(gamma * r)
            if mask is not None:
                dpre = torch.where(mask, dpre, dout)
                dbeta.mul_(mask)
                dgamma.mul_(mask)
            g[f"beta{i}"].copy_(dbeta)
            g[f"gamma{i}"].copy_(dgamma)
        else:
            dpre = dout
        dz = dpre.mul_(z > 0) if after else dpre
        torch.bmm(h_in.transpose(1, 2), dz, out=g[f"W{i}"])
        g[f"b{i}"].copy_(dz.sum(1, keepdim=True))
        if i > 0:
            dh = torch.bmm(dz, p[f"W{i}"].transpose(1, 2))
    return loss, correct, new_st
