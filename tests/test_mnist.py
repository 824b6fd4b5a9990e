"""The MNIST loader, on a small mnist.npz the tests write (its checksum patched in), from a
local HTTP server on 127.0.0.1: never the network."""
import hashlib

import numpy as np
import pytest

from minicnn.datasets import DataFileError, DataNotFoundError, mnist


def write_npz(path, n=5, shift=0):
    rng = np.random.default_rng(shift)
    arrays = {"x_train": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "y_train": ((np.arange(n) + shift) % 10).astype(np.uint8),
              "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "y_test": np.array([7, 2, 1], np.uint8)}
    np.savez(path, **arrays)
    return arrays


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    folder = tmp_path / "good"
    folder.mkdir()
    arrays = write_npz(folder / "mnist.npz")
    monkeypatch.setattr(mnist, "SHA256", hashlib.sha256((folder / "mnist.npz").read_bytes()).hexdigest())
    monkeypatch.setattr(mnist, "KERAS_CACHE", tmp_path / "keras-cache")
    monkeypatch.setenv("MINICNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MINICNN_DATA_DIR", raising=False)
    return folder, arrays


def test_load_from_a_file_a_folder_the_env_and_keras_cache(tiny, tmp_path, monkeypatch):
    folder, arrays = tiny
    for path in (folder, folder / "mnist.npz"):
        (x, y), (_, yt) = mnist.load_data(path)
        assert y.tolist() == [0, 1, 2, 3, 4]
        assert x.dtype == np.uint8 and x.shape == (5, 28, 28) and yt.tolist() == [7, 2, 1]
        np.testing.assert_array_equal(x, arrays["x_train"])
    monkeypatch.setenv("MINICNN_DATA_DIR", str(folder))
    assert mnist.load_data()[1][1].tolist() == [7, 2, 1]
    monkeypatch.setenv("MINICNN_DATA_DIR", str(tmp_path / "elsewhere"))  # no mnist.npz there: on to the caches
    (tmp_path / "keras-cache").mkdir()
    (tmp_path / "keras-cache" / "mnist.npz").write_bytes((folder / "mnist.npz").read_bytes())
    assert mnist.load_data()[0][1].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(DataNotFoundError, match="does not hold mnist.npz"):
        mnist.load_data(tmp_path)


def test_bad_files_are_refused_by_name(tiny, tmp_path):
    folder, _ = tiny
    other = tmp_path / "other.npz"
    write_npz(other, shift=1)  # a well-formed npz with other digits: only the checksum tells
    with pytest.raises(DataFileError, match="other.npz: checksum mismatch.*get a fresh copy"):
        mnist.load_data(other)
    (tmp_path / "cut.npz").write_bytes((folder / "mnist.npz").read_bytes()[:-100])
    with pytest.raises(DataFileError, match="checksum mismatch"):
        mnist.load_data(tmp_path / "cut.npz")


def test_a_pickled_or_malformed_file_with_the_right_checksum_is_still_refused(tmp_path, monkeypatch):
    bad = tmp_path / "mnist.npz"
    np.savez(bad, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    monkeypatch.setattr(mnist, "SHA256", hashlib.sha256(bad.read_bytes()).hexdigest())
    with pytest.raises(DataFileError, match="not Keras's mnist.npz"):
        mnist.load_data(bad)
    np.savez(bad, x_train=np.zeros((2, 28, 27), np.uint8), y_train=np.zeros(2, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    monkeypatch.setattr(mnist, "SHA256", hashlib.sha256(bad.read_bytes()).hexdigest())
    with pytest.raises(DataFileError, match=r"x_train is uint8 \(2, 28, 27\)"):
        mnist.load_data(bad)


def test_download_verifies_falls_back_and_caches(tiny, http_server, monkeypatch):
    folder, _ = tiny
    root, url = http_server
    (root / "bad").mkdir()
    (root / "good").mkdir()
    write_npz(root / "bad" / "mnist.npz", shift=3)  # well-formed, other bytes
    (root / "good" / "mnist.npz").write_bytes((folder / "mnist.npz").read_bytes())
    monkeypatch.setattr(mnist, "MIRRORS", [url + "missing/", url + "bad/", url + "good/"])
    assert mnist.load_data()[0][1].tolist() == [0, 1, 2, 3, 4]
    cache = mnist.cache_dir()
    assert sorted(p.name for p in cache.iterdir()) == ["mnist.npz"]
    assert (cache / "mnist.npz").read_bytes() == (folder / "mnist.npz").read_bytes()
    (root / "good" / "mnist.npz").unlink()  # the second load comes from the cache
    assert mnist.load_data()[1][1].tolist() == [7, 2, 1]


def test_offline_says_what_to_do(tiny, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ["http://127.0.0.1:9/"])
    with pytest.raises(DataNotFoundError, match="MINICNN_DATA_DIR") as err:
        mnist.load_data()
    assert mnist.SHA256 in str(err.value)
    cache = mnist.cache_dir()
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))
