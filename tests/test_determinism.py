"""The same seed gives bitwise the same weights after training: run after run, on each
backend, and with 1 or 2 threads (the Numba reductions use a fixed number of chunks, never
a racing sum, and the BLAS products split rows, not the summed axis)."""
import os
import subprocess
import sys

import pytest

SCRIPT = """
import hashlib, sys
import numpy as np
from minicnn import backend
from minicnn.tutorial import build_model
from minicnn.utils import set_random_seed, to_categorical
backend.set_backend(sys.argv[1])
set_random_seed(123)
rng = np.random.default_rng(0)
x = rng.random((256, 28, 28, 1), dtype=np.float32)
y = to_categorical(rng.integers(0, 10, 256), 10)
model = build_model()
model.fit(x, y, batch_size=64, epochs=2, verbose=0)
h = hashlib.sha256()
for w in model.get_weights():
    h.update(w.tobytes())
print(h.hexdigest())
"""


def weights_digest(name, threads):
    n = str(threads)
    env = {**os.environ, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
           "NUMBA_NUM_THREADS": n}
    out = subprocess.run([sys.executable, "-c", SCRIPT, name], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_same_seed_same_weights_bitwise_across_runs_and_threads(name):
    digests = {weights_digest(name, 2), weights_digest(name, 2), weights_digest(name, 1)}
    assert len(digests) == 1, digests
