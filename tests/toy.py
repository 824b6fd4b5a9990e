"""Small models and data the tests share, and a loader for the scripts they test."""
import importlib.util
import sys
from pathlib import Path

import numpy as np

from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential
from minicnn.utils import to_categorical


def tutorial_model(dtype="float32"):
    return Sequential([
        Conv2D(64, (3, 3), input_shape=(28, 28, 1), dtype=dtype), Activation("relu", dtype=dtype),
        MaxPooling2D(pool_size=(2, 2), dtype=dtype),
        Conv2D(64, (3, 3), dtype=dtype), Activation("relu", dtype=dtype), MaxPooling2D(pool_size=(2, 2), dtype=dtype),
        Flatten(dtype=dtype), Dense(64, dtype=dtype), Dense(10, dtype=dtype), Activation("softmax", dtype=dtype),
    ])


def small_data(n=256, seed=0):
    """Noise with a bright 3x3 patch in the top half (class 0) or the bottom half (class 1)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    labels = rng.integers(0, 2, n)
    rows = rng.integers(0, 2, n) + 4 * labels
    cols = rng.integers(0, 6, n)
    for k in range(n):
        x[k, rows[k]:rows[k] + 3, cols[k]:cols[k] + 3] = 1
    return x, to_categorical(labels, 2)


def small_model(dtype="float32"):
    return Sequential([Conv2D(4, 3, padding="same", input_shape=(8, 8, 1), dtype=dtype), Activation("relu", dtype=dtype),
                       MaxPooling2D(dtype=dtype), Flatten(dtype=dtype), Dense(2, dtype=dtype),
                       Activation("softmax", dtype=dtype)])


def load_script(relative_path):
    """The module of a script of the project (e.g. "benchmarks/compare.py"), loaded from its file
    as `python relative_path` would run it: with its own folder first on sys.path, so that it can
    import the scripts beside it."""
    path = Path(__file__).resolve().parents[1] / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module
