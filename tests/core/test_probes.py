"""Probes during training: hand-checkable cases, exact counts, and no effect on training."""

import dataclasses

import numpy as np
import pytest
import torch

from bnlab.config import RunSpec
from bnlab.core import model as M
from bnlab.core import probes
from bnlab.core.train import DeviceData, train_stack
from bnlab.errors import ConfigError
from bnlab.limits import PROBES


def _stack(norm="batch", K=2, placement="after"):
    specs = [RunSpec(norm=norm, placement=placement, seed=s) for s in range(K)]
    cfg = M.StackConfig.from_specs(specs, 784, 10)
    layout = M.Layout.of(cfg)
    w = M.init_params(specs, cfg)
    st = M.init_state(cfg, K)
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(K, 32, 784, generator=g), torch.randint(0, 10, (K, 32), generator=g)
    return cfg, layout, w, st, x, y


def test_ics_is_zero_where_nothing_before_the_layer_moved():
    cfg, layout, w0, st, x, y = _stack()
    w1 = w0 + 0.01 * torch.randn(w0.shape, generator=torch.Generator().manual_seed(0))
    out = probes.ics(w0, w1, layout, st, x, y, cfg, None)
    assert torch.equal(out[("ics_l2", 0)], torch.zeros(2))  # the first layer: G' = G exactly
    assert torch.allclose(out[("ics_cos", 0)], torch.ones(2))
    assert (out[("ics_l2", 1)] > 0).all() and (out[("ics_l2", 2)] > 0).all()
    same = probes.ics(w0, w0.clone(), layout, st, x, y, cfg, None)  # no update at all: no shift anywhere
    assert all(torch.equal(same[("ics_l2", i)], torch.zeros(2)) for i in range(3))


def test_ics_matches_a_hand_built_gradient():
    """Layer 2's G' by hand: layers 0 and 1 (with their BN) from w1, layer 2 from w0."""
    cfg, layout, w0, st, x, y = _stack(K=1)
    w1 = w0 + 0.05 * torch.randn(w0.shape, generator=torch.Generator().manual_seed(1))
    v0, v1 = layout.views(w0), layout.views(w1)
    mixed = {n: (v1[n] if n[-1] in "01" else v0[n]).clone().requires_grad_() for n in v0}
    logits, _, _ = M.forward(mixed, st, x, cfg, training=True)
    loss = torch.nn.functional.cross_entropy(logits[0], y[0])
    (G2,) = torch.autograd.grad(loss, mixed["W2"])
    p0 = {n: v.clone().requires_grad_() for n, v in v0.items()}
    logits, _, _ = M.forward(p0, st, x, cfg, training=True)
    (G,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits[0], y[0]), p0["W2"])
    out = probes.ics(w0, w1, layout, st, x, y, cfg, None)
    assert out[("ics_l2", 2)].item() == pytest.approx((G - G2).norm().item(), rel=1e-5)
    cos = torch.nn.functional.cosine_similarity(G.flatten(), G2.flatten(), dim=0).item()
    assert out[("ics_cos", 2)].item() == pytest.approx(cos, abs=1e-6)


def test_smoothness_on_a_quadratic_with_known_curvature():
    """L(w) = ½ Σ a_j w_j², update Δw = d (not along the gradient): ∇L(w0) − ∇L(w0 + c·d) = −c·A·d, so β_eff =
    ‖A d‖/‖d‖ at every c, predictiveness = c_max‖A d‖ = 4‖A d‖; H = A, so beta_hvp = ‖A g‖/‖g‖, g = A w0."""
    a = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    w0 = torch.tensor([1.0, -2.0, 0.5, 0.25], dtype=torch.float64)
    d = torch.tensor([0.1, -0.05, 0.02, 0.01], dtype=torch.float64)

    def loss(v):
        return (0.5 * a * v * v).sum().view(1)

    def f(v):
        return loss(v), a * v

    def hv(v, u):  # double backprop on the quadratic: exactly A·u
        return probes.hvp(loss, v, u)

    out = probes.smoothness(f, w0, w0 + d, lambda v: v.norm().view(1), hv)
    Ad, g = a * d, a * w0
    assert out["beta_smoothness"].item() == pytest.approx((Ad.norm() / d.norm()).item(), rel=1e-12)
    assert out["grad_predictiveness"].item() == pytest.approx(4 * Ad.norm().item(), rel=1e-12)
    losses = [loss(w0 + c * d).item() for c in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert out["loss_variation"].item() == pytest.approx(max(losses) - min(losses), rel=1e-12)
    assert out["beta_hvp"].item() == pytest.approx(((a * g).norm() / g.norm()).item(), rel=1e-12)
    assert torch.allclose(probes.hvp(loss, w0, d), Ad, rtol=0, atol=1e-15)


def test_stacked_hessian_vector_matches_finite_differences_per_member():
    """The stacked H·v on the real net (BN, float64) against central differences of the gradient, member by
    member: member k's H_k·v_k, whatever the other members' v."""
    cfg, layout, w, st, x, y = _stack(K=2)
    w, st, x = w.double(), {n: t.double() for n, t in st.items()}, x.double()
    v = torch.randn(w.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    hv = probes.hessian_vector(w, v, layout, st, x, y, cfg, None)
    h = 1e-6  # small enough that no ReLU flips (1e-3 crosses kinks)
    _, gp = probes.loss_and_grad(w + h * v, layout, st, x, y, cfg, None)
    _, gm = probes.loss_and_grad(w - h * v, layout, st, x, y, cfg, None)
    assert ((hv - (gp - gm) / (2 * h)).norm() / hv.norm()).item() < 1e-6
    v_only0 = v.clone()
    layout_blocks = layout.blocks(v_only0)
    for blk in layout_blocks.values():
        blk[1].zero_()  # member 1's v zero: its H·v is zero, member 0's unchanged
    hv0 = layout.blocks(probes.hessian_vector(w, v_only0, layout, st, x, y, cfg, None))
    for n, blk in layout.blocks(hv).items():
        assert torch.allclose(hv0[n][0], blk[0], rtol=1e-10, atol=1e-14) and torch.equal(
            hv0[n][1], 0 * blk[1]
        )


@pytest.mark.parametrize("placement", ["after", "before"])
def test_training_mode_activations_use_batch_statistics_and_noise(placement):
    """act_train_p*: the probe batch's own statistics, and noisy BN's per-sample noise when given."""
    cfg, layout, w, st, x, _ = _stack(norm="batch", K=2, placement=placement)
    xp = x[0]  # 32 images
    noise = [(torch.randn(2, 32, C), 1 + 0.1 * torch.rand(2, 32, C)) for C in cfg.dims[1:-1]]
    plain = probes.activations(w, layout, st, xp, cfg, None, training=True)
    noisy = probes.activations(w, layout, st, xp, cfg, None, training=True, noise=noise)
    _, _, pre = M.forward(layout.views(w), st, xp, cfg, training=True)
    _, _, pre_n = M.forward(layout.views(w), st, xp, cfg, training=True, ctx=M.StepContext(noise=noise))
    for i in range(cfg.n_hidden):
        for q in probes.PERCENTILES:
            assert plain[(f"act_train_p{q}", i)][1].item() == pytest.approx(
                np.percentile(pre[i][1].numpy(), q), rel=1e-5, abs=1e-6
            )
            assert noisy[(f"act_train_p{q}", i)][1].item() == pytest.approx(
                np.percentile(pre_n[i][1].numpy(), q), rel=1e-5, abs=1e-6
            )
    assert plain[("act_train_p50", 1)][0] != noisy[("act_train_p50", 1)][0]
    assert set(plain).isdisjoint(probes.activations(w, layout, st, xp, cfg, None))  # eval mode: act_p* names


def test_activation_percentiles_are_numpys():
    cfg, layout, w, st, x, _ = _stack(norm="none", K=2)
    xp = x[0, :20]
    out = probes.activations(w, layout, st, xp, cfg, None)
    _, _, pre = M.forward(layout.views(w), st, xp, cfg, training=False)
    for i, h in enumerate(pre):
        for q in probes.PERCENTILES:
            ref = np.percentile(h[1].numpy(), q)
            assert out[(f"act_p{q}", i)][1].item() == pytest.approx(ref, rel=1e-5, abs=1e-6)


def test_probes_are_recorded_at_exact_steps_and_leave_training_unchanged():
    n, bs, every = 320, 32, 4  # 10 steps: probes at steps 0, 4, 8
    g = torch.Generator().manual_seed(0)
    data = DeviceData(
        torch.rand(n, 784, generator=g),
        torch.randint(0, 10, (n,), generator=g),
        torch.rand(100, 784, generator=g),
        torch.randint(0, 10, (100,), generator=g),
        10,
    )
    base = [RunSpec(norm=nm, batch_size=bs, epochs=1, seed=s) for nm in ("none", "batch") for s in (0, 1)]
    probed = [dataclasses.replace(b, probes=PROBES, probe_every=every) for b in base]
    plain, with_probes = train_stack(base, data), train_stack(probed, data)
    per_step = 2 * 3 * 2 + 2 * 3 + 4  # (eval, train) × percentiles × 2 hidden, ics l2/cos × 3 layers,
    #                                                     smoothness 3 + beta_hvp
    for a, b in zip(plain, with_probes):
        assert a.epochs[-1]["test_acc"] == b.epochs[-1]["test_acc"]
        assert a.epochs[-1]["train_loss"] == b.epochs[-1]["train_loss"]
        assert len(b.probes) == 3 * per_step and a.probes == []
        assert sorted({p["step"] for p in b.probes}) == [0, 4, 8]


def test_probe_fields_are_validated_and_keep_old_hashes():
    assert "probes" not in RunSpec().config_dict() and "probe_every" not in RunSpec().config_dict()
    with pytest.raises(
        ConfigError, match="probes = 'gradnorm' is not allowed; choose one of: activations, ics, smoothness"
    ):
        RunSpec(probes=("gradnorm",), probe_every=10)
    with pytest.raises(ConfigError, match=r"need probe_every >= 1"):
        RunSpec(probes=("ics",))
