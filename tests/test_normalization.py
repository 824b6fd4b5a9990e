"""BatchNormalization (minicnn/layers/normalization.py) against Keras 3 with the same weights,
in training and inference, on each backend; finite differences; in a model trained as Keras;
its moving statistics untouched by a refused step."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minicnn.gradcheck import check_layer
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, ReLU
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed, to_categorical


def bn_pair(keras, rng, C=3, **kwargs):
    ours, theirs = BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build((None, 5, 4, C))
    theirs.build((None, 5, 4, C))
    weights = [rng.standard_normal(C).astype(np.float32) for _ in theirs.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.5  # a variance
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False, "momentum": 0.9, "epsilon": 0.01}])
def test_batchnorm_matches_keras_in_training_and_inference(each_backend, keras, tf, rng, kwargs):
    ours, theirs = bn_pair(keras, rng, **kwargs)
    x = (rng.standard_normal((6, 5, 4, 3)) * 3 + 1).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(ours.forward(x), np.asarray(theirs(x, training=False)), rtol=1e-5, atol=1e-5)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_y = theirs(xt, training=True)
        k_loss = tf.reduce_sum(k_y * dy)
    k_dx, *k_grads = tape.gradient(k_loss, [xt, *theirs.trainable_weights])
    y = ours.forward(x, training=True)
    np.testing.assert_allclose(y, np.asarray(k_y), rtol=1e-4, atol=1e-5)
    for mine, theirs_w in zip(ours.get_weights(), theirs.get_weights()):  # moving statistics moved alike
        np.testing.assert_allclose(mine, theirs_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.backward(dy), np.asarray(k_dx), rtol=1e-3, atol=1e-4)
    for key, k_g in zip(ours.params, k_grads):
        np.testing.assert_allclose(ours.grads[key], np.asarray(k_g), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(each_backend, rng, training):
    layer = BatchNormalization(dtype="float64")
    layer.build((None, 4, 3, 2))
    layer.set_weights([rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(2), np.ones(2) * 1.5])
    if not training:
        layer.trainable = False  # as Keras 3: a frozen BatchNormalization uses its moving statistics
    errors = check_layer(layer, rng.standard_normal((3, 4, 3, 2)))
    assert max(errors.values()) < 1e-6, errors


def test_batchnorm_in_a_model_trains_as_keras(keras, rng):
    """A few SGD steps of Conv2D -> BatchNormalization -> ReLU -> Dense from the same weights:
    the same weights after, moving statistics included."""
    set_random_seed(0)
    model = Sequential([Conv2D(4, 3, input_shape=(8, 8, 2)), BatchNormalization(), ReLU(), Flatten(),
                        Dense(3, activation="softmax")])
    k_model = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                                keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    k_model.set_weights(model.get_weights())
    model.compile(loss="categorical_crossentropy", optimizer=SGD(0.05))
    k_model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.05))
    for step in range(3):
        x = rng.standard_normal((8, 8, 8, 2)).astype(np.float32)
        y = to_categorical(rng.integers(0, 3, 8), 3)
        assert model.train_on_batch(x, y) == pytest.approx(k_model.train_on_batch(x, y), rel=1e-4)
    for mine, theirs in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_a_refused_step_leaves_the_moving_statistics(rng, tmp_path):
    from minicnn.optimizers import NonFiniteError
    model = Sequential([Flatten(input_shape=(4, 4, 1)), BatchNormalization(), Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=SGD(1e39))  # every update overflows
    before = model.get_weights()
    with pytest.raises(NonFiniteError):
        model.train_on_batch(rng.random((4, 4, 4, 1)), to_categorical([0, 1, 0, 1], 2))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    path = model.save(tmp_path / "bn.npz")
    assert [w.shape for w in load_model(path).get_weights()] == [w.shape for w in before]


@pytest.mark.parametrize("pool", [True, False], ids=["fused_with_pool", "layer_by_layer"])
def test_frozen_batchnorm_in_fit_is_inference_and_trains_as_keras(each_backend, keras, rng, pool):
    """BatchNormalization(trainable=False) inside fit runs as at inference (Keras 3's rule): its
    output in training equals predict's, its moving statistics, gamma and beta stay put, and the
    layers around it train exactly as Keras's, on each backend; Conv2D -> BN -> ReLU ->
    MaxPooling2D is the chain the CPU backends fuse. The statistics are far from the batch's, so
    normalizing by the batch's would show."""
    def layers(m, **first):
        return [m.Conv2D(4, 3, **first), m.BatchNormalization(trainable=False), m.ReLU(),
                *([m.MaxPooling2D(2)] if pool else []), m.Flatten(), m.Dense(3, activation="softmax")]
    import minicnn.layers
    model = Sequential(layers(minicnn.layers, input_shape=(8, 8, 2)))
    k_model = keras.Sequential([keras.Input((8, 8, 2)), *layers(keras.layers)])
    weights = model.get_weights()
    weights[2:6] = [np.full(4, 1.5, np.float32), np.full(4, -0.2, np.float32),  # gamma, beta
                    np.array([0.5, -1, 2, 0], np.float32), np.array([4, 0.25, 9, 1], np.float32)]  # moving stats
    model.set_weights(weights)
    k_model.set_weights(weights)
    model.compile(loss="categorical_crossentropy", optimizer=SGD(0.02))
    k_model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.02))
    x = rng.standard_normal((10, 8, 8, 2)).astype(np.float32)
    y = to_categorical(rng.integers(0, 3, 10), 3)
    np.testing.assert_allclose(model.forward(x, training=True), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    h = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    k_h = k_model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h.history["loss"], k_h.history["loss"], rtol=1e-4)
    bn = model.layers[1]
    for key, before in zip(["gamma", "beta", "moving_mean", "moving_variance"], weights[2:6]):
        np.testing.assert_array_equal({**bn.params, **bn.state}[key], before)
    for mine, theirs in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
