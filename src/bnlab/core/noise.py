"""Noisy batch norm (Santurkar et al. 2018, §2.1): BN followed by time-varying, non-zero-mean,
non-unit-variance noise, i.i.d. for each sample and unit.

Santurkar et al. "perturb each activation for each sample in the batch using i.i.d. noise sampled from a
non-zero mean and non-unit variance distribution", a distribution that "changes at each time step". Here,
after each hidden layer's norm (affine included), training mode only:

    y'[b, c] = scale[b, c] · y[b, c] + shift[b, c]

For each step t, hidden layer and unit c, the noise distribution's parameters are drawn first:

    μ_t,c ~ U(−0.5, 0.5)     mean of the shift         σ_t,c ~ U(0, 0.5)    its standard deviation
    a_t,c ~ U(1, 1.25)       mean of the scale         ρ_t,c ~ U(0, 0.1)    its standard deviation

then for every sample b of the step's batch, independently:

    shift[b, c] ~ N(μ_t,c, σ²_t,c),     scale[b, c] ~ N(a_t,c, ρ²_t,c)

so each unit's output has a mean shifted by μ_t,c and a variance scaled by about a²_t,c plus σ²_t,c over the
batch, both changing every step (the means are the ranges bnlab used before, when one shift and scale per
step and unit was broadcast over the batch). The scale stays positive (a − 10ρ ≥ 0). The exact ranges of
the paper's appendix were not available here; these are bnlab's choice, stated in the report.

Every member draws from its own generator (seeded from its run seed and the epoch), parameters first, then
the per-sample draws, step by step, so its noise does not depend on its stack. Draws are made on the CPU
and moved to the device: 2·b·ΣC normal and 4·ΣC uniform numbers per member and step.
Eval mode has no noise. `probe` gives a probe batch noise from the current step's distribution (a
generator of its own per step, so probing leaves the training noise unchanged).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import RunSpec
from . import model as M

SHIFT_MEAN = (-0.5, 0.5)
SHIFT_SD = (0.0, 0.5)
SCALE_MEAN = (1.0, 1.25)
SCALE_SD = (0.0, 0.1)


class NoisyBN:
    """The noise of one stack's members, step by step."""

    def __init__(self, specs: list[RunSpec], cfg: M.StackConfig, device):
        self.seeds = [s.seed for s in specs]
        self.widths = list(cfg.dims[1:-1])
        self.device = device
        self.gens: list[torch.Generator] = []
        self.params: Tensor | None = None  # (K, 4, ΣC): μ, σ, a, ρ of the current step

    def start_epoch(self, epoch: int) -> None:
        self.gens = [torch.Generator().manual_seed(M.member_seed(s, f"noise:{epoch}")) for s in self.seeds]

    def step(self, b: int) -> list[tuple[Tensor, Tensor]]:
        """This step's noise for a batch of b: per hidden layer (shift, scale), each (K, b, C)."""
        C = sum(self.widths)
        lo_hi = torch.tensor([SHIFT_MEAN, SHIFT_SD, SCALE_MEAN, SCALE_SD]).unsqueeze(-1)  # (4, 2, 1)
        params, z = [], []
        for g in self.gens:
            u = torch.rand(4, C, generator=g)
            params.append(lo_hi[:, 0] + (lo_hi[:, 1] - lo_hi[:, 0]) * u)  # (4, C)
            z.append(torch.randn(2, b, C, generator=g))
        self.params = torch.stack(params)
        return self._noise(self.params, torch.stack(z))

    def probe(self, n: int, step: int) -> list[tuple[Tensor, Tensor]]:
        """Noise for n probe samples from the current step's distribution (own generator per member and
        step)."""
        C = sum(self.widths)
        gens = [torch.Generator().manual_seed(M.member_seed(s, f"probe-noise:{step}")) for s in self.seeds]
        z = torch.stack([torch.randn(2, n, C, generator=g) for g in gens])
        assert self.params is not None, "probe() reads the distribution of the step taken before it"
        return self._noise(self.params, z)

    def _noise(self, params: Tensor, z: Tensor) -> list[tuple[Tensor, Tensor]]:
        """params (K, 4, C), z (K, 2, b, C) standard normal → per layer (shift, scale) (K, b, C_i) on the
        device."""
        mu, sd, a, rho = (params[:, j].unsqueeze(1) for j in range(4))  # (K, 1, C)
        shift = (mu + sd * z[:, 0]).to(self.device)
        scale = (a + rho * z[:, 1]).to(self.device)
        return list(zip(shift.split(self.widths, -1), scale.split(self.widths, -1)))
