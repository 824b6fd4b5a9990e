"""Layers without weights: Activation (and its ReLU, Softmax shorthands), Flatten, Reshape and
Rescaling."""
import warnings

import numpy as np

from minicnn import activations, backend
from minicnn.kernels import reference
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable

# Activations with kernels in the contract (a compiled twin on Numba) run through the backend.
KERNELS = {"relu": ("relu_forward", "relu_backward")}


@register_serializable()
class Activation(Layer):
    """Apply an activation elementwise (softmax: over the last axis). x: (N, ...) -> y: same shape.

    Args:
        activation (str | callable): a name ("relu", "softmax", "sigmoid", "tanh", "linear", "elu",
            "selu", "gelu", "swish"/"silu", "softplus", "leaky_relu") or one of
            minicnn.activations' functions.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.name_of(activation)
        self._fn, self._grad = activations.get(self.activation)
        self.options = {}  # the function's arguments (ELU's alpha, Softmax's axis...)
        self._from_input = self.activation in activations.FROM_INPUT  # backward needs x rather than y

    def call(self, x, training=False):
        compiled = self.activation in KERNELS and not self.options
        y = getattr(backend.kernels_for(x), KERNELS[self.activation][0])(x) if compiled else self._fn(x, **self.options)
        if training:
            self._cache = x if self._from_input else y
        return y

    def backward(self, dy):
        saved = self._saved()
        if self.activation in KERNELS and not self.options:
            return getattr(backend.kernels_for(saved), KERNELS[self.activation][1])(saved, dy)
        return self._grad(saved, dy, **self.options)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class _NamedActivation(Activation):
    """An Activation whose class names the function (ReLU, Softmax...): its config holds the
    function's arguments, not the name."""

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return {**config, **self.options}


@register_serializable()
class ReLU(_NamedActivation):
    """max(x, 0), or with Keras's options: negative_slope * (x - threshold) below threshold,
    capped at max_value. x: (N, ...) -> y: same shape.

    Args:
        max_value (float | None): the cap. Defaults to None (no cap).
        negative_slope (float): the slope below threshold. Defaults to 0.0.
        threshold (float): where the slope changes. Defaults to 0.0.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__("relu", **kwargs)
        if max_value is not None and max_value < 0 or negative_slope < 0:
            raise ValueError(f"max_value and negative_slope must be >= 0, got {max_value!r}, {negative_slope!r}")
        if max_value is not None or negative_slope or threshold:
            self.options = {"max_value": max_value, "negative_slope": float(negative_slope),
                             "threshold": float(threshold)}
            self._grad, self._from_input = activations.relu_options_backward, True


@register_serializable()
class LeakyReLU(_NamedActivation):
    """x where x > 0, negative_slope * x elsewhere (Keras's default slope 0.3).

    Args:
        negative_slope (float): the slope for x <= 0. Defaults to 0.3.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name, which Keras 3 still takes, with this warning
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
        super().__init__("leaky_relu", **kwargs)
        self.options = {"negative_slope": float(negative_slope)}


@register_serializable()
class ELU(_NamedActivation):
    """x where x > 0, alpha (exp(x) - 1) elsewhere.

    Args:
        alpha (float): the scale of the negative part. Defaults to 1.0.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__("elu", **kwargs)
        self.options = {"alpha": float(alpha)}


@register_serializable()
class Softmax(_NamedActivation):
    """Softmax over `axis` (the last by default). x: (N, ..., K) -> y: same shape, summing to 1 over axis.

    Args:
        axis (int): the axis that sums to 1. Defaults to -1.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__("softmax", **kwargs)
        if axis != -1:
            self.options = {"axis": int(axis)}

    def get_config(self):
        return {**super().get_config(), "axis": self.options.get("axis", -1)}


@register_serializable()
class Flatten(Layer):
    """x: (N, H, W, C) -> y: (N, H*W*C), in (H, W, C) order as Keras flattens channels-last.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

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
    of target_shape may be -1, inferred.

    Args:
        target_shape (tuple): the shape of each sample, without the batch axis.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

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
    """y = x * scale + offset (e.g. Rescaling(1 / 255) for pixels). x: (N, ...) -> y: same.

    Args:
        scale (float): the factor.
        offset (float): added after scaling. Defaults to 0.0.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def call(self, x, training=False):
        return x * self.dtype.type(self.scale) + self.dtype.type(self.offset)

    def backward(self, dy):
        return dy * self.dtype.type(self.scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@register_serializable()
class ZeroPadding2D(Layer):
    """Zeros around the maps, as Keras: padding=p (p rows and columns on every side), (ph, pw)
    (ph rows top and bottom, pw columns left and right) or ((top, bottom), (left, right)).
    x: (N, H, W, C) -> y: (N, H + top + bottom, W + left + right, C); backward crops dy.

    Args:
        padding (int | tuple): p, (ph, pw) or ((top, bottom), (left, right)). Defaults to (1, 1).
        data_format (str | None): only "channels_last" (or None). Defaults to None.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"minicnn is channels-last: data_format must be 'channels_last', got {data_format!r}")
        try:
            if isinstance(padding, int):
                padding = ((padding, padding), (padding, padding))
            elif all(isinstance(p, int) for p in padding):
                padding = ((padding[0], padding[0]), (padding[1], padding[1]))
            (top, bottom), (left, right) = ((int(a), int(b)) for a, b in padding)
        except (TypeError, ValueError):
            raise ValueError(f"padding must be an int, (ph, pw) or ((top, bottom), (left, right)), got {padding!r}") from None
        if min(top, bottom, left, right) < 0:
            raise ValueError(f"padding must not be negative, got {padding!r}")
        self.pads = (top, bottom, left, right)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer {self.name!r} expects inputs of shape (N, H, W, C), got {input_shape}")
        top, bottom, left, right = self.pads
        return (None, input_shape[1] + top + bottom, input_shape[2] + left + right, input_shape[3])

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call(self, x, training=False):
        if training:
            self._cache = True
        return reference.pad_nhwc(x, self.pads)

    def backward(self, dy):
        self._saved()
        return reference.unpad_nhwc(dy, self.pads)

    def get_config(self):
        top, bottom, left, right = self.pads
        return {**super().get_config(), "padding": [[top, bottom], [left, right]]}
