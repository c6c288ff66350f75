"""``.keras`` archives, ``.weights.h5`` files and legacy Keras 2 ``.h5`` models, without TensorFlow.

A ``.keras`` file is a zip of ``metadata.json`` (Keras version, date), ``config.json``
(the model config, ``config.py``, plus ``compile_config``: optimizer, loss, metrics) and
``model.weights.h5`` (``weights.py``; the optimizer's variables too when saved with
``include_optimizer=True``).  A legacy Keras 2 ``.h5`` model holds the config as the JSON
attribute ``model_config`` and the weights in ``model_weights/<layer>/`` (names listed in
the ``weight_names`` attributes).  Files are written to a temporary file and renamed
into place; a file that is not a readable zip / HDF5 raises a ValueError naming it.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import zipfile

import numpy as np

from .. import losses, optimizers
from ..saving import atomic_write_bytes
from .config import model_config, model_from_config
from .weights import read_layers, read_optimizer, write_layers, write_optimizer

KERAS_VERSION = "3.15.1"          # the Keras version whose layout this writes (and tests load)
_OPTIMIZER_ARGS = {"sgd": ("learning_rate", "momentum", "nesterov"), "rmsprop": ("learning_rate", "rho", "momentum",
                   "epsilon"), "adam": ("learning_rate", "beta_1", "beta_2", "epsilon")}
_OPTIMIZER_CLASS = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam"}


def _h5py():
    import h5py
    return h5py


# -- compile settings ----------------------------------------------------------------

def compile_config(model) -> dict:
    opt, loss = model.optimizer, model.loss
    keras_loss = loss.name if not loss.from_logits else {
        "module": "keras.losses", "class_name": type(loss).__name__, "registered_name": None,
        "config": {"name": loss.name, "from_logits": True, "reduction": "sum_over_batch_size"}}
    return {"optimizer": {"module": "keras.optimizers", "class_name": _OPTIMIZER_CLASS[opt.name],
                          "config": {"name": opt.name, **{k: v for k, v in opt.get_config().items() if k != "name"}},
                          "registered_name": None},
            "loss": keras_loss, "loss_weights": None, "metrics": list(model.metric_fns) or None,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def compile_from_config(model, config, where) -> None:
    opt = config["optimizer"]
    if isinstance(opt, dict):
        name = opt["class_name"].lower()
        if name not in _OPTIMIZER_ARGS:
            raise ValueError(f"{where}: optimizer {opt['class_name']} is not in minicnn (it has SGD, RMSprop, Adam)")
        args = {k: opt["config"][k] for k in _OPTIMIZER_ARGS[name] if k in opt["config"]}
        if isinstance(args.get("learning_rate"), dict):
            raise ValueError(f"{where}: learning-rate schedules ({args['learning_rate'].get('class_name')}) are not "
                             f"in minicnn; load with compile=False and compile again")
        opt = optimizers.get(name).__class__(**args)
    loss = config["loss"]
    if isinstance(loss, dict):
        cls = losses.get(loss["class_name"]).__class__
        loss = cls(from_logits=loss["config"].get("from_logits", False))
    model.compile(optimizer=opt, loss=loss, metrics=config.get("metrics"))


# -- .keras ----------------------------------------------------------------------------

def save_keras(model, path, include_optimizer=True) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` archive (atomically)."""
    h5py = _h5py()
    if not model.built:
        raise ValueError(f"model {model.name!r}: cannot save an unbuilt model")
    config = model_config(model)
    compiled = getattr(model, "loss", None) is not None
    if compiled:
        config["compile_config"] = compile_config(model)
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        write_layers(h5, model)
        if compiled and include_optimizer:
            write_optimizer(h5.create_group("optimizer"), model)
    metadata = {"keras_version": KERAS_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps(metadata))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights.getvalue())
    atomic_write_bytes(path, archive.getvalue())


def load_keras(path, compile=True):
    """A minicnn model from a Keras 3 ``.keras`` archive (weights and optimizer state)."""
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            weights = z.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .keras file ({type(exc).__name__}: {exc})") from None
    model = model_from_config(config, path)
    with _open_h5(io.BytesIO(weights), path) as h5:
        read_layers(h5, model, path)
        if compile and config.get("compile_config"):
            compile_from_config(model, config["compile_config"], path)
            if "optimizer" in h5:
                read_optimizer(h5["optimizer"], model, path)
    return model


def _open_h5(source, path):
    try:
        return _h5py().File(source, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None


# -- .weights.h5 ----------------------------------------------------------------------

def save_weights(model, path) -> None:
    """Keras 3's ``.weights.h5`` (the layer groups of ``model.weights.h5``), atomically."""
    buffer = io.BytesIO()
    with _h5py().File(buffer, "w") as h5:
        write_layers(h5, model)
    atomic_write_bytes(path, buffer.getvalue())


def load_weights(model, path) -> None:
    """Read a Keras 3 ``.weights.h5`` file (or a legacy Keras 2 weights ``.h5``) into ``model``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    with _open_h5(path, path) as h5:
        if "layers" in h5:
            read_layers(h5, model, path)
            return
    from ..saving import load_keras_weights
    load_keras_weights(model, path)


# -- legacy Keras 2 .h5 -----------------------------------------------------------------

def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def load_legacy_h5(path, compile=True):
    """A minicnn model from a Keras 2 ``.h5`` full-model file (``model.save('x.h5')``)."""
    path = os.fspath(path)
    with _open_h5(path, path) as h5:
        if "model_config" not in h5.attrs:
            raise ValueError(f"{path}: an HDF5 file without a model_config attribute holds weights only; build the "
                             f"model and call model.load_weights({path!r})")
        config = json.loads(_text(h5.attrs["model_config"]))
        model = model_from_config(config, path)
        root = h5["model_weights"] if "model_weights" in h5 else h5
        stored = {}
        for name in map(_text, root.attrs["layer_names"]):
            g = root[name]
            stored[name] = [np.asarray(g[w]) for w in map(_text, g.attrs.get("weight_names", []))]
        training = h5.attrs.get("training_config")
    for layer in model.flat_layers():
        if layer.params:
            arrays = stored.get(layer.name)
            if arrays is None:
                raise ValueError(f"{path}: no weights for layer {layer.name!r}; the file has {sorted(stored)}")
            layer.set_weights(arrays)
    if compile and training is not None:
        _compile_legacy(model, json.loads(_text(training)), path)
    return model


def _compile_legacy(model, training, path):
    opt = training["optimizer_config"]
    config = {"optimizer": {"class_name": opt["class_name"], "config": {
        ("learning_rate" if k == "lr" else k): v for k, v in opt["config"].items()}},
        "loss": training["loss"], "metrics": training.get("metrics")}
    compile_from_config(model, config, path)
