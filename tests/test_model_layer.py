"""A model used as a layer of another (minicnn/model_layer.py): the same outputs, trained by the
outer optimizer, saved and loaded."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn.layers import Dense, Flatten, Softmax
from minicnn.models import Model, Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed


def test_a_model_as_a_layer(rng, tmp_path):
    set_random_seed(1)
    inner = Sequential([Flatten(input_shape=(6, 6)), Dense(8, activation="relu"), Dense(4)])
    outer = Sequential([inner, Softmax()])
    x, y = rng.random((12, 6, 6), dtype=np.float32), rng.integers(0, 4, 12)
    logits = inner.predict(x, verbose=0)
    np.testing.assert_allclose(outer.predict(x, verbose=0), np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                               rtol=1e-5)
    inputs = minicnn.Input((6, 6))
    graph = Model(inputs, Softmax()(inner(inputs)))
    np.testing.assert_allclose(graph.predict(x, verbose=0), outer.predict(x, verbose=0), rtol=1e-6)
    assert outer.count_params() == inner.count_params() and len(outer.get_weights()) == 4
    outer.compile(loss="sparse_categorical_crossentropy", optimizer=SGD(0.1))
    before = inner.get_weights()
    outer.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert all(np.any(a != b) for a, b in zip(before, inner.get_weights()))  # the outer optimizer trained the inner model
    again = load_model(outer.save(tmp_path / "outer.npz"))
    np.testing.assert_array_equal(again.predict(x, verbose=0), outer.predict(x, verbose=0))
    with pytest.raises(ValueError, match="must be built"):
        Sequential([Sequential([Dense(2)]), Softmax()])
