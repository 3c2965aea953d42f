"""Adam in Keras's form (profile keras) against Keras's update written out by hand."""

import math

import numpy as np
import pytest
import torch

from bnlab.config import PROFILE
from bnlab.core.optim import StackedOptimizer


def _keras_adam(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7):
    """tf.keras.optimizers.Adam (and Keras 3), per step t = 1, 2, …:
    m_t = β1 m + (1−β1) g;  v_t = β2 v + (1−β2) g²;  lr_t = lr √(1−β2ᵗ)/(1−β1ᵗ);  w −= lr_t m_t/(√v_t + ε)."""
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    return w


def _stacked(w0, grads, lrs, eps_form, eps=1e-7):
    flat = torch.tensor(w0, dtype=torch.float64)
    opt = StackedOptimizer.create("adam", {"f": flat}, lrs, eps=eps, eps_form=eps_form)
    for g in grads:
        opt.step({"f": flat}, {"f": torch.tensor(g, dtype=torch.float64)}, list(range(len(lrs))))
    return flat.numpy()


@pytest.mark.parametrize("steps", [1, 5])
def test_keras_form_equals_keras_update(steps):
    """Gradients spanning 1e-9 … 1: where √v is near ε the two placements differ by up to 31.6× in ε."""
    rng = np.random.default_rng(0)
    K, P = 3, 40
    w0 = rng.normal(size=(K, P))
    scale = 10.0 ** rng.integers(-9, 1, size=(1, P))  # per parameter: tiny to ordinary gradients
    grads = [rng.normal(size=(K, P)) * scale for _ in range(steps)]
    lrs = [1e-3, 1e-2, 1e-3]
    got = _stacked(w0, grads, lrs, "keras")
    for k, lr in enumerate(lrs):
        want = _keras_adam(w0[k], [g[k] for g in grads], lr)
        np.testing.assert_allclose(got[k] - w0[k], want - w0[k], rtol=1e-9, atol=1e-18)
    torch_form = _stacked(w0, grads, lrs, "torch")  # textbook placement: not Keras's
    assert np.abs((torch_form - w0) - (got - w0)).max() > 1e-6


def test_keras_effective_eps_is_eps_over_root_of_bias_correction():
    opt = StackedOptimizer.create("adam", {"f": torch.zeros(1, 1)}, [1e-3], eps=1e-7, eps_form="keras")
    opt.step({"f": torch.zeros(1, 1)}, {"f": torch.ones(1, 1)}, [0])
    assert opt.adam_eps() == pytest.approx(1e-7 / math.sqrt(0.001), rel=1e-12)  # 31.6 ε at step 1
    assert PROFILE["keras"].adam_eps_form == "keras" and PROFILE["torch"].adam_eps_form == "torch"
