"""Architectures whose layers minicnn does not have (yet): importing their modules works,
building them raises a ValueError that lists the missing layer classes."""
from __future__ import annotations

from .. import layers


def unavailable(architecture: str, needed: tuple):
    """A builder with Keras's name that raises, naming the layers minicnn lacks."""
    def build(*args, **kwargs):
        missing = [name for name in needed if not hasattr(layers, name)]
        if missing:
            raise ValueError(f"{architecture} cannot be built in minicnn: it needs the layers {missing}, which "
                             f"minicnn.layers does not have (it has {sorted(layers.__all__)})")
        raise ValueError(f"{architecture}: its layers {list(needed)} exist in minicnn.layers, but the "
                         f"{architecture} builder is not written yet")
    build.__name__ = build.__qualname__ = architecture
    return build
