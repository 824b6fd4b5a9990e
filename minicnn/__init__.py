"""minicnn: a convolutional-network engine written from scratch in NumPy, to read and to run.

    import minicnn
    from minicnn.layers import Conv2D, MaxPooling2D, Flatten, Dense, Activation
    from minicnn.models import Sequential
"""
__version__ = "0.1.0"

from minicnn import (  # noqa: F401  (the public submodules, as `keras.` offers them)
    activations,
    backend,
    callbacks,
    datasets,
    gradcheck,
    initializers,
    layers,
    losses,
    models,
    optimizers,
    utils,
)
