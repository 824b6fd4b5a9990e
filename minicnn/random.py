"""Random draws with Keras 3's names (keras.random), for the code of your own training steps:

    z = minicnn.random.normal((batch_size, latent_dim), seed=seed_generator)   # a GAN's latent codes

A draw comes from minicnn's generator (minicnn.utils.set_random_seed), from an int seed, or from
a SeedGenerator, which gives a new, reproducible draw each time it is used. Draws are constants:
no gradient flows into them.
"""
import numpy as np

from minicnn.utils import Tensor, rng


class SeedGenerator:
    """A reproducible source of draws: each use gives new numbers, the sequence fixed by seed."""

    def __init__(self, seed=None, **kwargs):
        self.generator = np.random.default_rng(seed)


def _generator(seed):
    if isinstance(seed, SeedGenerator):
        return seed.generator
    if seed is None:
        return rng()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"seed must be an int, a minicnn.random.SeedGenerator or None, got {seed!r}")


def _shape(shape):
    return tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))


def normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None):
    """Draws from N(mean, stddev^2), of shape and dtype."""
    return (_generator(seed).standard_normal(_shape(shape)) * stddev + mean).astype(dtype).view(Tensor)


def uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None):
    """Draws from U[minval, maxval), of shape and dtype."""
    return _generator(seed).uniform(minval, maxval, _shape(shape)).astype(dtype).view(Tensor)
