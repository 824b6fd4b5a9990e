"""Which kernels the layers call: the readable NumPy reference, the fast Numba twins, or the GPU.

    MINICNN_BACKEND=numpy   the reference kernels in minicnn/kernels/reference.py
    MINICNN_BACKEND=numba   the compiled kernels in minicnn/kernels/numba_kernels.py
    MINICNN_BACKEND=cupy    models keep their params on the GPU (CuPy), where the reference
                            kernels run on device arrays (see minicnn/gpu.py), but for the
                            few that minicnn/kernels/cupy_kernels.py writes in CUDA

Without the variable, numba is used when it imports and numpy otherwise. In code:
`minicnn.backend.set_backend("numpy")`; for one model, `model.to("gpu")`. The choice takes
effect at the next layer call. Device arrays always go to the kernels written against `xp`
(the backend follows the data), host arrays to the selected CPU kernels. A backend module
defines the kernels it speeds up and inherits the reference's for the rest (minicnn.kernels);
register_backend(name, module) adds one.
"""
import importlib
import os

from minicnn import gpu
from minicnn.kernels import Kernels

BACKENDS = ("numpy", "numba")  # the CPU backends; "cupy" is selectable too, where a GPU is
_MODULES = {"numpy": "minicnn.kernels.reference", "numba": "minicnn.kernels.numba_kernels",
            "cupy": "minicnn.kernels.cupy_kernels"}
_state = {"name": None}
_kernels = {}


def register_backend(name, module):
    """Make a CPU backend selectable by name: module (a module or its import path) defines the
    kernels of minicnn.kernels.CONTRACT that it speeds up; the reference serves the rest."""
    _MODULES[name] = module
    for key in [k for k in _kernels if k[0] == name]:
        del _kernels[key]


def _numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def set_backend(name):
    """Select the kernels by name: "numpy", "numba" or "cupy" (the GPU), or a registered one."""
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; valid backends are {', '.join(_MODULES)}")
    if name == "numba" and not _numba_available():
        raise RuntimeError("backend 'numba' needs the numba package: pip install numba")
    if name == "cupy":
        gpu.cupy()  # a clear error now if CuPy or the GPU is missing
    _state["name"] = name


def get_backend():
    """The name of the selected backend."""
    if _state["name"] is None:
        env = os.environ.get("MINICNN_BACKEND", "").strip().lower()
        if env:
            set_backend(env)
        else:
            _state["name"] = "numba" if _numba_available() else "numpy"
    return _state["name"]


def kernels_named(name):
    """The Kernels of the backend `name` (see minicnn.kernels for the contract)."""
    module = _MODULES[name]
    key = (name, module if isinstance(module, str) else id(module))
    if key not in _kernels:
        _kernels[key] = Kernels(name, importlib.import_module(module) if isinstance(module, str) else module)
    return _kernels[key]


def kernels():
    """The Kernels of the selected backend."""
    return kernels_named(get_backend())


def kernels_for(x):
    """The kernels for the array x: the GPU's for a device array (minicnn/kernels/cupy_kernels.py,
    the xp-generic reference for the rest); for a host array the selected CPU backend's, the
    reference's under "cupy" (a layer without params leaves a host array on the host)."""
    if gpu.is_device_array(x):
        return kernels_named("cupy")
    return kernels_named("numpy") if get_backend() == "cupy" else kernels()


def default_device():
    """Where new params go: "gpu" under the cupy backend, else "cpu"."""
    return "gpu" if get_backend() == "cupy" else "cpu"


def image_data_format():
    """Keras's question, minicnn's one answer: images are (N, H, W, C)."""
    return "channels_last"


def epsilon():
    """Keras's fuzz factor, 1e-7: how far cross-entropy clips probabilities from 0 and 1."""
    return 1e-7
