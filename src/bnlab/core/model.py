"""The stacked MLP: K models of one shape trained as one, one batched matmul per layer.

Parameters are stacked along a leading model axis: weights W_i (K, in, out),
biases b_i (K, 1, out), norm affine γ_i, β_i (K, 1, C). Members may differ in
seed, learning rate, init and init scale, and in whether the norm is on
(`norm_on` masks it per member), so the whole of the original protocol at one
batch size trains as one job.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from ..config import PROFILE, RunSpec
from . import norms
from .norms import NORMS

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid}


def member_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose ('init', 'shuffle', 'noise') of one run seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:8], "little") >> 1


@dataclass(frozen=True)
class StackConfig:
    """What all members of a stack share, plus the per-member norm mask."""

    dims: tuple[int, ...]  # (in, hidden..., classes)
    norm: str  # the stack's norm kind ("none" when no member has one)
    placement: str
    activation: str
    bn: norms.BNConfig
    group_size: int
    ghost_batch: int
    norm_on: tuple[bool, ...]  # per member: is its norm active

    @property
    def n_hidden(self) -> int:
        return len(self.dims) - 2

    @property
    def kind(self) -> norms.Norm:
        """The stack's norm, from the registry."""
        return NORMS[self.norm]

    @property
    def norm_args(self) -> norms.NormArgs:
        return norms.NormArgs(self.bn, self.group_size, self.ghost_batch)

    @classmethod
    def from_specs(cls, specs: list[RunSpec], in_dim: int, n_classes: int) -> StackConfig:
        kinds = {(s.norm, s.placement) for s in specs if not NORMS[s.norm].identity}
        if len(kinds) > 1:
            raise ValueError(
                f"one stack holds one norm kind and placement besides 'none', got {sorted(kinds)}"
            )
        norm, placement = kinds.pop() if kinds else (norms.PLAIN, specs[0].placement)
        s0 = specs[0]
        prof = PROFILE[s0.profile]
        return cls(
            dims=(in_dim, *s0.hidden, n_classes),
            norm=norm,
            placement=placement,
            activation=s0.activation,
            bn=norms.BNConfig(prof.bn_momentum, prof.bn_eps, prof.bn_unbiased_running_var),
            group_size=s0.group_size,
            ghost_batch=s0.ghost_batch,
            norm_on=tuple(not NORMS[s.norm].identity for s in specs),
        )


def _init_weight(gen: torch.Generator, scheme: str, fan_in: int, fan_out: int) -> tuple[Tensor, Tensor]:
    """One member's (W (in, out), b (1, out)) drawn from `gen`."""
    if scheme == "glorot_uniform":  # Keras default: U(±√(6/(in+out))), zero bias
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return torch.empty(fan_in, fan_out).uniform_(-a, a, generator=gen), torch.zeros(1, fan_out)
    if scheme == "he_normal":  # N(0, 2/in), zero bias
        return torch.empty(fan_in, fan_out).normal_(0, math.sqrt(2.0 / fan_in), generator=gen), torch.zeros(
            1, fan_out
        )
    if scheme == "torch_default":  # nn.Linear: kaiming_uniform(a=√5) = U(±1/√in), bias U(±1/√in)
        a = 1.0 / math.sqrt(fan_in)
        W = torch.empty(fan_out, fan_in).uniform_(-a, a, generator=gen).T.contiguous()
        return W, torch.empty(1, fan_out).uniform_(-a, a, generator=gen)
    raise ValueError(f"unknown init {scheme!r}")


ALIGN = 16  # floats per cache line: member segments start on one, so SIMD lanes match at any K


@dataclass(frozen=True)
class Layout:
    """Where each parameter lives in the flat buffer of a K-member stack.

    Tensor t owns the block flat[K·o_t : K·(o_t + n_t)], viewed as (K, n_t) with
    n_t its size padded to ALIGN floats: each stacked tensor is contiguous (bmm
    writes gradients in place), the optimizer makes one fused pass over the
    blocks, and member k's numbers sit in the same SIMD lanes whatever K is, so
    a member's result does not depend on its neighbours (PyTorch's vector and
    scalar tail paths round differently).
    """

    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    offsets: tuple[int, ...]  # per-member offsets o_t
    padded: tuple[int, ...]  # per-member padded sizes n_t
    size: int  # Σ n_t: floats per member

    @classmethod
    def of(cls, cfg: StackConfig) -> Layout:
        shapes = []
        for i, (a, b) in enumerate(zip(cfg.dims, cfg.dims[1:])):
            shapes += [(f"W{i}", (a, b)), (f"b{i}", (1, b))]
        if not cfg.kind.identity:
            for i in range(cfg.n_hidden):
                shapes += [(f"gamma{i}", (1, cfg.dims[i + 1])), (f"beta{i}", (1, cfg.dims[i + 1]))]
        padded = tuple(-(-math.prod(shp) // ALIGN) * ALIGN for _, shp in shapes)
        offsets = tuple(sum(padded[:i]) for i in range(len(padded)))
        return cls(tuple(shapes), offsets, padded, sum(padded))

    def blocks(self, flat: Tensor) -> dict[str, Tensor]:
        """Named (K, n_t) blocks of the flat (K·size,) buffer."""
        K = flat.numel() // self.size
        return {
            n: flat[K * o : K * (o + p)].view(K, p)
            for (n, _), o, p in zip(self.shapes, self.offsets, self.padded)
        }

    def views(self, flat: Tensor) -> dict[str, Tensor]:
        """Named (K, ...) parameter views into flat; writes go through."""
        return {
            n: blk[:, : math.prod(shp)].view(blk.shape[0], *shp)
            for (n, shp), blk in zip(self.shapes, self.blocks(flat).values())
        }


def init_params(specs: list[RunSpec], cfg: StackConfig) -> Tensor:
    """Stacked parameters, flat (K·Layout.size,), on the CPU. Member k draws from
    its own seed, so its initial weights do not depend on the stack it sits in."""
    layout = Layout.of(cfg)
    flat = torch.zeros(len(specs) * layout.size)
    p = layout.views(flat)
    for k, s in enumerate(specs):
        gen = torch.Generator().manual_seed(member_seed(s.seed, "init"))
        for i, (a, b) in enumerate(zip(cfg.dims, cfg.dims[1:])):
            W, bias = _init_weight(gen, s.resolved_init, a, b)
            p[f"W{i}"][k] = W * s.init_scale
            p[f"b{i}"][k] = bias
    for n, v in p.items():
        if n.startswith("gamma"):
            v.fill_(1.0)
    return flat


def init_state(cfg: StackConfig, K: int) -> dict[str, Tensor]:
    """Running mean 0 and variance 1 for each stateful norm layer."""
    if not cfg.kind.running_stats:
        return {}
    st = {}
    for i in range(cfg.n_hidden):
        C = cfg.dims[i + 1]
        st[f"mean{i}"] = torch.zeros(K, 1, C)
        st[f"var{i}"] = torch.ones(K, 1, C)
    return st


@dataclass
class StepContext:
    """Per-step inputs some norms need: batch-renorm limits, noisy-BN shift/scale per layer
    (core/noise.py)."""

    rmax: float = 1.0
    dmax: float = 0.0
    noise: list[tuple[Tensor, Tensor]] | None = None  # per hidden layer: (shift, scale), each (K, B, C)


@dataclass
class Tape:
    """What `forward` keeps for a hand-written backward (core/backprop.py)."""

    inputs: list[Tensor] = field(default_factory=list)  # each linear layer's input: x, h_1, ..., h_L
    acts: list[Tensor] = field(default_factory=list)  # each hidden layer's φ output
    saved: list[norms.Saved] = field(default_factory=list)  # each hidden layer's norm's saved tensors


def forward(
    p: dict[str, Tensor],
    st: dict[str, Tensor],
    x: Tensor,
    cfg: StackConfig,
    *,
    training: bool,
    ctx: StepContext | None = None,
    mask: Tensor | None = None,
    tape: Tape | None = None,
) -> tuple[Tensor, dict, list[Tensor]]:
    """x (K, B, in) or (B, in) shared by all members → logits (K, B, classes).

    Returns (logits, new_state, pre): pre[i] is hidden layer i's input to its
    nonlinearity (K, B, C), the quantity Ioffe & Szegedy's Figure 1 tracks.
    `mask` (K, 1, 1) bool selects members whose norm is on; None means all.
    `tape`, when given, is filled with what backprop.step's backward reads.
    """
    act = ACTIVATIONS[cfg.activation]
    kind, after = cfg.kind, cfg.placement == "after"
    args = cfg.norm_args if ctx is None else replace(cfg.norm_args, rmax=ctx.rmax, dmax=ctx.dmax)
    new_st = dict(st)
    pre = []
    h = x
    for i in range(cfg.n_hidden):
        if tape is not None:
            tape.inputs.append(h)
        W, b = p[f"W{i}"], p[f"b{i}"]
        h = torch.baddbmm(b, h, W) if h.dim() == 3 else torch.matmul(h, W) + b  # (K, B, C)
        saved = None
        if not kind.identity and not after:
            h, saved = _norm(i, h, p, st, new_st, kind, args, training, ctx, mask, tape is not None)
        pre.append(h)
        h = act(h)
        if tape is not None:
            tape.acts.append(h)
        if not kind.identity and after:
            h, saved = _norm(i, h, p, st, new_st, kind, args, training, ctx, mask, tape is not None)
        if tape is not None:
            tape.saved.append(saved)
    L = cfg.n_hidden
    if tape is not None:
        tape.inputs.append(h)
    logits = torch.baddbmm(p[f"b{L}"], h, p[f"W{L}"])
    return logits, new_st, pre


def _norm(
    i: int,
    h: Tensor,
    p: dict,
    st: dict,
    new_st: dict,
    kind: norms.Norm,
    args: norms.NormArgs,
    training: bool,
    ctx: StepContext | None,
    mask: Tensor | None,
    keep: bool,
) -> tuple[Tensor, norms.Saved]:
    """Hidden layer i's norm on h, its new running statistics into new_st; then noisy BN's perturbation
    (training only) and the per-member on/off mask. Returns (output, what its backward reads)."""
    state = (st[f"mean{i}"], st[f"var{i}"]) if kind.running_stats else None
    g, b = p[f"gamma{i}"], p[f"beta{i}"]
    y, new, saved = kind.forward(h, g, b, state, args, training=training, keep=keep)
    if new is not None:
        new_st[f"mean{i}"], new_st[f"var{i}"] = new
    if training and ctx is not None and ctx.noise is not None:
        shift, scale = ctx.noise[i]
        y = y * scale + shift
    return (y if mask is None else torch.where(mask, y, h)), saved


def norm_mask(cfg: StackConfig, device) -> Tensor | None:
    """(K, 1, 1) bool mask, or None when every member has the norm (or none has)."""
    if cfg.kind.identity or all(cfg.norm_on):
        return None
    return torch.tensor(cfg.norm_on, device=device).view(-1, 1, 1)
