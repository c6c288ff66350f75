"""Cats vs dogs from an image folder (seed tutorial 6).

The 3,453,121-param CNN with ImageDataGenerator augmentation (rotation 40, shifts 0.2,
shear 0.2, zoom 0.2, horizontal flip), RMSprop(1e-4), binary cross-entropy; training and
validation curves and predictions on validation images.  Runs on any folder laid out as
``train/{cats,dogs}`` and ``validation/{cats,dogs}`` (``--data DIR``).  Without one, the
quick run builds a small stand-in folder from the embedded Olivetti faces (people 0–19
as one class, 20–39 as the other), said plainly; the full run asks for the folder.
"""
import os

import numpy as np

from minicnn import architectures, optimizers, seeding
from minicnn.datasets import embedded
from minicnn.example_support import Figures, check, example_main
from minicnn.preprocessing import ImageDataGenerator
from minicnn.viz import plots


def make_standin_folder(root, per_class=24):
    """train/ and validation/ folders of 150×150 RGB JPEGs from the Olivetti faces."""
    from PIL import Image
    faces = embedded.load_olivetti()
    rng = np.random.default_rng(0)
    for split, offset in (("train", 0), ("validation", per_class)):
        for label, people in (("cats", range(0, 20)), ("dogs", range(20, 40))):
            folder = os.path.join(root, split, label)
            os.makedirs(folder, exist_ok=True)
            pool = [i for p in people for i in range(p * 10, p * 10 + 10)]
            for k, i in enumerate(rng.permutation(pool)[offset:offset + per_class]):
                img = Image.fromarray((faces.images[i] * 255).astype(np.uint8)).convert("RGB").resize((150, 150))
                img.save(os.path.join(folder, f"{k}.jpg"))
    return root


def main(quick=False, out=None, data=None):
    out = out or "out/cats_vs_dogs"
    figures = Figures(out)
    if data is None:
        if not quick:
            raise SystemExit("cats_vs_dogs: give --data DIR with train/{cats,dogs} and validation/{cats,dogs} "
                             "(e.g. the Kaggle Dogs vs Cats subset); --quick runs on a generated stand-in.")
        data = make_standin_folder(os.path.join(out, "standin_data"))
        print("data: a generated stand-in folder (Olivetti faces: people 0–19 vs 20–39), not cats and dogs")
    seeding.set_seed(0)
    model = architectures.cats_dogs_cnn()
    check(model.count_params() == 3453121, "parameter count")
    model.compile(optimizers.RMSprop(1e-4), "binary_crossentropy", metrics=["acc"])
    augment = ImageDataGenerator(rescale=1 / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                                 shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    train = augment.flow_from_directory(os.path.join(data, "train"), target_size=(150, 150), batch_size=16,
                                        class_mode="binary", seed=0)
    validation = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        os.path.join(data, "validation"), target_size=(150, 150), batch_size=16, class_mode="binary", shuffle=False)
    check(train.class_indices == {"cats": 0, "dogs": 1}, "class folders")
    history = model.fit(train, epochs=2 if quick else 30, verbose=2)
    xv, yv = validation[0]
    probs = model.predict(xv)[:, 0]
    accuracy = float(((probs > 0.5) == (yv[:, 0] > 0.5)).mean())
    print(f"validation accuracy on {len(yv)} images: {accuracy:.3f}")
    check(np.isfinite(history.history["loss"]).all(), "finite training loss")
    figures.save(plots.plot_history(history), "training_curves")
    figures.save(plots.plot_image_grid(xv[:8], titles=[f"p(dog)={p:.2f}" for p in probs[:8]], cmap=None),
                 "predictions")
    return {"accuracy": accuracy, "history": history.history}


if __name__ == "__main__":
    example_main(main, __doc__, data="folder with train/ and validation/ class sub-folders")
