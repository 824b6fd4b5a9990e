"""Metrics, as Keras's: objects that accumulate over the batches of an epoch.

    model.compile(..., metrics=["accuracy"])                       # resolved from the loss, as Keras
    model.compile(..., metrics=[minicnn.metrics.SparseCategoricalAccuracy()])
    m = minicnn.metrics.CategoricalAccuracy(); m.update_state(y, p); m.result()

update_state(y_true, y_pred) adds a batch; result() is the fraction right so far;
reset_state() starts again (fit does at each epoch). The name is the key in the logs and History.
metric(y_true, y_pred) adds the batch and gives the result, as Keras. The trackers a training step
of your own keeps: Mean (update_state(values)), MeanSquaredError, MeanAbsoluteError.
"""
import numpy as np

from minicnn.gpu import to_host


class Metric:
    """A running mean of a per-sample score (1 right, 0 wrong)."""

    def __init__(self, name):
        self.name = name
        self.reset_state()

    def reset_state(self):
        self.total, self.count = 0.0, 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add a batch: y_true and y_pred as the loss takes them; sample_weight (N,) weights each
        sample's score (Keras's weighted mean)."""
        scores = self.score(_host(y_true), _host(y_pred))
        self._add(scores, sample_weight)

    def _add(self, scores, sample_weight):
        scores = np.asarray(scores, dtype=np.float64)
        if sample_weight is None:
            self.total += float(scores.sum())
            self.count += scores.size
            return
        w = np.broadcast_to(_host(sample_weight).astype(np.float64).reshape(
            -1, *[1] * (scores.ndim - 1)) if scores.ndim else _host(sample_weight), scores.shape)
        self.total += float((scores * w).sum())
        self.count += float(w.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0

    def __call__(self, *args, **kwargs):
        """Add the batch and give the result so far, as Keras's metric(y_true, y_pred)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def score(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name}


def _host(a):
    """a (a recorded value, a GPU array, a list) as a NumPy array."""
    from minicnn.tape import plain
    return np.asarray(to_host(plain(a)))


class Mean(Metric):
    """The running (weighted) mean of the values given: update_state(values, sample_weight=None),
    as keras.metrics.Mean; a training step of your own tracks its losses with one."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name)

    def update_state(self, values, sample_weight=None):
        self._add(_host(values), sample_weight)


class MeanSquaredError(Metric):
    """mean_k (p_k - y_k)^2 per sample, averaged over the samples seen (keras.metrics.MeanSquaredError)."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(name)

    def score(self, y_true, y_pred):
        return ((y_pred - y_true.reshape(y_pred.shape)) ** 2).mean(axis=-1)


class MeanAbsoluteError(Metric):
    """mean_k |p_k - y_k| per sample, averaged over the samples seen (keras.metrics.MeanAbsoluteError)."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(name)

    def score(self, y_true, y_pred):
        return np.abs(y_pred - y_true.reshape(y_pred.shape)).mean(axis=-1)


class CategoricalAccuracy(Metric):
    """Right when the largest output is at the one-hot target's 1. y_true: (N, K), y_pred: (N, K)."""

    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def score(self, y_true, y_pred):
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(Metric):
    """Right when the largest output is at the integer label. y_true: (N,) or (N, 1), y_pred: (N, K)."""

    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name)

    def score(self, y_true, y_pred):
        return y_true.reshape(len(y_pred)).astype(np.int64) == y_pred.argmax(axis=-1)


class TopKCategoricalAccuracy(Metric):
    """Right when the target is among the k largest outputs (one-hot targets)."""

    def __init__(self, k=5, name="top_k_categorical_accuracy"):
        super().__init__(name)
        self.k = int(k)

    def score(self, y_true, y_pred):
        return _in_top_k(y_pred, y_true.argmax(axis=-1), self.k)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Right when the integer label is among the k largest outputs."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy"):
        super().__init__(k, name)

    def score(self, y_true, y_pred):
        return _in_top_k(y_pred, y_true.reshape(len(y_pred)).astype(np.int64), self.k)


def _in_top_k(y_pred, labels, k):
    """Whether each label's output is among the k largest (ties counted in its favour, as TensorFlow)."""
    target = np.take_along_axis(y_pred, labels[:, None], axis=-1)
    return (y_pred > target).sum(axis=-1) < k


class BinaryAccuracy(Metric):
    """Right when (p > threshold) equals the 0/1 target, averaged over K per sample. (N, K), (N, K)."""

    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(name)
        self.threshold = float(threshold)

    def score(self, y_true, y_pred):
        return (y_true == (y_pred > self.threshold)).reshape(len(y_pred), -1).mean(axis=-1)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class Precision(Metric):
    """TP / (TP + FP) over everything seen, each output a yes when above `thresholds` (0.5), as
    Keras's Precision for yes/no outputs. y_true, y_pred: (N, K) (or (N,))."""

    def __init__(self, thresholds=None, name="precision"):
        self.thresholds = 0.5 if thresholds is None else float(thresholds)
        super().__init__(name)

    def reset_state(self):
        self.tp = self.fp = self.fn = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise NotImplementedError("sample_weight is not supported by minicnn's Precision and Recall yet")
        truth = np.asarray(to_host(y_true)).reshape(-1).astype(bool)
        said = np.asarray(to_host(y_pred)).reshape(-1) > self.thresholds
        self.tp += int((said & truth).sum())
        self.fp += int((said & ~truth).sum())
        self.fn += int((~said & truth).sum())

    def result(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    def get_config(self):
        return {"name": self.name, "thresholds": self.thresholds}


class Recall(Precision):
    """TP / (TP + FN) over everything seen, as Keras's Recall for yes/no outputs."""

    def __init__(self, thresholds=None, name="recall"):
        super().__init__(thresholds, name)

    def result(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class Accuracy(Metric):
    """Right when y_pred equals y_true exactly (Keras's Accuracy: for labels against labels)."""

    def __init__(self, name="accuracy"):
        super().__init__(name)

    def score(self, y_true, y_pred):
        return (y_true == y_pred).reshape(len(y_true), -1).all(axis=-1)


CLASSES = {cls.__name__: cls for cls in (Mean, MeanSquaredError, MeanAbsoluteError, Accuracy, BinaryAccuracy,
                                         Precision, Recall, CategoricalAccuracy,
                                         SparseCategoricalAccuracy,
                                         TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy)}
NAMES = {"binary_accuracy": BinaryAccuracy, "precision": Precision, "recall": Recall, "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
         "top_k_categorical_accuracy": TopKCategoricalAccuracy,
         "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
         "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
         "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError}


def get(identifier, loss):
    """A metric object from what compile was given: "accuracy" or "acc" (the categorical or sparse
    accuracy, chosen by the loss as Keras does, under the name given), a metric's name, or an object."""
    if isinstance(identifier, Metric):
        return identifier
    if identifier in ("accuracy", "acc"):
        kind = BinaryAccuracy if loss is not None and loss.binary else SparseCategoricalAccuracy \
            if loss is not None and loss.sparse else CategoricalAccuracy
        return kind(name=identifier)
    if identifier in NAMES:
        return NAMES[identifier](name=identifier)  # named as given: "mae" in the logs, as Keras
    raise ValueError(f"unknown metric {identifier!r}; valid metrics: accuracy, acc, {', '.join(NAMES)}, "
                     "or an object of minicnn.metrics")


def serialize(identifier):
    return identifier if isinstance(identifier, str) else {"class_name": type(identifier).__name__,
                                                           "config": identifier.get_config()}


def deserialize(spec):
    return spec if isinstance(spec, str) else CLASSES[spec["class_name"]](**spec["config"])
