"""minicnn: a convolutional-network engine written from scratch in NumPy, to read and to run.

Its namespace is Keras 3's, so a Keras program changes only its imports:

    import minicnn as keras                      # keras.Sequential, keras.Input, keras.layers...
    from minicnn import layers                   # layers.Conv2D, layers.Dropout, ...
    from minicnn.models import Sequential
"""
import os

from minicnn.version import __version__  # noqa: F401

# OpenBLAS's worker threads spin for 2**28 cycles (a tenth of a second) after each matrix
# product by default; on a 2-core machine they then hold the cores that minicnn's Numba loops
# need next (measured: a training step of the tutorial model 15.9 ms with the default,
# 12.4-13.0 ms with 2**10 cycles). OpenBLAS reads this when NumPy first loads it, so it takes
# effect when minicnn is imported before NumPy (as in the tutorial); a value you set wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "10")

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
    optimizers,
    registry,
    regularizers,
    utils,
)
from minicnn.layers import Input  # noqa: F401  (keras.Input)
from minicnn.models import Model, Sequential  # noqa: F401  (keras.Model, keras.Sequential)
