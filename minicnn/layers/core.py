"""Layers without weights: Activation (and its ReLU, Softmax shorthands), Flatten, Reshape and
Rescaling."""
import numpy as np

from minicnn import activations, backend
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable

# Activations with kernels in the contract (a compiled twin on Numba) run through the backend.
KERNELS = {"relu": ("relu_forward", "relu_backward")}


@register_serializable()
class Activation(Layer):
    """Apply an activation elementwise (softmax: over the last axis).

    activation: "relu", "softmax", "sigmoid", "tanh" or "linear".
    x: (N, ...) -> y: same shape.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self._fn, self._grad = activations.get(activation)

    def call(self, x, training=False):
        if self.activation in KERNELS:
            y = getattr(backend.kernels_for(x), KERNELS[self.activation][0])(x)
        else:
            y = self._fn(x)
        if training:
            self._cache = y  # every derivative here is written in terms of the output
        return y

    def backward(self, dy):
        y = self._saved()
        if self.activation in KERNELS:
            return getattr(backend.kernels_for(y), KERNELS[self.activation][1])(y, dy)
        return self._grad(y, dy)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


@register_serializable()
class ReLU(Activation):
    """max(x, 0). x: (N, ...) -> y: same shape."""

    def __init__(self, **kwargs):
        super().__init__("relu", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


@register_serializable()
class Softmax(Activation):
    """Softmax over the last axis. x: (N, K) -> y: (N, K), rows sum to 1."""

    def __init__(self, **kwargs):
        super().__init__("softmax", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


@register_serializable()
class Flatten(Layer):
    """x: (N, H, W, C) -> y: (N, H*W*C), in (H, W, C) order as Keras flattens channels-last."""

    def compute_output_shape(self, input_shape):
        return (None, int(np.prod(input_shape[1:])))

    def call(self, x, training=False):
        if training:
            self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._saved())


@register_serializable()
class Reshape(Layer):
    """x: (N, ...) -> y: (N, *target_shape), the values in the same (row-major) order; one entry
    of target_shape may be -1, inferred."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape[1:]))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(shape)) != size or self.target_shape.count(-1) > 1:
            raise ValueError(f"layer {self.name!r} cannot reshape inputs of shape {input_shape} to "
                             f"{self.target_shape}: {size} values per sample")
        return (None, *shape)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # a clear error now

    def call(self, x, training=False):
        if training:
            self._cache = x.shape
        return x.reshape(x.shape[0], *self.compute_output_shape(self.input_shape)[1:])

    def backward(self, dy):
        return dy.reshape(self._saved())

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


@register_serializable()
class Rescaling(Layer):
    """y = x * scale + offset (e.g. Rescaling(1 / 255) for pixels). x: (N, ...) -> y: same."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def call(self, x, training=False):
        return x * self.dtype.type(self.scale) + self.dtype.type(self.offset)

    def backward(self, dy):
        return dy * self.dtype.type(self.scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
