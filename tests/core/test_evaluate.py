"""Evaluation: precise BN statistics by hand in numpy, eval-mode training metrics, precise-BN runs."""

import dataclasses

import numpy as np
import pytest
import torch

from bnlab.config import RunSpec
from bnlab.core import model as M
from bnlab.core.evaluate import precise_stats
from bnlab.core.train import train_stack
from helpers import learnable_data


def _net(placement, hidden, K=2, n=50, d=4):
    specs = [RunSpec(norm="batch", placement=placement, seed=s, hidden=hidden) for s in range(K)]
    cfg = M.StackConfig.from_specs(specs, d, 3)
    layout = M.Layout.of(cfg)
    flat = M.init_params(specs, cfg).double()
    flat += 0.3 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = layout.views(flat)
    st = {
        k: (t.double() + 0.5 if k.startswith("var") else t.double() - 0.2)
        for k, t in M.init_state(cfg, K).items()
    }
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return cfg, p, st, x


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("placement", ["after", "before"])
def test_precise_stats_of_a_one_hidden_layer_net_by_hand(placement):
    """784→C→classes, one BN: its input is relu(xW+b) (after) or xW+b (before); population mean and biased
    variance over all 50 samples, computed in 7-image chunks, equal numpy's over the whole set."""
    cfg, p, st, x = _net(placement, hidden=(5,))
    out = precise_stats(p, st, cfg, x, None, chunk=7)
    for k in range(2):
        z = _np(x) @ _np(p["W0"][k]) + _np(p["b0"][k])
        a = np.maximum(z, 0) if placement == "after" else z
        np.testing.assert_allclose(_np(out["mean0"][k, 0]), a.mean(0), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(_np(out["var0"][k, 0]), a.var(0), rtol=1e-10, atol=1e-14)
    assert torch.equal(st["mean0"], torch.full_like(st["mean0"], -0.2))  # the running statistics untouched


@pytest.mark.parametrize("placement", ["after", "before"])
def test_precise_stats_go_layer_by_layer(placement):
    """Layer 1's statistics are those of its input when layer 0 already uses its precise statistics."""
    cfg, p, st, x = _net(placement, hidden=(6, 5))
    out = precise_stats(p, st, cfg, x, None, chunk=16)
    eps = cfg.bn.eps
    for k in range(2):
        P = {n: _np(v[k]) for n, v in p.items()}
        z0 = _np(x) @ P["W0"] + P["b0"]
        a0 = np.maximum(z0, 0) if placement == "after" else z0
        m0, v0 = a0.mean(0), a0.var(0)
        y0 = (a0 - m0) / np.sqrt(v0 + eps) * P["gamma0"] + P["beta0"]
        h0 = y0 if placement == "after" else np.maximum(y0, 0)
        z1 = h0 @ P["W1"] + P["b1"]
        a1 = np.maximum(z1, 0) if placement == "after" else z1
        np.testing.assert_allclose(_np(out["mean1"][k, 0]), a1.mean(0), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(_np(out["var1"][k, 0]), a1.var(0), rtol=1e-9, atol=1e-13)


@pytest.fixture(scope="module")
def tiny():
    return learnable_data(500, 200)


def _numpy_eval(m, x, y, stats=None, eps=1e-3):
    """Eval-mode loss and accuracy of a stored member (Dense→ReLU→BN), in numpy float64."""
    h = x.astype(np.float64)
    for i in range(2):
        h = np.maximum(h @ m[f"W{i}"] + m[f"b{i}"], 0)
        mean, var = (m[f"mean{i}"], m[f"var{i}"]) if stats is None else stats(i, h)
        h = (h - mean) / np.sqrt(var + eps) * m[f"gamma{i}"] + m[f"beta{i}"]
    logits = h @ m["W2"] + m["b2"]
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean(), (logits.argmax(1) == y).mean()


def test_eval_mode_train_metrics_and_precise_bn_against_numpy(tiny, monkeypatch):
    """The last epoch's train_*_eval are eval-mode metrics on the whole training set; a precise-BN run trains
    the same model (same seed: twins train once, as one member) and evaluates with the exact training-set
    statistics; the running ones are kept."""
    sizes = []
    real = M.init_params
    monkeypatch.setattr(M, "init_params", lambda specs, cfg: sizes.append(len(specs)) or real(specs, cfg))
    base = RunSpec(norm="batch", epochs=2, batch_size=64, final_probes=("inference",))
    plain, precise = train_stack([base, dataclasses.replace(base, precise_bn=True)], tiny)
    assert sizes == [1]  # one trained member, read two ways
    assert [e["train_loss"] for e in plain.epochs] == [e["train_loss"] for e in precise.epochs]
    xtr, ytr = tiny.x_train.numpy(), tiny.y_train.numpy()
    xte, yte = tiny.x_test.numpy(), tiny.y_test.numpy()
    m = plain.model
    for key in m:
        assert np.array_equal(m[key], precise.model[key]), key  # same training, running statistics kept
    last = plain.epochs[-1]
    loss, acc = _numpy_eval(m, xtr, ytr)
    assert last["train_loss_eval"] == pytest.approx(loss, rel=1e-5) and last[
        "train_acc_eval"
    ] == pytest.approx(acc)
    assert last["train_acc_eval"] != last["train_acc"]  # not the epoch's running mean
    loss, acc = _numpy_eval(m, xte, yte)
    assert last["test_loss"] == pytest.approx(loss, rel=1e-5)

    def population(i, _):
        return _pop(m, xtr, i).mean(0), _pop(m, xtr, i).var(0)

    loss, acc = _numpy_eval(m, xte, yte, stats=population)
    assert precise.epochs[-1]["test_loss"] == pytest.approx(loss, rel=1e-5)
    assert precise.epochs[-1]["test_acc"] == pytest.approx(acc)
    loss, acc = _numpy_eval(m, xtr, ytr, stats=population)
    assert precise.epochs[-1]["train_loss_eval"] == pytest.approx(loss, rel=1e-5)
    assert precise.epochs[-1]["test_loss"] != last["test_loss"]


def _pop(m, x, layer, eps=1e-3):
    """Layer `layer`'s BN input over x, earlier layers normalized with their own population statistics."""
    h = x.astype(np.float64)
    for i in range(layer + 1):
        a = np.maximum(h @ m[f"W{i}"] + m[f"b{i}"], 0)
        if i == layer:
            return a
        h = (a - a.mean(0)) / np.sqrt(a.var(0) + eps) * m[f"gamma{i}"] + m[f"beta{i}"]


def test_precise_bn_keeps_old_hashes():
    """Hashes of specs without precise_bn, as bnlab computed them before the field existed."""
    assert "precise_bn" not in RunSpec().config_dict()
    assert RunSpec().config_hash() == "b5d8255f92b96e2e"
    assert RunSpec(norm="batch", batch_size=16, placement="before").config_hash() == "42bfce573f4a1634"
    assert RunSpec(precise_bn=True).config_hash() != RunSpec().config_hash()


def test_step_evaluations_read_each_twin_its_own_way(tiny):
    plain = RunSpec(norm="batch", epochs=2, batch_size=100, eval_every=3, seed=4)
    precise = dataclasses.replace(plain, precise_bn=True)
    a, b = train_stack([plain, precise], tiny)
    alone_a, alone_b = train_stack([plain], tiny)[0], train_stack([precise], tiny)[0]

    def acc(r):
        return [(e["step"], e["test_loss"], e["test_acc"]) for e in r.evals]

    assert acc(a) == acc(alone_a) and acc(b) == acc(alone_b) and [e[0] for e in acc(a)] == [3, 6, 9]
    assert acc(a) != acc(b)
