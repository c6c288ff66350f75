"""The MNIST convnet (seed tutorial 4): 32/64/64 'valid' convs (93,322 params), RMSprop,
batch 64; the intermediate outputs layer by layer, filter patterns, Grad-CAM on test digits."""
from minicnn import architectures, optimizers
from minicnn.example_support import Figures, example_main, train_mnist_model
from minicnn.viz import attribution, maximize, plots


def main(quick=False, out=None):
    figures = Figures(out or "out/mnist_convnet")
    model, _, x_test, y_test, accuracy = train_mnist_model(architectures.mnist_convnet, 93322, optimizers.RMSprop(),
                                                           64, 2 if quick else 5, quick)
    names = [layer.name for layer in model.layers[:5]]
    for name, act in zip(names, model.intermediate_outputs(x_test[:1], names)):
        figures.save(plots.plot_feature_maps(act, images_per_row=16, title=f"{name} {act.shape[1:]}"), f"out_{name}")
    last_conv = [layer.name for layer in model.layers if "conv2d" in layer.name][-1]
    images, _ = maximize.maximize(model, last_conv, list(range(16)), steps=20 if quick else 40,
                                  modifiers=[maximize.Jitter(1)], seed=0)
    figures.save(plots.plot_image_grid([maximize.deprocess_image(i) for i in images], suptitle=f"{last_conv} patterns"),
                 "filter_patterns")
    predicted = model.predict(x_test[:8]).argmax(1)
    cams = attribution.grad_cam(model, x_test[:8], predicted)
    figures.save(plots.plot_image_grid([attribution.overlay(x_test[i], cams[i]) for i in range(8)],
                                       titles=[f"pred {p}" for p in predicted]), "grad_cam")
    return {"accuracy": accuracy}


if __name__ == "__main__":
    example_main(main, __doc__)
