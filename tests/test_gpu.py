"""The GPU backend. Three kinds of tests:

- without CuPy or a GPU (CI): clear errors, and the host side of every API;
- with a strict stand-in for CuPy (tests/fake_cupy.py): every code path of a model on the
  "gpu" runs, and any host array mixed into device work fails as it would on a real GPU;
- marked `gpu`: the real thing, skipped cleanly where CuPy or a GPU is missing.
"""
import sys

import numpy as np
import pytest
from toy import small_data, small_model

from minicnn import backend, gpu
from minicnn.gradcheck import check_layer
from minicnn.layers import Conv2D, Dense, MaxPooling2D
from minicnn.models import load_model
from minicnn.utils import set_random_seed


def test_clear_errors_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` fails, as where it is not installed
    monkeypatch.setitem(gpu._state, "cupy", None)
    with pytest.raises(RuntimeError, match=r'needs CuPy.*minicnn\[gpu\]'):
        small_model().to("gpu")
    with pytest.raises(RuntimeError, match="needs CuPy"):
        backend.set_backend("cupy")
    assert not gpu.available()
    with pytest.raises(ValueError, match="valid devices: 'cpu', 'gpu'"):
        small_model().to("tpu")


def test_clear_error_without_a_device(monkeypatch):
    import fake_cupy
    fake = fake_cupy.module()
    fake.cuda.runtime.getDeviceCount = lambda: 0
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(gpu._state, "cupy", None)
    with pytest.raises(RuntimeError, match="finds no CUDA GPU"):
        gpu.cupy()


def test_host_helpers_leave_numpy_alone():
    a = np.arange(3.0)
    assert gpu.array_module(a) is np and not gpu.is_device_array(a)
    assert gpu.to_host(a) is a and gpu.as_like(a, np.zeros(2)) is a
    assert small_model().to("cpu").device == "cpu"


def test_fake_device_refuses_host_arrays(fake_gpu):
    d = gpu.to_device(np.ones(3))
    assert gpu.is_device_array(d) and gpu.array_module(d) is fake_gpu
    with pytest.raises(TypeError, match="host"):
        d + np.ones(3)
    with pytest.raises(TypeError, match="host"):
        fake_gpu.where(d > 0, np.ones(3), 0)
    assert type(gpu.to_host(d * 2)) is np.ndarray


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_a_model_on_the_device_trains_like_on_the_host(fake_gpu, loss, tmp_path):
    set_random_seed(4)
    x, y = small_data(64)
    if loss.startswith("sparse"):
        y = y.argmax(1)
    host, dev = small_model(), small_model()
    host.build((None, 8, 8, 1))
    dev.build((None, 8, 8, 1))
    dev.set_weights(host.get_weights())
    for m in (host, dev):
        m.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
    dev.to("gpu")
    assert dev.device == "gpu" and all(gpu.is_device_array(p) for layer in dev.layers for p in layer.params.values())
    h1 = host.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    h2 = dev.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=(x, y))
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-5)
    assert all(gpu.is_device_array(s) for slots in dev.optimizer.slots for s in slots.values())
    for a, b in zip(host.get_weights(), dev.get_weights()):
        assert type(b) is np.ndarray
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    probs = dev.predict(x, verbose=0)
    assert type(probs) is np.ndarray
    result = dev.evaluate(x, y, verbose=0)
    assert all(isinstance(v, float) for v in result)
    dev.train_on_batch(x[:16], y[:16])

    path = dev.save(tmp_path / "gpu.npz")  # saves NumPy arrays
    again = load_model(path)
    assert again.device == "cpu"
    np.testing.assert_allclose(again.predict(x, verbose=0), dev.predict(x, verbose=0), rtol=1e-6)
    again.to("gpu")
    again.fit(x, y, batch_size=16, epochs=1, verbose=0)  # the loaded Adam state moved too
    dev.to("cpu")
    assert all(type(p) is np.ndarray for layer in dev.layers for p in layer.params.values())
    dev.fit(x, y, batch_size=16, epochs=1, verbose=0)


def test_trace_pictures_and_gradcheck_from_the_device(fake_gpu):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minicnn import plot
    set_random_seed(0)
    x, y = small_data(16)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.to("gpu")
    t = model.trace(x, y, keep=True)
    assert t.rows[0].param_grad_norms["W"] > 0 and type(t.activations[0]) is np.ndarray
    plot.conv_filters(model.layers[0])
    plot.feature_maps(model, x[0])
    plot.activation_histograms(model, x, y)
    plt.close("all")
    layer = Conv2D(2, 3, strides=2, padding="same", dtype="float64").to("gpu")
    errors = check_layer(layer, np.random.default_rng(0).random((2, 5, 5, 2)))
    assert max(errors.values()) < 1e-6, errors
    errors = check_layer(MaxPooling2D(2, dtype="float64").to("gpu"), np.random.default_rng(1).random((2, 4, 4, 3)))
    assert max(errors.values()) < 1e-6, errors


def test_cupy_backend_puts_new_models_on_the_device(fake_gpu):
    previous = backend.get_backend()
    backend.set_backend("cupy")
    try:
        layer = Dense(3)
        y = layer.forward(np.ones((2, 4), np.float32))
        assert layer.device == "gpu" and gpu.is_device_array(layer.params["W"]) and gpu.is_device_array(y)
    finally:
        backend.set_backend(previous)


# -- on a real GPU ---------------------------------------------------------------------------------
needs_gpu = pytest.mark.skipif(not gpu.available(), reason="needs CuPy and an NVIDIA GPU")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((2, 7, 6, 3), (3, 3), (1, 1), "valid"), ((1, 9, 9, 1), (3, 2), (2, 2), "same"),
    ((3, 8, 8, 4), (2, 2), (2, 1), "same"), ((2, 28, 28, 1), (3, 3), (1, 1), "valid")])
def test_device_kernels_match_the_host_reference(dtype, shape, kernel, strides, padding):
    from minicnn.kernels import reference
    from minicnn.layers.windows import output_size_and_pads
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    W = rng.standard_normal((*kernel, shape[3], 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    _, (top, bottom) = output_size_and_pads(shape[1], kernel[0], strides[0], padding)
    _, (left, right) = output_size_and_pads(shape[2], kernel[1], strides[1], padding)
    pads = (top, bottom, left, right)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-12}
    y, ctx = reference.conv2d_forward(x, W, b, strides, pads)
    yd, ctxd = reference.conv2d_forward(gpu.to_device(x), gpu.to_device(W), gpu.to_device(b), strides, pads)
    np.testing.assert_allclose(gpu.to_host(yd), y, **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for host, dev in zip(reference.conv2d_backward(dy, ctx, W),
                         reference.conv2d_backward(gpu.to_device(dy), ctxd, gpu.to_device(W))):
        np.testing.assert_allclose(gpu.to_host(dev), host, **tol)
    x[:, ::2, ::2] = x[:, 1::2, 1::2].max()  # ties
    p, pctx = reference.maxpool_forward(x, kernel, strides, pads)
    pd, pctxd = reference.maxpool_forward(gpu.to_device(x), kernel, strides, pads)
    np.testing.assert_array_equal(gpu.to_host(pd), p)
    dp = rng.standard_normal(p.shape).astype(dtype)
    np.testing.assert_allclose(gpu.to_host(reference.maxpool_backward(gpu.to_device(dp), pctxd)),
                               reference.maxpool_backward(dp, pctx), **tol)
    np.testing.assert_array_equal(gpu.to_host(reference.relu_forward(gpu.to_device(x))), reference.relu_forward(x))


@pytest.mark.gpu
@needs_gpu
def test_real_gpu_training_matches_the_cpu(tmp_path):
    set_random_seed(4)
    x, y = small_data(128)
    host, dev = small_model(), small_model()
    host.build((None, 8, 8, 1))
    dev.build((None, 8, 8, 1))
    dev.set_weights(host.get_weights())
    for m in (host, dev):
        m.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    dev.to("gpu")
    host.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    dev.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(host.get_weights(), dev.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    errors = check_layer(Conv2D(3, 3, padding="same", dtype="float64").to("gpu"),
                         np.random.default_rng(0).random((2, 6, 6, 2)))
    assert max(errors.values()) < 1e-6
    again = load_model(dev.save(tmp_path / "m.npz"))
    np.testing.assert_allclose(again.predict(x, verbose=0), dev.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
