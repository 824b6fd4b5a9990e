"""Small helpers users call directly: one-hot labels, the random seed, a batch unpacked."""
import random

import numpy as np

_rng = [np.random.default_rng()]


def rng():
    """minicnn's random generator (weight initialisation, shuffling)."""
    return _rng[0]


def set_random_seed(seed):
    """Make a run reproducible: seeds minicnn's generator, NumPy's and Python's, as Keras does."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    _rng[0] = np.random.default_rng(int(seed))
    np.random.seed(int(seed) % 2**32)
    random.seed(int(seed))


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot labels, as keras.utils.to_categorical.

    y: integer labels of shape (N,) or (N, 1) -> (N, num_classes); num_classes defaults
    to max(y) + 1.
    """
    try:
        y = np.asarray(y)
        if y.dtype == object:  # Python numbers in an object array, as Keras accepts them
            y = y.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"to_categorical expects integer class labels; they cannot be read as numbers ({e})") from None
    if y.dtype.kind not in "biuf":
        raise TypeError(f"to_categorical expects integer class labels, got dtype {y.dtype}")
    if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool)
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("to_categorical expects integer class labels; got non-integer values")
        y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical expects labels >= 0; got {y.min()}")
    top = int(y.max()) + 1 if y.size else 0
    if num_classes is None:
        num_classes = top
    elif top > num_classes:
        raise ValueError(f"label {top - 1} does not fit num_classes={num_classes}")
    out = np.zeros(y.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, y[..., None].astype(np.intp), 1, axis=-1)
    return out


class Tensor(np.ndarray):
    """A NumPy array that also answers TensorFlow's .numpy(): what model(x) and a loss object
    return, so that tutorial lines such as `model(x_train[:1]).numpy()` run unchanged."""

    def numpy(self):
        return np.asarray(self)


class PyDataset:
    """Keras 3's PyDataset: subclass it, with __len__ (batches in an epoch) and __getitem__(i)
    returning batch i as (x, y) or (x, y, sample_weight); on_epoch_end() runs after each epoch
    (reshuffle there). model.fit(dataset, epochs=5) then trains on its batches.
    (workers and use_multiprocessing are accepted; minicnn reads the batches in order, itself.)"""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers, self.use_multiprocessing, self.max_queue_size = workers, use_multiprocessing, max_queue_size

    def __len__(self):
        raise NotImplementedError("a PyDataset defines __len__: the number of batches in an epoch")

    def __getitem__(self, index):
        raise NotImplementedError("a PyDataset defines __getitem__(index): batch index as (x, y)")

    def on_epoch_end(self):
        pass


def unpack_x_y_sample_weight(data):
    """(x, y, sample_weight) of a batch as a train_step of your own receives it (x, (x,), (x, y) or
    (x, y, sample_weight)), None for what it lacks: keras.utils.unpack_x_y_sample_weight.
    train_on_batch and test_on_batch give a step (x, y, sample_weight) even without weights, as
    Keras 3 does, so a step that unpacks with this runs under fit and under both."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if not 1 <= len(data) <= 3:
        raise ValueError(f"a batch is x, (x,), (x, y) or (x, y, sample_weight); got a tuple of {len(data)}")
    return (*data, *[None] * (3 - len(data)))
