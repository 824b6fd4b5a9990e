"""Models with several inputs or several outputs: what compile, fit, evaluate and predict do
with lists and dicts, by Keras 3's rules (keras/src/trainers/compile_utils.py).

    model = Model(inputs=[image, meta], outputs=[digit, size])     # outputs named by their layers
    model.compile(optimizer="adam",
                  loss={"digit": "sparse_categorical_crossentropy", "size": "mse"},
                  loss_weights={"digit": 1.0, "size": 0.2}, metrics={"digit": ["accuracy"]})
    model.fit([x_image, x_meta], {"digit": y_digit, "size": y_size})
    # History: loss, digit_loss, size_loss, digit_accuracy (and val_ of each)

The loss the model trains on is the sum over outputs of loss_weight * that output's loss (each
its batch mean); each output's own loss is logged unweighted, as Keras logs it. The total "loss"
averages the batches by their sizes; each "<output>_loss" averages the batch means, each batch
counting once, as Keras 3 on TensorFlow does (its per-output trackers do not see the batch size
of a batch of unknown size): the two differ only when the last batch is short.
"""
import numpy as np

from minicnn import losses as losses_module
from minicnn import metrics as metrics_module
from minicnn.checks import _numeric_array as numeric_array


def per_output(value, names, what, single_ok=True):
    """value given for the outputs called names as a list (one per output, None for none), by
    Keras's rules: one value for all (single_ok), a list of len(names), or a dict keyed by names."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{what} names {unknown}, which are not outputs of the model; its outputs are {names}")
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{what} is a list of {len(value)} entries, but the model has {len(names)} outputs "
                             f"{names}: give one entry per output, or a dict keyed by output name")
        return list(value)
    if not single_ok and len(names) > 1 and value is not None:
        raise ValueError(f"{what} must be a list or a dict keyed by output name for a model of {len(names)} "
                         f"outputs {names}, got {value!r}")
    return [value] * len(names)


class CompiledOutputs:
    """compile's loss, loss_weights and metrics resolved to one entry per output."""

    def __init__(self, names, loss, loss_weights, metrics):
        self.names = names
        self.losses = [None if v is None else losses_module.get(v) for v in per_output(loss, names, "loss")]
        if all(v is None for v in self.losses):
            raise ValueError(f"loss gives no loss for any of the outputs {names}")
        if loss_weights is not None and not isinstance(loss_weights, (int, float, list, tuple, dict)):
            raise ValueError(f"loss_weights must be a number (one output), a list or a dict, got {loss_weights!r}")
        weights = per_output(loss_weights, names, "loss_weights", single_ok=len(names) == 1)
        self.weights = [1.0 if w is None else float(w) for w in weights]
        # several outputs: each metric is named after its output ("digit_accuracy"), as Keras
        specs = per_output(metrics, names, "metrics", single_ok=False) if len(names) > 1 else [metrics]
        self.metrics = []
        for name, output_loss, spec in zip(names, self.losses, specs):
            ms = [metrics_module.get(m, output_loss) for m in ([] if spec is None else spec if isinstance(spec, (list, tuple))
                                                         else [spec])]
            if len(names) > 1:
                for m in ms:
                    m.name = f"{name}_{m.name}"
            self.metrics.append(ms)
        flat = [m.name for ms in self.metrics for m in ms]
        if len(set(flat)) != len(flat):
            raise ValueError(f"metrics must have distinct names, got {flat}")
        # one "<output>_loss" entry per output with a loss, when there are several (Keras's rule)
        self.loss_names = [f"{n}_loss" for n, v in zip(names, self.losses) if v is not None] \
            if sum(v is not None for v in self.losses) > 1 else []

    @property
    def metric_objects(self):
        return [m for ms in self.metrics for m in ms]

    def losses_of(self, ys, ps, ws):
        """(total, [each output's unweighted loss]) for the batch; ws: per-output (N,) weights or None."""
        total, each = 0.0, []
        for loss, weight, y, p, w in zip(self.losses, self.weights, ys, ps, ws):
            if loss is None:
                continue
            per_sample = loss.fn(y, p).reshape(len(p), -1).mean(axis=1)
            value = float((per_sample if w is None else per_sample * w).mean())
            each.append(value)
            total += weight * value
        return total, each

    def gradients(self, ys, ps, ws):
        """dL/d(each output) of the weighted total (None for an output without a loss)."""
        dys = []
        for loss, weight, y, p, w in zip(self.losses, self.weights, ys, ps, ws):
            if loss is None:
                dys.append(None)
                continue
            dy = loss.gradient(y, p) * p.dtype.type(weight)
            if w is not None:  # each row of the gradient belongs to one sample's loss
                dy = dy * w.reshape(-1, *[1] * (dy.ndim - 1)).astype(dy.dtype)
            dys.append(dy)
        return dys

    def update_metrics(self, ys, ps):
        for ms, y, p in zip(self.metrics, ys, ps):
            for m in ms:
                m.update_state(y, p)


def arrays_by_name(value, names, what):
    """x or y given as one array (a model of one), a list in order, or a dict keyed by names: a
    list of NumPy arrays in the order of names (None where a dict leaves one out)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{what} is a dict with keys {unknown} that name none of the model's "
                             f"{'inputs' if what == 'x' else 'outputs'} {names}")
        value = [value.get(n) for n in names]
    elif not isinstance(value, (list, tuple)):
        if len(names) > 1:
            raise ValueError(f"{what} must be a list of {len(names)} arrays or a dict keyed by {names}, "
                             f"one per {'input' if what == 'x' else 'output'}; got one array")
        value = [value]
    if len(value) != len(names):
        raise ValueError(f"{what} is a list of {len(value)} arrays, but the model has {len(names)} "
                         f"{'inputs' if what == 'x' else 'outputs'} {names}")
    return [None if a is None else numeric_array(a, f"{what}[{n!r}]") for a, n in zip(value, names)]


def check_inputs(model, x):
    """x for a model of several inputs: a list of (N, ...) arrays, each of its input's shape."""
    xs = arrays_by_name(x, model.input_names, "x")
    n = len(xs[0]) if xs[0] is not None and xs[0].ndim else 0
    for a, t, name in zip(xs, model.inputs, model.input_names):
        if a is None:
            raise ValueError(f"x gives no array for the input {name!r}")
        if a.ndim == 0 or a.shape[1:] != tuple(t.shape[1:]):
            raise ValueError(f"x[{name!r}] must have shape (N, {', '.join(map(str, t.shape[1:]))}), got {a.shape}")
        if len(a) != n:
            raise ValueError(f"the inputs have different numbers of samples: {[len(b) for b in xs]}")
    if n == 0:
        raise ValueError("x holds no samples")
    return [a.astype(model.layers[0].dtype, copy=False) if a.dtype.kind != "f" else a for a in xs]


def check_targets(model, ys, n):
    """y for each output against its loss: (N, ...) of the output's shape, or (N,) labels for a
    sparse loss; None for an output without a loss."""
    out = []
    for y, loss, t, name in zip(ys, model.compiled_outputs.losses, model.outputs, model.output_names):
        if loss is None:
            out.append(None)
            continue
        if y is None:
            raise ValueError(f"y gives no targets for the output {name!r}, which has a loss")
        if y.ndim == 0 or len(y) != n:
            raise ValueError(f"x has {n} samples but y[{name!r}] has {len(y) if y.ndim else 'shape ()'}")
        shape = tuple(t.shape[1:])
        if loss.sparse:
            if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
                raise ValueError(f"y[{name!r}]: {loss.name} expects integer labels of shape (N,), got {y.shape}")
        elif y.ndim == 1 and shape == (1,):  # one value per sample: (N,) targets, as Keras takes them
            y = y.reshape(-1, 1)
        elif y.shape[1:] != shape:
            raise ValueError(f"y[{name!r}] must have shape (N, {', '.join(map(str, shape))}) to match the output "
                             f"{name!r}, got {y.shape}")
        out.append(y if loss.sparse else y.astype(np.float32, copy=False))
    return out


def check_weights(model, sample_weight, n):
    """sample_weight as one (N,) array for every output, or one per output (list or dict)."""
    names = model.output_names
    if sample_weight is None:
        return [None] * len(names)
    per = isinstance(sample_weight, dict) or (isinstance(sample_weight, (list, tuple)) and len(sample_weight) == len(names)
                                              and all(w is None or np.ndim(w) >= 1 for w in sample_weight))
    given = per_output(sample_weight, names, "sample_weight") if per else [sample_weight] * len(names)
    ws = []
    for w, name in zip(given, names):
        if w is None:
            ws.append(None)
            continue
        w = numeric_array(w, f"sample_weight[{name!r}]")
        if w.shape not in ((n,), (n, 1)):
            raise ValueError(f"sample_weight[{name!r}] must have shape ({n},), one weight per sample, got {w.shape}")
        ws.append(w.reshape(n).astype(np.float32))
    return ws


def rows(a, index):
    """The rows index of an array, or of each array of a list (None stays None)."""
    if a is None:
        return None
    return [None if b is None else b[index] for b in a] if isinstance(a, list) else a[index]


def count(a):
    return len(a[0]) if isinstance(a, list) else len(a)
