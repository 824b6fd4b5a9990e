"""The CIFAR-10 loader on a small archive in the official binary layout that the tests write
(its checksums patched in), from a local HTTP server on 127.0.0.1: never the network."""
import hashlib
import io
import tarfile

import numpy as np
import pytest

from minicnn.datasets import DataFileError, DataNotFoundError, cifar10


def records(rng, n):
    """n records: a label byte, then the red, green and blue 32x32 planes."""
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    raw = np.concatenate([labels[:, None], images.transpose(0, 3, 1, 2).reshape(n, -1)], axis=1).tobytes()
    return raw, images, labels


def write_archive(path, rng, n=2, members=None, extra=None):
    parts = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in members or cifar10.TRAIN + cifar10.TEST:
            raw, images, labels = records(rng, n)
            raw = extra.get(name, raw) if extra else raw
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
            parts[name] = (images, labels)
    return parts


@pytest.fixture
def tiny(tmp_path, monkeypatch, rng):
    folder = tmp_path / "good"
    folder.mkdir()
    parts = write_archive(folder / cifar10.ARCHIVE, rng)
    data = (folder / cifar10.ARCHIVE).read_bytes()
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(data).hexdigest())
    monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setenv("MINICNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MINICNN_DATA_DIR", raising=False)
    return folder, parts


def test_load_gives_keras_shapes_and_the_pixels_channels_last(tiny, monkeypatch):
    folder, parts = tiny
    (x, y), (xt, yt) = cifar10.load_data(folder)
    assert (x.shape, y.shape, xt.shape, yt.shape) == ((10, 32, 32, 3), (10, 1), (2, 32, 32, 3), (2, 1))
    assert x.dtype == y.dtype == np.uint8
    np.testing.assert_array_equal(x[:2], parts[cifar10.TRAIN[0]][0])  # the planes became channels
    np.testing.assert_array_equal(y[8:, 0], parts[cifar10.TRAIN[4]][1])
    np.testing.assert_array_equal(xt, parts[cifar10.TEST[0]][0])
    monkeypatch.setenv("MINICNN_DATA_DIR", str(folder))
    assert cifar10.load_data()[1][1].shape == (2, 1)


def test_bad_archives_are_refused_by_name(tiny, tmp_path, rng, monkeypatch):
    assert (tiny[0] / cifar10.ARCHIVE).is_file()
    other = tmp_path / "other.tar.gz"
    write_archive(other, rng)  # well formed, other bytes: only the checksums tell
    with pytest.raises(DataFileError, match="checksum mismatch.*md5"):
        cifar10.load_data(other)
    for name, kwargs, message in [("short.tar.gz", {"members": cifar10.TRAIN}, "lacks"),
                                  ("cut.tar.gz", {"extra": {cifar10.TEST[0]: b"x" * 100}}, "whole number of"),
                                  ("label.tar.gz", {"extra": {cifar10.TEST[0]: bytes([12]) + bytes(3072)}}, "label is 12")]:
        write_archive(tmp_path / name, rng, **kwargs)
        data = (tmp_path / name).read_bytes()
        monkeypatch.setattr(cifar10, "MD5", hashlib.md5(data).hexdigest())
        monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(data).hexdigest())
        with pytest.raises(DataFileError, match=message):
            cifar10.load_data(tmp_path / name)
    with pytest.raises(DataNotFoundError, match="does not hold"):
        cifar10.load_data(tmp_path / "nowhere")


def test_download_verifies_falls_back_and_caches(tiny, http_server, monkeypatch, rng):
    folder, _ = tiny
    root, url = http_server
    (root / "bad").mkdir()
    (root / "good").mkdir()
    write_archive(root / "bad" / cifar10.ARCHIVE, rng)
    (root / "good" / cifar10.ARCHIVE).write_bytes((folder / cifar10.ARCHIVE).read_bytes())
    monkeypatch.setattr(cifar10, "MIRRORS", [url + "missing/", url + "bad/", url + "good/"])
    assert cifar10.load_data()[0][0].shape == (10, 32, 32, 3)
    cache = cifar10.cache_dir()
    assert sorted(p.name for p in cache.iterdir()) == [cifar10.ARCHIVE]
    assert (cache / cifar10.ARCHIVE).read_bytes() == (folder / cifar10.ARCHIVE).read_bytes()
    monkeypatch.setattr(cifar10, "MIRRORS", ["http://127.0.0.1:9/"])
    assert cifar10.load_data()[1][0].shape == (2, 32, 32, 3)  # from the cache, offline


def test_offline_says_what_to_do(tiny, monkeypatch):
    monkeypatch.setattr(cifar10, "MIRRORS", ["http://127.0.0.1:9/"])
    with pytest.raises(DataNotFoundError, match="MINICNN_DATA_DIR"):
        cifar10.load_data()
