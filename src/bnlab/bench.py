"""Seconds per model-epoch on the work users run: bnlab's stacked trainer beside plain PyTorch loops,
in one run.

Timed in this run, batch size by batch size, on the same data:
- plain loops, as users write them: one nn.Sequential + torch.optim.Adam, batches from a
  DataLoader(shuffle=True) or by indexing the resident tensors with a permutation (no denormal flushing);
- bnlab as one stack of K in this process with all threads (K = 1, 16 by default), and as `threads` stacks of
  16 side by side in worker processes with one thread each (throughput: seconds ÷ stacks at once); "choice"
  is what run.tuning picks for such a job on this machine;
- the study row: the `seed` study (none/batch × batch size 16/32/64/128 × 5 seeds × 10 epochs = 400
  model-epochs) trained as `bnlab study seed` trains it (stacks from jobs.plan_stacks, the local backend's
  own plan), its whole wall time (the tuning measurement, worker start-up and the test evaluation after
  every epoch included), beside the plain loops' time for the same work: each configuration's measured
  seconds per model-epoch × seeds × epochs.

A model-epoch is one 784-128-64-10 model over the whole training set (MNIST: 60k images; `quick`: a slice,
which the table says). Steady state: each time is the mean of epochs 2..n (n = `epochs` >= 3; the first is
warm-up), so what builds up during training (denormal floats) shows; per-epoch times are in the JSON.
FLOPs per image: forward 2·Σ in·out; backward twice that, except the first layer, which needs no input
gradient. The headline ratio is "× floor" (bench_gemm): a time ÷ its FLOPs at the sgemm peak measured in the
same run, for every row's bnlab choice and for the study row; beside it, the step of a K = 10, batch-32 stack
with 1 thread in training, against the same step's GEMMs alone (bench_gemm.step_gemms).
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import bench_gemm, studies
from .config import RunSpec
from .core.train import DeviceData
from .outputs import write_text
from .run import tuning
from .run.jobs import DEFAULT_MAX_STACK, Progress, plan_stacks
from .run.local import Local, flushed_each, train_here

DIMS = (784, 128, 64, 10)
STEP_SHAPE = (10, 32)  # K, batch size of the step timed beside its GEMMs alone (1 thread: one study worker)
QUICK = dict(n_train=4096, epochs=3, study_seeds=2, study_epochs=3)  # --quick: a slice, for CI and tests


def flops_per_image(dims=DIMS) -> int:
    fwd = [2 * a * b for a, b in zip(dims, dims[1:])]
    return sum(fwd) + 2 * sum(fwd) - fwd[0]


def sgemm_peak(sizes=((512, 300), (1024, 40), (2048, 10))) -> float:
    """Measured single-precision matmul throughput, GFLOP/s: the best over (n, repeats) of n×n products
    (a peak: on a shared machine the median sits below it and would flatter bnlab's fraction of it; many
    short products catch a quiet moment more often than a few long ones)."""
    best = 0.0
    for n, repeats in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def _torch_model(bn: bool) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(DIMS, DIMS[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(DIMS) - 2:
            layers.append(nn.ReLU())
            if bn:
                layers.append(nn.BatchNorm1d(b, eps=1e-3, momentum=0.01))
    return nn.Sequential(*layers)


def steady(per_epoch: list[float]) -> float:
    """The steady state: the mean of epochs 2..n."""
    return statistics.mean(per_epoch[1:])


def plain_loop(x, y, batch_size: int, bn: bool, epochs: int, loader: bool) -> list[float]:
    """Seconds of each epoch of an idiomatic PyTorch loop over all of (x, y): nn.Sequential +
    torch.optim.Adam, batches from a DataLoader(shuffle=True) or by indexing the resident tensors with a
    permutation."""
    model = _torch_model(bn)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    dl = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True
    )
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        batches = dl if loader else ((x[b], y[b]) for b in torch.randperm(len(x)).split(batch_size))
        for xb, yb in batches:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        times.append(time.perf_counter() - t)
    return times


def _per_epoch(r) -> list[float]:
    """A member's training seconds of each epoch (its stack's time ÷ K; evaluation excluded)."""
    w = [e["wall_s"] for e in r.epochs]
    return [w[0]] + [b - a for a, b in zip(w, w[1:])]


def _specs(batch_size: int, bn: bool, epochs: int, n: int, **kw) -> list[RunSpec]:
    return [
        RunSpec(norm="batch" if bn else "none", batch_size=batch_size, epochs=epochs, seed=s, **kw)
        for s in range(n)
    ]


def stacked(data: DeviceData, batch_size: int, bn: bool, K: int, epochs: int) -> list[float]:
    """Seconds per model-epoch, epoch by epoch, of bnlab's trainer with K members in this process."""
    (results, _) = train_here(_specs(batch_size, bn, epochs, K), data)
    return _per_epoch(results[0])


def side_by_side(
    ds, batch_size: int, bn: bool, K: int, workers: int, epochs: int, n_train, n_test
) -> list[float]:
    """Seconds per model-epoch, epoch by epoch, with `workers` stacks of K side by side in worker processes,
    one thread each (run.local.Local): the mean over stacks ÷ the stacks running at once."""
    specs = _specs(batch_size, bn, epochs, workers * K, train_limit=n_train, test_limit=n_test)
    with Local("cpu", cpus_per_group=1) as local:
        per = [_per_epoch(rs[0]) for rs, _ in local.run(plan_stacks(specs, K), {ds.name: ds}, Progress())]
    return [statistics.mean(p[e] for p in per) / workers for e in range(epochs)]


@dataclass
class Row:
    batch_size: int
    bn: bool
    loader: float  # steady seconds per model-epoch
    resident: float
    bnlab: dict  # K -> steady seconds per model-epoch, one stack in this process
    side_by_side: float | None  # `threads` stacks of DEFAULT_MAX_STACK, one thread each, in worker processes
    choice: float | None  # what run.tuning picks for a job of such stacks
    choice_plan: str
    measured_gain: float | None  # run.tuning's measured side-by-side gain (> 1: side by side faster)
    speedup_vs_loader: float  # against bnlab's choice
    speedup_vs_resident: float
    frac_peak: float
    x_floor: float  # bnlab's choice (else its best K) ÷ the FLOP floor of a model-epoch
    epochs: dict  # per-epoch seconds of each column


def _median(repeats: int, f, *args) -> list[float]:
    """Epoch by epoch, the median of `repeats` runs of f(*args) (each a list of per-epoch seconds)."""
    return [statistics.median(e) for e in zip(*(f(*args) for _ in range(repeats)))]


def _plain(x, y, bs: int, bn: bool, epochs: int, repeats: int) -> tuple[float, float, dict]:
    per = {
        k: _median(repeats, plain_loop, x, y, bs, bn, epochs, k == "loader") for k in ("loader", "resident")
    }
    return steady(per["loader"]), steady(per["resident"]), per


def step_vs_gemms(dd: DeviceData, epochs: int, repeats: int, K: int, batch_size: int) -> dict:
    """A K-member BN stack's steady seconds per step in training with 1 thread (as a study's worker trains),
    beside the seconds of the same step's GEMMs alone (bench_gemm.step_gemms), in this run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the training thread reads torch's global count when it starts
    try:
        per = _median(repeats, stacked, dd, batch_size, True, K, epochs)
    finally:
        torch.set_num_threads(threads)
    steps = -(-len(dd.y_train) // batch_size)
    step_s = bench_gemm.step_in_training(per, K, steps)
    gemms_s = bench_gemm.step_gemms(K, batch_size, DIMS, threads=1)
    adam_s, adam_bytes = bench_gemm.step_adam(K, DIMS, threads=1)
    return dict(
        K=K,
        batch_size=batch_size,
        threads=1,
        step_s=step_s,
        gemms_s=gemms_s,
        ratio=step_s / gemms_s,
        gemm_gflops=K * batch_size * flops_per_image() / gemms_s / 1e9,
        adam_s=adam_s,
        adam_gbs=adam_bytes / adam_s / 1e9,
        stream_gbs=bench_gemm.stream_gbs(adam_bytes // 28, threads=1),
        gemms_adam_ratio=(gemms_s + adam_s) / gemms_s,
        epochs=per,
    )


def study_row(ds, plain: dict, seeds: int, epochs: int, n_train, n_test) -> dict:
    """The seed study trained as `bnlab study seed` trains it, whole wall time; beside the plain loops'
    time for the same model-epochs from `plain[(batch_size, bn)] = (loader, resident)` seconds per
    model-epoch. Its floor (bench_gemm) is filled in by run(), which knows the peak."""
    study = studies.get("seed")
    specs = study.specs(seeds, epochs=epochs, train_limit=n_train, test_limit=n_test)
    groups = plan_stacks(specs, study.max_stack or DEFAULT_MAX_STACK, study.mix_none)
    t0 = time.perf_counter()
    with Local("cpu") as local:
        results = [
            r
            for rs, _ in local.run(groups, {ds.name: ds}, Progress(), exclusive=not study.mix_none)
            for r in rs
        ]
        plan = local.plan
    assert plan is not None  # Local.run sets it
    wall = time.perf_counter() - t0
    per_cfg: dict = {}
    for r in results:
        per_cfg.setdefault((r.spec.batch_size, r.spec.norm), []).append(r.epochs[-1]["test_acc"])
    loader = sum(plain[(s.batch_size, s.norm != "none")][0] * s.epochs for s in specs)
    resident = sum(plain[(s.batch_size, s.norm != "none")][1] * s.epochs for s in specs)
    return dict(
        model_epochs=sum(s.epochs for s in specs),
        runs=len(specs),
        stacks=[len(g) for g in groups],
        wall_s=wall,
        plan=plan.why,
        workers=plan.workers,
        loader_s=loader,
        resident_s=resident,
        speedup_vs_loader=loader / wall,
        speedup_vs_resident=resident / wall,
        test_acc={f"{n} bs{b}": statistics.mean(a) for (b, n), a in sorted(per_cfg.items())},
    )


def run(
    batch_sizes=(16, 32, 64, 128),
    Ks=(1, 16),
    epochs: int = 3,
    repeats: int = 1,
    bn_options=(True,),
    n_train: int | None = None,
    n_test: int | None = 1000,
    study: bool = True,
    study_seeds: int = 5,
    study_epochs: int = 10,
    data=None,
    log=print,
) -> dict:
    """Measure everything in one run; returns a JSON-able dict (rows, study, peak, threads, flops).
    n_train None: the whole training set (the full measurement); a number: that slice (a quick look)."""
    from . import data as D

    if epochs < 3:
        raise ValueError("epochs must be >= 3: epoch 1 is warm-up and the steady state needs two more")
    ds = data or D.load("mnist")
    x, y = torch.as_tensor(ds.x_train[:n_train].copy()), torch.as_tensor(ds.y_train[:n_train].copy())
    dd = DeviceData(
        x,
        y,
        torch.as_tensor(ds.x_test[:n_test].copy()),
        torch.as_tensor(ds.y_test[:n_test].copy()),
        ds.n_classes,
    )
    threads = torch.get_num_threads()
    peak = sgemm_peak()
    fl = flops_per_image() * len(x) / 1e9
    log(
        f"threads {threads}, sgemm peak {peak:.1f} GFLOP/s, {fl:.1f} GFLOP per model-epoch of {len(x)} images"
    )
    rows, plain = [], {}
    for bs in batch_sizes:
        for bn in bn_options:
            loader, resident, per = _plain(x, y, bs, bn, epochs, repeats)
            plain[(bs, bn)] = (loader, resident)
            per.update({f"K={K}": _median(repeats, stacked, dd, bs, bn, K, epochs) for K in Ks})
            ours = {K: steady(per[f"K={K}"]) for K in Ks}
            side = None
            if threads > 1:
                per["side"] = _median(
                    repeats, side_by_side, ds, bs, bn, DEFAULT_MAX_STACK, threads, epochs, n_train, n_test
                )
                side = steady(per["side"])
            group = _specs(bs, bn, epochs, DEFAULT_MAX_STACK, train_limit=n_train)
            plan = tuning.choose(
                [group] * threads,
                {ds.name: len(x)},
                {ds.name: x.shape[1]},
                {ds.name: ds.n_classes},
                threads,
                in_threads=flushed_each,
            )
            choice = side if plan.workers > 1 else ours.get(DEFAULT_MAX_STACK)
            best = choice or min(ours.values())
            rows.append(
                Row(
                    bs,
                    bn,
                    loader,
                    resident,
                    ours,
                    side,
                    choice,
                    plan.why,
                    plan.side_gain,
                    loader / best,
                    resident / best,
                    fl / best / peak,
                    bench_gemm.x_floor(best, fl, peak),
                    per,
                )
            )
            log(
                f"bs {bs:4d} bn {bn!s:5}: DataLoader {loader:.3f}  resident {resident:.3f}  "
                + "  ".join(f"K={k} {v:.3f}" for k, v in ours.items())
                + (f"  side by side {side:.3f}" if side else "")
                + f"  choice: {plan.why}  ({loader / best:.1f}x DataLoader, "
                f"{bench_gemm.x_floor(best, fl, peak):.1f}x floor)"
            )
    out = dict(
        threads=threads,
        sgemm_gflops=peak,
        gflop_per_model_epoch=fl,
        n_train=len(x),
        epochs=epochs,
        full=n_train is None or n_train >= len(ds.y_train),
        torch=torch.__version__,
        cpu=cpu_name(),
        rows=[asdict(r) for r in rows],
    )
    sg = out["step_vs_gemms"] = step_vs_gemms(dd, epochs, repeats, *STEP_SHAPE)
    log(
        f"K={sg['K']} bs {sg['batch_size']}, 1 thread: {1e3 * sg['step_s']:.3f} ms per step in training, "
        f"its GEMMs alone {1e3 * sg['gemms_s']:.3f} ms ({sg['gemm_gflops']:.0f} GFLOP/s): "
        f"{sg['ratio']:.2f}x; "
        f"Adam alone {1e3 * sg['adam_s']:.3f} ms ({sg['adam_gbs']:.0f} GB/s; an in-place scale streams "
        f"{sg['stream_gbs']:.0f} GB/s): GEMMs + Adam alone {sg['gemms_adam_ratio']:.2f}x the GEMMs"
    )
    if study:
        cfgs = studies.get("seed").axes
        for bs in cfgs["batch_size"]:
            for bn in (n != "none" for n in cfgs["norm"]):
                if (bs, bn) not in plain:
                    plain[(bs, bn)] = _plain(x, y, bs, bn, epochs, repeats)[:2]
                    log(
                        f"bs {bs:4d} bn {bn!s:5}: DataLoader {plain[(bs, bn)][0]:.3f}  "
                        f"resident {plain[(bs, bn)][1]:.3f} (for the study row)"
                    )
        out["plain"] = {f"bs{bs} {'batch' if bn else 'none'}": v for (bs, bn), v in sorted(plain.items())}
        # the study evaluates on the whole test set, as `bnlab study seed` does, unless this is a quick look
        s = study_row(ds, plain, study_seeds, study_epochs, n_train, None if n_train is None else n_test)
        s["gflop"] = s["model_epochs"] * fl
        s["floor_s"] = bench_gemm.floor_s(s["gflop"], peak)
        s["x_floor"] = bench_gemm.x_floor(s["wall_s"], s["gflop"], peak)
        out["study"] = s
        log(
            f"seed study, {s['model_epochs']} model-epochs: bnlab {s['wall_s']:.1f} s ({s['plan']}), "
            f"{s['x_floor']:.1f}x its FLOP floor of {s['floor_s']:.1f} s; "
            f"plain loops {s['loader_s']:.0f} s (DataLoader), {s['resident_s']:.0f} s (resident)"
        )
    out["peak_rss_mb"] = dict(
        this_process=_maxrss(resource.RUSAGE_SELF), largest_worker=_maxrss(resource.RUSAGE_CHILDREN)
    )
    return out


def _maxrss(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def cpu_name() -> str:
    """lscpu's model name, or platform's."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def save(result: dict, path) -> None:
    """The numbers as JSON, written atomically."""
    write_text(path, json.dumps(result, indent=1, default=str))
