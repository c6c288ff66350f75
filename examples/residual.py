"""A residual block: the gradient that reaches the skip connection from each branch.

``y = x + F(x)``: the Add sends ∂L/∂y to both of its inputs unchanged, so the block's input
receives ∂L/∂y through the skip connection plus J_Fᵀ·∂L/∂y through the branch F, and the
model's backward adds the two (docs/backprop.md, "Backprop through a graph").  This example
computes each share with the layers' own backward and checks their sum against the model's.
"""
import numpy as np

import minicnn as mc
from minicnn import layers
from minicnn.example_support import Figures, check, example_main


def build(channels=8):
    x = mc.Input((12, 12, channels), name="x")
    h = layers.Conv2D(channels, 3, padding="same", activation="relu", name="branch_conv1")(x)
    h = layers.Conv2D(channels, 3, padding="same", name="branch_conv2")(h)
    y = layers.Add(name="skip")([x, h])
    out = layers.Dense(4, name="head")(layers.Flatten(name="flatten")(layers.Activation("relu", name="relu")(y)))
    return mc.Model(x, out, name="residual_block")


def main(quick=False, out=None):
    mc.set_seed(0)
    mc.set_floatx("float64")
    model = build()
    model.summary()
    x = np.random.default_rng(0).standard_normal((2, 12, 12, 8))
    with mc.use_kernels("reference"):          # every layer by itself: the skip's sum is formed
        G = np.random.default_rng(1).standard_normal(model.forward(x).shape)  # L = Σ y·G
        total = model.backward(G)                                             # ∂L/∂x, both paths
        dy_block = model.backward(G, stop="skip")                             # ∂L/∂(block output)
        through_skip = dy_block                                               # Add: unchanged
        conv1, conv2 = model.get_layer("branch_conv1"), model.get_layer("branch_conv2")
        through_branch = conv1.backward(conv2.backward(dy_block))             # J_Fᵀ · ∂L/∂y
    print(f"|∂L/∂x| through the skip connection: {np.linalg.norm(through_skip):.4f}")
    print(f"|∂L/∂x| through the branch F:        {np.linalg.norm(through_branch):.4f}")
    print(f"|sum|:                               {np.linalg.norm(through_skip + through_branch):.4f}")
    print(f"|∂L/∂x| from model.backward:         {np.linalg.norm(total):.4f}")
    error = np.abs(through_skip + through_branch - total).max()
    check(error < 1e-12, f"the model's ∂L/∂x is the sum of the two shares (max difference {error:.1e})")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), constrained_layout=True)
    shares = [("through the skip connection", through_skip), ("through the branch F", through_branch),
              ("their sum = model.backward", total)]
    top = max(np.abs(s[0]).sum(axis=-1).max() for _, s in shares)
    for ax, (title, share) in zip(axes, shares):
        image = ax.imshow(np.abs(share[0]).sum(axis=-1), cmap="magma", vmin=0, vmax=top)
        ax.set_title(f"|∂L/∂x| {title}", fontsize=9)
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="Σ over channels of |∂L/∂x|, first image")
    Figures(out or "out/residual").save(fig, "skip_and_branch_gradients")
    mc.set_floatx("float32")
    return error


if __name__ == "__main__":
    example_main(main, __doc__)
