"""MNIST (Yann LeCun, Corinna Cortes, Christopher Burges; CC BY-SA 3.0): 70,000 28x28 grayscale
handwritten digits, 10 classes, as Keras distributes it (one mnist.npz file).

    (x_train, y_train), (x_test, y_test) = mnist.load_data()

returns uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,), as Keras.
"""
import os
from pathlib import Path

import numpy as np

from minicnn.datasets import _files
from minicnn.datasets._files import DataFileError, DataNotFoundError, download, verify_file

FILE = "mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # Keras's published hash of the file
MIRRORS = ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/"]  # Keras's
KERAS_CACHE = Path("~/.keras/datasets")  # where Keras keeps it: a copy there is used, after its check
SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}


def cache_dir():
    """minicnn's download cache: $MINICNN_CACHE_DIR/mnist, else the user cache folder's."""
    return _files.cache_dir("mnist")


def read_npz(path):
    """The four arrays of a verified mnist.npz, checked for their names, dtypes and shapes."""
    verify_file(path, SHA256)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in SHAPES}
    except (OSError, ValueError, KeyError) as e:
        raise DataFileError(f"{path}: not Keras's mnist.npz ({type(e).__name__}: {e})") from None
    for name, array in arrays.items():
        if array.dtype != np.uint8 or array.shape[1:] != SHAPES[name][1:]:
            raise DataFileError(f"{path}: {name} is {array.dtype} {array.shape}, not uint8 (N, {SHAPES[name][1:]})")
    if len(arrays["x_train"]) != len(arrays["y_train"]) or len(arrays["x_test"]) != len(arrays["y_test"]):
        raise DataFileError(f"{path}: images and labels disagree in number")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _named(path, what):
    """A file or a folder the user named must hold mnist.npz: never skipped silently."""
    path = Path(path).expanduser()
    target = path / FILE if path.is_dir() else path
    if not target.is_file():
        raise DataNotFoundError(f"{what} {path} does not hold {FILE}")
    return read_npz(target)


def load_data(path=FILE):
    """Load MNIST: ((x_train, y_train), (x_test, y_test)), uint8, as keras.datasets.mnist.

    Looks, in this order: `path` when it names an existing file or folder (Keras's default,
    "mnist.npz", means "the usual places"); $MINICNN_DATA_DIR when it holds mnist.npz; minicnn's
    cache (cache_dir()); Keras's own cache (~/.keras/datasets); and finally downloads Keras's
    file into the cache. The file is checked against Keras's published SHA-256 before use.
    """
    if path != FILE and path is not None:
        return _named(path, "the path argument")
    env = os.environ.get("MINICNN_DATA_DIR")
    if env and (Path(env) / FILE).is_file():
        return read_npz(Path(env) / FILE)
    cache = cache_dir()
    for folder in (cache, KERAS_CACHE.expanduser()):
        if (folder / FILE).is_file():
            return read_npz(folder / FILE)
    try:
        download({FILE: SHA256}, MIRRORS, cache, verify=verify_file)
    except (DataNotFoundError, OSError) as e:
        raise DataNotFoundError(
            f"MNIST was not found and could not be downloaded.\n{e}\nLooked in {cache} and {KERAS_CACHE}. "
            f"To work offline, put Keras's {FILE} (sha256 {SHA256}) in a folder and call load_data(path=folder), "
            "or set MINICNN_DATA_DIR=folder") from None
    return read_npz(cache / FILE)
