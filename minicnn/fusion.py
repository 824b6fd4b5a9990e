"""The execution plan: Conv2D -> ReLU -> MaxPooling2D run as one step, when the kernels fuse them;
Conv2D -> BatchNormalization -> ReLU (-> MaxPooling2D) with the normalization folded into the
convolution's weights at inference; in a graph, BatchNormalization -> Add(skip) -> ReLU, the end
of a residual block, as one pass.

This is not a layer you add, and it changes no layer: it is how Sequential runs them. Sequential looks for the three layers in a row (or a Conv2D
with activation="relu" followed by MaxPooling2D) and, when the backend has a fused kernel
(`kernels.speeds_up("conv_relu_pool_forward")`: Numba), runs them as one step: for small windows the (N, OH, OW, F)
conv and ReLU maps, the largest arrays of the tutorial model, are never written to memory;
for all, only the conv outputs that a pooling window reads are computed, and ReLU, pooling
and their backward take one pass instead of four. The three layers keep their params and grads;
the math is the composition (see reference.conv_relu_pool_forward), and the tests hold the
fused step to the layer-by-layer one. model.trace always runs layer by layer, to show each.
"""
import numpy as np

from minicnn import backend, gpu
from minicnn.kernels.derived import DerivedCache
from minicnn.layers import Activation, Add, BatchNormalization, Conv2D, MaxPooling2D
from minicnn.layers.symbolic import Node


def _is_relu(layer):
    return isinstance(layer, Activation) and layer.activation == "relu" and not layer.options


def _pool_size(layer):
    """P for a MaxPooling2D of P x P windows, stride P, "valid" (non-overlapping), else None."""
    P = layer.pool_size[0] if isinstance(layer, MaxPooling2D) else None
    if P is None or layer.pool_size != (P, P) or layer.strides != (P, P) or layer.padding != "valid":
        return None
    return P


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
    return n if _pool_size(pool) else 0


def match_bn(layers, i, kernels):
    """How many layers from layers[i] one ConvBNReLU can run (4 with a MaxPooling2D after, 3), or 0."""
    chain = layers[i:i + 4]
    if not (len(chain) >= 3 and isinstance(chain[0], Conv2D) and chain[0].built and chain[0].activation is None
            and isinstance(chain[1], BatchNormalization) and chain[1].built and _is_relu(chain[2])
            and kernels.speeds_up("conv2d_forward")):  # the reference runs layer by layer, to be read
        return 0
    return 4 if len(chain) == 4 and _pool_size(chain[3]) else 3


class FusedStep:
    """Several layers run as one step; `layers` keeps them, whose params and grads it uses."""

    def __init__(self, layers):
        self.layers = layers
        self._cache = None


class ConvReLUPool(FusedStep):
    """One step of a model: conv -> relu -> pool. x: (N, H, W, C) -> y: (N, PH, PW, F).
    Its forward and backward have the layer protocol's signatures; the gradients land in the
    conv layer's grads, as if the three layers had run one by one."""

    def __init__(self, layers):
        super().__init__(layers)
        self.conv, self.pool = layers[0], layers[-1]

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


class ConvBNReLU(FusedStep):
    """Conv2D -> BatchNormalization -> ReLU (-> MaxPooling2D). In training the convolution runs
    first (the normalization needs the batch's statistics of its output), then, with a pooling
    layer after, normalize -> ReLU -> pool as one step (bn_relu_pool_forward). At inference the
    normalization is a fixed affine map per channel, y = s z + t with s = gamma / sqrt(moving_var + eps)
    and t = beta - s moving_mean, and a convolution followed by it is one convolution:

        s (x * W + b) + t = x * (s W) + (s b + t)

    (s scales each filter's weights: W: (KH, KW, C, F) times s: (F,)). So inference runs one
    convolution with the folded weights, and with a MaxPooling2D after it, the fused
    conv -> relu -> pool kernel: the normalized maps are never made."""

    def __init__(self, layers):
        super().__init__(layers)
        self.conv, self.bn = layers[0], layers[1]
        self.pool = layers[3] if len(layers) == 4 else None
        self._folded = DerivedCache(size=1)

    def folded(self):
        """The conv's weights with the normalization folded in: W': (KH, KW, C, F), b': (F,). Kept
        from one batch to the next while the weights and statistics it comes from keep their values
        (minicnn/kernels/derived.py: they are compared, never assumed)."""
        conv, bn = self.conv, self.bn
        sources = (conv.params["W"], conv.params.get("b"), bn.params.get("gamma"), bn.params.get("beta"),
                   bn.state["moving_mean"], bn.state["moving_variance"])
        return self._folded.get((bn.epsilon, bn.scale, bn.center, conv.dilation_rate), sources, self._fold)

    def _fold(self):
        conv, bn = self.conv, self.bn
        W = conv.dilated(conv.params["W"])
        xp = gpu.array_module(W)
        s = 1 / xp.sqrt(bn.state["moving_variance"] + bn.dtype.type(bn.epsilon))
        if bn.scale:
            s = s * bn.params["gamma"]
        b = conv.params["b"] if conv.use_bias else xp.zeros_like(s)
        t = -s * bn.state["moving_mean"] + (bn.params["beta"] if bn.center else 0)
        return (W * s).astype(W.dtype), (s * b + t).astype(W.dtype)

    def forward(self, x, training=False):
        if training:  # batch statistics, or a frozen normalization whose backward needs each layer's record
            return self._train_forward(x)
        conv = self.conv
        x = conv.as_input(x)
        kernels = backend.kernels_for(x)
        W, b = self.folded()
        for layer in self.layers:
            layer.forget()
        self._cache = None
        P = self.pool.pool_size[0] if self.pool else None
        if P and conv.strides == (1, 1) and conv.dilation_rate == (1, 1) and kernels.speeds_up("conv_relu_pool_forward"):
            return kernels.conv_relu_pool_forward(x, W, b, P, conv.pads)[0]
        y = kernels.relu_forward(kernels.conv2d_forward(x, W, b, conv.strides, conv.pads)[0])
        return self.pool.forward(y) if self.pool else y

    def _train_forward(self, x):
        """The convolution, then the batch's statistics of its output z; with a MaxPooling2D after and
        a kernel that fuses them, normalize -> ReLU -> pool in one step (bn_relu_pool_forward: the
        normalized maps and their ReLU are never stored); otherwise, and for a frozen normalization
        (trainable=False: its moving statistics, as at inference), layer by layer."""
        conv, bn = self.conv, self.bn
        z = conv.forward(x, training=True)
        kernels = backend.kernels_for(z)
        if not (self.pool and bn.trainable and kernels.speeds_up("bn_relu_pool_forward")):
            for layer in self.layers[1:]:
                z = layer.forward(z, training=True)
            self._cache = ("layers",)
            return z
        z = bn.as_input(z)
        mean, var = bn.batch_statistics(z)
        y, ctx = kernels.bn_relu_pool_forward(z, bn.params.get("gamma"), bn.params.get("beta"), mean, var,
                                              bn.dtype.type(bn.epsilon), self.pool.pool_size[0])
        for layer in self.layers[1:]:
            layer.forget()  # they did not run: their own backward must not use an older forward's cache
        self._cache = ("fused", kernels, ctx)
        return y

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("call forward(x, training=True) before backward(dy)")
        if self._cache[0] == "layers":
            for layer in reversed(self.layers):
                dy = layer.backward(dy)
            return dy
        _, kernels, ctx = self._cache
        bn = self.bn
        dz, dgamma, dbeta = kernels.bn_relu_pool_backward(dy, ctx, bn.params.get("gamma"), True)
        if bn.scale:
            bn.grads["gamma"] = dgamma
        if bn.center:
            bn.grads["beta"] = dbeta
        return self.conv.backward(dz)


class BNAddReLU(FusedStep):
    """BatchNormalization -> Add(skip) -> ReLU, the end of a residual block, as one step of a graph:
    forward([z, skip]) -> y = relu(bn(z) + skip); backward(dy) -> [dz, dskip]. The normalization
    keeps its semantics (batch statistics and the moving averages' update in training, the moving
    statistics at inference or when frozen); the kernel (bn_add_relu_forward) writes only y, where
    the three layers would write the normalized maps, their sum and its ReLU."""

    def __init__(self, layers):
        super().__init__(layers)
        self.bn = layers[0]

    def forward(self, xs, training=False):
        bn = self.bn
        z = bn.as_input(xs[0])
        skip = xs[1] if gpu.is_device_array(xs[1]) else np.asarray(xs[1], dtype=bn.dtype)
        kernels = backend.kernels_for(z)
        batch_stats = bool(training and bn.trainable)
        mean, var = bn.batch_statistics(z) if batch_stats else (bn.state["moving_mean"], bn.state["moving_variance"])
        y, ctx = kernels.bn_add_relu_forward(z, skip, bn.params.get("gamma"), bn.params.get("beta"), mean, var,
                                             bn.dtype.type(bn.epsilon))
        for layer in self.layers:
            layer.forget()  # they did not run: their own backward must not use an older forward's cache
        self._cache = (kernels, ctx, batch_stats) if training else None
        return y

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("call forward(xs, training=True) before backward(dy)")
        kernels, ctx, batch_stats = self._cache
        bn = self.bn
        dz, dskip, dgamma, dbeta = kernels.bn_add_relu_backward(dy, ctx, bn.params.get("gamma"), batch_stats)
        if bn.scale:
            bn.grads["gamma"] = dgamma
        if bn.center:
            bn.grads["beta"] = dbeta
        return [dz, dskip]


def match_bn_add_relu(bn, add, relu, kernels):
    """True where the three layers can run as one BNAddReLU: a built BatchNormalization, an Add of
    two inputs of one shape (no broadcasting), a plain ReLU, one dtype, and a fused kernel."""
    return (isinstance(bn, BatchNormalization) and bn.built and isinstance(add, Add) and add.built
            and len(add.input_shape) == 2 and add.input_shape[0] == add.input_shape[1] and _is_relu(relu)
            and bn.dtype == add.dtype == relu.dtype
            and kernels.speeds_up("bn_add_relu_forward"))  # the reference runs layer by layer, to be read


def residual_ends(nodes, readers, calls, kernels):
    """The BatchNormalization -> Add -> ReLU ends of residual blocks in a graph's Nodes (topological
    order), each as {id(the Add's Node): (the fused Node, the BatchNormalization's, the ReLU's)}.
    The normalization's output and the sum must be read by the next layer alone, and each layer
    called once; the fused Node reads the normalization's input and the Add's other input, and runs
    where the Add did: both are ready there, and only the ReLU, which it replaces, read the sum.
    readers, calls: Counters of the reads of each tensor and the calls of each layer, by id."""
    producer = {id(n.output): n for n in nodes}
    reader = {id(t): n for n in nodes for t in n.inputs}
    found = {}
    for add in nodes:
        relu = reader.get(id(add.output))
        if not (add.many and len(add.inputs) == 2 and readers[id(add.output)] == 1 and relu is not None):
            continue
        for k, t in enumerate(add.inputs):
            bn = producer.get(id(t))
            if bn is not None and readers[id(t)] == 1 and all(calls[id(n.layer)] == 1 for n in (bn, add, relu)) \
                    and match_bn_add_relu(bn.layer, add.layer, relu.layer, kernels):
                step = Node(BNAddReLU([bn.layer, add.layer, relu.layer]), [bn.inputs[0], add.inputs[1 - k]], many=True)
                step.output = relu.output
                found[id(add)] = (step, bn, relu)
                break
    return found


def step_at(layers, i, kernels):
    """The fused step that runs layers[i:i + n], and n; or (None, 0) where none applies."""
    n = match(layers, i, kernels)
    if n:
        return ConvReLUPool(layers[i:i + n]), n
    n = match_bn(layers, i, kernels)
    if n:
        return ConvBNReLU(layers[i:i + n]), n
    return None, 0


def plan(layers, kernels):
    """The steps a model runs for layers with these kernels: each a layer, or a fused step of several."""
    steps, i = [], 0
    while i < len(layers):
        step, n = step_at(layers, i, kernels)
        steps.append(step or layers[i])
        i += n or 1
    return steps
