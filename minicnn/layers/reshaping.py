"""UpSampling2D: maps made larger by a whole factor, each pixel repeated ("nearest") or the pixels
blended with their neighbours ("bilinear", TensorFlow's resize, which Keras calls)."""
import numpy as np

from minicnn.gpu import array_module
from minicnn.layers.base import Layer, pair
from minicnn.registry import register_serializable

INTERPOLATIONS = ("nearest", "bilinear")


def bilinear_matrix(size, factor, dtype):
    """(size * factor, size): row i holds what output i takes from each input pixel along one axis.

    TensorFlow's bilinear resize with half-pixel centres: output i reads the input at
    v = (i + 0.5) / factor - 0.5, i.e. lerp = v - floor(v) of pixel floor(v) + 1 and 1 - lerp of
    pixel floor(v), both clamped into [0, size - 1] (the edge pixels repeat outwards).
    """
    out = np.arange(size * factor)
    v = (out + 0.5) / factor - 0.5
    lerp = v - np.floor(v)
    M = np.zeros((size * factor, size))
    np.add.at(M, (out, np.clip(np.floor(v), 0, size - 1).astype(int)), 1 - lerp)  # add: at the edges both
    np.add.at(M, (out, np.clip(np.floor(v) + 1, 0, size - 1).astype(int)), lerp)  # reads are one pixel
    return M.astype(dtype)


@register_serializable()
class UpSampling2D(Layer):
    """x: (N, H, W, C) -> y: (N, H * SH, W * SW, C), size=(SH, SW) (Keras's default 2 x 2).

    "nearest": y[n, i, j] = x[n, i // SH, j // SW]; backward: dx sums dy over each SH x SW block.
    "bilinear": y = Mh x Mw^T on each map (bilinear_matrix, one matrix per axis); it is linear in
    x, so backward applies the transposed matrices: dx = Mh^T dy Mw.

    Args:
        size (int | tuple): (SH, SW), the factors for rows and columns, or one int for both.
            Defaults to (2, 2).
        data_format (str | None): only "channels_last" (or None). Defaults to None.
        interpolation (str): "nearest" or "bilinear". Defaults to "nearest".

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = pair(size, "size")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"minicnn is channels-last: data_format must be 'channels_last', got {data_format!r}")
        if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.interpolation = interpolation.lower()

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer {self.name!r} expects inputs of shape (N, H, W, C), got {input_shape}")
        return (None, input_shape[1] * self.size[0], input_shape[2] * self.size[1], input_shape[3])

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # a clear error now
        if self.interpolation == "bilinear":
            self.matrices = (bilinear_matrix(input_shape[1], self.size[0], self.dtype),
                             bilinear_matrix(input_shape[2], self.size[1], self.dtype))

    def call(self, x, training=False):
        if training:
            self._cache = True
        SH, SW = self.size
        if self.interpolation == "nearest":
            return x.repeat(SH, axis=1).repeat(SW, axis=2)
        xp = array_module(x)
        Mh, Mw = (xp.asarray(M) for M in self.matrices)
        return xp.einsum("jw,niwc->nijc", Mw, xp.einsum("ih,nhwc->niwc", Mh, x))

    def backward(self, dy):
        """dy: (N, H * SH, W * SW, C) -> dx: (N, H, W, C)."""
        self._saved()
        SH, SW = self.size
        N, OH, OW, C = dy.shape
        if self.interpolation == "nearest":
            return dy.reshape(N, OH // SH, SH, OW // SW, SW, C).sum(axis=(2, 4))
        xp = array_module(dy)
        Mh, Mw = (xp.asarray(M) for M in self.matrices)
        return xp.einsum("ih,niwc->nhwc", Mh, xp.einsum("jw,nijc->niwc", Mw, dy))

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "interpolation": self.interpolation}
