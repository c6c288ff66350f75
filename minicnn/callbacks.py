"""Training callbacks with Keras's names and behaviour.

A callback sees the model (``self.model``) and the ``logs`` dict of each epoch
(``loss``, metrics, ``val_*``).  Setting ``model.stop_training = True`` ends ``fit``
after the current epoch.  (Non-finite losses always stop training — Keras's
``TerminateOnNaN`` is built into ``fit``.)
"""
from __future__ import annotations

import csv
import os

import numpy as np

from . import arguments


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_end(self, step, logs=None): ...


class History(Callback):
    """``history.history[key]`` is the list of per-epoch values; ``history.epoch`` the epochs."""

    def __init__(self):
        self.history: dict = {}
        self.epoch: list = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _improvement(mode, monitor):
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', received {mode!r}")
    return (lambda new, best, delta: new < best - delta) if mode == "min" else \
        (lambda new, best, delta: new > best + delta)


def _monitored(logs, monitor, who):
    if monitor not in (logs or {}):
        raise ValueError(f"{who}: monitor={monitor!r} is not in the logs; available: {sorted(logs or {})}")
    return logs[monitor]


class EarlyStopping(Callback):
    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        self.monitor = monitor
        self.min_delta = abs(arguments.real(min_delta, "EarlyStopping", "min_delta"))
        self.patience = arguments.count(patience, "EarlyStopping", "patience")
        self.verbose, self.baseline = verbose, baseline
        self.start_from_epoch = arguments.count(start_from_epoch, "EarlyStopping", "start_from_epoch")
        self.better = _improvement(mode, monitor)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights, self.stopped_epoch = 0, self.baseline, None, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self.best is None or self.better(value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping")
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (``model.save``) to ``filepath`` (may hold ``{epoch:02d}`` and
    log keys) after each epoch, or only when ``monitor`` improved."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch"):
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive number of batches, "
                             f"received {save_freq!r}")
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
        self.better = _improvement(mode, monitor)
        self.verbose, self.save_weights_only, self.save_freq = verbose, save_weights_only, save_freq
        self.best, self.batches_seen, self.epoch = None, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        """With ``save_freq=N``: save every N batches (Keras's counting, across epochs)."""
        self.batches_seen += 1
        if self.save_freq != "epoch" and self.batches_seen % self.save_freq == 0:
            self._save(self.epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _save(self, epoch, logs):
        path = self.filepath.format(epoch=epoch + 1, **(logs or {}))
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if self.best is not None and not self.better(value, self.best, 0.0):
                return
            self.best = value
        (self.model.save_weights if self.save_weights_only else self.model.save)(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class LearningRateScheduler(Callback):
    """Sets ``optimizer.learning_rate = schedule(epoch, lr)`` at the start of each epoch."""

    def __init__(self, schedule, verbose=0):
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = arguments.positive(self.schedule(epoch, self.model.optimizer.learning_rate),
                                "LearningRateScheduler", f"the schedule's learning rate for epoch {epoch}")
        self.model.optimizer.learning_rate = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")


class CSVLogger(Callback):
    """Appends one row per epoch (``epoch`` then the sorted log keys) to a CSV file."""

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.separator, self.append = str(filename), separator, append

    def on_train_begin(self, logs=None):
        self.keys = None
        if not self.append and os.path.exists(self.filename):
            os.remove(self.filename)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        new_file = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0
        self.keys = self.keys or sorted(logs)
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if new_file:
                writer.writerow(["epoch", *self.keys])
            writer.writerow([epoch, *(float(np.asarray(logs.get(k, float("nan")))) for k in self.keys)])
