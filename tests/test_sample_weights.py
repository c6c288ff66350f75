"""sample_weight / class_weight / weighted_metrics: the weighted loss's gradient by central
differences, and fit / evaluate / train_on_batch / test_on_batch against TF-Keras in float64
on the same weights (loss values, one SGD step's weights, two epochs' history)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tf_helpers import keras
import minicnn as mc
from minicnn import losses
from minicnn.keras_bridge import to_keras
from minicnn.study.finite_differences import numeric_gradient, relative_error

pytestmark = pytest.mark.tf

LOSS_CLASSES = [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy, losses.BinaryCrossentropy,
                losses.MeanSquaredError, losses.MeanAbsoluteError, losses.Huber]


def labels_for(loss_name, rng, n, k):
    if loss_name in ("categorical_crossentropy", "CategoricalCrossentropy"):
        return np.eye(k)[rng.integers(0, k, n)]
    if loss_name in ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"):
        return rng.integers(0, k, n)
    if loss_name in ("binary_crossentropy", "BinaryCrossentropy"):
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.normal(size=(n, k))


def predictions_for(loss_cls, from_logits, rng, n, k):
    if from_logits or loss_cls not in (losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy,
                                       losses.BinaryCrossentropy):
        return rng.standard_normal((n, k)) * 2
    if loss_cls is losses.BinaryCrossentropy:
        return rng.uniform(0.05, 0.95, (n, k))
    return rng.dirichlet(np.ones(k), n) * 0.9 + 0.1 / k


def make_loss(loss_cls, from_logits, reduction="sum_over_batch_size"):
    if issubclass(loss_cls, losses.ReducedLoss):
        return loss_cls(reduction=reduction)
    return loss_cls(from_logits=from_logits)


@pytest.mark.parametrize("loss_cls", LOSS_CLASSES)
@pytest.mark.parametrize("from_logits", [False, True])
@given(n=st.integers(1, 6), k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_weighted_loss_gradient_by_central_differences(loss_cls, from_logits, n, k, seed):
    rng = np.random.default_rng(seed)
    y = labels_for(loss_cls.__name__, rng, n, k)
    pred = predictions_for(loss_cls, from_logits, rng, n, k)
    w = rng.uniform(-0.5, 3.0, n)                  # Keras accepts negative weights too
    loss = make_loss(loss_cls, from_logits)
    loss.forward(pred, y, w)
    analytic = loss.backward().copy()
    numeric = numeric_gradient(lambda: loss.forward(pred, y, w), pred, np.arange(pred.size))
    assert relative_error(analytic, numeric) < 1e-6 or np.abs(analytic.ravel() - numeric).max() < 1e-9


VALUE_CASES = [(cls, logits, "sum_over_batch_size") for cls in LOSS_CLASSES[:3] for logits in (False, True)] + \
              [(cls, False, reduction) for cls in LOSS_CLASSES[3:] for reduction in ("sum_over_batch_size", "sum")]


@pytest.mark.parametrize("loss_cls,from_logits,reduction", VALUE_CASES)
def test_weighted_loss_value_equals_keras(loss_cls, from_logits, reduction):
    """Keras 3: L = Σ_b w_b ℓ_b / n (the batch size, not Σw), or Σ_b w_b ℓ_b for 'sum'."""
    rng = np.random.default_rng(3)
    y = labels_for(loss_cls.__name__, rng, 7, 4)
    pred = predictions_for(loss_cls, from_logits, rng, 7, 4)
    w = rng.uniform(0, 2, 7)
    ours = make_loss(loss_cls, from_logits, reduction)(y, pred, sample_weight=w)
    kwargs = {"reduction": reduction} if issubclass(loss_cls, losses.ReducedLoss) else {"from_logits": from_logits}
    theirs = getattr(keras.losses, loss_cls.__name__)(**kwargs)(y, pred, sample_weight=w)
    assert abs(float(ours) - float(np.asarray(theirs))) < 1e-6 * max(1.0, abs(float(ours)))


def test_fused_weighted_loss_equals_the_unfused_one():
    """From the logits (softmax fused) or from the probabilities: the same weighted L and seed."""
    rng = np.random.default_rng(0)
    z, y, w = rng.normal(size=(5, 4)), rng.integers(0, 4, 5), rng.uniform(0, 2, 5)
    softmax = mc.activations.Softmax()
    p = softmax.forward(z)
    loss = losses.SparseCategoricalCrossentropy()
    value_probs = loss.forward(p, y, w)
    chained = softmax.backward(loss.backward())
    np.testing.assert_allclose(loss.forward_logits(z, y, w), value_probs, rtol=1e-10)
    np.testing.assert_allclose(loss.backward(), chained, rtol=1e-8, atol=1e-12)


# -- fit and friends against TF-Keras -------------------------------------------------------

CASES = {   # output units, activation, loss
    "sparse": (3, "softmax", "sparse_categorical_crossentropy"),
    "one_hot": (3, "softmax", "categorical_crossentropy"),
    "binary": (1, "sigmoid", "binary_crossentropy"),
    "mse": (2, None, "mse"),
}


def twins(case, lr=0.1):
    """A small minicnn model and its Keras twin (same weights), compiled alike, float64."""
    units, activation, loss = CASES[case]
    mc.set_seed(0)
    ours = mc.models.Sequential([mc.layers.Input((5,)), mc.layers.Dense(6, activation="relu"),
                                 mc.layers.Dense(units, activation=activation)])
    theirs = to_keras(ours)
    metrics = ["accuracy"] if activation else []
    ours.compile(mc.optimizers.SGD(lr), loss, metrics=metrics, weighted_metrics=metrics)
    theirs.compile(keras.optimizers.SGD(lr), loss, metrics=metrics, weighted_metrics=metrics)
    return ours, theirs


def data(case, n=22, seed=1):
    rng = np.random.default_rng(seed)
    units, _, loss = CASES[case]
    x = rng.normal(size=(n, 5))
    y = labels_for(loss, rng, n, units)
    return x, y, rng.uniform(0.1, 3.0, n)


@pytest.fixture
def keras_float64(float64):
    previous = keras.backend.floatx()
    keras.backend.set_floatx("float64")
    yield
    keras.backend.set_floatx(previous)


def assert_same_logs(ours: dict, theirs: dict):
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, atol=1e-12, err_msg=key)


def assert_same_weights(ours, theirs):
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_evaluate_and_one_step_with_sample_weight_equal_keras(keras_float64, case):
    ours, theirs = twins(case)
    x, y, w = data(case)
    assert_same_logs(ours.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0, return_dict=True),
                     theirs.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0, return_dict=True))
    before = ours.get_weights()
    assert_same_logs(ours.train_on_batch(x, y, sample_weight=w, return_dict=True),
                     theirs.train_on_batch(x, y, sample_weight=w, return_dict=True))
    assert_same_weights(ours, theirs)
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(before, ours.get_weights()))     # it did step
    assert_same_logs(ours.test_on_batch(x, y, sample_weight=w, return_dict=True),
                     theirs.test_on_batch(x, y, sample_weight=w, return_dict=True))


@pytest.mark.parametrize("case", ["sparse", "one_hot", "binary"])
def test_class_weight_equals_keras(keras_float64, case):
    ours, theirs = twins(case)
    x, y, _ = data(case)
    class_weight = {0: 2.5, 1: 0.4}
    assert_same_logs(ours.train_on_batch(x, y, class_weight=class_weight, return_dict=True),
                     theirs.train_on_batch(x, y, class_weight=class_weight, return_dict=True))
    assert_same_weights(ours, theirs)
    kwargs = dict(class_weight=class_weight, batch_size=8, epochs=2, shuffle=False, verbose=0,
                  validation_split=0.25)
    assert_same_logs(ours.fit(x, y, **kwargs).history, theirs.fit(x, y, **kwargs).history)
    assert_same_weights(ours, theirs)


@pytest.mark.parametrize("case", CASES)
def test_two_epochs_with_weighted_validation_equal_keras(keras_float64, case):
    ours, theirs = twins(case)
    x, y, w = data(case)
    xv, yv, wv = data(case, n=9, seed=2)
    kwargs = dict(sample_weight=w, validation_data=(xv, yv, wv), batch_size=8, epochs=2, shuffle=False,
                  verbose=0)
    h_ours, h_theirs = ours.fit(x, y, **kwargs).history, theirs.fit(x, y, **kwargs).history
    assert_same_logs(h_ours, h_theirs)
    assert h_ours["loss"][0] != h_ours["loss"][1]
    assert_same_weights(ours, theirs)


def test_validation_split_splits_the_sample_weights_as_keras(keras_float64):
    ours, theirs = twins("sparse")
    x, y, w = data("sparse")
    kwargs = dict(sample_weight=w, validation_split=0.3, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert_same_logs(ours.fit(x, y, **kwargs).history, theirs.fit(x, y, **kwargs).history)


def weighted_batches(x, y, w, size=8):
    for i in range(0, len(x), size):
        yield x[i:i + size], y[i:i + size], w[i:i + size]


class WeightedSequence(keras.utils.PyDataset):
    """Batches (x, y, w); a Keras PyDataset, which minicnn takes as any Sequence."""

    def __init__(self, x, y, w, size=8):
        super().__init__()
        self.x, self.y, self.w, self.size = x, y, w, size

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        rows = slice(i * self.size, (i + 1) * self.size)
        return self.x[rows], self.y[rows], self.w[rows]


@pytest.mark.parametrize("source", ["generator", "sequence"])
def test_batches_with_weights_train_as_arrays_with_sample_weight(keras_float64, source):
    """(x, y, w) batches from a generator or Sequence give Keras's history, and that of
    the same arrays passed with sample_weight."""
    ours, theirs = twins("one_hot")
    arrays, _ = twins("one_hot")
    x, y, w = data("one_hot")

    def batches():
        return (weighted_batches(x, y, w) if source == "generator" else WeightedSequence(x, y, w))
    steps = -(-len(x) // 8)
    h_ours = ours.fit(batches(), steps_per_epoch=None if source == "sequence" else steps, epochs=1, verbose=0)
    h_theirs = theirs.fit(batches(), epochs=1, verbose=0, shuffle=False)     # (Keras shuffles a PyDataset's batches)
    h_arrays = arrays.fit(x, y, sample_weight=w, batch_size=8, shuffle=False, epochs=1, verbose=0)
    assert_same_logs(h_ours.history, h_theirs.history)
    assert_same_logs(h_ours.history, h_arrays.history)
    assert_same_logs(ours.evaluate(batches(), verbose=0, return_dict=True),
                     theirs.evaluate(batches(), verbose=0, return_dict=True))


class PairSequence(WeightedSequence):
    """Batches (x, y), without weights."""

    def __getitem__(self, i):
        return super().__getitem__(i)[:2]


def test_class_weight_weighs_the_batches_of_a_sequence(float64):
    ours, arrays = twins("sparse")[0], twins("sparse")[0]
    x, y, w = data("sparse")
    class_weight = {0: 3.0, 2: 0.5}
    h = ours.fit(PairSequence(x, y, w), class_weight=class_weight, epochs=2, verbose=0).history
    h_arrays = arrays.fit(x, y, class_weight=class_weight, batch_size=8, shuffle=False, epochs=2, verbose=0).history
    assert_same_logs(h, h_arrays)


# -- errors --------------------------------------------------------------------------------

def test_bad_weights_are_refused_with_clear_messages(float64):
    ours = twins("sparse")[0]
    x, y, w = data("sparse")
    with pytest.raises(ValueError, match=r"fit: sample_weight must have shape \(22,\).*\(11,\)"):
        ours.fit(x, y, sample_weight=w[:11], verbose=0)
    with pytest.raises(ValueError, match=r"evaluate: sample_weight must have shape \(22,\).*\(11, 2\)"):
        ours.evaluate(x, y, sample_weight=w.reshape(11, 2), verbose=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        ours.fit(x, y, sample_weight=np.where(np.arange(22) == 3, np.nan, w), verbose=0)
    with pytest.raises(ValueError, match="class_weight and sample_weight cannot be given at the same time"):
        ours.fit(x, y, sample_weight=w, class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight keys must be class indices in \[0, 3\), received key 3"):
        ours.fit(x, y, class_weight={0: 1.0, 3: 2.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\), received key 'a'"):
        ours.train_on_batch(x, y, class_weight={"a": 2.0})
    with pytest.raises(ValueError, match="class_weight must be a dict"):
        ours.fit(x, y, class_weight=[1.0, 2.0, 3.0], verbose=0)
    with pytest.raises(ValueError, match="sample_weight cannot be given with a generator"):
        ours.fit(weighted_batches(x, y, w), sample_weight=w, steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match=r"validation_data must be a tuple \(x_val, y_val\) or \(x_val, y_val, "
                                         r"sample_weight\), received a tuple of length 4"):
        ours.fit(x, y, validation_data=(x, y, w, w), verbose=0)
    with pytest.raises(ValueError, match="batches already carry sample weights"):
        ours.fit(WeightedSequence(x, y, w), class_weight={0: 2.0}, verbose=0)


def test_class_weight_is_for_one_output_models(float64):
    inputs = mc.layers.Input((5,))
    a = mc.layers.Dense(3, activation="softmax", name="a")(inputs)
    b = mc.layers.Dense(2, activation="softmax", name="b")(inputs)
    model = mc.models.Model(inputs, [a, b])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y, w = data("sparse")
    yb = y % 2
    with pytest.raises(ValueError, match="class_weight is only supported for models with a single output"):
        model.fit(x, [y, yb], class_weight={0: 2.0}, verbose=0)
    # one sample_weight array weighs every output; a list gives one per output
    both = model.evaluate(x, [y, yb], sample_weight=w, verbose=0, return_dict=True)
    listed = model.evaluate(x, [y, yb], sample_weight=[w, w], verbose=0, return_dict=True)
    assert_same_logs(both, listed)
    only_a = model.evaluate(x, [y, yb], sample_weight={"a": w, "b": np.ones(len(x))}, verbose=0,
                            return_dict=True)
    plain = model.evaluate(x, [y, yb], verbose=0, return_dict=True)
    assert only_a["b_loss"] == pytest.approx(plain["b_loss"], rel=1e-12)
    assert only_a["a_loss"] == pytest.approx(both["a_loss"], rel=1e-12)
