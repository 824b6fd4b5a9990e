"""minicnn.tf.data against TensorFlow's tf.data: the same pipelines give the same elements where
TensorFlow is deterministic, and a shuffle keeps TensorFlow's buffer semantics."""
import os

import numpy as np
import pytest

import minicnn.tf as mtf
from minicnn.tf.data import UNKNOWN_CARDINALITY, Dataset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

X = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
Y = np.array([0, 1, 2, 0, 1, 2, 0])


def elements(ds):
    """A dataset's elements, minicnn's or TensorFlow's, as lists of (nested) NumPy values."""
    return list(ds.as_numpy_iterator())


def assert_same_elements(ours, theirs):
    a, b = elements(ours), elements(theirs)
    assert len(a) == len(b), (len(a), len(b))
    for x, y in zip(a, b):
        assert_same_element(x, y)


def assert_same_element(x, y):
    assert type(x) is type(y) or (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)), (type(x), type(y))
    if isinstance(x, tuple):
        assert len(x) == len(y)
        for p, q in zip(x, y):
            assert_same_element(p, q)
    elif isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            assert_same_element(x[k], y[k])
    else:
        assert np.asarray(x).dtype == np.asarray(y).dtype and np.shape(x) == np.shape(y), (x, y)
        np.testing.assert_array_equal(x, y)


# Each pipeline is written once and built on both modules: `t` is minicnn.tf or tensorflow.
PIPELINES = {
    "array": lambda t: t.data.Dataset.from_tensor_slices(X),
    "list of ints": lambda t: t.data.Dataset.from_tensor_slices([1, 2, 3]),
    "list of floats": lambda t: t.data.Dataset.from_tensor_slices([[1.5, 2.0], [3.0, 4.0]]),
    "tuple": lambda t: t.data.Dataset.from_tensor_slices((X, Y)),
    "dict": lambda t: t.data.Dataset.from_tensor_slices({"image": X, "label": Y}),
    "nested": lambda t: t.data.Dataset.from_tensor_slices(((X, Y), {"w": Y * 0.5})),
    "tuple of lists": lambda t: t.data.Dataset.from_tensor_slices(([1.0, 2.0, 3.0], [0, 1, 0])),
    "batch": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).batch(3),
    "batch drop_remainder": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).batch(3, drop_remainder=True),
    "batch larger than data": lambda t: t.data.Dataset.from_tensor_slices(X).batch(10),
    "batch of dicts": lambda t: t.data.Dataset.from_tensor_slices({"a": X, "b": Y}).batch(4),
    "map then batch": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).map(lambda x, y: (x * 2.0, y + 1)).batch(2),
    "batch then map": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).batch(2).map(lambda x, y: (x[:, :1], y * 3)),
    "map to one array": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).map(lambda x, y: x + 1.0),
    "map returns a list": lambda t: t.data.Dataset.from_tensor_slices(Y).map(lambda y: [y, y + 1]),
    "map with casts": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).map(
        lambda x, y: (t.cast(x, t.float64) / 255.0, t.cast(y, t.int64)), num_parallel_calls=t.data.AUTOTUNE),
    "map over a dict": lambda t: t.data.Dataset.from_tensor_slices({"a": X, "b": Y}).map(lambda d: (d["a"], d["b"])),
    "filter": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).filter(lambda x, y: y > 0),
    "repeat": lambda t: t.data.Dataset.from_tensor_slices(Y).repeat(3),
    "repeat take": lambda t: t.data.Dataset.from_tensor_slices(Y).repeat().take(17),
    "take": lambda t: t.data.Dataset.from_tensor_slices(X).take(4),
    "take all": lambda t: t.data.Dataset.from_tensor_slices(X).take(-1),
    "take more": lambda t: t.data.Dataset.from_tensor_slices(X).take(100),
    "skip": lambda t: t.data.Dataset.from_tensor_slices(X).skip(5),
    "skip all": lambda t: t.data.Dataset.from_tensor_slices(X).skip(-1),
    "skip take batch repeat": lambda t: t.data.Dataset.from_tensor_slices(Y).skip(1).take(5).batch(2).repeat(2),
    "cache prefetch": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).cache().batch(2).prefetch(t.data.AUTOTUNE),
    "unbatch": lambda t: t.data.Dataset.from_tensor_slices((X, Y)).batch(3).unbatch(),
    "range": lambda t: t.data.Dataset.range(5),
    "range step": lambda t: t.data.Dataset.range(2, 11, 3),
    "from_tensors": lambda t: t.data.Dataset.from_tensors((X, Y)),
    "zip": lambda t: t.data.Dataset.zip((t.data.Dataset.range(3), t.data.Dataset.from_tensor_slices(X))),
    "empty repeat": lambda t: t.data.Dataset.from_tensor_slices(X).take(0).repeat(),
    "shuffle buffer 1": lambda t: t.data.Dataset.from_tensor_slices(Y).shuffle(1).batch(2),
}


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_gives_tensorflows_elements(name):
    assert_same_elements(PIPELINES[name](mtf), PIPELINES[name](tf))


@pytest.mark.parametrize("name", [n for n in PIPELINES if n != "empty repeat"] + [
    "repeat forever", "filter repeat", "filter take", "repeat skip", "unbatch repeat", "generator", "unbatch of fixed batches"])
def test_cardinality_is_tensorflows(name):
    more = {"repeat forever": lambda t: t.data.Dataset.range(3).repeat(),
            "filter repeat": lambda t: t.data.Dataset.range(3).filter(lambda x: x > 0).repeat(),
            "filter take": lambda t: t.data.Dataset.range(3).filter(lambda x: x > 0).take(2),
            "repeat skip": lambda t: t.data.Dataset.range(3).repeat().skip(-1),
            "unbatch of fixed batches": lambda t: t.data.Dataset.range(7).batch(2, drop_remainder=True).unbatch(),
            "unbatch repeat": lambda t: t.data.Dataset.range(4).batch(2).repeat().unbatch(),
            "generator": lambda t: t.data.Dataset.from_generator(
                lambda: iter([1, 2]), output_signature=t.TensorSpec((), t.int32) if t is tf else None)}
    build = PIPELINES.get(name) or more[name]
    ours, theirs = build(mtf).cardinality(), build(tf).cardinality()
    if name == "unbatch of fixed batches":  # TensorFlow reads the batch size from static shapes; minicnn has none
        assert int(ours) == UNKNOWN_CARDINALITY and int(theirs) == 6
        return
    assert int(ours) == int(theirs.numpy()) and ours.dtype == theirs.numpy().dtype
    assert int(ours.numpy()) == int(ours)


def test_len_and_its_errors_are_tensorflows():
    assert len(PIPELINES["batch"](mtf)) == len(PIPELINES["batch"](tf)) == 3
    for build, message in [(lambda t: t.data.Dataset.range(2).repeat(), "infinite"),
                            (lambda t: t.data.Dataset.range(2).filter(lambda x: x > 0), "unknown")]:
        for t in (mtf, tf):
            with pytest.raises(TypeError, match=message):
                len(build(t))
    assert mtf.data.INFINITE_CARDINALITY == tf.data.INFINITE_CARDINALITY
    assert mtf.data.UNKNOWN_CARDINALITY == tf.data.UNKNOWN_CARDINALITY
    assert mtf.data.AUTOTUNE == tf.data.AUTOTUNE == mtf.data.experimental.AUTOTUNE


def test_a_for_loop_gives_arrays_with_numpy():
    for xb, yb in Dataset.from_tensor_slices((X, Y)).batch(4).take(1):
        assert xb.numpy().shape == (4, 3) and yb.numpy().tolist() == [0, 1, 2, 0]
        assert type(xb.numpy()) is np.ndarray
    (first,) = list(Dataset.from_tensor_slices(Y).take(1))
    assert first.numpy() == 0 and first.numpy().dtype == np.int64  # an int64 array keeps its dtype


def test_map_gets_batches_after_batch():
    seen = []
    list(Dataset.from_tensor_slices((X, Y)).map(lambda x, y: seen.append(x.shape) or (x, y)).batch(3).take(1))
    assert seen == [(3,)] * 3  # before batch: one element at a time
    seen.clear()
    list(Dataset.from_tensor_slices((X, Y)).batch(3).map(lambda x, y: seen.append(x.shape) or (x, y)))
    assert seen == [(3, 3), (3, 3), (1, 3)]


def test_each_pass_runs_the_pipeline_again_but_cache_replays():
    calls = []
    ds = Dataset.from_tensor_slices(Y).map(lambda y: calls.append(1) or y)
    list(ds), list(ds)
    assert len(calls) == 2 * len(Y)
    calls.clear()
    cached = ds.cache()
    partial = iter(cached)
    next(partial)  # a pass cut short fills no cache
    assert [int(a) for a in cached] == Y.tolist() and [int(a) for a in cached] == Y.tolist()
    assert len(calls) == 1 + len(Y)


def order(ds):
    return [int(a) for a in ds.as_numpy_iterator()]


@pytest.mark.parametrize("t", [mtf, tf], ids=["minicnn", "tensorflow"])
@pytest.mark.parametrize("buffer_size", [1, 2, 5, 40, 100])
def test_shuffle_keeps_the_buffer_semantics(t, buffer_size):
    """Each pass is a permutation of the data, and an element moves ahead by less than
    buffer_size places: the element output at place k came from the first k + buffer_size inputs.
    TensorFlow's shuffle passes the same test, which shows the test asks for its semantics."""
    n = 40
    ds = t.data.Dataset.range(n).shuffle(buffer_size)
    passes = [order(ds) for _ in range(5)]
    for p in passes:
        assert sorted(p) == list(range(n))
        assert all(source < k + buffer_size for k, source in enumerate(p)), p
    if buffer_size == 1:
        assert passes[0] == list(range(n))
    else:
        assert len({tuple(p) for p in passes}) > 1  # reshuffled each pass
    if buffer_size >= n:  # a uniform shuffle: some element lands far ahead of where it started
        assert any(max(k - source for k, source in enumerate(p)) > buffer_size // 4 for p in passes)


@pytest.mark.parametrize("t", [mtf, tf], ids=["minicnn", "tensorflow"])
def test_shuffle_reshuffle_each_iteration_and_seed(t):
    same_each_pass = t.data.Dataset.range(30).shuffle(30, seed=3, reshuffle_each_iteration=False)
    assert order(same_each_pass) == order(same_each_pass) != list(range(30))
    seeded = [order(t.data.Dataset.range(30).shuffle(30, seed=5)) for _ in range(2)]
    assert seeded[0] == seeded[1]  # the same seed, the same first pass
    ds = t.data.Dataset.range(30).shuffle(30, seed=5)
    assert order(ds) != order(ds)  # and a new order for the next pass
    shuffled_then_cached = t.data.Dataset.range(30).shuffle(30).cache()
    assert order(shuffled_then_cached) == order(shuffled_then_cached)
    repeated = order(t.data.Dataset.range(10).shuffle(10).repeat(3))
    assert [sorted(repeated[i:i + 10]) for i in (0, 10, 20)] == [list(range(10))] * 3
    assert repeated[:10] != repeated[10:20] or repeated[10:20] != repeated[20:]


def test_shuffle_follows_set_seed_and_spreads_evenly():
    def first_pass():
        mtf.random.set_seed(11)
        return order(Dataset.range(20).shuffle(20))

    assert first_pass() == first_pass()
    # With a buffer as large as the data every element is equally likely to come first:
    # 2,000 passes of 4 elements, each count near 500 (binomial sd 19; 120 is > 6 sd).
    firsts = np.bincount([order(Dataset.range(4).shuffle(4))[0] for _ in range(2000)], minlength=4)
    assert np.all(np.abs(firsts - 500) < 120), firsts
    # With buffer 2 the first output is element 0 or 1, each half the time.
    firsts = np.bincount([order(Dataset.range(4).shuffle(2))[0] for _ in range(2000)], minlength=4)
    assert firsts[2:].sum() == 0 and abs(firsts[0] - 1000) < 170, firsts


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="same length"):
        Dataset.from_tensor_slices((X, Y[:3]))
    with pytest.raises(ValueError, match="first axis"):
        Dataset.from_tensor_slices(3.0)
    with pytest.raises(ValueError, match="batch_size"):
        Dataset.range(3).batch(0)
    with pytest.raises(ValueError, match="buffer_size"):
        Dataset.range(3).shuffle(0)
    with pytest.raises(ValueError, match="count"):
        Dataset.range(3).take(-2)
    with pytest.raises(ValueError, match="one boolean"):
        list(Dataset.range(3).filter(lambda x: x + 1))
    with pytest.raises(TypeError, match="function"):
        Dataset.from_generator(iter([1, 2]))
    with pytest.raises(AttributeError, match="TensorFlow's Dataset.interleave is not part of minicnn.tf"):
        Dataset.range(3).interleave  # noqa: B018


def test_from_generator_calls_the_function_at_each_pass():
    ds = Dataset.from_generator(lambda: ((np.float32(i), i % 2) for i in range(5)))
    for a, b in zip(elements(ds.batch(2)), elements(ds.batch(2)), strict=True):
        assert_same_element(a, b)
    assert_same_element(elements(ds.batch(5))[0], (np.arange(5, dtype=np.float32), np.array([0, 1, 0, 1, 0], np.int32)))


# -- fit, evaluate and predict on a Dataset ------------------------------------------------------------
def small_model(seed=0):
    from minicnn.layers import Dense, Flatten
    from minicnn.models import Sequential
    from minicnn.optimizers import SGD
    model = Sequential([Flatten(input_shape=(3,)), Dense(3, activation="softmax")])
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.build((None, 3))
    w = np.random.default_rng(seed).normal(size=(3, 3)).astype(np.float32)
    model.set_weights([w, np.zeros(3, np.float32)])
    return model


def test_fit_on_a_dataset_is_fit_on_its_batches():
    """A Dataset's batches train as the same batches of arrays; TensorFlow's own Dataset too
    (its elements read as NumPy arrays, TensorFlow never imported by minicnn)."""
    reference, ours, theirs = small_model(), small_model(), small_model()
    reference.fit(X, Y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    history = ours.fit(Dataset.from_tensor_slices((X, Y)).batch(3), epochs=2, verbose=0)
    theirs.fit(tf.data.Dataset.from_tensor_slices((X, Y)).batch(3), epochs=2, verbose=0)
    for model in (ours, theirs):
        for a, b in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert len(history.history["loss"]) == 2
    for ds in (Dataset.from_tensor_slices((X, Y)).batch(2), tf.data.Dataset.from_tensor_slices((X, Y)).batch(2)):
        np.testing.assert_allclose(ours.evaluate(ds, verbose=0), reference.evaluate(X, Y, verbose=0), rtol=1e-6)
        np.testing.assert_array_equal(ours.predict(ds, verbose=0), reference.predict(X, verbose=0))
        np.testing.assert_array_equal(ours.predict(ds.map(lambda x, y: x), verbose=0), reference.predict(X, verbose=0))
    val = ours.fit(Dataset.from_tensor_slices((X, Y)).batch(3), validation_data=Dataset.from_tensor_slices((X, Y)).batch(4),
                   epochs=1, verbose=0).history
    assert val["val_loss"][0] == pytest.approx(ours.evaluate(X, Y, verbose=0)[0], rel=1e-6)


def batches_seen(steps_per_epoch, epochs, dataset=None):
    """The batches fit trains on, each epoch: the dataset's batch i holds i in every x value."""
    seen = []
    ds = dataset or Dataset.from_tensor_slices((np.repeat(np.arange(5.0, dtype=np.float32), 6).reshape(10, 3),
                                                np.zeros(10, np.int64))).batch(2)
    ds = ds.map(lambda x, y: (seen.append(int(x[0, 0])) or x, y))
    model = small_model()
    model.fit(ds, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0,
              callbacks=[__import__("minicnn").callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append("|"))])
    return "".join(map(str, seen))


def test_fit_reads_a_dataset_as_keras_does():
    """keras/src/trainers/epoch_iterator.py: a pass each epoch; with steps_per_epoch the pass goes
    on across epochs, an epoch that meets its end stops there, and the next starts a new pass."""
    assert batches_seen(None, 2) == "01234|01234|"
    assert batches_seen(2, 4) == "01|23|4|01|"
    assert batches_seen(5, 2) == "01234|01234|"
    assert batches_seen(3, 3, Dataset.range(4).map(lambda i: (np.full((2, 3), i, np.float32), np.zeros(2, np.int64)))
                        .repeat()) == "012|301|230|"
