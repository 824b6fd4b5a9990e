"""The kernel contract: the functions that layers and optimizers call through a backend.

`reference.py` lists them (CONTRACT) and defines every one, readable; a backend module defines the ones it
speeds up, with the same signature and results, and inherits the reference's for the rest, so
a missing fast twin is never an error and a new layer runs on every backend from day one.
What a backend can do better is read from the same list: `kernels.speeds_up(name)`.

    kernels = minicnn.backend.kernels()          # a Kernels for the selected backend
    y, ctx = kernels.conv2d_forward(x, W, b, stride, pads)
    kernels.speeds_up("conv_relu_pool_forward")  # True on Numba: Sequential fuses the three layers

The textbook loops that the reference itself is checked against live in `naive.py`.
"""
from minicnn.kernels import reference
from minicnn.kernels.reference import CONTRACT  # the list lives with the kernels it names


class Kernels:
    """One backend's kernels: each function of CONTRACT, the module's own where it defines one,
    the reference's otherwise. Looked up at each call, so a patched module takes effect."""

    def __init__(self, name, module):
        self.name, self.module = name, module

    def __getattr__(self, fn):
        if fn not in CONTRACT:
            raise AttributeError(f"{fn!r} is not a kernel of the contract (minicnn.kernels.CONTRACT)")
        own = getattr(self.module, fn, None)
        return own if own is not None else getattr(reference, fn)

    def speeds_up(self, fn):
        """True when this backend has its own (faster) version of kernel fn, not the reference's."""
        if fn not in CONTRACT:
            raise ValueError(f"{fn!r} is not a kernel of the contract (minicnn.kernels.CONTRACT)")
        return getattr(self.module, fn, None) not in (None, getattr(reference, fn))

    def __repr__(self):
        own = [fn for fn in CONTRACT if self.speeds_up(fn)]
        return f"<Kernels {self.name!r}: own {', '.join(own) or 'none'}; the reference's for the rest>"
