import http.server
import os
import sys
import threading
from functools import partial
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
# TensorFlow's oneDNN kernels for transposed convolution give wrong values (kernel 1, stride 2,
# output_padding 1) or abort the process (double free) on some shapes that its reference kernels
# compute right: the Keras comparisons run on the reference kernels. Set before TensorFlow loads.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import pytest

from minicnn import backend, gpu
from minicnn.datasets import fashion_mnist

ROOT = Path(__file__).resolve().parents[1]


def fashion_mnist_dir():
    """A folder holding the real Fashion-MNIST files, or None: the shared copy beside the
    checkout, $MINICNN_DATA_DIR, or Debian's package. Tests never download."""
    for folder in (os.environ.get("MINICNN_DATA_DIR"), ROOT.parent / "shared" / "data" / "fashion-mnist",
                   fashion_mnist.DEBIAN_DIR):
        if folder and all((Path(folder) / name).is_file() for name in fashion_mnist.FILES):
            return Path(folder)
    return None


@pytest.fixture(params=list(backend.BACKENDS))
def each_backend(request):
    """Run the test once per CPU backend, restoring the previous choice afterwards."""
    previous = backend.get_backend()
    backend.set_backend(request.param)
    yield request.param
    backend.set_backend(previous)


@pytest.fixture
def fake_gpu(monkeypatch):
    """The strict stand-in for CuPy (tests/fake_cupy.py) imported as `cupy`, with a GPU: its
    device arrays run the reference kernels (it compiles no CUDA, so not cupy_kernels')."""
    import fake_cupy
    fake = fake_cupy.module()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(gpu._state, "cupy", None)
    monkeypatch.setitem(backend._MODULES, "cupy", "minicnn.kernels.reference")
    return fake


@pytest.fixture
def real_data():
    folder = fashion_mnist_dir()
    if folder is None:
        pytest.skip("the Fashion-MNIST files are not on this machine")
    return fashion_mnist.load_data(path=folder)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def http_server(tmp_path):
    """Serve tmp_path/www over HTTP on 127.0.0.1; yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on TensorFlow, the independent reference (the dev extra installs it)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


@pytest.fixture(scope="session")
def tf():
    return pytest.importorskip("tensorflow")
