"""Normalization (minicnn/layers/preprocessing.py): adapt's statistics, values and gradients
against Keras (given statistics, adapted ones, several axes, invert), finite differences,
weights in Keras's order, summary, config and saving."""
import numpy as np
import pytest
from keras_twin import assert_same_pass, assert_saved_and_loaded, assert_summary_matches

import minicnn
from minicnn.gradcheck import check_layer
from minicnn.layers import Normalization


def data(rng, shape):
    return (rng.standard_normal(shape) * rng.uniform(0.5, 4, shape[-1]) + rng.uniform(-3, 3, shape[-1])).astype(
        np.float32)


@pytest.mark.parametrize("axis, shape", [(-1, (40, 3)), (-1, (20, 5, 4, 3)), ((1, -1), (30, 4, 3)), (None, (25, 6)),
                                         (2, (20, 3, 4, 2))])
@pytest.mark.parametrize("invert", [False, True])
def test_adapt_matches_keras(keras, tf, rng, axis, shape, invert):
    x = data(rng, shape)
    layer, klayer = Normalization(axis=axis, invert=invert), keras.layers.Normalization(axis=axis, invert=invert)
    layer.adapt(x)
    klayer.adapt(x)
    assert len(layer.get_weights()) == len(klayer.get_weights()) == 3
    for mine, theirs in zip(layer.get_weights(), klayer.get_weights()):  # mean, variance, count
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert layer.count_params() == klayer.count_params()
    assert_same_pass(layer, klayer, x[:4], tf, rng)


def test_adapt_is_the_population_statistics_and_batches_combine(rng):
    x = data(rng, (50, 4, 3)).astype(np.float64)
    whole = Normalization(axis=-1, dtype="float64")
    whole.adapt(x)
    np.testing.assert_allclose(whole.state["mean"], x.mean(axis=(0, 1)))
    np.testing.assert_allclose(whole.state["variance"], ((x - x.mean(axis=(0, 1))) ** 2).mean(axis=(0, 1)))
    batched = Normalization(axis=-1, dtype="float64")
    batched.adapt(x[i:i + 16] for i in range(0, 50, 16))  # a generator of uneven batches
    for key in ("mean", "variance"):
        np.testing.assert_allclose(batched.state[key], whole.state[key], rtol=1e-12)
    y = whole.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 1)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1)), 1, rtol=1e-12)


@pytest.mark.parametrize("axis, mean, variance", [
    (-1, 2.0, 4.0), (-1, [1.0, -2.0, 0.5], [4.0, 0.25, 1e-20]),
    ((1, 2), [1.0, -2.0, 0.5], [4.0, 0.25, 2.0]),  # fewer axes than kept: they are the last kept ones
    ((1, 2), np.arange(15.0).reshape(5, 3), np.arange(1.0, 16.0).reshape(5, 3))])
@pytest.mark.parametrize("invert", [False, True])
def test_given_statistics_match_keras(keras, tf, rng, axis, mean, variance, invert):
    x = data(rng, (4, 5, 3))
    layer = Normalization(axis=axis, mean=mean, variance=variance, invert=invert)
    klayer = keras.layers.Normalization(axis=axis, mean=mean, variance=variance, invert=invert)
    assert_same_pass(layer, klayer, x, tf, rng)  # a variance of 1e-20 meets the floor eps, as in Keras
    assert layer.get_weights() == [] and klayer.get_weights() == []


@pytest.mark.parametrize("invert", [False, True])
def test_gradients(rng, invert):
    layer = Normalization(axis=(1, 2), invert=invert, dtype="float64")
    layer.adapt(data(rng, (10, 3, 4)))
    assert check_layer(layer, rng.standard_normal((2, 3, 4)))["x"] < 1e-6


def test_invert_undoes_the_normalization(rng):
    x = data(rng, (30, 4))
    forward, back = Normalization(), Normalization(invert=True)
    forward.adapt(x)
    back.adapt(x)
    np.testing.assert_allclose(back.forward(forward.forward(x)), x, rtol=1e-5, atol=1e-5)


def test_bad_arguments_are_named(rng):
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(mean=1.0)
    with pytest.raises(ValueError, match="same shape"):
        Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="nothing to learn"):
        Normalization(mean=1.0, variance=1.0).adapt(np.ones((3, 2)))
    with pytest.raises(ValueError, match="batch axis"):
        Normalization(axis=0).build((None, 3))
    with pytest.raises(ValueError, match="out of range"):
        Normalization(axis=3).build((None, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        Normalization(mean=[1.0, 2.0], variance=[1.0, 2.0]).build((None, 3))
    layer = Normalization()
    layer.adapt(np.ones((4, 3)))
    with pytest.raises(ValueError, match="built for inputs of shape"):
        layer.adapt(np.ones((4, 2)))


def model(lib, adapt_on=None):
    norm = lib.layers.Normalization(axis=-1)
    if adapt_on is not None:
        norm.adapt(adapt_on)
    return lib.Sequential([lib.Input(shape=(6, 6, 2)), norm, lib.layers.Conv2D(3, 3), lib.layers.Flatten(),
                           lib.layers.Dense(1)])


def test_in_a_model_summary_config_saving(keras, tmp_path, rng):
    x = data(rng, (20, 6, 6, 2))
    mine = model(minicnn, adapt_on=x)
    assert_summary_matches(mine, model(keras))
    assert mine.layers[1].input_grad is False  # the layer after it needs no dL/dx
    again = assert_saved_and_loaded(mine, x, tmp_path)
    np.testing.assert_array_equal(again.layers[0].state["mean"], mine.layers[0].state["mean"])
    mine.compile(loss="mse", optimizer="adam")
    mine.fit(x, x[:, 0, 0, :1], epochs=1, verbose=0)
    given = minicnn.Sequential([minicnn.Input(shape=(3,)), Normalization(mean=[1.0, 2, 3], variance=[1.0, 4, 9],
                                                                         invert=True)])
    assert given.count_params() == 0
    assert_saved_and_loaded(given, x[:5, 0, 0, :1].repeat(3, axis=1), tmp_path)
