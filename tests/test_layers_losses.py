"""mean_squared_error, mean_absolute_error, huber, hinge and kl_divergence: values and gradients
equal Keras 3's (float64, every reduction), function and class forms, and training with them."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import layers, losses
from tf_helpers import keras, rel, tf

PAIRS = [(losses.MeanSquaredError, keras.losses.MeanSquaredError, {}),
         (losses.MeanAbsoluteError, keras.losses.MeanAbsoluteError, {}),
         (losses.Huber, keras.losses.Huber, {}),
         (losses.Huber, keras.losses.Huber, {"delta": 0.4}),
         (losses.Hinge, keras.losses.Hinge, {}),
         (losses.KLDivergence, keras.losses.KLDivergence, {})]


def targets_and_predictions(cls, rng, shape):
    if cls is losses.Hinge:
        labels = rng.integers(0, 2, shape).astype(float)
        return (labels if rng.random() < 0.5 else 2 * labels - 1), rng.standard_normal(shape) * 1.5
    if cls is losses.KLDivergence:
        y = rng.uniform(0, 1, shape)
        p = rng.uniform(-0.2, 1.2, shape)               # some outside [ε, 1]: the clip's zero gradient
        return y / y.sum(axis=-1, keepdims=True), p
    return rng.standard_normal(shape), rng.standard_normal(shape) * 2


@pytest.mark.parametrize("ours_cls,theirs_cls,kwargs", PAIRS)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
       reduction=st.sampled_from(["sum_over_batch_size", "sum", "none", None, "mean"]), seed=st.integers(0, 2**16))
def test_losses_match_keras(ours_cls, theirs_cls, kwargs, shape, reduction, seed):
    rng = np.random.default_rng(seed)
    y, p = targets_and_predictions(ours_cls, rng, shape)
    ours = ours_cls(reduction=reduction, **kwargs)
    value = ours.forward(p, y)
    pt = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(pt)
        value_tf = theirs_cls(reduction=reduction, dtype="float64", **kwargs)(tf.constant(y), pt)
        total = tf.reduce_sum(value_tf)
    assert np.shape(value) == tuple(value_tf.shape)
    assert rel(value, value_tf.numpy()) < 1e-12
    assert rel(ours.backward(), tape.gradient(total, pt).numpy()) < 1e-12


@pytest.mark.parametrize("name,function", [("mse", losses.mse), ("mae", losses.mae), ("huber", losses.huber),
                                           ("hinge", losses.hinge), ("kl_divergence", losses.kl_divergence)])
def test_function_forms_give_the_per_sample_values(name, function):
    rng = np.random.default_rng(0)
    y, p = rng.uniform(0, 1, (4, 3)), rng.uniform(0, 1, (4, 3))
    expected = keras.losses.get(name)(y, p).numpy()
    assert rel(function(y, p), expected) < 1e-12 and function(y, p).shape == (4,)
    assert isinstance(losses.get(name), losses.ReducedLoss)


def test_a_regression_model_trains_on_mse_and_round_trips(tmp_path, float64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = mc.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(mc.optimizers.SGD(learning_rate=0.05), "mse")
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    model.compile("sgd", losses.Huber(delta=0.5, reduction="sum"))
    model.save(tmp_path / "m.mnc")
    loaded = mc.load_model(tmp_path / "m.mnc")
    assert isinstance(loaded.loss, losses.Huber) and (loaded.loss.delta, loaded.loss.reduction) == (0.5, "sum")


def test_bad_reduction_is_named():
    with pytest.raises(ValueError, match="MeanSquaredError: reduction must be one of"):
        losses.MeanSquaredError(reduction="average")
