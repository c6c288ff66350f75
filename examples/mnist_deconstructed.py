"""MNIST "deconstructed" (seed tutorial 2).

The 24/48/64 'same' CNN with Dense 128 and Dropout 0.25, Adam, batch 256 (113,514
params); the feature activations at the three conv layers for a test digit; filter
patterns by activation maximization with jitter for chosen filters of each conv layer;
and the class visualizations for the digits 0–9 (the softmax swapped for linear).
"""
import numpy as np

from minicnn import Model, architectures, optimizers
from minicnn.example_support import Figures, check, example_main, train_mnist_model
from minicnn.viz import maximize, plots


def main(quick=False, out=None):
    figures = Figures(out or "out/mnist_deconstructed")
    model, history, x_test, y_test, accuracy = train_mnist_model(
        architectures.mnist_deconstructed, 113514, optimizers.Adam(), 256, 3 if quick else 10, quick)
    figures.save(plots.plot_history(history), "training_curves")
    layer_outputs = [layer.output for layer in model.layers if "conv2d" in layer.name]     # the tutorial's recipe
    activation_model = Model(inputs=model.input, outputs=layer_outputs)
    convs = [layer.name for layer in model.layers if "conv2d" in layer.name]
    for name, act in zip(convs, activation_model.predict(x_test[:1], verbose=0)):
        figures.save(plots.plot_feature_maps(act, images_per_row=12, title=f"{name} activations"), f"act_{name}")
    for name in convs:
        images, scores = maximize.maximize(model, name, list(range(8)), steps=20 if quick else 40,
                                           modifiers=[maximize.Jitter(1)], seed=0)
        figures.save(plots.plot_image_grid([maximize.deprocess_image(i) for i in images],
                                           suptitle=f"{name}: filter patterns 0–7"), f"patterns_{name}")
    images, _ = maximize.maximize(model, model.layers[-1].name, list(range(10)), steps=30 if quick else 80, logits=True,
                                  regularizers=[(1e-3, maximize.TotalVariation())], seed=0)
    model.forward(images)
    recognised = int((model.layers[-1].activation.logits.argmax(1) == np.arange(10)).sum())
    print(f"class visualizations recognised as their own class: {recognised}/10")
    check(recognised >= 8, "class visualizations should be classified as their class")
    figures.save(plots.plot_image_grid(images, titles=list(range(10)), cols=10,
                                       suptitle="class visualizations (softmax → linear)"), "class_visualizations")
    return {"accuracy": accuracy, "recognised": recognised}


if __name__ == "__main__":
    example_main(main, __doc__)
