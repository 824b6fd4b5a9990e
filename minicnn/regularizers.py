"""Weight penalties added to the loss, as Keras's regularizers:

    Dense(64, kernel_regularizer=minicnn.regularizers.L2(1e-4))    # or "l2" (0.01)

L1(l1): l1 * sum |w|, gradient l1 * sign(w).  L2(l2): l2 * sum w^2 (no 1/2, as Keras),
gradient 2 l2 w.  L1L2(l1, l2): both. The model adds each penalty to the batch's mean loss
(what fit and evaluate report) and its gradient to the weight's.
"""
from minicnn.gpu import array_module


class Regularizer:
    def __call__(self, w):
        """The penalty, a float."""
        raise NotImplementedError

    def gradient(self, w):
        """d penalty / dw, shaped as w."""
        raise NotImplementedError

    def get_config(self):
        return dict(vars(self))


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"l1 and l2 must be >= 0, got {l1!r}, {l2!r}")

    def __call__(self, w):
        xp = array_module(w)
        return float(self.l1 * xp.abs(w).sum() + self.l2 * (w * w).sum())

    def gradient(self, w):
        xp = array_module(w)
        return (self.l1 * xp.sign(w) + 2 * self.l2 * w).astype(w.dtype)


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}
CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    """None, a regularizer, a name ("l1", "l2", "l1_l2" with Keras's default factors), or a
    {"class_name", "config"} from a saved model."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]() if identifier.lower() != "l1_l2" else L1L2(0.01, 0.01)
    if isinstance(identifier, dict) and identifier.get("class_name") in CLASSES:
        return CLASSES[identifier["class_name"]](**identifier["config"])
    raise ValueError(f"unknown regularizer {identifier!r}; valid: l1, l2, l1_l2, or minicnn.regularizers.L1/L2/L1L2")


def serialize(regularizer):
    return None if regularizer is None else {"class_name": type(regularizer).__name__,
                                             "config": regularizer.get_config()}
