"""Metric objects against Keras 3's, accumulated over batches, and metrics given to compile:
the names of the logs and History."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential, load_model
from minicnn.utils import to_categorical


@pytest.mark.parametrize("name,kwargs,sparse", [("CategoricalAccuracy", {}, False), ("SparseCategoricalAccuracy", {}, True),
                                                ("TopKCategoricalAccuracy", {"k": 2}, False),
                                                ("SparseTopKCategoricalAccuracy", {"k": 3}, True)])
def test_metric_objects_match_keras(keras, rng, name, kwargs, sparse):
    ours, theirs = getattr(minicnn.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == theirs.name
    for _ in range(3):  # accumulated over batches
        p = rng.random((7, 5)).astype(np.float32)
        labels = rng.integers(0, 5, 7)
        y = labels if sparse else to_categorical(labels, 5)
        ours.update_state(y, p)
        theirs.update_state(y, p)
    assert ours.result() == pytest.approx(float(theirs.result()), abs=1e-7)
    ours.reset_state()
    assert ours.result() == 0.0


@pytest.mark.parametrize("name,kwargs", [("Precision", {}), ("Recall", {}), ("Precision", {"thresholds": 0.3}),
                                         ("BinaryAccuracy", {}), ("Recall", {"thresholds": 0.7})])
def test_binary_metrics_match_keras(keras, rng, name, kwargs):
    ours, theirs = getattr(minicnn.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for _ in range(3):
        y, p = rng.integers(0, 2, (8, 3)).astype(np.float32), rng.random((8, 3)).astype(np.float32)
        ours.update_state(y, p)
        theirs.update_state(y, p)
    assert ours.result() == pytest.approx(float(theirs.result()), abs=1e-6)
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(3, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=[ours.name] if not kwargs else [ours])
    logs = model.evaluate(rng.random((8, 2, 2)), rng.integers(0, 2, (8, 3)), verbose=0, return_dict=True)
    assert set(logs) == {"loss", ours.name}


def test_metrics_in_compile_name_the_logs(rng, tmp_path):
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(5, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam",
                  metrics=["accuracy", minicnn.metrics.SparseTopKCategoricalAccuracy(k=2)])
    x, y = rng.random((20, 4, 4), dtype=np.float32), rng.integers(0, 5, 20)
    history = model.fit(x, y, epochs=2, batch_size=5, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "sparse_top_k_categorical_accuracy", "val_loss",
                                    "val_accuracy", "val_sparse_top_k_categorical_accuracy"}
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert result["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert result["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean((p > p[np.arange(20), y][:, None]).sum(1) < 2))
    again = load_model(model.save(tmp_path / "metrics.npz"))
    assert again.evaluate(x, y, verbose=0, return_dict=True) == result
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        model.compile(loss="mse", optimizer="adam", metrics=["auc"])
