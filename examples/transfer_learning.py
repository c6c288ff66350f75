"""Transfer learning with a frozen convolutional base, and a look inside it (seed tutorial 6's
VGG16 recipe).

The tutorial adds VGG16's convolutional base, frozen, as the first layer of a ``Sequential``
and trains a new dense head on top; its Grad-CAM then targets ``block5_conv3``, a layer
inside that base.  ImageNet weights cannot be downloaded here, so the base is a small
VGG-style one trained in minicnn on the digits 0–4, then frozen under a new head that
learns the digits 5–9.  Every look inside names a layer of the nested base, as the
tutorial would with VGG16 (``layer="block5_conv3"``): Grad-CAM, the filter patterns of an
inner conv (activation maximization), and its feature maps through
``Model(model.inputs, model.tensor_of(name))``.
"""
import numpy as np

from minicnn import Input, Model, Sequential, layers, seeding
from minicnn.example_support import Figures, check, example_main, mnist_split, prepare
from minicnn.viz import attribution, maximize, plots


def vgg_style_base():
    """Two VGG blocks with VGG's layer names: the stand-in for ``VGG16(include_top=False)``."""
    x = Input((28, 28, 1))
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="block1_conv1")(x)
    h = layers.MaxPooling2D(2, name="block1_pool")(h)
    h = layers.Conv2D(32, 3, padding="same", activation="relu", name="block2_conv1")(h)
    h = layers.MaxPooling2D(2, name="block2_pool")(h)
    return Model(x, h, name="conv_base")


def main(quick=False, out=None):
    figures = Figures(out or "out/transfer_learning")
    x_train, y_train, x_test, y_test, description = mnist_split(quick)
    print("data:", description, "— the base learns digits 0–4, the new head digits 5–9")
    (x_train, y_train), (x_test, y_test) = prepare(x_train, y_train), prepare(x_test, y_test)
    first, second = y_train < 5, y_train >= 5
    epochs = 2 if quick else 5
    seeding.set_seed(0)
    conv_base = vgg_style_base()
    pretrain = Sequential([conv_base, layers.Flatten(), layers.Dense(5, activation="softmax")])
    pretrain.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    pretrain.fit(x_train[first], y_train[first], batch_size=64, epochs=epochs, verbose=2)

    conv_base.trainable = False                   # the tutorial's recipe, as it writes it
    model = Sequential()
    model.add(conv_base)
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(5, activation="softmax"))
    model.summary()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    frozen = conv_base.get_weights()
    model.fit(x_train[second], y_train[second] - 5, batch_size=64, epochs=epochs, verbose=2)
    check(all(np.array_equal(a, b) for a, b in zip(frozen, conv_base.get_weights())), "the frozen base is unchanged")
    tests = y_test >= 5
    accuracy = model.evaluate(x_test[tests], y_test[tests] - 5, verbose=0)[1]
    print(f"digits 5–9 on the frozen base: test accuracy {accuracy:.4f}")
    check(accuracy > 0.5, "accuracy above chance (0.2)")

    x = x_test[tests][:8]
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    cams = attribution.grad_cam(model, x, predicted, layer="block2_conv1")    # a layer inside the nested base
    inner = model.get_layer("conv_base").get_layer("block2_conv1")           # Keras's way to name it: the same
    check(np.array_equal(cams, attribution.grad_cam(model, x, predicted, layer=inner)), "the same layer twice")
    with_evidence = int((cams.max(axis=(1, 2)) > 0).sum())      # an all-negative Σ_k α_k A_k leaves no map
    print(f"Grad-CAM at block2_conv1: {with_evidence} of {len(cams)} maps show evidence for the predicted digit")
    check(with_evidence >= len(cams) // 2, "most Grad-CAM maps show evidence")
    figures.save(plots.plot_image_grid([attribution.overlay(x[i], cams[i]) for i in range(len(x))],
                                       titles=[f"pred {p + 5}" for p in predicted]), "grad_cam_block2_conv1")
    patterns, scores = maximize.maximize(model, "block2_conv1", list(range(8)), steps=20, step_size=0.05, seed=0)
    print(f"filter patterns of block2_conv1: mean activation {scores[0].mean():.3f} → {scores[-1].mean():.3f}")
    check((scores[-1] > scores[0]).all(), "activation maximization raises every filter's activation")
    figures.save(plots.plot_image_grid([maximize.deprocess_image(p) for p in patterns], titles=list(range(8))),
                 "filter_patterns_block2_conv1")
    extractor = Model(model.inputs, [model.tensor_of("block1_conv1"), model.tensor_of("block2_conv1")])
    for name, maps in zip(("block1_conv1", "block2_conv1"), extractor.predict(x[:1], verbose=0)):
        figures.save(plots.plot_feature_maps(maps, title=f"{name} (inside conv_base)", image=x[0]),
                     f"feature_maps_{name}")
    return {"accuracy": accuracy}


if __name__ == "__main__":
    example_main(main, __doc__)
