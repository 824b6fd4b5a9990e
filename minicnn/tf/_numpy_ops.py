"""A NumPy stand-in for minicnn.ops, with its names: the values without a gradient."""
from types import SimpleNamespace

import numpy as np

from minicnn.utils import Tensor


def _t(a):
    return np.asarray(a).view(Tensor)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return _t(e / e.sum(axis=axis, keepdims=True))


def _log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return _t(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))


ops = SimpleNamespace(
    mean=lambda x, axis=None, keepdims=False: _t(np.mean(x, axis=axis, keepdims=keepdims)),
    sum=lambda x, axis=None, keepdims=False: _t(np.sum(x, axis=axis, keepdims=keepdims)),
    max=lambda x, axis=None, keepdims=False: _t(np.max(x, axis=axis, keepdims=keepdims)),
    square=lambda x: _t(np.square(x)), sqrt=lambda x: _t(np.sqrt(x)), exp=lambda x: _t(np.exp(x)),
    log=lambda x: _t(np.log(x)), abs=lambda x: _t(np.abs(x)),
    maximum=lambda x, y: _t(np.maximum(x, y)), minimum=lambda x, y: _t(np.minimum(x, y)),
    matmul=lambda x, y: _t(np.matmul(x, y)),
    concatenate=lambda xs, axis=0: _t(np.concatenate(xs, axis=axis)),
    stack=lambda xs, axis=0: _t(np.stack(xs, axis=axis)),
    ones_like=lambda x, dtype=None: _t(np.ones_like(x, dtype=dtype)),
    zeros_like=lambda x, dtype=None: _t(np.zeros_like(x, dtype=dtype)),
    cast=lambda x, dtype: _t(np.asarray(x).astype(dtype)),
    convert_to_tensor=lambda x, dtype=None: _t(np.asarray(x, dtype=dtype)),
    reshape=lambda x, newshape: _t(np.reshape(x, newshape)),
    expand_dims=lambda x, axis: _t(np.expand_dims(x, axis)),
    relu=lambda x: _t(np.maximum(x, 0)), sigmoid=lambda x: _t(1 / (1 + np.exp(-x))),
    softmax=_softmax, log_softmax=_log_softmax,
    min=lambda x, axis=None, keepdims=False: _t(np.min(x, axis=axis, keepdims=keepdims)),
    tanh=lambda x: _t(np.tanh(x)), clip=lambda x, lo, hi: _t(np.clip(x, lo, hi)),
    where=lambda c, x, y: _t(np.where(c, x, y)), transpose=lambda x, axes=None: _t(np.transpose(x, axes)),
    squeeze=lambda x, axis=None: _t(np.squeeze(x, axis)),
    leaky_relu=lambda x, negative_slope=0.2: _t(np.where(x > 0, x, negative_slope * x)),
)
