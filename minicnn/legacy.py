"""Keras 2's names that Keras 3 removed, kept so that the Keras 2 programs of tutorials and books
run as they are written. Each use says once, in a DeprecationWarning, what Keras 3 writes instead.
"""
import warnings

_warned = set()


def deprecated(name, keras3_way, stacklevel=3):
    """Say once per process that `name` is Keras 2's, and what Keras 3 writes instead.

    stacklevel points the warning at the user's line (Python shows a DeprecationWarning by default
    only when it is attributed to __main__, a script's or a notebook's own code).
    """
    if name in _warned:
        return
    _warned.add(name)
    warnings.warn(f"{name} is Keras 2's; Keras 3 removed it. minicnn runs it as Keras 2 did; "
                  f"the Keras 3 way: {keras3_way}", DeprecationWarning, stacklevel=stacklevel)
