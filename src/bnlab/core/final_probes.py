"""Measurements on trained models (RunSpec.final_probes), taken once training ends.

`inference`: the member as a plain single PyTorch model, timed at batch 1 and
1000 with BN and with BN folded into its neighbouring Linear layer; parameter
and state memory; the largest |difference| between folded and unfolded test
logits. `invariance`: test accuracy on a·x + b for a grid of (a, b), in eval
mode (running statistics, as deployed) and with batch statistics of the
transformed test set (1000 images per batch; running state left untouched).

Every value is a probe row (step = the run's last step, layer −1, a name).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor, nn

from ..records import LATENCY_BATCHES, SCALES, SHIFTS
from . import folding
from . import model as M


def member_model(
    p: dict[str, Tensor], st: dict[str, Tensor], k: int, with_norm: bool
) -> dict[str, np.ndarray]:
    """Member k's parameters and running statistics, unstacked, as float32 arrays (what the store keeps)."""
    out = {
        n: v[k].detach().cpu().numpy().copy()
        for n, v in p.items()
        if with_norm or not n.startswith(("gamma", "beta"))
    }
    if with_norm:
        out.update({n: v[k].detach().cpu().numpy().copy() for n, v in st.items()})
    return out


def _has_bn(m: dict) -> bool:
    return "mean0" in m


def to_module(m: dict[str, np.ndarray], placement: str, eps: float) -> nn.Sequential:
    """The member as nn.Sequential: Linear → ReLU → BatchNorm1d (after) or Linear → BatchNorm1d → ReLU
    (before)."""
    n_lin = sum(k.startswith("W") for k in m)
    layers: list[nn.Module] = []
    for i in range(n_lin):
        W, b = torch.from_numpy(m[f"W{i}"]), torch.from_numpy(m[f"b{i}"])
        lin = nn.Linear(W.shape[0], W.shape[1])
        lin.weight.data, lin.bias.data = W.T.contiguous(), b.reshape(-1).clone()
        layers.append(lin)
        if i == n_lin - 1:
            break
        block: list[nn.Module] = [nn.ReLU()]
        if _has_bn(m):
            bn = nn.BatchNorm1d(W.shape[1], eps=eps)
            bn.weight.data, bn.bias.data = (
                torch.from_numpy(m[f"{n}{i}"]).reshape(-1).clone() for n in ("gamma", "beta")
            )
            run_mean, run_var = bn.running_mean, bn.running_var
            assert run_mean is not None and run_var is not None  # track_running_stats, the default
            run_mean.data, run_var.data = (
                torch.from_numpy(m[f"{n}{i}"]).reshape(-1).clone() for n in ("mean", "var")
            )
            block = [bn, nn.ReLU()] if placement == "before" else [nn.ReLU(), bn]
        layers += block
    return nn.Sequential(*layers).eval()


def fold(m: dict[str, np.ndarray], placement: str, eps: float) -> dict[str, np.ndarray]:
    """Eval-mode BN folded into the neighbouring Linear layer: a plain MLP's W_i, b_i.

    before (Dense→BN→ReLU): into the preceding layer, W' = W·s, b' = (b − μ)·s + β;
    after (Dense→ReLU→BN): into the following one, W' = diag(s)·W, b' = (β − μ·s)·W + b,
    with s = γ/√(σ² + ε). Without BN the model is returned as it is.
    """
    if not _has_bn(m):
        return {k: v for k, v in m.items()}
    t = {k: torch.from_numpy(v).unsqueeze(0).double() for k, v in m.items()}  # (1, ...) stacked shapes
    n_lin = sum(k.startswith("W") for k in m)
    W = [t[f"W{i}"] for i in range(n_lin)]
    b = [t[f"b{i}"] for i in range(n_lin)]
    for i in range(n_lin - 1):
        bn = (t[f"gamma{i}"], t[f"beta{i}"], t[f"mean{i}"], t[f"var{i}"], eps)
        if placement == "before":
            W[i], b[i] = folding.fold_batch_norm_before(W[i], b[i], *bn)
        else:
            W[i + 1], b[i + 1] = folding.fold_batch_norm_after(W[i + 1], b[i + 1], *bn)
    return {
        **{f"W{i}": W[i][0].float().numpy() for i in range(n_lin)},
        **{f"b{i}": b[i][0].float().numpy() for i in range(n_lin)},
    }


def _latency_us(f: nn.Module, x: Tensor, repeats: int = 7) -> float:
    """Median over `repeats` blocks of the mean time of one forward pass, in µs."""
    with torch.inference_mode():
        f(x)
        n = max(1, int(2e-2 / max(_once(f, x), 1e-6)))  # each block about 20 ms
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                f(x)
            times.append((time.perf_counter() - t0) / n)
    return float(np.median(times) * 1e6)


def _once(f: nn.Module, x: Tensor) -> float:
    t0 = time.perf_counter()
    f(x)
    return time.perf_counter() - t0


def _nbytes(m: dict[str, np.ndarray], prefixes) -> int:
    return int(sum(v.nbytes for k, v in m.items() if k.startswith(prefixes)))


def inference(m: dict[str, np.ndarray], placement: str, eps: float, x_test: Tensor) -> dict[str, float]:
    """Latency (µs) at LATENCY_BATCHES with and without folding, memory (bytes), folding error."""
    x_test = x_test.float().cpu()
    plain = to_module(m, placement, eps)
    folded = to_module(fold(m, placement, eps), placement, eps)
    with torch.inference_mode():
        err = float((plain(x_test) - folded(x_test)).abs().max())
    out = {
        "fold_max_abs_err": err,
        "param_bytes": _nbytes(m, ("W", "b", "gamma", "beta")),
        "state_bytes": _nbytes(m, ("mean", "var")),
        "folded_bytes": _nbytes(fold(m, placement, eps), ("W", "b")),
    }
    for B in LATENCY_BATCHES:
        x = x_test[:B]
        out[f"latency_b{B}_us"] = _latency_us(plain, x)
        out[f"latency_b{B}_folded_us"] = _latency_us(folded, x)
    return out


@torch.no_grad()
def invariance(
    p: dict, st: dict, cfg: M.StackConfig, mask, x: Tensor, y: Tensor, chunk: int = 1000
) -> dict[str, Tensor]:
    """Per member (K,) test accuracy on a·x + b: name 'inv:eval:a=…:b=…' (running statistics) and
    'inv:batch:a=…:b=…' (statistics of each chunk of the transformed test set)."""
    out = {}
    for a in SCALES:
        for b in SHIFTS:
            for mode in ("eval", "batch"):
                hits = torch.zeros((), dtype=torch.long, device=y.device)  # correct answers per member
                for xs, ys in zip(x.split(chunk), y.split(chunk)):
                    logits, _, _ = M.forward(p, st, a * xs + b, cfg, training=mode == "batch", mask=mask)
                    hits = hits + (logits.argmax(-1) == ys).sum(1)
                out[f"inv:{mode}:a={a:g}:b={b:g}"] = hits / len(y)
    return out
