"""The execution plan: Conv2D -> ReLU -> MaxPooling2D run as one step, when the kernels fuse them.

This is not a layer you add, and it changes no layer: it is how Sequential runs them. Sequential looks for the three layers in a row (or a Conv2D
with activation="relu" followed by MaxPooling2D) and, when the backend has a fused kernel
(`kernels.speeds_up("conv_relu_pool_forward")`: Numba), runs them as one step: for small windows the (N, OH, OW, F)
conv and ReLU maps, the largest arrays of the tutorial model, are never written to memory;
for all, only the conv outputs that a pooling window reads are computed, and ReLU, pooling
and their backward take one pass instead of four. The three layers keep their params and grads;
the math is the composition (see reference.conv_relu_pool_forward), and the tests hold the
fused step to the layer-by-layer one. model.trace always runs layer by layer, to show each.
"""
from minicnn import backend
from minicnn.layers import Activation, Conv2D, MaxPooling2D


def _is_relu(layer):
    return isinstance(layer, Activation) and layer.activation == "relu" and not layer.options


def match(layers, i, kernels):
    """How many layers from layers[i] one ConvReLUPool can run (3 or 2), or 0."""
    conv = layers[i]
    if not (isinstance(conv, Conv2D) and conv.built and conv.strides == (1, 1) and conv.dilation_rate == (1, 1)
            and kernels.speeds_up("conv_relu_pool_forward")):  # the reference runs layer by layer, to be read
        return 0
    if conv.activation is None and i + 2 < len(layers) and _is_relu(layers[i + 1]):
        pool, n = layers[i + 2], 3
    elif conv.activation is not None and _is_relu(conv.activation) and i + 1 < len(layers):
        pool, n = layers[i + 1], 2
    else:
        return 0
    P = pool.pool_size[0] if isinstance(pool, MaxPooling2D) else None
    if P is None or pool.pool_size != (P, P) or pool.strides != (P, P) or pool.padding != "valid":
        return 0
    return n


class ConvReLUPool:
    """One step of a model: conv -> relu -> pool. x: (N, H, W, C) -> y: (N, PH, PW, F).
    Its forward and backward have the layer protocol's signatures; the gradients land in the
    conv layer's grads, as if the three layers had run one by one."""

    def __init__(self, layers):
        self.layers = layers
        self.conv, self.pool = layers[0], layers[-1]
        self._cache = None

    def forward(self, x, training=False):
        conv = self.conv
        x = conv.as_input(x)
        kernels = backend.kernels_for(x)
        y, ctx = kernels.conv_relu_pool_forward(x, conv.params["W"], conv.params.get("b"), self.pool.pool_size[0],
                                                conv.pads)
        for layer in self.layers:
            layer.forget()  # they did not run: their own backward must not use an older forward's cache
        self._cache = (kernels, ctx) if training else None
        return y

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("call forward(x, training=True) before backward(dy)")
        kernels, ctx = self._cache
        conv = self.conv
        dx, dW, db = kernels.conv_relu_pool_backward(dy, ctx, conv.params["W"], conv.input_grad)
        conv.grads["W"] = dW
        if conv.use_bias:
            conv.grads["b"] = db
        return dx


def plan(layers, kernels):
    """The steps a model runs for layers with these kernels: each a layer, or a ConvReLUPool of several."""
    steps, i = [], 0
    while i < len(layers):
        n = match(layers, i, kernels)
        steps.append(ConvReLUPool(layers[i:i + n]) if n else layers[i])
        i += n or 1
    return steps
