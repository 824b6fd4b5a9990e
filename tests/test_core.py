"""The layers of minicnn/layers/core.py that reshape or rescale: Flatten (Keras's (H, W, C)
order), Reshape, Rescaling and ZeroPadding2D, against Keras 3 and finite differences."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn.gradcheck import check_layer
from minicnn.layers import Flatten, Rescaling, Reshape
from minicnn.models import Sequential


def test_flatten_is_hwc_order():
    x = np.arange(2 * 2 * 3 * 2, dtype=np.float32).reshape(2, 2, 3, 2)
    np.testing.assert_array_equal(Flatten()(x)[1], x[1].reshape(-1))


def test_reshape_and_rescaling(keras, rng):
    x = rng.standard_normal((2, 4, 6, 1))
    for ours, theirs in [(Reshape((3, -1)), keras.layers.Reshape((3, -1))),
                         (Rescaling(1 / 255, offset=-0.5), keras.layers.Rescaling(1 / 255, offset=-0.5))]:
        np.testing.assert_allclose(ours.forward(x.astype(np.float32)), np.asarray(theirs(x.astype(np.float32))),
                                   rtol=1e-6)
    assert check_layer(Reshape((3, -1), dtype="float64"), x)["x"] < 1e-6
    assert check_layer(Rescaling(0.5, offset=1.0, dtype="float64"), x)["x"] < 1e-6
    with pytest.raises(ValueError, match="cannot reshape inputs of shape"):
        Sequential([Reshape((5, 5), input_shape=(4, 6, 1))])


@pytest.mark.parametrize("padding", [1, (2, 0), ((1, 2), (0, 3))])
def test_zero_padding(keras, rng, padding):
    x = rng.standard_normal((2, 4, 5, 3))
    ours = minicnn.layers.ZeroPadding2D(padding, dtype="float64")
    np.testing.assert_allclose(ours.forward(x), np.asarray(keras.layers.ZeroPadding2D(padding)(x.astype(np.float32))),
                               rtol=1e-6)
    assert check_layer(ours, x)["x"] < 1e-6
    with pytest.raises(ValueError, match="padding must"):
        minicnn.layers.ZeroPadding2D("same")
