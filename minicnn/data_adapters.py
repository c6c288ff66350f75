"""What ``fit``/``evaluate``/``predict`` accept as data, made into batches, as Keras 3 does.

* arrays (``x``, ``y``), or lists / dicts of them for several inputs or outputs:
  ``ArrayBatches``;
* a Sequence (``len(seq)`` batches, ``seq[i] -> (x, y)`` or ``x``), e.g.
  ``ImageDataGenerator.flow`` / ``flow_from_directory``: ``SequenceBatches``;
* a Python generator or iterator yielding ``(x, y)`` (or ``x``): ``GeneratorBatches``; it
  may be endless (Keras's iterators loop forever), so ``steps`` says how many batches
  make an epoch — without it the generator is read until it stops.

Inputs are given what Keras gives them (``standardize_x``): integer images become
``floatx`` (the values kept: 0..255 stays 0..255) and an array whose rank differs from
the model input's by a trailing axis of size 1 gets it added or dropped.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from .graph import flatten
from .seeding import global_generator


def take(data, rows):
    """``data[rows]`` for an array, or for each array of a list or dict of them."""
    if isinstance(data, dict):
        return {k: v[rows] for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [v[rows] for v in data]
    return data[rows]


def sample_count(data) -> int:
    return len(flatten(data)[0])


class ArrayBatches:
    """Mini-batches of in-memory arrays (or lists/dicts of them, for several inputs or
    outputs), reshuffled every epoch when ``shuffle``."""

    def __init__(self, x, y, batch_size, shuffle, move=take):
        self.x, self.y, self.batch_size, self.shuffle, self.move = x, y, batch_size, shuffle, move
        self.order = None                   # a permutation, drawn each epoch when shuffling

    def __len__(self):
        return math.ceil(sample_count(self.x) / self.batch_size)

    def on_epoch_begin(self):
        if self.shuffle:
            self.order = global_generator().permutation(sample_count(self.x))

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        idx = self.order[rows] if self.shuffle else rows      # unshuffled: views, no copies
        return self.move(self.x, idx), (None if self.y is None else self.move(self.y, idx))   # move gathers


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
    return not isinstance(x, (np.ndarray, list, tuple, dict)) and not backend.is_gpu_array(x) \
        and hasattr(x, "__getitem__") \
        and hasattr(x, "__len__")


def is_generator(x) -> bool:
    return hasattr(x, "__next__") and not hasattr(x, "__getitem__")


def split_batch(batch):
    """(x, y) from a batch given as (x, y), (x, y, sample_weight) or x alone."""
    if isinstance(batch, tuple):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


class GeneratorBatches:
    """Batches drawn from a generator: ``steps`` per epoch, the generator never restarted."""

    def __init__(self, generator, steps=None, move=lambda a: a):
        self.generator, self.move = generator, move
        if steps is None:                      # a finite generator: read it once, keep its batches
            self.cached = list(generator)
            if not self.cached:
                raise ValueError("fit: the generator yielded no batches")
            steps = len(self.cached)
        else:
            self.cached = None
        self.steps = steps

    def __len__(self):
        return self.steps

    def on_epoch_begin(self):
        pass

    def __getitem__(self, i):
        if self.cached is not None:
            batch = self.cached[i]
        else:
            try:
                batch = next(self.generator)
            except StopIteration:
                raise ValueError(f"fit: the generator stopped after {i} batches of an epoch of {self.steps} "
                                 f"(steps_per_epoch / validation_steps)") from None
        x, y = split_batch(batch)
        return self.move(x), self.move(y)


def make_batches(data, steps, move):
    """Batches for a Sequence or a generator (arrays are ``ArrayBatches``)."""
    if is_generator(data):
        return GeneratorBatches(data, steps, move)
    return SequenceBatches(data, steps, move)


def is_batch_source(x) -> bool:
    return is_generator(x) or is_sequence(x) and not isinstance(x, (list, tuple, dict))


def standardize_x(model, x):
    """``x`` as Keras hands it to the model: ints cast to floatx, a trailing axis of 1
    added or dropped to match the input's rank."""
    if isinstance(x, (list, tuple, dict)) or not hasattr(x, "dtype"):
        return x
    xp = backend.get_array_module(x)
    if x.dtype.kind in "iub":
        x = x.astype(backend.floatx())
    rank = len(model.inputs[0].shape) if getattr(model, "built", False) and getattr(model, "inputs", None) else None
    if rank is not None and x.ndim == rank + 1 and x.shape[-1] == 1:
        x = x[..., 0]
    elif rank is not None and x.ndim == rank - 1 and model.inputs[0].shape[-1] == 1:
        x = xp.expand_dims(x, -1)
    return x
