"""Evaluating a stack: eval-mode loss and accuracy, and precise BN statistics.

`evaluate` runs the stack in eval mode (running statistics, no noise) over a dataset in chunks.
`precise_stats` (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", §3: precise BN) replaces each BN
layer's running statistics by the exact population statistics of its input over a dataset:

    for i = 0 … L−1:   μ_i = mean over x of a_i(x),   σ²_i = mean over x of (a_i(x) − μ_i)²   (biased)

where a_i(x) is layer i's norm input in eval mode with layers < i already using their precise statistics
(so layer i's statistics describe what it sees at evaluation). Layer i takes one eval-mode pass over x,
chunked, in x's order, summed in float64 (Σa, Σa² per member and unit), then cast to the state's dtype.
The running statistics used for training are never changed: the result is a new state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import model as M

CHUNK = 2500  # images per eval-mode forward pass: (K, 2500, 128) activations, 20 MB at K = 16


@torch.no_grad()
def evaluate(
    p: dict, st: dict, cfg: M.StackConfig, x: Tensor, y: Tensor, mask: Tensor | None, chunk: int = CHUNK
) -> tuple[Tensor, Tensor]:
    """Eval-mode mean cross-entropy and accuracy per member, (K,) each, on the device."""
    K = p["W0"].shape[0]
    loss = torch.zeros(K, device=x.device)
    correct = torch.zeros(K, device=x.device)
    for xs, ys in zip(x.split(chunk), y.split(chunk)):
        logits, _, _ = M.forward(p, st, xs, cfg, training=False, mask=mask)
        loss += F.cross_entropy(logits.transpose(1, 2), ys.expand(K, -1), reduction="none").sum(1)
        correct += (logits.argmax(-1) == ys).sum(1)
    return loss / len(y), correct / len(y)


def _norm_input(i: int, x: Tensor, pre: list[Tensor], p: dict, cfg: M.StackConfig) -> Tensor:
    """Hidden layer i's norm input (K, B, C), from model.forward's `pre` (inputs to the nonlinearity):
    after: act(z_i) = act(pre[i]); before: z_i = h_{i−1} W_i + b_i with h_{i−1} = x or act(pre[i−1])."""
    act = M.ACTIVATIONS[cfg.activation]
    if cfg.placement == "after":
        return act(pre[i])
    h = x if i == 0 else act(pre[i - 1])
    W, b = p[f"W{i}"], p[f"b{i}"]
    return torch.baddbmm(b, h, W) if h.dim() == 3 else torch.matmul(h, W) + b  # as model.forward computes z_i


@torch.no_grad()
def precise_stats(
    p: dict, st: dict, cfg: M.StackConfig, x: Tensor, mask: Tensor | None, chunk: int = CHUNK
) -> dict[str, Tensor]:
    """The exact training-set mean and biased variance of every BN layer's input (module docstring),
    as a new state dict shaped like `st`; `st` unchanged. Norms without running statistics: `st` itself."""
    if not cfg.kind.running_stats or not st:
        return st
    out = dict(st)
    n = x.shape[0]
    for i in range(cfg.n_hidden):
        sums: tuple[Tensor, Tensor] | None = None  # (Σa, Σa²) over the chunks so far
        for xs in x.split(chunk):
            _, _, pre = M.forward(p, out, xs, cfg, training=False, mask=mask)
            a = _norm_input(i, xs, pre, p, cfg).double()  # (K, b, C)
            d1, d2 = a.sum(1, keepdim=True), a.square().sum(1, keepdim=True)
            sums = (d1, d2) if sums is None else (sums[0] + d1, sums[1] + d2)
        assert sums is not None, "precise_stats needs at least one sample"
        s1, s2 = sums
        mean = s1 / n
        var = (s2 / n - mean.square()).clamp_min_(0.0)
        out[f"mean{i}"] = mean.to(st[f"mean{i}"].dtype)
        out[f"var{i}"] = var.to(st[f"var{i}"].dtype)
    return out
