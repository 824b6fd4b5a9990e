"""Layers that join several tensors of a functional model: the elementwise ones (Add for a residual
connection, Subtract, Multiply, Average, Maximum, Minimum), Concatenate (branches side by side) and
Dot; and Keras's functions of the same names (layers.add([a, b]), layers.concatenate(...)), which
make the layer and call it, on KerasTensors or on arrays."""
import numpy as np

from minicnn import backend, gpu
from minicnn.gpu import array_module
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable


class Merge(Layer):
    """A layer of several inputs: forward([x1, x2, ...]) -> y; backward(dy) -> [dx1, dx2, ...]."""

    def ensure_built(self, input_shapes):
        """Build for a list of input shapes (None, ...); check them if already built."""
        shapes = [(None, *s[1:]) for s in input_shapes]
        if len(shapes) < 2:
            raise ValueError(f"layer {self.name!r} joins at least 2 inputs, got {len(shapes)}")
        if not self.built:
            self.build(shapes)
        elif shapes != self.input_shape:
            raise ValueError(f"layer {self.name!r} was built for inputs of shapes {self.input_shape}, got {shapes}")
        return self.compute_output_shape(shapes)

    def build(self, input_shapes):
        self.compute_output_shape(input_shapes)  # a clear error now

    def forward(self, xs, training=False):
        xs = [x if gpu.is_device_array(x) else np.asarray(x, dtype=self.dtype) for x in xs]
        self.ensure_built([x.shape for x in xs])
        return self.call(xs, training)


class Elementwise(Merge):
    """A merge applied value by value. As in Keras, the inputs' shapes may differ where one has an
    axis of size 1 (broadcast), and an input of lower rank gets its missing axes of size 1 after
    the batch axis: (N, C) with (N, H, W, C) reads as (N, 1, 1, C). Backward sums each input's
    gradient back over the axes it was broadcast along."""

    verb = "joins"  # for the error message: "adds", "multiplies"...

    def compute_output_shape(self, input_shapes):
        rank = max(len(s) for s in input_shapes)
        out = [1] * (rank - 1)
        for shape in input_shapes:
            for i, d in enumerate((1,) * (rank - len(shape)) + tuple(shape[1:])):
                if d != 1 and out[i] not in (1, d):
                    raise ValueError(f"layer {self.name!r} {self.verb} inputs of one shape (or axes of size 1, "
                                     f"broadcast as Keras does), got {input_shapes}")
                out[i] = max(out[i], d)
        return (None, *out)

    def call(self, xs, training=False):
        rank = max(x.ndim for x in xs)
        expanded = [x.reshape(x.shape[0], *(1,) * (rank - x.ndim), *x.shape[1:]) for x in xs]
        y, saved = self.merge(expanded)
        if training:
            self._cache = ([x.shape for x in xs], saved)
        return y

    def backward(self, dy):
        shapes, saved = self._saved()
        return [unbroadcast(dx, shape) for dx, shape in zip(self.merge_backward(dy, saved, len(shapes)), shapes)]

    def merge(self, xs):
        """xs (of one rank) -> (y, what merge_backward needs)."""
        raise NotImplementedError

    def merge_backward(self, dy, saved, n):
        """dy -> the n inputs' gradients, each of dy's shape or one that broadcasts to it."""
        raise NotImplementedError


def unbroadcast(dx, shape):
    """Sum dx: (N, ...) back to an input of `shape` that was broadcast to dx's shape."""
    extra = dx.ndim - len(shape)
    padded = (shape[0], *(1,) * extra, *shape[1:])
    axes = tuple(i for i, (d, g) in enumerate(zip(padded, dx.shape)) if d == 1 and g != 1)
    if axes:
        dx = dx.sum(axis=axes, keepdims=True)
    return dx.reshape(shape)


@register_serializable()
class Add(Elementwise):
    """y = x1 + x2 + ...  Backward: every input gets dy (the sum's gradient is 1).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    verb = "adds"

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y, None

    def merge_backward(self, dy, saved, n):
        return [dy] * n


@register_serializable()
class Subtract(Elementwise):
    """y = x1 - x2, exactly two inputs. Backward: dx1 = dy, dx2 = -dy.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    verb = "subtracts"

    def build(self, input_shapes):
        if len(input_shapes) != 2:
            raise ValueError(f"layer {self.name!r} subtracts exactly 2 inputs, got {len(input_shapes)}")
        super().build(input_shapes)

    def merge(self, xs):
        return xs[0] - xs[1], None

    def merge_backward(self, dy, saved, n):
        return [dy, -dy]


@register_serializable()
class Multiply(Elementwise):
    """y = x1 * x2 * ...  Backward: dx_k = dy times the product of the other inputs.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    verb = "multiplies"

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y, xs

    def merge_backward(self, dy, xs, n):
        grads = []
        for k in range(n):
            g = dy
            for j, x in enumerate(xs):
                if j != k:
                    g = g * x  # the product of the others, never y / x_k (x_k may be 0)
            grads.append(g)
        return grads


@register_serializable()
class Average(Elementwise):
    """y = (x1 + x2 + ... + xn) / n.  Backward: every input gets dy / n.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    verb = "averages"

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y / self.dtype.type(len(xs)), None

    def merge_backward(self, dy, saved, n):
        return [dy / self.dtype.type(n)] * n


@register_serializable()
class Maximum(Elementwise):
    """y = the largest of x1, x2, ... value by value. Backward: dy goes to the input that held the
    maximum; on a tie, to the first such input, as TensorFlow's gradient of Keras's chain
    maximum(maximum(x1, x2), x3) sends it (tf.maximum's gradient goes to x where x >= y).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    verb = "takes the maximum of"
    pick = "argmax"

    def merge(self, xs):
        xp = array_module(xs[0])
        stacked = xp.stack(xp.broadcast_arrays(*xs))
        winner = getattr(stacked, self.pick)(axis=0)  # the first extreme on ties
        return xp.take_along_axis(stacked, winner[None], axis=0)[0], winner

    def merge_backward(self, dy, winner, n):
        xp = array_module(dy)
        return [xp.where(winner == k, dy, 0) for k in range(n)]


@register_serializable()
class Minimum(Maximum):
    """y = the smallest of x1, x2, ... value by value. Backward: dy goes to the first input that
    held the minimum (TensorFlow's tf.minimum gradient goes to x where x <= y).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    verb = "takes the minimum of"
    pick = "argmin"


@register_serializable()
class Concatenate(Merge):
    """y = the inputs side by side along `axis` (default -1: the channels). Backward: dy cut back
    into the inputs' pieces.

    Args:
        axis (int): the axis the inputs are put side by side on. Defaults to -1.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def compute_output_shape(self, input_shapes):
        rank = len(input_shapes[0])
        axis = self.axis % rank
        if axis == 0 or any(len(s) != rank or [d for i, d in enumerate(s) if i != axis]
                            != [d for i, d in enumerate(input_shapes[0]) if i != axis] for s in input_shapes):
            raise ValueError(f"layer {self.name!r} cannot concatenate inputs of shapes {input_shapes} on axis "
                             f"{self.axis}: every other axis must match")
        out = list(input_shapes[0])
        out[axis] = sum(s[axis] for s in input_shapes)
        return tuple(out)

    def call(self, xs, training=False):
        if training:
            self._cache = [x.shape[self.axis] for x in xs]
        return gpu.array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, dy):
        cuts = np.cumsum(self._saved())[:-1]
        return gpu.array_module(dy).split(dy, cuts.tolist(), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@register_serializable()
class Dot(Merge):
    """The dot product of two inputs along one axis of each, sample by sample (Keras's batch_dot).

    x1: (N, ..., D at axes[0], ...), x2: (N, ..., D at axes[1], ...) -> y: (N, x1's other axes,
    x2's other axes), or (N, 1) when nothing else is left: y = sum_d x1[n, .., d, ..] x2[n, .., d, ..].
    axes: one int for both inputs, or a pair; never 0, the batch axis. normalize=True divides each
    input by its L2 norm along that axis first (y is then the cosine of the two), the norm kept
    at least backend.epsilon() as Keras does. Backward: each input's gradient is dy contracted
    with the other input; through the normalization, dx = (dn - n sum(dn n)) / norm.

    Args:
        axes (int | tuple): the summed axis of both inputs, or (axis of x1, axis of x2); never 0.
        normalize (bool): L2-normalize each input along its axis first (y is a cosine). Defaults to False.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(isinstance(a, int) for a in axes):
                raise ValueError(f"axes must be an int or a pair of ints, got {axes!r}")
            axes = [int(a) for a in axes]
        elif not isinstance(axes, int) or isinstance(axes, bool):
            raise TypeError(f"axes must be an int or a pair of ints, got {axes!r}")
        self.axes, self.normalize = axes, bool(normalize)

    def pair_of_axes(self, ranks):
        axes = self.axes if isinstance(self.axes, list) else [self.axes, self.axes]
        return [a % r if a < 0 else a for a, r in zip(axes, ranks)]

    def compute_output_shape(self, input_shapes):
        if len(input_shapes) != 2:
            raise ValueError(f"layer {self.name!r} takes exactly 2 inputs, got {len(input_shapes)}")
        s1, s2 = input_shapes
        a1, a2 = self.pair_of_axes((len(s1), len(s2)))
        if len(s1) < 2 or len(s2) < 2 or not (0 < a1 < len(s1) and 0 < a2 < len(s2)) or s1[a1] != s2[a2]:
            raise ValueError(f"layer {self.name!r} cannot take the dot product of inputs of shapes {s1} and {s2} "
                             f"along axes {self.axes}: the two axes must exist, not be 0 (the batch), and match")
        out = [d for i, d in enumerate(s1[1:], 1) if i != a1] + [d for i, d in enumerate(s2[1:], 1) if i != a2]
        return (None, *out) if out else (None, 1)

    def specs(self, ranks):
        """einsum subscripts for x1, x2 and y: the batch 'a', the summed axis 'z'."""
        a1, a2 = self.pair_of_axes(ranks)
        letters = iter("bcdefghijklmnopqrstuvwxy")
        s1 = ["a"] + ["z" if i == a1 else next(letters) for i in range(1, ranks[0])]
        s2 = ["a"] + ["z" if i == a2 else next(letters) for i in range(1, ranks[1])]
        out = ["a"] + [c for c in s1[1:] if c != "z"] + [c for c in s2[1:] if c != "z"]
        return "".join(s1), "".join(s2), "".join(out)

    def call(self, xs, training=False):
        x1, x2 = xs
        xp = array_module(x1)
        s1, s2, out = self.specs((x1.ndim, x2.ndim))
        a1, a2 = self.pair_of_axes((x1.ndim, x2.ndim))
        norms = None
        if self.normalize:
            norms = [inverse_norm(x, a) for x, a in ((x1, a1), (x2, a2))]
            x1, x2 = x1 * norms[0][0], x2 * norms[1][0]
        y = xp.einsum(f"{s1},{s2}->{out}", x1, x2)
        if training:
            self._cache = (x1, x2, norms, (a1, a2))
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def backward(self, dy):
        n1, n2, norms, axes = self._saved()
        xp = array_module(dy)
        s1, s2, out = self.specs((n1.ndim, n2.ndim))
        dy = dy.reshape(dy.shape[0]) if len(out) == 1 else dy
        dn1 = xp.einsum(f"{out},{s2}->{s1}", dy, n2)
        dn2 = xp.einsum(f"{out},{s1}->{s2}", dy, n1)
        if not self.normalize:
            return [dn1, dn2]
        return [normalize_backward(dn, n, norm, a) for dn, n, norm, a in zip((dn1, dn2), (n1, n2), norms, axes)]

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def inverse_norm(x, axis):
    """(1 / max(||x||, eps) along axis, keepdims; whether the floor eps applied): Keras's
    normalize, x * min(rsqrt(sum x^2), 1 / eps), eps = backend.epsilon()."""
    xp = array_module(x)
    eps = x.dtype.type(backend.epsilon())
    squares = (x * x).sum(axis=axis, keepdims=True)
    return 1 / xp.sqrt(xp.maximum(squares, eps * eps)), squares < eps * eps


def normalize_backward(dn, n, norm, axis):
    """Gradient of n = x / ||x|| along axis: (dn - n sum(dn n)) / ||x||; where the norm was held at
    eps, n = x / eps is linear in x and dx = dn / eps."""
    inv, floored = norm
    xp = array_module(dn)
    return inv * (dn - xp.where(floored, 0, n * (dn * n).sum(axis=axis, keepdims=True)))


# -- Keras's functional forms: make the layer, call it on the inputs (KerasTensors or arrays) ------------
def add(inputs, **kwargs):
    """Add(**kwargs)(inputs): the sum of the inputs."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Subtract(**kwargs)(inputs): inputs[0] - inputs[1]."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Multiply(**kwargs)(inputs): the product of the inputs."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Average(**kwargs)(inputs): the mean of the inputs."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Maximum(**kwargs)(inputs): the largest input, value by value."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Minimum(**kwargs)(inputs): the smallest input, value by value."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Concatenate(axis, **kwargs)(inputs): the inputs side by side along axis."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Dot(axes, normalize, **kwargs)(inputs): the two inputs' dot product along axes."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
