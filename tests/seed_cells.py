"""The Keras code cells of the seed tutorials (``../shared/seeds/``), read at test time.

The tutorials are plain text: prose, program output and code, undelimited.  A *cell* is
a maximal run of lines that parses as Python (IPython ``%`` / ``!`` lines dropped); a
*Keras cell* is one that builds, trains, saves, loads or inspects a model.  ``to_minicnn``
changes only the import lines, as a user would: ``keras`` / ``tensorflow.keras`` ->
``minicnn``.  Files the cells download (data, pre-trained models, ImageNet weights) are
served offline by ``seed_stand_ins``, the same stand-ins for Keras and for minicnn.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import seed_stand_ins


def _find_seeds() -> Path:
    """``$MINICNN_SEEDS``, else the first ``shared/seeds`` beside the repository or above it."""
    if os.environ.get("MINICNN_SEEDS"):
        return Path(os.environ["MINICNN_SEEDS"])
    for folder in Path(__file__).resolve().parents[1:]:
        if (folder / "shared" / "seeds").is_dir():
            return folder / "shared" / "seeds"
    return Path(__file__).resolve().parents[2] / "shared" / "seeds"


SEEDS = _find_seeds()
KERAS_WORDS = re.compile(r"\b(Sequential|Model\(|\.compile\(|\.fit\(|\.summary\(|\.save\(|load_model|\.predict\(|"
                         r"\.evaluate\(|layers\.|VGG16|InceptionV3|\.get_layer\(|\.layers\b|Conv2D|Dense\()")


def _parses(lines) -> bool:
    try:
        ast.parse("\n".join(lines))
        return True
    except SyntaxError:
        return False


def _code_line(line) -> str:
    return "" if line.lstrip().startswith(("%", "!")) else line


def _prose(statement) -> bool:
    """Prose or program output that happens to parse: a bare name (a heading, a rule of
    underscores) or ``Word: "text"`` (an annotated name, e.g. ``Model: "sequential"``)."""
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Name)) or \
        (isinstance(statement, ast.AnnAssign) and isinstance(statement.annotation, ast.Constant))


def cells(text) -> list[str]:
    """Maximal runs of lines that parse as Python, without prose-like statements at either end."""
    lines = [_code_line(line.rstrip()) for line in text.splitlines()]
    out, i = [], 0
    while i < len(lines):
        if not lines[i].strip() or lines[i][0] in " \t":
            i += 1
            continue
        best = None
        for j in range(i + 1, min(len(lines), i + 200) + 1):
            if _parses(lines[i:j]):
                best = j
        if best is None:
            i += 1
            continue
        body = ast.parse("\n".join(lines[i:best])).body
        real = [k for k, statement in enumerate(body) if not _prose(statement)]
        if not real:
            i = best
            continue
        first, last = body[real[0]], body[real[-1]]
        out.append("\n".join(lines[i + first.lineno - 1:i + last.end_lineno]).strip())
        i += last.end_lineno
    return out


def keras_cells(path) -> list[str]:
    return [c for c in cells(Path(path).read_text()) if KERAS_WORDS.search(c)]


_IMPORTS = [(r"^(\s*)from tensorflow import keras\b", r"\1import minicnn as keras"),
            (r"^(\s*)import tensorflow\.keras as (\w+)", r"\1import minicnn as \2"),
            (r"^(\s*)from tensorflow\.keras(\.|\s)", r"\1from minicnn\2"),
            (r"^(\s*)from keras(\.|\s)", r"\1from minicnn\2"),
            (r"^(\s*)import keras\b", r"\1import minicnn as keras")]


def to_minicnn(code) -> str:
    """The import lines change (and ``tf.keras.`` becomes ``minicnn.``)."""
    for pattern, replacement in _IMPORTS:
        code = re.sub(pattern, replacement, code, flags=re.MULTILINE)
    return re.sub(*_TF_KERAS, code)


def seed_files() -> list[Path]:
    return sorted(SEEDS.glob("[0-9][0-9][0-9]_*.txt"))


# -- running a tutorial's cells -------------------------------------------------------

_SHORTER = [(r"\bepochs\s*=\s*\d+", "epochs=1"), (r"\bsteps_per_epoch\s*=\s*\d+", "steps_per_epoch=2"),
            (r"\bvalidation_steps\s*=\s*\d+", "validation_steps=1")]
# Keras reached through TensorFlow's namespace (``tf.keras.datasets.mnist``) is Keras too:
# for minicnn it becomes minicnn (TensorFlow's own API, ``tf.GradientTape``, stays).
_TF_KERAS = (r"\btf\.keras\.", "minicnn.")


def shortened(code) -> str:
    """Epochs cut to one (and steps per epoch to two): the same code, less training."""
    for pattern, replacement in _SHORTER:
        code = re.sub(pattern, replacement, code)
    return code


def run_cells(codes, namespace) -> list:
    """Run each cell in ``namespace`` in order; [(cell, None or 'ErrorType: message')]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    results = []
    for code in codes:
        try:
            exec(compile(code, "<seed cell>", "exec"), namespace)
            results.append((code, None))
        except Exception as exc:                      # a failing cell is a result to report
            results.append((code, f"{type(exc).__name__}: {str(exc)[:300]}"))
        finally:
            plt.close("all")
    return results


def stand_in_modules() -> dict:
    """Offline stand-ins for the non-Keras libraries the tutorials import that are not
    installed here: scikit-learn's two functions they use (on minicnn's data) and
    ipywidgets' ``interact`` (a no-op outside a notebook)."""
    import types

    import numpy as np

    from minicnn.datasets import fetch_olivetti_faces

    def train_test_split(*arrays, test_size=0.25, random_state=None, shuffle=True, stratify=None):
        n = len(arrays[0])
        order = np.random.RandomState(random_state).permutation(n) if shuffle else np.arange(n)
        n_test = int(np.ceil(test_size * n)) if isinstance(test_size, float) else int(test_size)
        test, train = order[:n_test], order[n_test:]
        return [part for a in arrays for part in (np.asarray(a)[train], np.asarray(a)[test])]

    ipywidgets = types.ModuleType("ipywidgets")
    ipywidgets.interact = lambda function, **choices: None       # a notebook widget: nothing to show here

    sklearn = types.ModuleType("sklearn")
    sklearn.model_selection = types.ModuleType("sklearn.model_selection")
    sklearn.model_selection.train_test_split = train_test_split
    sklearn.datasets = types.ModuleType("sklearn.datasets")
    sklearn.datasets.fetch_olivetti_faces = fetch_olivetti_faces
    return {"sklearn": sklearn, "sklearn.model_selection": sklearn.model_selection,
            "sklearn.datasets": sklearn.datasets, "ipywidgets": ipywidgets}


def swap_mnist(framework):
    """MNIST's training images are not available offline: ``mnist.load_data()`` returns
    Fashion-MNIST (the same shapes and dtypes), for Keras and minicnn alike."""
    from minicnn.datasets import fashion_mnist, mnist
    mnist.load_data = fashion_mnist.load_data
    if framework == "keras":
        import keras
        from keras.src.datasets import mnist as keras_mnist
        keras_mnist.load_data = keras.datasets.mnist.load_data = lambda path=None: fashion_mnist.load_data()


# The cats-vs-dogs tutorial (001) reads train_dir / validation_dir without defining them
# (its download cell is not in the text): the runner defines them as the stand-in trees.
PROVIDED = {"train_dir": ("cats_and_dogs_filtered", "train"),
            "validation_dir": ("cats_and_dogs_filtered", "validation")}


def provided_read(code) -> set:
    """The stand-in folders behind the ``PROVIDED`` names that ``code`` reads without
    assigning them itself."""
    names = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name) and node.id in PROVIDED]
    assigned = {node.id for node in names if isinstance(node.ctx, ast.Store)}
    return {PROVIDED[node.id][0] for node in names if node.id not in assigned}


def stand_in_files() -> Path:
    """``$SEED_STAND_INS`` (made there when missing), else a fresh temporary folder."""
    import tempfile
    folder = os.environ.get("SEED_STAND_INS") or tempfile.mkdtemp(prefix="seed-stand-ins-")
    return seed_stand_ins.make(Path(folder))


def main(argv):
    """``python seed_cells.py SEED_INDEX minicnn|keras OUT.json``: run one tutorial's cells
    in a fresh process (Keras's session-wide layer names start afresh), with the downloads
    served by ``seed_stand_ins``, and write [{"keras_cell": bool, "first_line": str,
    "error": None | str, "stand_ins": [names of the stand-in files it was served]}] for its cells."""
    import json
    import sys
    index, framework, out = int(argv[1]), argv[2], argv[3]
    path = seed_files()[index]
    sys.modules.update(stand_in_modules())
    namespace = {"__name__": "__seed__"}
    swap_mnist(framework)
    if framework == "minicnn":
        import minicnn
        import minicnn.applications  # noqa: F401  (loaded, so that the stand-ins reach its get_file)
        namespace["minicnn"] = minicnn
    else:
        import tensorflow.keras.utils  # noqa: F401  (the same, for TensorFlow's Keras namespace)
    files, served = stand_in_files(), []
    seed_stand_ins.install(files, served)
    namespace.update({name: str(files.joinpath(*parts)) for name, parts in PROVIDED.items()})
    keras_set = set(keras_cells(path))
    originals = cells(path.read_text())
    codes = [shortened(to_minicnn(c) if framework == "minicnn" else c) for c in originals]
    report = []
    for original, code in zip(originals, codes):
        before = len(served)
        [(_, error)] = run_cells([code], namespace)
        report.append({"keras_cell": original in keras_set, "first_line": original.splitlines()[0],
                       "error": error, "stand_ins": sorted(set(served[before:]) | provided_read(code))})
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    import sys
    main(sys.argv)
