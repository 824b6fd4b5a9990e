"""GradientTape: backpropagation through your own code, as tf.GradientTape.

    with minicnn.GradientTape() as tape:
        p = model(x, training=True)              # each layer call is recorded
        loss = loss_fn(y, p) + 0.01 * ops.sum(ops.square(p))
    grads = tape.gradient(loss, model.trainable_variables)

While a tape is active, every call of a layer, every minicnn.ops function, every loss and every
NumPy operator on a recorded value appends one Record to it: what ran, the arrays it read, the
array it made, and a `backward` that maps dL/d(output) to dL/d(each input). A layer's record
keeps what that call saved for its backward, so a layer called twice has two records.

tape.gradient walks the records in reverse (they were appended in the order they ran, which is
already a topological order), and where an array fed several records adds up (+=) the
gradients that come back: micrograd's backward, with layers and ops for scalars. Arrays are
known by identity: a layer's params are updated in place, so `model.trainable_variables` (the
param arrays themselves) are the sources; tape.watch(x) adds an input.

Values a recorded call returns are `Tracked` arrays: a view (no copy) of the NumPy result, whose
arithmetic records itself. Outside a tape nothing is recorded and nothing costs: layers check
one list, and a Tracked array computes as a plain one.
"""
import numpy as np

from minicnn.utils import Tensor

_tapes = []  # the tapes recording now, innermost last
_ops = None  # minicnn.ops, where a Tracked value's arithmetic goes: it sets this when imported (it imports this module)
_paused = [0]  # > 0 while a recorded call with its own backward runs: what it does inside is not recorded


def recording():
    """True while a tape records (and no recorded call with its own backward is running)."""
    return bool(_tapes) and not _paused[0]


class Tracked(Tensor):
    """An array a tape recorded (a view of the result, no copy): its arithmetic is recorded too.
    Outside a tape it computes as a plain array and gives plain arrays."""

    __array_priority__ = 100  # array <op> tracked asks tracked first

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _ops.apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _ops.apply_function(func, args, kwargs)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # ndarray's methods, as the ops of the same names (their gradients are there)
    def sum(self, axis=None, keepdims=False, **kwargs):
        return _ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, **kwargs):
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False, **kwargs):
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False, **kwargs):
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape, **kwargs):
        return _ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return _ops.transpose(self, (axes[0] if len(axes) == 1 else axes) or None)

    @property
    def T(self):
        return self.transpose()

    def astype(self, dtype, **kwargs):
        return _ops.cast(self, dtype)

    def flatten(self):
        return self.reshape(-1)

    ravel = flatten

    def __float__(self):
        return float(np.asarray(self))

    # loss += penalty makes a new value, as a TensorFlow tensor does: an in-place update would
    # change the value the tape saved
    def __iadd__(self, other):
        return self + other

    def __isub__(self, other):
        return self - other

    def __imul__(self, other):
        return self * other

    def __itruediv__(self, other):
        return self / other

    def __repr__(self):
        return f"Tracked({np.asarray(self)!r})"


class Variable(Tracked):
    """A weight made by Layer.add_weight: a param array whose arithmetic the tape records
    (self.w in your own layer's call), updated in place by the optimizer, as keras.Variable.
    minicnn.Variable(value) makes one of your own (a float array keeps its dtype, numbers are
    float32). A plain array you tape.watch is followed through layers and minicnn.ops only:
    NumPy cannot tell which arrays a tape watches, so `x * x` on it is not recorded."""

    def __new__(cls, initial_value, dtype=None, trainable=True, name=None):
        value = np.asarray(plain(initial_value))
        dtype = dtype or (value.dtype if value.dtype.kind == "f" else np.float32)
        out = np.array(value, dtype=dtype).view(cls)
        out.trainable, out.name = trainable, name
        return out

    # a weight updated in place, as NumPy does (the optimizer's updates); not while a tape records
    __iadd__, __isub__, __imul__, __itruediv__ = (np.ndarray.__iadd__, np.ndarray.__isub__, np.ndarray.__imul__,
                                                  np.ndarray.__itruediv__)

    def assign(self, value):
        self[...] = np.asarray(value)
        return self

    def assign_add(self, value):
        return self.assign(np.asarray(self) + np.asarray(value))

    def assign_sub(self, value):
        return self.assign(np.asarray(self) - np.asarray(value))

    @property
    def value(self):
        return np.asarray(self)

    def __repr__(self):
        return f"Variable(shape={self.shape}, dtype={self.dtype.name}, value={np.asarray(self)!r})"


class SecondOrder(Tracked):
    """A gradient computed while another tape was recording: using it in recorded code would
    ask for a gradient of a gradient, which the layers' hand-written backwards cannot give."""


def plain(a):
    """The NumPy array behind a Tracked value (a view), anything else as it is."""
    return a.view(np.ndarray) if isinstance(a, Tracked) else a


class Record:
    """One recorded call: `name` ran on `inputs` and made `output`; backward(dy) gives one
    gradient (or None) per input."""

    __slots__ = ("backward", "inputs", "name", "output", "via")

    def __init__(self, name, inputs, output, backward, via):
        self.name, self.inputs, self.output, self.backward, self.via = name, inputs, output, backward, via

    def __repr__(self):
        shapes = ", ".join(str(tuple(np.shape(a))) for a in self.inputs if isinstance(a, np.ndarray))
        return f"{self.name}({shapes}) -> {tuple(np.shape(self.output))}"


def record(name, inputs, y, backward, via=None):
    """Append a Record of name(inputs) = y on every active tape; returns y as a Tracked view.
    Outside a tape, y is returned as a plain array with TensorFlow's .numpy(). via names the
    gradient's code, for tape.summary() (default: the op of minicnn.ops of that name)."""
    if type(y).__module__.startswith("cupy"):
        raise NotImplementedError(f"{name}: the tape records NumPy arrays; run models of your own and custom "
                                  "training steps on the CPU")
    y = np.asarray(y)
    if not recording():
        return y.view(Tensor)
    for a in inputs:
        if isinstance(a, SecondOrder):
            raise NotImplementedError(
                f"{name} reads a gradient computed while another tape was recording: a gradient of a "
                "gradient (as a gradient penalty needs) is not supported by minicnn's tape, whose layers "
                "have hand-written first-order backwards")
    y = y.view(Tracked)
    rec = Record(name, list(inputs), y, backward, via or f"minicnn._ops.{name}")
    for tape in _tapes:
        tape.records.append(rec)
    return y


def walk(records, grads):
    """The backward walk, the one every model and tape ends in: the records in reverse (they were
    made in the order they ran, so every value comes before its readers); each whose output has a
    gradient runs its backward, and what comes back is added (+=) to each input's gradient, where
    a value fed several records. grads: {id(value): dL/dvalue}, holding the target's to start;
    filled in place and returned."""
    for rec in reversed(records):
        dy = grads.get(id(rec.output))
        if dy is None:
            continue  # nothing the target depends on
        for a, d in zip(rec.inputs, rec.backward(dy)):
            if d is None:
                continue
            d = plain(d)
            if isinstance(a, np.ndarray) and d.shape != a.shape:
                raise AssertionError(f"{rec.name}: gradient of shape {d.shape} for an input of shape {a.shape}")
            grads[id(a)] = grads[id(a)] + d if id(a) in grads else d  # fan-out: the gradients add up
    return grads


class GradientTape:
    """Records what runs inside `with GradientTape() as tape:`; tape.gradient(target, sources)
    then gives d(target)/d(each source). persistent=True allows several gradient calls."""

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self.records = []
        self._watched = {}
        self._used = False

    def __enter__(self):
        _tapes.append(self)
        return self

    def __exit__(self, *exc):
        _tapes.remove(self)
        return False

    def watch(self, tensor):
        """Differentiate with respect to tensor (an input array, or a list of them) as well."""
        for t in tensor if isinstance(tensor, (list, tuple)) else [tensor]:
            if not isinstance(t, np.ndarray):
                raise TypeError(f"tape.watch takes NumPy arrays (the very array you then pass on), got "
                                f"{type(t).__name__}")
            self._watched[id(t)] = t

    def watched_variables(self):
        return list(self._watched.values())

    def stop_recording(self):
        """A context in which nothing is recorded (as tf.GradientTape.stop_recording)."""
        return paused()

    def reset(self):
        self.records, self._watched = [], {}

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients=None):
        """d(sum of target)/d(source) for each source (same structure: an array, a list, a dict);
        None for a source the target does not depend on, as TensorFlow gives."""
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one set of gradients "
                               "(or give GradientTape(persistent=True))")
        self._used = True
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        for t in targets:
            if not isinstance(t, np.ndarray):
                raise TypeError(f"tape.gradient's target must be an array the tape recorded (the loss), got "
                                f"{type(t).__name__}: keep it an array (no float(), .item() or .numpy() before)")
        seeds = output_gradients if isinstance(output_gradients, (list, tuple)) else [output_gradients] * len(targets)
        grads = {}
        for t, seed in zip(targets, seeds):
            g = np.ones(t.shape, dtype=t.dtype) if seed is None else np.asarray(plain(seed), dtype=t.dtype)
            grads[id(t)] = grads[id(t)] + g if id(t) in grads else g
        _paused[0] += 1
        try:
            walk(self.records, grads)
        finally:
            _paused[0] -= 1
        if not self.persistent:
            self.records = []
        wrap = SecondOrder if _tapes else np.asarray  # another tape records: mark them (see SecondOrder)

        def result(s):
            g = grads.get(id(s))
            if g is None:
                return np.zeros(np.shape(s), dtype=np.asarray(s).dtype) if unconnected_gradients == "zero" else None
            return wrap(g.astype(np.asarray(s).dtype, copy=False)) if wrap is np.asarray else \
                g.astype(np.asarray(s).dtype, copy=False).view(SecondOrder)
        if isinstance(sources, dict):
            return {k: result(s) for k, s in sources.items()}
        if isinstance(sources, (list, tuple)):
            return [result(s) for s in sources]
        return result(sources)

    def summary(self, print_fn=print):
        """Print what the tape recorded, one line a call: the call, its input shapes, its output's,
        and the code its gradient comes from (tape.gradient runs them from the last line up)."""
        lines = [(f"{i:3d}  {rec!r}", rec.via) for i, rec in enumerate(self.records)]
        width = max((len(a) for a, _ in lines), default=0) + 2
        print_fn("\n".join(a.ljust(width) + f"backward: {via}" for a, via in lines))


def paused():
    """A context in which nothing is recorded: code whose gradient is written by hand."""
    return _Paused()


class _Paused:
    def __enter__(self):
        _paused[0] += 1

    def __exit__(self, *exc):
        _paused[0] -= 1
        return False


def record_layer(layer, forward, x, training):
    """forward(layer, x, training) recorded on the active tapes as one Record (when the layer
    has a hand-written backward), or, for a layer that has none, left to record what its call
    runs (minicnn.ops, other layers). A call with training=False is differentiated as the layer
    computes it then (layer.inference_gradient: "same", "identity" or "frozen")."""
    if layer._by_tape:
        return forward(layer, x, training)  # the tape differentiates its call
    many = isinstance(x, (list, tuple))
    xs = list(x) if many else [x]
    mode = "training" if training else layer.inference_gradient
    _paused[0] += 1
    try:
        args = [plain(a) for a in xs]
        layer._cache = None
        if mode == "frozen":  # BatchNormalization at inference: as in training with moving statistics
            trainable, layer.trainable = layer.trainable, False
            try:
                y = forward(layer, args if many else args[0], True)
            finally:
                layer.trainable = trainable
        else:
            y = forward(layer, args if many else args[0], mode != "identity")
        cache = layer._cache
    finally:
        _paused[0] -= 1
    keys = list(layer.params)
    params = [layer.params[k] for k in keys]

    def backward(dy):
        if mode == "identity":
            return [dy]
        layer._cache = cache
        wanted, layer.input_grad = layer.input_grad, True
        try:
            dx = layer.backward(dy)
        finally:
            layer.input_grad = wanted
            layer._cache = None
        return [*(dx if many else [dx]), *(layer.grads[k] for k in keys)]
    if isinstance(y, list):
        raise NotImplementedError(f"layer {layer.name!r} returns several outputs: the tape records layers of one output")
    return record(layer.name, [*xs, *params], y, backward,
                  f"{type(layer).__name__}.backward" + ("" if mode == "training" else f" ({mode} at inference)"))

