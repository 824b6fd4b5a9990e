"""tf.data in NumPy: a Dataset is a recipe for a stream of elements, rebuilt at each pass.

    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))   # element i: (x_train[i], y_train[i])
    ds = ds.shuffle(10_000).batch(32).map(augment).prefetch(tf.data.AUTOTUNE)
    model.fit(ds, epochs=5)                                      # one pass over ds per epoch
    for xb, yb in ds.take(1): ...                                # xb: (32, ...) arrays with .numpy()

An element is an array, or a tuple or dict of them (nested as deep as you like). Each method
returns a new Dataset; nothing runs until the dataset is iterated, and each iteration (each
epoch of fit, each `for` loop) starts again from the source: a shuffle reshuffles, a cache
replays what its first complete pass saw. What differs from TensorFlow: the elements are NumPy
arrays, map and filter run your Python function on them as it is (no graph tracing), and
prefetch, num_parallel_calls and AUTOTUNE are accepted but run nothing in parallel.
"""
import itertools

import numpy as np

from minicnn import utils
from minicnn.tf._diff import convert_to_tensor
from minicnn.utils import Tensor

AUTOTUNE = -1  # TensorFlow's value; accepted wherever TensorFlow takes it, and means nothing here
INFINITE_CARDINALITY = -1  # cardinality() of a dataset that never ends (repeat())
UNKNOWN_CARDINALITY = -2  # cardinality() where it depends on the data (filter, unbatch, a generator)


# -- elements: nested tuples and dicts of arrays ------------------------------------------------------
def _map_structure(fn, *elements):
    """fn applied to the arrays of one or several elements of the same structure."""
    first = elements[0]
    if isinstance(first, tuple):
        return tuple(_map_structure(fn, *parts) for parts in zip(*elements))
    if isinstance(first, dict):
        return {k: _map_structure(fn, *(e[k] for e in elements)) for k in first}
    return fn(*elements)


def _leaves(element):
    if isinstance(element, tuple):
        return [a for part in element for a in _leaves(part)]
    if isinstance(element, dict):
        return [a for part in element.values() for a in _leaves(part)]
    return [element]


def _structure(value):
    """value as an element: tuples and dicts kept, everything else (a list too) an array with
    TensorFlow's dtype rules."""
    if isinstance(value, tuple):
        return tuple(_structure(v) for v in value)
    if isinstance(value, dict):
        return {k: _structure(v) for k, v in value.items()}
    return np.asarray(convert_to_tensor(value))


def _call(fn, element):
    """fn on an element as TensorFlow calls it: a tuple's parts as separate arguments."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _row(element, i):
    """Row i of each array of an element."""
    return _map_structure(lambda a: a[i, ...], element)


def _as_numpy(element):
    """Arrays as they are, and a 0-d array as a NumPy scalar, as TensorFlow's .numpy() gives them."""
    return _map_structure(lambda a: a[()] if a.ndim == 0 else a, element)


def _count(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Dataset:
    """A stream of elements: made by from_tensor_slices, from_tensors, range, zip or
    from_generator; changed by the methods below, each returning a new Dataset.

    Args:
        make: a function that returns a fresh iterator of elements (one per pass).
        cardinality: the number of elements, INFINITE_CARDINALITY or UNKNOWN_CARDINALITY.
    """

    def __init__(self, make, cardinality):
        self._make, self._cardinality = make, int(cardinality)

    # -- sources ------------------------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors, name=None):
        """One element per row: tensors is an array (a list counts as one) or a tuple or dict of
        arrays with the same first dimension N; element i holds row i of each."""
        element = _structure(tensors)
        leaves = _leaves(element)
        if any(a.ndim == 0 for a in leaves):
            raise ValueError("from_tensor_slices slices along the first axis: every array needs one, "
                             f"got shapes {[a.shape for a in leaves]}")
        sizes = {len(a) for a in leaves}
        if len(sizes) != 1:
            raise ValueError(f"from_tensor_slices needs arrays of the same length, got shapes {[a.shape for a in leaves]}")
        n = sizes.pop()
        return Dataset(lambda: (_row(element, i) for i in range(n)), n)

    @staticmethod
    def from_tensors(tensors, name=None):
        """A dataset of one element: tensors itself."""
        element = _structure(tensors)
        return Dataset(lambda: iter([element]), 1)

    @staticmethod
    def range(*args, dtype=np.int64, name=None):
        """range(stop), range(start, stop[, step]) as int64 scalars."""
        values = np.arange(*args).astype(dtype)
        return Dataset(lambda: (values[i, ...] for i in range(len(values))), len(values))

    @staticmethod
    def zip(*datasets, name=None):
        """Elements taken together: zip((a, b)) or zip(a, b) gives (element of a, element of b), as
        long as the shortest lasts; a dict of datasets gives dicts."""
        structure = datasets[0] if len(datasets) == 1 and not isinstance(datasets[0], Dataset) else datasets
        members = list(structure.values()) if isinstance(structure, dict) else list(structure)
        if not members or not all(isinstance(d, Dataset) for d in members):
            raise TypeError("Dataset.zip takes datasets: zip((a, b)), zip(a, b) or zip({'x': a, 'y': b})")
        known = [d._cardinality for d in members]
        finite = [k for k in known if k >= 0]
        n = UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in known else (min(finite) if finite else INFINITE_CARDINALITY)

        def make():
            for parts in zip(*(d._make() for d in members)):
                yield dict(zip(structure, parts)) if isinstance(structure, dict) else tuple(parts)
        return Dataset(make, n)

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None, output_signature=None,
                       name=None):
        """The elements generator(*args) yields, called again at each pass (a function, not a
        generator object). The signature arguments are accepted; the elements are not checked against them."""
        if not callable(generator):
            raise TypeError("from_generator takes a function that returns a generator (e.g. the generator "
                            f"function itself), got {type(generator).__name__}")
        return Dataset(lambda: (_structure(e) for e in generator(*(args or ()))), UNKNOWN_CARDINALITY)

    # -- transformations ----------------------------------------------------------------------------------------
    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=None, name=None):
        """Elements in random order, TensorFlow's way: a buffer holds the next buffer_size
        elements; each output is a random one of them, whose place the next element takes. So an
        element moves ahead by less than buffer_size places; buffer_size >= the dataset's length
        gives a uniform shuffle, 1 none. Each pass is shuffled afresh unless
        reshuffle_each_iteration=False. Without seed, the order follows minicnn's generator
        (tf.random.set_seed / keras.utils.set_random_seed make it repeatable)."""
        buffer_size = _count("buffer_size", buffer_size, 1)
        seeds = np.random.default_rng(utils.rng().integers(2**63) if seed is None else int(seed))
        fixed = seeds.integers(2**63)
        again = reshuffle_each_iteration is None or reshuffle_each_iteration

        def make():
            g = np.random.default_rng(seeds.integers(2**63) if again else fixed)
            source = self._make()
            buffer = list(itertools.islice(source, buffer_size))
            for element in source:
                j = g.integers(len(buffer))
                yield buffer[j]
                buffer[j] = element
            while buffer:  # the source ran out: empty the buffer in random order
                j = g.integers(len(buffer))
                buffer[j], buffer[-1] = buffer[-1], buffer[j]
                yield buffer.pop()
        return Dataset(make, self._cardinality)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None, name=None):
        """batch_size consecutive elements stacked into one: each array gains a first axis. The
        last, smaller batch is kept unless drop_remainder=True."""
        batch_size = _count("batch_size", batch_size, 1)

        def make():
            elements = []
            for element in self._make():
                elements.append(element)
                if len(elements) == batch_size:
                    yield _map_structure(lambda *rows: np.stack(rows), *elements)
                    elements = []
            if elements and not drop_remainder:
                yield _map_structure(lambda *rows: np.stack(rows), *elements)
        n = self._cardinality
        if n >= 0:
            n = n // batch_size if drop_remainder else -(-n // batch_size)
        return Dataset(make, n)

    def unbatch(self, name=None):
        """The rows of each element's arrays as elements of their own: batch's inverse."""
        def make():
            for element in self._make():
                for i in range(len(_leaves(element)[0])):
                    yield _row(element, i)
        return Dataset(make, UNKNOWN_CARDINALITY if self._cardinality != INFINITE_CARDINALITY else INFINITE_CARDINALITY)

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """map_func on each element (a tuple's parts as separate arguments), in Python on NumPy
        arrays. After batch it gets batches, as in TensorFlow."""
        def out(value):  # a list returned is a tuple of elements, as in TensorFlow (a list inside, an array)
            return _structure(tuple(value) if isinstance(value, list) else value)
        return Dataset(lambda: (out(_call(map_func, e)) for e in self._make()), self._cardinality)

    def filter(self, predicate, name=None):
        """The elements for which predicate (called as map calls its function) returns True."""
        def make():
            for element in self._make():
                keep = np.asarray(_call(predicate, element))
                if keep.shape != () or keep.dtype != np.bool_:
                    raise ValueError(f"filter's predicate must return one boolean, got {keep.dtype} of shape {keep.shape}")
                if keep:
                    yield element
        return Dataset(make, UNKNOWN_CARDINALITY if self._cardinality != INFINITE_CARDINALITY else INFINITE_CARDINALITY)

    def repeat(self, count=None, name=None):
        """The dataset count times over (forever with None or -1), each pass made afresh (a
        shuffle reshuffles)."""
        count = -1 if count is None else count
        if count != -1:
            count = _count("count", count, 0)

        def make():
            for _ in itertools.count() if count == -1 else range(count):
                empty = True
                for element in self._make():
                    empty = False
                    yield element
                if empty:  # an empty dataset repeated is empty, not an endless loop
                    return
        n = self._cardinality
        if count == -1:
            n = 0 if n == 0 else INFINITE_CARDINALITY
        elif n >= 0:
            n *= count
        return Dataset(make, n)

    def take(self, count, name=None):
        """The first count elements (all with -1)."""
        if count == -1:
            return Dataset(self._make, self._cardinality)
        count = _count("count", count, 0)
        n = self._cardinality
        n = count if n == INFINITE_CARDINALITY else (min(n, count) if n >= 0 else n)
        return Dataset(lambda: itertools.islice(self._make(), count), n)

    def skip(self, count, name=None):
        """All but the first count elements (none with -1)."""
        if count == -1:
            infinite = self._cardinality == INFINITE_CARDINALITY
            return Dataset(self._make if infinite else lambda: iter(()), self._cardinality if infinite else 0)
        count = _count("count", count, 0)
        n = self._cardinality
        n = max(n - count, 0) if n >= 0 else n
        return Dataset(lambda: itertools.islice(self._make(), count, None), n)

    def cache(self, filename="", name=None):
        """The elements of the first complete pass, kept in memory and replayed by later passes
        (a shuffle before the cache then gives the same order each pass; after it, a new one).
        A filename is accepted, but the cache stays in memory."""
        kept = []

        def make():
            if kept:
                yield from kept[0]
                return
            elements = []
            for element in self._make():
                elements.append(element)
                yield element
            kept.append(elements)  # only a pass that ran to its end fills the cache
        return Dataset(make, self._cardinality)

    def prefetch(self, buffer_size, name=None):
        """The same dataset: accepted for TensorFlow's sake; minicnn prepares no batch ahead."""
        return Dataset(self._make, self._cardinality)

    # -- reading it -----------------------------------------------------------------------------------------------
    def __iter__(self):
        """The elements, as arrays that answer .numpy() (TensorFlow's eager tensors do)."""
        return (_map_structure(lambda a: np.asarray(a).view(Tensor), e) for e in self._make())

    def as_numpy_iterator(self):
        """The elements as NumPy arrays (NumPy scalars for scalars), as TensorFlow gives them."""
        return (_as_numpy(e) for e in self._make())

    def cardinality(self):
        """The number of elements (int64), or INFINITE_CARDINALITY (-1) or UNKNOWN_CARDINALITY (-2)."""
        return np.asarray(self._cardinality, dtype=np.int64).view(Tensor)

    def __len__(self):
        if self._cardinality == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if self._cardinality == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return self._cardinality

    def __bool__(self):  # a dataset is never falsy, even an empty one (TensorFlow's too)
        return True

    def __repr__(self):
        n = {INFINITE_CARDINALITY: "infinite", UNKNOWN_CARDINALITY: "unknown"}.get(self._cardinality, self._cardinality)
        return f"<minicnn.tf.data.Dataset: {n} elements>"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"TensorFlow's Dataset.{name} is not part of minicnn.tf; a Dataset here offers "
                             "from_tensor_slices, from_tensors, from_generator, range, zip, shuffle, batch, unbatch, "
                             "map, filter, repeat, take, skip, cache, prefetch, as_numpy_iterator, cardinality")


class experimental:
    AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY = AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY

    @staticmethod
    def cardinality(dataset):
        return dataset.cardinality()


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise AttributeError(f"TensorFlow's data.{name} is not part of minicnn.tf; minicnn.tf.data offers Dataset, "
                         "AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY")
