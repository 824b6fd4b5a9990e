"""Dropout: randomly zeroes inputs while training, so that no unit can rely on another."""
import numpy as np

from minicnn import gpu
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable
from minicnn.utils import rng


@register_serializable()
class Dropout(Layer):
    """Inverted dropout, as Keras: in training, each value is kept with probability 1 - rate and
    scaled by 1 / (1 - rate), so its expectation is unchanged; at inference, y = x.

    x: (N, ...) -> y: same shape.

    Args:
        rate (float): the fraction of the inputs dropped, in [0, 1].
        noise_shape (tuple | None): the mask's shape, with None for "as x" (e.g. (None, 1, 1, None)
            drops whole channels). Defaults to None (x's shape).
        seed (int | None): draw the mask from the layer's own generator. Defaults to None: from
            minicnn's (set_random_seed).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    inference_gradient = "identity"  # y = x at inference: what a tape differentiates then

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                             f"Received: rate={rate!r}")
        self.rate, self.seed = float(rate), seed
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self._rng = None if seed is None else np.random.default_rng(seed)

    def mask(self, shape):
        """keep / (1 - rate) where a uniform draw falls below 1 - rate, else 0: (shape) in float."""
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(shape, self.noise_shape))
        keep = 1 - self.rate
        draw = (self._rng or rng()).random(shape)
        # ((draw < keep) / keep).astype(dtype) to the bit: 1 / keep rounded once to the dtype, times
        # 1 or 0; without that formula's float64 array and its cast, a pass over memory each step
        return (draw < keep).astype(self.dtype) * self.dtype.type(1 / keep if keep else 0)  # rate 1: all dropped

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        if self.rate == 1:
            mask = gpu.array_module(x).zeros((1,) * x.ndim, dtype=x.dtype)
        else:
            mask = gpu.as_like(self.mask(x.shape), x)
        self._cache = mask
        return x * mask

    def backward(self, dy):
        """dx = dy * mask: the kept values pass their gradient, scaled as they were."""
        if self._cache is None:  # forward ran in inference mode, or with rate 0: y = x
            return dy
        return dy * self._cache

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}
