"""The merging layers (minicnn/layers/merging.py): Add and Concatenate against Keras 3 on the same
inputs, their backward against finite differences for every input, and the shapes they refuse.
In a graph, tests/test_functional.py trains them against Keras."""
import numpy as np
import pytest

from minicnn.gradcheck import numerical_gradient, relative_error
from minicnn.layers import Add, Concatenate

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
