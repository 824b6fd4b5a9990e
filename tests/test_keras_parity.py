"""minicnn against Keras on TensorFlow, an independent implementation: with the same weights
the two give the same outputs, the same gradients and the same Adam steps."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential
from minicnn.optimizers import Adam
from minicnn.utils import to_categorical


def twin_models():
    """The same architecture in both engines, with odd "same" padding at stride 2 (12 -> 6)."""
    spec = [("conv", 4, (3, 3), (2, 2), "same"), ("act", "relu"), ("pool", (3, 3), (2, 2), "same"),
            ("conv", 3, (2, 3), (1, 1), "valid"), ("act", "tanh"), ("flatten",), ("dense", 5), ("dense", 3),
            ("act", "softmax")]
    ours, theirs = [], [keras.Input((12, 12, 2))]
    for kind, *args in spec:
        if kind == "conv":
            f, k, s, p = args
            ours.append(Conv2D(f, k, strides=s, padding=p))
            theirs.append(keras.layers.Conv2D(f, k, strides=s, padding=p))
        elif kind == "pool":
            ours.append(MaxPooling2D(args[0], strides=args[1], padding=args[2]))
            theirs.append(keras.layers.MaxPooling2D(args[0], strides=args[1], padding=args[2]))
        elif kind == "act":
            ours.append(Activation(args[0]))
            theirs.append(keras.layers.Activation(args[0]))
        elif kind == "flatten":
            ours.append(Flatten())
            theirs.append(keras.layers.Flatten())
        else:
            ours.append(Dense(args[0]))
            theirs.append(keras.layers.Dense(args[0]))
    k_model = keras.Sequential(theirs)
    model = Sequential(ours)
    model.build((None, 12, 12, 2))
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in k_model.get_weights()]
    k_model.set_weights(weights)
    model.set_weights(weights)
    return model, k_model


def batch(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 12, 12, 2)).astype(np.float32), to_categorical(rng.integers(0, 3, n), 3)


def test_same_weights_same_outputs_and_shapes(each_backend):
    model, k_model = twin_models()
    x, _ = batch()
    assert model.output_shape == k_model.output_shape
    assert [w.shape for w in model.get_weights()] == [w.shape for w in k_model.get_weights()]
    np.testing.assert_allclose(model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_same_loss_gradients_and_adam_steps(each_backend):
    """Gradients are compared between engines; then both optimizers get Keras's gradients, so
    the Adam step is compared exactly (Adam divides by |g| + 3e-6 on its first step, which
    would magnify float32 round-off in the tiniest gradients into visibly different steps)."""
    model, k_model = twin_models()
    model.compile(loss="categorical_crossentropy", optimizer=Adam(learning_rate=0.01))
    k_opt = keras.optimizers.Adam(learning_rate=0.01)
    for step in range(3):
        x, y = batch(seed=step)
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.losses.categorical_crossentropy(y, k_model(x, training=True)))
        k_grads = tape.gradient(loss, k_model.trainable_weights)
        p = model.forward(x, training=True)
        assert float(model.loss.fn(y, p).mean()) == pytest.approx(float(loss), rel=1e-5)
        model.backward(y, p)
        pairs = model.grads_and_params()
        for (g, _), kg in zip(pairs, k_grads):
            np.testing.assert_allclose(g, kg.numpy(), rtol=1e-4, atol=1e-6)
        model.optimizer.apply_gradients((kg.numpy(), param) for (_, param), kg in zip(pairs, k_grads))
        k_opt.apply_gradients(zip(k_grads, k_model.trainable_weights))
        for w, kw in zip(model.get_weights(), k_model.get_weights()):
            np.testing.assert_allclose(w, kw, rtol=1e-6, atol=1e-7)


def test_keras_initialisation_statistics():
    """glorot_uniform kernels (same limit as Keras's), zero biases."""
    conv = Conv2D(64, (3, 3))
    conv.build((None, 28, 28, 32))
    k_conv = keras.layers.Conv2D(64, (3, 3))
    k_conv.build((None, 28, 28, 32))
    ours, theirs = conv.params["W"], k_conv.get_weights()[0]
    limit = np.sqrt(6 / (9 * 32 + 9 * 64))
    assert np.abs(ours).max() <= limit and np.abs(theirs).max() <= limit
    assert np.std(ours) == pytest.approx(np.std(theirs), rel=0.05)
    assert not np.any(conv.params["b"])


def keras_tutorial_model():
    L = keras.layers
    return keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(64, (3, 3)), L.Activation("relu"),
                             L.MaxPooling2D((2, 2)), L.Conv2D(64, (3, 3)), L.Activation("relu"),
                             L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(64), L.Dense(10), L.Activation("softmax")])


def test_tutorial_weights_move_both_ways(tmp_path):
    """minicnn -> Keras and Keras -> minicnn (through a saved file too): same predictions."""
    from minicnn.models import load_model
    from minicnn.tutorial import build_model

    x = np.random.default_rng(3).random((16, 28, 28, 1), dtype=np.float32)
    ours, theirs = build_model(), keras_tutorial_model()
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)

    trained = keras_tutorial_model()  # Keras's own initial weights, nudged so biases are not zero
    trained.set_weights([w + 0.01 * np.random.default_rng(4).standard_normal(w.shape).astype(np.float32)
                         for w in trained.get_weights()])
    ours.set_weights(trained.get_weights())
    ours.save(tmp_path / "from_keras.npz")
    again = load_model(tmp_path / "from_keras.npz")
    np.testing.assert_allclose(again.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
