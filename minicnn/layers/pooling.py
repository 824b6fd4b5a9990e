"""Pooling layers, channels-last: MaxPooling2D (each window's largest value) and
AveragePooling2D (each window's mean), with Keras's arguments: strides default to pool_size;
GlobalAveragePooling2D and GlobalMaxPooling2D (one value per channel over the whole map)."""
from minicnn import backend, gpu
from minicnn.layers.base import Layer, pair
from minicnn.layers.windows import check_padding, spatial_plan
from minicnn.registry import register_serializable


class Pooling2D(Layer):
    """What the pooling layers share: a pool_size window sliding by strides over (N, H, W, C)
    maps, each channel on its own. Subclasses name their two kernels.

    Args:
        pool_size (int | tuple): the window (KH, KW), or one int for both. Defaults to (2, 2).
        strides (int | tuple | None): the step of the window. Defaults to None (pool_size).
        padding (str): "valid" or "same". Defaults to "valid".

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    kernel_names = None  # ("<name>_forward", "<name>_backward"), named in minicnn.kernels.CONTRACT

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = check_padding(padding)

    def build(self, input_shape):
        _, _, self.pads = spatial_plan(self, input_shape, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        OH, OW, _ = spatial_plan(self, input_shape, self.pool_size, self.strides, self.padding)
        return (None, OH, OW, input_shape[3])

    def call(self, x, training=False):
        forward = getattr(backend.kernels_for(x), self.kernel_names[0])
        y, ctx = forward(x, self.pool_size, self.strides, self.pads)
        if training:
            self._cache = ctx
        return y

    def backward(self, dy):
        """dy: (N, OH, OW, C) -> dx: (N, H, W, C)."""
        return getattr(backend.kernels_for(dy), self.kernel_names[1])(dy, self._saved())

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


@register_serializable()
class MaxPooling2D(Pooling2D):
    """Max pooling. x: (N, H, W, C) -> y: (N, OH, OW, C); each dy goes to its window's maximum.

    On ties the gradient goes to the first maximum of the window in row-major order (top-most,
    then left-most), like TensorFlow on the CPU. The math: minicnn/kernels/naive.py (the
    textbook loops), minicnn/kernels/reference.py (whole-array NumPy) and its fast twins.

    Args:
        pool_size (int | tuple): the window (KH, KW), or one int for both. Defaults to (2, 2).
        strides (int | tuple | None): the step of the window. Defaults to None (pool_size).
        padding (str): "valid" or "same". Defaults to "valid".

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    kernel_names = ("maxpool_forward", "maxpool_backward")


@register_serializable()
class AveragePooling2D(Pooling2D):
    """Average pooling. x: (N, H, W, C) -> y: (N, OH, OW, C); each cell of a window gets its
    share dy / count back. With padding="same", the zeros added at the edges are not counted
    (TensorFlow's rule). The math: avgpool_forward / avgpool_backward in
    minicnn/kernels/reference.py, the loops in minicnn/kernels/naive.py.

    Args:
        pool_size (int | tuple): the window (KH, KW), or one int for both. Defaults to (2, 2).
        strides (int | tuple | None): the step of the window. Defaults to None (pool_size).
        padding (str): "valid" or "same". Defaults to "valid".

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    kernel_names = ("avgpool_forward", "avgpool_backward")


MaxPool2D, AvgPool2D = MaxPooling2D, AveragePooling2D  # Keras's aliases


class GlobalPooling2D(Layer):
    """One value per channel over the whole (H, W) map: x: (N, H, W, C) -> y: (N, C), or
    (N, 1, 1, C) with keepdims=True.

    Args:
        data_format (str | None): only "channels_last" (or None). Defaults to None.
        keepdims (bool): keep H and W as axes of size 1. Defaults to False.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"minicnn is channels-last: data_format must be 'channels_last', got {data_format!r}")
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer {self.name!r} expects inputs of shape (N, H, W, C), got {input_shape}")

    def compute_output_shape(self, input_shape):
        return (None, 1, 1, input_shape[3]) if self.keepdims else (None, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


@register_serializable()
class GlobalAveragePooling2D(GlobalPooling2D):
    """y[n, c] = the mean of x[n, :, :, c]; each cell gets dy / (H W) back.

    Args:
        data_format (str | None): only "channels_last" (or None). Defaults to None.
        keepdims (bool): keep H and W as axes of size 1. Defaults to False.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def call(self, x, training=False):
        if training:
            self._cache = x.shape
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, dy):
        N, H, W, C = self._saved()
        share = dy.reshape(N, 1, 1, C) / (H * W)
        return gpu.array_module(dy).broadcast_to(share, (N, H, W, C)).copy()


@register_serializable()
class GlobalMaxPooling2D(GlobalPooling2D):
    """y[n, c] = the largest of x[n, :, :, c]; dy goes to that cell (the first, row-major, on ties).

    Args:
        data_format (str | None): only "channels_last" (or None). Defaults to None.
        keepdims (bool): keep H and W as axes of size 1. Defaults to False.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def call(self, x, training=False):
        N, H, W, C = x.shape
        flat = x.reshape(N, H * W, C)
        arg = flat.argmax(axis=1)  # the first maximum on ties, as MaxPooling2D
        if training:
            self._cache = (arg, x.shape)
        y = gpu.array_module(x).take_along_axis(flat, arg[:, None, :], axis=1)[:, 0, :]
        return y.reshape(N, 1, 1, C) if self.keepdims else y

    def backward(self, dy):
        arg, (N, H, W, C) = self._saved()
        xp = gpu.array_module(dy)
        dx = xp.zeros((N, H * W, C), dtype=dy.dtype)
        xp.put_along_axis(dx, arg[:, None, :], dy.reshape(N, 1, C), axis=1)
        return dx.reshape(N, H, W, C)
