"""MaxPooling2D: the largest value of each window, channels-last."""
from minicnn import backend
from minicnn.layers.base import Layer, pair
from minicnn.layers.windows import check_padding, spatial_plan
from minicnn.registry import register_serializable


@register_serializable()
class MaxPooling2D(Layer):
    """Max pooling with Keras's arguments: strides default to pool_size.

    x: (N, H, W, C) -> y: (N, OH, OW, C). On ties the gradient goes to the first maximum of
    the window in row-major order (top-most, then left-most), like TensorFlow on the CPU.
    The math: minicnn/kernels/naive.py (the textbook loops), minicnn/kernels/reference.py
    (whole-array NumPy) and its fast twins.
    """

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
        y, ctx = backend.kernels_for(x).maxpool_forward(x, self.pool_size, self.strides, self.pads)
        if training:
            self._cache = ctx
        return y

    def backward(self, dy):
        """dy: (N, OH, OW, C) -> dx: (N, H, W, C): each dy goes to its window's maximum."""
        return backend.kernels_for(dy).maxpool_backward(dy, self._saved())

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}
