"""The MNIST convnet (seed tutorial 4): 32/64/64 'valid' convs (93,322 params), RMSprop,
batch 64; the intermediate outputs layer by layer, filter patterns, Grad-CAM on test digits."""
from minicnn import architectures, optimizers, seeding
from minicnn.example_support import Figures, check, example_main, mnist_split, prepare
from minicnn.viz import attribution, maximize, plots


def main(quick=False, out=None):
    figures = Figures(out or "out/mnist_convnet")
    x_train, y_train, x_test, y_test, description = mnist_split(quick)
    print("data:", description)
    (x_train, y_train), (x_test, y_test) = prepare(x_train, y_train), prepare(x_test, y_test)
    seeding.set_seed(0)
    model = architectures.mnist_convnet()
    check(model.count_params() == 93322, "parameter count")
    model.compile(optimizers.RMSprop(), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2 if quick else 5, verbose=2)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(f"test accuracy {accuracy:.4f}")
    check(accuracy > 0.5, "accuracy above chance")
    names = [l.name for l in model.layers[:5]]
    for name, act in zip(names, model.intermediate_outputs(x_test[:1], names)):
        figures.save(plots.plot_feature_maps(act, images_per_row=16, title=f"{name} {act.shape[1:]}"), f"out_{name}")
    images, _ = maximize.maximize(model, "conv2d_2", list(range(16)), steps=20 if quick else 40,
                                  modifiers=[maximize.Jitter(1)], seed=0)
    figures.save(plots.plot_image_grid([maximize.deprocess_image(i) for i in images], suptitle="conv2d_2 patterns"),
                 "filter_patterns")
    predicted = model.predict(x_test[:8]).argmax(1)
    cams = attribution.grad_cam(model, x_test[:8], predicted)
    figures.save(plots.plot_image_grid([attribution.overlay(x_test[i], cams[i]) for i in range(8)],
                                       titles=[f"pred {p}" for p in predicted]), "grad_cam")
    return {"accuracy": accuracy}


if __name__ == "__main__":
    example_main(main, __doc__)
