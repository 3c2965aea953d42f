"""The FLOP floor and a training step's GEMMs alone: what `bnlab bench` compares bnlab's times against.

The floor of a piece of training is its FLOPs ÷ the sgemm peak measured in the same run (bench.sgemm_peak):
the time it would take if every FLOP ran at the peak; "× floor" = wall time ÷ floor (1 would be perfect).

`step_gemms` times the matrix products of one fast training step (core/backprop.py) alone, at the same
shapes as a stack of K members at batch size B, on preallocated random data, in the calling thread
(1 torch thread by default): per layer i the forward baddbmm (K, B, in_i) × (K, in_i, out_i), the weight
gradient hᵀ ∂z (K, in_i, B) × (K, B, out_i) and, for every layer but the first, the input gradient
∂z Wᵀ (K, B, out_i) × (K, out_i, in_i). `step_in_training` trains such a stack and returns its steady
seconds per step, so the gap between the two is a measurement.

`step_adam` times the step's optimizer alone: StackedOptimizer's fused Adam over a K-member BN stack's
flat parameter buffer (model.Layout), as training calls it. Adam is a stream over memory: per step it
reads the parameters, gradients and both moments and writes the parameters and moments, 7 × the buffer,
with a few FLOPs per float. `stream_gbs` is the memory bandwidth one thread reaches on the same buffer
with the leanest stream there is, an in-place scale (one read, one write per float), so Adam's GB/s
beside it says whether Adam is at the memory floor, and GEMMs + Adam alone bound the step from below.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial

import torch


def floor_s(gflop: float, peak_gflops: float) -> float:
    """Seconds `gflop` GFLOP take at the sgemm peak (GFLOP/s)."""
    return gflop / peak_gflops


def x_floor(wall_s: float, gflop: float, peak_gflops: float) -> float:
    """wall ÷ (FLOPs ÷ peak): how many times the FLOP floor a piece of training took."""
    return wall_s / floor_s(gflop, peak_gflops)


def _products(K: int, B: int, dims: Sequence[int]) -> list[Callable[[], object]]:
    """The step's GEMMs as closures over preallocated random operands and outputs, in step order."""
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    ops: list[Callable[[], object]] = []
    layers = list(zip(dims, dims[1:]))
    hs = [r(K, B, a) for a, _ in layers]  # each layer's input
    Ws = [r(K, a, b) for a, b in layers]
    bs = [r(K, 1, b) for _, b in layers]
    zs = [torch.empty(K, B, b) for _, b in layers]
    for h, W, b, z in zip(hs, Ws, bs, zs):
        ops.append(partial(torch.baddbmm, b, h, W, out=z))
    for i in reversed(range(len(layers))):
        dz, gW = r(*zs[i].shape), torch.empty_like(Ws[i])
        ops.append(partial(torch.bmm, hs[i].transpose(1, 2), dz, out=gW))  # ∂W = hᵀ ∂z
        if i > 0:
            dh = torch.empty_like(hs[i])
            ops.append(partial(torch.bmm, dz, Ws[i].transpose(1, 2), out=dh))  # ∂h = ∂z Wᵀ
    return ops


def step_gemms(
    K: int, B: int, dims: Sequence[int], threads: int = 1, steps: int = 200, repeats: int = 7
) -> float:
    """Seconds per step of the step's GEMMs alone (module doc) with `threads` torch threads: the best of
    `repeats` means over `steps` steps (a shared machine's quiet moment, as bench.sgemm_peak takes)."""
    ops = _products(K, B, dims)
    with _threads(threads):
        return _best(lambda: [op() for op in ops], steps, repeats)


def _best(f: Callable[[], object], steps: int, repeats: int) -> float:
    """The best of `repeats` means over `steps` calls of f, after warm-up."""
    for _ in range(20):
        f()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            f()
        best = min(best, (time.perf_counter() - t) / steps)
    return best


@contextlib.contextmanager
def _threads(threads: int) -> Iterator[None]:
    """torch's thread count set to `threads` inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def step_adam(
    K: int, dims: Sequence[int], threads: int = 1, steps: int = 200, repeats: int = 7
) -> tuple[float, int]:
    """(seconds per Adam step of a K-member BN stack alone, bytes it streams per step: 7 × the buffer)."""
    from .config import RunSpec
    from .core import model as M
    from .core.optim import StackedOptimizer

    specs = [RunSpec(norm="batch", hidden=tuple(dims[1:-1]), seed=k) for k in range(K)]
    cfg = M.StackConfig.from_specs(specs, dims[0], dims[-1])
    layout = M.Layout.of(cfg)
    flat = M.init_params(specs, cfg)
    grads = torch.randn(flat.shape, generator=torch.Generator().manual_seed(0)) * 1e-3
    blocks, grad_blocks = layout.blocks(flat), layout.blocks(grads)
    opt = StackedOptimizer.create("adam", blocks, [1e-3] * K, eps=1e-7, eps_form="keras")
    with _threads(threads):
        return _best(
            lambda: opt.step(blocks, grad_blocks, list(range(K))), steps, repeats
        ), 7 * 4 * flat.numel()


def stream_gbs(n_floats: int, threads: int = 1, steps: int = 200, repeats: int = 7) -> float:
    """GB/s of x.mul_(c) over n_floats float32 (8 bytes a float: read and written) with `threads` threads."""
    x = torch.rand(n_floats) + 0.5
    with _threads(threads):
        return 8 * n_floats / _best(lambda: x.mul_(1.0), steps, repeats) / 1e9


def step_in_training(per_model_epoch: list[float], K: int, steps_per_epoch: int) -> float:
    """Steady seconds per step of a K-member stack from its seconds per model-epoch, epoch by epoch
    (the mean of epochs 2..n, as bench.steady)."""
    return statistics.mean(per_model_epoch[1:]) * K / steps_per_epoch
