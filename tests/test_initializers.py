"""Initialisers by name and as objects, against Keras's: the same fans, limits, spreads and
truncation (random streams differ between engines, so statistics are compared, on 100,000 draws)."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minicnn import initializers
from minicnn.layers import Conv2D, Dense
from minicnn.utils import set_random_seed

NAMES = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
         "random_normal", "random_uniform", "truncated_normal", "zeros", "ones"]
SHAPE = (5, 5, 40, 100)  # a conv kernel: fan_in 1,000, fan_out 2,500


@pytest.mark.parametrize("name", NAMES)
def test_initializers_spread_as_keras(name):
    keras = pytest.importorskip("keras")
    set_random_seed(0)
    ours = initializers.get(name)(SHAPE, "float32")
    theirs = np.asarray(keras.initializers.get(name)(SHAPE))
    assert ours.shape == SHAPE and ours.dtype == np.float32
    assert float(ours.std()) == pytest.approx(float(theirs.std()), rel=0.02, abs=1e-9)
    if name not in ("ones", "zeros"):  # centred at 0: a mean within 5 standard errors
        assert abs(float(ours.mean())) < 5 * float(ours.std()) / np.sqrt(ours.size)
    else:
        np.testing.assert_array_equal(ours, theirs)
    if name != "random_normal":  # bounded: the same limits, the same truncation
        assert np.abs(ours).max() <= np.abs(theirs).max() * 1.05 + 1e-9


def test_formulas_by_hand():
    he = initializers.get("he_normal")((1000, 500), "float64")
    assert he.std() == pytest.approx(np.sqrt(2 / 1000), rel=0.02) and np.abs(he).max() <= 2 * np.sqrt(2 / 1000) / 0.8796
    lim = np.sqrt(6 / (1000 + 500))
    glorot = initializers.GlorotUniform(seed=1)((1000, 500))
    assert np.abs(glorot).max() <= lim and np.abs(glorot).max() > 0.99 * lim
    np.testing.assert_array_equal(initializers.Constant(0.3)((2, 2)), np.full((2, 2), 0.3, np.float32))
    a, b = initializers.HeNormal(seed=3)((4, 4)), initializers.HeNormal(seed=3)((4, 4))
    np.testing.assert_array_equal(a, b)  # a seed gives the same draws


def test_layers_take_names_and_objects():
    conv = Conv2D(8, 3, kernel_initializer="he_uniform", bias_initializer=initializers.Constant(0.1))
    conv.build((None, 6, 6, 4))
    assert np.abs(conv.params["W"]).max() <= np.sqrt(6 / 36) and np.all(conv.params["b"] == np.float32(0.1))
    dense = Dense(3, kernel_initializer=initializers.RandomNormal(stddev=0.01, seed=0))
    dense.build((None, 500))
    assert dense.params["W"].std() == pytest.approx(0.01, rel=0.1)
    with pytest.raises(ValueError, match="unknown initializer 'he'"):
        Dense(3, kernel_initializer="he")
    with pytest.raises(ValueError, match="mode must be"):
        initializers.VarianceScaling(mode="fan")
