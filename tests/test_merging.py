"""The merge layers and functions (minicnn/layers/merging.py): each against Keras on the same
inputs (values and every input's gradient), with Keras's broadcasting, against finite
differences, in a functional model (summary, saving), and TensorFlow's rule for ties."""
import numpy as np
import pytest
from keras_twin import assert_same_pass, assert_saved_and_loaded, assert_summary_matches

import minicnn
from minicnn.gradcheck import numerical_gradient, relative_error
from minicnn.layers import (
    Add,
    Average,
    Concatenate,
    Dot,
    Input,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)

ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
SHAPES = {  # several inputs of one shape, and Keras's broadcasting: axes of 1, a lower rank
    "same": [(2, 4, 3, 5), (2, 4, 3, 5), (2, 4, 3, 5)],
    "axes_of_one": [(2, 4, 3, 5), (2, 1, 1, 5)],
    "lower_rank": [(2, 4, 3), (2, 3)],
}


def inputs_for(name, shapes, rng):
    if name == "Subtract":
        shapes = shapes[:2]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("shapes", list(SHAPES))
def test_elementwise_merges_match_keras(keras, tf, rng, name, shapes):
    xs = inputs_for(name, SHAPES[shapes], rng)
    layer, klayer = getattr(minicnn.layers, name)(), getattr(keras.layers, name)()
    assert layer.compute_output_shape([x.shape for x in xs]) == (None, *klayer.compute_output_shape(
        [x.shape for x in xs])[1:])
    assert_same_pass(layer, klayer, xs, tf, rng)


@pytest.mark.parametrize("axes, normalize, shapes", [
    (1, False, [(3, 4), (3, 4)]),  # (N, 1)
    (-1, True, [(3, 4), (3, 4)]),  # cosine
    ((1, 2), False, [(2, 3, 5), (2, 4, 3)]),  # (N, 5, 4)
    ((2, 1), True, [(2, 3, 4), (2, 4, 6)]),
    (1, False, [(2, 3), (2, 3, 4)]),  # (N, 4)
    (-1, True, [(2, 3, 2, 4), (2, 5, 4)]),
])
def test_dot_matches_keras(keras, tf, rng, axes, normalize, shapes):
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    layer, klayer = Dot(axes, normalize=normalize), keras.layers.Dot(axes, normalize=normalize)
    assert layer.compute_output_shape([x.shape for x in xs]) == (None, *klayer.compute_output_shape(
        [x.shape for x in xs])[1:])
    assert_same_pass(layer, klayer, xs, tf, rng)


def test_dot_normalize_at_a_zero_vector_as_keras(keras, tf, rng):
    """A zero sample: Keras holds its norm at epsilon (no division by zero), and so do we."""
    xs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2)]
    xs[0][1] = 0
    assert_same_pass(Dot(-1, normalize=True), keras.layers.Dot(-1, normalize=True), xs, tf, rng)


def test_concatenate_matches_keras(keras, tf, rng):
    for axis, shapes in [(-1, [(2, 3, 4, 2), (2, 3, 4, 5)]), (1, [(2, 3, 4), (2, 1, 4), (2, 2, 4)])]:
        xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        assert_same_pass(Concatenate(axis), keras.layers.Concatenate(axis), xs, tf, rng)


def test_ties_go_to_the_first_input_as_in_tensorflow(keras, tf, rng):
    """Maximum and Minimum send dy to the first input that holds the extreme, as TensorFlow's
    gradient of Keras's chained tf.maximum / tf.minimum does."""
    a = rng.standard_normal((2, 6)).astype(np.float32)
    xs = [a.copy(), np.where(rng.random(a.shape) < 0.5, a, a - 1), a.copy()]  # ties everywhere
    for name in ("Maximum", "Minimum"):
        assert_same_pass(getattr(minicnn.layers, name)(), getattr(keras.layers, name)(), xs, tf, rng)
        layer = getattr(minicnn.layers, name)()
        layer.forward(xs, training=True)
        dx = layer.backward(np.ones(a.shape, np.float32))
        np.testing.assert_array_equal(dx[2], 0)  # a tie with an earlier input: nothing
        np.testing.assert_array_equal(dx[0] + dx[1], 1)


def merge_gradient_errors(layer, xs, seed=0):
    """Finite differences for a layer of several inputs: {input k: error of dL/dx_k}."""
    xs = [np.array(x, dtype=np.float64) for x in xs]
    y = layer.forward(xs, training=True)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dxs = layer.backward(dy)

    def loss():
        return float((layer.forward(xs, training=True) * dy).sum())

    return {k: relative_error(dx, numerical_gradient(loss, x)) for k, (dx, x) in enumerate(zip(dxs, xs))}


@pytest.mark.parametrize("name", [*ELEMENTWISE, "Dot", "DotNormalized", "Concatenate"])
@pytest.mark.parametrize("shapes", list(SHAPES))
def test_gradients(rng, name, shapes):
    if name.startswith("Dot"):
        layer = Dot(-1, normalize=name == "DotNormalized", dtype="float64")
        xs = inputs_for("Subtract", SHAPES[shapes], rng)
        xs[1] = xs[1].reshape(xs[1].shape[0], -1, xs[0].shape[-1])[:, :2]  # the last axes match
    elif name == "Concatenate":
        layer, xs = Concatenate(1, dtype="float64"), inputs_for(name, SHAPES["same"][:2], rng)
    else:
        layer, xs = getattr(minicnn.layers, name)(dtype="float64"), inputs_for(name, SHAPES[shapes], rng)
    if name in ("Maximum", "Minimum"):  # finite differences need a margin between the inputs
        xs = [x + 3 * k for k, x in enumerate(xs)]
    errors = merge_gradient_errors(layer, xs)
    assert max(errors.values()) < 1e-6, errors


def test_functions_on_keras_tensors_and_on_arrays(rng):
    a, b = Input(shape=(4,)), Input(shape=(4,))
    L = minicnn.layers
    for fn, cls in [(L.add, Add), (L.subtract, Subtract), (L.multiply, Multiply), (L.average, Average),
                    (L.maximum, Maximum), (L.minimum, Minimum), (L.concatenate, Concatenate), (L.dot, Dot)]:
        t = fn([a, b], name=f"my_{cls.__name__.lower()}")
        assert type(t.layer) is cls and t.layer.name == f"my_{cls.__name__.lower()}"
    x, y = rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(L.subtract([x, y]), x - y)
    np.testing.assert_allclose(L.average([x, y]), (x + y) / 2, rtol=1e-6)
    np.testing.assert_allclose(L.maximum([x, y]), np.maximum(x, y))
    np.testing.assert_allclose(L.concatenate([x, y], axis=1), np.concatenate([x, y], axis=1))
    np.testing.assert_allclose(L.dot([x, y], axes=(1, 1)), np.einsum("nik,nil->nkl", x, y), rtol=1e-5)
    assert Concatenate().get_config()["axis"] == -1 and L.concatenate([x, y]).shape == (2, 3, 8)


def test_bad_inputs_are_named():
    a, b, c = Input(shape=(3,)), Input(shape=(2,)), Input(shape=(3,))
    with pytest.raises(ValueError, match="multiplies inputs of one shape"):
        Multiply()([a, b])
    with pytest.raises(ValueError, match="subtracts exactly 2 inputs"):
        Subtract()([a, c, a])
    with pytest.raises(ValueError, match="dot product of inputs of shapes"):
        Dot(1)([a, b])
    with pytest.raises(ValueError, match="batch"):
        Dot(0)([a, c])
    with pytest.raises(TypeError, match="axes"):
        Dot("1")
    with pytest.raises(ValueError, match="at least 2 inputs"):
        Average()([a])


def two_branch(lib):
    a = lib.Input(shape=(6,))  # one input, two branches
    h1, h2 = lib.layers.Dense(4)(a), lib.layers.Dense(4, activation="relu")(a)
    merged = [lib.layers.add([h1, h2]), lib.layers.subtract([h1, h2]), lib.layers.multiply([h1, h2]),
              lib.layers.average([h1, h2]), lib.layers.maximum([h1, h2]), lib.layers.minimum([h1, h2]),
              lib.layers.dot([h1, h2], axes=1, normalize=True)]
    return lib.Model(a, lib.layers.Dense(1)(lib.layers.concatenate(merged)))


def test_in_a_functional_model_summary_and_saving(keras, tmp_path, rng):
    model = two_branch(minicnn)
    assert_summary_matches(model, two_branch(keras))
    assert model.output_shape == (None, 1)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    assert_saved_and_loaded(model, x, tmp_path)
    assert isinstance(model.layers[-2], Concatenate)
    model.compile(loss="mse", optimizer="adam")
    history = model.fit(x, x[:, :1], epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
