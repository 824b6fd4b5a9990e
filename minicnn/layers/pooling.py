"""Pooling layers, channels-last: MaxPooling2D (each window's largest value) and
AveragePooling2D (each window's mean), with Keras's arguments: strides default to pool_size."""
from minicnn import backend
from minicnn.layers.base import Layer, pair
from minicnn.layers.windows import check_padding, spatial_plan
from minicnn.registry import register_serializable


class Pooling2D(Layer):
    """What the pooling layers share: a pool_size window sliding by strides over (N, H, W, C)
    maps, each channel on its own. Subclasses name their two kernels."""

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
    """

    kernel_names = ("maxpool_forward", "maxpool_backward")


@register_serializable()
class AveragePooling2D(Pooling2D):
    """Average pooling. x: (N, H, W, C) -> y: (N, OH, OW, C); each cell of a window gets its
    share dy / count back. With padding="same", the zeros added at the edges are not counted
    (TensorFlow's rule). The math: avgpool_forward / avgpool_backward in
    minicnn/kernels/reference.py, the loops in minicnn/kernels/naive.py.
    """

    kernel_names = ("avgpool_forward", "avgpool_backward")
