"""The stacked MLP and optimizer against K independent torch.nn models with torch.optim."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bnlab.config import RunSpec
from bnlab.core import model as M
from bnlab.core.optim import StackedOptimizer


def _stack(specs, dims=(20, 16, 12, 5)):
    cfg = M.StackConfig.from_specs(specs, dims[0], dims[-1])
    cfg = M.StackConfig(**{**cfg.__dict__, "dims": dims})
    return cfg, M.Layout.of(cfg), M.init_params(specs, cfg)


def _torch_model(p, k, cfg, bn_momentum):
    """nn.Sequential copy of member k: Linear → ReLU → BatchNorm1d per hidden layer (or BN before ReLU)."""
    layers = []
    for i in range(len(cfg.dims) - 1):
        lin = nn.Linear(cfg.dims[i], cfg.dims[i + 1])
        with torch.no_grad():
            lin.weight.copy_(p[f"W{i}"][k].T)
            lin.bias.copy_(p[f"b{i}"][k, 0])
        layers.append(lin)
        if i < cfg.n_hidden:
            bn = (
                nn.BatchNorm1d(cfg.dims[i + 1], eps=cfg.bn.eps, momentum=bn_momentum)
                if cfg.norm == "batch"
                else None
            )
            seq = [bn, nn.ReLU()] if cfg.placement == "before" else [nn.ReLU(), bn]
            layers += [m for m in seq if m is not None]
    return nn.Sequential(*layers)


def test_inits_follow_their_definitions():
    specs = [RunSpec(seed=s) for s in range(2)]
    cfg, layout, flat = _stack(specs, dims=(784, 128, 64, 10))
    p = layout.views(flat)
    a = (6 / (784 + 128)) ** 0.5
    assert p["W0"].abs().max() <= a and p["W0"].abs().max() > 0.95 * a
    assert torch.all(p["b0"] == 0)
    assert not torch.equal(p["W0"][0], p["W0"][1])  # seeds differ
    torch_specs = [RunSpec(profile="torch", seed=0)]
    cfg_t, layout_t, flat_t = _stack(torch_specs, dims=(784, 128, 64, 10))
    pt = layout_t.views(flat_t)
    assert pt["W0"].abs().max() <= 784**-0.5 and pt["b0"].abs().max() > 0  # U(±1/√in), bias too
    scaled = M.init_params([RunSpec(seed=0, init_scale=3.0)], cfg)
    assert torch.allclose(layout.views(scaled)["W0"][0], 3 * p["W0"][0])


@pytest.mark.parametrize("placement", ["after", "before"])
@pytest.mark.parametrize("norms", [("none", "none"), ("batch", "batch"), ("none", "batch")])
def test_stack_equals_independent_torch_models(norms, placement):
    """K=3 stacked members (mixing BN on/off) train like three torch.nn models with torch.optim.Adam."""
    specs = [
        RunSpec(norm=n, placement=placement, profile="torch", seed=s, lr=lr)
        for n, s, lr in zip((norms[0], norms[1], norms[1]), (0, 1, 2), (1e-3, 3e-3, 1e-3))
    ]
    cfg, layout, flat = _stack(specs)
    flat = flat.double().requires_grad_()  # float64: parity down to rounding, not amplified rounding
    p = layout.views(flat)
    models = []
    for k, s in enumerate(specs):
        c = M.StackConfig(**{**cfg.__dict__, "norm": s.norm})
        models.append(_torch_model(p, k, c, bn_momentum=0.1).double())
    opts = [torch.optim.Adam(m.parameters(), lr=s.lr, eps=1e-8) for m, s in zip(models, specs)]
    st = {n: t.double() for n, t in M.init_state(cfg, len(specs)).items()}
    opt = StackedOptimizer.create("adam", layout.blocks(flat), [s.lr for s in specs], eps=1e-8)
    mask = M.norm_mask(cfg, "cpu")
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        x = torch.rand(len(specs), 8, 20, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 5, (len(specs), 8), generator=gen)
        logits, st, _ = M.forward(layout.views(flat), st, x, cfg, training=True, mask=mask)
        losses = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
        (g,) = torch.autograd.grad(losses.sum(), flat)
        opt.step(layout.blocks(flat), layout.blocks(g), [0, 1, 2])
        for k, (m, o) in enumerate(zip(models, opts)):
            o.zero_grad()
            F.cross_entropy(m(x[k]), y[k]).backward()
            o.step()
    p = layout.views(flat.detach())
    xt = torch.rand(30, 20, generator=gen, dtype=torch.float64)
    logits, _, _ = M.forward(p, st, xt, cfg, training=False, mask=mask)
    for k, m in enumerate(models):
        lin = [layer for layer in m if isinstance(layer, nn.Linear)]
        for i, layer in enumerate(lin):
            assert torch.allclose(p[f"W{i}"][k].T, layer.weight, atol=1e-9), (k, i)
        m.eval()
        assert torch.allclose(logits[k], m(xt), atol=1e-9)


def test_stacked_adam_equals_torch_adam_after_100_steps():
    torch.manual_seed(0)
    K, P = 4, 333
    flat = torch.randn(K, P)
    ref = [flat[k].clone().requires_grad_() for k in range(K)]
    lrs = [1e-3, 1e-2, 1e-3, 3e-4]
    topts = [torch.optim.Adam([r], lr=lr, eps=1e-7) for r, lr in zip(ref, lrs)]
    opt = StackedOptimizer.create("adam", {"f": flat}, lrs, eps=1e-7)
    for _ in range(100):
        g = torch.randn(K, P)
        opt.step({"f": flat}, {"f": g}, list(range(K)))
        for k in range(K):
            ref[k].grad = g[k].clone()
            topts[k].step()
    for k in range(K):
        assert torch.allclose(flat[k], ref[k].detach(), atol=1e-6, rtol=0)


def test_sgd_momentum_equals_torch_and_frozen_members_stay():
    torch.manual_seed(1)
    flat = torch.randn(3, 50)
    ref = flat[1].clone().requires_grad_()
    topt = torch.optim.SGD([ref], lr=0.1, momentum=0.9)
    opt = StackedOptimizer.create("sgd", {"f": flat}, [0.1] * 3, momentum=0.9)
    frozen = flat[2].clone()
    for _ in range(20):
        g = torch.randn(3, 50)
        opt.step({"f": flat}, {"f": g}, [0, 1])
        ref.grad = g[1].clone()
        topt.step()
    assert torch.allclose(flat[1], ref.detach(), atol=1e-6)
    assert torch.equal(flat[2], frozen)
