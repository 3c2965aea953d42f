"""Noisy BN (Santurkar et al. 2018, §2.1): per-sample noise from a distribution that changes every step."""

import dataclasses

import numpy as np
import torch

from bnlab.config import RunSpec
from bnlab.core import model as M
from bnlab.core import noise as N
from bnlab.core.train import DeviceData, train_stack


def _source(seeds, hidden=(128, 64)):
    specs = [RunSpec(norm="batch", noise=True, seed=s, hidden=hidden) for s in seeds]
    src = N.NoisyBN(specs, M.StackConfig.from_specs(specs, 784, 10), "cpu")
    src.start_epoch(1)
    return src


def test_noise_is_per_sample_around_a_per_step_mean_and_spread():
    src = _source([0, 1])
    b = 4000
    (sh0, sc0), (sh1, sc1) = src.step(b)
    assert sh0.shape == sc0.shape == (2, b, 128) and sh1.shape == (2, b, 64)
    mu, sd, a, rho = (src.params[:, j] for j in range(4))  # (K, ΣC) each
    for t, (lo, hi) in zip((mu, sd, a, rho), (N.SHIFT_MEAN, N.SHIFT_SD, N.SCALE_MEAN, N.SCALE_SD)):
        assert (t >= lo).all() and (t <= hi).all() and t.std() > 0.1 * (hi - lo)  # drawn, per unit
    shift = torch.cat([sh0, sh1], -1)
    scale = torch.cat([sc0, sc1], -1)
    assert (shift.std(1) > 0).all()  # i.i.d. per sample, not one per step
    se = 5 * sd / b**0.5 + 1e-6  # 5 standard errors of the per-unit mean
    assert ((shift.mean(1) - mu).abs() <= se).all()
    assert ((shift.std(1) - sd).abs() <= 5 * sd / (2 * b) ** 0.5 + 1e-6).all()
    assert ((scale.mean(1) - a).abs() <= 5 * rho / b**0.5 + 1e-6).all() and (scale > 0).all()
    before = src.params.clone()
    src.step(b)
    assert not torch.equal(before, src.params)  # a new distribution every step


def test_each_member_draws_from_its_own_generator():
    alone, stacked = _source([7]), _source([3, 7])
    for _ in range(3):
        a, s = alone.step(32), stacked.step(32)
        for (sa, ca), (ss, cs) in zip(a, s):
            assert torch.equal(sa[0], ss[1]) and torch.equal(ca[0], cs[1])
    pa, ps = alone.probe(100, step=5), stacked.probe(100, step=5)
    assert torch.equal(pa[0][0][0], ps[0][0][1]) and pa[0][0].shape == (1, 100, 128)
    assert not torch.equal(ps[0][0][0], ps[0][0][1])


def test_noisy_runs_record_training_mode_activations_with_the_noise():
    g = torch.Generator().manual_seed(0)
    data = DeviceData(
        torch.rand(320, 784, generator=g),
        torch.randint(0, 10, (320,), generator=g),
        torch.rand(100, 784, generator=g),
        torch.randint(0, 10, (100,), generator=g),
        10,
    )
    base = RunSpec(norm="batch", epochs=1, probes=("activations",), probe_every=5, placement="before")
    noisy = dataclasses.replace(base, noise=True)
    (plain_r,), (noisy_r,) = train_stack([base], data), train_stack([noisy], data)

    def val(r, name, step):
        return {p["layer"]: p["value"] for p in r.probes if p["name"] == name and p["step"] == step}

    # at step 0 both nets are the initialization: eval mode agrees, training mode differs by the noise only
    assert val(plain_r, "act_p50", 0) == val(noisy_r, "act_p50", 0)
    assert val(plain_r, "act_train_p50", 0) != val(noisy_r, "act_train_p50", 0)

    def spread(r):
        hi, lo = (np.mean(list(val(r, name, 0).values())) for name in ("act_train_p85", "act_train_p15"))
        return hi - lo

    assert spread(noisy_r) > spread(plain_r)  # noise widens the training-mode spread
    again = train_stack([dataclasses.replace(noisy, lr=3e-3), noisy], data)[1]

    # Whatever the stack, the same seed draws the same noise: equal to float32 rounding (README, "What is
    # guaranteed": MKL's batched matmul rounds differently for different stack sizes, and 5 Adam steps grow it
    # to ~1e-5); noise drawn from a shared stream would differ by the noise's own size (~0.1).
    def keys(probes):
        return [(p["step"], p["layer"], p["name"]) for p in probes]

    assert keys(again.probes) == keys(noisy_r.probes)
    np.testing.assert_allclose(
        [p["value"] for p in again.probes], [p["value"] for p in noisy_r.probes], rtol=1e-3, atol=1e-4
    )
    metrics = [k for k in noisy_r.epochs[0] if k != "wall_s"]
    np.testing.assert_allclose(
        [[e[k] for k in metrics] for e in again.epochs],
        [[e[k] for k in metrics] for e in noisy_r.epochs],
        rtol=1e-4,
    )
