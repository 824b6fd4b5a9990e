"""Where fit and evaluate get their batches: one interface, `epoch()` yielding (x, y,
sample_weight) batches and `end_epoch()` after each pass, over two kinds of source (Keras
keeps the same idea in its epoch iterator and data adapters):

    ArrayBatches(x, y, w, batch_size, shuffle)    # arrays in memory, reshuffled every epoch
    BatchSource(dataset_or_generator, steps, shuffle)  # a PyDataset, a tf.data.Dataset or a generator

    for xb, yb, wb in source.epoch():             # wb: (N,) weights or None
        ...
    source.end_epoch()                            # a PyDataset's on_epoch_end

The batches are not checked here: the loop checks arrays once and a source's batches as they
come (minicnn/checks.py).
"""
from minicnn import multi_io
from minicnn.checks import check_positive
from minicnn.utils import PyDataset, rng


class ArrayBatches:
    """Batches of arrays x, y (and weights w), shuffled each pass (minicnn's generator) or in order;
    each may be a list of arrays (a model of several inputs or outputs), cut alike.

    steps (steps_per_epoch): batches per epoch, by default one pass over the data. As in Keras,
    an epoch of fewer steps leaves the pass open and the next epoch goes on from where it
    stopped; an epoch ends early where its pass reaches the end of the data."""

    def __init__(self, x, y, w, batch_size, shuffle=False, steps=None):
        self.x, self.y, self.w, self.batch_size, self.shuffle = x, y, w, batch_size, shuffle
        self.batches = -(-multi_io.count(x) // batch_size)  # one pass over the data
        self.steps = self.batches if steps is None else check_positive("steps_per_epoch", steps)
        self._pass = None  # [order, next batch] of the pass in progress

    def epoch(self):
        for _ in range(self.steps):
            if self._pass is None:
                self._pass = [rng().permutation(multi_io.count(self.x)) if self.shuffle else None, 0]
            order, b = self._pass
            rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
            idx = rows if order is None else order[rows]
            self._pass[1] += 1
            done = self._pass[1] == self.batches
            if done:
                self._pass = None
            yield multi_io.rows(self.x, idx), multi_io.rows(self.y, idx), multi_io.rows(self.w, idx)
            if done:
                return

    def end_epoch(self):
        pass


def validation_arrays(validation_data):
    """fit's validation_data as (x, y, sample_weight): a PyDataset or generator (x, None, None),
    or a tuple (x, y) or (x, y, sample_weight), as Keras takes it."""
    if is_batch_source(validation_data):
        return validation_data, None, None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight), "
                         f"a PyDataset or a generator, got {type(validation_data).__name__}"
                         + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
    return (*validation_data, None)[:3]


def is_batch_source(x):
    """A PyDataset, a tf.data.Dataset (minicnn.tf's or TensorFlow's: known by its
    as_numpy_iterator, without importing TensorFlow), or an iterator or generator (of batches),
    rather than an array or a list."""
    return isinstance(x, PyDataset) or hasattr(x, "as_numpy_iterator") or \
        (hasattr(x, "__next__") and not hasattr(x, "shape"))


class BatchSource:
    """Batches from a PyDataset (batch i is dataset[i]; len(dataset) an epoch, in a new random
    order each epoch with shuffle, as Keras's fit), a tf.data.Dataset (a pass an epoch; see
    dataset_batches for `steps`) or a generator (the next `steps` of its batches; until it runs
    out without steps). Each batch is (x, y) or (x, y, sample_weight)."""

    def __init__(self, source, steps=None, shuffle=False):
        self.source, self.limit, self.dataset_pass, self.shuffle = source, steps, None, shuffle
        self.py_pass = None  # [order, next batch] of a PyDataset's pass in progress
        if steps is not None:
            steps = self.limit = check_positive("steps_per_epoch", steps)
        self.steps = steps if steps is not None or not isinstance(source, PyDataset) else len(source)
        if steps is None and hasattr(source, "as_numpy_iterator"):  # the progress bar's total: a pass, where known
            n = int(source.cardinality())
            self.steps = n if n >= 0 else None

    def dataset_batches(self):
        """A tf.data.Dataset's batches as NumPy arrays, as Keras reads them: a whole pass each
        epoch; with steps, the next `steps` batches of a pass that goes on across epochs, and a
        new pass once one ends (an epoch that meets the end is cut short there)."""
        fresh = self.dataset_pass is None or self.limit is None
        if fresh:
            self.dataset_pass = self.source.as_numpy_iterator()
        count = 0
        while self.limit is None or count < self.limit:
            batch = next(self.dataset_pass, None)
            if batch is None:
                self.dataset_pass = None
                if count == 0 and not fresh:  # the previous epoch ended exactly at the end of a pass
                    fresh, self.dataset_pass = True, self.source.as_numpy_iterator()
                    continue
                return
            count += 1
            yield batch

    def pydataset_batches(self):
        """A PyDataset's batches as Keras's epoch iterator reads them: a pass an epoch, in a new
        random order with shuffle; with fewer steps than len(dataset), the next `steps` batches
        of a pass that goes on across epochs (an epoch that meets its end is cut short there)."""
        n = len(self.source)
        for _ in range(self.steps):
            if self.py_pass is None:
                self.py_pass = [rng().permutation(n) if self.shuffle else range(n), 0]
            order, k = self.py_pass
            self.py_pass[1] += 1
            done = self.py_pass[1] >= n
            if done:
                self.py_pass = None
            yield self.source[int(order[k])]
            if done:
                return

    def epoch(self):
        if isinstance(self.source, PyDataset):
            batches = self.pydataset_batches()
        elif hasattr(self.source, "as_numpy_iterator"):
            batches = self.dataset_batches()
        else:
            batches = self.source if self.steps is None else (next(self.source, None) for _ in range(self.steps))
        for batch in batches:
            if batch is None:  # the generator ran out before `steps`
                return
            if not isinstance(batch, tuple) or len(batch) not in (2, 3):
                raise ValueError(f"a batch must be (x, y) or (x, y, sample_weight), got {type(batch).__name__}"
                                 + (f" of length {len(batch)}" if isinstance(batch, tuple) else ""))
            yield batch if len(batch) == 3 else (*batch, None)

    def end_epoch(self):
        if isinstance(self.source, PyDataset):
            self.source.on_epoch_end()


def predict_batches(x, steps):
    """predict's batches from a PyDataset (len(x) of them unless steps), a Dataset or a generator."""
    if isinstance(x, PyDataset):
        return (x[i] for i in range(len(x) if steps is None else steps))
    source = x.as_numpy_iterator() if hasattr(x, "as_numpy_iterator") else iter(x)
    return source if steps is None else (b for _, b in zip(range(steps), source))
