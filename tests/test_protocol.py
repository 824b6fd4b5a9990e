"""The layer protocol's less common parts, driven through a layer with non-trainable state:
`state` is saved, moved, listed by get_weights after the params, counted, and never seen by
an optimizer; `training` reaches every layer the same way in fit, evaluate, predict and trace;
`input_grad = False` lets the first layer skip dL/dx."""

import numpy as np
import pytest

from minicnn import gpu
from minicnn.layers import Dense, Flatten, Layer
from minicnn.models import Sequential, load_model
from minicnn.utils import set_random_seed, to_categorical


class Centre(Layer):
    """y = s * (x - moving_mean), per feature. x: (N, F) -> y: (N, F). In training, moving_mean
    moves halfway to the batch's mean (a non-trainable weight, like BatchNormalization's)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.modes = []  # the training flag of every call, for the tests

    def build(self, input_shape):
        F = input_shape[-1]
        self.add_param("s", np.ones(F, self.dtype))
        self.add_state("moving_mean", np.zeros(F, self.dtype))

    def call(self, x, training=False):
        self.modes.append(training)
        mean = self.state["moving_mean"]
        if training:
            mean[...] = 0.5 * mean + 0.5 * x.mean(axis=0)
            self._cache = x - mean
        return self.params["s"] * (x - mean)

    def backward(self, dy):
        c = self._saved()
        self.grads["s"] = (dy * c).sum(axis=0)
        return dy * self.params["s"]


def model_with_state():
    set_random_seed(0)
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(6), Centre(), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def data(n=32):
    rng = np.random.default_rng(0)
    return rng.random((n, 4, 4, 1), dtype=np.float32) + 1, to_categorical(rng.integers(0, 3, n), 3)


def test_state_is_a_weight_that_no_optimizer_sees(tmp_path, capsys):
    model, (x, y) = model_with_state(), data()
    centre = model.layers[2]
    assert list(centre.weight_dict()) == ["s", "moving_mean"] and "moving_mean" not in centre.grads
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(16, 6), (6,), (6,), (6,), (6, 3), (3,)]  # s, then moving_mean
    assert model.count_params() == 16 * 6 + 6 + 6 + 6 + 6 * 3 + 3
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 135" in out and "Trainable params: 129" in out and "Non-trainable params: 6" in out
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert len(model.optimizer.slots) == 6 - 1  # one per param: never the state
    moved = centre.state["moving_mean"].copy()
    assert np.all(moved != 0)  # moved by the layer's own rule, towards the batch means
    path = model.save(tmp_path / "m.npz")
    again = load_model(path, custom_objects={"Centre": Centre})
    np.testing.assert_array_equal(again.layers[2].state["moving_mean"], moved)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    fresh = model_with_state()
    fresh.set_weights(model.get_weights())
    np.testing.assert_array_equal(fresh.layers[2].state["moving_mean"], moved)
    with pytest.raises(ValueError, match="has 6 weight arrays, got 5"):
        fresh.set_weights(model.get_weights()[:-1])


def test_state_moves_with_the_model(fake_gpu):
    model = model_with_state()
    model.to("gpu")
    assert gpu.is_device_array(model.layers[2].state["moving_mean"])
    model.to("cpu")
    assert isinstance(model.layers[2].state["moving_mean"], np.ndarray)


def test_training_flag_is_the_same_everywhere():
    model, (x, y) = model_with_state(), data(16)
    centre = model.layers[2]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.train_on_batch(x, y)
    assert centre.modes == [True, True, True]
    centre.modes.clear()
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    model.trace(x, warmup=False)
    assert centre.modes == [False, False, False]
    model.trace(x)  # the untimed warm-up call runs in the same mode
    assert centre.modes == [False] * 5
    model.trace(x, y)  # a backward follows: the forward runs in training mode
    assert centre.modes[-1] is True


@pytest.mark.parametrize("first", ["dense", "flatten"])
def test_the_first_layer_may_skip_its_input_gradient(first):
    set_random_seed(1)
    layers = [Dense(4, input_shape=(5,))] if first == "dense" else [Flatten(input_shape=(5, 1)), Dense(4)]
    model = Sequential([*layers, Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    assert model.layers[0].input_grad is False and all(layer.input_grad for layer in model.layers[1:])
    x, y = np.random.default_rng(0).random((3, 5, 1) if first == "flatten" else (3, 5), dtype=np.float32), \
        to_categorical([0, 1, 1], 2)
    p = model.forward(x, training=True)
    dx = model.backward(y, p)
    if first == "dense":
        assert dx is None  # Dense honours input_grad = False: no dy @ W^T for the data
        model.layers[0].input_grad = True
        dx = model.backward(y, p)
        assert dx.shape == x.shape
    else:
        assert dx.shape == x.shape  # Flatten's dx is free: it ignores the flag
    assert all(np.any(g != 0) for g, _ in model.grads_and_params())
