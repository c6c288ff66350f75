"""Each new layer on every kernel family (NumPy, Numba, and CUDA where a GPU is present) gives
the NumPy path's outputs and gradients — including sizes at which the Numba implicit GEMM and
Winograd kernels take over the convolutions that the grouped, dilated and transposed ones reuse."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import layers
from minicnn.backend import to_numpy

CASES = {
    "batch_norm_training": (lambda: layers.BatchNormalization(), (4, 5, 5, 3), True),
    "batch_norm_inference": (lambda: layers.BatchNormalization(), (4, 5, 5, 3), False),
    "average_pooling_same": (lambda: layers.AveragePooling2D(3, 2, "same"), (2, 7, 6, 3), False),
    "global_max_pooling": (lambda: layers.GlobalMaxPooling2D(), (2, 4, 5, 3), False),
    "global_average_pooling": (lambda: layers.GlobalAveragePooling2D(), (2, 4, 5, 3), False),
    "zero_padding": (lambda: layers.ZeroPadding2D(((1, 2), (0, 1))), (2, 3, 4, 2), False),
    "cropping": (lambda: layers.Cropping2D(((1, 0), (1, 2))), (2, 5, 6, 2), False),
    "upsampling": (lambda: layers.UpSampling2D((2, 3)), (2, 3, 4, 2), False),
    "gelu": (lambda: layers.Activation("gelu"), (3, 7), False),
    "prelu": (lambda: layers.PReLU("glorot_uniform", shared_axes=[1, 2]), (2, 4, 4, 3), False),
    "softmax_axis_1": (lambda: layers.Softmax(axis=1), (2, 4, 3), False),
    "conv_dilated": (lambda: layers.Conv2D(4, 3, padding="same", dilation_rate=2, activation="relu"),
                     (2, 9, 9, 3), False),
    "conv_grouped_winograd_sized": (lambda: layers.Conv2D(48, 3, padding="same", groups=2, activation="relu"),
                                    (8, 16, 16, 48), False),
    "conv_transpose_strided": (lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
                               (2, 5, 6, 4), False),
    "conv_transpose_winograd_sized": (lambda: layers.Conv2DTranspose(32, 3, padding="same"), (8, 16, 16, 32), False),
    "depthwise": (lambda: layers.DepthwiseConv2D(3, 2, "same", depth_multiplier=2), (2, 7, 7, 3), False),
    "separable": (lambda: layers.SeparableConv2D(5, 3, padding="same", depth_multiplier=2, activation="relu"),
                  (2, 7, 7, 3), False),
}


def run(layer, x, dy, training):
    y = layer.forward(x, training=training)
    dx = layer.backward(dy)
    return to_numpy(y), to_numpy(dx), {k: to_numpy(v) for k, v in layer.grads.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_layers_agree_on_every_kernel_family(kernels, float64, name):
    make, shape, training = CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    reference = make()
    with mc.use_kernels("numpy"):
        reference.build((None, *shape[1:]))
        weights = reference.get_weights()
        dy = rng.standard_normal(reference.compute_output_shape(shape))
        y_ref, dx_ref, grads_ref = run(reference, x, dy, training)
    layer = make()
    layer.build((None, *shape[1:]))
    layer.set_weights(weights)
    layer.params = {k: kernels(v) for k, v in layer.params.items()}
    y, dx, grads = run(layer, kernels(x), kernels(dy), training)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    assert grads.keys() == grads_ref.keys()
    for key in grads:
        np.testing.assert_allclose(grads[key], grads_ref[key], rtol=1e-10, atol=1e-11, err_msg=key)


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_layers_keep_float32(name):
    make, shape, training = CASES[name]
    rng = np.random.default_rng(0)
    layer = make()
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer.forward(x, training=training)
    dx = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert y.dtype == dx.dtype == np.float32
    assert all(v.dtype == np.float32 for v in [*layer.params.values(), *layer.grads.values()]), \
        {k: v.dtype for k, v in [*layer.params.items(), *layer.grads.items()]}
