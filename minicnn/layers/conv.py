"""Conv2D: Keras's 2-D convolution layer on minicnn's own kernels."""
from minicnn import backend, gpu, initializers
from minicnn.layers.base import Layer, pair
from minicnn.layers.core import Activation
from minicnn.layers.windows import check_padding, spatial_plan
from minicnn.registry import register_serializable


def set_conv_arguments(layer, filters, kernel_size, strides, padding, data_format, activation, use_bias,
                       kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer):
    """The arguments Conv2D and Conv2DTranspose share, checked and set on layer as Keras names them."""
    if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
        raise ValueError(f"filters must be a positive int, got {filters!r}")
    layer.filters = filters
    layer.kernel_size = pair(kernel_size, "kernel_size")
    layer.strides = pair(strides, "strides")
    layer.padding = check_padding(padding)
    if data_format not in (None, "channels_last"):
        raise ValueError(f"minicnn is channels-last: data_format must be 'channels_last', got {data_format!r}")
    layer.use_bias = use_bias
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.regularize(kernel_regularizer, bias_regularizer)
    layer.activation = None if activation in (None, "linear") else Activation(activation, dtype=layer.dtype)


@register_serializable()
class Conv2D(Layer):
    """2-D convolution, channels-last, with Keras's arguments and defaults.

    x: (N, H, W, C) -> y: (N, OH, OW, F), with kernel W: (KH, KW, C, F) and bias b: (F,).
    The math, three ways: minicnn/kernels/naive.py (the textbook loops: read these first),
    minicnn/kernels/reference.py (the same as whole-array NumPy, by im2col) and its fast twins.

    Args:
        filters (int): F, the number of output channels.
        kernel_size (int | tuple): (KH, KW), or one int for both.
        strides (int | tuple): the step of the window. Defaults to (1, 1).
        padding (str): "valid" (no padding) or "same" (OH = ceil(H / stride)). Defaults to "valid".
        data_format (str | None): only "channels_last" (or None). Defaults to None.
        dilation_rate (int | tuple): the spacing of the kernel's taps. Defaults to (1, 1).
        activation (str | callable | None): applied to the output. Defaults to None (linear).
        use_bias (bool): add the bias b. Defaults to True.
        kernel_initializer (str | callable): W's initializer. Defaults to "glorot_uniform".
        bias_initializer (str | callable): b's initializer. Defaults to "zeros".
        kernel_regularizer (str | Regularizer | None): a penalty on W in the loss. Defaults to None.
        bias_regularizer (str | Regularizer | None): a penalty on b in the loss. Defaults to None.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        set_conv_arguments(self, filters, kernel_size, strides, padding, data_format, activation, use_bias,
                           kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer)
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise ValueError(f"strides > 1 do not go with dilation_rate > 1 (as in Keras): got strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")

    @property
    def window(self):
        """The window the kernel spans: (KH, KW), or with dilation d, (d (KH - 1) + 1, ...)."""
        (KH, KW), (DH, DW) = self.kernel_size, self.dilation_rate
        return DH * (KH - 1) + 1, DW * (KW - 1) + 1

    def dilated(self, W):
        """The kernel with DH - 1 rows (DW - 1 columns) of zeros between its taps: a dilated
        convolution is an ordinary one with this kernel. W: (KH, KW, C, F) -> (window, C, F)."""
        if self.dilation_rate == (1, 1):
            return W
        DH, DW = self.dilation_rate
        Wd = gpu.array_module(W).zeros((*self.window, *W.shape[2:]), dtype=W.dtype)
        Wd[::DH, ::DW] = W
        return Wd

    def build(self, input_shape):
        _, _, self.pads = spatial_plan(self, input_shape, self.window, self.strides, self.padding)
        KH, KW = self.kernel_size
        C, F = input_shape[3], self.filters
        self.add_param("W", self.kernel_initializer((KH, KW, C, F), self.dtype, KH * KW * C, KH * KW * F))
        if self.use_bias:
            self.add_param("b", self.bias_initializer((F,), self.dtype, KH * KW * C, KH * KW * F))

    def compute_output_shape(self, input_shape):
        OH, OW, _ = spatial_plan(self, input_shape, self.window, self.strides, self.padding)
        return (None, OH, OW, self.filters)

    def count_macs(self, input_shape):
        _, OH, OW, F = self.compute_output_shape(input_shape)
        KH, KW = self.kernel_size
        return OH * OW * KH * KW * input_shape[3] * F

    def call(self, x, training=False):
        y, ctx = backend.kernels_for(x).conv2d_forward(x, self.dilated(self.params["W"]), self.params.get("b"),
                                                       self.strides, self.pads)
        if training:
            self._cache = ctx
        if self.activation is not None:
            y = self.activation.forward(y, training)
        return y

    def backward(self, dy):
        """dy: (N, OH, OW, F) -> dx: (N, H, W, C) (None when input_grad is off).

        dW[kh, kw, c, f] = sum_{n, i, j} xpad[n, i*SH + kh, j*SW + kw, c] * dy[n, i, j, f]
        db[f] = sum_{n, i, j} dy[n, i, j, f];  dx is the transposed convolution of dy with W.
        """
        ctx = self._saved()
        if self.activation is not None:
            dy = self.activation.backward(dy)
        dx, dW, db = backend.kernels_for(dy).conv2d_backward(dy, ctx, self.dilated(self.params["W"]), self.input_grad)
        DH, DW = self.dilation_rate
        self.grads["W"] = dW[::DH, ::DW] if (DH, DW) != (1, 1) else dW  # only the taps are weights
        if self.use_bias:
            self.grads["b"] = db
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation_rate), "use_bias": self.use_bias,
                "activation": self.activation.activation if self.activation else None,
                **self.regularizer_config()}
