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
weights of the last finite step restored and the optimizer's state reset (Keras's
``TerminateOnNaN``, always on): a diverging step may have left NaN or inf in the moments,
and ``fit`` must be able to go on from there with a saner learning rate.

Threads: the layers keep per-call caches and reuse their buffers, so two calls may not run
through one model at the same time.  Every public call (``fit``, ``evaluate``,
``predict``, ``train_on_batch``, ``save``, and the model's gradient entry points) holds the
model's ``call_lock`` for its whole duration (``serialized``): from several threads they
give the results of the same calls made one after another.  Calls on different models
run in parallel.
"""
from __future__ import annotations

import functools
import math
import threading

import numpy as np

from . import arguments, backend, optimizers, sample_weights
from .callbacks import Callback, History
from .compiled_loss import CompiledLoss
from .data_adapters import (ArrayBatches, is_batch_source, make_batches, sample_count, split_for_validation,
                            standardize_x, validation_triple)
from .graph import flatten, in_order
from .inference import forward_only
from .progbar import Progbar


class RunningMeans:
    """Means of the loss and metrics over the batches seen, each batch's value weighted by
    its size ``n`` or, for a weighted metric, by its Σw (``weights``): Keras's ``Mean``."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, values: dict, n: int, weights=None):
        for key, value in values.items():
            weight = (weights or {}).get(key, n)
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * weight
            self.counts[key] = self.counts.get(key, 0.0) + weight

    def result(self) -> dict:
        return {k: v / self.counts[k] if self.counts[k] else 0.0 for k, v in self.sums.items()}


def serialized(method):
    """``method`` run holding its model's ``call_lock`` (see the module docstring)."""
    @functools.wraps(method)
    def holding_the_lock(model, *args, **kwargs):
        with model.call_lock:
            return method(model, *args, **kwargs)
    return holding_the_lock


_LOCK_CREATION = threading.Lock()


def all_finite(x, rows_at_once=1024) -> bool:
    """True when ``x`` holds no NaN or inf; checked ``rows_at_once`` samples at a time, so the
    temporary mask is bounded by that, not by the data."""
    xp = backend.get_array_module(x)
    return all(bool(xp.isfinite(x[i:i + rows_at_once]).all()) for i in range(0, len(x), rows_at_once))


class TrainingMixin:
    """The training methods of a ``Model`` (kept apart from its graph code)."""

    # After predict/evaluate, workspace buffers larger than this are released; the others are
    # kept for the next call, which would otherwise fault a fresh buffer's pages in again (a
    # layer output of a b1024 MNIST batch is ~40 MB).  A training loop keeps all of its buffers.
    inference_buffer_limit = 128 * 2**20     # bytes

    @property
    def call_lock(self) -> threading.RLock:
        """The model's re-entrant lock: held by every public call for its whole duration, so
        that calls from several threads run one at a time.  Re-entrant, so a callback may
        call ``predict`` or ``save`` from within ``fit``; hold it yourself (``with
        model.call_lock:``) to make a sequence of low-level calls (``forward`` then
        ``backward``) atomic.  It is taken once per call, not per batch: uncontended, its
        cost is lost in that of one layer's forward."""
        lock = self.__dict__.get("_call_lock")
        if lock is None:
            with _LOCK_CREATION:              # two threads' first calls must not make two locks
                lock = self.__dict__.setdefault("_call_lock", threading.RLock())
        return lock

    def __getstate__(self):
        """A copy (``copy.deepcopy``, pickle) leaves the lock behind: it gets one of its own."""
        state = dict(self.__dict__)
        state.pop("_call_lock", None)
        return state

    @serialized
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None):
        """Keras's arguments, in Keras 3's order: ``loss``, ``loss_weights``, ``metrics`` and
        ``weighted_metrics`` are one value for all outputs, a list in output order or a dict
        by output name (``compiled_loss``)."""
        if loss is None:
            raise ValueError(f"model {self.name!r}: compile needs a loss, e.g. loss='categorical_crossentropy'")
        if isinstance(loss_weights, (list, tuple)) and any(isinstance(w, str) for w in loss_weights):
            raise ValueError(f"model {self.name!r}: compile's third argument is loss_weights (Keras 3's order), "
                             f"received {loss_weights!r}; pass metrics by name: metrics={list(loss_weights)!r}")
        self.optimizer = optimizers.get(optimizer)
        self.compiled_loss = CompiledLoss(self, loss, loss_weights, metrics, weighted_metrics)
        self.loss = self.compiled_loss.terms[0].loss                 # one output: its loss and metrics
        self.metric_fns = self.compiled_loss.terms[0].metric_fns

    # -- checks ------------------------------------------------------------------
    def _require_compiled(self):
        if getattr(self, "loss", None) is None:
            raise ValueError(f"model {self.name!r}: call compile(optimizer, loss, metrics=...) first")

    def _outputs_list(self, data, what):
        """Labels (or predictions) as a list in output order, from an array, list or dict."""
        return in_order(data, self.output_names, what, "labels")

    def _check_xy(self, x, y, what="fit"):
        arrays = flatten(x) if isinstance(x, (list, tuple, dict)) else [x]
        for a in arrays:
            if not isinstance(a, np.ndarray) and not backend.is_gpu_array(a):
                raise ValueError(f"{what}: x must be an array (or a list/dict of arrays, one per input), "
                                 f"received {type(a).__name__}")
        if not self.built:
            self.build((None, *arrays[0].shape[1:]))
        self.check_input(x)
        n = len(arrays[0])
        if n == 0:
            raise ValueError(f"{what}: x is empty")
        if any(len(a) != n for a in arrays):
            raise ValueError(f"{what}: every input array needs the same number of samples, "
                             f"received {[len(a) for a in arrays]}")
        if not all(all_finite(a) for a in arrays):
            raise ValueError(f"{what}: x contains NaN or inf values")
        if y is None:
            return
        labels = self._outputs_list(y, what)
        for term, out_shape, labels_k in zip(self.compiled_loss.terms, flatten(self.output_shape)
                                             if len(self.outputs) > 1 else [self.output_shape], labels):
            if len(labels_k) != n:
                raise ValueError(f"{what}: x and y must have the same length, received {n} and {len(labels_k)}")
            probe = np.zeros((len(labels_k), *out_shape[1:]), dtype="float32")
            try:
                term.loss.check_labels(probe, backend.to_numpy(labels_k))      # (checked on the host, once)
            except ValueError as exc:
                raise ValueError(f"{what}: labels do not fit the model's output {out_shape} "
                                 f"and the loss {term.loss.name!r}: {exc}") from None

    # -- one step --------------------------------------------------------------------
    def _loss_and_seed(self, y_pred, y):
        """(L, fused) for a one-output model: fused means the backward starts from the
        output layer's logits (the study tools use this)."""
        value, _ = self.compiled_loss([y_pred], [y])
        return value, self.compiled_loss.terms[0].fused

    def _losses(self, y_pred, y, sample_weight=None):
        """(L = Σ_k w_k L_k, logs) for the outputs ``y_pred``, labels ``y`` and sample weights."""
        preds = y_pred if len(self.outputs) > 1 else [y_pred]
        return self.compiled_loss(preds, self._outputs_list(y, "fit"), sample_weight)

    def train_step(self, x, y, sample_weight=None, snapshot=()):
        """One gradient step on a batch; returns (loss, logs) for the batch.
        A non-finite loss returns before any weight changes; after a finite one the
        current weights are copied into ``snapshot`` (preallocated buffers) first."""
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging step shows in the next loss
            y_pred = self.forward(x, training=True)
            value, logs = self._losses(y_pred, y, sample_weight)
            if not math.isfinite(value):
                return value, {}
            for params, name, saved in snapshot:            # the weights that gave a finite loss
                backend.get_array_module(saved).copyto(saved, params[name])
            seeds, fused = self.compiled_loss.seeds()
            self.backward(seeds if len(seeds) > 1 else seeds[0],
                          from_logits=fused if len(fused) > 1 else fused[0], input_grad=False)
            grads = [(key, params, name, self.get_layer(key[0]).grads[name])
                     for key, params, name in self.trainable_params()]
            self.optimizer.apply(grads)
        return value, logs

    @serialized
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One step on one batch; returns the loss, or [loss, *metrics] (Keras)."""
        self._require_compiled()
        x = standardize_x(self, x)
        self._check_xy(x, y, "train_on_batch")
        w = sample_weights.for_labels(y, sample_weight, class_weight, self, sample_count(x), "train_on_batch")
        value, logs = self.train_step(self.to_device(x), self.to_device(y), self.to_device(w))
        return self._batch_result(value, logs, return_dict)

    @serialized
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training (Keras)."""
        self._require_compiled()
        x = standardize_x(self, x)
        self._check_xy(x, y, "test_on_batch")
        w = sample_weights.per_output(sample_weight, self.output_names, sample_count(x), "test_on_batch")
        try:
            value, logs = self._losses(self.forward(self.to_device(x), training=False), self.to_device(y),
                                       self.to_device(w))
        finally:
            self._release_inference_buffers()
        return self._batch_result(value, logs, return_dict)

    @staticmethod
    def _batch_result(value, logs, return_dict):
        if return_dict:
            return {"loss": value, **logs}
        return [value, *logs.values()] if logs else value

    # -- fit ---------------------------------------------------------------------------
    @serialized
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0, steps_per_epoch=None,
            validation_steps=None, class_weight=None, sample_weight=None):
        """Train for ``epochs`` epochs; returns a ``History``.  ``x`` and ``validation_data``
        may be arrays, Sequences or generators (``data_adapters``); ``sample_weight`` and
        ``class_weight`` weigh the training samples (``sample_weights``), a third item of
        ``validation_data`` the validation samples.  As in Keras, ``validation_split``
        splits ``sample_weight`` too, and ``class_weight`` weighs the training part only."""
        self._require_compiled()
        batch_size = arguments.batch_size(batch_size, "fit")
        epochs = arguments.count(epochs, "fit", "epochs")
        initial_epoch = arguments.count(initial_epoch, "fit", "initial_epoch")
        validation_split = arguments.fraction(validation_split, "fit", "validation_split")
        if steps_per_epoch is not None:
            steps_per_epoch = arguments.count(steps_per_epoch, "fit", "steps_per_epoch", minimum=1)
        if is_batch_source(x):
            if sample_weight is not None:
                raise ValueError("fit: sample_weight cannot be given with a generator or Sequence x; "
                                 "let its batches be (x, y, sample_weight) instead (Keras)")
            weigh = None if class_weight is None else (
                lambda yb: sample_weights.for_labels(yb, None, class_weight, self, len(yb), "fit")[0])
            batches = make_batches(x, steps_per_epoch, self.to_device, weigh)
        else:
            x = standardize_x(self, x)
            self._check_xy(x, y)
            w = sample_weights.per_output(sample_weight, self.output_names, sample_count(x), "fit")
            if validation_split:
                x, y, w, validation_data = split_for_validation(x, y, w, validation_split)
            if class_weight is not None:
                w = sample_weights.for_labels(y, sample_weight, class_weight, self, sample_count(x), "fit")
            batches = ArrayBatches(x, y, batch_size, shuffle, self.to_device, w)
        if is_batch_source(validation_data):
            validation_data = make_batches(validation_data, validation_steps, self.to_device)
        elif validation_data is not None:
            x_val, y_val, w_val = validation_triple(validation_data)
            x_val = standardize_x(self, x_val)
            self._check_xy(x_val, y_val, "fit (validation_data)")
            w_val = sample_weights.per_output(w_val, self.output_names, sample_count(x_val), "fit (validation_data)")
            validation_data = ArrayBatches(x_val, y_val, batch_size, False, self.to_device, w_val)
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
            xb, yb, wb = batches[step]
            value, metric_logs = self.train_step(xb, yb, wb, snapshot)
            if not math.isfinite(value):
                self._terminate_on_nan(value, epoch, step, snapshot)
                break
            means.add({**metric_logs, "loss": value}, sample_count(xb), self.compiled_loss.log_weights)
            bar.update(step + 1, means.result())
            for cb in callbacks:
                cb.on_train_batch_end(step, {**metric_logs, "loss": value})
        logs = means.result()
        if validation_data is not None and not self.stop_training:
            val = self._evaluate_batches(validation_data)
            logs.update({f"val_{k}": v for k, v in val.items()})
        bar.finish(logs)
        return logs

    def _terminate_on_nan(self, value, epoch, step, snapshot):
        """Stop training with the weights that gave the last finite loss, and the optimizer
        as new: the step that diverged (or one before it) may have left NaN or inf in its
        moments (Adam's ``v`` = inf leaves the weights finite for a step)."""
        self.stop_training = True
        for params, name, saved in snapshot:
            params[name][...] = saved
        self.optimizer.reset_state()
        print(f"Epoch {epoch + 1}, step {step + 1}: loss is {value}; stopped training (TerminateOnNaN), "
              f"restored the weights of the last finite step and reset the optimizer's state "
              f"(slots zero, step count 0)")

    # -- evaluate / predict ---------------------------------------------------------
    def _evaluate_batches(self, batches, bar=None):
        means = RunningMeans()
        batches.on_epoch_begin()
        for step in range(len(batches)):
            xb, yb, wb = batches[step]
            with forward_only():
                y_pred = self.forward(xb, training=False)
            value, logs = self._losses(y_pred, yb, wb)
            means.add({**logs, "loss": value}, sample_count(xb), self.compiled_loss.log_weights)
            if bar:
                bar.update(step + 1, means.result())
        result = means.result()
        return {"loss": result.pop("loss"), **result}

    def _inference_batches(self, x, y, batch_size, steps, what, sample_weight=None):
        """Batches in order, from arrays (checked) or a Sequence / generator."""
        if is_batch_source(x):
            if sample_weight is not None:
                raise ValueError(f"{what}: sample_weight cannot be given with a generator or Sequence x; "
                                 f"let its batches be (x, y, sample_weight) instead (Keras)")
            return make_batches(x, steps, self.to_device)
        x = standardize_x(self, x)
        self._check_xy(x, y, what)
        w = sample_weights.per_output(sample_weight, self.output_names, sample_count(x), what)
        return ArrayBatches(x, y, batch_size, False, self.to_device, w)

    @serialized
    def evaluate(self, x, y=None, batch_size=None, verbose=1, return_dict=False, steps=None, sample_weight=None):
        """Mean loss (and metrics) over ``x`` (arrays, a Sequence or a generator):
        ``loss`` or ``[loss, *metrics]``."""
        self._require_compiled()
        batch_size = arguments.batch_size(batch_size, "evaluate")
        batches = self._inference_batches(x, y, batch_size, steps, "evaluate", sample_weight)
        bar = Progbar(len(batches), verbose)
        try:
            result = self._evaluate_batches(batches, bar)
        finally:
            self._release_inference_buffers()
        bar.finish(result)
        if return_dict:
            return result
        others = self.compiled_loss.metric_names()
        return [result["loss"], *(result[k] for k in others)] if others else result["loss"]

    @serialized
    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """The model's outputs for ``x`` (arrays, a Sequence or a generator; a list for
        several outputs), computed ``batch_size`` samples at a time into host arrays (as
        Keras returns them).  For arrays, beyond that result, the memory used is bounded by
        ``batch_size``, not by the number of samples."""
        batch_size = arguments.batch_size(batch_size, "predict")
        batches = self._inference_batches(x, None, batch_size, steps, "predict")
        n = None if is_batch_source(x) else sample_count(x)
        bar = Progbar(len(batches), verbose)
        results, start = None, 0
        try:
            for step in range(len(batches)):
                with forward_only():
                    outputs = self.forward(standardize_x(self, batches[step][0]))
                arrays = [backend.to_numpy(a) for a in (outputs if isinstance(outputs, list) else [outputs])]
                if n is None:                      # a Sequence or generator: the total is not known
                    parts = [a.copy() for a in arrays]
                    results = [[a] for a in parts] if results is None else [r + [a] for r, a in zip(results, parts)]
                else:
                    if results is None:
                        results = [np.empty((n, *a.shape[1:]), dtype=a.dtype) for a in arrays]
                    for out, a in zip(results, arrays):
                        out[start:start + len(a)] = a
                    start += len(arrays[0])
                del outputs, arrays        # not held through the next batch
                bar.update(step + 1)
        finally:
            self._release_inference_buffers()
        bar.finish()
        if n is None:
            results = [np.concatenate(parts, axis=0) for parts in results]
        return results[0] if len(results) == 1 else results

    def predict_on_batch(self, x):
        """The outputs for ``x`` taken as one batch (Keras's ``predict_on_batch``)."""
        return self.predict(x, batch_size=max(sample_count(x), 1))

    def _release_inference_buffers(self):
        """Drop what the last pass kept (the layers' caches) and every workspace buffer larger
        than ``inference_buffer_limit``: a large batch's buffers are not held until the next
        call.  A backward now finds no forward to run from, and the layer says so."""
        for layer in self.flat_layers():
            layer.release()
            layer.output_shape_seen = None
            for workspace in layer.workspaces():
                workspace.release_larger_than(self.inference_buffer_limit)
