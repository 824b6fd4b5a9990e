"""Finite-difference gradient checks, for minicnn's layers and for the ones you write.

    from minicnn.gradcheck import check_layer
    errors = check_layer(Conv2D(4, 3, dtype="float64"), x)   # {"x": 3e-11, "W": 2e-11, "b": 1e-11}

A layer is checked through the scalar L = sum(layer.forward(x) * dy) for a random upstream
gradient dy, so that dL/dx = layer.backward(dy). Each analytic gradient is compared with
centred differences, (L(v + eps) - L(v - eps)) / (2 eps), entry by entry. The error reported
is max|analytic - numeric| / max(max|analytic|, max|numeric|): relative to the gradient's
scale, so a tiny entry's round-off does not read as a failure. Run it in float64.
"""
import numpy as np

from minicnn.gpu import as_like, to_host


def numerical_gradient(f, v, eps=1e-6):
    """Centred differences of the scalar function f() with respect to the array v (perturbed
    in place and restored). v: any shape -> gradient of the same shape, float64."""
    grad = np.zeros(v.shape, dtype=np.float64)
    flat = v.reshape(-1)  # a view: writes reach v
    for i in range(flat.size):
        old = flat[i].item()  # a Python number: CuPy's flat[i] is a view, and would follow the writes
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * eps)
    return grad


def relative_error(analytic, numeric):
    """max|a - n| / max(max|a|, max|n|); 0 when both are exactly zero."""
    analytic, numeric = to_host(analytic).astype(np.float64), to_host(numeric).astype(np.float64)
    scale = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0))
    return 0.0 if scale == 0 else float(np.abs(analytic - numeric).max() / scale)


def check_layer(layer, x, seed=0, eps=1e-6):
    """Check layer.backward against finite differences at x: (N, ...), in float64.

    Returns {"x": error of dL/dx, <param key>: error of each grad}.
    """
    if np.dtype(layer.dtype) != np.float64:
        raise ValueError(f"check layers in float64 (dtype='float64'); {layer.name!r} is {layer.dtype}")
    x = np.array(x, dtype=np.float64)
    y = layer.forward(x, training=True)
    dy = as_like(np.random.default_rng(seed).standard_normal(y.shape), y)  # on the layer's device
    dx = layer.backward(dy)
    analytic = {"x": dx, **{k: np.array(to_host(g)) for k, g in layer.grads.items()}}

    def loss():
        return float((layer.forward(x, training=True) * dy).sum())

    errors = {"x": relative_error(analytic["x"], numerical_gradient(loss, x, eps))}
    for key, p in layer.params.items():
        errors[key] = relative_error(analytic[key], numerical_gradient(loss, p, eps))
    return errors


def check_model(model, x, y, eps=1e-6):
    """Check the gradients of a compiled model's mean loss over (x, y) for every param, in float64.

    Returns {"<layer name>/<key>": error}.
    """
    p = model.forward(x, training=True)
    y = as_like(y, p)  # the targets where the outputs are (on the GPU for a model there)
    model.backward(y, p)
    analytic = {(layer.name, k): np.array(to_host(g)) for layer in model.layers for k, g in layer.grads.items()}

    def loss():
        return float(model.loss.fn(y, model.forward(x, training=True)).mean())

    return {f"{name}/{k}": relative_error(g, numerical_gradient(loss, layer.params[k], eps))
            for layer in model.layers for (name, k), g in analytic.items() if name == layer.name}
