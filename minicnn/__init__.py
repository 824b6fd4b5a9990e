"""minicnn: a convolutional-network engine written from scratch in NumPy, to read and to run.

Its namespace is Keras 3's, so a Keras program changes only its imports:

    import minicnn as keras                      # keras.Sequential, keras.Input, keras.layers...
    from minicnn import layers                   # layers.Conv2D, layers.Dropout, ...
    from minicnn.models import Sequential
"""
import os
import sys

from minicnn.version import __version__  # noqa: F401

# OpenBLAS's worker threads spin for 2**28 cycles (a tenth of a second) after each matrix
# product by default; on a 2-core machine they then hold the cores that minicnn's Numba loops
# need next. Too short a wait costs too: a product that starts after its workers went to sleep
# waits for them to wake. 2**15 cycles (about 12 us) measured best of 2**10-2**17 on both models,
# natively and held to AVX2 (docs/benchmarks.md, "Threads"). A value you set wins.
BLAS_THREAD_TIMEOUT = "15"
_timeout_is_ours = "OPENBLAS_THREAD_TIMEOUT" not in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)


def _loaded_openblas():
    """The OpenBLAS libraries this process has loaded (NumPy's, SciPy's...), as ctypes handles.
    Linux only: the list comes from /proc/self/maps."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    libs = []
    for path in sorted(p for p in paths if ".so" in os.path.basename(p)):
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def _set_blas_thread_timeout():
    """Give OpenBLAS the thread timeout now, when NumPy was imported before minicnn.

    OpenBLAS reads its environment once, when NumPy first loads it, and hands the timeout to its
    worker threads when it starts them. Most programs import NumPy first, so setting the variable
    at `import minicnn` comes too late for them. OpenBLAS exports the three functions that redo
    both steps: read the environment again, stop the workers, start them again. Returns how many
    libraries were updated (0 where NumPy uses another BLAS)."""
    done = 0
    for lib in _loaded_openblas():
        try:
            read_env, shutdown, init = lib.openblas_read_env, lib.blas_thread_shutdown_, lib.blas_thread_init
        except AttributeError:  # a build without these names (an OpenMP one): leave it as it is
            continue
        read_env()
        shutdown()
        init()
        done += 1
    return done


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
if _timeout_is_ours and "numpy" in sys.modules:  # NumPy came first: OpenBLAS has read its environment
    _set_blas_thread_timeout()

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
    preprocessing,
    random,
    registry,
    regularizers,
    utils,
)
from minicnn.explainer import explain  # noqa: F401  (minicnn.explain(model, x): the page of one image)
from minicnn.layers import Input  # noqa: F401  (keras.Input)
from minicnn.models import Model, Sequential  # noqa: F401  (keras.Model, keras.Sequential)
from minicnn.tape import GradientTape, Variable  # noqa: F401  (tf.GradientTape, keras.Variable)
