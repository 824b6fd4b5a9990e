"""A property-based round through the public API (hypothesis): inputs of every dtype, memory
layout and container, with NaN, Inf, huge values or no samples at all, into fit, evaluate,
predict, train_on_batch, save / load_model and to_categorical. Each call either gives exactly
what the same call gives on the plain C-contiguous float32 array, or raises one of the
documented errors (docs/errors.md) with a message that names the input. Never an error from
inside NumPy or Numba, never a silent wrong answer, never a damaged file."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toy import small_model

from minicnn.models import load_model
from minicnn.utils import to_categorical

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])
DTYPES = ["float32", "float64", "float16", "uint8", "int32", "int64", "bool", "object"]
LAYOUTS = ["C", "Fortran", "strided", "reversed", "list"]


def dress(a, dtype, layout):
    """The same values as a (cast to dtype) in another memory layout or as nested lists."""
    a = a.astype(dtype)
    if layout == "Fortran":
        return np.asfortranarray(a)
    if layout == "strided":  # every other entry of an array twice as long: a view with gaps
        wide = np.repeat(a, 2, axis=-1)
        return wide[..., ::2]
    if layout == "reversed":  # a view with negative strides, reversed back to the same order
        return a[::-1].copy()[::-1]
    if layout == "list":
        return a.tolist()
    return a


def plain(a):
    """What the model computes on: a C-contiguous float32 array."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64) if np.asarray(a).dtype == object else a,
                                dtype=np.float32)


@st.composite
def inputs(draw):
    """x: (N, 8, 8, 1) in some dtype and layout, one-hot y, and the plain versions of both."""
    n = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x_dtype, layout = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS))
    values = rng.integers(0, 2, (n, 8, 8, 1)) if x_dtype == "bool" else rng.integers(0, 256, (n, 8, 8, 1))
    if x_dtype.startswith("float"):
        values = values / 255
    labels = rng.integers(0, 2, n)
    y_dtype, y_layout = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS))
    y = np.eye(2)[labels]
    # An object array is refused (as TensorFlow refuses to convert one); as nested lists, the
    # same Python numbers are fine.
    x_refused, y_refused = x_dtype == "object" and layout != "list", y_dtype == "object" and y_layout != "list"
    return dress(values, x_dtype, layout), dress(y, y_dtype, y_layout), x_refused, y_refused


def compiled(weights, loss="categorical_crossentropy"):
    model = small_model()
    model.build((None, 8, 8, 1))
    model.set_weights(weights)
    model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def weights():
    model = small_model()
    model.build((None, 8, 8, 1))
    return model.get_weights()


def expect_error(call, *names):
    """call() raises TypeError or ValueError, and its message names one of names."""
    with pytest.raises((TypeError, ValueError)) as err:
        call()
    assert any(name in str(err.value) for name in names), str(err.value)


@SETTINGS
@given(inputs())
def test_every_dtype_and_layout_gives_the_plain_float32_results_or_a_clear_error(weights, data):
    x, y, x_refused, y_refused = data
    a, b = compiled(weights), compiled(weights)
    if x_refused:
        for call in (lambda: a.predict(x, verbose=0), lambda: a.evaluate(x, y, verbose=0),
                     lambda: a.fit(x, y, verbose=0), lambda: a.train_on_batch(x, y)):
            expect_error(call, "x must be a numeric array")
        return
    if y_refused:
        for call in (lambda: a.evaluate(x, y, verbose=0), lambda: a.fit(x, y, verbose=0),
                     lambda: a.train_on_batch(x, y)):
            expect_error(call, "y must be a numeric array")
        np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(plain(x), verbose=0))
        return
    xp, yp = plain(x), plain(y)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(xp, verbose=0))
    assert a.evaluate(x, y, verbose=0) == b.evaluate(xp, yp, verbose=0)
    assert a.train_on_batch(x, y) == b.train_on_batch(xp, yp)  # [loss, accuracy]
    a.fit(x, y, batch_size=2, shuffle=False, verbose=0)
    b.fit(xp, yp, batch_size=2, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@SETTINGS
@given(st.integers(1, 4), st.sampled_from(["nan", "inf", "-inf", "huge"]), st.sampled_from(["x", "y"]),
       st.integers(0, 2**31 - 1))
def test_non_finite_or_huge_values_are_refused_before_anything_changes(weights, n, value, where, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 8, 8, 1)), np.eye(2)[rng.integers(0, 2, n)]
    bad = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 1e39}[value]
    target = x if where == "x" else y
    target[tuple(rng.integers(0, s) for s in target.shape)] = bad
    model = compiled(weights)
    calls = [lambda: model.evaluate(x, y, verbose=0), lambda: model.fit(x, y, verbose=0),
             lambda: model.train_on_batch(x, y)]
    if where == "x":
        calls.append(lambda: model.predict(x, verbose=0))
    for call in calls:
        expect_error(call, "NaN or Inf", "beyond float32's range")
    for w, w0 in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(w, w0)


@SETTINGS
@given(st.sampled_from(["empty", "ragged", "scalar", "None", "strings", "complex", "no channel axis"]))
def test_malformed_inputs_name_the_input(weights, kind):
    model = compiled(weights)
    x = {"empty": np.zeros((0, 8, 8, 1), np.float32), "ragged": [[[0.0]], [[0.0, 1.0]]], "scalar": 1.0,
         "None": None, "strings": np.full((2, 8, 8, 1), "a"), "complex": np.zeros((2, 8, 8, 1), complex),
         "no channel axis": np.zeros((2, 8, 8), np.float32)}[kind]
    y = np.eye(2)[[0, 1]]
    expect_error(lambda: model.predict(x, verbose=0), "x ", "x:")
    expect_error(lambda: model.fit(x, y, verbose=0), "x ", "x:")
    good = np.zeros((2, 8, 8, 1), np.float32)
    bad_y = {"empty": y[:0], "ragged": [[0.0], [0.0, 1.0]], "scalar": 1.0, "None": None,
             "strings": np.full((2, 2), "a"), "complex": y.astype(complex), "no channel axis": y[:, :1, None]}[kind]
    expect_error(lambda: model.fit(good, bad_y, verbose=0), "y ", "y:")
    expect_error(lambda: model.evaluate(good, bad_y, verbose=0), "y ", "y:")


@SETTINGS
@given(st.integers(1, 6), st.sampled_from(["int64", "int32", "uint8", "float64", "float32", "bool", "object"]),
       st.sampled_from(["flat", "column", "list"]), st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_sparse_labels_of_any_dtype(weights, n, dtype, shape, extra, seed):
    rng = np.random.default_rng(seed)
    x, labels = rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 2, n)
    y = labels.astype(dtype)
    y = {"flat": y, "column": y[:, None], "list": y.tolist()}[shape]
    a, b = compiled(weights, "sparse_categorical_crossentropy"), compiled(weights, "sparse_categorical_crossentropy")
    if dtype == "object" and shape != "list":
        expect_error(lambda: a.fit(x, y, verbose=0), "y must be a numeric array")
        return
    assert a.train_on_batch(x, y) == b.train_on_batch(x, labels)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    if extra:  # labels that are not classes of a 2-output model: refused, nothing trained
        wrong = labels.astype(np.float64)
        wrong[0] = {1: 2, 2: -1, 3: 0.5}[extra]
        expect_error(lambda: a.fit(x, wrong, verbose=0), "labels must be in 0..1", "non-integer values")


@SETTINGS
@given(st.lists(st.integers(0, 6), max_size=8), st.sampled_from(["int64", "uint8", "float32", "object", "bool"]),
       st.sampled_from(["flat", "column", "list"]), st.integers(-1, 9))
def test_to_categorical_of_any_dtype_and_shape(labels, dtype, shape, num_classes):
    y = np.array(labels, dtype=np.int64)
    if dtype == "bool":
        y = y % 2
    arg = y.astype(dtype)
    arg = {"flat": arg, "column": arg[:, None], "list": arg.tolist()}[shape]
    k = None if num_classes == -1 else num_classes
    top = int(y.max()) + 1 if y.size else 0
    if k is not None and (k < 1 or top > k):
        expect_error(lambda: to_categorical(arg, k), "num_classes")
        return
    got = to_categorical(arg, k)
    want = np.zeros((len(y), top if k is None else k), np.float32)
    want[np.arange(len(y)), y] = 1
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(st.sampled_from(["None", "list", "object", "shape", "float64", "nan", "inf", "int"]), st.booleans(),
       st.integers(0, 3))
def test_save_never_replaces_a_good_file_with_a_bad_one(tmp_path_factory, weights, bad, weights_only, which):
    folder = tmp_path_factory.mktemp("save")
    model = compiled(weights)
    x = np.random.default_rng(which).random((3, 8, 8, 1), dtype=np.float32)
    model.train_on_batch(x, np.eye(2)[[0, 1, 1]])
    path = folder / "model.npz"
    (model.save_weights if weights_only else model.save)(path)
    good = path.read_bytes()
    layer, key = [(layer, k) for layer in model.layers for k in layer.params][which]
    p = layer.params[key]
    layer.params[key] = {"None": None, "list": p.tolist(), "object": p.astype(object),
                         "shape": p[..., :-1], "float64": p.astype(np.float64), "int": p.astype(np.int64),
                         "nan": np.where(p == p.flat[0], np.nan, p).astype(p.dtype),
                         "inf": np.full_like(p, np.inf)}[bad]
    expect_error(lambda: (model.save_weights if weights_only else model.save)(path), f"weight {key!r}")
    assert path.read_bytes() == good and sorted(f.name for f in folder.iterdir()) == ["model.npz"]
    layer.params[key] = p
    if not weights_only:
        np.testing.assert_array_equal(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))
