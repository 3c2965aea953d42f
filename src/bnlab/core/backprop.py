"""The hand-written backward for the stacked MLP: the fast path.

Autograd on CPU spends more time on bookkeeping and small broadcast ops than
on the matmuls of this tiny net; here one training step is model.forward (the
one forward, run under no_grad with a `Tape`) and then a fixed sequence of
batched matmuls and fused element-wise ops, gradients written straight into
the gradient buffer (contiguous per tensor, see model.Layout). Checked against
autograd (tests/core/test_backprop.py, tests/core/test_norm_registry.py). Covers
ReLU and sigmoid and every norm of the registry with a hand-written backward
(core/norms.py); the others, and noisy BN, train through autograd.

Per hidden layer i (placement 'after'; 'before' swaps the nonlinearity φ and the norm):
    z = h W + b,  a = φ(z),  y = norm(a)
Backward, with g = ∂L/∂y: ∂a from the norm's backward, then
    ∂z = ∂a·φ'(z) (ReLU: [z > 0]; sigmoid: a(1 − a)),  ∂W = hᵀ ∂z,  ∂b = Σ_b ∂z,  ∂h = ∂z Wᵀ
Softmax cross-entropy, mean over the batch: ∂logits = (softmax − onehot)/B.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import model as M


def supported(cfg: M.StackConfig) -> bool:
    """Whether `step` trains this stack (else train.py uses autograd)."""
    return cfg.kind.backward is not None and cfg.activation in M.ACTIVATIONS


def _act_back(d: Tensor, a: Tensor, cfg: M.StackConfig) -> Tensor:
    """d·φ'(z) from the activation's output a = φ(z), in one pass: ReLU d·[a > 0], sigmoid d·a(1 − a)."""
    if cfg.activation == "relu":
        return torch.ops.aten.threshold_backward(d, a, 0)
    return torch.ops.aten.sigmoid_backward(d, a)


def _norm_backward(
    i: int, dout: Tensor, saved, p: dict, g: dict, cfg: M.StackConfig, mask: Tensor | None
) -> Tensor:
    """∂L/∂(norm input) from dout = ∂L/∂y (K, B, C); writes ∂γ, ∂β into g."""
    backward = cfg.kind.backward
    assert backward is not None
    dv, dgamma, dbeta = backward(dout, p[f"gamma{i}"], saved, cfg.norm_args)
    if mask is not None:
        dv = torch.where(mask, dv, dout)
        dbeta.mul_(mask)
        dgamma.mul_(mask)
    g[f"beta{i}"].copy_(dbeta)
    g[f"gamma{i}"].copy_(dgamma)
    return dv


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
    normed = not cfg.kind.identity
    after = cfg.placement == "after"
    B = x.shape[1]
    L = cfg.n_hidden
    tape = M.Tape()
    logits, new_st, _ = M.forward(p, st, x, cfg, training=True, mask=mask, tape=tape)
    logp = torch.log_softmax(logits, -1)
    loss = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
    correct = (logits.argmax(-1) == y).sum(1)
    d = logp.exp_()
    d.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(d[..., :1], -1.0))
    d.div_(B)  # ∂L/∂logits
    torch.bmm(tape.inputs[L].transpose(1, 2), d, out=g[f"W{L}"])
    g[f"b{L}"].copy_(d.sum(1, keepdim=True))
    dh = torch.bmm(d, p[f"W{L}"].transpose(1, 2))
    for i in reversed(range(L)):
        a = tape.acts[i]
        dout = dh if after else _act_back(dh, a, cfg)  # through φ(out) when 'before'
        dpre = _norm_backward(i, dout, tape.saved[i], p, g, cfg, mask) if normed else dout
        dz = _act_back(dpre, a, cfg) if after else dpre
        torch.bmm(tape.inputs[i].transpose(1, 2), dz, out=g[f"W{i}"])
        g[f"b{i}"].copy_(dz.sum(1, keepdim=True))
        if i > 0:
            dh = torch.bmm(dz, p[f"W{i}"].transpose(1, 2))
    return loss, correct, new_st
