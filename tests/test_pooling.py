"""The pooling layers (minicnn/layers/pooling.py): AveragePooling2D, the layer that
docs/contributing.md adds as its worked example, against the textbook loops, finite differences
and Keras, on each backend; global pooling against Keras. MaxPooling2D's kernels are tested in
test_kernels.py and test_gradients.py with Conv2D's."""
import os

import numpy as np
import pytest

import minicnn
from minicnn.gradcheck import check_layer
from minicnn.kernels import naive
from minicnn.layers import AveragePooling2D, Flatten, GlobalMaxPooling2D
from minicnn.models import Sequential, load_model

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = [  # pool, strides, padding, shape
    ((2, 2), None, "valid", (2, 6, 6, 3)),
    ((2, 2), None, "valid", (1, 7, 5, 2)),  # odd sizes: the last row/column is dropped
    ((3, 3), (1, 1), "valid", (2, 5, 6, 2)),  # overlapping windows
    ((3, 3), (2, 2), "same", (1, 7, 6, 3)),  # edge windows average fewer cells
    ((2, 3), (2, 1), "same", (1, 5, 5, 1)),
    ((1, 1), None, "valid", (1, 3, 3, 2)),
]


@pytest.mark.parametrize("pool,strides,padding,shape", CASES)
def test_avgpool_matches_the_loops_and_finite_differences(each_backend, pool, strides, padding, shape, rng):
    x = rng.standard_normal(shape)
    layer = AveragePooling2D(pool, strides=strides, padding=padding, dtype="float64")
    np.testing.assert_allclose(layer.forward(x), naive.avgpool(x, pool, strides or pool, padding), atol=1e-12)
    assert check_layer(layer, x)["x"] < 1e-6


def test_avgpool_matches_keras(rng, tmp_path):
    keras = pytest.importorskip("keras")
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    for padding in ("valid", "same"):
        ours = AveragePooling2D(3, strides=2, padding=padding)
        theirs = keras.layers.AveragePooling2D(3, strides=2, padding=padding)
        np.testing.assert_allclose(ours.forward(x), np.asarray(theirs(x)), rtol=1e-6, atol=1e-6)
    model = Sequential([AveragePooling2D(padding="SAME", input_shape=(7, 8, 3)), Flatten()])
    again = load_model(model.save(tmp_path / "m.npz"))
    assert type(again.layers[0]) is AveragePooling2D and again.layers[0].padding == "same"
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_avgpool_on_the_device_stand_in(fake_gpu, rng):
    """The reference kernels are written against xp: on (stand-in) CuPy arrays they give the
    host's values, forward and backward."""
    from minicnn import gpu
    x, dy = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((2, 4, 3, 3))
    host, dev = (AveragePooling2D(3, strides=2, padding="same", dtype="float64") for _ in range(2))
    dev.to("gpu")
    y, yd = host.forward(x, training=True), dev.forward(gpu.to_device(x), training=True)
    assert gpu.is_device_array(yd)
    np.testing.assert_allclose(gpu.to_host(yd), y, rtol=1e-12)
    np.testing.assert_allclose(gpu.to_host(dev.backward(gpu.to_device(dy))), host.backward(dy), rtol=1e-12)


# -- global pooling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["GlobalAveragePooling2D", "GlobalMaxPooling2D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(keras, rng, name, keepdims):
    x = (rng.permutation(2 * 5 * 4 * 3).reshape(2, 5, 4, 3) / 100).astype(np.float64)  # no ties
    ours = getattr(minicnn.layers, name)(keepdims=keepdims, dtype="float64")
    theirs = getattr(keras.layers, name)(keepdims=keepdims)
    np.testing.assert_allclose(ours.forward(x), np.asarray(theirs(x.astype(np.float32))), rtol=1e-6)
    assert ours.forward(x).shape == ((2, 1, 1, 3) if keepdims else (2, 3))
    assert check_layer(ours, x)["x"] < 1e-6


def test_global_max_pooling_ties_go_to_the_first_maximum():
    x = np.ones((1, 2, 2, 1))
    layer = GlobalMaxPooling2D(dtype="float64")
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.array([[5.0]]))[0, :, :, 0], [[5, 0], [0, 0]])
