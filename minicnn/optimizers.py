"""Optimizers with Keras's names, defaults and update rules.

An optimizer never sees layers: apply_gradients takes (grad, param) pairs, in the same order
every step, and updates each param in place. Its state (Adam's moments) is created lazily
with zeros_like(param) on the first step, so it has the param's shape, dtype and device.
"""
import numpy as np


class Optimizer:
    def __init__(self, learning_rate):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.iterations = 0  # steps applied so far
        self.slots = None  # per-param state: a list of dicts of arrays, one dict per param

    def apply_gradients(self, grads_and_params):
        """One step: update every param in place from its grad. Pairs of equal shapes."""
        pairs = list(grads_and_params)
        if self.slots is None:
            self.slots = [{k: np.zeros_like(p) for k in self.slot_names} for _, p in pairs]
        if len(pairs) != len(self.slots):
            raise ValueError(f"optimizer was built for {len(self.slots)} params, got {len(pairs)}")
        for (g, p), slots in zip(pairs, self.slots):
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {g.shape} does not match param of shape {p.shape}")
            self.update(p, g, slots, self.iterations + 1)
        self.iterations += 1

    slot_names = ()

    def update(self, p, g, slots, t):
        raise NotImplementedError

    def get_config(self):
        return {"name": type(self).__name__, "learning_rate": self.learning_rate}


class SGD(Optimizer):
    """p -= lr * g; with momentum: m = momentum * m - lr * g, p += m (Nesterov: p += momentum * m - lr * g)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("m",) if momentum else ()

    def update(self, p, g, slots, t):
        lr = self.learning_rate
        if not self.momentum:
            p -= lr * g
            return
        m = slots["m"]
        m *= self.momentum
        m -= lr * g
        if self.nesterov:
            p += self.momentum * m - lr * g
        else:
            p += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with exactly Keras's update, so equal weights take equal steps in both engines:

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1);   v += (g*g - v) * (1 - beta_2)
        p -= alpha * m / (sqrt(v) + epsilon)

    (The textbook form adds epsilon to the bias-corrected sqrt(v_hat): close, not equal.)
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        for name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, p, g, slots, t):
        # The scalars are computed in the param's dtype, as Keras does.
        dt = p.dtype.type
        alpha = dt(self.learning_rate) * np.sqrt(dt(1) - dt(self.beta_2) ** dt(t)) / (dt(1) - dt(self.beta_1) ** dt(t))
        m, v = slots["m"], slots["v"]
        m += (g - m) * dt(1 - self.beta_1)
        v += (g * g - v) * dt(1 - self.beta_2)
        p -= (m * alpha) / (np.sqrt(v) + dt(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def get(identifier):
    """An optimizer from an instance or a name ("adam", "sgd")."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; valid optimizers: {', '.join(OPTIMIZERS)} "
                     "or an instance such as minicnn.optimizers.Adam()")
