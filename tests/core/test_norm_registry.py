"""Every entry of the norm registry (bnlab.core.norms.NORMS) against what it declares.

Each test reads an entry's facts and checks the behaviour they promise, so an entry that lies fails:
its hand-written backward against torch.autograd (float64, |Δ| ≤ 1e-10), its running statistics,
its need of a batch and the smallest batch it trains on, its schedule and its group size.
"""

import pytest
import torch

from bnlab import limits
from bnlab.config import RunSpec
from bnlab.core import backprop
from bnlab.core import model as M
from bnlab.core.norms import NORMS, BNConfig, NormArgs
from bnlab.errors import ConfigError

K, B, C = 2, 10, 8  # ghost 4: two chunks and a remainder of 2; group 4: two groups
ARGS = NormArgs(BNConfig(momentum=0.9, eps=1e-3), group_size=4, ghost=4)
TOL = 1e-10  # float64
ALL = list(NORMS.values())
IDS = list(NORMS)


def _inputs(b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(K, b, C, generator=g, dtype=torch.float64) * 2 + 0.5
    gamma = torch.rand(K, 1, C, generator=g, dtype=torch.float64) + 0.5
    beta = torch.randn(K, 1, C, generator=g, dtype=torch.float64)
    mean = torch.randn(K, 1, C, generator=g, dtype=torch.float64)
    var = torch.rand(K, 1, C, generator=g, dtype=torch.float64) + 0.5
    return x, gamma, beta, (mean, var)


def _run(norm, x, gamma, beta, state, *, training=True, args=ARGS, keep=False):
    return norm.forward(
        x, gamma, beta, state if norm.running_stats else None, args, training=training, keep=keep
    )


@pytest.mark.parametrize("norm", [n for n in ALL if n.backward], ids=[n.name for n in ALL if n.backward])
def test_the_hand_written_backward_matches_autograd(norm):
    x, gamma, beta, state = _inputs()
    dout = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    y, st, _ = _run(norm, *leaves, state)
    want = torch.autograd.grad((y * dout).sum(), leaves, allow_unused=True)
    with torch.no_grad():
        y2, st2, saved = _run(norm, x.clone(), gamma, beta, state, keep=True)
        got = norm.backward(dout, gamma, saved, ARGS)
    assert (y2 - y).abs().max() <= TOL
    assert (st is None) == (st2 is None) and (st is None or all(torch.equal(a, b) for a, b in zip(st, st2)))
    for name, w, g in zip(("x", "gamma", "beta"), want, got):
        w = torch.zeros_like(g) if w is None else w  # the identity has no γ, β
        assert (g - w).abs().max() <= TOL, name


def test_the_fast_step_trains_exactly_the_entries_with_a_backward():
    for n in ALL:
        spec = RunSpec(norm=n.name, group_size=4, batch_size=max(n.min_batch, 2))
        assert backprop.supported(M.StackConfig.from_specs([spec], 30, 7)) == (n.backward is not None), n.name


@pytest.mark.parametrize("norm", ALL, ids=IDS)
def test_running_statistics_are_kept_and_read_as_declared(norm):
    x, gamma, beta, state = _inputs()
    y_train, new, _ = _run(norm, x, gamma, beta, state)
    y_eval, same, _ = _run(norm, x, gamma, beta, state, training=False)
    if not norm.running_stats:  # no state in or out, and eval mode is training mode
        assert new is None and same is None and torch.equal(y_eval, y_train)
        return
    assert same is state  # eval mode leaves the statistics alone
    assert not torch.equal(new[0], state[0]) and not torch.equal(new[1], state[1])  # training updates them
    other = (state[0] + 1.0, state[1] * 2.0)
    assert not torch.allclose(_run(norm, x, gamma, beta, other, training=False)[0], y_eval)  # eval reads them


@pytest.mark.parametrize("norm", ALL, ids=IDS)
def test_a_norm_needs_a_batch_exactly_as_declared(norm):
    """needs_batch: a sample's training output moves when another sample of its batch does."""
    x, gamma, beta, state = _inputs()
    x2 = x.clone()
    x2[:, 1:] += torch.randn(x2[:, 1:].shape, dtype=torch.float64)
    moved = not torch.allclose(
        _run(norm, x, gamma, beta, state)[0][:, 0], _run(norm, x2, gamma, beta, state)[0][:, 0]
    )
    assert moved == norm.needs_batch


@pytest.mark.parametrize(
    "norm", [n for n in ALL if n.needs_batch], ids=[n.name for n in ALL if n.needs_batch]
)
def test_below_its_smallest_batch_a_norm_is_refused(norm):
    """Below min_batch the training output no longer depends on the input (x̂ = 0); at min_batch it does.
    A spec asking for a smaller batch is refused."""
    for b, informative in ((norm.min_batch - 1, False), (norm.min_batch, True)):
        x, gamma, beta, state = _inputs(b)
        x.requires_grad_()
        y, _, _ = _run(norm, x, gamma, beta, state)
        (dx,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x)
        assert (dx.abs().max() > 1e-6) == informative, b
    with pytest.raises(ConfigError, match="batch_size"):
        RunSpec(norm=norm.name, batch_size=norm.min_batch - 1)
    RunSpec(norm=norm.name, batch_size=norm.min_batch, group_size=4)


@pytest.mark.parametrize("norm", ALL, ids=IDS)
def test_schedule_and_group_size_are_read_as_declared(norm):
    x, gamma, beta, state = _inputs()
    far = (state[0] + 3.0, state[1] * 5.0)  # running statistics far from the batch's: r and d clip
    relaxed = NormArgs(ARGS.bn, ARGS.group_size, ARGS.ghost, rmax=3.0, dmax=5.0)
    y, y_relaxed = (_run(norm, x, gamma, beta, far, args=a)[0] for a in (ARGS, relaxed))
    assert (not torch.allclose(y, y_relaxed)) == norm.scheduled
    other_groups = NormArgs(ARGS.bn, 2, ARGS.ghost)
    assert (not torch.allclose(y, _run(norm, x, gamma, beta, far, args=other_groups)[0])) == norm.grouped


def test_the_identity_is_the_identity_and_the_registry_is_the_vocabulary():
    x, gamma, beta, state = _inputs()
    for n in ALL:
        assert n.identity == torch.equal(_run(n, x, gamma, beta, state)[0], x), n.name
    assert limits.NORMS == tuple(NORMS) and limits.CHOICES["norm"] == tuple(NORMS)
    assert [n.name for n in ALL if n.identity] == ["none"]
