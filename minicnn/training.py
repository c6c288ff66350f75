"""compile / fit / evaluate / predict — the trainer, with no autograd.

One training step (``train_step``) is the whole algorithm::

    y_pred = model.forward(x, training=True)
    L      = loss(y_pred, y)                    # from the logits when fused (see losses)
    model.backward(∂L/∂y_pred)                  # every layer sets its .grads
    optimizer.apply(params, grads)

``fit`` adds batching, shuffling, validation, metrics, callbacks and the progress bar,
with Keras's conventions: ``validation_split`` takes the last fraction of the data
*before* shuffling; the last partial batch is kept; the epoch's loss is the mean of the
batch losses weighted by batch size.  A non-finite loss stops training at once, with the
weights of the last finite step restored (Keras's ``TerminateOnNaN``, always on).
"""
from __future__ import annotations

import math

import numpy as np

from . import backend, losses, optimizers
from . import metrics as metric_registry
from .callbacks import Callback, History
from .data_adapters import is_batch_source, make_batches, split_batch, standardize_x
from .progbar import Progbar
from .seeding import global_generator


class ArrayBatches:
    """Mini-batches of in-memory arrays, reshuffled every epoch when ``shuffle``."""

    def __init__(self, x, y, batch_size, shuffle, move=lambda a: a):
        self.x, self.y, self.batch_size, self.shuffle, self.move = x, y, batch_size, shuffle, move
        self.order = np.arange(len(x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def on_epoch_begin(self):
        if self.shuffle:
            self.order = global_generator().permutation(len(self.x))

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        idx = self.order[rows] if self.shuffle else rows      # unshuffled: views, no copies
        return self.move(self.x[idx]), (None if self.y is None else self.move(self.y[idx]))


class SequenceBatches:
    """Batches from a Keras-Sequence-like object (``len`` + ``[i] -> (x, y)``), e.g.
    ``ImageDataGenerator.flow``; ``steps`` limits the batches per epoch."""

    def __init__(self, data, steps=None, move=lambda a: a):
        self.data, self.steps, self.move = data, steps or len(data), move

    def __len__(self):
        return self.steps

    def on_epoch_begin(self):
        pass

    def __getitem__(self, i):
        batch = self.data[i % len(self.data)]
        if i % len(self.data) == len(self.data) - 1 and hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()
        x, y = split_batch(batch)
        return self.move(x), self.move(y)


def is_sequence(x) -> bool:
    return not isinstance(x, np.ndarray) and not backend.is_gpu_array(x) and hasattr(x, "__getitem__") \
        and hasattr(x, "__len__")


class RunningMeans:
    """Means of the loss and metrics over the samples seen (weights = batch sizes)."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, values: dict, n: int):
        self.count += n
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * n

    def result(self) -> dict:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


class TrainingMixin:
    """The training methods of ``Sequential`` (kept apart from its architecture code)."""

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        if loss is None:
            raise ValueError(f"model {self.name!r}: compile needs a loss, e.g. loss='categorical_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metric_fns = dict(metric_registry.get(m, self.loss.name) for m in metric_registry.names(metrics))
        self.compiled = True

    # -- checks ------------------------------------------------------------------
    def _require_compiled(self):
        if getattr(self, "loss", None) is None:
            raise ValueError(f"model {self.name!r}: call compile(optimizer, loss, metrics) first")

    def _check_xy(self, x, y, what="fit"):
        if not isinstance(x, np.ndarray) and not backend.is_gpu_array(x):
            raise ValueError(f"{what}: x must be an array, received {type(x).__name__}")
        self.check_input(x)
        if len(x) == 0:
            raise ValueError(f"{what}: x is empty")
        if not bool(backend.get_array_module(x).isfinite(x).all()):
            raise ValueError(f"{what}: x contains NaN or inf values")
        if y is None:
            return
        if len(y) != len(x):
            raise ValueError(f"{what}: x and y must have the same length, received {len(x)} and {len(y)}")
        if not self.built:
            self.build((None, *x.shape[1:]))
        probe = np.zeros((len(y), *self.output_shape[1:]), dtype="float32")
        try:
            self.loss.check_labels(probe, y)
        except ValueError as exc:
            raise ValueError(f"{what}: labels do not fit the model's output {self.output_shape} "
                             f"and the loss {self.loss.name!r}: {exc}") from None

    # -- one step --------------------------------------------------------------------
    def _loss_and_seed(self, y_pred, y):
        """(L, ∂L/∂(seed), fused): fused means the seed is the last layer's logits."""
        last = self.layers[-1]
        fused = not self.loss.from_logits and self.loss.fuses_with == last.activation.name
        if fused:
            value = self.loss.forward_logits(last.activation.logits, y)
        else:
            value = self.loss.forward(y_pred, y)
        return float(value), fused

    def _metric_values(self, y_pred, y):
        xp = backend.get_array_module(y_pred)
        return {name: float(fn(y_pred, xp.asarray(y)).mean()) for name, fn in self.metric_fns.items()}

    def train_step(self, x, y, snapshot=()):
        """One gradient step on a batch; returns (loss, metrics) for the batch.
        A non-finite loss returns before any weight changes; after a finite one the
        current weights are copied into ``snapshot`` (preallocated buffers) first."""
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging step is caught below
            y_pred = self.forward(x, training=True)
            value, fused = self._loss_and_seed(y_pred, y)
        if not math.isfinite(value):
            return value, {}
        logs = self._metric_values(y_pred, y)
        for params, name, saved in snapshot:            # the weights that gave a finite loss
            backend.get_array_module(saved).copyto(saved, params[name])
        self.backward(self.loss.backward(), from_logits=fused, input_grad=False)
        grads = [(key, params, name, self.get_layer(key[0]).grads[name])
                 for key, params, name in self.trainable_params()]
        self.optimizer.apply(grads)
        return value, logs

    def train_on_batch(self, x, y):
        """One step on one batch; returns the loss, or [loss, *metrics] (Keras)."""
        self._require_compiled()
        x = standardize_x(self, x)
        self._check_xy(x, y, "train_on_batch")
        value, logs = self.train_step(self.to_device(x), self.to_device(y))
        return [value, *logs.values()] if self.metric_fns else value

    # -- fit ---------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0, steps_per_epoch=None,
            validation_steps=None):
        """Train for ``epochs`` epochs; returns a ``History``.  ``x`` and ``validation_data``
        may be arrays, Sequences or generators (``data_adapters``)."""
        self._require_compiled()
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"fit: batch_size must be a positive int, received {batch_size!r}")
        if not 0 <= validation_split < 1:
            raise ValueError(f"fit: validation_split must be in [0, 1), received {validation_split!r}")
        if is_batch_source(x):
            batches = make_batches(x, steps_per_epoch, self.to_device)
        else:
            x = standardize_x(self, x)
            self._check_xy(x, y)
            if validation_split:
                split = int(math.floor(len(x) * (1.0 - validation_split)))
                x, y, validation_data = x[:split], y[:split], (x[split:], y[split:])
            batches = ArrayBatches(x, y, batch_size, shuffle, self.to_device)
        if is_batch_source(validation_data):
            validation_data = make_batches(validation_data, validation_steps, self.to_device)
        elif validation_data is not None:
            validation_data = (standardize_x(self, validation_data[0]), validation_data[1])
            self._check_xy(validation_data[0], validation_data[1], "fit (validation_data)")
            validation_data = ArrayBatches(*validation_data, batch_size, False, self.to_device)
        history = History()
        callbacks = [history, *(callbacks or [])]
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ValueError(f"fit: callbacks must be minicnn.callbacks.Callback objects, received {cb!r}")
            cb.set_model(self)
            cb.on_train_begin()
        self.stop_training = False
        self.history = history
        snapshot = [(params, name, params[name].copy()) for _, params, name in self.trainable_params()]
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            logs = self._fit_epoch(batches, epoch, verbose, snapshot, callbacks, validation_data, batch_size)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
        return history

    def _fit_epoch(self, batches, epoch, verbose, snapshot, callbacks, validation_data, batch_size):
        bar = Progbar(len(batches), verbose)
        means = RunningMeans()
        batches.on_epoch_begin()
        for step in range(len(batches)):
            xb, yb = batches[step]
            value, metric_logs = self.train_step(xb, yb, snapshot)
            if not math.isfinite(value):
                for params, name, saved in snapshot:
                    params[name][...] = saved
                print(f"Epoch {epoch + 1}, step {step + 1}: loss is {value}; stopping training and "
                      f"restoring the weights of the last finite step (TerminateOnNaN)")
                self.stop_training = True
                break
            means.add({**metric_logs, "loss": value}, len(xb))
            bar.update(step + 1, means.result())
            for cb in callbacks:
                cb.on_train_batch_end(step, {**metric_logs, "loss": value})
        logs = means.result()
        if validation_data is not None and not self.stop_training:
            val = self._evaluate_batches(validation_data)
            logs.update({f"val_{k}": v for k, v in val.items()})
        bar.finish(logs)
        return logs

    # -- evaluate / predict ---------------------------------------------------------
    def _evaluate_batches(self, batches, bar=None):
        means = RunningMeans()
        batches.on_epoch_begin()
        for step in range(len(batches)):
            xb, yb = batches[step]
            y_pred = self.forward(xb, training=False)
            value, _ = self._loss_and_seed(y_pred, yb)
            means.add({**self._metric_values(y_pred, yb), "loss": value}, len(xb))
            if bar:
                bar.update(step + 1, means.result())
        result = means.result()
        return {"loss": result.pop("loss"), **result}

    def _inference_batches(self, x, y, batch_size, steps, what):
        """Batches in order, from arrays (checked) or a Sequence / generator."""
        if is_batch_source(x):
            return make_batches(x, steps, self.to_device)
        x = standardize_x(self, x)
        self._check_xy(x, y, what)
        return ArrayBatches(x, y, batch_size, False, self.to_device)

    def evaluate(self, x, y=None, batch_size=32, verbose=1, return_dict=False, steps=None):
        """Mean loss (and metrics) over ``x`` (arrays, a Sequence or a generator):
        ``loss`` or ``[loss, *metrics]``."""
        self._require_compiled()
        batches = self._inference_batches(x, y, batch_size, steps, "evaluate")
        bar = Progbar(len(batches), verbose)
        result = self._evaluate_batches(batches, bar)
        bar.finish(result)
        if return_dict:
            return result
        return [result["loss"], *(result[k] for k in self.metric_fns)] if self.metric_fns else result["loss"]

    def predict(self, x, batch_size=32, verbose=0, steps=None):
        """The model's outputs for ``x`` (arrays, a Sequence or a generator), computed
        ``batch_size`` samples at a time."""
        batches = self._inference_batches(x, None, batch_size, steps, "predict")
        bar = Progbar(len(batches), verbose)
        parts = []                                  # per batch: [one array per model output]
        for step in range(len(batches)):
            outputs = self.forward(standardize_x(self, batches[step][0]))
            parts.append([backend.to_numpy(a).copy() for a in (outputs if isinstance(outputs, list) else [outputs])])
            bar.update(step + 1)
        bar.finish()
        result = [np.concatenate(column, axis=0) for column in zip(*parts)]     # on the host, as Keras
        return result[0] if len(result) == 1 else result
