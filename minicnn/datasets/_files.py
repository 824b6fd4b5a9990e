"""Finding, verifying and reading the IDX files of MNIST-style datasets.

Every file is verified by the SHA-256 of its *decompressed* payload, so a re-compressed copy
(Debian's, whose gzip headers differ) passes, and a corrupt or foreign one never loads.
"""
import gzip
import hashlib
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np


class DataFileError(ValueError):
    """A dataset file is corrupt, truncated, foreign or fails its checksum."""


class DataNotFoundError(FileNotFoundError):
    """The dataset's files are nowhere minicnn looked, and could not be downloaded."""


def read_idx(path, sha256=None):
    """Read an IDX file (gzipped or raw) into a uint8 array, e.g. images (N, 28, 28), labels (N,).

    sha256: the expected digest of the decompressed bytes; a mismatch is a DataFileError.
    """
    path = Path(path)
    try:
        with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataFileError(f"{path}: cannot be read as a gzip file ({e}); it is corrupt or "
                            "truncated: delete it and get a fresh copy") from None
    if sha256 is not None:
        got = hashlib.sha256(raw).hexdigest()
        if got != sha256:
            raise DataFileError(f"{path}: checksum mismatch: the decompressed file should have "
                                f"sha256 {sha256}, it has {got}. The file is corrupt or not the "
                                "official release: delete it and get a fresh copy")
    # IDX header: two zero bytes, a type code (0x08 = unsigned byte), the number of dims,
    # then each dim as a big-endian uint32.
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataFileError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise DataFileError(f"{path}: truncated or padded: the header promises {dims} = {size} "
                            f"bytes of data, the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def cache_dir(name):
    """minicnn's download cache for data set `name`: $MINICNN_CACHE_DIR/name, else the user cache folder's."""
    root = os.environ.get("MINICNN_CACHE_DIR")
    if not root:
        import pooch
        root = pooch.os_cache("minicnn")
    return Path(root) / name


def find_file(folder, name):
    """The path of `name` (…-ubyte.gz) in folder, gzipped or not; None if absent."""
    for candidate in (Path(folder) / name, Path(folder) / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def fsync_file(path):
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def verify_file(path, sha256):
    """A DataFileError unless the file's bytes have this SHA-256 (for files stored as they are
    published, such as Keras's mnist.npz)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise DataFileError(f"{path}: checksum mismatch: the file should have sha256 {sha256}, it has "
                            f"{digest.hexdigest()}. The file is corrupt or not the published one: delete it "
                            "and get a fresh copy")


def download(files, mirrors, cache_dir, verify=read_idx):
    """Download every missing or bad file of `files` ({name: sha256}) into cache_dir.

    Each file lands in a temporary folder inside cache_dir, is checked with verify(path, sha256)
    (by default: the SHA-256 of the decompressed IDX payload), then renamed into place: the
    cache never holds a partial or unverified file. Mirrors are tried in order.
    """
    import pooch  # the well-kept downloader: retries, progress bar, temp file + rename

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, sha256 in files.items():
        target = cache_dir / name
        if target.is_file():
            try:
                verify(target, sha256)
                continue
            except DataFileError:
                pass  # a bad cached copy is replaced below
        errors = []
        for mirror in mirrors:
            with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
                try:
                    got = pooch.retrieve(mirror + name, known_hash=None, fname=name, path=tmp,
                                         progressbar=True)
                    verify(got, sha256)
                    fsync_file(got)
                    os.replace(got, target)
                    break
                except (OSError, ValueError) as e:  # network or HTTP error (OSError), bad file (ValueError): next mirror
                    errors.append(f"  {mirror}{name}: {type(e).__name__}: {e}")
        else:
            raise DataNotFoundError("could not download " + name + ":\n" + "\n".join(errors))
