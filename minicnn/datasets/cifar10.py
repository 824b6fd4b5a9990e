"""CIFAR-10 (Alex Krizhevsky, 2009): 60,000 32x32 colour images in 10 classes, read from the
official *binary* version (cifar-10-binary.tar.gz), never by unpickling.

    (x_train, y_train), (x_test, y_test) = cifar10.load_data()

returns uint8 arrays of shapes (50000, 32, 32, 3), (50000, 1), (10000, 32, 32, 3), (10000, 1),
channels-last, as Keras. Each record of a batch file is 1 label byte and 3,072 pixel bytes:
the red, green and blue planes of 32 x 32 pixels, row by row.
"""
import hashlib
import os
import tarfile
from pathlib import Path

import numpy as np

from minicnn.datasets import _files
from minicnn.datasets._files import DataFileError, DataNotFoundError, download

ARCHIVE = "cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # the publisher's, on the CIFAR page
SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"  # of the same 170,052,171-byte file
MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
TRAIN = [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)]
TEST = ["cifar-10-batches-bin/test_batch.bin"]
RECORD = 1 + 3 * 32 * 32
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cache_dir():
    """minicnn's download cache: $MINICNN_CACHE_DIR/cifar10, else the user cache folder's."""
    return _files.cache_dir("cifar10")


def verify_archive(path):
    """A DataFileError unless the archive has the publisher's MD5 and its SHA-256."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    if (md5.hexdigest(), sha.hexdigest()) != (MD5, SHA256):
        raise DataFileError(f"{path}: checksum mismatch: the archive should have md5 {MD5} and sha256 {SHA256}, "
                            f"it has {md5.hexdigest()} and {sha.hexdigest()}. It is corrupt or not the official "
                            "binary version: delete it and get a fresh copy")


def parse_batch(raw, name):
    """One batch file's bytes -> images (n, 32, 32, 3) uint8 and labels (n, 1) uint8."""
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataFileError(f"{name}: {len(raw)} bytes is not a whole number of {RECORD}-byte records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, :1].copy()
    if labels.max() > 9:
        raise DataFileError(f"{name}: a label is {labels.max()}, CIFAR-10's are 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # planes -> channels-last
    return images, labels


def read_archive(path):
    """The four arrays from the verified archive, reading only the six batch files by name."""
    verify_archive(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            def batches(names):
                parts = []
                for name in names:
                    member = tar.getmember(name)
                    if not member.isfile():
                        raise DataFileError(f"{path}: {name} is not a regular file")
                    parts.append(parse_batch(tar.extractfile(member).read(), name))
                return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            return batches(TRAIN), batches(TEST)
    except KeyError as e:
        raise DataFileError(f"{path}: the archive lacks {e}") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataFileError(f"{path}: cannot be read as the CIFAR-10 archive ({e})") from None


def load_data(path=None):
    """Load CIFAR-10: ((x_train, y_train), (x_test, y_test)), uint8, as keras.datasets.cifar10.

    Looks, in this order: `path` (the archive, or a folder holding it); $MINICNN_DATA_DIR when it
    holds the archive; minicnn's cache; and finally downloads the archive from the publisher into
    the cache. The archive is checked against its MD5 and SHA-256 before it is read.
    """
    if path is not None:
        path = Path(path).expanduser()
        target = path / ARCHIVE if path.is_dir() else path
        if not target.is_file():
            raise DataNotFoundError(f"the path argument {path} does not hold {ARCHIVE}")
        return read_archive(target)
    env = os.environ.get("MINICNN_DATA_DIR")
    if env and (Path(env) / ARCHIVE).is_file():
        return read_archive(Path(env) / ARCHIVE)
    cache = cache_dir()
    if (cache / ARCHIVE).is_file():
        return read_archive(cache / ARCHIVE)
    try:
        download({ARCHIVE: None}, MIRRORS, cache, verify=lambda got, _: verify_archive(got))
    except (DataNotFoundError, OSError) as e:
        raise DataNotFoundError(
            f"CIFAR-10 was not found and could not be downloaded.\\n{e}\\nLooked in {cache}. To work offline, put "
            f"{ARCHIVE} (md5 {MD5}) in a folder and call load_data(path=folder), or set MINICNN_DATA_DIR=folder"
        ) from None
    return read_archive(cache / ARCHIVE)
