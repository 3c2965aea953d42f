"""Probes inside the stacked trainer (RunSpec.probes, every RunSpec.probe_every steps): why BN helps.

All functions are pure: stacked parameters as one flat buffer `w` (model.Layout), a batch, the
norm state; they return per-member values (K,). The training step itself is untouched, and a run
without probes pays one boolean test per step.

- `activations`: the 15th, 50th and 85th percentiles of each hidden layer's input to its
  nonlinearity over a fixed probe batch (the first PROBE_BATCH test images; Ioffe & Szegedy 2015,
  Figure 1 b, c), twice: in eval mode (`act_p{q}`: running statistics, no noise, what the deployed
  model sees) and in training mode (`act_train_p{q}`: batch statistics of the probe batch, and for
  noisy BN the noise of the current step's distribution drawn for the probe batch; what training sees).
- `ics`: internal covariate shift (Santurkar et al. 2018, Definition 2.1). For layer i,
  G = ∇_{W_i} L(w) and G' = ∇_{W_i} L(w') on the same batch, where w' takes the optimizer's update
  for the layers before i only (their weights, biases and norm parameters) and keeps layers ≥ i at w.
  Recorded: ‖G − G'‖₂ and cos(G, G'). For the first layer G' = G.
- `smoothness` (Santurkar et al., §3, Figure 4), along the optimizer's actual update Δw = w1 − w0 of
  this step (for Adam not the gradient's direction), at w0 + c·Δw for c in STEP_MULTIPLES:
  loss variation max_c L − min_c L (c = 0 included), gradient predictiveness
  max_c ‖∇L(w0) − ∇L(w0 + cΔw)‖, effective β-smoothness max_c ‖∇L(w0) − ∇L(w0 + cΔw)‖ / ‖cΔw‖; and
  `beta_hvp` = ‖H g‖/‖g‖ with g = ∇L(w0) and H the Hessian at w0, H·g by double backpropagation
  (exact, no finite-difference step): the curvature along the gradient, a local β-smoothness.
Losses and gradients use training mode (batch statistics of the probe's batch); the running state is
read, never updated; noisy BN's noise is not applied inside ics and smoothness. Probe time is not
training time.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import reduce

import torch
import torch.nn.functional as F
from torch import Tensor

from ..records import PERCENTILES
from . import model as M

STEP_MULTIPLES = (0.5, 1.0, 2.0, 4.0)  # smoothness: points w0 + c·Δw, multiples of this step's actual update
PROBE_BATCH = 1000  # activations: the first test images


def loss_and_grad(
    w: Tensor, layout: M.Layout, st: dict, x: Tensor, y: Tensor, cfg: M.StackConfig, mask: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Per-member training-mode loss (K,) at flat parameters w, and ∂(Σ_k L_k)/∂w (member k's
    gradient in member k's segments; padding 0)."""
    w = w.detach().clone().requires_grad_()
    losses = _losses(w, layout, st, x, y, cfg, mask)
    (g,) = torch.autograd.grad(losses.sum(), w)
    return losses.detach(), g


def member_norm(layout: M.Layout, v: Tensor, names=None) -> Tensor:
    """‖v_k‖₂ per member (K,) over the named tensors (all by default)."""
    blocks = layout.blocks(v)
    return torch.sqrt(reduce(operator.add, ((blocks[n] ** 2).sum(1) for n in (names or blocks))))


@torch.no_grad()
def activations(
    w: Tensor,
    layout: M.Layout,
    st: dict,
    x: Tensor,
    cfg: M.StackConfig,
    mask: Tensor | None,
    *,
    training: bool = False,
    noise: list | None = None,
) -> dict[tuple[str, int], Tensor]:
    """(f"act_p{q}", layer) → (K,) percentile of the layer's pre-nonlinearity values over x (B, in), eval
    mode; training=True: (f"act_train_p{q}", layer), batch statistics of x and `noise` (noisy BN, per layer
    (shift, scale) (K, B, C)) applied; the state is not updated either way."""
    ctx = M.StepContext(noise=noise) if training and noise is not None else None
    _, _, pre = M.forward(layout.views(w), st, x, cfg, training=training, ctx=ctx, mask=mask)
    q = torch.tensor([p / 100 for p in PERCENTILES], device=w.device)
    name = "act_train_p" if training else "act_p"
    out = {}
    for i, h in enumerate(pre):  # h (K, B, C)
        vals = torch.quantile(h.reshape(h.shape[0], -1), q, dim=1)  # (3, K)
        out.update({(f"{name}{p}", i): vals[j] for j, p in enumerate(PERCENTILES)})
    return out


def _layer(name: str) -> int:
    """The layer index a parameter block's name ends in ('W2' → 2)."""
    m = re.search(r"\d+$", name)
    assert m is not None, name
    return int(m.group())


def ics(
    w0: Tensor,
    w1: Tensor,
    layout: M.Layout,
    st: dict,
    x: Tensor,
    y: Tensor,
    cfg: M.StackConfig,
    mask: Tensor | None,
) -> dict[tuple[str, int], Tensor]:
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


def hessian_vector(
    w: Tensor,
    v: Tensor,
    layout: M.Layout,
    st: dict,
    x: Tensor,
    y: Tensor,
    cfg: M.StackConfig,
    mask: Tensor | None,
) -> Tensor:
    """H·v for the stacked loss Σ_k L_k at flat parameters w (member k's Hessian times v's member-k part, as
    members do not interact), by double backpropagation: ∂/∂w ⟨∇L(w), v⟩."""
    return hvp(lambda u: _losses(u, layout, st, x, y, cfg, mask), w, v)


def hvp(loss_fn: Callable[[Tensor], Tensor], w: Tensor, v: Tensor) -> Tensor:
    """H·v of Σ loss_fn(w) (loss_fn: flat parameters → per-member losses (K,)), by double backpropagation."""
    w = w.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss_fn(w).sum(), w, create_graph=True)
    (hv,) = torch.autograd.grad(g, w, grad_outputs=v.detach())
    return hv.detach()


def _losses(
    w: Tensor, layout: M.Layout, st: dict, x: Tensor, y: Tensor, cfg: M.StackConfig, mask: Tensor | None
) -> Tensor:
    logits, _, _ = M.forward(layout.views(w), st, x, cfg, training=True, mask=mask)
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)


def smoothness(
    f: Callable[[Tensor], tuple[Tensor, Tensor]],
    w0: Tensor,
    w1: Tensor,
    norm: Callable[[Tensor], Tensor],
    hv: Callable[[Tensor, Tensor], Tensor],
    multiples=STEP_MULTIPLES,
) -> dict[str, Tensor]:
    """The loss landscape along this step's update Δw = w1 − w0. f(w) → (losses (K,), gradient shaped like w);
    norm(v) → (K,); hv(w, v) → H(w)·v. Returns loss_variation, grad_predictiveness, beta_smoothness and
    beta_hvp, each (K,) (see the module docstring)."""
    l0, g0 = f(w0)
    step = w1 - w0
    step_norm = norm(step)
    losses, dg, beta = [l0], [], []
    for c in multiples:
        loss, g = f(w0 + c * step)
        d = norm(g0 - g)
        losses.append(loss)
        dg.append(d)
        beta.append(d / (c * step_norm))
    L = torch.stack(losses)
    return {
        "loss_variation": L.max(0).values - L.min(0).values,
        "grad_predictiveness": torch.stack(dg).max(0).values,
        "beta_smoothness": torch.stack(beta).max(0).values,
        "beta_hvp": norm(hv(w0, g0)) / norm(g0),
    }


def record(
    names: tuple[str, ...],
    *,
    step: int,
    w0: Tensor,
    w1: Tensor,
    layout: M.Layout,
    st: dict,
    x: Tensor,
    y: Tensor,
    x_probe: Tensor,
    cfg: M.StackConfig,
    mask: Tensor | None,
    probe_noise: list | None = None,
) -> list[tuple[int, str, int, Tensor]]:
    """Every requested probe at one step: (step, name, layer, values (K,)); layer −1 for whole-model values.
    probe_noise: noisy BN's noise for x_probe (per layer (shift, scale)), for the training-mode
    activations."""
    rows = []
    if "activations" in names:
        rows += [(step, n, i, v) for (n, i), v in activations(w0, layout, st, x_probe, cfg, mask).items()]
        rows += [
            (step, n, i, v)
            for (n, i), v in activations(
                w0, layout, st, x_probe, cfg, mask, training=True, noise=probe_noise
            ).items()
        ]
    if "ics" in names:
        rows += [(step, n, i, v) for (n, i), v in ics(w0, w1, layout, st, x, y, cfg, mask).items()]
    if "smoothness" in names:

        def f(w: Tensor) -> tuple[Tensor, Tensor]:
            return loss_and_grad(w, layout, st, x, y, cfg, mask)

        def norm(v: Tensor) -> Tensor:
            return member_norm(layout, v)

        def hv(w: Tensor, v: Tensor) -> Tensor:
            return hessian_vector(w, v, layout, st, x, y, cfg, mask)

        rows += [(step, n, -1, v) for n, v in smoothness(f, w0, w1, norm, hv).items()]
    return rows
