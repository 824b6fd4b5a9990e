"""Weight initialisers with Keras's names and formulas."""
import numpy as np

from minicnn.utils import rng


def glorot_uniform(shape, dtype, fan_in, fan_out):
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)), Keras's default kernel init."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng().uniform(-limit, limit, size=shape).astype(dtype)


def zeros(shape, dtype, fan_in=None, fan_out=None):
    """All zeros, Keras's default bias init."""
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype, fan_in=None, fan_out=None):
    """All ones (BatchNormalization's gamma and moving variance)."""
    return np.ones(shape, dtype=dtype)


_INITIALIZERS = {"glorot_uniform": glorot_uniform, "zeros": zeros, "ones": ones}


def get(name):
    if callable(name):
        return name
    if name not in _INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; valid: {', '.join(_INITIALIZERS)}")
    return _INITIALIZERS[name]
