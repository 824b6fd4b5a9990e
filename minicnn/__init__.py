"""minicnn: a convolutional-network engine written from scratch in NumPy, to read and to run.

Its namespace is Keras 3's, so a Keras program changes only its imports:

    import minicnn as keras                      # keras.Sequential, keras.Input, keras.layers...
    from minicnn import layers                   # layers.Conv2D, layers.Dropout, ...
    from minicnn.models import Sequential
"""
import os
import sys
import warnings

from minicnn.version import __version__  # noqa: F401

# OpenBLAS's worker threads spin for 2**28 cycles (a tenth of a second) after each matrix
# product by default; on a 2-core machine they then hold the cores that minicnn's Numba loops
# need next (measured: a training step of the tutorial model 15.9 ms with the default,
# 12.4-13.0 ms with 2**10 cycles). Too short a wait costs too: a product that starts after its
# workers went to sleep waits for them to wake. 2**15 cycles (about 12 us) measured best of
# 2**10-2**17 (tutorial step 11.1 -> 10.2 ms, inference at batch 64 3.6 -> 3.0 ms; the recipe's
# 28 -> 26 and 6.3 -> 5.4; the same held to AVX2: docs/benchmarks.md). OpenBLAS reads this when
# NumPy first loads it, so it takes effect when minicnn is imported before NumPy (as in the
# tutorial); a value you set wins. Imported after NumPy, minicnn says so once (an epoch of the
# recipe: 34.5 s instead of 30.7 s).
BLAS_THREAD_TIMEOUT = "15"
_timeout_too_late = "numpy" in sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)


def _warn_if_timeout_too_late():
    if not _timeout_too_late:
        return
    try:
        import numpy
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001  (a NumPy without show_config's dicts: say nothing)
        return
    if "openblas" in str(blas).lower():
        warnings.warn(f"minicnn was imported after NumPy, too late to set OPENBLAS_THREAD_TIMEOUT={BLAS_THREAD_TIMEOUT}: "
                      "OpenBLAS's idle threads will spin on the cores minicnn's compiled loops need, and training runs "
                      f"10-30% slower. Import minicnn before NumPy, or set OPENBLAS_THREAD_TIMEOUT={BLAS_THREAD_TIMEOUT} in the "
                      "environment.", RuntimeWarning, stacklevel=3)


def _keep_freed_memory():
    """Let glibc's malloc keep freed arrays of up to 32 MB for the next ones, instead of giving
    them back to the kernel and taking them again: each new page then costs a page fault and a
    zeroing. A training step allocates and frees the same few arrays (a few MB each) every time:
    measured on the recipe model, 465 page faults and 5.7 ms of system time per step with
    glibc's defaults, 17 and 2.0 ms with these (35.3 ms per step instead of 38.6). The memory
    stays with the process: its peak, what benchmarks report, does not grow. Linux with glibc
    only; MINICNN_MALLOPT=0, or any MALLOC_*_ variable of your own, leaves malloc alone."""
    import ctypes
    import platform

    if (sys.platform != "linux" or platform.libc_ver()[0] != "glibc" or os.environ.get("MINICNN_MALLOPT") == "0"
            or any(k.startswith("MALLOC_") for k in os.environ)):
        return
    try:
        libc = ctypes.CDLL(None)
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # blocks up to 32 MB come from the heap, not mmap
        libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)  # the heap is shrunk only past 256 MB free at its top
    except (OSError, AttributeError):  # pragma: no cover (a libc without mallopt)
        pass


_keep_freed_memory()
_warn_if_timeout_too_late()

from minicnn import (  # noqa: F401  (the public submodules, as `keras.` offers them)
    activations,
    backend,
    callbacks,
    datasets,
    gradcheck,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    registry,
    regularizers,
    utils,
)
from minicnn.layers import Input  # noqa: F401  (keras.Input)
from minicnn.models import Model, Sequential  # noqa: F401  (keras.Model, keras.Sequential)
from minicnn.tape import GradientTape, Variable  # noqa: F401  (tf.GradientTape, keras.Variable)
