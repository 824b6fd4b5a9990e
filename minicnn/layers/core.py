"""Layers without weights: Activation (and its ReLU, Softmax shorthands) and Flatten."""
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

    get_config = ReLU.get_config


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
