"""Weight initialisers with Keras 3's names, arguments and formulas
(keras/src/initializers/random_initializers.py), by name or as objects:

    Conv2D(32, 3, kernel_initializer="he_normal")
    Dense(10, kernel_initializer=minicnn.initializers.RandomNormal(stddev=0.01, seed=1))

An initialiser is called as init(shape, dtype, fan_in, fan_out) by the layers (which know their
fans), or as Keras's init(shape, dtype), the fans then computed from the shape as Keras does:
fan_in = C * KH * KW and fan_out = F * KH * KW for a kernel (KH, KW, C, F), (in, out) for a
dense kernel. The draws come from minicnn's generator (set_random_seed) or the object's seed.
"""
import numpy as np

from minicnn.utils import rng


def compute_fans(shape):
    """(fan_in, fan_out) of a kernel shape, as Keras computes them."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: __call__(shape, dtype="float32", fan_in=None, fan_out=None) -> an array."""

    def __init__(self, seed=None):
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def generator(self):
        return self._rng or rng()

    def __call__(self, shape, dtype="float32", fan_in=None, fan_out=None):
        if fan_in is None or fan_out is None:
            fan_in, fan_out = compute_fans(tuple(shape))
        return np.asarray(self.sample(tuple(shape), fan_in, fan_out), dtype=dtype)

    def sample(self, shape, fan_in, fan_out):
        raise NotImplementedError


class Zeros(Initializer):
    def sample(self, shape, fan_in, fan_out):
        return np.zeros(shape)


class Ones(Initializer):
    def sample(self, shape, fan_in, fan_out):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value=0.0):
        super().__init__()
        self.value = float(value)

    def sample(self, shape, fan_in, fan_out):
        return np.full(shape, self.value)


class RandomNormal(Initializer):
    """N(mean, stddev^2)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape, fan_in, fan_out):
        return self.generator().normal(self.mean, self.stddev, size=shape)


class RandomUniform(Initializer):
    """U(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape, fan_in, fan_out):
        return self.generator().uniform(self.minval, self.maxval, size=shape)


def _truncated_normal(generator, shape, mean, stddev):
    """N(mean, stddev^2) with every draw beyond 2 stddev drawn again, as TensorFlow truncates."""
    out = generator.normal(size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = generator.normal(size=int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


class TruncatedNormal(RandomNormal):
    """N(mean, stddev^2), draws beyond 2 stddev redrawn."""

    def sample(self, shape, fan_in, fan_out):
        return _truncated_normal(self.generator(), shape, self.mean, self.stddev)


class VarianceScaling(Initializer):
    """Keras's VarianceScaling: variance scale / n, n = fan_in, fan_out or their mean (mode);
    distribution "truncated_normal" (stddev sqrt(scale / n) / 0.8796, the std of a standard
    normal truncated at 2), "untruncated_normal" or "uniform" (limit sqrt(3 scale / n))."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"distribution must be 'truncated_normal', 'untruncated_normal' or 'uniform', "
                             f"got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def sample(self, shape, fan_in, fan_out):
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        scale = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * scale)
            return self.generator().uniform(-limit, limit, size=shape)
        if self.distribution == "untruncated_normal":
            return self.generator().normal(0.0, np.sqrt(scale), size=shape)
        return _truncated_normal(self.generator(), shape, 0.0, np.sqrt(scale) / 0.87962566103423978)


def _scaling(name, scale, mode, distribution):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)
    return type(name, (VarianceScaling,), {"__init__": __init__, "__doc__": f"VarianceScaling({scale}, {mode!r}, "
                                                                          f"{distribution!r}), as Keras's {name}."})


GlorotUniform = _scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")

_NAMES = {"zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
          "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
          "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
          "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal}


def glorot_uniform(shape, dtype="float32", fan_in=None, fan_out=None):
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)), Keras's default kernel init
    (GlorotUniform's formula, written out)."""
    if fan_in is None or fan_out is None:
        fan_in, fan_out = compute_fans(tuple(shape))
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng().uniform(-limit, limit, size=shape).astype(dtype)


def zeros(shape, dtype="float32", fan_in=None, fan_out=None):
    """All zeros, Keras's default bias init."""
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype="float32", fan_in=None, fan_out=None):
    """All ones (BatchNormalization's gamma and moving variance)."""
    return np.ones(shape, dtype=dtype)


def get(identifier):
    """An initialiser from a name ("he_normal"), an object, a class, or any callable."""
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _NAMES:
            raise ValueError(f"unknown initializer {identifier!r}; valid: {', '.join(_NAMES)}")
        return glorot_uniform if key == "glorot_uniform" else zeros if key == "zeros" else ones if key == "ones" \
            else _NAMES[key]()
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"unknown initializer {identifier!r}; valid: {', '.join(_NAMES)}, or an Initializer object")
