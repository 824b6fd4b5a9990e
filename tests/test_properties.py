"""Property-based tests (hypothesis): random Conv2D and MaxPooling2D configurations follow
Keras's output-shape formula, give finite outputs, gradients shaped like their inputs and
params, and, on both backends, the values of the independent loops in minicnn/kernels/naive.py (so that
a bug in code the backends share, such as the "same" padding split, cannot hide)."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minicnn import backend
from minicnn.kernels import naive
from minicnn.layers import Conv2D, MaxPooling2D


def keras_output_size(size, k, s, padding):
    """Keras's documented formula, written independently of minicnn's."""
    if padding == "same":
        return (size + s - 1) // s
    return (size - k + s) // s


@st.composite
def configs(draw, pool=False):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    low_h, low_w = (1, 1) if padding == "same" else k
    h, w = draw(st.integers(low_h, 9)), draw(st.integers(low_w, 9))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    f = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    return {"k": k, "s": s, "padding": padding, "shape": (n, h, w, c), "filters": f, "seed": seed}


def run(layer_factory, cfg, name):
    """Forward and backward on one backend: {"x", "dy", "y", "dx", "grads", "layer"}."""
    previous = backend.get_backend()
    backend.set_backend(name)
    try:
        rng = np.random.default_rng(cfg["seed"])
        x = rng.standard_normal(cfg["shape"])
        layer = layer_factory()
        layer.ensure_built(cfg["shape"])
        for p in layer.params.values():
            p[...] = rng.standard_normal(p.shape)
        y = layer.forward(x, training=True)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        return {"x": x, "dy": dy, "y": y, "dx": dx, "grads": {k: g.copy() for k, g in layer.grads.items()},
                "layer": layer}
    finally:
        backend.set_backend(previous)


def naive_values(layer, x, dy):
    """(y, dx, grads) of the layer at x for the upstream gradient dy, from the naive loops."""
    if isinstance(layer, MaxPooling2D):
        y, route = naive.maxpool(x, layer.pool_size, layer.strides, layer.padding)
        return y, naive.maxpool_backward(dy, route, x.shape), {}
    W, b = layer.params["W"], layer.params["b"]
    dx, dW, db = naive.conv_backward(x, W, dy, layer.strides, layer.padding)
    return naive.conv(x, W, b, layer.strides, layer.padding), dx, {"W": dW, "b": db}


def check(layer_factory, cfg, channels_out):
    n, h, w, _ = cfg["shape"]
    for r in (run(layer_factory, cfg, name) for name in backend.BACKENDS):
        y, dx, grads, layer = r["y"], r["dx"], r["grads"], r["layer"]
        expected = (n, keras_output_size(h, cfg["k"][0], cfg["s"][0], cfg["padding"]),
                    keras_output_size(w, cfg["k"][1], cfg["s"][1], cfg["padding"]), channels_out)
        assert y.shape == expected
        assert layer.compute_output_shape((None, *cfg["shape"][1:])) == (None, *expected[1:])
        assert np.isfinite(y).all() and np.isfinite(dx).all()
        assert dx.shape == cfg["shape"]
        assert all(grads[k].shape == p.shape and np.isfinite(grads[k]).all() for k, p in layer.params.items())
        y_naive, dx_naive, grads_naive = naive_values(layer, r["x"], r["dy"])  # every backend: the naive values
        np.testing.assert_allclose(y, y_naive, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dx, dx_naive, rtol=1e-10, atol=1e-10)
        assert set(grads) == set(grads_naive)
        for k in grads:
            np.testing.assert_allclose(grads[k], grads_naive[k], rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_conv2d_properties(cfg):
    check(lambda: Conv2D(cfg["filters"], cfg["k"], strides=cfg["s"], padding=cfg["padding"], dtype="float64"),
          cfg, cfg["filters"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(pool=True))
def test_maxpooling2d_properties(cfg):
    check(lambda: MaxPooling2D(cfg["k"], strides=cfg["s"], padding=cfg["padding"], dtype="float64"),
          cfg, cfg["shape"][3])
