"""Every activation, by name and as a layer with Keras's arguments: values and gradients against
Keras on TensorFlow, and finite differences in float64."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minicnn import activations
from minicnn.gradcheck import check_layer
from minicnn.layers import ELU, Activation, LeakyReLU, ReLU, Rescaling, Softmax
from minicnn.models import Sequential, load_model

NAMES = ["relu", "softmax", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "swish", "silu", "softplus",
         "leaky_relu"]
LAYERS = [  # (ours, Keras's layer name, its arguments)
    (lambda **k: ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, **k), "ReLU",
     {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.2}),
    (lambda **k: ReLU(max_value=6.0, **k), "ReLU", {"max_value": 6.0}),
    (lambda **k: LeakyReLU(**k), "LeakyReLU", {}),
    (lambda **k: LeakyReLU(negative_slope=0.05, **k), "LeakyReLU", {"negative_slope": 0.05}),
    (lambda **k: ELU(alpha=0.7, **k), "ELU", {"alpha": 0.7}),
    (lambda **k: Softmax(axis=1, **k), "Softmax", {"axis": 1}),
]



def values(rng):
    x = rng.standard_normal((4, 3, 5)).astype(np.float32) * 3
    x[np.abs(x) < 0.05] = 0.5  # away from the kinks, where finite differences mean nothing
    x[np.abs(x - 0.2) < 0.05] = 0.5
    x[np.abs(x - 1.5) < 0.05] = 0.5
    return x


def keras_values_and_grads(tf, f, x, dy):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = f(xt)
        loss = tf.reduce_sum(y * dy)
    return np.asarray(y), tape.gradient(loss, xt).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_activation_by_name_matches_keras(keras, tf, rng, name):
    x, dy = values(rng), rng.standard_normal((4, 3, 5)).astype(np.float32)
    layer = Activation(name)
    y = layer.forward(x, training=True)
    k_y, k_dx = keras_values_and_grads(tf, getattr(keras.activations, name), x, dy)
    np.testing.assert_allclose(y, k_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.backward(dy), k_dx, rtol=1e-4, atol=1e-5)
    assert check_layer(Activation(name, dtype="float64"), x.astype(np.float64))["x"] < 1e-6
    assert Activation(getattr(activations, name)).activation in (name, "swish")  # the function is accepted too


@pytest.mark.parametrize("make,keras_name,kwargs", LAYERS)
def test_activation_layers_with_keras_arguments(keras, tf, rng, make, keras_name, kwargs, tmp_path):
    x, dy = values(rng), rng.standard_normal((4, 3, 5)).astype(np.float32)
    layer = make()
    y = layer.forward(x, training=True)
    k_y, k_dx = keras_values_and_grads(tf, getattr(keras.layers, keras_name)(**kwargs), x, dy)
    np.testing.assert_allclose(y, k_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.backward(dy), k_dx, rtol=1e-4, atol=1e-5)
    assert check_layer(make(dtype="float64"), x.astype(np.float64))["x"] < 1e-6
    model = Sequential([Rescaling(2.0, input_shape=(3, 5)), make()])
    again = load_model(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_gelu_tanh_form_and_erf():
    x = np.linspace(-4, 4, 81)
    from math import erf
    np.testing.assert_allclose(activations._erf(x), [erf(v) for v in x], atol=2e-7)
    approx = activations.gelu(x, approximate=True)
    assert np.abs(approx - activations.gelu(x)).max() < 2e-3  # the tanh form is close, not equal


def test_unknown_activations_and_functions_are_clear_errors():
    with pytest.raises(ValueError, match="unknown activation 'mish'"):
        Activation("mish")
    with pytest.raises(ValueError, match="hand-written gradient"):
        Activation(np.sin)
    with pytest.raises(ValueError, match="must be >= 0"):
        ReLU(negative_slope=-1)
