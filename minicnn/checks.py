"""The checks at the public boundary: what fit, evaluate, predict and train_on_batch verify
before a batch reaches a layer, each failure a TypeError / ValueError / RuntimeError that names
the bad argument and, where one is likely, its fix. Also used by tracing, the plots and your own
loops:

    check_compiled(model, "fit")                  # RuntimeError before model.compile(...)
    x = check_x(model, x)                         # x: (N, ...) a finite NumPy array of the model's input shape
    x, y = check_data(model, x, y)                # y: (N, K) in the outputs' dtype, or (N,) labels for a sparse loss
    w = sample_weights(y, len(x), sample_weight, class_weight)   # (N,) float32 or None

Keras keeps these in its data adapters and trainer; here they are one module, apart from the
loop (minicnn/training.py), so that the loop reads as a loop.
"""
import numpy as np

from minicnn import gpu


def check_compiled(model, what):
    """A RuntimeError unless model.compile(...) has run."""
    if model.loss is None or model.optimizer is None:
        raise RuntimeError(f"call model.compile(loss=..., optimizer=...) before model.{what}()")


def check_single_io(model, what):
    """A ValueError unless model has one input and one output: what (the trace, a picture) follows
    one path; a model of several names a sub-model to use instead."""
    if model.inputs is not None and (len(model.inputs) > 1 or len(model.outputs) > 1):
        raise ValueError(f"{what} takes a model of one input and one output; this one has inputs "
                         f"{model.input_names} and outputs {model.output_names}: make a model of one path, "
                         f"e.g. Model(model.inputs[0], model.get_layer({model.output_names[0]!r}).output) "
                         "when that output reads that input alone")


def check_x(model, x):
    """x: (N, ...) as a NumPy array the model takes (building the model from its shape if it is
    not built yet), or a TypeError / ValueError that names what is wrong with x."""
    if model.inputs is not None and len(model.inputs) > 1:
        raise ValueError(f"the model has {len(model.inputs)} inputs {model.input_names}: give x as a list of "
                         f"{len(model.inputs)} arrays or a dict keyed by input name")
    x = _numeric_array(x, "x")  # data sets stay on the host; batches move to the model's device
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a batch of samples of shape (N, ...), got shape {x.shape}")
    _check_finite(x, model.layers[0].dtype if model.layers else np.dtype("float32"), "x")
    if not model.built:
        model.build(x.shape)
    expected = model.input_shape
    if x.shape[1:] != expected[1:]:
        hint = ""
        if x.ndim == len(expected) - 1 and expected[-1] == 1 and x.shape[1:] == expected[1:-1]:
            hint = f"; add the channel axis: x.reshape(-1, {', '.join(map(str, expected[1:]))})"
        raise ValueError(f"x must have shape (N, {', '.join(map(str, expected[1:]))}) to match the model's "
                         f"input, got {x.shape}{hint}")
    return x


def check_data(model, x, y):
    """(x, y) checked against each other and the compiled model: y one-hot (N, K) in the
    outputs' dtype, or integer labels (N,) for a sparse loss."""
    x = check_x(model, x)
    if model.outputs is not None and len(model.outputs) > 1:
        raise ValueError(f"fit and evaluate take a model of one output; this one has {len(model.outputs)} "
                         "(predict gives them all)")
    y = _numeric_array(y, "y")
    if y.ndim == 0 or len(y) != len(x):
        raise ValueError(f"x has {len(x)} samples but y has {len(y) if y.ndim else 'shape ()'}; they must match")
    _check_finite(y, model.layers[-1].dtype, "y")
    K = model.output_shape[-1]
    if model.loss.sparse:
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise ValueError(f"sparse_categorical_crossentropy expects integer labels of shape (N,), got {y.shape}")
        if y.dtype.kind == "f" and np.any(y != np.round(y)):
            raise ValueError("sparse_categorical_crossentropy expects integer class labels; y holds "
                             f"non-integer values such as {y[y != np.round(y)].flat[0]}")
        if y.size and (y.min() < 0 or y.max() >= K):
            raise ValueError(f"labels must be in 0..{K - 1} for a model with {K} outputs; "
                             f"got values from {y.min()} to {y.max()}")
    elif y.ndim == 1 and model.output_shape[1:] == (1,):  # one output per sample: (N,) targets, as Keras takes them
        y = y.reshape(-1, 1).astype(model.layers[-1].dtype, copy=False)
    elif y.shape[1:] != model.output_shape[1:]:
        hint = ""
        if y.ndim == 1 and model.loss.name == "categorical_crossentropy":
            hint = ("; these look like integer labels: one-hot them with minicnn.utils.to_categorical(y) "
                    "or use loss='sparse_categorical_crossentropy'")
        raise ValueError(f"y must have shape (N, {', '.join(map(str, model.output_shape[1:]))}) to match "
                         f"the model's output, got {y.shape}{hint}")
    else:  # targets in the outputs' dtype, as Keras casts them: float64 or int targets take float32 steps
        y = y.astype(model.layers[-1].dtype, copy=False)
    return x, y


def sample_weights(y, n, sample_weight, class_weight):
    """The (n,) weights of each sample's loss, or None: sample_weight, or class_weight[class of
    the sample] (a class missing from the dict weighs 1, as in Keras, which takes one of the two)."""
    if sample_weight is None and class_weight is None:
        return None
    if sample_weight is not None and class_weight is not None:
        raise ValueError("Arguments `sample_weight` and `class_weight` cannot be specified at the same time "
                         "(as in Keras): fold the class weights into sample_weight")
    w = np.ones(n, dtype=np.float32)
    if sample_weight is not None:
        sw = _numeric_array(sample_weight, "sample_weight")
        if sw.shape not in ((n,), (n, 1)):
            raise ValueError(f"sample_weight must have shape ({n},), one weight per sample, got {sw.shape}")
        if sw.dtype.kind == "f" and not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError("sample_weight must hold finite weights >= 0")
        w *= sw.reshape(n).astype(np.float32)
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class: weight}}, got {type(class_weight).__name__}")
        labels = np.asarray(y).reshape(n, -1)
        labels = labels.argmax(axis=-1) if labels.shape[1] > 1 else np.round(labels[:, 0]).astype(np.int64)
        w *= np.array([class_weight.get(int(c), 1.0) for c in labels], dtype=np.float32)
    return w


def _numeric_array(a, what):
    """a (an array, a nested list, a GPU array) as a NumPy array of numbers (bool, int, uint or
    float), or a TypeError / ValueError that names the argument."""
    a = gpu.to_host(a) if gpu.is_device_array(a) else a
    try:
        a = np.asarray(a)
    except (TypeError, ValueError) as e:  # a ragged nested list
        raise ValueError(f"{what} cannot be read as an array ({e}); nested lists must be rectangular") from None
    if a.dtype.kind not in "fiub":
        got = repr(a.item()) if a.dtype == object and a.ndim == 0 else f"dtype {a.dtype}"
        raise TypeError(f"{what} must be a numeric array (bool, int or float), got {got}")
    return a


def _check_finite(a, dtype, what):
    """NaN or Inf in the array `what` (x or y), or values beyond dtype's range (they become Inf
    when cast): a ValueError that names it."""
    if a.dtype.kind != "f" or a.size == 0:
        return
    bad = ~np.isfinite(a)
    if bad.any():
        where = tuple(int(i) for i in np.unravel_index(int(bad.argmax()), a.shape))
        raise ValueError(f"{what} holds {int(bad.sum())} NaN or Inf values (the first at index {where}); "
                         "clean or drop those samples before training")
    limit = np.finfo(dtype).max
    if np.finfo(a.dtype).max > limit and np.abs(a).max() > limit:
        hint = " Scale the inputs, e.g. x / 255 for pixels" if what == "x" else ""
        raise ValueError(f"{what} holds values up to {np.abs(a).max():.3g}, beyond {dtype.name}'s range "
                         f"({limit:.3g}); they would become Inf.{hint}")


def non_finite_advice(error, epoch, epochs, step, steps, x, model):
    """The message of a NonFiniteError raised during fit: where training stopped, that the
    weights are the last good step's, and the likely causes with the figures that point to them."""
    lr = getattr(model.optimizer, "learning_rate", None)
    return (f"training stopped at epoch {epoch + 1}/{epochs}, batch {step + 1}/{steps}: {error}. "
            "The weights are those of the last good step. Likely causes: inputs that are not "
            f"scaled (x ranges over [{float(x.min()):.3g}, {float(x.max()):.3g}]; pixels belong in [0, 1]: x / 255), "
            f"a learning rate too high (it is {lr}), or a loss that does not suit the outputs.")


def check_positive(name, value):
    """value as an int >= 1 (batch_size, steps), or a ValueError that names it."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_count(name, value):
    """value as an int >= 0 (epochs), or a ValueError that names it."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)
