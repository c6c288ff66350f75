"""Sequential: a stack of layers, the one-chain case of a functional ``Model``.

The chain is built once the input shape is known (from an ``Input``, a first layer's
``input_shape=``, or the first data); ``model.layers`` are the stacked layers (without the
input layer, as in Keras 3).
"""
from __future__ import annotations

from .graph import is_symbolic
from .layers import Layer
from .layers.core import InputLayer
from .model import Model

class Sequential(Model):
    """A stack of layers: the graph is one chain, built once the input shape is known
    (from an ``Input``, a first layer's ``input_shape=``, or the first data)."""

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._stack: list[Layer] = []
        self._input_layer = None
        self.built = False
        self.input_shape = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        if is_symbolic(layer) and layer.node is not None and layer.node.layer.is_input_layer:
            layer = layer.node.layer                                  # Sequential([Input(shape), ...])
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(f"model {self.name!r}: Input must come first, before any layer")
            self._input_layer = layer
            self.input_shape = layer.batch_shape
            return
        if not isinstance(layer, Layer):
            raise ValueError(f"model {self.name!r}: expected a minicnn layer, received {type(layer).__name__}")
        if any(other.name == layer.name for other in self._stack):
            raise ValueError(f"model {self.name!r}: duplicate layer name {layer.name!r}")
        if not self._stack and self._input_layer is None and layer.batch_input_shape is not None:
            self.input_shape = layer.batch_input_shape
        if not self._stack and self._input_layer is None and isinstance(layer, Model) and layer.built:
            self.input_shape = layer.inputs[0].shape
        self._stack.append(layer)
        if self.built:
            self._set_graph(self.inputs[0], layer(self.outputs[0]))
        elif self.input_shape is not None:
            self.build(self.input_shape)

    def pop(self) -> Layer:
        if not self._stack:
            raise ValueError(f"model {self.name!r} has no layers to pop")
        layer = self._stack.pop()
        self.built = False
        if self._stack and self.input_shape is not None:
            self.build(self.input_shape)
        return layer

    def build(self, input_shape) -> None:
        """The chain from an input of shape ``(None, ...)`` through every layer."""
        shape = (None, *tuple(input_shape)[1:])
        if self._input_layer is None or self._input_layer.batch_shape != shape:
            self._input_layer = InputLayer(batch_shape=shape)
        self.input_shape = shape
        x = self._input_layer.output
        for layer in self._stack:
            x = layer(x)
        self._set_graph(self._input_layer.output, x)

    @property
    def layers(self) -> list:
        return list(self._stack)
