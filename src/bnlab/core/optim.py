"""Stacked Adam and SGD with a learning rate per member, state held explicitly.

Adam (Kingma & Ba 2015), per parameter, step t:
    m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²,
    torch (eps_form "torch", torch.optim.Adam):  p ← p − lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)
    Keras (eps_form "keras", tf.keras / Keras 3 Adam):
        lr_t = lr·√(1−β2ᵗ)/(1−β1ᵗ),   p ← p − lr_t · m / (√v + ε)
Keras adds ε to √v before the bias correction: in the torch form its update is
    p ← p − lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε/√(1−β2ᵗ)),
an effective ε of ε/√(1−β2ᵗ): 31.6·ε at step 1 (β2 = 0.999), 1.8·ε at step 1000, → ε as t grows.
That matters where √v̂ is small (rarely-updated weights, early steps), not only at the 1e-7 level.
Both forms run as PyTorch's fused kernel (`torch._fused_adam_`, one pass over memory) on runs of
consecutive members that share a learning rate; the Keras form passes the kernel ε_t = ε/√(1−β2ᵗ),
computed on the host from the step count each step (no device sync). Frozen (diverged) members are skipped.
The lists of member-slice views the kernel takes are built once per run of members and reused every step
(building them was ~10% of Adam's time at K = 10, batch 32).
SGD: buf ← μ·buf + g (μ = 0: buf = g),  p ← p − lr·buf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor


def _runs(members: list[int]) -> list[tuple[int, int]]:
    """[0, 1, 2, 5, 6] → [(0, 3), (5, 7)]: consecutive members as slices."""
    runs: list[tuple[int, int]] = []
    for k in members:
        if runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    return runs


@dataclass
class StackedOptimizer:
    """Optimizer state for K stacked members: moments shaped like the parameters."""

    kind: str  # adam | sgd
    lrs: tuple[float, ...]  # per member
    eps: float = 1e-7
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.0
    state: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    step_count: Tensor | None = None
    eps_form: str = "torch"  # torch | keras: where ε enters Adam's update (module docstring)
    t: int = 0  # Adam steps taken, on the host
    # (id(params), id(grads), a, b) → (params, grads, lists of slice views): built once, reused every step
    views: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        kind: str,
        params: dict[str, Tensor],
        lrs,
        *,
        eps: float = 1e-7,
        betas=(0.9, 0.999),
        momentum: float = 0.0,
        eps_form: str = "torch",
    ) -> StackedOptimizer:
        if eps_form not in ("torch", "keras"):
            raise ValueError(f"eps_form must be 'torch' or 'keras', got {eps_form!r}")
        opt = cls(kind, tuple(float(x) for x in lrs), eps, tuple(betas), momentum, eps_form=eps_form)
        if kind == "adam":
            opt.state = {n: {"m": torch.zeros_like(p), "v": torch.zeros_like(p)} for n, p in params.items()}
            opt.step_count = torch.zeros((), dtype=torch.float32, device=next(iter(params.values())).device)
        elif momentum > 0:
            opt.state = {n: {"buf": torch.zeros_like(p)} for n, p in params.items()}
        return opt

    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], active: list[int]) -> None:
        """Update members in `active` in place; the others keep their parameters and state."""
        by_lr: dict[float, list[int]] = {}
        for k in active:
            by_lr.setdefault(self.lrs[k], []).append(k)
        if self.kind == "adam":
            assert self.step_count is not None  # create() makes Adam's step count
            self.step_count += 1  # in place: the fused kernel reads this one tensor
            self.t += 1
        with torch.no_grad():
            for lr, members in by_lr.items():
                for a, b in _runs(members):
                    self._update(params, grads, lr, a, b)

    def adam_eps(self) -> float:
        """The ε the fused (torch-form) kernel gets at the current step: ε, or Keras's ε/√(1−β2ᵗ)."""
        if self.eps_form == "torch":
            return self.eps
        return self.eps / math.sqrt(
            -math.expm1(self.t * math.log(self.betas[1]))
        )  # 1 − β2ᵗ, exact for small t

    def _slices(self, params: dict, grads: dict, a: int, b: int) -> list[list[Tensor]]:
        """[parameters, gradients, then each state tensor] of members a..b−1, as lists of views in
        parameter order; cached for these very dicts."""
        key = (id(params), id(grads), a, b)
        hit = self.views.get(key)
        if hit is None or hit[0] is not params or hit[1] is not grads:
            names = list(params)
            kinds = list(self.state[names[0]]) if self.state else []
            lists = [[d[n][a:b] for n in names] for d in (params, grads)]
            lists += [[self.state[n][s][a:b] for n in names] for s in kinds]
            hit = self.views[key] = (params, grads, lists)
        return hit[2]

    def _update(self, params, grads, lr: float, a: int, b: int) -> None:
        ps, gs, *moments = self._slices(params, grads, a, b)
        if self.kind == "adam":
            assert self.step_count is not None
            ms, vs = moments
            torch._fused_adam_(
                ps,
                gs,
                ms,
                vs,
                [],
                [self.step_count] * len(ps),
                lr=lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.adam_eps(),
                amsgrad=False,
                maximize=False,
            )
            return
        for i, (p, g) in enumerate(zip(ps, gs)):
            if self.momentum > 0:
                buf = moments[0][i]
                buf.mul_(self.momentum).add_(g)
                g = buf
            p.add_(g, alpha=-lr)
