"""Symbolic tensors: what `layer(tensor)` returns while a functional model is being described.

    inputs = Input(shape=(28, 28, 1))          # a KerasTensor: shape (None, 28, 28, 1)
    x = Conv2D(32, 3)(inputs)                  # another, made by a Node: (Conv2D, [inputs])
    model = Model(inputs, outputs)             # walks the Nodes back from outputs to inputs

No data flows here: each call only builds the layer for the incoming shape and records which
tensors it read (a Node). The model later runs those Nodes in order with real arrays.
"""


class KerasTensor:
    """The shape (None, ...) and dtype of data that will flow here, and the Node that makes it."""

    def __init__(self, shape, dtype, node):
        self.shape, self.dtype, self.node = tuple(shape), dtype, node

    @property
    def layer(self):
        return self.node.layer

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype.name}, from {self.node.layer.name!r}>"


class Node:
    """One call of a layer in a graph: the tensors it read and the tensor it made."""

    def __init__(self, layer, inputs, many=False):
        self.layer, self.inputs, self.many = layer, list(inputs), many  # many: the layer takes a list
        self.output = None
        self.cache = None  # this call's saved values for backward (a layer called twice has two)


def is_symbolic(x):
    """True for a KerasTensor, or a list or tuple of them."""
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(t, KerasTensor) for t in x)
    return isinstance(x, KerasTensor)


def call_symbolic(layer, inputs):
    """layer(inputs) on KerasTensors: build the layer for their shapes, record the Node, return
    its output tensor."""
    many = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if many else [inputs]
    shape = [t.shape for t in tensors] if many else tensors[0].shape
    node = Node(layer, tensors, many)
    node.output = KerasTensor(layer.ensure_built(shape), layer.dtype, node)
    layer.nodes.append(node)
    return node.output
