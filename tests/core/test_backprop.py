"""The hand-written backward against autograd through model.forward."""
import pytest
import torch
import torch.nn.functional as F

from bnlab.core import backprop
from bnlab.core import model as M
from bnlab.config import RunSpec


@pytest.mark.parametrize("placement", ["after", "before"])
@pytest.mark.parametrize("norms", [("none", "none"), ("batch", "batch"), ("none", "batch")])
def test_manual_backward_equals_autograd(norms, placement):
    specs = [RunSpec(norm=n, placement=placement, seed=s, init_scale=2.0) for s, n in enumerate(norms * 2)]
    cfg = M.StackConfig.from_specs(specs, 30, 7)
    cfg = M.StackConfig(**{**cfg.__dict__, "dims": (30, 16, 12, 7)})
    layout = M.Layout.of(cfg)
    flat = M.init_params(specs, cfg).double()
    flat += 0.1 * torch.randn_like(flat)                    # non-trivial gamma/beta and biases
    st = {n: t.double() for n, t in M.init_state(cfg, len(specs)).items()}
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(len(specs), 9, 30, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 7, (len(specs), 9), generator=gen)
    mask = M.norm_mask(cfg, "cpu")

    leaf = {n: v.clone().requires_grad_() for n, v in layout.views(flat).items()}
    logits, ref_st, _ = M.forward(leaf, st, x, cfg, training=True, mask=mask)
    losses = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
    ref = dict(zip(leaf, torch.autograd.grad(losses.sum(), list(leaf.values()))))

    grad = torch.zeros_like(flat)
    loss, correct, new_st = backprop.step(layout.views(flat), layout.views(grad), st, x, y, cfg, mask)
    assert torch.allclose(loss, losses.detach(), atol=1e-12)
    assert torch.equal(correct, (logits.argmax(-1) == y).sum(1))
    for n, gv in layout.views(grad).items():
        assert torch.allclose(gv, ref[n], atol=1e-12), n
    for n in ref_st:
        assert torch.allclose(new_st[n], ref_st[n], atol=1e-12)
