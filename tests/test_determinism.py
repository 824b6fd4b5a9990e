"""What the same seed promises, on every CPU (docs/errors.md, "Reproducibility"):

- run after run, with the same thread counts, bitwise the same weights, on each backend;
- the number of Numba threads never changes a result: minicnn's own reductions use a fixed
  number of chunks summed in order, never a racing sum.

What is *not* promised: the same bits with another number of BLAS threads. OpenBLAS splits a
matrix product's rows between its threads, and on some CPUs (its Haswell and Zen kernels: AVX2
machines) the rows at the edge of a thread's share go through an edge kernel that rounds
differently. Reproduce that on any machine with OPENBLAS_CORETYPE=Haswell (never in CI).
"""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from minicnn.kernels import numba_kernels

SCRIPT = """
import hashlib, sys
import numpy as np
from minicnn import backend
from minicnn.tutorial import build_model
from minicnn.utils import set_random_seed, to_categorical
backend.set_backend(sys.argv[1])
set_random_seed(int(sys.argv[2]))
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


def weights_digest(name, blas_threads, numba_threads, seed=123):
    env = {**os.environ, "OMP_NUM_THREADS": str(blas_threads), "OPENBLAS_NUM_THREADS": str(blas_threads),
           "MKL_NUM_THREADS": str(blas_threads), "NUMBA_NUM_THREADS": str(numba_threads)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, name, str(seed)], env=env, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_same_seed_same_weights_bitwise_run_after_run(name):
    first, second = weights_digest(name, 2, 2), weights_digest(name, 2, 2)
    assert first == second
    assert weights_digest(name, 2, 2, seed=124) != first  # the digest does depend on the training


@pytest.mark.slow
def test_numba_thread_count_never_changes_the_weights():
    """One BLAS thread (so that BLAS cannot differ), 1 or 2 Numba threads: the same bits."""
    assert weights_digest("numba", 1, 1) == weights_digest("numba", 1, 2)


# Every compiled kernel with a prange over the batch, on shapes where chunks and images split
# unevenly between threads: 1 thread and all threads must give the same bits.
SHAPES = [(1, 5, 5, 1, 3), (3, 7, 6, 2, 4), (17, 6, 6, 3, 5), (5, 9, 8, 8, 7), (5, 9, 8, 8, 3),  # N, H, W, C, F
          (17, 8, 9, 16, 1), (17, 7, 9, 16, 16)]


def _all_kernels(x, W, b, dy_seed):
    rng = np.random.default_rng(dy_seed)
    pads = (1, 1, 0, 1)
    outs = []
    for stride in ((1, 2), (1, 1)):  # stride 1 with 16 filters: the blocked loops, edges and all
        y, ctx = numba_kernels.conv2d_forward(x, W, b, stride, pads)
        outs += [y, *numba_kernels.conv2d_backward(rng.standard_normal(y.shape).astype(x.dtype), ctx, W)]
    y, ctx = numba_kernels.maxpool_forward(x, (2, 2), (2, 2), (0, 0, 0, 0))
    outs += [y, numba_kernels.maxpool_backward(rng.standard_normal(y.shape).astype(x.dtype), ctx)]
    y, ctx = numba_kernels.maxpool_forward(x, (3, 3), (1, 1), (1, 1, 1, 1))
    outs += [y, numba_kernels.maxpool_backward(rng.standard_normal(y.shape).astype(x.dtype), ctx)]
    y, ctx = numba_kernels.conv_relu_pool_forward(x, W, b, 2, (0, 0, 0, 0))
    outs += [y, *numba_kernels.conv_relu_pool_backward(rng.standard_normal(y.shape).astype(x.dtype), ctx, W)]
    return outs


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs NUMBA_NUM_THREADS >= 2")
@pytest.mark.parametrize("N,H,Wd,C,F", SHAPES)
def test_numba_kernels_bitwise_equal_with_one_thread_and_all(N, H, Wd, C, F):
    rng = np.random.default_rng(N * 100 + C)
    x = rng.standard_normal((N, H, Wd, C)).astype(np.float32)
    W = rng.standard_normal((3, 3, C, F)).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _all_kernels(x, W, b, 7)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _all_kernels(x, W, b, 7)
    finally:
        numba.set_num_threads(before)
    for a, c in zip(one, many):
        np.testing.assert_array_equal(a, c)
