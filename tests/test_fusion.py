"""The plan's fused groups (fusion.py: a weighted layer and its ReLU in one pass each way, BN +
ReLU, Add + ReLU) against their unfused twins, the layers' own forward and backward; where
the plan forms them; and the layer protocol, which knows nothing about them."""
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import backend, layers
from minicnn.activations import ReLU
from minicnn.fusion import AddReluGroup, NormReluGroup, epilogue_group
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
    group = epilogue_group(layer)
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
            assert [type(s.group).__name__ for s in model.plan().groups] == ["ConvReluGroup", "DenseReluGroup"]
            assert " -> ".join(steps) in model.summary(details=True, print_fn=None)
            assert [row["layer"] for row in mc.trace(model, x, y, verbose=False)] == steps
    with mc.use_kernels("reference"):
        assert model.plan().describe() == ["conv", "flat", "hidden", "linear", "out"]
        assert model.plan().groups == []


FUSION_ARGUMENTS = {"relu", "relu_out", "bias_grad", "epilogue", "kept"}     # (the names the layers' fusion flags had)


def test_the_layer_protocol_has_no_fusion_arguments():
    """Every layer's ``call`` takes (inputs, training), its ``call_backward`` (∂L/∂z, input_grad),
    and no method of a layer takes a fused group's argument: the groups call the kernels
    themselves (fusion.py), never a layer with a flag."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    checked = 0
    for cls in [layers.Layer, *subclasses(layers.Layer)]:
        for name, method in vars(cls).items():
            if not inspect.isfunction(method):
                continue
            names = list(inspect.signature(method).parameters)[1:]
            assert not FUSION_ARGUMENTS & set(names), f"{cls.__name__}.{name}{tuple(names)}"
            if name == "call":
                assert len(names) == 2 and names[1] == "training", f"{cls.__name__}.call{tuple(names)}"
            if name == "call_backward":
                assert len(names) == 2 and names[1] == "input_grad", f"{cls.__name__}.call_backward{tuple(names)}"
            checked += name in ("call", "call_backward")
    assert checked > 40                   # (every layer class was seen: the walk is not empty)


@given(n=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 6),
       axis=st.sampled_from([-1, 1, 2, 3]), center=st.booleans(), scale=st.booleans(), training=st.booleans(),
       trainable=st.booleans(), rule=st.sampled_from(ReLU.RULES), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_a_norm_relu_group_equals_its_layers_run_unfused(kernels, n, h, w, c, axis, center, scale, training,
                                                         trainable, rule, dtype, seed):
    """BatchNormalization + ReLU as one step (fusion.NormReluGroup): the same output, ∂L/∂x,
    ∂L/∂γ, ∂L/∂β and moving statistics as BN's forward and backward followed by the ReLU
    layer's, in both modes (a frozen layer runs in inference mode) and for each backward rule."""
    rng = np.random.default_rng(seed)
    x_host = rng.normal(0.5, 2.0, (n, h, w, c)).astype(dtype)
    norm, act = layers.BatchNormalization(axis=axis, center=center, scale=scale, dtype=dtype), layers.Activation("relu")
    norm.build((None, h, w, c))
    norm.set_weights([rng.uniform(0.5, 1.5, v.shape) if key == "moving_variance" else rng.normal(size=v.shape)
                      for key, v in norm.params.items()])
    norm.trainable = trainable
    act.activation.rule = rule
    if kernels.device == "gpu":
        norm.params = {k: kernels(v) for k, v in norm.params.items()}
    weights = dict(norm.params)
    x = kernels(x_host)
    group = NormReluGroup(norm, act)
    a = host(group.forward(x, training=training))
    dy = kernels(rng.standard_normal(a.shape).astype(dtype))
    dx = host(group.backward(dy))
    grads, moved = {k: host(g) for k, g in norm.grads.items()}, {k: host(v) for k, v in norm.params.items()}
    norm.params = dict(weights)
    a_twin, dx_twin = group.run_unfused(x, dy, training=training)
    np.testing.assert_array_equal(a, host(a_twin))
    np.testing.assert_array_equal(dx, host(dx_twin))
    assert grads.keys() == norm.grads.keys() == ({"gamma"} if scale else set()) | ({"beta"} if center else set())
    for key, g in grads.items():
        np.testing.assert_array_equal(g, host(norm.grads[key]))
    for key, v in moved.items():
        np.testing.assert_array_equal(v, host(norm.params[key]))


def test_the_plan_fuses_batch_normalization_with_the_relu_reading_it():
    """Conv2D → BN → ReLU becomes conv, then BN + ReLU as one step; a BN whose output is also
    read elsewhere (a model output here) or is followed by another activation stays unfused;
    the reference kernels fuse nothing."""
    inputs = layers.Input((6, 6, 2))
    z = layers.BatchNormalization(name="bn")(layers.Conv2D(3, 3, use_bias=False, name="conv")(inputs))
    a = layers.Activation("relu", name="relu")(z)
    b = layers.BatchNormalization(name="bn_tanh")(a)
    out = layers.Activation("tanh", name="tanh")(b)
    side = layers.Activation("relu", name="side_relu")(b)
    model = mc.Model(inputs, out)
    with mc.use_kernels("numba"):
        assert model.plan().describe() == ["conv", "bn + relu (fused)", "bn_tanh", "tanh"]
        assert [type(s.group).__name__ for s in model.plan().groups] == ["NormReluGroup"]
        assert mc.Model(inputs, [out, side]).plan().describe() == ["conv", "bn + relu (fused)", "bn_tanh", "tanh",
                                                                   "side_relu"]
        assert mc.Model(inputs, [z, a]).plan().describe() == ["conv", "bn", "relu"]
    with mc.use_kernels("reference"):
        assert model.plan().describe() == ["conv", "bn", "relu", "bn_tanh", "tanh"]


@given(n=st.integers(1, 4), h=st.integers(1, 6), c=st.integers(1, 6), inputs=st.integers(2, 3),
       rule=st.sampled_from(ReLU.RULES), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_an_add_relu_group_equals_its_layers_run_unfused(kernels, n, h, c, inputs, rule, dtype, seed):
    """Add + ReLU as one step (fusion.AddReluGroup): the same output and the same gradient to
    every input as the Add layer's forward and backward with the ReLU layer's, for each rule."""
    rng = np.random.default_rng(seed)
    xs = [kernels(rng.standard_normal((n, h, h, c)).astype(dtype)) for _ in range(inputs)]
    add, act = layers.Add(), layers.Activation("relu")
    act.activation.rule = rule
    group = AddReluGroup(add, act)
    a = host(group.forward(xs, training=True))
    dy = kernels(rng.standard_normal(a.shape).astype(dtype))
    dxs = [host(d) for d in group.backward(dy)]
    a_twin, dxs_twin = group.run_unfused(xs, dy, training=True)
    np.testing.assert_array_equal(a, host(a_twin))
    assert len(dxs) == len(dxs_twin) == inputs
    for dx, twin in zip(dxs, dxs_twin):
        np.testing.assert_array_equal(dx, host(twin))


def test_the_plan_fuses_the_resnet_blocks_bn_and_add_with_their_relus(float64):
    """examples/resnet.py's network: each BN and each Add read by a ReLU runs as one step with
    it (the stem's BN and each block's first BN; each block's Add), and two training steps on
    the fused plan end with the weights of the reference kernels' (every layer by itself)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
    import resnet
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 8, 8, 3)), rng.integers(0, 10, 4)
    weights = {}
    for family in ("reference", "numba"):
        with mc.use_kernels(family):
            mc.set_seed(0)
            model = resnet.small_resnet(mc, (8, 8, 3), widths=(4, 8, 8))
            fused = [step for step in model.plan().describe() if step.endswith("(fused)")]
            assert len(fused) == (0 if family == "reference" else 4 + 3)
            assert sum(step.startswith("add") for step in fused) == (0 if family == "reference" else 3)
            model.compile(mc.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
            for _ in range(2):
                model.train_on_batch(x, y)
            weights[family] = model.get_weights()
    for a, b in zip(weights["numba"], weights["reference"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


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


def test_an_average_pool_over_a_relu_layer_trains_as_on_the_reference_kernels():
    """An AveragePooling2D over a Conv2D(relu) is no ReLU–pool group (its backward has no
    arg-max to gate): one training step gives the reference kernels' weights."""
    def stepped(family):
        mc.utils.set_random_seed(3)
        model = mc.Sequential([layers.Input((8, 8, 2)), layers.Conv2D(3, 3, activation="relu", name="conv"),
                               layers.AveragePooling2D(2, name="pool"), layers.Flatten(), layers.Dense(2)])
        model.compile(mc.optimizers.SGD(0.1), "mse")
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((4, 8, 8, 2)), rng.standard_normal((4, 2))
        with mc.use_kernels(family):
            assert "pool" in model.plan().describe()
            model.train_on_batch(x.astype("float32"), y.astype("float32"))
        return model.get_weights()
    reference = stepped("reference")
    for family in ("numpy", "numba"):
        for w, w_ref in zip(stepped(family), reference):
            np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
