"""model.to_json() / minicnn.models.model_from_json: the architecture alone, as Keras, for
Sequential and functional models (several inputs and outputs included); clear errors for bad JSON."""
import json

import numpy as np
import pytest

import minicnn
from minicnn import layers as L
from minicnn.models import Model, Sequential, model_from_json


def small_sequential():
    return Sequential([L.Conv2D(2, 3, padding="same", activation="relu", input_shape=(6, 6, 1)),
                       L.MaxPooling2D(), L.Flatten(), L.Dropout(0.2), L.Dense(3, activation="softmax")])


def two_in_two_out():
    a, b = minicnn.Input(shape=(4,), name="a"), minicnn.Input(shape=(3,), name="b")
    h = L.Concatenate()([L.Dense(5, activation="relu")(a), b])
    return Model([a, b], {"digit": L.Dense(3, activation="softmax", name="digit")(h), "size": L.Dense(1, name="size")(h)})


@pytest.mark.parametrize("make", [small_sequential, two_in_two_out])
def test_round_trip(make, rng):
    """The same config, layers and outputs once the weights are copied; nothing of the weights in
    the JSON."""
    model = make()
    text = model.to_json()
    assert json.loads(text)["class_name"] == type(model).__name__
    again = model_from_json(text)
    assert type(again) is type(model) and again.to_json() == text  # the same graph, the same names
    assert [type(a) for a in again.layers] == [type(a) for a in model.layers]
    assert len(text) < 5000  # the architecture only
    again.set_weights(model.get_weights())
    if model.multi_io:
        x = [rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)]
        assert again.output_names == ["digit", "size"] and again.input_names == ["a", "b"]
        ours, theirs = model.predict(x, verbose=0), again.predict(x, verbose=0)
        assert list(theirs) == ["digit", "size"]  # outputs given as a dict come back as a dict, as Keras
        for k in ours:
            np.testing.assert_array_equal(ours[k], theirs[k])
    else:
        x = rng.standard_normal((5, 6, 6, 1)).astype(np.float32)
        np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))


def test_a_layer_of_your_own_comes_back_through_custom_objects():
    class Twice(L.Layer):
        def call(self, x):
            return 2 * x

    model = Sequential([L.Dense(2, input_shape=(3,)), Twice()])
    text = model.to_json()
    with pytest.raises(ValueError, match="unknown class 'Twice'"):
        model_from_json(text)
    assert isinstance(model_from_json(text, custom_objects={"Twice": Twice}).layers[1], Twice)


@pytest.mark.parametrize("text, message", [
    ("{not json", "json_string is not JSON"),
    ("[1, 2]", "expected .*got list"),
    ('{"config": {}}', r"got \['config'\]"),
    ('{"class_name": "os.system", "config": {}}', "unknown class 'os.system'"),
    ('{"class_name": "Dense", "config": {"units": 2}}', "'Dense' is a layer, not a model"),
    ('{"class_name": "Sequential", "config": {"name": "s"}}', "Sequential config is not valid .*'layers'"),
])
def test_bad_json_names_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        model_from_json(text)
