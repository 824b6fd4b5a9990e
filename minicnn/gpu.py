"""The one module that imports CuPy: device arrays, and moving data to and from the GPU.

minicnn's reference kernels, losses, activations and optimizers are written once against an
array module `xp` (chainer's idiom): `xp = array_module(x)` is numpy for host arrays and cupy
for device arrays, so the same lines run on either. Nothing here imports CuPy until a device
array or the GPU is asked for, and a missing CuPy or GPU is a clear RuntimeError.

    pip install "minicnn[gpu]"          # CuPy for CUDA 12 (cupy-cuda12x)
    pip install "minicnn[gpu-cuda13]"   # CuPy for CUDA 13 (cupy-cuda13x); only one of the two
"""
import numpy as np

_state = {"cupy": None}

INSTALL = ('pip install "minicnn[gpu]" (CUDA 12) or "minicnn[gpu-cuda13]" (CUDA 13); only one of them '
           "in an environment, since both install the module `cupy`")


def cupy():
    """The cupy module, once CuPy imports and sees at least one GPU; else a RuntimeError that says why."""
    if _state["cupy"] is None:
        try:
            import cupy as cp
        except ImportError as e:
            raise RuntimeError(f"the GPU backend needs CuPy, which does not import ({e}): {INSTALL}") from None
        try:
            count = cp.cuda.runtime.getDeviceCount()
        except cp.cuda.runtime.CUDARuntimeError as e:  # no driver, or no device
            raise RuntimeError(f"CuPy is installed but finds no CUDA GPU ({type(e).__name__}: {e})") from None
        if count < 1:
            raise RuntimeError("CuPy is installed but finds no CUDA GPU (getDeviceCount() == 0)")
        _state["cupy"] = cp
    return _state["cupy"]


def available():
    """True when CuPy imports and a CUDA GPU is present."""
    try:
        cupy()
    except RuntimeError:
        return False
    return True


def is_device_array(a):
    """True for a CuPy array; never imports CuPy."""
    return type(a).__module__.split(".")[0] == "cupy"


def array_module(a):
    """numpy for host arrays (and scalars), cupy for device arrays: `xp = array_module(x)`."""
    return cupy() if is_device_array(a) else np


def to_device(a):
    """A device copy of a (a device array is returned as it is)."""
    return a if is_device_array(a) else cupy().asarray(a)


def to_host(a):
    """A NumPy array of a: copied from the GPU for a device array, as it is otherwise."""
    return a.get() if is_device_array(a) else np.asarray(a)


def as_like(a, reference):
    """a on the same device as reference (host or GPU)."""
    if is_device_array(reference):
        return to_device(a)
    return to_host(a)


def move(a, device):
    """a on `device`: "gpu" or "cpu"."""
    return to_device(a) if device == "gpu" else to_host(a)


def check_device(device):
    """Normalise a device name: "gpu" (or "cuda") and "cpu"; the GPU must be there."""
    name = str(device).lower()
    if name in ("gpu", "cuda"):
        cupy()
        return "gpu"
    if name == "cpu":
        return "cpu"
    raise ValueError(f"unknown device {device!r}; valid devices: 'cpu', 'gpu'")


def synchronize(a=None):
    """Wait for the GPU to finish its queued work (for timings); nothing for host arrays."""
    if (a is None or is_device_array(a)) and _state["cupy"] is not None:
        _state["cupy"].cuda.get_current_stream().synchronize()
