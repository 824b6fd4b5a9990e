"""Dropout (minicnn/layers/regularization.py): inverted, only in training, as Keras 3; its seeds,
noise_shape and arguments; its mask to the bit; finite differences with the mask fixed."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minicnn.gradcheck import check_layer
from minicnn.layers import Dropout
from minicnn.utils import set_random_seed


def test_dropout_is_inverted_and_only_in_training(keras, rng):
    x = rng.standard_normal((100, 100)).astype(np.float32) + 5  # no zeros of its own
    layer = Dropout(0.3, seed=1)
    np.testing.assert_array_equal(layer.forward(x), x)  # inference: the identity
    np.testing.assert_array_equal(np.asarray(keras.layers.Dropout(0.3)(x)), x)  # as in Keras
    y = layer.forward(x, training=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)  # kept values scaled by 1 / (1 - rate)
    k_y = np.asarray(keras.layers.Dropout(0.3, seed=1)(x, training=True))
    np.testing.assert_allclose(k_y[k_y != 0], x[k_y != 0] / 0.7, rtol=1e-6)  # Keras scales the same way
    assert abs((~kept).mean() - 0.3) < 0.03 and abs((k_y == 0).mean() - 0.3) < 0.03
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), dy * kept / 0.7, rtol=1e-6)  # the same mask, the same scale


def test_dropout_seeds_noise_shape_and_arguments(rng):
    x = np.ones((4, 3, 3, 5), np.float32)
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))
    set_random_seed(3)
    first = Dropout(0.5).forward(x, training=True)
    set_random_seed(3)
    np.testing.assert_array_equal(Dropout(0.5).forward(x, training=True), first)
    y = Dropout(0.5, noise_shape=(None, 1, 1, None), seed=0).forward(x, training=True)
    assert all(len(np.unique(y[n, :, :, c])) == 1 for n in range(4) for c in range(5))  # whole maps dropped
    assert np.all(Dropout(1.0).forward(x, training=True) == 0)
    assert not Dropout(1.0).mask((2, 3)).any()  # its mask, asked directly: all dropped, no division by zero
    np.testing.assert_array_equal(Dropout(0.0).forward(x, training=True), x)
    for bad in (-0.1, 1.5, "0.5", None):
        with pytest.raises(ValueError, match="rate"):
            Dropout(bad)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7, 1 / 3])
def test_dropout_mask_is_the_textbook_formula_to_the_bit(dtype, rate):
    """Dropout.mask computes ((draw < keep) / keep).astype(dtype) with fewer passes; the same bits
    (so a seed gives the masks it always gave), for rates whose 1 / keep is not exact."""
    shape = (5, 7, 3)
    keep = 1 - rate
    want = ((np.random.default_rng(4).random(shape) < keep) / keep).astype(dtype)
    got = Dropout(rate, seed=4, dtype=dtype).mask(shape)
    assert got.dtype == np.dtype(dtype) and 0 < np.count_nonzero(got) < got.size
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def test_dropout_gradient_with_its_mask_fixed(rng):
    layer = Dropout(0.4, dtype="float64", seed=0)
    fixed = layer.mask((3, 6))
    layer.mask = lambda shape: fixed  # the same mask at every forward, for the finite differences
    assert check_layer(layer, rng.standard_normal((3, 6)))["x"] < 1e-6
