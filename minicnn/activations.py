"""Activation functions as forward/backward pairs, the readable NumPy (or CuPy) versions.

Each backward takes the forward's output y (not its input): every activation here has a
derivative that is cheap to write in terms of y, so the layer caches one array. ReLU, which
runs on the largest maps of a CNN, also has a compiled twin: the Activation layer calls it
through the backend's kernels (minicnn.kernels.CONTRACT: relu_forward, relu_backward), and
these two functions are the reference it is tested against.
"""
from minicnn.gpu import array_module


def relu(x):
    """y = max(x, 0), elementwise, any shape (NaN stays NaN)."""
    return array_module(x).maximum(x, 0)


def relu_backward(y, dy):
    """dx = dy where the output was positive, else 0 (the kink at 0 gets 0, as in Keras); any shape."""
    return dy * (y > 0)


def softmax(x):
    e = array_module(x).exp(x - x.max(axis=-1, keepdims=True))  # subtract the max: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(y, dy):
    # Jacobian-vector product: dx_i = y_i * (dy_i - sum_j dy_j y_j)
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def sigmoid(x):
    xp = array_module(x)
    return xp.exp(-xp.logaddexp(0, -x))  # 1 / (1 + exp(-x)) without overflow


def sigmoid_backward(y, dy):
    return dy * y * (1 - y)


def tanh(x):
    return array_module(x).tanh(x)


def tanh_backward(y, dy):
    return dy * (1 - y * y)


def linear(x):
    return x


def linear_backward(y, dy):
    return dy


ACTIVATIONS = {
    "relu": (relu, relu_backward),
    "softmax": (softmax, softmax_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "tanh": (tanh, tanh_backward),
    "linear": (linear, linear_backward),
}


def get(name):
    """(forward, backward) for an activation name; None means linear."""
    name = "linear" if name is None else name
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]
