"""Layers that join several tensors of a functional model: Add (a residual connection) and
Concatenate (branches side by side)."""
import numpy as np

from minicnn import gpu
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable


class Merge(Layer):
    """A layer of several inputs: forward([x1, x2, ...]) -> y; backward(dy) -> [dx1, dx2, ...]."""

    def ensure_built(self, input_shapes):
        """Build for a list of input shapes (None, ...); check them if already built."""
        shapes = [(None, *s[1:]) for s in input_shapes]
        if len(shapes) < 2:
            raise ValueError(f"layer {self.name!r} joins at least 2 inputs, got {len(shapes)}")
        if not self.built:
            self.build(shapes)
        elif shapes != self.input_shape:
            raise ValueError(f"layer {self.name!r} was built for inputs of shapes {self.input_shape}, got {shapes}")
        return self.compute_output_shape(shapes)

    def build(self, input_shapes):
        self.compute_output_shape(input_shapes)  # a clear error now

    def forward(self, xs, training=False):
        xs = [x if gpu.is_device_array(x) else np.asarray(x, dtype=self.dtype) for x in xs]
        self.ensure_built([x.shape for x in xs])
        return self.call(xs, training)


@register_serializable()
class Add(Merge):
    """y = x1 + x2 + ..., all of one shape. Backward: every input gets dy (the sum's gradient is 1).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def compute_output_shape(self, input_shapes):
        if any(s != input_shapes[0] for s in input_shapes):
            raise ValueError(f"layer {self.name!r} adds inputs of one shape, got {input_shapes}")
        return input_shapes[0]

    def call(self, xs, training=False):
        if training:
            self._cache = len(xs)
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y

    def backward(self, dy):
        return [dy] * self._saved()


@register_serializable()
class Concatenate(Merge):
    """y = the inputs side by side along `axis` (default -1: the channels). Backward: dy cut back
    into the inputs' pieces.

    Args:
        axis (int): the axis the inputs are put side by side on. Defaults to -1.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def compute_output_shape(self, input_shapes):
        rank = len(input_shapes[0])
        axis = self.axis % rank
        if axis == 0 or any(len(s) != rank or [d for i, d in enumerate(s) if i != axis]
                            != [d for i, d in enumerate(input_shapes[0]) if i != axis] for s in input_shapes):
            raise ValueError(f"layer {self.name!r} cannot concatenate inputs of shapes {input_shapes} on axis "
                             f"{self.axis}: every other axis must match")
        out = list(input_shapes[0])
        out[axis] = sum(s[axis] for s in input_shapes)
        return tuple(out)

    def call(self, xs, training=False):
        if training:
            self._cache = [x.shape[self.axis] for x in xs]
        return gpu.array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, dy):
        cuts = np.cumsum(self._saved())[:-1]
        return gpu.array_module(dy).split(dy, cuts.tolist(), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
