"""Norms against PyTorch's reference functions, per member of a stack."""

import pytest
import torch
import torch.nn.functional as F

from bnlab.core import folding, norms

torch.manual_seed(0)
K, B, C = 3, 16, 8

PROFILES = {
    # name: (BNConfig, torch momentum in torch's sense)
    "keras": (norms.BNConfig(0.99, 1e-3, False), 0.01),
    "torch": (norms.BNConfig(0.9, 1e-5, True), 0.1),
}


def _bn(name, x, gamma, beta, mean, var, *, training, cfg, **args):
    """A running-statistics norm of the registry: (y, new mean, new var)."""
    y, (m, v), _ = norms.NORMS[name].forward(
        x, gamma, beta, (mean, var), norms.NormArgs(cfg, **args), training=training
    )
    return y, m, v


def _inputs():
    x = (torch.randn(K, B, C) + 0.5).double().requires_grad_()
    gamma = (torch.rand(K, 1, C) + 0.5).double().requires_grad_()
    beta = torch.randn(K, 1, C).double().requires_grad_()
    mean, var = torch.randn(K, 1, C).double(), (torch.rand(K, 1, C) + 0.5).double()
    return x, gamma, beta, mean, var


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(profile, training):
    cfg, torch_momentum = PROFILES[profile]
    x, gamma, beta, mean, var = _inputs()
    y, m2, v2 = _bn(
        "batch", x.float(), gamma.float(), beta.float(), mean.float(), var.float(), training=training, cfg=cfg
    )
    gy = torch.randn_like(y)
    gx, gg, gb = torch.autograd.grad(y, (x, gamma, beta), gy)
    for k in range(K):
        xk = x[k].detach().float().requires_grad_()
        gk, bk = gamma[k, 0].detach().float().requires_grad_(), beta[k, 0].detach().float().requires_grad_()
        rm, rv = mean[k, 0].float().clone(), var[k, 0].float().clone()
        ref = F.batch_norm(xk, rm, rv, gk, bk, training=training, momentum=torch_momentum, eps=cfg.eps)
        rgx, rgg, rgb = torch.autograd.grad(ref, (xk, gk, bk), gy[k])
        assert torch.allclose(y[k], ref, atol=1e-6, rtol=0)
        assert torch.allclose(gx[k].float(), rgx, atol=1e-5)
        assert torch.allclose(gg[k, 0].float(), rgg, atol=1e-5)
        assert torch.allclose(gb[k, 0].float(), rgb, atol=1e-5)
        if profile == "torch" or not training:
            # torch updates the running stats in place, unbiased variance: the torch profile
            assert torch.allclose(m2[k, 0], rm, atol=1e-6) and torch.allclose(v2[k, 0], rv, atol=1e-6)


def test_keras_running_stats_use_biased_variance():
    cfg, _ = PROFILES["keras"]
    x, gamma, beta, mean, var = _inputs()
    _, m2, v2 = _bn("batch", x.detach(), gamma.detach(), beta.detach(), mean, var, training=True, cfg=cfg)
    xd = x.detach()
    assert torch.allclose(m2, 0.99 * mean + 0.01 * xd.mean(1, keepdim=True))
    assert torch.allclose(v2, 0.99 * var + 0.01 * xd.var(1, keepdim=True, unbiased=False))


def test_layer_and_group_norm_match_torch():
    x = torch.randn(K, B, C)
    gamma, beta = torch.rand(K, 1, C) + 0.5, torch.randn(K, 1, C)
    args = norms.NormArgs(norms.BNConfig(eps=1e-5), group_size=4)
    y, _, _ = norms.NORMS["layer"].forward(x, gamma, beta, None, args, training=True)
    g, _, _ = norms.NORMS["group"].forward(x, gamma, beta, None, args, training=True)
    for k in range(K):
        assert torch.allclose(y[k], F.layer_norm(x[k], (C,), gamma[k, 0], beta[k, 0], 1e-5), atol=1e-6)
        assert torch.allclose(g[k], F.group_norm(x[k], C // 4, gamma[k, 0], beta[k, 0], 1e-5), atol=1e-6)


def test_batch_renorm_is_batch_norm_at_unit_limits_and_clips():
    cfg = norms.BNConfig()
    x, gamma, beta, mean, var = (t.detach().float() for t in _inputs())
    y_bn, m_bn, v_bn = _bn("batch", x, gamma, beta, mean, var, training=True, cfg=cfg)
    y_rn, m_rn, v_rn = _bn(
        "batch-renorm", x, gamma, beta, mean, var, training=True, cfg=cfg, rmax=1.0, dmax=0.0
    )
    assert torch.allclose(y_bn, y_rn, atol=1e-5) and torch.equal(m_bn, m_rn) and torch.equal(v_bn, v_rn)
    # with wide limits, r and d correct the batch statistics to the running ones: x̂ = (x − μ)/σ
    y_wide, _, _ = _bn("batch-renorm", x, gamma, beta, mean, var, training=True, cfg=cfg, rmax=1e6, dmax=1e6)
    expect = (x - mean) / torch.sqrt(var + cfg.eps) * gamma + beta
    assert torch.allclose(y_wide, expect, atol=1e-4)


def test_renorm_schedule_waits_for_the_running_statistics():
    """Hand-derived: momentum 0.99 → n₀ = max(⌈3/0.01⌉, ⌈0.05·1000⌉) = 300 steps of plain BN, then rmax rises
    by 2 over 300 steps (30% of 1000) and dmax by 5 over 200 (20%)."""

    def lim(step, total=1000, m=0.99):
        return norms.renorm_limits(step, total, m)

    assert norms.renorm_start(1000, 0.99) == 300 and norms.renorm_start(10_000, 0.9) == 500
    assert (
        lim(0) == (1.0, 0.0) and lim(50) == (1.0, 0.0) and lim(299) == (1.0, 0.0) and lim(300) == (1.0, 0.0)
    )
    assert lim(450) == pytest.approx((2.0, 3.75))
    assert (
        lim(500) == pytest.approx((1 + 2 * 200 / 300, 5.0))
        and lim(600) == (3.0, 5.0)
        and lim(999) == (3.0, 5.0)
    )
    # torch momentum 0.9 converges in 30 updates: the 5% floor decides (500 of 10,000)
    assert lim(1000, 10_000, 0.9) == pytest.approx((1 + 2 * 500 / 3000, 5 * 500 / 2000))
    # a run shorter than n₀ stays plain batch norm throughout
    assert lim(199, 200) == (1.0, 0.0)
    # the running statistics at n₀: the initial (0, 1) weighs 0.99³⁰⁰ ≈ e⁻³
    assert 0.99**300 == pytest.approx(0.049, abs=1e-3)


def test_ghost_batch_norm_normalizes_each_chunk():
    cfg = norms.BNConfig()
    x, gamma, beta, mean, var = (t.detach().float() for t in _inputs())
    y, m, v = _bn("ghost-batch", x, gamma, beta, mean, var, training=True, cfg=cfg, ghost=4)
    for c in range(B // 4):
        chunk = x[:, 4 * c : 4 * c + 4]
        ref, _, _ = _bn("batch", chunk, gamma, beta, mean, var, training=True, cfg=cfg)
        assert torch.allclose(y[:, 4 * c : 4 * c + 4], ref, atol=1e-6)
    # running stats took B/4 sequential momentum updates
    expect_m = mean
    for c in range(B // 4):
        expect_m = expect_m * cfg.momentum + x[:, 4 * c : 4 * c + 4].mean(1, keepdim=True) * (
            1 - cfg.momentum
        )
    assert torch.allclose(m, expect_m, atol=1e-6)


@pytest.mark.parametrize("placement", ["before", "after"])
def test_folding_is_exact(placement):
    cfg = norms.BNConfig()
    n_in, n_out = 6, 5
    W1, b1 = torch.randn(K, n_in, C), torch.randn(K, 1, C)
    W2, b2 = torch.randn(K, C, n_out), torch.randn(K, 1, n_out)
    gamma, beta = torch.rand(K, 1, C) + 0.5, torch.randn(K, 1, C)
    mean, var = torch.randn(K, 1, C), torch.rand(K, 1, C) + 0.5
    x = torch.randn(K, B, n_in)

    def bn(h):
        return _bn("batch", h, gamma, beta, mean, var, training=False, cfg=cfg)[0]

    if placement == "before":  # Dense → BN → ReLU: fold into the preceding layer
        ref = torch.relu(bn(torch.baddbmm(b1, x, W1)))
        Wf, bf = folding.fold_batch_norm_before(W1, b1, gamma, beta, mean, var, cfg.eps)
        got = torch.relu(torch.baddbmm(bf, x, Wf))
    else:  # Dense → ReLU → BN → Dense: fold into the following layer
        h = torch.relu(torch.baddbmm(b1, x, W1))
        ref = torch.baddbmm(b2, bn(h), W2)
        Wf, bf = folding.fold_batch_norm_after(W2, b2, gamma, beta, mean, var, cfg.eps)
        got = torch.baddbmm(bf, h, Wf)
    assert torch.allclose(got, ref, atol=1e-5)
