"""The model summary table (Keras's columns), with optional teaching columns.

With ``details=True`` each row also shows, for conv and pool layers:

* the padding as (top, bottom, left, right) — where TensorFlow's 'same' puts the odd pixel;
* the receptive field ``r`` and effective stride ``j`` of one output pixel in the input:
  ``r_out = r_in + (k − 1)·j_in``, ``j_out = j_in · s`` (per axis);
* the im2col matrix size for ``batch_size`` images: ``n·oh·ow × kh·kw·c`` elements;
* the bytes its workspace holds now (im2col columns, reused outputs and gradients,
  ``kernels/workspace.py``: zero before the first forward), and their total;

and, for any model, each convolution's algorithm for its forward, ∂L/∂X and ∂L/∂W, as the
layer decided it for its last input (``layer.algorithm``, ``kernels/conv_plan.py``).
"""
from __future__ import annotations

import numpy as np


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def layer_details(model, batch_size=32):
    """Per layer: dict(padding, receptive_field, effective_stride, im2col_bytes)."""
    rows, shape = [], model.input_shape
    field, jump = np.array([1, 1]), np.array([1, 1])
    for layer in model.layers:
        row = {"padding": "", "im2col_bytes": 0}
        window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        if window is not None and shape[1] is not None:
            from .kernels.geometry import window_geometry
            oh, ow, pads = window_geometry(shape[1], shape[2], window, layer.strides, layer.padding, layer.name)
            row["padding"] = str(pads)
            field = field + (np.array(window) - 1) * jump
            jump = jump * np.array(layer.strides)
            if hasattr(layer, "kernel_size"):
                itemsize = np.dtype(layer.dtype or "float32").itemsize
                row["im2col_bytes"] = batch_size * oh * ow * window[0] * window[1] * shape[3] * itemsize
        row["receptive_field"] = f"{field[0]}x{field[1]}"
        row["effective_stride"] = f"{jump[0]}x{jump[1]}"
        rows.append(row)
        shape = layer.compute_output_shape(shape)
    return rows


def connected_to(model, layer) -> str:
    """Keras's "Connected to" cell: ``name[node][output]`` of each input of the layer's call
    in this model."""
    from .plan import nodes_for
    mine = {id(n) for n in nodes_for(model.outputs, model.inputs)}
    node = next((n for n in layer.inbound_nodes if id(n) in mine), None)
    if node is None or not node.inputs:
        return "-"
    return ", ".join(f"{t.node.layer.name}[{t.node.layer.inbound_nodes.index(t.node)}][{t.index}]"
                     for t in node.inputs)


def _shape_cell(shape) -> str:
    return _shape(shape) if isinstance(shape, tuple) else ", ".join(_shape(s) for s in shape)


def is_chain(model) -> bool:
    from .sequential import Sequential
    return isinstance(model, Sequential)


def summary_table(model, details=False, batch_size=32) -> str:
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built: give an Input or input_shape, or call it on data")
    header = ["Layer (type)", "Output Shape", "Param #"]
    rows = [[f"{layer.name} ({type(layer).__name__})", _shape_cell(layer.output_shape), f"{layer.count_params():,}"]
            for layer in model.layers]
    if not is_chain(model):
        header.append("Connected to")
        for row, layer in zip(rows, model.layers):
            row.append(connected_to(model, layer))
    elif details:
        header += ["Padding (t,b,l,r)", "Receptive field", "Eff. stride", f"im2col (batch {batch_size})",
                   "Workspace held"]
        for row, d, layer in zip(rows, layer_details(model, batch_size), model.layers):
            row += [d["padding"], d["receptive_field"], d["effective_stride"],
                    _fmt_bytes(d["im2col_bytes"]) if d["im2col_bytes"] else "",
                    _fmt_bytes(layer.workspace.nbytes) if layer.workspace.nbytes else ""]
    widths = [max(len(r[i]) for r in [header] + rows) + 2 for i in range(len(header))]

    def line(cells):  # "Param #" right-aligned, as Keras
        return "│" + "│".join(f" {c:>{w - 2}} " if i == 2 else f" {c:<{w - 2}} "
                              for i, (c, w) in enumerate(zip(cells, widths))) + "│"

    def rule(left, middle, right):
        return left + middle.join("─" * w for w in widths) + right

    total = model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # Keras 3 counts the optimizer's variables once it has made them (at the first step):
    # the step counter, the learning rate and each slot; "Total" includes them.
    slots = getattr(getattr(model, "optimizer", None), "slots", None) or {}
    optimizer = 2 + sum(int(np.prod(v.shape)) for state in slots.values() for v in state.values()) if slots else 0
    itemsize = 4
    out = [f'Model: "{model.name}"', rule("┌", "┬", "┐"), line(header), rule("├", "┼", "┤")]
    out += [line(r) for r in rows]
    out += [rule("└", "┴", "┘"),
            f" Total params: {total + optimizer:,} ({_fmt_bytes((total + optimizer) * itemsize)})",
            f" Trainable params: {trainable:,} ({_fmt_bytes(trainable * itemsize)})",
            f" Non-trainable params: {total - trainable:,} ({_fmt_bytes((total - trainable) * itemsize)})"]
    if optimizer:
        out.append(f" Optimizer params: {optimizer:,} ({_fmt_bytes(optimizer * itemsize)})")
    if details:
        workspace = sum(layer.workspace.nbytes for layer in model.flat_layers())
        out.append(f" Workspace held now (im2col columns, reused outputs and gradients): {_fmt_bytes(workspace)}")
        out.append(f" Plan ({model.plan().kernels} kernels): " + " -> ".join(model.plan().describe()))
        out += [f" Algorithm of {layer.name}: " + (layer.algorithm.describe() if layer.algorithm else "not run yet")
                for layer in model.flat_layers() if hasattr(layer, "plan_for")]
    return "\n".join(out)
