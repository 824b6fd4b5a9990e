"""Differentiable operations with Keras 3's names (keras.ops), each a forward and, right under it,
its hand-written gradient: what your own layer's call, loss or training step is written with.

    from minicnn import ops
    y = ops.relu(ops.matmul(x, w) + b)
    loss = ops.mean(ops.square(y - target))

Under a GradientTape each op appends one Record: backward(dy) returns dL/d(each input) from
dL/d(output) = dy. Elsewhere an op is its NumPy forward and nothing more. NumPy's operators and
functions on recorded values (`loss + 0.01 * penalty`, `-x`, `np.exp(x)`) come here too
(apply_ufunc, apply_function); one the tape cannot differentiate is an error that names it.
"""
import builtins
import sys

import numpy as np

from minicnn import tape
from minicnn.tape import plain, record, recording
from minicnn.utils import Tensor


def _a(x):
    """x as a NumPy array (a Tracked value's view; a number as a 0-d array of its own type)."""
    return np.asarray(plain(x))


def unbroadcast(dy, x):
    """dy summed back to x's shape where x was broadcast (added leading axes, axes of size 1);
    None for a Python number (a constant)."""
    if not isinstance(x, np.ndarray):
        return None
    shape = x.shape
    if dy.shape == shape:
        return dy
    dy = dy.sum(axis=tuple(range(dy.ndim - len(shape)))) if dy.ndim > len(shape) else dy
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and dy.shape[i] != 1)
    return (dy.sum(axis=axes, keepdims=True) if axes else dy).astype(x.dtype, copy=False)


def _dtype_of(*xs):
    """The result's dtype, as NumPy gives it for arrays and Python numbers (NEP 50)."""
    return np.result_type(*[plain(x) if isinstance(x, np.ndarray) else x for x in xs])


# -- arithmetic -------------------------------------------------------------------------------
def add(x1, x2):
    """x1 + x2 (broadcast). d/dx1 = dy, d/dx2 = dy, each summed over the axes it was broadcast on."""
    return record("add", [x1, x2], _a(x1) + _a(x2), lambda dy: [unbroadcast(dy, x1), unbroadcast(dy, x2)])


def subtract(x1, x2):
    """x1 - x2. d/dx1 = dy, d/dx2 = -dy."""
    return record("subtract", [x1, x2], _a(x1) - _a(x2), lambda dy: [unbroadcast(dy, x1), unbroadcast(-dy, x2)])


def multiply(x1, x2):
    """x1 * x2. d/dx1 = dy x2, d/dx2 = dy x1."""
    a, b = _a(x1), _a(x2)
    return record("multiply", [x1, x2], a * b, lambda dy: [unbroadcast(dy * b, x1), unbroadcast(dy * a, x2)])


def divide(x1, x2):
    """x1 / x2. d/dx1 = dy / x2, d/dx2 = -dy x1 / x2^2."""
    a, b = _a(x1), _a(x2)
    return record("divide", [x1, x2], a / b, lambda dy: [unbroadcast(dy / b, x1), unbroadcast(-dy * a / (b * b), x2)])


true_divide = divide


def negative(x):
    """-x. d/dx = -dy."""
    return record("negative", [x], -_a(x), lambda dy: [-dy])


def power(x1, x2):
    """x1 ** x2. d/dx1 = dy x2 x1^(x2 - 1); d/dx2 = dy x1^x2 log(x1) (where x1 > 0, else 0)."""
    a, b = _a(x1), _a(x2)
    y = a ** b

    def backward(dy):
        da = dy * b * a ** (b - 1) if isinstance(x1, np.ndarray) else None
        db = None
        if isinstance(x2, np.ndarray):
            db = dy * y * np.log(np.where(a > 0, a, 1))
        return [unbroadcast(da, x1) if da is not None else None, unbroadcast(db, x2) if db is not None else None]
    return record("power", [x1, x2], y, backward)


def square(x):
    """x^2. d/dx = 2 x dy."""
    a = _a(x)
    return record("square", [x], a * a, lambda dy: [2 * a * dy])


def sqrt(x):
    """sqrt(x). d/dx = dy / (2 sqrt(x))."""
    y = np.sqrt(_a(x))
    return record("sqrt", [x], y, lambda dy: [dy / (2 * y)])


def exp(x):
    """e^x. d/dx = dy e^x."""
    y = np.exp(_a(x))
    return record("exp", [x], y, lambda dy: [dy * y])


def log(x):
    """ln x. d/dx = dy / x."""
    a = _a(x)
    return record("log", [x], np.log(a), lambda dy: [dy / a])


def log1p(x):
    """ln(1 + x). d/dx = dy / (1 + x)."""
    a = _a(x)
    return record("log1p", [x], np.log1p(a), lambda dy: [dy / (1 + a)])


def abs(x):
    """|x|. d/dx = dy sign(x) (0 at 0, as TensorFlow)."""
    a = _a(x)
    return record("abs", [x], np.abs(a), lambda dy: [dy * np.sign(a)])


absolute = abs


def sign(x):
    """sign(x): piecewise constant, gradient 0."""
    a = _a(x)
    return record("sign", [x], np.sign(a), lambda dy: [np.zeros_like(a)])


def maximum(x1, x2):
    """max(x1, x2) elementwise. The gradient goes to x1 where x1 >= x2, else to x2 (TensorFlow's ties)."""
    a, b = _a(x1), _a(x2)
    first = a >= b
    return record("maximum", [x1, x2], np.maximum(a, b),
                  lambda dy: [unbroadcast(dy * first, x1), unbroadcast(dy * ~first, x2)])


def minimum(x1, x2):
    """min(x1, x2) elementwise. The gradient goes to x1 where x1 <= x2, else to x2."""
    a, b = _a(x1), _a(x2)
    first = a <= b
    return record("minimum", [x1, x2], np.minimum(a, b),
                  lambda dy: [unbroadcast(dy * first, x1), unbroadcast(dy * ~first, x2)])


def clip(x, x_min, x_max):
    """x clipped to [x_min, x_max]. d/dx = dy where x_min <= x <= x_max, else 0 (tf.clip_by_value)."""
    a = _a(x)
    inside = (a >= x_min) & (a <= x_max)
    return record("clip", [x], np.clip(a, x_min, x_max).astype(a.dtype, copy=False), lambda dy: [dy * inside])


def where(condition, x1, x2):
    """x1 where condition, else x2. d/dx1 = dy where condition, d/dx2 = dy elsewhere."""
    c = _a(condition).astype(bool)
    return record("where", [condition, x1, x2], np.where(c, _a(x1), _a(x2)),
                  lambda dy: [None, unbroadcast(np.where(c, dy, 0).astype(dy.dtype), x1),
                              unbroadcast(np.where(c, 0, dy).astype(dy.dtype), x2)])


def matmul(x1, x2):
    """x1 @ x2: (..., N, K) @ (..., K, M) -> (..., N, M) (1-D operands as NumPy takes them).
    d/dx1 = dy @ x2^T, d/dx2 = x1^T @ dy (transposing the last two axes)."""
    a, b = _a(x1), _a(x2)

    def backward(dy):
        A = a[None, :] if a.ndim == 1 else a  # a vector as a one-row (or one-column) matrix
        B = b[:, None] if b.ndim == 1 else b
        D = dy.reshape(*dy.shape, 1) if b.ndim == 1 else dy
        D = D.reshape(*D.shape[:-2], 1, D.shape[-1]) if a.ndim == 1 else D
        da, db = D @ np.swapaxes(B, -1, -2), np.swapaxes(A, -1, -2) @ D
        da = da.reshape(*da.shape[:-2], da.shape[-1]) if a.ndim == 1 else da
        db = db.reshape(*db.shape[:-1]) if b.ndim == 1 else db
        return [unbroadcast(da, a), unbroadcast(db, b)]
    return record("matmul", [x1, x2], a @ b, backward)


dot = matmul


# -- reductions -------------------------------------------------------------------------------
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))


def _spread(dy, a, axes, keepdims):
    """dy of a reduction over axes, broadcast back to a's shape."""
    if not keepdims:
        dy = np.expand_dims(dy, axes)
    return np.broadcast_to(dy, a.shape)


def sum(x, axis=None, keepdims=False):
    """The sum over axis (all by default). d/dx = dy copied along the summed axes."""
    a = _a(x)
    axes = _axes(axis, a.ndim)
    return record("sum", [x], np.asarray(a.sum(axis=axes, keepdims=keepdims)),
                  lambda dy: [_spread(dy, a, axes, keepdims).astype(a.dtype)])


def mean(x, axis=None, keepdims=False):
    """The mean over axis (all by default). d/dx = dy / n copied along the n averaged values."""
    a = _a(x)
    axes = _axes(axis, a.ndim)
    n = int(np.prod([a.shape[i] for i in axes]))
    return record("mean", [x], np.asarray(a.mean(axis=axes, keepdims=keepdims)),
                  lambda dy: [(_spread(dy, a, axes, keepdims) / a.dtype.type(n)).astype(a.dtype)])


def _extreme(name, reduce, x, axis, keepdims):
    a = _a(x)
    axes = _axes(axis, a.ndim)
    y = np.asarray(reduce(a, axis=axes, keepdims=True))
    hit = a == y  # ties share the gradient equally, as TensorFlow's reduce_max
    share = hit / hit.sum(axis=axes, keepdims=True)
    out = y if keepdims else np.asarray(y.reshape([n for i, n in enumerate(y.shape) if i not in axes]))
    return record(name, [x], out, lambda dy: [(_spread(dy, a, axes, keepdims) * share).astype(a.dtype)])


def max(x, axis=None, keepdims=False):
    """The largest value over axis. d/dx = dy at the maxima (shared equally among ties), else 0."""
    return _extreme("max", np.max, x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    """The smallest value over axis. d/dx = dy at the minima (shared among ties), else 0."""
    return _extreme("min", np.min, x, axis, keepdims)


# -- shapes -----------------------------------------------------------------------------------
def reshape(x, newshape):
    """x with a new shape (same values). d/dx = dy reshaped back."""
    a = _a(x)
    return record("reshape", [x], a.reshape(newshape), lambda dy: [dy.reshape(a.shape)])


def transpose(x, axes=None):
    """x's axes permuted (reversed by default). d/dx = dy permuted back."""
    a = _a(x)
    inverse = None if axes is None else np.argsort(axes)
    return record("transpose", [x], np.transpose(a, axes), lambda dy: [np.transpose(dy, inverse)])


def expand_dims(x, axis):
    """x with a new axis of size 1. d/dx = dy without it."""
    a = _a(x)
    return record("expand_dims", [x], np.expand_dims(a, axis), lambda dy: [dy.reshape(a.shape)])


def squeeze(x, axis=None):
    """x without its axes of size 1. d/dx = dy with them."""
    a = _a(x)
    return record("squeeze", [x], np.squeeze(a, axis), lambda dy: [dy.reshape(a.shape)])


def concatenate(xs, axis=0):
    """The arrays joined along axis. Each gets back its slice of dy."""
    arrays = [_a(x) for x in xs]
    cuts = np.cumsum([a.shape[axis] for a in arrays])[:-1]
    return record("concatenate", list(xs), np.concatenate(arrays, axis=axis),
                  lambda dy: np.split(dy, cuts, axis=axis))


def stack(xs, axis=0):
    """The arrays stacked along a new axis. Each gets back its index of dy."""
    arrays = [_a(x) for x in xs]
    return record("stack", list(xs), np.stack(arrays, axis=axis),
                  lambda dy: [np.take(dy, i, axis=axis) for i in range(len(arrays))])


def getitem(x, index):
    """x[index] (slices, integers, integer or boolean arrays). d/dx = zeros with dy added back at index."""
    a = _a(x)
    index = tuple(plain(i) for i in index) if isinstance(index, tuple) else plain(index)
    if not recording():
        return a[index]  # a view where NumPy gives one, as x[index] on a plain array

    def backward(dy):
        dx = np.zeros_like(a)
        np.add.at(dx, index, dy)  # an index that repeats an element adds up
        return [dx]
    return record("getitem", [x], a[index], backward)


def cast(x, dtype):
    """x in another float dtype. d/dx = dy cast back."""
    a = _a(x)
    return record("cast", [x], a.astype(dtype), lambda dy: [dy.astype(a.dtype)])


def stop_gradient(x):
    """x, with no gradient flowing back through it."""
    return np.asarray(_a(x)).copy().view(Tensor)


def convert_to_tensor(x, dtype=None):
    """x as an array (of dtype), unrecorded: a constant."""
    return np.asarray(plain(x), dtype=dtype).view(Tensor)


def convert_to_numpy(x):
    return np.asarray(plain(x))


def ones_like(x, dtype=None):
    """Ones of x's shape: a constant (no gradient)."""
    return np.ones_like(_a(x), dtype=dtype).view(Tensor)


def zeros_like(x, dtype=None):
    """Zeros of x's shape: a constant (no gradient)."""
    return np.zeros_like(_a(x), dtype=dtype).view(Tensor)


def ones(shape, dtype="float32"):
    return np.ones(shape, dtype=dtype).view(Tensor)


def zeros(shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype).view(Tensor)


def shape(x):
    return tuple(np.shape(x))


# -- activations ------------------------------------------------------------------------------
def relu(x):
    """max(x, 0). d/dx = dy where x > 0, else 0."""
    a = _a(x)
    return record("relu", [x], np.maximum(a, 0), lambda dy: [dy * (a > 0)])


def sigmoid(x):
    """1 / (1 + e^-x), stably. d/dx = dy s (1 - s)."""
    a = _a(x)
    s = np.exp(-np.logaddexp(0, -a)).astype(a.dtype)
    return record("sigmoid", [x], s, lambda dy: [dy * s * (1 - s)])


def tanh(x):
    """tanh(x). d/dx = dy (1 - tanh(x)^2)."""
    t = np.tanh(_a(x))
    return record("tanh", [x], t, lambda dy: [dy * (1 - t * t)])


def softplus(x):
    """log(1 + e^x), stably. d/dx = dy sigmoid(x)."""
    a = _a(x)
    return record("softplus", [x], np.logaddexp(0, a).astype(a.dtype),
                  lambda dy: [dy * np.exp(-np.logaddexp(0, -a)).astype(a.dtype)])


def leaky_relu(x, negative_slope=0.2):
    """x where x > 0, negative_slope x elsewhere (Keras's default slope 0.2)."""
    a = _a(x)
    k = a.dtype.type(negative_slope)
    return record("leaky_relu", [x], np.where(a > 0, a, k * a), lambda dy: [np.where(a > 0, dy, k * dy)])


def softmax(x, axis=-1):
    """e^x / sum(e^x) over axis, stably. d/dx = s (dy - sum(dy s)) over axis."""
    a = _a(x)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return record("softmax", [x], s, lambda dy: [s * (dy - (dy * s).sum(axis=axis, keepdims=True))])


def log_softmax(x, axis=-1):
    """x - log(sum(e^x)) over axis, stably. d/dx = dy - softmax(x) sum(dy)."""
    a = _a(x)
    shifted = a - a.max(axis=axis, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return record("log_softmax", [x], y, lambda dy: [dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)])


# -- NumPy's operators and functions on recorded values ------------------------------------------
UFUNCS = {np.add: add, np.subtract: subtract, np.multiply: multiply, np.true_divide: divide,
          np.negative: negative, np.power: power, np.square: square, np.sqrt: sqrt, np.exp: exp,
          np.log: log, np.log1p: log1p, np.absolute: abs, np.maximum: maximum, np.minimum: minimum,
          np.matmul: matmul, np.tanh: tanh, np.sign: sign, np.positive: lambda x: x}

FUNCTIONS = {np.sum: sum, np.mean: mean, np.max: max, np.min: min, np.amax: max, np.amin: min,
             np.reshape: reshape, np.transpose: transpose, np.concatenate: concatenate, np.stack: stack,
             np.clip: clip, np.where: where, np.expand_dims: expand_dims, np.squeeze: squeeze,
             np.dot: matmul, np.matmul: matmul, np.square: square, np.ones_like: ones_like,
             np.zeros_like: zeros_like}


def _unwrap(args):
    return [plain(a) if not isinstance(a, (list, tuple)) else type(a)(plain(b) for b in a) for a in args]


def apply_ufunc(ufunc, method, inputs, kwargs):
    """NumPy's ufunc on Tracked values (x + y, np.exp(x)...): its op of this module when a tape
    records, plain NumPy otherwise. In place (x += 1) on a recorded value is an error."""
    out = kwargs.get("out")
    if not recording():
        if out is not None:
            kwargs["out"] = tuple(plain(o) for o in out)
            getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
            return out[0] if len(out) == 1 else out
        return getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
    if out is not None:
        raise RuntimeError(f"an in-place {ufunc.__name__} (x += ..., out=) on a value the tape recorded: the tape "
                           "would lose the value it saved; write x = x + ... instead")
    if method == "reduce" and ufunc in (np.add, np.maximum, np.minimum):
        reduce = {np.add: sum, np.maximum: max, np.minimum: min}[ufunc]
        return reduce(inputs[0], axis=kwargs.get("axis", 0), keepdims=kwargs.get("keepdims", False))
    op = UFUNCS.get(ufunc) if method == "__call__" else None
    if op is not None and not builtins.any(k not in ("dtype", "casting") for k in kwargs):
        return op(*inputs)
    result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
    if not _is_float(result):  # comparisons, isfinite...: no gradient flows through a bool
        return result
    raise NotImplementedError(f"the tape cannot differentiate numpy.{ufunc.__name__}"
                              f"{'' if method == '__call__' else '.' + method}: write it with minicnn.ops "
                              f"({', '.join(sorted(f.__name__ for f in set(UFUNCS.values()) if f.__name__ != '<lambda>'))}...)")


def apply_function(func, args, kwargs):
    """A NumPy function (np.sum, np.concatenate...) on Tracked values: its op here when a tape
    records, plain NumPy otherwise; a function with no op here is an error when its result is a
    float array that would carry the gradient."""
    if recording() and func in FUNCTIONS:
        return FUNCTIONS[func](*args, **kwargs)
    result = func(*_unwrap(args), **{k: plain(v) for k, v in kwargs.items()})
    if recording() and _is_float(result):
        raise NotImplementedError(f"the tape cannot differentiate numpy.{func.__name__}: write it with minicnn.ops "
                                  f"({', '.join(sorted({f.__name__ for f in FUNCTIONS.values()}))}...)")
    return result


def _is_float(result):
    return isinstance(result, (np.ndarray, np.floating)) and np.asarray(result).dtype.kind in "fc"


tape._ops = sys.modules[__name__]  # a Tracked value's operators and methods come here
