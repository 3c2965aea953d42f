"""Seconds per model-epoch: bnlab's stacked trainer against plain PyTorch loops, in one run.

bnlab is timed as one stack of K in this process (K = 1, 8, 16, 32) and as it trains a large study on a
CPU: one stack of 16 per thread, side by side in worker processes (throughput: seconds ÷ stacks at once).

A model-epoch is one 784-128-64-10 model over 60k images. Every timing is the
median of `repeats` after a warm-up, extrapolated from `steps` optimizer steps
(plain loops) or from an epoch of `n_train` images (bnlab) to 60k images.
FLOPs per image: forward 2·Σ in·out; backward twice that, except the first
layer, which needs no input gradient.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import RunSpec
from .core.train import DeviceData, train_stack
from .outputs import write_text
from .run.jobs import DEFAULT_MAX_STACK, Progress, plan_stacks

DIMS = (784, 128, 64, 10)
EPOCH = 60000


def flops_per_image(dims=DIMS) -> int:
    fwd = [2 * a * b for a, b in zip(dims, dims[1:])]
    return sum(fwd) + 2 * sum(fwd) - fwd[0]


def sgemm_peak(n: int = 2048, repeats: int = 10) -> float:
    """Measured single-precision matmul throughput, GFLOP/s: the best of `repeats` (a peak; on a shared
    machine the median sits below it and would flatter bnlab's fraction of it)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def _torch_model(bn: bool) -> nn.Module:
    layers = []
    for i, (a, b) in enumerate(zip(DIMS, DIMS[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(DIMS) - 2:
            layers.append(nn.ReLU())
            if bn:
                layers.append(nn.BatchNorm1d(b, eps=1e-3, momentum=0.01))
    return nn.Sequential(*layers)


def plain_loop(x, y, batch_size: int, bn: bool, steps: int, loader: bool) -> float:
    """Seconds per model-epoch of an idiomatic PyTorch loop: nn.Sequential + torch.optim.Adam,
    batches from a DataLoader(shuffle=True) or by indexing the resident tensors with a permutation."""
    model = _torch_model(bn)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    if loader:
        dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True)
        batches = iter(dl)
    else:
        perm = torch.randperm(len(x))
        batches = (perm[i:i + batch_size] for i in range(0, len(x), batch_size))
    def one():
        b = next(batches)
        xb, yb = b if loader else (x[b], y[b])
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    for _ in range(10):
        one()
    t = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - t) / steps * EPOCH / batch_size


def stacked(data: DeviceData, batch_size: int, bn: bool, K: int) -> float:
    """Seconds per model-epoch of bnlab's trainer with K members: the second epoch's
    training time (the first is warm-up) × K⁻¹, scaled to 60k images."""
    specs = [RunSpec(norm="batch" if bn else "none", batch_size=batch_size, epochs=2, seed=s) for s in range(K)]
    return _second_epoch(train_stack(specs, data)[0], len(data.y_train))


def _second_epoch(r, n_train: int) -> float:
    """A member's second-epoch training seconds (the first is warm-up), scaled from n_train to 60k images."""
    return (r.epochs[1]["wall_s"] - r.epochs[0]["wall_s"]) * EPOCH / n_train


def side_by_side(ds, batch_size: int, bn: bool, K: int, n_train: int) -> float:
    """Seconds per model-epoch as `bnlab study` trains a large CPU job: one stack of K per thread, side by
    side in worker processes (run.local_backend.Local). Each stack's second epoch (the first is warm-up) × K⁻¹, scaled
    to 60k images, divided by the stacks running at once (needs 2 threads or more)."""
    from .run.local_backend import Local

    W = torch.get_num_threads()
    specs = [RunSpec(norm="batch" if bn else "none", batch_size=batch_size, epochs=2, seed=s, train_limit=n_train,
                     test_limit=1000) for s in range(W * K)]
    with Local("cpu", cpus_per_group=1) as local:
        results = [r for r, _ in local.run(plan_stacks(specs, K), {ds.name: ds}, Progress())]
    return statistics.mean(_second_epoch(r[0], n_train) for r in results) / W


@dataclass
class Row:
    batch_size: int
    bn: bool
    loader: float
    resident: float
    bnlab: dict          # K -> s per model-epoch
    side_by_side: float | None   # bnlab's own choice: a stack of DEFAULT_MAX_STACK per thread, in worker processes
    best_K: int
    speedup_vs_loader: float
    speedup_vs_resident: float
    frac_peak: float


def run(batch_sizes=(16, 32, 64, 128), Ks=(1, 8, 16, 32), n_train: int = 6400, steps: int = 200, repeats: int = 3,
        bn_options=(True, False), data=None, log=print) -> dict:
    """Measure everything in one run; returns a JSON-able dict (rows, peak, threads, flops)."""
    from . import data as D

    ds = data or D.load("mnist")
    x, y = torch.as_tensor(ds.x_train.copy()), torch.as_tensor(ds.y_train.copy())
    dd = DeviceData(x[:n_train], y[:n_train], torch.as_tensor(ds.x_test[:1000].copy()),
                    torch.as_tensor(ds.y_test[:1000].copy()), 10)
    peak = sgemm_peak()
    fl = flops_per_image() * EPOCH / 1e9
    log(f"threads {torch.get_num_threads()}, sgemm peak {peak:.1f} GFLOP/s, {fl:.1f} GFLOP per model-epoch")
    rows = []
    for bs in batch_sizes:
        for bn in bn_options:
            med = lambda f: statistics.median(f() for _ in range(repeats))
            loader = med(lambda: plain_loop(x, y, bs, bn, steps, loader=True))
            resident = med(lambda: plain_loop(x, y, bs, bn, steps, loader=False))
            ours = {K: med(lambda: stacked(dd, bs, bn, K)) for K in Ks}
            side = med(lambda: side_by_side(ds, bs, bn, DEFAULT_MAX_STACK, n_train)) if torch.get_num_threads() > 1 \
                else None
            best = min(ours, key=ours.get)
            t = min(ours[best], side or math.inf)
            rows.append(Row(bs, bn, loader, resident, ours, side, best, loader / t, resident / t, fl / t / peak))
            log(f"bs {bs:4d} bn {bn!s:5}: DataLoader {loader:.3f}  resident {resident:.3f}  "
                + "  ".join(f"K={k} {v:.3f}" for k, v in ours.items())
                + (f"  side by side {side:.3f}" if side else "") + f"  ({loader / t:.1f}x)")
    return dict(threads=torch.get_num_threads(), sgemm_gflops=peak, gflop_per_model_epoch=fl,
                torch=torch.__version__, rows=[asdict(r) for r in rows])


def table(result: dict):
    """A rich table of a run() result."""
    from rich.table import Table

    Ks = list(result["rows"][0]["bnlab"])
    t = Table(title=f"seconds per model-epoch (lower is better); {result['threads']} threads, "
                    f"sgemm peak {result['sgemm_gflops']:.0f} GFLOP/s")
    side = f"bnlab {result['threads']}×K={DEFAULT_MAX_STACK} side by side (auto)"
    for c in ["bs", "BN", "DataLoader", "resident", *[f"bnlab K={k}" for k in Ks], side, "× DataLoader", "× resident",
              "% of peak"]:
        t.add_column(c, justify="right")
    for r in result["rows"]:
        t.add_row(str(r["batch_size"]), "yes" if r["bn"] else "no", f"{r['loader']:.3f}", f"{r['resident']:.3f}",
                  *[f"{r['bnlab'][k]:.3f}" for k in Ks], f"{r['side_by_side']:.3f}" if r["side_by_side"] else "–",
                  f"{r['speedup_vs_loader']:.1f}", f"{r['speedup_vs_resident']:.1f}", f"{100 * r['frac_peak']:.0f}%")
    return t


def save(result: dict, path) -> None:
    """The numbers as JSON, written atomically."""
    write_text(path, json.dumps(result, indent=1, default=str))
