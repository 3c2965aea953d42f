"""Where a training step's time goes: torch.profiler over bnlab's stacked trainer in the steady state.

    python benchmarks/profile_train.py [--batch-size 32] [--stack 16] [--norm batch] [--threads N] [--rows 15]

Trains one stack of K models on the full MNIST training set for 2 epochs as a study trains it (denormals
flushed; --threads 1 is what each side-by-side worker of a study uses), here in the main thread, where the
profiler sees the operators and prints the operators by self CPU time, grouped into the phases of a step
(matmuls, batch gather, Adam, element-wise; the evaluation after each epoch apart, whatever its operators).
The first epoch is warm-up; the profile covers both epochs, so read the shares, not the absolute times (the
profiler adds a few µs per operator). Last, the step's GEMMs alone at the same shapes and thread count
(bnlab.bench_gemm.step_gemms), outside the profiler, for the gap.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from bnlab import bench_gemm, data
from bnlab.bench import DIMS, flops_per_image
from bnlab.config import RunSpec
from bnlab.core.train import EVAL_LABEL, DeviceData, train_stack

PHASES = {  # operator name prefixes → phase of a step
    "matmul (baddbmm/bmm)": ("aten::baddbmm", "aten::bmm", "aten::addmm", "aten::mm"),
    "batch gather": ("aten::index_select", "aten::randperm", "aten::index"),
    "Adam": ("aten::_fused_adam", "aten::_foreach", "aten::lerp", "aten::addcmul", "aten::addcdiv"),
}


EVAL_PHASE = "evaluation (every epoch)"


def phase(name: str) -> str:
    return next((p for p, prefixes in PHASES.items() if name.startswith(prefixes)), "element-wise and other")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--stack", type=int, default=16)
    ap.add_argument("--norm", default="batch")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--rows", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = data.load("mnist")
    dd = DeviceData(
        *(torch.as_tensor(v.copy()) for v in (ds.x_train, ds.y_train, ds.x_test, ds.y_test)), ds.n_classes
    )
    specs = [RunSpec(norm=a.norm, batch_size=a.batch_size, epochs=2, seed=s) for s in range(a.stack)]
    torch.set_flush_denormal(True)  # what run.local.flushed does in its own thread
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        results = train_stack(specs, dd)
    ev = prof.key_averages()
    print(ev.table(sort_by="self_cpu_time_total", row_limit=a.rows))
    by_phase: dict = defaultdict(float)
    for e in prof.events():  # operators under train.EVAL_LABEL are evaluation, whatever they are
        up = e.cpu_parent
        while up is not None and up.name != EVAL_LABEL:
            up = up.cpu_parent
        if e.name != EVAL_LABEL:
            by_phase[EVAL_PHASE if up is not None else phase(e.name)] += e.self_cpu_time_total
    total = sum(by_phase.values())
    steps = 2 * -(-len(ds.y_train) // a.batch_size)
    print(
        f"K={a.stack} bs {a.batch_size} {a.norm}: {steps} steps, {torch.get_num_threads()} threads "
        f"(evaluation in µs per training step too)"
    )
    for p, t in sorted(by_phase.items(), key=lambda kv: -kv[1]):
        print(f"  {p:24s} {t / total:6.1%}  {t / steps:8.1f} µs/step")
    w = results[0].epochs[-1]["wall_s"] - results[0].epochs[0]["wall_s"]
    gflop = flops_per_image() * len(ds.y_train) / 1e9
    print(f"epoch 2 under the profiler: {w:.3f} s per model-epoch ({gflop / w:.1f} GFLOP/s per core set)")
    alone = bench_gemm.step_gemms(a.stack, a.batch_size, DIMS, threads=a.threads)
    print(f"the step's GEMMs alone, same shapes, {a.threads} thread(s): {1e6 * alone:.1f} µs/step")


if __name__ == "__main__":
    main()
