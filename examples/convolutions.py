"""Convolutions and the MNIST CNN (seed tutorial 3).

Hand-made 3×3 filters (Sobel-like vertical and horizontal edges, an 8-neighbour edge
detector) applied with minicnn's own convolution to a real photo (Grace Hopper's
portrait, shipped with matplotlib); the output sizes for 'valid'/'same' and stride 1/2;
then the 32/64 'same' CNN (220,234 params), its confusion matrix and misclassified digits.
"""
import numpy as np

from minicnn import architectures, layers, optimizers
from minicnn.example_support import Figures, check, example_main, photo_grayscale, train_mnist_model
from minicnn.viz import plots

FILTERS = {
    "vertical edges": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "horizontal edges": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "8-neighbour edges": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
}


def main(quick=False, out=None):
    figures = Figures(out or "out/convolutions")
    photo = photo_grayscale((128, 96) if quick else None)[None, :, :, None]
    conv = layers.Conv2D(len(FILTERS), 3, use_bias=False, name="hand_made")
    conv.build((None, *photo.shape[1:]))
    conv.set_weights([np.stack([np.array(k, np.float32) for k in FILTERS.values()], -1)[:, :, None, :]])
    edges = conv.forward(photo)[0]
    check(abs(edges[..., 0]).max() > 0.5, "edge responses")
    figures.save(plots.plot_image_grid([photo[0], *np.moveaxis(np.abs(edges), -1, 0)],
                                       titles=["photo", *FILTERS], cols=4), "hand_made_filters")
    print("output sizes (h × w) of a 3×3 conv:")
    for padding in ("valid", "same"):
        for stride in (1, 2):
            shape = layers.Conv2D(1, 3, strides=stride, padding=padding).compute_output_shape((None, *photo.shape[1:]))
            expected = (-(-photo.shape[1] // stride) if padding == "same" else (photo.shape[1] - 3) // stride + 1)
            check(shape[1] == expected, "output size formula")
            print(f"  {padding:5s} stride {stride}: {photo.shape[1]}×{photo.shape[2]} → {shape[1]}×{shape[2]}")
    model, _, x_test, y_test, accuracy = train_mnist_model(architectures.mnist_cnn, 220234, optimizers.Adam(), 128,
                                                           2 if quick else 10, quick)
    predicted = model.predict(x_test).argmax(1)
    figures.save(plots.plot_confusion_matrix(plots.confusion_matrix(y_test, predicted, 10)), "confusion_matrix")
    figures.save(plots.plot_misclassified(x_test, y_test, predicted), "misclassified")
    return {"accuracy": accuracy}


if __name__ == "__main__":
    example_main(main, __doc__)
