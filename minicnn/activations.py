"""Activation functions as forward/backward pairs, the readable NumPy (or CuPy) versions, with
Keras 3's names, arguments and formulas (keras/src/activations/activations.py).

Each backward takes what its forward saved and dy, and returns dx = dy * f'(x). Most
derivatives are cheap in terms of the output y (sigmoid: y (1 - y)), so the layer caches y;
those that are not (gelu, swish, softplus, and relu with its options) are written in terms of
the input x, and listed in FROM_INPUT. ReLU, which runs on the largest maps of a CNN, also has a
compiled twin: the Activation layer calls it through the backend's kernels
(minicnn.kernels.CONTRACT: relu_forward, relu_backward), and relu/relu_backward here are the
reference it is tested against.
"""
import math

from minicnn.gpu import array_module

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # Keras's constants


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """max(x, 0), elementwise, any shape (NaN stays NaN). With Keras's options: negative_slope *
    (x - threshold) below threshold, capped at max_value."""
    xp = array_module(x)
    if negative_slope == 0 and max_value is None and threshold == 0:
        return xp.maximum(x, 0)
    y = xp.where(x >= threshold, x, negative_slope * (x - threshold)).astype(x.dtype)
    return y if max_value is None else xp.minimum(y, max_value).astype(x.dtype)


def relu_backward(y, dy):
    """dx = dy where the output was positive, else 0 (the kink at 0 gets 0, as in Keras); any shape."""
    return dy * (y > 0)


def relu_options_backward(x, dy, negative_slope=0.0, max_value=None, threshold=0.0):
    """relu's gradient with its options, in terms of the input x: 1 between threshold and
    max_value, negative_slope below threshold, 0 above max_value."""
    xp = array_module(x)
    slope = xp.where(x >= threshold, 1, negative_slope)
    if max_value is not None:
        slope = xp.where(x >= max_value, 0, slope)
    return (dy * slope).astype(dy.dtype)


def leaky_relu(x, negative_slope=0.2):
    """x where x > 0, negative_slope * x elsewhere."""
    return array_module(x).where(x > 0, x, negative_slope * x).astype(x.dtype)


def leaky_relu_backward(x, dy, negative_slope=0.2):
    return array_module(x).where(x > 0, dy, negative_slope * dy).astype(dy.dtype)


def softmax(x, axis=-1):
    e = array_module(x).exp(x - x.max(axis=axis, keepdims=True))  # subtract the max: exp never overflows
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(y, dy, axis=-1):
    # Jacobian-vector product: dx_i = y_i * (dy_i - sum_j dy_j y_j)
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


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


def elu(x, alpha=1.0):
    """x where x > 0, alpha (exp(x) - 1) elsewhere."""
    xp = array_module(x)
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype)


def elu_backward(y, dy, alpha=1.0):
    """1 where y > 0; elsewhere alpha exp(x) = y + alpha (in terms of the output)."""
    return array_module(y).where(y > 0, dy, dy * (y + alpha)).astype(dy.dtype)


def selu(x):
    """scale * elu(x, alpha) with Keras's self-normalising constants."""
    return (SELU_SCALE * elu(x, SELU_ALPHA)).astype(x.dtype)


def selu_backward(y, dy):
    return array_module(y).where(y > 0, dy * SELU_SCALE, dy * (y + SELU_SCALE * SELU_ALPHA)).astype(dy.dtype)


def softplus(x):
    """log(1 + exp(x)), without overflow."""
    return array_module(x).logaddexp(0, x).astype(x.dtype)


def softplus_backward(x, dy):
    return dy * sigmoid(x)


def swish(x):
    """x * sigmoid(x) (also called silu)."""
    return x * sigmoid(x)


def swish_backward(x, dy):
    s = sigmoid(x)
    return dy * (s + x * s * (1 - s))


silu = swish  # Keras's other name for it


def _erf(x):
    """erf(x) to about 1e-7 (Numerical Recipes' erfc Chebyshev fit): NumPy has no erf."""
    xp = array_module(x)
    z = xp.abs(x)
    t = 1 / (1 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * xp.exp(poly)
    return xp.where(x >= 0, 1 - erfc, erfc - 1)


def gelu(x, approximate=False):
    """x * Phi(x), Phi the standard normal CDF: 0.5 x (1 + erf(x / sqrt(2))); approximate=True
    uses Keras's tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    xp = array_module(x)
    if approximate:
        return (0.5 * x * (1 + xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))).astype(x.dtype)
    return (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)


def gelu_backward(x, dy, approximate=False):
    xp = array_module(x)
    if approximate:
        c = math.sqrt(2 / math.pi)
        u = c * (x + 0.044715 * x ** 3)
        t = xp.tanh(u)
        return (dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))).astype(dy.dtype)
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (dy * (cdf + x * pdf)).astype(dy.dtype)


ACTIVATIONS = {
    "relu": (relu, relu_backward),
    "softmax": (softmax, softmax_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "tanh": (tanh, tanh_backward),
    "linear": (linear, linear_backward),
    "elu": (elu, elu_backward),
    "selu": (selu, selu_backward),
    "gelu": (gelu, gelu_backward),
    "swish": (swish, swish_backward),
    "silu": (swish, swish_backward),
    "softplus": (softplus, softplus_backward),
    "leaky_relu": (leaky_relu, leaky_relu_backward),
}
FROM_INPUT = {"gelu", "swish", "silu", "softplus", "leaky_relu"}  # backward takes x, not y


def get(name):
    """(forward, backward) for an activation name or one of the functions above; None means linear."""
    return ACTIVATIONS[name_of(name)]


def name_of(activation):
    """The activation's name, from a name or one of this module's functions."""
    if activation is None:
        return "linear"
    if callable(activation):
        for name, (fn, _) in ACTIVATIONS.items():
            if activation is fn:
                return name
        # A function of another module that computes one of these (minicnn.tf.nn.relu) says so,
        # and the layer runs this module's pair in its place.
        if getattr(activation, "activation_name", None) in ACTIVATIONS:
            return activation.activation_name
        raise ValueError(f"activation {activation!r} is not one of minicnn.activations' functions: "
                         "minicnn needs a hand-written gradient for every activation it trains with")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return activation
