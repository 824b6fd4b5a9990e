"""Conv2DTranspose: Keras's transposed convolution, written as Conv2D run backwards.

A Conv2D with kernel W: (KH, KW, F, C) maps maps of F channels to maps of C channels; its input
gradient maps (N, H, W, C) back to (N, OH, OW, F). Conv2DTranspose is that input gradient used
as a layer, so its three passes are the three passes of Conv2D, swapped:

    forward:   y  = Conv2D's dx   of x  (conv2d_input_gradient: col2im of x @ W^T)
    backward:  dx = Conv2D's y    of dy (conv2d_forward)
               dW = Conv2D's dW   with dy as its input and x as its gradient (conv2d_backward)
"""
from minicnn import backend
from minicnn.layers.base import Layer, pair
from minicnn.layers.conv import set_conv_arguments
from minicnn.layers.windows import output_size_and_pads
from minicnn.registry import register_serializable


def transposed_length(size, k, s, padding, output_padding):
    """The output length along one axis, as Keras computes it (compute_conv_transpose_output_shape):
    "valid": (size - 1) s + k + output_padding, output_padding None meaning max(k, s) - k;
    "same":  size s when output_padding is None, else (size - 1) s + k % 2 + output_padding."""
    if padding == "valid":
        return (size - 1) * s + k + (max(k, s) - k if output_padding is None else output_padding)
    return size * s if output_padding is None else (size - 1) * s + k % 2 + output_padding


@register_serializable()
class Conv2DTranspose(Layer):
    """Transposed 2-D convolution, channels-last, with Keras's arguments and defaults.

    x: (N, H, W, C) -> y: (N, OH, OW, F), kernel W: (KH, KW, F, C) (Keras's order: filters
    before input channels, the kernel of the Conv2D that maps y's shape back to x's), bias b: (F,).
    OH = (H - 1) SH + KH with padding="valid" and strides <= kernel_size, H SH with "same";
    output_padding (each < its stride) adds rows and columns at the bottom and right.

    Args:
        filters (int): F, the number of output channels.
        kernel_size (int | tuple): (KH, KW), or one int for both.
        strides (int | tuple): the step between the kernel's stamps on the output. Defaults to (1, 1).
        padding (str): "valid" or "same" (OH = H * SH), as Keras. Defaults to "valid".
        output_padding (int | tuple | None): extra rows and columns at the bottom and right, each
            less than its stride; None lets Keras's formula choose. Defaults to None.
        data_format (str | None): only "channels_last" (or None). Defaults to None.
        dilation_rate (int | tuple): only 1. Defaults to (1, 1).
        activation (str | callable | None): applied to the output. Defaults to None (linear).
        use_bias (bool): add the bias b. Defaults to True.
        kernel_initializer (str | callable): W's initializer. Defaults to "glorot_uniform".
        bias_initializer (str | callable): b's initializer. Defaults to "zeros".
        kernel_regularizer (str | Regularizer | None): a penalty on W in the loss. Defaults to None.
        bias_regularizer (str | Regularizer | None): a penalty on b in the loss. Defaults to None.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        set_conv_arguments(self, filters, kernel_size, strides, padding, data_format, activation, use_bias,
                           kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer)
        if pair(dilation_rate, "dilation_rate") != (1, 1):
            raise NotImplementedError(f"Conv2DTranspose supports dilation_rate=1 only, got {dilation_rate!r}")
        self.output_padding = None
        if output_padding is not None:
            op = (output_padding, output_padding) if isinstance(output_padding, int) else tuple(output_padding)
            if len(op) != 2 or any(not isinstance(p, int) or p < 0 for p in op):
                raise ValueError(f"output_padding must be an int or a pair of ints >= 0, got {output_padding!r}")
            if any(p >= s for p, s in zip(op, self.strides)):
                raise ValueError(f"output_padding must be strictly less than strides, got output_padding="
                                 f"{output_padding!r} and strides={self.strides}")
            self.output_padding = op

    def plan(self, input_shape):
        """(OH, OW, pads): the output size, and the padding of the Conv2D that reads the output
        (N, OH, OW, F) and gives back (N, H, W, C), TensorFlow's split for self.padding."""
        if len(input_shape) != 4:
            raise ValueError(f"layer {self.name!r} expects inputs of shape (N, H, W, C), got {input_shape}")
        sizes, pads = [], []
        for axis in (0, 1):
            size, k, s = input_shape[1 + axis], self.kernel_size[axis], self.strides[axis]
            op = None if self.output_padding is None else self.output_padding[axis]
            out = transposed_length(size, k, s, self.padding, op)
            back, pad = output_size_and_pads(out, k, s, self.padding)
            if back != size:  # TensorFlow refuses these too: no Conv2D maps out back to size
                raise ValueError(f"layer {self.name!r}: with padding={self.padding!r}, kernel_size={k}, strides={s} "
                                 f"and output_padding={op}, an input of length {size} gives {out}, which a "
                                 f"convolution maps back to {back}, not {size}: choose another output_padding")
            sizes.append(out)
            pads.extend(pad)
        return sizes[0], sizes[1], tuple(pads)

    def build(self, input_shape):
        *_, self.pads = self.plan(input_shape)
        KH, KW = self.kernel_size
        C, F = input_shape[3], self.filters
        # Keras's fans for the kernel shape (KH, KW, F, C): fan_in = KH KW F, fan_out = KH KW C
        self.add_param("W", self.kernel_initializer((KH, KW, F, C), self.dtype, KH * KW * F, KH * KW * C))
        if self.use_bias:
            self.add_param("b", self.bias_initializer((F,), self.dtype, KH * KW * F, KH * KW * C))

    def compute_output_shape(self, input_shape):
        OH, OW, _ = self.plan(input_shape)
        return (None, OH, OW, self.filters)

    def count_macs(self, input_shape):
        KH, KW = self.kernel_size
        return input_shape[1] * input_shape[2] * KH * KW * input_shape[3] * self.filters

    def call(self, x, training=False):
        _, OH, OW, F = self.compute_output_shape(self.input_shape)
        ypad_shape = (x.shape[0], OH + self.pads[0] + self.pads[1], OW + self.pads[2] + self.pads[3], F)
        y = backend.kernels_for(x).conv2d_input_gradient(x, self.params["W"], ypad_shape, self.strides, self.pads)
        if self.use_bias:
            y += self.params["b"]
        if training:
            self._cache = x
        if self.activation is not None:
            y = self.activation.forward(y, training)
        return y

    def backward(self, dy):
        """dy: (N, OH, OW, F) -> dx: (N, H, W, C) (None when input_grad is off).

        dx[n, i, j, c] = sum_{kh, kw, f} dypad[n, i*SH + kh, j*SW + kw, f] * W[kh, kw, f, c]  (Conv2D's forward)
        dW[kh, kw, f, c] = sum_{n, i, j} dypad[n, i*SH + kh, j*SW + kw, f] * x[n, i, j, c]   (Conv2D's dW)
        db[f] = sum_{n, i, j} dy[n, i, j, f]
        """
        x = self._saved()
        if self.activation is not None:
            dy = self.activation.backward(dy)
        kernels = backend.kernels_for(dy)
        dx, ctx = kernels.conv2d_forward(dy, self.params["W"], None, self.strides, self.pads)
        _, self.grads["W"], _ = kernels.conv2d_backward(x, ctx, self.params["W"], need_dx=False)
        if self.use_bias:
            self.grads["b"] = dy.sum(axis=(0, 1, 2))
        return dx if self.input_grad else None

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "output_padding": None if self.output_padding is None else list(self.output_padding),
                "use_bias": self.use_bias, "activation": self.activation.activation if self.activation else None,
                **self.regularizer_config()}
