"""model.trace(x, y=None): run one batch through the model, layer by layer, and report.

    t = model.trace(x_test[:64], y_test_one_hot[:64])
    print(t)                   # a table, one row per layer
    t.rows[0].output_shape     # the same figures as data (LayerTrace), t.to_dicts() as dicts
    t.activations[0]           # with keep=True: each layer's output and gradients, as arrays

For each layer: input and output shapes, statistics of the output (mean, std, fraction of
exact zeros: a ReLU's dead units), forward milliseconds, multiply-adds per image; when y is
given, also the backward milliseconds and the L2 norm of the gradient of each param and of
the layer's input. Nothing is updated: the params stay as they were. Each call runs once
untimed before the timed run (warmup=True), so the milliseconds leave out the first call's
compilation of a Numba kernel (a second or more), which would hide the layer's real cost.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from minicnn import checks
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


def trace(model, x, y=None, keep=False, warmup=True):
    """See the module docstring. x: (N, ...) a batch; y: its targets (needs compile) or None.
    The model runs call by call (model.nodes: each layer on its own, never fused), a row per
    call; a graph's backward adds up gradients where tensors fan out, as in training."""
    checks.check_single_io(model, "model.trace")
    if y is None:
        x = checks.check_x(model, x)
    else:
        checks.check_compiled(model, "trace")
        x, y = checks.check_data(model, x, y)
    nodes = model.nodes
    firsts = [n.layer for n in nodes if model.inputs[0] in n.inputs]
    had = [layer.input_grad for layer in firsts]
    for layer in firsts:
        layer.input_grad = True  # the trace reports dL/dx of the data too
    # A forward pass in training mode moves moving statistics (BatchNormalization): put them back.
    kept = model.get_weights() if y is not None and any(layer.state for layer in model.layers) else None
    rows, outputs, index = [], [], {id(n): i for i, n in enumerate(nodes)}

    def forward_step(node, run):
        in_shape = [t.shape for t in node.inputs] if node.many else node.inputs[0].shape
        if warmup:
            synchronize(run())  # compiles what the call needs; the timed run below gives the outputs
        start = time.perf_counter()
        h = run()
        synchronize(h)  # on a GPU, time the work, not just its launch
        ms = (time.perf_counter() - start) * 1e3
        rows.append(LayerTrace(node.layer.name, type(node.layer).__name__, in_shape, (None, *h.shape[1:]), *_stats(h),
                               forward_ms=ms, macs=node.layer.count_macs(in_shape)))
        outputs.append(to_host(h) if keep else None)
        return h

    try:
        p = model.forward(x, training=y is not None, steps=nodes, watch=forward_step)  # training mode when backward follows
        loss = input_grads = param_grads = None
        if y is not None:
            y = as_like(y, p)
            loss = float(model.loss.fn(y, p).mean())
            input_grads, param_grads = [None] * len(nodes), [None] * len(nodes)

            def backward_step(node, run):
                if warmup:
                    out = run()  # the backward reads only its cache, so a second run gives the same gradients
                    synchronize(out if not isinstance(out, list) else out[0])
                start = time.perf_counter()
                dx = run()
                synchronize(dx if not isinstance(dx, list) else dx[0])
                i = index[id(node)]
                rows[i].backward_ms = (time.perf_counter() - start) * 1e3
                param_grads[i] = {k: np.array(to_host(node.layer.grads[k])) for k in node.layer.params}
                rows[i].param_grad_norms = {k: _norm(g) for k, g in param_grads[i].items()}
                if dx is not None:
                    parts = dx if isinstance(dx, list) else [dx]
                    rows[i].input_grad_norm = float(np.sqrt(sum(_norm(d) ** 2 for d in parts)))
                    input_grads[i] = to_host(dx) if not isinstance(dx, list) else [to_host(d) for d in dx]
                return dx

            dy, n = model.loss_gradient(y, p)
            if n < len(model.layers):  # softmax + cross-entropy: the gradient at the logits skips its backward
                rows[-1].backward_ms, rows[-1].input_grad_norm, input_grads[-1] = 0.0, _norm(dy), to_host(dy)
            model.backpropagate(dy, skip_last=n < len(model.layers), steps=nodes, watch=backward_step)
    finally:
        for layer, flag in zip(firsts, had):
            layer.input_grad = flag
        if kept is not None:
            model.set_weights(kept)
    if keep:
        return Trace(rows, loss, outputs, input_grads, param_grads)
    return Trace(rows, loss)
