"""What ``fit``/``evaluate``/``predict`` accept as data, made into batches, as Keras 3 does.

* arrays (``x``, ``y``, sample weights), or lists / dicts of them for several inputs or
  outputs: ``ArrayBatches``;
* a Sequence (``len(seq)`` batches, ``seq[i] -> (x, y, w)``, ``(x, y)`` or ``x``), e.g.
  ``ImageDataGenerator.flow`` / ``flow_from_directory``: ``SequenceBatches``;
* a Python generator or iterator yielding ``(x, y, w)``, ``(x, y)`` or ``x``:
  ``GeneratorBatches``; it may be endless (Keras's iterators loop forever), so ``steps``
  says how many batches make an epoch — without it the generator is read until it stops.

Every source hands out batches ``(x, y, w)``; ``w`` is None (every weight 1) or the
sample weights.  A ``class_weight`` given with a Sequence or generator weighs each batch
that comes without weights (``sample_weights.py``).

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

    def __init__(self, x, y, batch_size, shuffle, move=take, w=None):
        self.x, self.y, self.w, self.batch_size, self.shuffle, self.move = x, y, w, batch_size, shuffle, move
        self.order = None                   # a permutation, drawn each epoch when shuffling

    def __len__(self):
        return math.ceil(sample_count(self.x) / self.batch_size)

    def on_epoch_begin(self):
        if self.shuffle:
            self.order = global_generator().permutation(sample_count(self.x))

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        idx = self.order[rows] if self.shuffle else rows      # unshuffled: views, no copies
        return tuple(None if data is None else self.move(data, idx) for data in (self.x, self.y, self.w))


class SequenceBatches:
    """Batches from a Keras-Sequence-like object (``len`` + ``[i] -> (x, y)``), e.g.
    ``ImageDataGenerator.flow``; ``steps`` limits the batches per epoch."""

    def __init__(self, data, steps=None, move=lambda a: a, weigh=None):
        self.data, self.steps, self.move, self.weigh = data, steps or len(data), move, weigh

    def __len__(self):
        return self.steps

    def on_epoch_begin(self):
        pass

    def __getitem__(self, i):
        batch = self.data[i % len(self.data)]
        if i % len(self.data) == len(self.data) - 1 and hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()
        return split_batch(batch, self.move, self.weigh)


def is_sequence(x) -> bool:
    return not isinstance(x, (np.ndarray, list, tuple, dict)) and not backend.is_gpu_array(x) \
        and hasattr(x, "__getitem__") \
        and hasattr(x, "__len__")


def is_generator(x) -> bool:
    return hasattr(x, "__next__") and not hasattr(x, "__getitem__")


def split_batch(batch, move, weigh=None):
    """(x, y, w) moved to the model's device, from a batch given as (x, y, sample_weight),
    (x, y) or x alone; ``weigh(y)`` gives the weights of a batch that has none."""
    if isinstance(batch, tuple) and len(batch) > 3:
        raise ValueError(f"a batch must be x, (x, y) or (x, y, sample_weight), received a tuple of {len(batch)}")
    x, y, w = (*batch, None, None)[:3] if isinstance(batch, tuple) else (batch, None, None)
    if weigh is not None and y is not None:
        if w is not None:
            raise ValueError("class_weight and sample_weight cannot be given at the same time (Keras): "
                             "the batches already carry sample weights")
        w = weigh(y)
    return move(x), move(y), (None if w is None else move(w))


class GeneratorBatches:
    """Batches drawn from a generator: ``steps`` per epoch, the generator never restarted."""

    def __init__(self, generator, steps=None, move=lambda a: a, weigh=None):
        self.generator, self.move, self.weigh = generator, move, weigh
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
        return split_batch(batch, self.move, self.weigh)


def make_batches(data, steps, move, weigh=None):
    """Batches for a Sequence or a generator (arrays are ``ArrayBatches``)."""
    if is_generator(data):
        return GeneratorBatches(data, steps, move, weigh)
    return SequenceBatches(data, steps, move, weigh)


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


def split_for_validation(x, y, w, validation_split):
    """(x_train, y_train, w_train, (x_val, y_val, w_val)): Keras takes the last
    ``validation_split`` of the samples (and of their weights), before any shuffling; both
    parts must keep at least one sample."""
    n = sample_count(x)
    split = int(math.floor(n * (1.0 - validation_split)))
    if split == 0 or split == n:
        raise ValueError(f"fit: validation_split={validation_split!r} of {n} samples leaves {split} for "
                         f"training and {n - split} for validation; each needs at least one")
    train, val = slice(None, split), slice(split, None)
    parts = [(None, None) if data is None else (take(data, train), take(data, val)) for data in (x, y, w)]
    return (*(first for first, _ in parts), tuple(second for _, second in parts))


def validation_triple(validation_data):
    """``(x_val, y_val, w_val)`` from fit's ``validation_data``: ``(x_val, y_val)`` or
    ``(x_val, y_val, sample_weight)`` (a tuple or list), ``w_val`` None for the first."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        described = (f"a {type(validation_data).__name__} of length {len(validation_data)}"
                     if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
        raise ValueError(f"fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), "
                         f"received {described}")
    return (*validation_data, None)[:3]
