"""The stacked trainer: stack independence, divergence handling, epoch bookkeeping."""

import dataclasses
import math

import pytest
import torch

from bnlab.config import RunSpec
from bnlab.core.train import train_stack
from bnlab.errors import ConfigError
from bnlab.run.jobs import plan_stacks
from helpers import learnable_data


@pytest.fixture(scope="module")
def tiny():
    """A learnable 10-class problem: 1000 train, 300 test images of 784 pixels."""
    return learnable_data(1000, 300)


def _epochs(r):
    return [
        (
            e["train_loss"],
            e["train_acc"],
            e["test_loss"],
            e["test_acc"],
            e["train_acc_eval"],
            e["train_loss_eval"],
            e["train_loss_noise"],
        )
        for e in r.epochs
    ]


# What bnlab promises across stack compositions (README, "What is guaranteed"): the same stack on the same
# device and thread count is bit-identical; a member beside other members agrees with itself alone to float32
# rounding, which the batched matmul of some CPUs (MKL on Intel) does differently for different stack sizes.
LOSS_RTOL = 1e-4  # relative, on losses after a few epochs of these tiny runs
ACC_ATOL = 2 / 300  # two of the 300 test images (or 1000 / 300 of the train running mean)


def assert_same_run(a, b):
    """Equal to float32 rounding: losses within LOSS_RTOL, accuracies within ACC_ATOL, same length."""
    assert len(a.epochs) == len(b.epochs) and a.diverged_epoch == b.diverged_epoch
    for x, y in zip(_epochs(a), _epochs(b)):
        for i, (u, v) in enumerate(zip(x, y)):
            if math.isnan(u) or math.isnan(v):  # not measured (train_eval = last): in both or neither
                assert math.isnan(u) and math.isnan(v), (x, y)
                continue
            assert math.isclose(u, v, rel_tol=LOSS_RTOL) if i in (0, 2) else abs(u - v) <= ACC_ATOL, (x, y)


def test_same_stack_is_bit_identical(tiny):
    specs = [RunSpec(norm=n, seed=s, epochs=2, batch_size=32) for n in ("none", "batch") for s in (0, 1)]
    a, b = train_stack(specs, tiny), train_stack(specs, tiny)
    assert [_epochs(r) for r in a] == [_epochs(r) for r in b]  # bit for bit


def test_member_does_not_depend_on_its_stack(tiny):
    specs = [
        RunSpec(norm=n, seed=s, lr=lr, epochs=2, batch_size=32)
        for n in ("none", "batch")
        for s, lr in ((0, 1e-3), (1, 3e-3))
    ]
    specs.append(RunSpec(norm="batch", seed=1, lr=3e-3, epochs=2, batch_size=32, precise_bn=True))
    stacked = train_stack(specs, tiny)
    for k, spec in enumerate(specs):
        assert_same_run(train_stack([spec], tiny)[0], stacked[k])


def test_the_tolerance_tells_different_runs_apart(tiny):
    a, b = (train_stack([RunSpec(norm="batch", seed=s, epochs=2, batch_size=32)], tiny)[0] for s in (0, 1))
    with pytest.raises(AssertionError):
        assert_same_run(a, b)


def test_epoch_rows_and_partial_last_batch(tiny):
    (r,) = train_stack([RunSpec(norm="batch", epochs=3, batch_size=64)], tiny)
    assert [e["epoch"] for e in r.epochs] == [1, 2, 3]
    assert [e["steps"] for e in r.epochs] == [16, 32, 48]  # 1000/64 = 15 full + 1 batch of 40
    assert all(0 <= e["test_acc"] <= 1 and e["wall_s"] > 0 for e in r.epochs)
    assert r.epochs[-1]["test_acc"] > 0.3  # it learns (chance is 0.1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_diverged_members_are_frozen_and_others_unaffected(tiny, optimizer):
    """lr 10 blows up (to NaN, or to a loss past 100·ln 10); lr 1e-3 trains as if alone."""
    ok = RunSpec(norm="none", seed=0, lr=1e-3, epochs=3, optimizer=optimizer)
    bad = RunSpec(norm="none", seed=1, lr=10.0, epochs=3, optimizer=optimizer)
    res = train_stack([bad, ok], tiny)
    assert res[0].diverged_epoch == 1 and len(res[0].epochs) == 1
    loss = res[0].epochs[0]["train_loss"]
    assert not loss <= 100 * math.log(10)  # non-finite, or past the blow-up threshold
    assert res[1].diverged_epoch is None and len(res[1].epochs) == 3
    assert_same_run(res[1], train_stack([ok], tiny)[0])


def test_eval_every_records_step_evaluations(tiny):
    (r,) = train_stack([RunSpec(epochs=2, batch_size=100, eval_every=4)], tiny)
    assert [e["step"] for e in r.evals] == [4, 8, 12, 16, 20]
    walls = [e["wall_s"] for e in r.evals]
    assert walls == sorted(walls) and walls[-1] <= r.epochs[-1]["wall_s"]


def test_plan_stacks_groups_by_shape_and_norm_kind():
    specs = [
        RunSpec(norm=n, batch_size=b, seed=s)
        for n in ("none", "batch", "layer")
        for b in (16, 32)
        for s in range(3)
    ]
    stacks = plan_stacks(specs, max_stack=16)
    assert sorted(len(s) for s in stacks) == [3, 3, 6, 6]
    for st in stacks:
        assert len({s.batch_size for s in st}) == 1
        assert len({s.norm for s in st} - {"none"}) <= 1
    assert sum(len(s) for s in plan_stacks(specs, max_stack=4)) == len(specs)
    assert max(len(s) for s in plan_stacks(specs, max_stack=4)) <= 4


@pytest.mark.parametrize("norm", ["layer", "group", "batch-renorm", "ghost-batch"])
def test_other_norms_train_on_the_autograd_path(tiny, norm):
    (r,) = train_stack([RunSpec(norm=norm, epochs=3, batch_size=32)], tiny)  # ghost: 2 chunks of 16
    assert r.diverged_epoch is None and r.epochs[-1]["test_acc"] > 0.3


def test_noisy_bn_is_seeded_and_perturbs_training(tiny):
    noisy = RunSpec(norm="batch", noise=True, epochs=2, seed=3)
    a, b = (
        train_stack([noisy], tiny)[0],
        train_stack([noisy, RunSpec(norm="batch", epochs=2, seed=3, noise=True, lr=2e-3)], tiny)[0],
    )
    plain = train_stack([RunSpec(norm="batch", epochs=2, seed=3)], tiny)[0]
    assert_same_run(a, b)  # same seed → same noise, whatever the stack
    assert _epochs(a) != _epochs(plain) and a.epochs[-1]["test_acc"] > 0.3


def test_train_loss_noise_is_curve_noise_of_the_per_step_losses(tiny, monkeypatch):
    """train_loss_noise = stats.curve_noise over the epoch's per-step mean losses of each member."""
    from bnlab.core import backprop
    from bnlab.stats import curve_noise

    seen = []
    real = backprop.step

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append(out[0].clone())
        return out

    monkeypatch.setattr(backprop, "step", spy)
    specs = [RunSpec(norm="batch", seed=s, epochs=2, batch_size=100) for s in (0, 1)]
    res = train_stack(specs, tiny)
    per_step = torch.stack(seen, 1).numpy()  # (K, 20): 10 steps an epoch
    for k, r in enumerate(res):
        for e, row in enumerate(r.epochs):
            assert row["train_loss_noise"] == curve_noise(per_step[k, 10 * e : 10 * (e + 1)])
            assert row["train_loss_noise"] > 0


def test_eval_passes_are_not_training_time(tiny, monkeypatch):
    """The train-set and test-set evaluations after each epoch take no part of wall_s: on a clock that moves
    only while an evaluation runs, the training time stays 0 (deterministic, whatever the machine's load)."""
    from bnlab.core import train as T

    now = [0.0]
    real = T.evaluate

    def evaluate(*a, **k):
        now[0] += 100.0
        return real(*a, **k)

    monkeypatch.setattr(T, "_clock", lambda device: now[0])
    monkeypatch.setattr(T, "evaluate", evaluate)
    (r,) = train_stack([RunSpec(norm="batch", epochs=2, batch_size=250)], tiny)
    assert now[0] == 300.0  # the test set after both epochs, the train set after the last (train_eval)
    assert [e["wall_s"] for e in r.epochs] == [0.0, 0.0]


def test_the_training_set_is_evaluated_after_the_last_epoch_unless_every_epoch_is_asked(tiny):
    """train_eval = last (the default): eval-mode train metrics only after the last epoch; every: each
    epoch, with the same last-epoch values and the same test metrics throughout."""
    spec = RunSpec(norm="batch", epochs=3, seed=1)
    last, every = (train_stack([dataclasses.replace(spec, train_eval=w)], tiny)[0] for w in ("last", "every"))
    for r in (last, every):
        assert [math.isfinite(e["train_acc_eval"]) for e in r.epochs] == (
            [False, False, True] if r is last else [True, True, True]
        )
    assert last.epochs[-1]["train_acc_eval"] == every.epochs[-1]["train_acc_eval"]
    assert [e["test_acc"] for e in last.epochs] == [e["test_acc"] for e in every.epochs]


def test_train_eval_keeps_the_hash_of_runs_stored_before_it():
    """A spec stored before the field existed (its JSON has no train_eval) is the default spec, so a study
    resumes from such runs; asking for every epoch is another configuration."""
    old = {k: v for k, v in RunSpec(norm="batch").to_json().items() if k != "train_eval"}
    assert RunSpec.from_json(old).config_hash() == RunSpec(norm="batch").config_hash()
    assert "train_eval" not in RunSpec().config_dict()
    assert RunSpec(train_eval="every").config_hash() != RunSpec().config_hash()
    with pytest.raises(ConfigError, match="train_eval"):
        RunSpec(train_eval="sometimes")
