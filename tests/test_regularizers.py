"""Weight regularizers (minicnn/regularizers.py): in the loss and in the steps, as Keras 3's."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed, to_categorical


def test_regularizers_in_loss_and_steps_as_keras(keras, rng, tmp_path):
    from minicnn import regularizers
    set_random_seed(4)
    model = Sequential([Flatten(input_shape=(4, 4, 1)),
                        Dense(6, activation="relu", kernel_regularizer=regularizers.L2(0.01), bias_regularizer="l1"),
                        Dense(3, activation="softmax", kernel_regularizer=regularizers.L1L2(l1=0.001, l2=0.002))])
    K = keras.regularizers
    k_model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(6, activation="relu", kernel_regularizer=K.L2(0.01),
                                                   bias_regularizer="l1"),
                                keras.layers.Dense(3, activation="softmax", kernel_regularizer=K.L1L2(l1=0.001, l2=0.002))])
    weights = model.get_weights()
    weights[1] = rng.standard_normal(6).astype(np.float32) * 0.1  # a bias the l1 penalty can see
    model.set_weights(weights)
    k_model.set_weights(weights)
    model.compile(loss="categorical_crossentropy", optimizer=SGD(0.1))
    k_model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.1))
    x, y = rng.random((8, 4, 4, 1), dtype=np.float32), to_categorical(rng.integers(0, 3, 8), 3)
    for _ in range(3):
        assert model.train_on_batch(x, y) == pytest.approx(k_model.train_on_batch(x, y), rel=1e-4)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(k_model.evaluate(x, y, verbose=0)), rel=1e-4)
    again = load_model(model.save(tmp_path / "reg.npz"))
    assert again.regularization_loss() == pytest.approx(model.regularization_loss())
    with pytest.raises(ValueError, match="unknown regularizer"):
        Dense(2, kernel_regularizer="l3")
