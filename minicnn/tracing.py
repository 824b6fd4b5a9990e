"""model.trace(x, y=None): run one batch through the model, layer by layer, and report.

    t = model.trace(x_test[:64], y_test_one_hot[:64])
    print(t)                   # a table, one row per layer
    t.rows[0].output_shape     # the same figures as data (LayerTrace), t.to_dicts() as dicts
    t.activations[0]           # with keep=True: each layer's output and gradients, as arrays

For each layer: input and output shapes, statistics of the output (mean, std, fraction of
exact zeros: a ReLU's dead units), forward milliseconds, multiply-adds per image; when y is
given, also the backward milliseconds and the L2 norm of the gradient of each param and of
the layer's input. Nothing is updated: the params stay as they were.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from minicnn import training
from minicnn.gpu import as_like, synchronize, to_host


@dataclass
class LayerTrace:
    name: str
    type: str
    input_shape: tuple
    output_shape: tuple
    mean: float
    std: float
    zeros: float  # fraction of output entries exactly 0
    forward_ms: float
    macs: int  # forward multiply-adds per image
    backward_ms: float = None
    param_grad_norms: dict = field(default_factory=dict)  # {"W": ||dL/dW||_2, "b": ...}
    input_grad_norm: float = None  # ||dL/dx||_2 of the layer's input


class Trace:
    """What model.trace returns: rows (one LayerTrace per layer), the batch's loss, and with
    keep=True the arrays: activations[i] (layer i's output), input_grads[i] (dL/d its input),
    param_grads[i] ({"W": dW, ...})."""

    def __init__(self, rows, loss=None, activations=None, input_grads=None, param_grads=None):
        self.rows, self.loss = rows, loss
        self.activations, self.input_grads, self.param_grads = activations, input_grads, param_grads

    def to_dicts(self):
        return [dict(vars(row)) for row in self.rows]

    def __str__(self):
        head = ["layer", "output shape", "mean", "std", "zeros", "fwd ms", "bwd ms", "|dL/dW|", "|dL/dx|", "MACs/img"]
        body = []
        for r in self.rows:
            gw = r.param_grad_norms.get("W")
            body.append([f"{r.name} ({r.type})", str(r.output_shape), f"{r.mean:.4f}", f"{r.std:.4f}",
                         f"{r.zeros:.1%}", f"{r.forward_ms:.2f}", _opt(r.backward_ms, ".2f"), _opt(gw, ".3e"),
                         _opt(r.input_grad_norm, ".3e"), f"{r.macs:,}"])
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                 for row in [head, *body]]
        lines.insert(1, "-" * len(lines[0]))
        if self.loss is not None:
            lines.append(f"loss of the batch: {self.loss:.6f}")
        return "\n".join(lines)

    __repr__ = __str__


def _opt(value, spec):
    return "-" if value is None else format(value, spec)


def _norm(a):
    return float(np.sqrt(np.sum(np.square(to_host(a), dtype=np.float64))))


def _stats(y):
    y64 = to_host(y).astype(np.float64)
    return float(y64.mean()), float(y64.std()), float(np.mean(y64 == 0))


def _check_chain(model):
    """The trace runs the layers one after the other: a graph that branches is refused by name."""
    previous = model.inputs[0] if model.inputs else None
    for layer in model.layers:
        node = next((n for n in layer.nodes if n.inputs == [previous]), None)
        if node is None:
            raise ValueError(f"model.trace follows a chain of layers, and this model branches at layer "
                             f"{layer.name!r}; trace a chain (a Sequential), or read each layer's outputs with "
                             "Model(model.inputs, [layer.output for layer in model.layers]).predict(x)")
        previous = node.output


def trace(model, x, y=None, keep=False):
    """See the module docstring. x: (N, ...) a batch; y: its targets (needs compile) or None."""
    if y is None:
        x = training.check_x(model, x)
    else:
        training.check_compiled(model, "trace")
        x, y = training.check_data(model, x, y)
    _check_chain(model)  # after the checks, which build the model from x where it needs to
    first = model.layers[0]
    had_input_grad, first.input_grad = first.input_grad, True  # the trace reports dL/dx of the data too
    # A forward pass in training mode moves moving statistics (BatchNormalization): put them back.
    kept = model.get_weights() if y is not None and any(layer.state for layer in model.layers) else None
    try:
        rows, outputs, h = [], [], x
        for layer in model.layers:
            in_shape = (None, *h.shape[1:])
            start = time.perf_counter()
            h = layer.forward(h, training=y is not None)  # training mode only when backward follows
            synchronize(h)  # on a GPU, time the work, not just its launch
            ms = (time.perf_counter() - start) * 1e3
            rows.append(LayerTrace(layer.name, type(layer).__name__, in_shape, (None, *h.shape[1:]), *_stats(h),
                                   forward_ms=ms, macs=layer.count_macs(in_shape)))
            outputs.append(to_host(h) if keep else None)
        loss = input_grads = param_grads = None
        if y is not None:
            loss, input_grads, param_grads = _backward(model, as_like(y, h), h, rows)
    finally:
        first.input_grad = had_input_grad
        if kept is not None:
            model.set_weights(kept)
    if keep:
        return Trace(rows, loss, outputs, input_grads, param_grads)
    return Trace(rows, loss)


def _backward(model, y, p, rows):
    """Backpropagate as Model.backward does, layer by layer, timing and measuring each."""
    n = len(model.layers)
    input_grads, param_grads = [None] * n, [None] * n
    loss = float(model.loss.fn(y, p).mean())
    dy, last = model.loss_gradient(y, p)
    if last < n:  # softmax + cross-entropy: the gradient at the logits skips the softmax's backward
        rows[-1].backward_ms, rows[-1].input_grad_norm, input_grads[-1] = 0.0, _norm(dy), to_host(dy)
    for i in reversed(range(last)):
        layer = model.layers[i]
        start = time.perf_counter()
        dy = layer.backward(dy)
        synchronize(dy)
        rows[i].backward_ms = (time.perf_counter() - start) * 1e3
        param_grads[i] = {k: np.array(to_host(layer.grads[k])) for k in layer.params}
        rows[i].param_grad_norms = {k: _norm(g) for k, g in param_grads[i].items()}
        rows[i].input_grad_norm = _norm(dy)
        input_grads[i] = to_host(dy) if dy is not None else None
    return loss, input_grads, param_grads
