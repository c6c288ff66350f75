"""Saving and loading minicnn models; reading Keras weight files.

``model.save(path)`` writes one zip file::

    config.json      architecture (layer classes and arguments), input shape,
                     compile settings (optimizer config and step count, loss, metrics)
    weights.npz      "<layer>/<param>" -> array
    optimizer.npz    "<layer>/<param>/<slot>" -> array

It is written to a temporary file in the same folder and renamed over the target
(``os.replace`` is atomic), so a crash never leaves a half-written model; the next save of
that path removes what a killed one left.  ``load_model`` validates every entry before
returning a model: a truncated, foreign, damaged or mismatched file raises a
``MalformedModelFile`` (a ``ValueError``) naming the file and the entry.

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
import zlib

import numpy as np

from . import layers as layers_module
from . import optimizers

FORMAT = "minicnn-model-1"
ENTRIES = ("config.json", "weights.npz", "optimizer.npz")


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename.

    The temporary file is ``.<name>.tmp-<pid>-<random>`` beside ``path``; a writer killed
    before its rename leaves one behind, which the next write of ``path`` removes (those of
    processes no longer running)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    _remove_stale_temporaries(folder, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=folder)
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


def _remove_stale_temporaries(folder, name):
    """Remove the temporary files of earlier writes of ``folder/name`` whose process is gone
    (a live one may be writing it right now)."""
    prefix = f".{name}.tmp-"
    for entry in os.listdir(folder):
        pid = entry[len(prefix):].partition("-")[0]
        if entry.startswith(prefix) and pid.isdigit() and not _process_alive(int(pid)):
            try:
                os.remove(os.path.join(folder, entry))
            except FileNotFoundError:
                pass                                # another writer removed it first


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True                   # no harmless probe (os.kill would end the process): keep its files
    try:
        os.kill(pid, 0)               # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                   # it exists, under another user
    return True


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


# -- loading: every entry checked, every error naming the file and the entry ------------

class MalformedModelFile(ValueError):
    """A model file that cannot be loaded; the message names the file and the entry."""


class _Entry:
    """``with _Entry(path, "layers[2]"):`` turns the errors a malformed entry provokes
    (a constructor's TypeError, a lookup's KeyError, ...) into one ValueError naming the
    file and the entry."""

    def __init__(self, path, name):
        self.path, self.name = path, name

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, (TypeError, ValueError, KeyError, AttributeError, IndexError)) \
                and not issubclass(kind, MalformedModelFile):
            raise MalformedModelFile(f"{self.path}: entry {self.name} is malformed: {exc}") from None
        return False


def _field(path, mapping, where, key, kinds, expected):
    """``mapping[key]``, which must be one of ``kinds`` (``bool`` only when listed)."""
    name = f"{where}.{key}" if where else key
    if not isinstance(mapping, dict) or key not in mapping:
        raise MalformedModelFile(f"{path}: entry {name} is missing")
    value, kinds = mapping[key], kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise MalformedModelFile(f"{path}: entry {name} must be {expected}, found {value!r}")
    return value


def _read_entries(path, compile):
    """(config dict, weights, slots) from the zip, each entry present and readable."""
    wanted = ENTRIES if compile else ENTRIES[:2]
    try:
        with zipfile.ZipFile(path) as z:
            missing = [e for e in wanted if e not in z.namelist()]
            if missing:
                raise MalformedModelFile(f"{path}: not a complete minicnn model file: entry {missing[0]} is missing")
            raw = {e: z.read(e) for e in wanted}
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise MalformedModelFile(f"{path}: not a readable minicnn model file ({type(exc).__name__}: {exc})") from None
    try:
        config = json.loads(raw["config.json"])
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedModelFile(f"{path}: entry config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise MalformedModelFile(f"{path}: entry config.json must hold a JSON object, found {type(config).__name__}")
    arrays = []
    for entry in wanted[1:]:
        try:
            arrays.append(dict(np.load(io.BytesIO(raw[entry]), allow_pickle=False)))
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise MalformedModelFile(f"{path}: entry {entry} is not a readable .npz archive ({exc})") from None
    return config, arrays[0], arrays[1] if compile else {}


def layer_from_entry(entry, path, where="layer"):
    class_name = _field(path, entry, where, "class", str, "a layer class name")
    cls = getattr(layers_module, class_name, None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, layers_module.Layer):
        raise MalformedModelFile(f"{path}: entry {where}.class: unknown layer class {class_name!r}")
    config = dict(_field(path, entry, where, "config", dict, "a dict of the layer's arguments"))
    with _Entry(path, f"{where}.config ({class_name})"):
        trainable = config.pop("trainable", True)
        layer = cls(**config)
    layer.trainable = trainable
    return layer


def _model_from_config(config, path):
    from .sequential import Sequential
    if config.get("format") != FORMAT:
        raise MalformedModelFile(f"{path}: expected format {FORMAT!r}, found {config.get('format')!r}")
    name = _field(path, config, "", "name", str, "a string")
    entries = _field(path, config, "", "layers", list, "a list of layers")
    shape = _field(path, config, "", "input_shape", list, "a list like [null, 28, 28, 1]")
    if not shape or shape[0] is not None or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                    for d in shape[1:]):
        raise MalformedModelFile(f"{path}: entry input_shape must be [null, positive ints...], found {shape!r}")
    with _Entry(path, "layers"):
        model = Sequential([layer_from_entry(e, path, f"layers[{i}]") for i, e in enumerate(entries)], name=name)
    with _Entry(path, "input_shape"):
        model.build(tuple(shape))
    return model


def _set_weights(model, weights, path):
    expected = {f"{layer.name}/{k}": tuple(v.shape) for layer in model.layers for k, v in layer.params.items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != found:
        raise MalformedModelFile(f"{path}: entry weights.npz does not match the architecture: "
                                 f"expected {expected}, found {found}")
    _check_float(weights, path, "weights.npz")
    for layer in model.layers:
        layer.set_weights([weights[f"{layer.name}/{k}"] for k in layer.params])


def _check_float(arrays, path, entry):
    for key, value in arrays.items():
        if value.dtype.kind != "f":
            raise MalformedModelFile(f"{path}: entry {entry}/{key} must hold floats, found dtype {value.dtype}")


def _compile_from_config(model, config, slots, path):
    """Compile ``model`` from config entry ``compile`` and load the optimizer's state, whose
    keys, slot names and shapes must be those of this optimizer on this model's weights."""
    optimizer_config = _field(path, config, "compile", "optimizer", dict, "an optimizer config")
    with _Entry(path, "compile.optimizer"):
        optimizer = optimizers.from_config(optimizer_config)
    loss = _loss_from_config(_field(path, config, "compile", "loss", dict, "a loss config"), path)
    metrics = _field(path, config, "compile", "metrics", list, "a list of metric names")
    with _Entry(path, "compile.metrics"):
        model.compile(optimizer, loss, metrics=metrics)
    iterations = _field(path, config, "compile", "iterations", int, "a step count")
    if iterations < 0:
        raise MalformedModelFile(f"{path}: entry compile.iterations must be >= 0, found {iterations}")
    optimizer.iterations = iterations
    _check_float(slots, path, "optimizer.npz")
    shapes = {f"{layer.name}/{k}": tuple(v.shape) for layer in model.layers for k, v in layer.params.items()}
    who = type(optimizer).__name__
    for key, value in slots.items():
        weight, _, slot = key.rpartition("/")
        if weight not in shapes or slot not in optimizer.slot_names:
            raise MalformedModelFile(f"{path}: entry optimizer.npz/{key}: not a slot of {who} "
                                     f"(slots {list(optimizer.slot_names)}) for a weight of this model")
        if tuple(value.shape) != shapes[weight]:
            raise MalformedModelFile(f"{path}: entry optimizer.npz/{key} must have shape {shapes[weight]} "
                                     f"(the weight's), found {tuple(value.shape)}")
        optimizer.slots.setdefault(tuple(weight.split("/")), {})[slot] = value
    for (layer, param), state in optimizer.slots.items():
        if set(state) != set(optimizer.slot_names):
            raise MalformedModelFile(f"{path}: entry optimizer.npz holds slots {sorted(state)} for {layer}/{param}; "
                                     f"{who} needs {list(optimizer.slot_names)}")


def load_model(path, compile=True):
    """Rebuild a saved model (architecture, weights, optimizer state): a Keras 3 ``.keras``
    archive, a legacy Keras 2 ``.h5`` model, or minicnn's own ``.mnc`` file."""
    path = os.fspath(path)
    if path.endswith((".keras", ".h5")):                  # Keras's formats (keras_format)
        from .keras_format import load_keras, load_legacy_h5
        return (load_keras if path.endswith(".keras") else load_legacy_h5)(path, compile=compile)
    config, weights, slots = _read_entries(path, compile)
    model = _model_from_config(config, path)
    _set_weights(model, weights, path)
    if compile and "compile" in config:
        _compile_from_config(model, _field(path, config, "", "compile", dict, "a dict"), slots, path)
    return model


def clone_model(model, dtype=None):
    """A new model with the same architecture and weights (optionally in another dtype)."""
    from .sequential import Sequential
    layers = [layer_from_entry({"class": type(layer).__name__, "config": layer.get_config()}, model.name)
              for layer in model.layers]
    for layer in layers:
        layer.dtype = dtype
    clone = Sequential(layers, name=model.name)
    clone.build(model.input_shape)
    clone.set_weights(model.get_weights())
    return clone


def _loss_from_config(config, path="loss"):
    from . import losses
    name = _field(path, config, "compile.loss", "name", str, "a loss name")
    with _Entry(path, "compile.loss.name"):
        loss = losses.get(name)
    _field(path, config, "compile.loss", "from_logits", bool, "true or false")
    for key, value in config.items():          # from_logits, and a reduced loss's reduction (and delta)
        if key != "name":
            with _Entry(path, f"compile.loss.{key}"):
                if not hasattr(loss, key):
                    raise ValueError(f"{type(loss).__name__} has no setting {key!r}")
                setattr(loss, key, value)
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
    """Copy the weights of a Keras file into ``model``: a Keras 3 ``.weights.h5`` through its
    layer groups (``keras_format``), else layer by layer in order."""
    import h5py
    path = os.fspath(path)
    if os.path.exists(path) and not zipfile.is_zipfile(path) and h5py.is_hdf5(path):
        with h5py.File(path, "r") as h5:
            keras3 = "layers" in h5
        if keras3:
            from .keras_format.weights import read_layers
            with h5py.File(path, "r") as h5:
                read_layers(h5, model, path)
            return model
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
