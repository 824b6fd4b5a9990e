"""minicnn.tf's functions of tensors: TensorFlow's names and arguments over minicnn's
differentiable operations. tf.reduce_mean(x, axis, keepdims) is ops.mean(x, axis, keepdims),
and so on, so that a loss written with them inside a GradientTape gets its gradient.

convert_to_tensor turns a Python number or list into an array with TensorFlow's dtype rules
(float32, int32); an array, a recorded one included, goes to the operation as it is
(converting it would cut it from the tape).
"""
import numpy as np

from minicnn import ops
from minicnn.utils import Tensor


def _tensor(a):
    """a as a Tensor view (no copy); a NumPy scalar becomes a 0-d array."""
    return np.asarray(a).view(Tensor)


def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None):
    """value as a Tensor with TensorFlow's dtype rules: an array keeps its dtype; Python floats
    become float32 and Python ints int32 (NumPy would make them float64 and int64)."""
    if dtype is not None:
        return _tensor(np.asarray(value, dtype=dtype))
    if isinstance(value, (np.ndarray, np.generic)):
        return _tensor(value)
    a = np.asarray(value)
    if a.dtype == np.float64:
        a = a.astype(dtype_hint or np.float32)
    elif a.dtype == np.int64:
        a = a.astype(dtype_hint or np.int32)
    return _tensor(a)


def _in(x):
    return x if isinstance(x, np.ndarray) else convert_to_tensor(x)


def _axis(axis):
    """TensorFlow takes an axis as an int, a list or a 1-d tensor; the ops take an int or a tuple."""
    if axis is None or isinstance(axis, (int, np.integer)):
        return axis
    axis = np.asarray(axis)
    return int(axis) if axis.ndim == 0 else tuple(int(a) for a in axis)


# -- reductions, elementwise, joins -----------------------------------------------------------------
def _integers(x):
    return x.dtype.kind in "iu"


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None):
    """The mean over axis (all axes by default); of integers, an integer rounded toward zero, as
    TensorFlow gives it."""
    x = _in(input_tensor)
    if _integers(x):  # no gradient to keep: NumPy's mean would be a float
        total = np.sum(x, axis=_axis(axis), keepdims=keepdims, dtype=np.int64)
        return ops.convert_to_tensor(np.fix(total / (x.size // max(total.size, 1) or 1)), dtype=x.dtype)
    return ops.mean(x, axis=_axis(axis), keepdims=keepdims)


def reduce_sum(input_tensor, axis=None, keepdims=False, name=None):
    """The sum over axis (all axes by default), in the input's dtype (NumPy would widen integers)."""
    x = _in(input_tensor)
    if _integers(x):
        return ops.convert_to_tensor(np.sum(x, axis=_axis(axis), keepdims=keepdims, dtype=x.dtype))
    return ops.sum(x, axis=_axis(axis), keepdims=keepdims)


def reduce_max(input_tensor, axis=None, keepdims=False, name=None):
    """The largest value over axis (all axes by default)."""
    return ops.max(_in(input_tensor), axis=_axis(axis), keepdims=keepdims)


def square(x, name=None):
    return ops.square(_in(x))


def sqrt(x, name=None):
    return ops.sqrt(_in(x))


def exp(x, name=None):
    return ops.exp(_in(x))


def log(x, name=None):
    return ops.log(_in(x))


def abs(x, name=None):
    return ops.abs(_in(x))


def reduce_min(input_tensor, axis=None, keepdims=False, name=None):
    """The smallest value over axis (all axes by default)."""
    return ops.min(_in(input_tensor), axis=_axis(axis), keepdims=keepdims)


def tanh(x, name=None):
    return ops.tanh(_in(x))


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    """t held between the two bounds; the gradient passes where t is inside them."""
    return ops.clip(_in(t), clip_value_min, clip_value_max)


def where(condition, x=None, y=None, name=None):
    """x where condition holds, else y (both broadcast); with neither, the indices (N, ndim) of
    the true elements, int64, as TensorFlow gives them."""
    if x is None and y is None:
        return ops.convert_to_tensor(np.argwhere(np.asarray(condition)), dtype=np.int64)
    return ops.where(np.asarray(condition), _in(x), _in(y))


def maximum(x, y, name=None):
    return ops.maximum(_in(x), _in(y))


def minimum(x, y, name=None):
    return ops.minimum(_in(x), _in(y))


def matmul(a, b, name=None):
    return ops.matmul(_in(a), _in(b))


def transpose(a, perm=None, name=None):
    """a with its axes in the order perm (reversed by default)."""
    return ops.transpose(_in(a), None if perm is None else tuple(int(p) for p in perm))


def squeeze(input, axis=None, name=None):
    """input without its axes of length 1 (or only those in axis)."""
    return ops.squeeze(_in(input), _axis(axis))


def concat(values, axis, name=None):
    """The arrays joined along an existing axis."""
    return ops.concatenate([_in(v) for v in values], axis=int(axis))


def stack(values, axis=0, name=None):
    """The arrays stacked along a new axis."""
    return ops.stack([_in(v) for v in values], axis=int(axis))


def ones_like(input, dtype=None, name=None):
    return ops.ones_like(_in(input), dtype=dtype)


def zeros_like(input, dtype=None, name=None):
    return ops.zeros_like(_in(input), dtype=dtype)


def cast(x, dtype, name=None):
    """x converted to dtype; floats become integers by truncation toward zero, as TensorFlow does.
    Differentiable from float to float (an integer result is a constant)."""
    x = _in(x)
    if np.issubdtype(np.dtype(dtype), np.floating) and np.issubdtype(x.dtype, np.floating):
        return ops.cast(x, dtype)
    return ops.convert_to_tensor(x, dtype=dtype)


def reshape(tensor, shape, name=None):
    """tensor with a new shape (-1 once for "the rest")."""
    return ops.reshape(_in(tensor), tuple(np.asarray(shape).reshape(-1).tolist()))


def expand_dims(input, axis, name=None):
    """input with a new axis of length 1 at position axis."""
    return ops.expand_dims(_in(input), int(axis))


def equal(x, y, name=None):
    """x == y elementwise, as booleans (no gradient: a comparison has none)."""
    return ops.convert_to_tensor(np.equal(np.asarray(_in(x)), np.asarray(_in(y))))


# -- tf.nn ------------------------------------------------------------------------------------------------
def relu(features, name=None):
    return ops.relu(_in(features))


def sigmoid(x, name=None):
    return ops.sigmoid(_in(x))


def leaky_relu(features, alpha=0.2, name=None):
    return ops.leaky_relu(_in(features), negative_slope=alpha)


def log_softmax(logits, axis=None, name=None):
    return ops.log_softmax(_in(logits), axis=-1 if axis is None else int(axis))


def softmax(logits, axis=None, name=None):
    """e^x / sum(e^x) over axis (the last by default)."""
    return ops.softmax(_in(logits), axis=-1 if axis is None else int(axis))


def sparse_softmax_cross_entropy_with_logits(labels, logits, name=None):
    """-log softmax(logits)[label] for each row: labels (N,) integers, logits (N, K) -> (N,).
    Keyword arguments only, as TensorFlow requires."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    logits = _in(logits)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels of shape {labels.shape} do not match logits of shape {logits.shape}: "
                         "labels must have the shape of logits without its last axis")
    log_p = ops.log_softmax(logits, axis=-1)
    rows = tuple(np.indices(labels.shape))  # every position of labels, then the label's class
    return -log_p[rows + (labels,)]


# activation=tf.nn.relu in a layer runs minicnn.activations' relu and its hand-written gradient
relu.activation_name, sigmoid.activation_name, softmax.activation_name = "relu", "sigmoid", "softmax"
tanh.activation_name = "tanh"
