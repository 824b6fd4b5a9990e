"""The Fashion-MNIST loader on tiny IDX files the tests write, downloads from a local HTTP
server on 127.0.0.1 (never the network), and the real files when they are on the machine."""
import gzip
import hashlib
import os
import struct

import numpy as np
import pytest

from minicnn.datasets import DataFileError, DataNotFoundError, fashion_mnist
from minicnn.datasets._files import read_idx


def idx_bytes(array):
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Four tiny, valid IDX files in tmp_path/good, with fashion_mnist.FILES pointed at their sums."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([9, 0, 0, 3, 0, 2], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([9, 2, 1, 1], dtype=np.uint8),
    }
    folder = tmp_path / "good"
    folder.mkdir()
    sums = {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        (folder / name).write_bytes(gzip.compress(raw))
        sums[name] = hashlib.sha256(raw).hexdigest()
    monkeypatch.setattr(fashion_mnist, "FILES", sums)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setenv("MINICNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MINICNN_DATA_DIR", raising=False)
    return folder, arrays


def test_read_idx_good_and_bad_files(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(array)
    cases = {"good.gz": gzip.compress(raw), "plain": raw, "corrupt.gz": b"\x1f\x8b" + b"garbage" * 10,
             "truncated.gz": gzip.compress(raw)[:-12], "short-payload.gz": gzip.compress(raw[:-1]),
             "magic.gz": gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]), "empty.gz": gzip.compress(b"")}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    np.testing.assert_array_equal(read_idx(tmp_path / "good.gz", hashlib.sha256(raw).hexdigest()), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain"), array)
    for name, message in [("corrupt.gz", "cannot be read as a gzip"), ("truncated.gz", "cannot be read as a gzip"),
                          ("short-payload.gz", "truncated or padded"), ("magic.gz", "not an IDX file"),
                          ("empty.gz", "not an IDX file")]:
        with pytest.raises(DataFileError, match=message):
            read_idx(tmp_path / name)
    with pytest.raises(DataFileError, match="checksum mismatch.*should have sha256 0000"):
        read_idx(tmp_path / "good.gz", "0000")
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.gz")


def test_load_from_a_named_folder_never_writes_it(tiny):
    folder, arrays = tiny
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    (x_train, y_train), (_, y_test) = fashion_mnist.load_data(path=folder)
    assert x_train.dtype == np.uint8 and x_train.shape == (6, 28, 28) and y_test.shape == (4,)
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_train, [9, 0, 0, 3, 0, 2])
    x_train[0, 0, 0] = 1  # writable, as Keras's arrays are
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


def test_env_var_folder_and_its_errors(tiny, monkeypatch, tmp_path):
    folder, _ = tiny
    monkeypatch.setenv("MINICNN_DATA_DIR", str(folder))
    assert fashion_mnist.load_data()[0][0].shape == (6, 28, 28)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match="MINICNN_DATA_DIR .* missing: t10k-labels-idx1-ubyte.gz"):
        fashion_mnist.load_data()


def test_a_bad_file_names_the_file_the_checksum_and_the_fix(tiny):
    folder, _ = tiny
    target = folder / "train-labels-idx1-ubyte.gz"
    target.write_bytes(gzip.compress(idx_bytes(np.array([1, 0, 0, 3, 0, 2], dtype=np.uint8))))
    with pytest.raises(DataFileError, match=r"train-labels-idx1-ubyte.gz: checksum mismatch.*"
                                            + fashion_mnist.FILES[target.name] + ".*get a fresh copy"):
        fashion_mnist.load_data(path=folder)


def test_recompressed_files_pass(tiny, tmp_path):
    """Debian rewrote the gzip headers: the decompressed payload is what counts."""
    folder, _ = tiny
    other = tmp_path / "recompressed"
    other.mkdir()
    for f in folder.iterdir():
        (other / f.name).write_bytes(gzip.compress(gzip.decompress(f.read_bytes()), mtime=12345, compresslevel=1))
    assert fashion_mnist.load_data(path=other)[1][1].tolist() == [9, 2, 1, 1]


def test_download_verifies_falls_back_to_the_next_mirror_and_caches(tiny, http_server, monkeypatch):
    folder, _ = tiny
    root, url = http_server
    (root / "bad").mkdir()
    (root / "good").mkdir()
    for f in folder.iterdir():
        # The bad mirror serves well-formed gzipped IDX files of the right shapes with other
        # bytes: only the checksum can tell them from the real ones.
        real = read_idx(f)
        (root / "bad" / f.name).write_bytes(gzip.compress(idx_bytes((real + 1) % 10)))
        (root / "good" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [url + "missing/", url + "bad/", url + "good/"])
    (x_train, _), (_, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (6, 28, 28) and y_test.tolist() == [9, 2, 1, 1]
    cache = fashion_mnist.cache_dir()
    assert sorted(p.name for p in cache.iterdir()) == sorted(fashion_mnist.FILES)  # no partial or temp files
    for f in folder.iterdir():
        assert (cache / f.name).read_bytes() == f.read_bytes()  # the good mirror's files, not the bad one's
    for f in (root / "good").iterdir():
        f.unlink()  # the second load comes from the cache
    assert fashion_mnist.load_data()[0][1].tolist() == [9, 0, 0, 3, 0, 2]


def test_offline_with_no_data_says_what_to_do(tiny, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ["http://127.0.0.1:9/"])  # the discard port: refused
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        fashion_mnist.load_data()
    assert "MINICNN_DATA_DIR" in str(err.value)
    cache = fashion_mnist.cache_dir()
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_tfds_source_without_the_extra_is_a_clear_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_tfds(name, *args, **kwargs):
        if name.startswith("tensorflow_datasets"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tfds)
    with pytest.raises(ImportError, match=r"minicnn\[tfds\]"):
        fashion_mnist.load_data(source="tfds")
    with pytest.raises(ValueError, match="source must be"):
        fashion_mnist.load_data(source="web")


def test_real_fashion_mnist(real_data):
    (x_train, y_train), (x_test, y_test) = real_data
    assert (x_train.shape, y_train.shape, x_test.shape, y_test.shape) == \
        ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    assert x_train.dtype == y_train.dtype == np.uint8
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.mean() == pytest.approx(72.94, abs=0.01) and x_test.mean() == pytest.approx(73.15, abs=0.01)
    assert len(fashion_mnist.CLASS_NAMES) == 10 and fashion_mnist.CLASS_NAMES[9] == "Ankle boot"
    assert os.path.basename(fashion_mnist.DEBIAN_DIR) == "fashion-mnist"


@pytest.mark.slow
def test_tfds_source_offline_from_the_official_files(real_data, tmp_path, monkeypatch):
    """tensorflow-datasets prepares Fashion-MNIST from the files in `path` (its manual_dir: they
    pass its own registered checksums), without the network; the same images and labels as the
    files give, in tfds's order."""
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    from conftest import fashion_mnist_dir
    (x, y), (xt, yt) = fashion_mnist.load_data(path=fashion_mnist_dir(), source="tfds")
    (fx, fy), (fxt, fyt) = real_data
    assert x.shape == fx.shape and xt.shape == fxt.shape and x.dtype == np.uint8 and y.dtype == np.uint8

    def pairs(images, labels):
        return sorted(hashlib.sha1(img.tobytes() + bytes([int(label)])).digest() for img, label in zip(images, labels))
    assert pairs(x, y) == pairs(fx, fy) and pairs(xt, yt) == pairs(fxt, fyt)
