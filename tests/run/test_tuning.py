"""run.tuning: one stack at a time or side by side, from a measurement (faked here, but for one real
probe)."""

import pytest
import torch

from bnlab.config import RunSpec
from bnlab.run import tuning
from bnlab.run.local import flushed_each


def _groups(n_groups, K=16, bs=32, epochs=10):
    return [
        [RunSpec(norm="batch", batch_size=bs, epochs=epochs, seed=g * K + s) for s in range(K)]
        for g in range(n_groups)
    ]


def _choose(groups, threads=2, cpus_per_group=None):
    return tuning.choose(
        groups,
        {"mnist": 60000},
        {"mnist": 784},
        {"mnist": 10},
        threads,
        cpus_per_group,
        in_threads=flushed_each,
    )


@pytest.fixture
def fake(monkeypatch):
    calls = []

    def measure(group, in_dim, n_classes, threads, workers, cpus, steps=150, side=True, *, in_threads):
        calls.append(side)
        return fake.serial, (fake.side if side else None)

    monkeypatch.setattr(tuning, "measure", measure)
    fake.calls = calls
    return fake


def test_side_by_side_when_measured_faster(fake):
    fake.serial, fake.side = 0.004, 0.006  # 2 stacks at 0.006 s/step each: 1.33× one stack at 0.004
    plan = _choose(_groups(4))
    assert (plan.workers, plan.cpus) == (2, 1) and plan.side_gain == pytest.approx(4 / 3)
    assert plan.why.startswith("side by side")


def test_one_stack_when_side_by_side_is_slower(fake):
    fake.serial, fake.side = 0.004, 0.009  # hyper-threads: two stacks at once gain nothing
    plan = _choose(_groups(4))
    assert (plan.workers, plan.cpus) == (1, 2) and plan.side_gain < 1 and plan.why.startswith("one stack")


def test_small_jobs_are_not_measured(fake):
    fake.serial, fake.side = 0.004, 0.004
    plan = _choose(_groups(2, K=1, epochs=1))
    assert plan.workers == 1 and fake.calls == [] and "too small" in plan.why


def test_start_up_counts(fake):
    """A job of ~6 s serial (measured) gains 3 s at best from two workers: not more than their start-up."""
    fake.serial, fake.side = 0.0015, 0.0015
    plan = _choose(_groups(2, K=16, bs=128, epochs=2))
    assert plan.workers == 1 and fake.calls == [False]


def test_given_cpus_per_group_and_trivial_cases(fake):
    assert _choose(_groups(4), cpus_per_group=1).workers == 2
    assert _choose(_groups(4), cpus_per_group=2).workers == 1  # one group's worth of threads
    assert _choose(_groups(4), threads=1).workers == 1
    assert _choose(_groups(1)).workers == 1
    assert fake.calls == []


def test_a_real_measurement_is_cached_and_restores_threads(monkeypatch):
    threads = torch.get_num_threads()
    group = _groups(1, K=2, bs=16)[0]
    serial, side = tuning.measure(group, 784, 10, threads, 2, 1, steps=20, in_threads=flushed_each)
    assert serial > 0 and side > 0
    assert torch.get_num_threads() == threads
    monkeypatch.setattr(tuning, "_stepper", lambda *a: pytest.fail("measured again"))
    assert tuning.measure(group, 784, 10, threads, 2, 1, steps=20, in_threads=flushed_each) == (serial, side)
