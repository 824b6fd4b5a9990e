"""Arrays computed from weights, kept while the weights keep their values.

At inference the same weights are transformed again for every batch: BatchNormalization folded
into the convolution before it (minicnn/fusion.py), Winograd's filter transform U = G g G^T
(minicnn/kernels/winograd.py). Small products and copies, but not free at inference, where they
would be made again for every batch (docs/benchmarks.md, "What each choice in the kernels
buys"). A DerivedCache keeps the result with copies of the
arrays it came from and serves it again only when the arrays passed now are equal to those
copies, element by element (np.array_equal: a few microseconds for a layer's weights). A weight
changed in place, by an optimizer step, set_weights or a user's own write, is therefore never
served a stale result; in training, where the weights change at every step, a lookup costs a
comparison and a copy. Host (NumPy) arrays only: anything else is computed every time.
"""
from collections import OrderedDict

import numpy as np


class DerivedCache:
    """compute() for the sources given, or the result kept from an earlier call with equal sources.
    Up to `size` keys (the least recently used goes first); a key names a use (a layer's arrays)."""

    def __init__(self, size=32):
        self.size = size
        self.entries = OrderedDict()  # key -> (copies of the sources, result)

    def get(self, key, sources, compute):
        """sources: a tuple of arrays (or None); the result is shared: never write into it."""
        if not all(s is None or type(s) is np.ndarray for s in sources):
            return compute()
        kept = self.entries.get(key)
        if kept is not None and len(kept[0]) == len(sources) and all(map(_same, kept[0], sources)):
            self.entries.move_to_end(key)
            return kept[1]
        result = compute()
        self.entries[key] = (tuple(None if s is None else s.copy() for s in sources), result)
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return result


def _same(kept, now):
    if kept is None or now is None:
        return kept is None and now is None
    return kept.dtype == now.dtype and np.array_equal(kept, now)
