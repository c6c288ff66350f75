"""Offline stand-ins for the files the seed tutorials download, the same for Keras and minicnn.

The runner (``seed_cells.py``) replaces the download functions the cells reach —
``get_file`` in every loaded ``keras`` / ``tensorflow`` / ``minicnn`` module, and
``urllib.request.urlopen`` / ``urlretrieve`` — by ``serve``, which answers a URL by its
file name from a folder of generated stand-ins and raises ``FileNotFoundError`` (as
offline) for any other.  Hashes are not checked: the stand-ins are not the published files.

The stand-ins (made once per folder by ``make``, with Keras and Pillow):

* images: small JPEGs of two classes (bright or dark noise), in the trees the tutorials
  read — ``dogs-vs-cats_small/{train,validation,test}/{cats,dogs}/{cat,dog}.N.jpg`` (also
  zipped as ``dogs-vs-cats_small.zip``) and ``cats_and_dogs_filtered/{train,validation}``;
  any ``*.jpg`` URL is answered with one of them;
* the author's pre-trained ``.keras`` models: for a cell that defines ``build_model()`` and
  loads ``get_file(... 'model/NAME.keras')``, ``NAME.keras`` is what that cell's own
  ``build_model()`` returns, trained by Keras for one epoch on a few stand-in samples
  (architecture-equal, untrained weights), and ``history_NAME.pkl`` its history;
* ImageNet weights of InceptionV3 without the top: Keras's InceptionV3 with random
  weights, saved in the legacy ``.h5`` layout (weights by layer name) that both Keras's
  and minicnn's loaders read from that file name.

VGG16's ImageNet files are left out: without the top (58 MB of random weights) they
would reach one cell, whose gradient ascent runs TensorFlow's ``GradientTape`` on the
model — no import change makes that run on minicnn, and on Keras it takes minutes; with
the top they are 550 MB.  The cells that need a VGG16 fine-tuned by the author
(``./model/cats_and_dogs_small_3.keras``, a local file) or ``conv_base`` (defined by a
line the tutorial's text mangles) stay out of reach too.
"""
from __future__ import annotations

import ast
import io
import os
import pickle
import shutil
import urllib.error
from pathlib import Path

import numpy as np

IMAGE_SIZE = 48
PER_CLASS = 4
INCEPTION_NOTOP = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGE_ZIP = "dogs-vs-cats_small.zip"


def file_name(url) -> str:
    """The file name a URL or path ends in (its query dropped)."""
    return os.path.basename(str(url).split("?")[0])


def serve(folder: Path, served=None):
    """``(get_file, urlopen, urlretrieve)`` answering from ``folder``; the name of each
    file served is appended to ``served``."""
    served = [] if served is None else served

    def local(url):
        name = file_name(url)
        path = folder / name
        if not path.is_file() and name.endswith(".jpg"):
            path = next(folder.glob("dogs-vs-cats_small/test/cats/*.jpg"))
        if not path.is_file():
            raise FileNotFoundError(f"offline: no stand-in for {url}")
        served.append(path.name)
        return path

    def get_file(fname=None, origin=None, *args, **kwargs):
        return str(local(origin or fname))

    def urlopen(url, *args, **kwargs):
        try:
            return io.BytesIO(local(getattr(url, "full_url", url)).read_bytes())
        except FileNotFoundError as exc:
            raise urllib.error.URLError(str(exc)) from None

    def urlretrieve(url, filename=None, *args, **kwargs):
        target = filename or file_name(url)
        shutil.copyfile(local(url), target)
        return target, None

    return get_file, urlopen, urlretrieve


def install(folder: Path, served=None):
    """Route every loaded module's ``get_file`` and urllib's downloads to ``serve(folder, served)``."""
    import sys
    import urllib.request
    get_file, urlopen, urlretrieve = serve(folder, served)
    originals = set()
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("keras", "tensorflow", "minicnn") and module is not None:
            original = getattr(module, "__dict__", {}).get("get_file")
            if callable(original):
                originals.add(original)
    for name, module in list(sys.modules.items()):
        if module is not None and getattr(module, "__dict__", {}).get("get_file") in originals:
            module.get_file = get_file
    urllib.request.urlopen, urllib.request.urlretrieve = urlopen, urlretrieve


# -- making them ----------------------------------------------------------------------

def _images(root: Path, splits, seed):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for s, split in enumerate(splits):
        for label, (folder, stem) in enumerate((("cats", "cat"), ("dogs", "dog"))):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
            # 952 is among the names so that a cell opening cat.952.jpg finds it.
            for k in range(PER_CLASS):
                pixels = rng.integers(0, 128, (IMAGE_SIZE, IMAGE_SIZE, 3)) + 127 * label
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / folder / f"{stem}.{950 + 10 * s + k}.jpg")


def built_model_files(code) -> list:
    """``[NAME.keras, history_NAME.pkl]`` when ``code`` defines ``build_model`` and loads
    ``model/NAME.keras``, else []."""
    tree = ast.parse(code)
    if not any(isinstance(n, ast.FunctionDef) and n.name == "build_model" for n in tree.body):
        return []
    names = [file_name(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and
             isinstance(n.value, str) and n.value.startswith("model/") and n.value.endswith(".keras")]
    return [names[0], f"history_{Path(names[0]).stem}.pkl"] if names else []


def stand_in_names(seed_text) -> set:
    """The names of the stand-ins ``make`` provides that the tutorial's code spells out."""
    import seed_cells
    made = {IMAGE_ZIP, INCEPTION_NOTOP, *(parts[0] for parts in seed_cells.PROVIDED.values())}
    named = set()
    for code in seed_cells.cells(seed_text):
        made.update(built_model_files(code))
        named |= seed_cells.provided_read(code)
        named |= {file_name(n.value) for n in ast.walk(ast.parse(code))
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return named & made


def _built_models(seed_text, folder: Path):
    """``NAME.keras`` and ``history_NAME.pkl`` from each cell that defines ``build_model``
    and loads ``model/NAME.keras``."""
    import seed_cells
    cwd = os.getcwd()
    os.chdir(folder)                          # the cells and builders read and write relative paths
    try:
        _build_each(seed_cells.cells(seed_text), folder)
    finally:
        os.chdir(cwd)


def _build_each(codes, folder: Path):
    import keras

    import seed_cells
    namespace = {"__name__": "__stand_in__"}
    for code in codes:
        code = seed_cells.shortened(code)
        tree = ast.parse(code)
        if not any(isinstance(n, (ast.Import, ast.ImportFrom)) or
                   (isinstance(n, ast.FunctionDef) and n.name == "build_model") for n in tree.body):
            continue                          # only what the builders need: imports and the builders
        try:
            exec(compile(code, "<seed cell>", "exec"), namespace)
        except Exception:                     # the load of the missing file, or a later line
            pass
        names = built_model_files(code)
        if not names or (folder / names[0]).exists():
            continue
        for key in ("train_images", "train_labels"):          # a few samples are enough to build and fit
            if key in namespace:
                namespace[key] = namespace[key][:64]
        built = namespace["build_model"]()
        model, history = built if isinstance(built, tuple) else (built, None)
        model.save(folder / names[0])
        if history is not None:
            with open(folder / names[1], "wb") as f:
                pickle.dump(history, f)
        keras.backend.clear_session()


def _inception_notop(folder: Path):
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format
    model = keras.applications.InceptionV3(include_top=False, weights=None)
    with h5py.File(folder / INCEPTION_NOTOP, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    keras.backend.clear_session()


def make(folder: Path):
    """Generate every stand-in into ``folder`` (skipped when already made)."""
    folder = Path(folder)
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    _images(folder / "dogs-vs-cats_small", ("train", "validation", "test"), seed=0)
    _images(folder / "cats_and_dogs_filtered", ("train", "validation"), seed=1)
    shutil.make_archive(str(folder / Path(IMAGE_ZIP).stem), "zip", folder, Path(IMAGE_ZIP).stem)
    import sys

    import tensorflow.keras.utils  # noqa: F401  (loaded, so that install reaches its get_file)

    import seed_cells
    sys.modules.update(seed_cells.stand_in_modules())
    seed_cells.swap_mnist("keras")
    install(folder)
    for path in seed_cells.seed_files():
        if "def build_model" in path.read_text():
            _built_models(path.read_text(), folder)
    _inception_notop(folder)
    (folder / "done").write_text("")
    return folder
