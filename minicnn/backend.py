"""Which kernels the layers call: the readable NumPy reference or the fast Numba twins.

    MINICNN_BACKEND=numpy   the reference kernels in minicnn/kernels/reference.py
    MINICNN_BACKEND=numba   the compiled kernels in minicnn/kernels/numba_kernels.py

Without the variable, numba is used when it imports and numpy otherwise. In code:
`minicnn.backend.set_backend("numpy")`. The choice takes effect at the next layer call.
"""
import importlib
import os

BACKENDS = ("numpy", "numba")
_MODULES = {"numpy": "minicnn.kernels.reference", "numba": "minicnn.kernels.numba_kernels"}
_state = {"name": None}


def _numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def set_backend(name):
    """Select the kernels by name: "numpy" or "numba"."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid backends are {', '.join(BACKENDS)}")
    if name == "numba" and not _numba_available():
        raise RuntimeError("backend 'numba' needs the numba package: pip install numba")
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


def kernels():
    """The kernel module of the selected backend (see minicnn.kernels.reference for the contract)."""
    return importlib.import_module(_MODULES[get_backend()])
