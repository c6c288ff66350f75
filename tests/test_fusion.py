"""The plan's fused epilogue group (fusion.EpilogueGroup: a weighted layer and its ReLU in one
pass each way) against its unfused twin, the layer's own forward and backward; and where
the plan forms it."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import backend, layers
from minicnn.activations import ReLU
from minicnn.fusion import EpilogueGroup, SumReluGroup
from strategies import window_configs


def weighted_layer(kind, cfg, use_bias):
    if kind == "conv2d":
        return layers.Conv2D(cfg["f"], cfg["kernel"], cfg["strides"], cfg["padding"], activation="relu",
                             use_bias=use_bias)
    return layers.Dense(cfg["f"], activation="relu", use_bias=use_bias)


def host(a):
    return backend.to_numpy(a).copy()


@pytest.mark.parametrize("kind", ["conv2d", "dense"])
@given(cfg=window_configs(max_channels=6), dtype=st.sampled_from([np.float32, np.float64]),
       use_bias=st.booleans(), rule=st.sampled_from(ReLU.RULES), seed=st.integers(0, 2**16))
def test_an_epilogue_group_equals_its_layer_run_unfused(kernels, kind, cfg, dtype, use_bias, rule, seed):
    """The same output, ∂L/∂x and weight gradients (∂L/∂b summed in the ReLU's pass, or by
    the layer) as ``layer.forward`` / ``layer.backward``, for each backward rule."""
    rng = np.random.default_rng(seed)
    layer = weighted_layer(kind, cfg, use_bias)
    x_host = rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c"])).astype(dtype)
    layer.build((None, *x_host.shape[1:]))
    layer.dtype = dtype
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    if kernels.device == "gpu":
        layer.params = {k: kernels(v) for k, v in layer.params.items()}
    layer.activation.rule = rule
    x = kernels(x_host)
    group = EpilogueGroup(layer)
    a = host(group.forward(x, training=True))
    dy = kernels(rng.standard_normal(a.shape).astype(dtype))
    dx = host(group.backward(dy))
    grads = {k: host(g) for k, g in layer.grads.items()}
    a_twin, dx_twin = group.run_unfused(x, dy, training=True)
    np.testing.assert_array_equal(a, host(a_twin))
    np.testing.assert_array_equal(dx, host(dx_twin))
    assert grads.keys() == layer.grads.keys() == ({"kernel", "bias"} if use_bias else {"kernel"})
    np.testing.assert_array_equal(grads["kernel"], host(layer.grads["kernel"]))
    if use_bias:                         # the two passes sum ∂L/∂z in other orders: ε · Σ|terms|
        terms = np.abs(host(dy)).reshape(-1, a.shape[-1]).sum(axis=0)
        np.testing.assert_allclose(grads["bias"], host(layer.grads["bias"]), rtol=0,
                                   atol=8 * np.finfo(dtype).eps * terms.max())


def test_the_plan_forms_epilogue_groups_on_the_fast_kernels_only():
    """Dense and Conv2D ending in a ReLU become fused epilogue groups, shown by the plan,
    ``summary(details=True)`` and ``trace``; a linear or softmax layer does not; the
    reference kernels run every layer by itself."""
    model = mc.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(3, 3, activation="relu", name="conv"),
                           layers.Flatten(name="flat"), layers.Dense(5, activation="relu", name="hidden"),
                           layers.Dense(4, name="linear"), layers.Dense(3, activation="softmax", name="out")])
    model.compile(mc.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype("float32")
    y = np.array([0, 2])
    for family in ("numpy", "numba"):
        with mc.use_kernels(family):
            steps = ["conv + relu (fused epilogue)", "flat", "hidden + relu (fused epilogue)", "linear", "out"]
            assert model.plan().describe() == steps
            assert [type(s.group).__name__ for s in model.plan().groups] == ["EpilogueGroup"] * 2
            assert " -> ".join(steps) in model.summary(details=True, print_fn=None)
            assert [row["layer"] for row in mc.trace(model, x, y, verbose=False)] == steps
    with mc.use_kernels("reference"):
        assert model.plan().describe() == ["conv", "flat", "hidden", "linear", "out"]
        assert model.plan().groups == []


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 6)),
       inputs=st.integers(2, 3), dtype=st.sampled_from([np.float32, np.float64]), rule=st.sampled_from(ReLU.RULES),
       relu_layer=st.booleans(), seed=st.integers(0, 2**16))
def test_a_sum_relu_group_equals_its_layers_run_unfused(kernels, shape, inputs, dtype, rule, relu_layer, seed):
    """Add then a ReLU layer as one step: the same output and inputs' gradients as the two
    layers' own forward and backward, for each backward rule."""
    rng = np.random.default_rng(seed)
    xs = [kernels(rng.standard_normal(shape).astype(dtype)) for _ in range(inputs)]
    add, relu = layers.Add(), layers.ReLU() if relu_layer else layers.Activation("relu")
    relu.activation.rule = rule
    group = SumReluGroup(add, relu)
    a = host(group.forward(xs, training=True))
    dy = kernels(rng.standard_normal(shape).astype(dtype))
    dxs = [host(g) for g in group.backward(dy)]
    a_twin, dxs_twin = group.run_unfused(xs, dy, training=True)
    np.testing.assert_array_equal(a, host(a_twin))
    assert len(dxs) == len(dxs_twin) == inputs
    for dx, twin in zip(dxs, dxs_twin):
        np.testing.assert_array_equal(dx, host(twin))


def test_the_plan_fuses_a_sum_and_its_relu_only_where_the_relu_is_the_sums_one_reader():
    """A residual block's Add + Activation('relu') is one step; not where the sum is also read
    by another layer, nor on the reference kernels; the model's gradients are the reference
    kernels' (unfused) either way."""
    inputs = mc.Input((4, 4, 3))
    x = layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    joined = layers.Add(name="sum")([inputs, x])
    fused = layers.Activation("relu", name="relu")(joined)
    read_twice = layers.Add(name="sum2")([fused, x])
    out = layers.Add(name="out")([layers.ReLU(name="relu2")(read_twice), read_twice])
    model = mc.Model(inputs, out)
    model.compile(mc.optimizers.SGD(0.01), "mse")
    data = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype("float32")
    dy = np.random.default_rng(1).standard_normal((2, 4, 4, 3)).astype("float32")
    results = {}
    for family in ("numba", "reference"):
        with mc.use_kernels(family):
            described = model.plan().describe()
            model.forward(data, training=True)
            results[family] = host(model.backward(dy)), host(model.get_layer("conv").grads["kernel"])
    assert described == ["conv", "sum", "relu", "sum2", "relu2", "out"]
    with mc.use_kernels("numba"):
        assert model.plan().describe() == ["conv", "sum + relu (fused)", "sum2", "relu2", "out"]
    for fast, reference in zip(*results.values()):
        np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-6)
