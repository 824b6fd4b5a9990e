"""Keras 2's names that Keras 3 removed, kept so that the Keras 2 programs of tutorials and books
run as they are written. Each use says once, in a DeprecationWarning, what Keras 3 writes instead.
"""
import os
import sys
import warnings

_warned = set()
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _callers_stacklevel():
    """The stacklevel of the first frame outside minicnn: the user's line that used the old name
    (Python shows a DeprecationWarning by default when it is attributed to __main__'s code)."""
    frame, level = sys._getframe(2), 2  # 1 is deprecated() itself, 2 its caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def deprecated(name, keras3_way):
    """Say once per process that `name` is Keras 2's, and what Keras 3 writes instead."""
    if name in _warned:
        return
    _warned.add(name)
    warnings.warn(f"{name} is Keras 2's; Keras 3 removed it. minicnn runs it as Keras 2 did; "
                  f"the Keras 3 way: {keras3_way}", DeprecationWarning, stacklevel=_callers_stacklevel())
