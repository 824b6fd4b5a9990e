"""A strict stand-in for CuPy, so the GPU code paths run in CI (which has no GPU).

Its arrays live in host memory, but behave as CuPy's do where it matters to minicnn: their
type's module is "cupy" (so minicnn.gpu sees device arrays), `.get()` copies them to NumPy,
mixing them with plain NumPy arrays in any operation raises TypeError, as CuPy does, and so does
writing a NumPy array into one (a[...] = host); an element read by index is a 0-d array that
views the element, as CuPy's is, not a NumPy scalar (a copy). A
missed host-to-device move therefore fails here as it would on a GPU. It cannot find what
only a GPU shows (kernel bugs, speed); the tests marked `gpu` run on a real one.
"""
import types

import numpy as np


class ndarray(np.ndarray):
    __module__ = "cupy"

    def get(self):
        return np.array(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(inputs + (out or ()))
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*(_unwrap(i) for i in inputs), **kwargs)
        return _wrap(result) if out is None else (out[0] if len(out) == 1 else out)

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_host(_flatten(args) + _flatten(tuple(kwargs.values())))
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __getitem__(self, key):
        item = np.ndarray.__getitem__(self, key)
        if isinstance(item, np.generic):  # CuPy gives a 0-d array that views the element, not a copy
            return np.ndarray.__getitem__(self, (*(key if isinstance(key, tuple) else (key,)), Ellipsis))
        return item

    def __setitem__(self, key, value):
        if type(value) is np.ndarray and value.ndim > 0:  # CuPy's words
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill (fake cupy)")
        np.ndarray.__setitem__(self, key, value)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed (fake cupy); use .get()")


def _flatten(objs):
    flat = []
    for o in objs:
        flat.extend(_flatten(o) if isinstance(o, (tuple, list)) else [o])
    return tuple(flat)


def _refuse_host(objs):
    if any(type(o) is np.ndarray and o.ndim > 0 for o in _flatten(objs)):
        raise TypeError("fake cupy: a NumPy (host) array was mixed with device arrays")


def _unwrap(o):
    if isinstance(o, ndarray):
        return o.view(np.ndarray)
    if isinstance(o, (tuple, list)):
        return type(o)(_unwrap(i) for i in o)
    if isinstance(o, dict):
        return {k: _unwrap(v) for k, v in o.items()}
    return o


def _wrap(o):
    if type(o) is np.ndarray:
        return o.view(ndarray)
    if isinstance(o, (tuple, list)):  # cupy.split returns a list of device arrays
        return type(o)(_wrap(i) for i in o)
    return o


def _function(f):
    """cupy.<name>: NumPy's function; given device arrays it dispatches through
    ndarray.__array_function__ (which refuses host arrays beside them), and what it returns
    is a device array."""
    def call(*args, **kwargs):
        return _wrap(f(*args, **kwargs))
    return call


class _ufunc:
    """cupy.add and the like: callable, with the ufunc methods (`cupy.add.at`) as NumPy's."""

    def __init__(self, f):
        self.f = f

    def __call__(self, *args, **kwargs):
        return _wrap(self.f(*args, **kwargs))

    def __getattr__(self, name):
        return _function(getattr(self.f, name))


def _attribute(name):
    """cupy.<name>: dtypes (cupy.float32 is numpy.float32) as they are, ufuncs and functions wrapped."""
    a = getattr(np, name)
    if isinstance(a, type):
        return a
    return _ufunc(a) if isinstance(a, np.ufunc) else _function(a)


def asarray(a, dtype=None):
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype)
    return np.array(a, dtype=dtype).view(ndarray)  # a copy, as a host-to-device transfer is


def module():
    """A fresh fake `cupy` module."""
    m = types.ModuleType("cupy")
    m.ndarray, m.asarray, m.inf = ndarray, asarray, np.inf
    m.__getattr__ = _attribute
    m.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
        sliding_window_view=_function(np.lib.stride_tricks.sliding_window_view)))
    stream = types.SimpleNamespace(synchronize=lambda: None)
    m.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                                   get_current_stream=lambda: stream)
    return m
