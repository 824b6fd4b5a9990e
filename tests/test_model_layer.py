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


def frozen_gan(lib):
    """The classic Keras 2 GAN's models: the discriminator compiled, then `trainable = False`
    before the combined model is made and compiled. Returns (generator, discriminator, combined)."""
    discriminator = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="relu"),
                                    lib.layers.Dense(1, activation="sigmoid")])
    eager = {"run_eagerly": True} if lib.__name__ == "keras" else {}
    discriminator.compile(loss="binary_crossentropy", optimizer=lib.optimizers.SGD(0.1), metrics=["accuracy"], **eager)
    generator = lib.Sequential([lib.Input((2,)), lib.layers.Dense(4)])
    z = lib.Input((2,))
    discriminator.trainable = False
    combined = lib.Model(z, discriminator(generator(z)))
    combined.compile(loss="binary_crossentropy", optimizer=lib.optimizers.SGD(0.1), **eager)
    return generator, discriminator, combined


def test_trainable_is_read_at_every_step_as_keras_3_reads_it(keras):
    """Keras 3 reads `trainable` when a step runs, not when a model is compiled (Keras 2's rule):
    the frozen discriminator trains neither in the combined model nor by its own train_on_batch
    (with a warning), until its trainable is set back to True. Keras runs eagerly here: in graph
    mode it reads the flag when it traces a step, the first after compile (a later change needs
    make_train_function(force=True)); minicnn compiles no step and reads it at every one."""
    rng = np.random.default_rng(0)
    x, ones, z = rng.random((8, 4), dtype=np.float32), np.ones((8, 1), np.float32), rng.random((8, 2), dtype=np.float32)
    ours, theirs = frozen_gan(minicnn), frozen_gan(keras)
    for a, b in zip(ours, theirs):
        a.set_weights(b.get_weights())

    def changes(models, step):
        """[whether generator, discriminator weights changed] in step(models)."""
        before = [m.get_weights() for m in models[:2]]
        with _warnings() as caught:
            result = step(models)
        moved = [any(not np.array_equal(u, v) for u, v in zip(w, m.get_weights())) for w, m in zip(before, models)]
        return moved, result, ["trainable weights" in str(w.message) for w in caught]

    steps = [lambda m: m[1].train_on_batch(x, ones), lambda m: m[2].train_on_batch(z, ones),
             lambda m: setattr(m[1], "trainable", True) or m[1].train_on_batch(x, ones),
             lambda m: setattr(m[1], "trainable", False) or m[2].train_on_batch(z, ones)]
    expected = [[False, False], [True, False], [False, True], [True, False]]
    for step, moved in zip(steps, expected):
        (ours_moved, ours_result, ours_warned), (theirs_moved, theirs_result, theirs_warned) = \
            changes(ours, step), changes(theirs, step)
        assert ours_moved == theirs_moved == moved
        assert any(ours_warned) == any(theirs_warned) == (moved == [False, False])  # "no trainable weights"
        assert ours_result == pytest.approx(theirs_result, rel=1e-5)
    for a, b in zip(ours, theirs):
        for u, v in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def _warnings():
    import warnings

    class Caught(warnings.catch_warnings):
        def __enter__(self):
            caught = super().__enter__()
            warnings.simplefilter("always")
            return caught
    return Caught(record=True)


def test_a_layer_frozen_after_its_model_became_a_layer_stays_frozen(keras):
    """The inner model's layer frozen after the outer model was made, before its first step:
    the outer step leaves that layer alone and trains the rest (Keras, eagerly: as minicnn)."""
    rng = np.random.default_rng(1)
    z, ones = rng.random((8, 2), dtype=np.float32), np.ones((8, 1), np.float32)
    result = []
    for lib in (minicnn, keras):
        inner = lib.Sequential([lib.Input((2,)), lib.layers.Dense(3, activation="relu"), lib.layers.Dense(1)])
        inputs = lib.Input((2,))
        outer = lib.Model(inputs, inner(inputs))
        inner.set_weights([np.array(w, np.float32) for w in [[[0.5, -0.2, 0.3], [0.1, 0.4, -0.6]], [0.1, 0, 0.2],
                                                          [[0.3], [-0.5], [0.7]], [0.1]]])
        inner.layers[0].trainable = False
        outer.compile(loss="mse", optimizer=lib.optimizers.SGD(0.1), **({"run_eagerly": True} if lib is keras else {}))
        outer.train_on_batch(z, ones)
        result.append(inner.get_weights())
    ours, theirs = result
    np.testing.assert_array_equal(ours[0], np.float32([[0.5, -0.2, 0.3], [0.1, 0.4, -0.6]]))  # frozen
    assert not np.allclose(ours[2], [[0.3], [-0.5], [0.7]])  # trained
    for u, v in zip(ours, theirs):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
