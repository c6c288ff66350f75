"""Saving and loading minicnn models; reading Keras weight files.

``model.save(path)`` writes one zip file::

    config.json      architecture (layer classes and arguments), input shape,
                     compile settings (optimizer config and step count, loss, metrics)
    weights.npz      "<layer>/<param>" -> array
    optimizer.npz    "<layer>/<param>/<slot>" -> array

It is written to a temporary file in the same folder and renamed over the target
(``os.replace`` is atomic), so a crash never leaves a half-written model.
``load_model`` validates everything before returning a model: a truncated, foreign
or mismatched file raises a ``ValueError`` naming the file and the problem.

``load_keras_weights(model, path)`` reads Keras 3 ``.weights.h5``, ``.keras`` (a zip
holding ``model.weights.h5``) and legacy Keras 2 ``.h5`` files with h5py — no
TensorFlow — and assigns the weights layer by layer in order.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np

from . import layers as layers_module
from . import optimizers

FORMAT = "minicnn-model-1"


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def model_config(model) -> dict:
    config = {"format": FORMAT, "name": model.name, "input_shape": list(model.input_shape or []),
              "layers": [{"class": type(layer).__name__, "config": layer.get_config()} for layer in model.layers]}
    if getattr(model, "loss", None) is not None:
        config["compile"] = {"optimizer": model.optimizer.get_config(),
                             "iterations": model.optimizer.iterations,
                             "loss": model.loss.get_config(), "metrics": list(model.metric_fns)}
    return config


def save_model(model, path) -> None:
    from .backend import to_numpy
    if not model.built:
        raise ValueError(f"model {model.name!r}: cannot save an unbuilt model")
    weights = {f"{layer.name}/{k}": to_numpy(v) for layer in model.layers for k, v in layer.params.items()}
    slots = {}
    if getattr(model, "optimizer", None) is not None:
        for (layer, param), state in model.optimizer.slots.items():
            for slot, value in state.items():
                slots[f"{layer}/{param}/{slot}"] = to_numpy(value)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps(model_config(model), indent=1))
        z.writestr("weights.npz", _npz_bytes(weights))
        z.writestr("optimizer.npz", _npz_bytes(slots))
    atomic_write_bytes(path, buf.getvalue())


def _layer_from_config(entry, path):
    cls = getattr(layers_module, entry.get("class", ""), None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, layers_module.Layer):
        raise ValueError(f"{path}: unknown layer class {entry.get('class')!r}")
    config = dict(entry["config"])
    trainable = config.pop("trainable", True)
    layer = cls(**config)
    layer.trainable = trainable
    return layer


def load_model(path, compile=True):
    """Rebuild a saved model (architecture, weights, optimizer state): a Keras 3 ``.keras``
    archive, a legacy Keras 2 ``.h5`` model, or minicnn's own ``.mnc`` file."""
    from .model import Sequential
    path = os.fspath(path)
    if path.endswith((".keras", ".h5")):                  # Keras's formats (keras_format)
        from .keras_format import load_keras, load_legacy_h5
        return (load_keras if path.endswith(".keras") else load_legacy_h5)(path, compile=compile)
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            weights = dict(np.load(io.BytesIO(z.read("weights.npz"))))
            slots = dict(np.load(io.BytesIO(z.read("optimizer.npz"))))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: not a readable minicnn model file ({type(exc).__name__}: {exc})") from None
    if config.get("format") != FORMAT:
        raise ValueError(f"{path}: expected format {FORMAT!r}, found {config.get('format')!r}")
    model = Sequential([_layer_from_config(e, path) for e in config["layers"]], name=config["name"])
    model.build(tuple(config["input_shape"]))
    expected = {f"{layer.name}/{k}": tuple(v.shape) for layer in model.layers for k, v in layer.params.items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != found:
        raise ValueError(f"{path}: weights do not match the architecture: expected {expected}, found {found}")
    for layer in model.layers:
        layer.set_weights([weights[f"{layer.name}/{k}"] for k in layer.params])
    if compile and "compile" in config:
        c = config["compile"]
        model.compile(optimizers.from_config(c["optimizer"]), _loss_from_config(c["loss"]), c["metrics"])
        model.optimizer.iterations = c["iterations"]
        for key, value in slots.items():
            layer, param, slot = key.split("/")
            model.optimizer.slots.setdefault((layer, param), {})[slot] = value
    return model


def clone_model(model, dtype=None):
    """A new model with the same architecture and weights (optionally in another dtype)."""
    from .model import Sequential
    layers = [_layer_from_config({"class": type(layer).__name__, "config": layer.get_config()}, model.name)
              for layer in model.layers]
    for layer in layers:
        layer.dtype = dtype
    clone = Sequential(layers, name=model.name)
    clone.build(model.input_shape)
    clone.set_weights(model.get_weights())
    return clone


def _loss_from_config(config):
    from . import losses
    loss = losses.get(config["name"])
    loss.from_logits = config["from_logits"]
    return loss


# -- Keras weight files -------------------------------------------------------------

def _natural_key(name):
    """'conv2d_10' sorts after 'conv2d_2' (h5py lists groups alphabetically)."""
    base, _, number = name.rpartition("_")
    return (base, int(number)) if number.isdigit() else (name, -1)


def _keras3_layer_groups(h5):
    """[(layer name, [arrays])] from a Keras 3 weights file.  The file keys layers by
    name and keeps no order, so groups come in natural name order (conv2d, conv2d_1, …,
    dense, dense_1): right for the usual conv-then-dense stacks; ``load_keras_weights``
    matches by name first when the names agree."""
    root = h5["layers"]
    return [(name, _vars(root[name])) for name in sorted(root, key=_natural_key)]


def _vars(group):
    if "vars" not in group:
        return []
    v = group["vars"]
    return [np.asarray(v[str(i)]) for i in range(len(v))]


def _legacy_layer_groups(h5):
    root = h5["model_weights"] if "model_weights" in h5 else h5
    names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]]
    groups = []
    for name in names:
        g = root[name]
        weight_names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
        groups.append((name, [np.asarray(g[w]) for w in weight_names]))
    return groups


def read_keras_weights(path):
    """[(layer name, [arrays])] for the layers that have weights, in file order."""
    import h5py
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such Keras weights file")
    try:
        if zipfile.is_zipfile(path):                        # .keras archive
            with zipfile.ZipFile(path) as z:
                data = io.BytesIO(z.read("model.weights.h5"))
                order = [layer["config"]["name"] for layer in json.loads(z.read("config.json"))["config"]["layers"]
                         if layer.get("class_name") != "InputLayer"]
            with h5py.File(data, "r") as h5:
                groups = dict(_keras3_layer_groups(h5))
            return [(name, groups.get(name, [])) for name in order if groups.get(name)]
        with h5py.File(path, "r") as h5:
            if "layer_names" in h5.attrs or "model_weights" in h5:
                return [g for g in _legacy_layer_groups(h5) if g[1]]
            return [g for g in _keras3_layer_groups(h5) if g[1]]
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable Keras weights file ({type(exc).__name__}: {exc})") from None


def load_keras_weights(model, path):
    """Copy the weights of a Keras file into ``model``, layer by layer in order."""
    groups = read_keras_weights(path)
    targets = [layer for layer in model.layers if layer.params]
    by_name = dict(groups)
    if len(by_name) == len(targets) and all(layer.name in by_name for layer in targets):
        groups = [(layer.name, by_name[layer.name]) for layer in targets]      # names agree: match by name
    mismatches = []
    if len(groups) != len(targets):
        mismatches.append(f"{len(groups)} Keras layers with weights vs {len(targets)} minicnn layers")
    for (kname, arrays), layer in zip(groups, targets):
        want = [tuple(v.shape) for v in layer.params.values()]
        got = [tuple(a.shape) for a in arrays]
        if want != got:
            mismatches.append(f"Keras layer {kname!r} {got} -> minicnn layer {layer.name!r} {want}")
    if mismatches:
        raise ValueError(f"{path}: the weights do not fit model {model.name!r}: " + "; ".join(mismatches))
    for (_, arrays), layer in zip(groups, targets):
        layer.set_weights(arrays)
    return model
