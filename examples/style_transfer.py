"""Style transfer with Gram matrices, and VGG16 filter patterns / Grad-CAM (seed tutorial 7).

Pretrained VGG weights cannot be downloaded here, so by default the network is one
trained in minicnn: the convolutional layers of the MNIST convnet, trained on digits,
reused on a larger grey photo (conv layers accept any size).  Content: Grace Hopper's
portrait (shipped with matplotlib); style: a photo of a striped texture made from the
same portrait's edges.  With ``--vgg16 PATH`` (a Keras VGG16 ``notop`` weights file),
the same transfer runs on VGG16, and its filter patterns and Grad-CAM are drawn.
"""
import numpy as np

from minicnn import architectures, layers, optimizers, seeding
from minicnn.example_support import Figures, check, example_main, mnist_split, photo_grayscale, prepare
from minicnn import Sequential
from minicnn.viz import maximize, plots, style


def conv_feature_extractor(quick, size):
    """The conv layers of a minicnn-trained MNIST convnet, on (size, size, 1) input."""
    x_train, y_train, *_ = mnist_split(True)
    x_train, y_train = prepare(x_train, y_train)
    seeding.set_seed(0)
    trained = architectures.mnist_convnet()
    trained.compile(optimizers.RMSprop(), "sparse_categorical_crossentropy")
    trained.fit(x_train, y_train, batch_size=64, epochs=1 if quick else 3, verbose=0)
    features = Sequential([layers.Input((size, size, 1)), layers.Conv2D(32, 3, activation="relu"),
                           layers.MaxPooling2D(2), layers.Conv2D(64, 3, activation="relu")], name="features")
    features.set_weights(trained.get_weights()[:4])
    return features


def main(quick=False, out=None, vgg16=None):
    figures = Figures(out or "out/style_transfer")
    if vgg16 is None:
        print("No VGG16 weights given (--vgg16 PATH): using a network trained in minicnn.")
        size = 48 if quick else 96
        model = conv_feature_extractor(quick, size)
        content = photo_grayscale((size, size))[None, :, :, None]
        stripes = (np.sin(np.arange(size) / 2.0)[None, :] * np.ones((size, 1)) > 0).astype(np.float32)
        style_image = (0.5 * stripes + 0.5 * np.roll(content[0, :, :, 0], 7, axis=1))[None, :, :, None]
        first, second = (layer.name for layer in model.layers if "conv2d" in layer.name)
        content_layer, style_layers = second, [first, second]
    else:
        from minicnn.applications import VGG16
        model = VGG16(include_top=False, weights=vgg16, input_shape=(128, 128, 3))
        rgb = np.repeat(photo_grayscale((128, 128))[None, :, :, None], 3, axis=-1) * 255 - 120
        content, style_image = rgb, np.roll(rgb, 40, axis=2)[:, :, ::-1]
        content_layer, style_layers = "block5_conv2", ["block1_conv1", "block2_conv1", "block3_conv1"]
        images, _ = maximize.maximize(model, "block3_conv1", list(range(8)), steps=20, input_range=None,
                                      seed_input=np.zeros((128, 128, 3)), step_size=1.0)
        figures.save(plots.plot_image_grid([maximize.deprocess_image(i) for i in images], cmap=None),
                     "vgg16_filter_patterns")
    image, losses = style.style_transfer(model, content, style_image, content_layer, style_layers,
                                         steps=30 if quick else 200, content_weight=1e-3)
    print(f"style transfer loss: {losses[0]:.4g} → {losses[-1]:.4g}")
    check(losses[-1] < losses[0], "the style-transfer loss should fall")
    figures.save(plots.plot_image_grid([content[0], style_image[0], np.clip(image[0], 0, None)],
                                       titles=["content", "style", "result"], cols=3), "style_transfer")
    return {"losses": losses}


if __name__ == "__main__":
    example_main(main, __doc__, vgg16="Keras VGG16 notop weights file")
