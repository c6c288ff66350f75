"""Losses: central-difference gradients (probabilities and logits), stability at ±1000,
and the fused softmax/sigmoid + cross-entropy gradient."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import activations, losses
from minicnn.study.finite_differences import numeric_gradient, relative_error

LOSSES = [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy, losses.BinaryCrossentropy]


def make_labels(loss_cls, rng, n, k):
    if loss_cls is losses.CategoricalCrossentropy:
        return np.eye(k)[rng.integers(0, k, n)]
    if loss_cls is losses.SparseCategoricalCrossentropy:
        return rng.integers(0, k, n)
    return rng.integers(0, 2, (n, k)).astype(float)


@pytest.mark.parametrize("loss_cls", LOSSES)
@pytest.mark.parametrize("from_logits", [False, True])
@given(n=st.integers(1, 6), k=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_loss_gradient_by_central_differences(loss_cls, from_logits, n, k, seed):
    rng = np.random.default_rng(seed)
    y = make_labels(loss_cls, rng, n, k)
    if from_logits:
        pred = rng.standard_normal((n, k)) * 3
    elif loss_cls is losses.BinaryCrossentropy:
        pred = rng.uniform(0.05, 0.95, (n, k))
    else:
        pred = rng.dirichlet(np.ones(k), n) * 0.9 + 0.1 / k
    loss = loss_cls(from_logits=from_logits)
    loss.forward(pred, y)
    analytic = loss.backward().copy()
    numeric = numeric_gradient(lambda: loss.forward(pred, y), pred, np.arange(pred.size))
    # a saturated softmax has a gradient near 1e-6 whose central difference carries the
    # cancellation error of the loss (~1e-16·|z| / h ≈ 1e-9): that absolute floor applies
    assert relative_error(analytic, numeric) < 1e-6 or np.abs(analytic.ravel() - numeric).max() < 1e-9


@pytest.mark.parametrize("loss_cls,act", [(losses.CategoricalCrossentropy, activations.Softmax),
                                          (losses.SparseCategoricalCrossentropy, activations.Softmax),
                                          (losses.BinaryCrossentropy, activations.Sigmoid)])
@given(n=st.integers(1, 5), k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_fused_gradient_equals_the_chain_rule(loss_cls, act, n, k, seed):
    """(p − y)/n from the logits equals activation.backward(∂L/∂p) when nothing is clipped."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k))
    y = make_labels(loss_cls, rng, n, k)
    a = act()
    p = a.forward(z)
    loss = loss_cls()
    value_probs = loss.forward(p, y)
    chained = a.backward(loss.backward())
    value_logits = loss.forward_logits(z, y)
    np.testing.assert_allclose(value_logits, value_probs, rtol=1e-10)
    np.testing.assert_allclose(loss.backward(), chained, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("loss_cls", LOSSES)
def test_extreme_logits_give_finite_loss_and_gradient(loss_cls):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    y = make_labels(loss_cls, np.random.default_rng(0), 2, 3)
    loss = loss_cls(from_logits=True)
    value = loss.forward(z, y)
    assert np.isfinite(value) and np.isfinite(loss.backward()).all()
    assert np.isfinite(loss.forward_logits(z.astype(np.float32), y))


def test_known_values():
    """Hand-computed: −log 0.9 for a confident correct prediction; log 2 for BCE at 0.5."""
    cce = losses.CategoricalCrossentropy()
    assert np.isclose(cce.forward(np.array([[0.9, 0.05, 0.05]]), np.array([[1.0, 0, 0]])), -np.log(0.9))
    bce = losses.BinaryCrossentropy()
    assert np.isclose(bce.forward(np.array([[0.5]]), np.array([[1.0]])), np.log(2))
    sce = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert np.isclose(sce.forward(np.zeros((1, 4)), np.array([2])), np.log(4))


@pytest.mark.parametrize("bad_labels,loss", [
    (np.zeros((4, 3)), losses.CategoricalCrossentropy()),
    (np.array([0, 1, 5, 2]), losses.SparseCategoricalCrossentropy()),
    (np.array([0.5, 1, 2, 1]), losses.SparseCategoricalCrossentropy()),
    (np.zeros((4, 2)), losses.BinaryCrossentropy()),
])
def test_bad_labels_raise(bad_labels, loss):
    with pytest.raises(ValueError, match="label|shape"):
        loss.forward(np.full((4, 4), 0.25), bad_labels)


@pytest.mark.parametrize("loss_cls", [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy])
@given(n=st.integers(1, 40), k=st.integers(1, 12), scale=st.sampled_from([1.0, 50.0]), seed=st.integers(0, 2**16))
def test_fused_softmax_cross_entropy_kernels_equal_the_numpy_expressions(kernels, loss_cls, n, k, scale, seed):
    """The one-pass softmax–cross-entropy (Numba; CUDA on a GPU) equals the NumPy
    expressions of the logits path, value and gradient (label sums other than 1 included)."""
    from minicnn import backend
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k)) * scale
    y = rng.uniform(0, 1, (n, k)) if loss_cls is losses.CategoricalCrossentropy else rng.integers(0, k, n)
    loss = loss_cls(from_logits=True)
    value, grad = float(loss.forward(kernels(z), kernels(y))), backend.to_numpy(loss.backward())
    with mc.use_kernels("numpy"):
        expected_value, expected_grad = float(loss.forward(z, y)), loss.backward()
    np.testing.assert_allclose(value, expected_value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-14)
