"""The order of a functional model's ``layers``, as Keras computes it.

Keras lists layers by decreasing *depth* — a node's depth is one more than the deepest node
that reads its output (output nodes have depth 0; a layer called several times takes its
deepest node's) — so the inputs come first; layers of equal depth keep the order in which a
depth-first walk from the outputs (each node's inputs in order) first met them.  Keras's
legacy ``.h5`` weight files (the ImageNet weights of ``keras.applications``) list layers in
this order, and ``model.layers[i]`` means the same layer in both libraries.
"""
from __future__ import annotations


def keras_layer_order(inputs, outputs) -> list:
    given = {id(t) for t in inputs}
    first_seen, finished, postorder = {}, set(), []
    stack = [(t, False) for t in reversed(outputs)]
    while stack:
        tensor, expanded = stack.pop()
        node = tensor.node
        if expanded:
            finished.add(id(node))
            postorder.append(node)
        elif id(node) not in finished:
            if id(tensor) in given and not node.layer.is_input_layer:
                finished.add(id(node))          # an intermediate tensor given as an input: not computed
                continue
            first_seen.setdefault(id(node.layer), (len(first_seen), node.layer))
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(node.inputs))
    in_graph = {id(n) for n in postorder}
    node_depth, layer_depth = {}, {}
    for node in reversed(postorder):                      # from the outputs towards the inputs
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        node_depth[id(node)] = layer_depth[id(node.layer)] = depth
        for t in node.inputs:
            if id(t.node) in in_graph:
                node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    for t in inputs:                                      # an input no output depends on
        if id(t.node.layer) not in first_seen:
            first_seen[id(t.node.layer)] = (-1, t.node.layer)
            layer_depth[id(t.node.layer)] = 0
    ranked = sorted(first_seen.items(), key=lambda item: (-layer_depth[item[0]], item[1][0]))
    return [layer for _, (_, layer) in ranked]
