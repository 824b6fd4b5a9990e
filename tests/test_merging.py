"""The merging layers (minicnn/layers/merging.py): Add and Concatenate against Keras 3 on the same
inputs, their backward against finite differences for every input, and the shapes they refuse;
then every merge layer and function (Subtract, Multiply, Average, Maximum, Minimum, Dot) against
Keras on the same inputs (values and every input's gradient, 1e-5 in float32), with Keras's
broadcasting, TensorFlow's rule for ties, finite differences, and in a functional model (summary,
saving). In a graph, tests/test_functional.py trains them against Keras."""
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

CASES = [  # the layer, its Keras twin's name and arguments, the input shapes
    (lambda: Add(dtype="float64"), "Add", {}, [(2, 3, 4, 5)] * 3),
    (lambda: Concatenate(dtype="float64"), "Concatenate", {}, [(2, 3, 4, 5), (2, 3, 4, 2)]),
    (lambda: Concatenate(axis=1, dtype="float64"), "Concatenate", {"axis": 1}, [(2, 1, 4, 5), (2, 3, 4, 5), (2, 2, 4, 5)]),
    (lambda: Concatenate(axis=-2, dtype="float64"), "Concatenate", {"axis": -2}, [(1, 3, 2, 5), (1, 3, 1, 5)]),
]


@pytest.mark.parametrize("make,keras_name,kwargs,shapes", CASES)
def test_merging_matches_keras_and_finite_differences(keras, rng, make, keras_name, kwargs, shapes):
    xs = [rng.standard_normal(s) for s in shapes]
    layer = make()
    y = layer.forward(xs, training=True)
    theirs = getattr(keras.layers, keras_name)(**kwargs)([x.astype(np.float32) for x in xs])
    np.testing.assert_allclose(y, np.asarray(theirs), rtol=1e-5, atol=1e-6)  # Keras in float32
    dy = rng.standard_normal(y.shape)
    dxs = layer.backward(dy)
    assert len(dxs) == len(xs)
    for x, dx in zip(xs, dxs):  # L = sum(y * dy): each input's gradient by centred differences
        numeric = numerical_gradient(lambda: float((layer.forward(xs, training=True) * dy).sum()), x)
        assert dx.shape == x.shape and relative_error(dx, numeric) < 1e-6


def test_merging_refuses_shapes_it_cannot_join():
    with pytest.raises(ValueError, match="adds inputs of one shape"):
        Add().forward([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="every other axis must match"):
        Concatenate().forward([np.zeros((2, 3, 4)), np.zeros((2, 2, 4))])
    with pytest.raises(ValueError, match="at least 2 inputs"):
        Add().forward([np.zeros((2, 3))])


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
