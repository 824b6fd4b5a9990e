"""The losses against Keras 3 (values and gradients, from_logits, label_smoothing, binary and
regression losses), by hand at the edges (probabilities 0 and 1, huge logits), by name, and in
a model trained step for step as Keras."""
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn import activations, losses
from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed, to_categorical


def test_crossentropy_values_by_hand():
    y = np.array([[0, 1, 0], [1, 0, 0]], dtype=np.float32)
    p = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]], dtype=np.float32)
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p), [-np.log(0.7), -np.log(0.5)], rtol=1e-6)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(np.array([1, 0]), p),
                               [-np.log(0.7), -np.log(0.5)], rtol=1e-6)


def test_crossentropy_finite_at_probabilities_zero_and_one():
    y = np.eye(3, dtype=np.float32)
    for p in (np.eye(3, dtype=np.float32), np.roll(np.eye(3, dtype=np.float32), 1, axis=1)):
        values = losses.categorical_crossentropy(y, p)
        grads = losses.categorical_crossentropy_gradient(y, p)
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    # a confident wrong answer costs -log(1e-7), a confident right one nearly nothing
    assert losses.categorical_crossentropy(y, np.roll(y, 1, axis=1))[0] == pytest.approx(-np.log(1e-7), rel=1e-4)


def test_softmax_and_crossentropy_finite_at_huge_logits():
    z = np.array([[1e4, -1e4, 0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    p = activations.softmax(z)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1)
    y = to_categorical([1, 0], 3)
    assert np.all(np.isfinite(losses.categorical_crossentropy(y, p)))
    assert np.all(np.isfinite(losses.softmax_crossentropy_gradient(y, p)))
    assert np.all(np.isfinite(activations.sigmoid(z)))


def test_sparse_labels_out_of_range():
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        losses.sparse_categorical_crossentropy(np.array([0, 3]), np.full((2, 3), 1 / 3))


def test_loss_lookup():
    assert losses.get("categorical_crossentropy") is losses.get(losses.categorical_crossentropy)
    assert losses.get("mse").name == "mean_squared_error"
    with pytest.raises(ValueError, match="valid losses: categorical_crossentropy"):
        losses.get("hinge")
    with pytest.raises(TypeError, match="hand-written gradient"):
        losses.get(lambda y, p: p)


CASES = [("CategoricalCrossentropy", {"from_logits": True}), ("CategoricalCrossentropy", {}),
         ("CategoricalCrossentropy", {"label_smoothing": 0.2}),
         ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
         ("SparseCategoricalCrossentropy", {"from_logits": True}), ("SparseCategoricalCrossentropy", {}),
         ("MeanSquaredError", {})]


@pytest.mark.parametrize("name,kwargs", CASES)
def test_loss_objects_match_keras_values_and_gradients(keras, tf, rng, name, kwargs):
    z = rng.standard_normal((6, 4)).astype(np.float32) * 3
    labels = rng.integers(0, 4, 6)
    y = labels if name.startswith("Sparse") else to_categorical(labels, 4)
    pred = z if kwargs.get("from_logits") or name == "MeanSquaredError" else np.exp(z) / np.exp(z).sum(1, keepdims=True)
    ours, theirs = getattr(losses, name)(**kwargs), getattr(keras.losses, name)(**kwargs)
    assert float(ours(y, pred)) == pytest.approx(float(theirs(y, pred)), rel=1e-5)
    zt = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        value = theirs(y, zt)
    np.testing.assert_allclose(ours.gradient(y, pred), tape.gradient(value, zt).numpy(), rtol=1e-4, atol=1e-6)


def test_from_logits_is_stable_at_huge_logits():
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    loss = losses.CategoricalCrossentropy(from_logits=True)
    assert float(loss([[0, 1, 0]], z)) == pytest.approx(2e4, rel=1e-6)
    assert np.isfinite(loss.gradient(np.array([[0, 1, 0]], np.float32), z)).all()
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=2)


@pytest.mark.parametrize("name,kwargs", [("BinaryCrossentropy", {}), ("BinaryCrossentropy", {"from_logits": True}),
                                         ("BinaryCrossentropy", {"label_smoothing": 0.2}),
                                         ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
                                         ("MeanAbsoluteError", {}), ("Huber", {}), ("Huber", {"delta": 0.3})])
def test_binary_and_regression_losses_match_keras(keras, tf, rng, name, kwargs):
    z = rng.standard_normal((6, 3)).astype(np.float32) * 2
    y = rng.integers(0, 2, (6, 3)).astype(np.float32)
    pred = z if kwargs.get("from_logits") or name != "BinaryCrossentropy" else 1 / (1 + np.exp(-z))
    ours, theirs = getattr(losses, name)(**kwargs), getattr(keras.losses, name)(**kwargs)
    assert float(ours(y, pred)) == pytest.approx(float(theirs(y, pred)), rel=1e-5)
    zt = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        value = theirs(y, zt)
    np.testing.assert_allclose(ours.gradient(y, pred), tape.gradient(value, zt).numpy(), rtol=1e-4, atol=1e-6)


def test_logits_model_trains_like_keras_and_saves_its_loss(keras, rng, tmp_path):
    """Dense(10) without softmax and SparseCategoricalCrossentropy(from_logits=True), as the
    TensorFlow tutorials write it: the same weights as Keras after a few SGD steps."""
    set_random_seed(0)
    model = Sequential([Flatten(input_shape=(6, 6)), Dense(8, activation="relu"), Dense(4)])
    k_model = keras.Sequential([keras.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"),
                                keras.layers.Dense(4)])
    k_model.set_weights(model.get_weights())
    model.compile(loss=losses.SparseCategoricalCrossentropy(from_logits=True), optimizer=SGD(0.1))
    k_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    optimizer=keras.optimizers.SGD(0.1))
    for _ in range(3):
        x, y = rng.random((8, 6, 6), dtype=np.float32), rng.integers(0, 4, 8)
        assert model.train_on_batch(x, y) == pytest.approx(k_model.train_on_batch(x, y), rel=1e-5)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    again = load_model(model.save(tmp_path / "logits.npz"))
    assert isinstance(again.loss, losses.SparseCategoricalCrossentropy) and again.loss.from_logits


def test_a_binary_classifier_trains_as_keras(keras, rng):
    """Dense(1, activation="sigmoid") with "binary_crossentropy" and "accuracy" (binary accuracy,
    as Keras resolves it), targets of shape (N,): the same losses, accuracy and weights."""
    set_random_seed(2)
    model = Sequential([Flatten(input_shape=(3, 3)), Dense(4, activation="tanh"), Dense(1, activation="sigmoid")])
    k_model = keras.Sequential([keras.Input((3, 3)), keras.layers.Flatten(), keras.layers.Dense(4, activation="tanh"),
                                keras.layers.Dense(1, activation="sigmoid")])
    k_model.set_weights(model.get_weights())
    model.compile(loss="binary_crossentropy", optimizer=SGD(0.5), metrics=["accuracy"])
    k_model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"])
    x, y = rng.random((16, 3, 3), dtype=np.float32), rng.integers(0, 2, 16).astype(np.float32)
    for _ in range(3):
        assert model.train_on_batch(x, y) == pytest.approx(k_model.train_on_batch(x, y), rel=1e-5)  # [loss, accuracy]
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ours = model.evaluate(x, y, verbose=0, return_dict=True)
    theirs = k_model.evaluate(x, y, verbose=0, return_dict=True)
    assert ours["accuracy"] == pytest.approx(float(theirs["accuracy"])) and isinstance(
        model.metric_objects[0], minicnn.metrics.BinaryAccuracy)


def test_a_probability_loss_on_logits_warns_once(rng):
    model = Sequential([Flatten(input_shape=(6, 6)), Dense(4)])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    x, y = rng.random((16, 6, 6), dtype=np.float32), rng.integers(0, 4, 16)
    with pytest.warns(UserWarning, match="expects probabilities.*SparseCategoricalCrossentropy\\(from_logits=True\\)"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per model: not again
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        softmax = Sequential([Flatten(input_shape=(6, 6)), Dense(4, activation="softmax")])
        softmax.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        softmax.fit(x, y, verbose=0)  # probabilities: no warning
