"""Finite-difference gradient checks (float64) of every layer, loss and a whole model, on each backend."""
import numpy as np
import pytest

import minicnn
from minicnn.gradcheck import check_layer, check_model, numerical_gradient, relative_error
from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D, ReLU, Softmax
from minicnn.models import Sequential

TOL = 1e-6

CONV_CASES = [  # filters, kernel, strides, padding, input shape (N, H, W, C)
    (3, (3, 3), (1, 1), "valid", (2, 6, 5, 1)),
    (2, (3, 3), (1, 1), "same", (2, 5, 6, 3)),
    (2, (3, 2), (2, 2), "valid", (1, 7, 6, 2)),
    (3, (3, 3), (2, 2), "same", (2, 6, 7, 2)),  # odd extra padding on the bottom/right
    (2, (1, 1), (1, 1), "valid", (2, 4, 3, 3)),
    (2, (2, 2), (2, 1), "same", (1, 5, 5, 4)),
    (2, (3, 3), (1, 1), "valid", (1, 5, 5, 6)),  # window of 54 values: the im2col + BLAS path
]


@pytest.mark.parametrize("filters,kernel,strides,padding,shape", CONV_CASES)
def test_conv2d_gradients(each_backend, filters, kernel, strides, padding, shape, rng):
    layer = Conv2D(filters, kernel, strides=strides, padding=padding, dtype="float64")
    layer.build((None, *shape[1:]))
    b = rng.standard_normal(filters)
    layer.params["b"][:] = b  # nonzero bias: it must show in the output
    x = rng.standard_normal(shape)
    errors = check_layer(layer, x)
    assert max(errors.values()) < TOL, errors
    np.testing.assert_array_equal(layer.params["b"], b)  # the check ran on the bias as set
    y0 = Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, dtype="float64").forward(x)
    layer.params["W"][...] = 0
    np.testing.assert_array_equal(layer.forward(x), np.broadcast_to(b, y0.shape))  # zero kernel: only the bias


def test_conv2d_with_activation_and_no_bias(each_backend, rng):
    errors = check_layer(Conv2D(2, 3, activation="tanh", use_bias=False, dtype="float64"),
                         rng.standard_normal((2, 5, 5, 2)))
    assert set(errors) == {"x", "W"} and max(errors.values()) < TOL, errors


POOL_CASES = [  # pool, strides, padding, shape
    ((2, 2), None, "valid", (2, 6, 6, 3)),   # non-overlapping
    ((2, 2), None, "valid", (1, 7, 5, 2)),   # odd sizes: the last row/column is dropped
    ((3, 3), (1, 1), "valid", (2, 5, 6, 2)),  # overlapping windows
    ((3, 3), (2, 2), "same", (1, 7, 6, 3)),
    ((2, 2), None, "same", (2, 5, 5, 1)),
    ((2, 3), (2, 1), "valid", (1, 6, 7, 2)),
]


@pytest.mark.parametrize("pool,strides,padding,shape", POOL_CASES)
def test_maxpool_gradients(each_backend, pool, strides, padding, shape, rng):
    # A permutation: no ties, and gaps of >= 1/size between values, far above eps.
    x = rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape)
    errors = check_layer(MaxPooling2D(pool, strides=strides, padding=padding, dtype="float64"), x)
    assert errors["x"] < TOL, errors


@pytest.mark.parametrize("layer", [
    lambda: Dense(4, dtype="float64"),
    lambda: Dense(3, activation="sigmoid", dtype="float64"),
    lambda: Dense(3, activation="softmax", use_bias=False, dtype="float64"),
    lambda: Activation("relu", dtype="float64"),
    lambda: Activation("softmax", dtype="float64"),
    lambda: Activation("sigmoid", dtype="float64"),
    lambda: Activation("tanh", dtype="float64"),
    lambda: Activation("linear", dtype="float64"),
    lambda: ReLU(dtype="float64"),
    lambda: Softmax(dtype="float64"),
])
def test_dense_and_activation_gradients(layer, rng):
    x = rng.standard_normal((3, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink out of reach of eps
    errors = check_layer(layer(), x)
    assert max(errors.values()) < TOL, errors


def test_flatten_gradient(rng):
    assert check_layer(Flatten(dtype="float64"), rng.standard_normal((2, 3, 4, 2)))["x"] < TOL


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy",
                                  "mean_squared_error"])
def test_loss_gradients(name, rng):
    spec = minicnn.losses.get(name)
    p = minicnn.activations.softmax(rng.standard_normal((4, 5))) * rng.uniform(0.5, 2, (4, 1))  # unnormalised too
    labels = rng.integers(0, 5, 4)
    y = labels if spec.sparse else minicnn.utils.to_categorical(labels, 5).astype(np.float64)
    numeric = numerical_gradient(lambda: float(spec.fn(y, p).mean()), p)
    assert relative_error(spec.gradient(y, p), numeric) < TOL


def test_softmax_crossentropy_gradient_is_p_minus_y_over_n(rng):
    z = rng.standard_normal((6, 4))
    y = minicnn.utils.to_categorical(rng.integers(0, 4, 6), 4).astype(np.float64)

    def loss():
        return float(minicnn.losses.categorical_crossentropy(y, minicnn.activations.softmax(z)).mean())
    p = minicnn.activations.softmax(z)
    np.testing.assert_allclose(numerical_gradient(loss, z), (p - y) / 6, atol=1e-9)
    np.testing.assert_allclose(minicnn.losses.softmax_crossentropy_gradient(y, p), (p - y) / 6)


def tiny_model():
    return Sequential([
        Conv2D(3, (3, 3), padding="same", input_shape=(6, 6, 2), dtype="float64"),
        Activation("relu", dtype="float64"),
        MaxPooling2D(dtype="float64"),
        Conv2D(4, (2, 2), strides=(1, 1), dtype="float64"),
        Activation("tanh", dtype="float64"),
        Flatten(dtype="float64"),
        Dense(5, dtype="float64"),
        Dense(3, dtype="float64"),
        Activation("softmax", dtype="float64"),
    ])


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_whole_model_gradients(each_backend, loss, rng):
    minicnn.utils.set_random_seed(3)
    model = tiny_model()
    model.compile(loss=loss, optimizer="adam")
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape) * 0.1
    x = rng.standard_normal((4, 6, 6, 2))
    labels = rng.integers(0, 3, 4)
    y = labels if loss.startswith("sparse") else minicnn.utils.to_categorical(labels, 3).astype(np.float64)
    errors = check_model(model, x, y)
    assert len(errors) == 8 and max(errors.values()) < TOL, errors


def test_gradcheck_catches_a_wrong_backward(rng):
    """The checker itself must be able to fail: a Dense with a deliberately wrong dW."""
    class BrokenDense(Dense):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["W"] = self.grads["W"] * 1.01
            return dx
    errors = check_layer(BrokenDense(3, dtype="float64"), rng.standard_normal((2, 4)))
    assert errors["W"] > 1e-3 and errors["x"] < TOL
