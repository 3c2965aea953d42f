"""Probes inside the stacked trainer (RunSpec.probes, every RunSpec.probe_every steps): why BN helps.

All functions are pure: stacked parameters as one flat buffer `w` (model.Layout), a batch, the
norm state; they return per-member values (K,). The training step itself is untouched, and a run
without probes pays one boolean test per step.

- `activations`: the 15th, 50th and 85th percentiles of each hidden layer's input to its
  nonlinearity over a fixed probe batch, eval mode (Ioffe & Szegedy 2015, Figure 1 b, c).
- `ics`: internal covariate shift (Santurkar et al. 2018, Definition 2.1). For layer i,
  G = ∇_{W_i} L(w) and G' = ∇_{W_i} L(w') on the same batch, where w' takes the optimizer's update
  for the layers before i only (their weights, biases and norm parameters) and keeps layers ≥ i at w.
  Recorded: ‖G − G'‖₂ and cos(G, G'). For the first layer G' = G.
- `smoothness`: along the gradient g = ∇L(w), at w − η·g for η in ETAS (Santurkar et al., §3):
  loss variation max_η L − min_η L (η = 0 included), gradient predictiveness max_η ‖∇L(w) − ∇L(w − ηg)‖,
  and effective β-smoothness max_η ‖∇L(w) − ∇L(w − ηg)‖ / ‖η·g‖.
Losses and gradients use training mode (batch statistics of the probe's batch); the running state is
read, never updated; noisy BN's noise is not applied inside a probe. Probe time is not training time.
"""
from __future__ import annotations

import re
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..records import PERCENTILES
from . import model as M

ETAS = (0.05, 0.1, 0.2, 0.4)   # step sizes along the gradient, the range Santurkar et al. probe
PROBE_BATCH = 1000             # activations: the first test images


def loss_and_grad(w: Tensor, layout: M.Layout, st: dict, x: Tensor, y: Tensor, cfg: M.StackConfig,
                  mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Per-member training-mode loss (K,) at flat parameters w, and ∂(Σ_k L_k)/∂w (member k's
    gradient in member k's segments; padding 0)."""
    w = w.detach().clone().requires_grad_()
    logits, _, _ = M.forward(layout.views(w), st, x, cfg, training=True, mask=mask)
    losses = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
    (g,) = torch.autograd.grad(losses.sum(), w)
    return losses.detach(), g


def member_norm(layout: M.Layout, v: Tensor, names=None) -> Tensor:
    """‖v_k‖₂ per member (K,) over the named tensors (all by default)."""
    blocks = layout.blocks(v)
    return torch.sqrt(sum((blocks[n] ** 2).sum(1) for n in (names or blocks)))


@torch.no_grad()
def activations(w: Tensor, layout: M.Layout, st: dict, x: Tensor, cfg: M.StackConfig,
                mask: Tensor | None) -> dict[tuple[str, int], Tensor]:
    """(f"act_p{q}", layer) → (K,) percentile of the layer's pre-nonlinearity values over x (B, in)."""
    _, _, pre = M.forward(layout.views(w), st, x, cfg, training=False, mask=mask)
    q = torch.tensor([p / 100 for p in PERCENTILES], device=w.device)
    out = {}
    for i, h in enumerate(pre):                                   # h (K, B, C)
        vals = torch.quantile(h.reshape(h.shape[0], -1), q, dim=1)   # (3, K)
        out.update({(f"act_p{p}", i): vals[j] for j, p in enumerate(PERCENTILES)})
    return out


def _layer(name: str) -> int:
    return int(re.search(r"\d+$", name).group())


def ics(w0: Tensor, w1: Tensor, layout: M.Layout, st: dict, x: Tensor, y: Tensor, cfg: M.StackConfig,
        mask: Tensor | None) -> dict[tuple[str, int], Tensor]:
    """('ics_l2' | 'ics_cos', layer) → (K,) for every linear layer, from parameters w0 before and w1
    after one optimizer step on the batch (x, y)."""
    _, g = loss_and_grad(w0, layout, st, x, y, cfg, mask)
    out = {}
    for i in range(cfg.n_hidden + 1):
        mixed = w0.detach().clone()
        mb, b1 = layout.blocks(mixed), layout.blocks(w1)
        for n in mb:
            if _layer(n) < i:
                mb[n].copy_(b1[n])
        _, g_mixed = loss_and_grad(mixed, layout, st, x, y, cfg, mask) if i else (None, g)
        G, Gp = layout.blocks(g)[f"W{i}"], layout.blocks(g_mixed)[f"W{i}"]
        out[("ics_l2", i)] = (G - Gp).norm(dim=1)
        out[("ics_cos", i)] = F.cosine_similarity(G, Gp, dim=1)
    return out


def smoothness(f: Callable[[Tensor], tuple[Tensor, Tensor]], w: Tensor, norm: Callable[[Tensor], Tensor],
               etas=ETAS) -> dict[str, Tensor]:
    """Loss landscape along the gradient. f(w) → (losses (K,), gradient shaped like w); norm(v) → (K,).
    Returns loss_variation, grad_predictiveness and beta_smoothness, each (K,)."""
    l0, g0 = f(w)
    losses, dg, beta = [l0], [], []
    gnorm = norm(g0)
    for eta in etas:
        l, g = f(w - eta * g0)
        d = norm(g0 - g)
        losses.append(l)
        dg.append(d)
        beta.append(d / (eta * gnorm))
    L = torch.stack(losses)
    return {"loss_variation": L.max(0).values - L.min(0).values, "grad_predictiveness": torch.stack(dg).max(0).values,
            "beta_smoothness": torch.stack(beta).max(0).values}


def record(names: tuple[str, ...], *, step: int, w0: Tensor, w1: Tensor, layout: M.Layout, st: dict, x: Tensor,
           y: Tensor, x_probe: Tensor, cfg: M.StackConfig, mask: Tensor | None) -> list[tuple[int, str, int, Tensor]]:
    """Every requested probe at one step: (step, name, layer, values (K,)); layer −1 for whole-model values."""
    rows = []
    if "activations" in names:
        rows += [(step, n, i, v) for (n, i), v in activations(w0, layout, st, x_probe, cfg, mask).items()]
    if "ics" in names:
        rows += [(step, n, i, v) for (n, i), v in ics(w0, w1, layout, st, x, y, cfg, mask).items()]
    if "smoothness" in names:
        f = lambda w: loss_and_grad(w, layout, st, x, y, cfg, mask)  # noqa: E731
        rows += [(step, n, -1, v) for n, v in smoothness(f, w0, lambda v: member_norm(layout, v)).items()]
    return rows
