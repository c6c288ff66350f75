"""Separable convolutions, the unit of Xception's blocks (seed tutorial 3 points to Xception).

A plain k×k convolution from c to f channels mixes space and channels at once:
k²·c·f weights, and as many multiply-adds per output pixel.  A separable one factors it —
a *depthwise* k×k convolution that filters every channel on its own (m filters each, the
depth multiplier), then a *pointwise* 1×1 convolution that mixes the c·m channels into f:
k²·c·m + c·m·f weights, a fraction ≈ 1/f + 1/k² of the plain one's for m = 1.

This example counts both (parameters from the layers themselves, against the formulas) for
Xception-like sizes, draws the comparison, and checks that SeparableConv2D *is* a
DepthwiseConv2D followed by a 1×1 Conv2D: the same weights give the same outputs and the
same gradients.
"""
import numpy as np

from minicnn import layers
from minicnn.example_support import Figures, check, example_main

KERNEL = 3
# (height = width, in channels, out channels): Xception's entry flow, middle flow, exit flow.
SIZES = [(147, 64, 128), (74, 128, 256), (19, 728, 728), (10, 1024, 1536)]


def counts(size, c, f, k=KERNEL, m=1):
    """(plain params, separable params, plain multiply-adds, separable multiply-adds) for a
    'same' convolution on a size×size input, from the built layers (checked against the formulas)."""
    plain = layers.Conv2D(f, k, padding="same")
    separable = layers.SeparableConv2D(f, k, padding="same", depth_multiplier=m)
    for layer in (plain, separable):
        layer.build((None, size, size, c))
    check(plain.count_params() == k * k * c * f + f, "plain conv parameters: k²·c·f + f")
    check(separable.count_params() == k * k * c * m + c * m * f + f, "separable parameters: k²·c·m + c·m·f + f")
    pixels = size * size
    return (plain.count_params(), separable.count_params(), pixels * k * k * c * f,
            pixels * (k * k * c * m + c * m * f))


def check_equal_to_depthwise_then_pointwise(rng, quick):
    """SeparableConv2D's output and gradients equal DepthwiseConv2D + 1×1 Conv2D's on the
    same weights (float64)."""
    x = rng.standard_normal((2, 9, 9, 6) if quick else (4, 19, 19, 32))
    f, m = 8, 2
    separable = layers.SeparableConv2D(f, KERNEL, strides=2, padding="same", depth_multiplier=m,
                                       bias_initializer="glorot_uniform", dtype="float64")
    depthwise = layers.DepthwiseConv2D(KERNEL, strides=2, padding="same", depth_multiplier=m, use_bias=False,
                                       dtype="float64")
    pointwise = layers.Conv2D(f, 1, dtype="float64")
    y = separable.forward(x)
    W_d, W_p, b = separable.get_weights()
    depthwise.build((None, *x.shape[1:]))
    depthwise.set_weights([W_d])
    d = depthwise.forward(x)
    pointwise.build((None, *d.shape[1:]))
    pointwise.set_weights([W_p, b])
    y_pair = pointwise.forward(d)
    dy = rng.standard_normal(y.shape)
    dx = separable.backward(dy)
    dx_pair = depthwise.backward(pointwise.backward(dy))
    differences = {"output": np.abs(y - y_pair).max(), "∂L/∂x": np.abs(dx - dx_pair).max(),
                   "∂L/∂depthwise": np.abs(separable.grads["depthwise_kernel"] - depthwise.grads["kernel"]).max(),
                   "∂L/∂pointwise": np.abs(separable.grads["pointwise_kernel"] - pointwise.grads["kernel"]).max()}
    for name, difference in differences.items():
        print(f"  SeparableConv2D vs DepthwiseConv2D + Conv2D(1×1), {name}: max |difference| {difference:.1e}")
        check(difference < 1e-12, f"separable == depthwise + pointwise ({name})")


def main(quick=False, out=None):
    import matplotlib.pyplot as plt
    figures = Figures(out or "out/xception_blocks")
    rows = []
    print(f"{KERNEL}×{KERNEL} 'same' convolutions at Xception's sizes (multiply-adds per image):")
    for size, c, f in SIZES:
        plain_p, sep_p, plain_f, sep_f = counts(size, c, f)
        rows.append((f"{size}²×{c}→{f}", plain_p, sep_p, plain_f, sep_f))
        print(f"  {size:3d}×{size:<3d} {c:4d} → {f:4d}: params {plain_p:>10,} vs {sep_p:>9,} "
              f"({plain_p / sep_p:4.1f}×), multiply-adds {plain_f:>14,} vs {sep_f:>13,} ({plain_f / sep_f:4.1f}×)")
        check(abs(sep_f / plain_f - (1 / f + 1 / KERNEL ** 2)) < 1e-12, "the ratio is 1/f + 1/k²")
    check_equal_to_depthwise_then_pointwise(np.random.default_rng(0), quick)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    positions = np.arange(len(rows))
    for ax, (plain_i, sep_i, title) in zip(axes, [(1, 2, "parameters"), (3, 4, "multiply-adds per image")]):
        ax.bar(positions - 0.2, [r[plain_i] for r in rows], 0.4, label="Conv2D 3×3")
        ax.bar(positions + 0.2, [r[sep_i] for r in rows], 0.4, label="SeparableConv2D 3×3")
        ax.set_yscale("log")
        ax.set_xticks(positions, [r[0] for r in rows], fontsize=8)
        ax.set_title(title)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2)
    fig.subplots_adjust(bottom=0.2)
    fig.suptitle("A separable convolution costs ≈ 1/f + 1/9 of a plain one")
    figures.save(fig, "separable_vs_plain")
    return {"rows": rows}


if __name__ == "__main__":
    example_main(main, __doc__)
