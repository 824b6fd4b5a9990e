"""Every layer, and the recipe's whole model, on the device against the host.

Each test runs twice: on the strict stand-in for CuPy (tests/fake_cupy.py), everywhere, and on
a real NVIDIA GPU (marked `gpu`, skipped without one). The stand-in finds a host array mixed
into device work; only the real run finds what CuPy itself does differently from NumPy
(functions it lacks, a kernel's rounding, an index it refuses).
"""
import sys

import numpy as np
import pytest
from toy import load_script

import minicnn
import minicnn.layers
from minicnn import gpu
from minicnn.gradcheck import check_layer
from minicnn.layers import (
    ELU,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LeakyReLU,
    MaxPooling2D,
    Normalization,
    RandomContrast,
    RandomCrop,
    RandomErasing,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    ReLU,
    Rescaling,
    Reshape,
    Softmax,
    UpSampling2D,
    ZeroPadding2D,
)
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed, to_categorical

needs_a_gpu = pytest.mark.skipif(not gpu.available(), reason="needs CuPy and an NVIDIA GPU")


@pytest.fixture(params=["stand-in", pytest.param("cuda", marks=[pytest.mark.gpu, needs_a_gpu])])
def device(request):
    """The device the test runs on: the stand-in for CuPy (conftest's fake_gpu), or the real GPU."""
    if request.param == "stand-in":
        request.getfixturevalue("fake_gpu")
    return request.param


def adapted_normalization(dtype, invert=False):
    layer = Normalization(axis=(1, -1), invert=invert, dtype=dtype)
    layer.adapt(np.random.default_rng(7).standard_normal((6, 3, 4, 2)) * 3 + 1)
    return layer


# (layer factory, input shape): every layer kind of minicnn.layers, with the arguments that take
# each one down another path (stride 2, "same" padding, no bias, a fused activation, ...)
LAYERS = {
    "conv_same_s2": (lambda dt: Conv2D(3, 3, strides=2, padding="same", dtype=dt), (2, 7, 6, 2)),
    "conv_relu_nobias": (lambda dt: Conv2D(4, (3, 2), activation="relu", use_bias=False, dtype=dt), (3, 6, 5, 3)),
    "conv_transpose_same_s2": (lambda dt: Conv2DTranspose(3, 3, strides=2, padding="same", dtype=dt), (2, 4, 3, 2)),
    "conv_transpose_valid_op_relu": (lambda dt: Conv2DTranspose(2, (2, 3), strides=(3, 2), output_padding=(2, 1),
                                                                 activation="relu", use_bias=False, dtype=dt), (2, 3, 4, 3)),
    "dense_relu": (lambda dt: Dense(5, activation="relu", dtype=dt), (4, 6)),
    "maxpool": (lambda dt: MaxPooling2D(2, dtype=dt), (2, 6, 6, 3)),
    "maxpool_3_s2_same": (lambda dt: MaxPooling2D(3, strides=2, padding="same", dtype=dt), (2, 7, 5, 2)),
    "avgpool": (lambda dt: AveragePooling2D(2, dtype=dt), (2, 5, 6, 3)),
    "global_avg": (lambda dt: GlobalAveragePooling2D(dtype=dt), (2, 4, 3, 5)),
    "global_max": (lambda dt: GlobalMaxPooling2D(dtype=dt), (2, 4, 3, 5)),
    "batchnorm": (lambda dt: BatchNormalization(dtype=dt), (4, 3, 3, 5)),
    "dropout": (lambda dt: Dropout(0.4, seed=3, dtype=dt), (4, 10)),
    "relu": (lambda dt: ReLU(max_value=0.8, dtype=dt), (3, 7)),
    "leaky_relu": (lambda dt: LeakyReLU(dtype=dt), (3, 7)),
    "elu": (lambda dt: ELU(dtype=dt), (3, 7)),
    "softmax": (lambda dt: Softmax(dtype=dt), (3, 7)),
    "activation_tanh": (lambda dt: Activation("tanh", dtype=dt), (3, 7)),
    "rescaling": (lambda dt: Rescaling(0.5, offset=0.1, dtype=dt), (2, 3, 3, 1)),
    "reshape": (lambda dt: Reshape((6, 2), dtype=dt), (2, 3, 4)),
    "flatten": (lambda dt: Flatten(dtype=dt), (2, 3, 4, 2)),
    "upsampling_nearest": (lambda dt: UpSampling2D((2, 3), dtype=dt), (2, 3, 4, 2)),
    "upsampling_bilinear": (lambda dt: UpSampling2D((3, 2), interpolation="bilinear", dtype=dt), (2, 3, 4, 2)),
    "normalization_adapted": (adapted_normalization, (2, 3, 4, 2)),
    "normalization_given_invert": (lambda dt: Normalization(mean=[1.0, 2.0], variance=[4.0, 0.5], invert=True,
                                                            dtype=dt), (2, 3, 4, 2)),
    "zero_padding": (lambda dt: ZeroPadding2D((1, 2), dtype=dt), (2, 3, 4, 2)),
    "random_flip": (lambda dt: RandomFlip(seed=5, dtype=dt), (4, 5, 6, 2)),
    "random_translation": (lambda dt: RandomTranslation(0.2, 0.3, fill_mode="constant", seed=5, dtype=dt), (3, 8, 7, 2)),
    "random_rotation": (lambda dt: RandomRotation(0.1, seed=5, dtype=dt), (3, 8, 7, 2)),
    "random_zoom": (lambda dt: RandomZoom(0.2, seed=5, dtype=dt), (3, 8, 7, 2)),
    "random_crop": (lambda dt: RandomCrop(5, 4, seed=5, dtype=dt), (3, 8, 7, 2)),
    "random_contrast": (lambda dt: RandomContrast(0.3, value_range=(0, 1), seed=5, dtype=dt), (3, 5, 4, 2)),
    "random_erasing": (lambda dt: RandomErasing((1.0, 1.0), scale=(0.2, 0.5), seed=5, dtype=dt), (3, 8, 7, 2)),
}
RESAMPLING = ("random_translation", "random_rotation", "random_zoom")


def test_the_grid_holds_every_layer_kind():
    names = {type(make("float32")).__name__ for make, _ in LAYERS.values()}
    wanted = {name for name in minicnn.layers.__all__ if name not in (
        "Layer", "Input", "InputLayer", "MaxPool2D", "AvgPool2D",  # the base, the graph's input, aliases
        "Add", "Concatenate",  # several inputs: test_the_recipe_and_a_graph_train_on_the_device_as_on_the_host
        "Average", "Dot", "Maximum", "Minimum", "Multiply", "Subtract")} - set(MERGES)  # test_every_merge_...
    wanted = {name for name in wanted if name[0].isupper()}  # not the functions (add, concatenate...)
    assert wanted <= names, wanted - names


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_on_the_device_gives_the_host_values(name, device):
    make, shape = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    host, dev = make("float64"), make("float64")
    for layer in (host, dev):
        layer.ensure_built(shape)
    dev.set_weights(host.get_weights())
    dev.to("gpu")
    # the resampling layers compute their sampling coordinates in float32, as Keras does: the
    # compiled host kernel and the device's reference round them in another order
    tol = {"rtol": 1e-5, "atol": 1e-6} if name in RESAMPLING else {"rtol": 1e-10, "atol": 1e-12}
    for training in (True, False):
        y = host.forward(x, training=training)
        yd = dev.forward(gpu.to_device(x), training=training)
        assert gpu.is_device_array(yd), type(yd)
        np.testing.assert_allclose(gpu.to_host(yd), y, **tol)
        if training:  # backward needs the training forward's cache
            dy = rng.standard_normal(y.shape)
            dx, dxd = host.backward(dy), dev.backward(gpu.to_device(dy))
            np.testing.assert_allclose(gpu.to_host(dxd), dx, **tol)
            for key, g in host.grads.items():
                assert gpu.is_device_array(dev.grads[key])
                np.testing.assert_allclose(gpu.to_host(dev.grads[key]), g, err_msg=key, **tol)
    for key, s in host.state.items():  # BatchNormalization's moving statistics moved alike
        np.testing.assert_allclose(gpu.to_host(dev.state[key]), s, rtol=1e-12, err_msg=key)


# merge layers and their inputs' shapes (broadcast where they differ)
MERGES = {"Add": [(2, 3, 4), (2, 1, 4)], "Subtract": [(2, 3, 4), (2, 4)], "Multiply": [(2, 3, 4)] * 3,
          "Average": [(2, 3, 4)] * 2, "Maximum": [(2, 3, 4), (2, 1, 4)], "Minimum": [(2, 3, 4)] * 3,
          "Dot": [(2, 3, 4), (2, 5, 4)]}


@pytest.mark.parametrize("name", list(MERGES))
def test_every_merge_on_the_device_gives_the_host_values(name, device):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for s in MERGES[name]]
    make = getattr(minicnn.layers, name)
    host, dev = (make(-1, normalize=True, dtype="float64") if name == "Dot" else make(dtype="float64")
                 for _ in range(2))
    y = host.forward(xs, training=True)
    yd = dev.forward([gpu.to_device(x) for x in xs], training=True)
    assert gpu.is_device_array(yd)
    np.testing.assert_allclose(gpu.to_host(yd), y, rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    for dx, dxd in zip(host.backward(dy), dev.backward(gpu.to_device(dy))):
        assert gpu.is_device_array(dxd)
        np.testing.assert_allclose(gpu.to_host(dxd), dx, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in LAYERS if n.startswith(("conv", "dense", "batchnorm"))])
def test_gradient_checks_on_the_device(name, device):
    """Layers with params take their input to the device: the finite differences run there."""
    make, shape = LAYERS[name]
    layer = make("float64")
    layer.ensure_built(shape)
    layer.to("gpu")
    errors = check_layer(layer, np.random.default_rng(1).standard_normal(shape))
    assert max(errors.values()) < 1e-6, errors


def residual_graph():
    """Conv -> BN -> ReLU, a shortcut added back, a concatenated pooled branch: Add and Concatenate."""
    L = minicnn.layers
    inputs = minicnn.Input((8, 8, 2))
    x = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(4, 3, padding="same", use_bias=False)(inputs)))
    x = L.Add()([x, L.Conv2D(4, 1)(inputs)])
    x = L.Concatenate()([L.GlobalAveragePooling2D()(x), L.GlobalMaxPooling2D()(x)])
    return minicnn.Model(inputs, L.Dense(3, activation="softmax")(x))


@pytest.mark.parametrize("which", ["recipe", "graph"])
def test_the_recipe_and_a_graph_train_on_the_device_as_on_the_host(which, device):
    """Two steps of SGD from the same weights, with the same random draws (flips, shifts and
    dropout are drawn on the host): the same losses and weights. The host runs the reference
    kernels, as the device does: the stand-in then gives the same numbers to the bit. A real
    GPU sums in other orders (cuBLAS), and through a few hundred thousand ReLU and max-pooling
    decisions one may fall the other way (as between the Numba and NumPy backends for about one
    start in six of this model): that moves one weight's gradient by ~1e-3 of its scale."""
    if which == "recipe":
        build, shape = load_script("examples/fashion_mnist_recipe.py").build_model, (16, 28, 28, 1)
    else:
        build, shape = residual_graph, (16, 8, 8, 2)
    rng = np.random.default_rng(2)
    x = rng.random(shape, dtype=np.float32)
    y = to_categorical(rng.integers(0, 10 if which == "recipe" else 3, len(x)), 10 if which == "recipe" else 3)
    tol = {"rtol": 1e-6, "atol": 1e-7} if device == "stand-in" else {"rtol": 1e-2, "atol": 1e-4}
    previous = minicnn.backend.get_backend()
    minicnn.backend.set_backend("numpy")
    try:
        set_random_seed(0)
        host, dev = build(), build()
        dev.set_weights(host.get_weights())
        for m in (host, dev):  # SGD: Adam would magnify the round-off in the weights before BatchNorm
            m.compile(loss="categorical_crossentropy", optimizer=SGD(0.05))
        dev.to("gpu")
        losses = []
        for m in (host, dev):
            set_random_seed(7)
            losses.append(m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"])
        np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
        for a, b in zip(host.get_weights(), dev.get_weights()):
            np.testing.assert_allclose(b, a, **tol)
        np.testing.assert_allclose(dev.predict(x, verbose=0), host.predict(x, verbose=0), **tol)
    finally:
        minicnn.backend.set_backend(previous)


def test_host_batches_meet_a_paramless_branch_and_the_loss_on_the_device(device):
    """The input read first by a layer without params (which leaves arrays where they are) and
    merged with a conv branch; targets given on the host: the model moves both to its device."""
    L = minicnn.layers
    inputs = minicnn.Input((5, 5, 2))
    x = L.Concatenate()([L.GlobalAveragePooling2D()(inputs), L.GlobalMaxPooling2D()(L.Conv2D(3, 3)(inputs))])
    model = minicnn.Model(inputs, L.Dense(2, activation="softmax")(x))
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    host = minicnn.Model.from_config(model.get_config())
    host.compile(loss="categorical_crossentropy", optimizer="sgd")
    host.set_weights(model.get_weights())
    model.to("gpu")
    rng = np.random.default_rng(3)
    x, y = rng.random((4, 5, 5, 2), dtype=np.float32), to_categorical([0, 1, 1, 0], 2)
    np.testing.assert_allclose(model.predict(x, verbose=0), host.predict(x, verbose=0), rtol=1e-5)
    p = model.forward(x, training=True)
    assert gpu.is_device_array(p)
    model.backward(y, p)
    host.backward(y, host.forward(x, training=True))
    for layer, twin in zip(model.layers, host.layers):
        for key, g in twin.grads.items():
            np.testing.assert_allclose(gpu.to_host(layer.grads[key]), g, rtol=1e-4, atol=1e-6, err_msg=key)


def test_a_model_gradient_check_on_the_device(device):
    from minicnn.gradcheck import check_model
    model = minicnn.models.Sequential([Conv2D(2, 3, input_shape=(5, 5, 1), dtype="float64"),
                                       MaxPooling2D(dtype="float64"), Flatten(dtype="float64"),
                                       Dense(3, activation="softmax", dtype="float64")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    model.to("gpu")
    rng = np.random.default_rng(6)
    errors = check_model(model, rng.random((3, 5, 5, 1)), to_categorical([0, 2, 1], 3).astype(np.float64))
    assert len(errors) == 4 and max(errors.values()) < 1e-6, errors


def test_saved_weights_load_into_a_model_on_the_device(device, tmp_path):
    """load_weights, and load_model under the cupy backend, write host arrays from the file into
    device params (CuPy refuses `device[...] = host`)."""
    build = load_script("examples/fashion_mnist_recipe.py").build_model
    set_random_seed(1)
    saved = build()
    saved.compile(loss="categorical_crossentropy", optimizer="adam")
    saved.train_on_batch(np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32), np.eye(10)[:8])
    path = saved.save(tmp_path / "m.npz")
    dev = build().to("gpu")
    dev.load_weights(path)
    for a, b in zip(saved.get_weights(), dev.get_weights()):
        np.testing.assert_array_equal(a, b)
    previous = minicnn.backend.get_backend()
    minicnn.backend.set_backend("cupy")
    try:
        again = minicnn.models.load_model(path)
    finally:
        minicnn.backend.set_backend(previous)
    assert again.device == "gpu" and all(gpu.is_device_array(s) for s in again.optimizer.slots[0].values())
    for a, b in zip(saved.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(again.predict(x, verbose=0), saved.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
    again.fit(x, np.eye(10)[:4], epochs=1, verbose=0)  # the loaded Adam state is on the device too


# -- the GPU's own kernels (minicnn/kernels/cupy_kernels.py) against the reference, on a real GPU ------

@pytest.mark.gpu
@needs_a_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,pool,stride,padding", [
    ((2, 6, 6, 3), (2, 2), (2, 2), "valid"), ((1, 7, 5, 2), (2, 2), (2, 2), "valid"),  # odd: a row no window reads
    ((2, 7, 5, 2), (3, 3), (2, 2), "same"), ((3, 5, 6, 1), (3, 2), (1, 1), "valid"),  # overlapping windows
    ((1, 9, 9, 4), (2, 2), (2, 2), "same"), ((2, 26, 26, 64), (2, 2), (2, 2), "valid")])  # the tutorial's
@pytest.mark.parametrize("ties", [False, True])
def test_cuda_max_pooling_is_the_reference(dtype, shape, pool, stride, padding, ties):
    from minicnn.kernels import cupy_kernels, reference
    from minicnn.layers.windows import output_size_and_pads
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    if ties:  # a whole quarter of the cells equal to the maximum: the first in the window wins
        x[:, ::2, ::2] = x.max()
    _, (top, bottom) = output_size_and_pads(shape[1], pool[0], stride[0], padding)
    _, (left, right) = output_size_and_pads(shape[2], pool[1], stride[1], padding)
    pads = (top, bottom, left, right)
    y, ctx = reference.maxpool_forward(gpu.to_device(x), pool, stride, pads)
    yc, ctxc = cupy_kernels.maxpool_forward(gpu.to_device(x), pool, stride, pads)
    np.testing.assert_array_equal(gpu.to_host(yc), gpu.to_host(y))
    np.testing.assert_array_equal(gpu.to_host(ctxc[0]), gpu.to_host(ctx[0]))  # the same winners
    assert ctxc[1:] == ctx[1:]
    dy = gpu.to_device(rng.standard_normal(y.shape).astype(dtype))
    dx = gpu.to_host(reference.maxpool_backward(dy, ctx))
    np.testing.assert_allclose(gpu.to_host(cupy_kernels.maxpool_backward(dy, ctxc)), dx, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gpu.to_host(cupy_kernels.maxpool_backward(dy, ctx)), dx, rtol=1e-6, atol=1e-7)


@pytest.mark.gpu
@needs_a_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("decay", [None, (0.004, 0.01)])
def test_cuda_adam_step_is_the_reference(dtype, decay):
    from minicnn.kernels import cupy_kernels, reference
    rng = np.random.default_rng(1)
    t = np.dtype(dtype).type
    shapes = [(3, 3, 2, 5), (5,), (37, 11)]
    host = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(4)]  # p, g, m, v
    host[3] = [np.abs(v) for v in host[3]]
    scalars = (t(0.001), t(0.1), t(0.001), t(1e-7))
    dec = None if decay is None else (t(decay[0]), t(decay[1]))
    results = []
    for kernels in (reference, cupy_kernels):
        p, g, m, v = ([gpu.to_device(a) for a in arrays] for arrays in host)
        slots = [{"m": a, "v": b} for a, b in zip(m, v)]
        assert kernels.adam_step(p, g, slots, *scalars, commit=False, decay=dec)
        kernels.adam_step(p, g, slots, *scalars, commit=True, decay=dec)
        results.append([gpu.to_host(a) for a in p + [s[k] for s in slots for k in ("m", "v")]])
    for ref, cuda in zip(*results):
        np.testing.assert_allclose(cuda, ref, rtol=1e-6, atol=1e-7) if dtype == "float32" else \
            np.testing.assert_allclose(cuda, ref, rtol=1e-14, atol=1e-15)
    # a gradient that overflows g * g: refused by the check, as the reference refuses it
    p, g, m, v = ([gpu.to_device(a) for a in arrays] for arrays in host)
    g[2][4, 7] = t(np.finfo(dtype).max)
    slots = [{"m": a, "v": b} for a, b in zip(m, v)]
    assert not cupy_kernels.adam_step(p, g, slots, *scalars, commit=False, decay=dec)
    assert not reference.adam_step(p, g, slots, *scalars, commit=False, decay=dec)


@pytest.mark.gpu
@needs_a_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(64, 28, 28, 32), (3, 5, 7, 4), (1, 1, 1, 6), (5, 3)])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_cuda_batchnorm_sums_are_the_reference(dtype, shape, batch_stats):
    from minicnn.kernels import cupy_kernels, reference
    rng = np.random.default_rng(2)
    x = gpu.to_device(rng.standard_normal(shape).astype(dtype) * 3 + 1)
    scale = 1e-5 if dtype == "float32" else 1e-12  # of the largest entry: sums of 50k values in another order

    def assert_close(cuda, ref):
        cuda, ref = gpu.to_host(cuda), gpu.to_host(ref)
        assert cuda.shape == ref.shape and np.abs(cuda - ref).max() <= scale * np.abs(ref).max()

    for ref, cuda in zip(reference.batchnorm_moments(x), cupy_kernels.batchnorm_moments(x)):
        assert_close(cuda, ref)
    C = shape[-1]
    gamma, mean, var = (gpu.to_device(rng.random(C).astype(dtype) + 0.5) for _ in range(3))
    _, ctx = reference.batchnorm_forward(x, gamma, None, mean, var, np.dtype(dtype).type(1e-3))
    dy = gpu.to_device(rng.standard_normal(shape).astype(dtype))
    for g in (gamma, None):
        for ref, cuda in zip(reference.batchnorm_backward(dy, ctx, g, batch_stats),
                             cupy_kernels.batchnorm_backward(dy, ctx, g, batch_stats)):
            assert_close(cuda, ref)


@pytest.mark.gpu
@needs_a_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((2, 7, 6, 3), (3, 3), (1, 1), "valid"), ((1, 9, 9, 1), (3, 2), (2, 2), "same"),
    ((3, 8, 8, 4), (2, 2), (2, 1), "same"), ((64, 28, 28, 1), (3, 3), (1, 1), "valid")])
@pytest.mark.parametrize("need_dx", [True, False])
def test_cuda_conv_backward_is_the_reference(dtype, shape, kernel, strides, padding, need_dx):
    from minicnn.kernels import cupy_kernels, reference
    from minicnn.layers.windows import output_size_and_pads
    rng = np.random.default_rng(4)
    x = gpu.to_device(rng.standard_normal(shape).astype(dtype))
    W = gpu.to_device(rng.standard_normal((*kernel, shape[3], 5)).astype(dtype))
    b = gpu.to_device(rng.standard_normal(5).astype(dtype))
    _, (top, bottom) = output_size_and_pads(shape[1], kernel[0], strides[0], padding)
    _, (left, right) = output_size_and_pads(shape[2], kernel[1], strides[1], padding)
    y, ctx = reference.conv2d_forward(x, W, b, strides, (top, bottom, left, right))
    dy = gpu.to_device(rng.standard_normal(y.shape).astype(dtype))
    scale = 1e-5 if dtype == "float32" else 1e-12
    for ref, cuda in zip(reference.conv2d_backward(dy, ctx, W, need_dx), cupy_kernels.conv2d_backward(dy, ctx, W, need_dx)):
        if ref is None:
            assert cuda is None
            continue
        ref, cuda = gpu.to_host(ref), gpu.to_host(cuda)
        assert cuda.shape == ref.shape and np.abs(cuda - ref).max() <= scale * np.abs(ref).max()


def test_a_layer_without_params_under_the_cupy_backend_leaves_host_arrays_on_the_host(device):
    previous = minicnn.backend.get_backend()
    minicnn.backend.set_backend("cupy")
    try:
        x = np.random.default_rng(5).standard_normal((2, 6, 6, 3)).astype(np.float32)
        pool = MaxPooling2D(2)
        y = pool.forward(x, training=True)
        assert type(y) is np.ndarray
        np.testing.assert_array_equal(y, x.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4)))
        assert type(pool.backward(np.ones_like(y))) is np.ndarray
    finally:
        minicnn.backend.set_backend(previous)


def test_the_gpu_kernels_keep_the_reference_signatures():
    """What cupy_kernels defines replaces the reference's kernel of that name on device arrays."""
    import inspect

    from minicnn.kernels import CONTRACT, cupy_kernels, reference
    own = [fn for fn in CONTRACT if hasattr(cupy_kernels, fn)]
    assert set(own) == {"conv2d_backward", "maxpool_forward", "maxpool_backward", "batchnorm_moments",
                        "batchnorm_backward", "adam_step"}
    for fn in own:
        assert inspect.signature(getattr(cupy_kernels, fn)) == inspect.signature(getattr(reference, fn)), fn
    gpu_kernels = minicnn.backend.kernels_named("cupy")  # what device arrays get on a real GPU
    assert {fn for fn in CONTRACT if gpu_kernels.speeds_up(fn)} == set(own)


def test_the_gpu_step_benchmark_runs_on_the_stand_in(device, monkeypatch):
    """benchmarks/gpu_step.py, its CUDA event timer replaced by a host one (the stand-in has no
    events): a row per layer of each model, then the two whole steps, every time a number."""
    import time
    import types
    if device == "cuda":
        pytest.skip("the real run is benchmarks/gpu_check.sh")

    def benchmark(fn, n_repeat, n_warmup):
        times = []
        for _ in range(n_warmup + n_repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return types.SimpleNamespace(cpu_times=np.array(times[n_warmup:]), gpu_times=np.array([times[n_warmup:]]))
    cupyx = types.ModuleType("cupyx")
    cupyx.profiler = types.SimpleNamespace(benchmark=benchmark)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setitem(sys.modules, "cupyx.profiler", cupyx.profiler)
    script = load_script("benchmarks/gpu_step.py")  # its register_backend("cupy", ...) is undone by fake_gpu
    for model in ("tutorial", "recipe"):
        rows = script.profile(model, 4, 1, "reference")
        layers = [r for r in rows if "forward_gpu_ms" in r]
        steps = [r for r in rows if "step_gpu_ms" in r]
        assert len(layers) == (10 if model == "tutorial" else 20) and len(steps) == 2
        assert all(r[k] > 0 for r in layers for k in ("forward_host_ms", "forward_gpu_ms"))
        assert all(r["step_host_ms"] > 0 for r in steps)


def test_a_sequential_on_the_device_takes_its_batch_there_first(device):
    """The first layers have no params (augmentation, rescaling): they run on the device too."""
    seen = []

    class Spy(Rescaling):
        def call(self, x, training=False):
            seen.append(gpu.is_device_array(x))
            return super().call(x, training)

    model = minicnn.models.Sequential([Spy(0.5, input_shape=(4, 4, 1)), Flatten(), Dense(2)]).to("gpu")
    y = model.forward(np.ones((3, 4, 4, 1), np.float32))
    assert seen == [True] and gpu.is_device_array(y)


def test_fit_on_the_device_matches_keras(device, keras):
    """An independent reference for the device, beside the host running the same code: fit on
    the device, with sample weights, a short last batch, label smoothing in the softmax shortcut
    and a BatchNormalization, against Keras 3 from the same weights: the same History and the
    same weights."""
    from minicnn.losses import CategoricalCrossentropy
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 6, 6, 2)).astype(np.float32)
    y = to_categorical(rng.integers(0, 3, 10), 3)
    w = np.linspace(0.2, 2, 10).astype(np.float32)

    def layers(m, **first):
        return [m.Conv2D(3, 3, **first), m.BatchNormalization(), m.ReLU(), m.Flatten(), m.Dense(3),
                m.Activation("softmax")]
    ours = minicnn.models.Sequential(layers(minicnn.layers, input_shape=(6, 6, 2)))
    theirs = keras.Sequential([keras.Input((6, 6, 2)), *layers(keras.layers)])
    theirs.set_weights(ours.get_weights())
    ours.compile(loss=CategoricalCrossentropy(label_smoothing=0.2), optimizer=SGD(0.1), metrics=["accuracy"])
    theirs.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.2), optimizer=keras.optimizers.SGD(0.1),
                   metrics=["accuracy"])
    ours.to("gpu")
    kwargs = {"batch_size": 4, "epochs": 2, "shuffle": False, "verbose": 0, "sample_weight": w,
              "validation_data": (x[:5], y[:5])}
    h_ours, h_theirs = ours.fit(x, y, **kwargs).history, theirs.fit(x, y, **kwargs).history
    assert sorted(h_ours) == sorted(h_theirs)
    for key in h_theirs:
        np.testing.assert_allclose(h_ours[key], h_theirs[key], rtol=1e-4, atol=1e-5, err_msg=key)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
