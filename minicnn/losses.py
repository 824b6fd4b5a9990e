"""Losses with Keras's names. Each returns per-sample losses, y_true and y_pred: (N, K) -> (N,);
training minimises their mean over the batch.

Every loss has a hand-written gradient of that mean with respect to y_pred, and the
cross-entropies also the fused gradient with respect to the logits of a final softmax,
(p - y) / N, which Sequential uses when the model ends in Activation("softmax").
"""
import numpy as np

from minicnn import tape
from minicnn.gpu import array_module, as_like, is_device_array, to_host
from minicnn.utils import Tensor

EPSILON = 1e-7  # Keras's backend.epsilon(): probabilities are clipped to [eps, 1 - eps]


def categorical_crossentropy(y_true, y_pred):
    """-sum_k y_k log p_k per sample. y_true: (N, K) one-hot, y_pred: (N, K) -> (N,)."""
    xp = array_module(y_pred)
    q = y_pred / y_pred.sum(axis=-1, keepdims=True)  # Keras renormalises, then clips
    q = xp.clip(q, EPSILON, 1 - EPSILON)  # log(0) never happens
    return -(y_true * xp.log(q)).sum(axis=-1)


def categorical_crossentropy_gradient(y_true, y_pred):
    """d mean(categorical_crossentropy) / d y_pred: (N, K).

    With s = sum_k p_k and q = p / s: dL/dq_k = -y_k / q_k where q_k is not clipped (else 0),
    and dL/dp_j = (dL/dq_j - sum_k dL/dq_k q_k) / s.
    """
    xp = array_module(y_pred)
    s = y_pred.sum(axis=-1, keepdims=True)
    q = y_pred / s
    inside = (q > EPSILON) & (q < 1 - EPSILON)
    g = xp.where(inside, -y_true / xp.where(inside, q, 1), 0).astype(y_pred.dtype)
    return (g - (g * q).sum(axis=-1, keepdims=True)) / s / len(y_pred)


def _one_hot(labels, K, dtype, like=None):
    """(N, K) one-hot rows for integer labels (N,) or (N, 1), on the device of `like`."""
    labels = to_host(labels).reshape(-1).astype(np.intp)
    if labels.size and (labels.min() < 0 or labels.max() >= K):
        bad = labels[(labels < 0) | (labels >= K)][0]
        raise ValueError(f"label {bad} is out of range for {K} classes (valid labels: 0..{K - 1})")
    out = np.zeros((labels.size, K), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out if like is None else as_like(out, like)


def sparse_categorical_crossentropy(y_true, y_pred):
    """Categorical cross-entropy with integer labels. y_true: (N,) or (N, 1), y_pred: (N, K) -> (N,)."""
    return categorical_crossentropy(_one_hot(y_true, y_pred.shape[-1], y_pred.dtype, y_pred), y_pred)


def sparse_categorical_crossentropy_gradient(y_true, y_pred):
    return categorical_crossentropy_gradient(_one_hot(y_true, y_pred.shape[-1], y_pred.dtype, y_pred), y_pred)


def mean_squared_error(y_true, y_pred):
    """mean_k (p_k - y_k)^2 per sample. (N, K), (N, K) -> (N,)."""
    return ((y_pred - y_true) ** 2).mean(axis=-1)


def mean_squared_error_gradient(y_true, y_pred):
    return 2 * (y_pred - y_true) / y_pred.size


def binary_crossentropy(y_true, y_pred):
    """-mean_k [y log p + (1 - y) log(1 - p)] per sample, p clipped to [eps, 1 - eps] as Keras.
    y_true, y_pred: (N, K) of independent yes/no targets and probabilities -> (N,)."""
    xp = array_module(y_pred)
    p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
    return -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p)).mean(axis=-1)


def binary_crossentropy_gradient(y_true, y_pred):
    """d mean(binary_crossentropy) / d y_pred = (p - y) / (p (1 - p)) / (N K), 0 where p was clipped."""
    xp = array_module(y_pred)
    inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
    p = xp.where(inside, y_pred, 0.5)
    return xp.where(inside, (p - y_true) / (p * (1 - p)), 0).astype(y_pred.dtype) / y_pred.size


def binary_crossentropy_from_logits(y_true, z):
    """The same from logits z, stably (as tf.nn.sigmoid_cross_entropy_with_logits):
    max(z, 0) - z y + log(1 + exp(-|z|)), averaged over K."""
    xp = array_module(z)
    return (xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))).mean(axis=-1)


def binary_crossentropy_from_logits_gradient(y_true, z):
    """(sigmoid(z) - y) / (N K)."""
    xp = array_module(z)
    return ((xp.exp(-xp.logaddexp(0, -z)) - y_true) / z.size).astype(z.dtype)


def mean_absolute_error(y_true, y_pred):
    """mean_k |p_k - y_k| per sample. (N, K), (N, K) -> (N,)."""
    return array_module(y_pred).abs(y_pred - y_true).mean(axis=-1)


def mean_absolute_error_gradient(y_true, y_pred):
    return (array_module(y_pred).sign(y_pred - y_true) / y_pred.size).astype(y_pred.dtype)


def huber(y_true, y_pred, delta=1.0):
    """mean_k of e^2 / 2 where |e| <= delta, delta (|e| - delta / 2) beyond; e = p - y."""
    xp = array_module(y_pred)
    e = y_pred - y_true
    a = xp.abs(e)
    return xp.where(a <= delta, 0.5 * e * e, delta * a - 0.5 * delta * delta).mean(axis=-1)


def huber_gradient(y_true, y_pred, delta=1.0):
    """e clipped to [-delta, delta], over N K."""
    xp = array_module(y_pred)
    return (xp.clip(y_pred - y_true, -delta, delta) / y_pred.size).astype(y_pred.dtype)


# The gradients with respect to the targets, d mean(loss) / d y_true, for a tape whose targets
# are themselves computed (one model's outputs as another's targets): each loss is linear in y.
def categorical_crossentropy_target_gradient(y_true, y_pred):
    """-log q_k / N, q = p / sum(p) clipped as the loss clips it."""
    q = array_module(y_pred).clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
    return (-array_module(y_pred).log(q) / len(y_pred)).astype(y_pred.dtype)


def binary_crossentropy_target_gradient(y_true, y_pred):
    """-(log p - log(1 - p)) / (N K), p clipped as the loss clips it."""
    xp = array_module(y_pred)
    p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
    return (-(xp.log(p) - xp.log(1 - p)) / y_pred.size).astype(y_pred.dtype)


def binary_crossentropy_from_logits_target_gradient(y_true, z):
    """-z / (N K)."""
    return (-z / z.size).astype(z.dtype)


def softmax_crossentropy_gradient(y_true, p):
    """d mean(cross-entropy(softmax(z))) / dz = (p - y) / N, with p = softmax(z): (N, K)."""
    if y_true.shape != p.shape:
        y_true = _one_hot(y_true, p.shape[-1], p.dtype, p)
    return (p - y_true) / len(p)


class LossSpec:
    """A loss as the training loop uses it: the per-sample function fn(y_true, y_pred) -> (N,),
    the gradient of the batch's mean, and (for cross-entropies) the shortcut at the logits of a
    final softmax. Calling it, loss(y_true, y_pred), gives the batch's mean, as Keras's losses."""

    def __init__(self, name, fn, gradient, sparse=False, softmax_gradient=None, from_logits=False, binary=False,
                 target_gradient=None):
        self.name, self.fn, self.gradient = name, fn, gradient
        self.target_gradient = target_gradient  # d mean / d y_true (None: the targets are labels)
        self.sparse, self.softmax_gradient, self.from_logits = sparse, softmax_gradient, from_logits
        self.binary = binary  # independent yes/no targets: "accuracy" means binary accuracy

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The mean loss over the batch (Keras's "sum_over_batch_size" reduction), a 0-d array
        (with TensorFlow's .numpy()); sample_weight (N,) weights each sample's loss. Under a
        GradientTape it is recorded, its gradient the hand-written one (the targets are constants)."""
        p = y_pred if is_device_array(y_pred) else np.asarray(tape.plain(y_pred))
        y = as_like(to_host(y_true) if is_device_array(y_true) else np.asarray(tape.plain(y_true)), p)
        if p.dtype.kind != "f":
            p = p.astype(np.float32)
        w = None
        if sample_weight is not None:
            w = np.asarray(tape.plain(sample_weight), dtype=p.dtype)
            w = w.reshape(len(p), *[1] * (p.ndim - 1)) if w.size == len(p) else w  # a weight per sample
        with tape.paused():  # the hand-written math inside is one record, not many
            per_sample = self.fn(y, p)
        value = (per_sample if w is None else per_sample * w.reshape(w.shape[:per_sample.ndim])).mean()

        def backward(dy):
            g = self.gradient(y, p)
            gy = None if self.target_gradient is None or not isinstance(y_true, np.ndarray) else self.target_gradient(y, p)
            return [None if gy is None else dy * (gy if w is None else gy * w).reshape(np.shape(y_true)),
                    dy * (g if w is None else g * w)]
        if not tape.recording():
            return np.asarray(to_host(value)).view(Tensor)
        return tape.record(self.name, [y_true, y_pred], np.asarray(value, dtype=p.dtype), backward,
                           f"{type(self).__name__}.gradient")

    def get_config(self):
        return {"name": self.name}


def log_softmax(z):
    """log(softmax(z)) over the last axis, stably: z - max - log(sum(exp(z - max))). (N, K) -> (N, K)."""
    xp = array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


class CategoricalCrossentropy(LossSpec):
    """-sum_k y_k log p_k, as keras.losses.CategoricalCrossentropy. from_logits=True: y_pred are
    logits z and p = softmax(z) is taken inside, stably, with the exact gradient (softmax(z) - y) / N.
    label_smoothing s: targets y (1 - s) + s / K.

    Args:
        from_logits (bool): y_pred are logits, not probabilities. Defaults to False.
        label_smoothing (float): s in [0, 1]; targets become y (1 - s) + s / K. Defaults to 0.0.
        name (str): the loss's name in logs. Defaults to "categorical_crossentropy".

    reduction= is accepted and ignored: the loss is the mean over the batch, Keras's default.
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, name="categorical_crossentropy", **kwargs):
        self.label_smoothing = float(label_smoothing)
        if not 0 <= self.label_smoothing <= 1:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        sparse = kwargs.pop("sparse", False)
        kwargs.pop("reduction", None)  # Keras's default, the mean over the batch, is the one minicnn has
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")

        def targets(y, p):
            y = _one_hot(y, p.shape[-1], p.dtype, p) if sparse else y
            s = self.label_smoothing
            return y * (1 - s) + s / p.shape[-1] if s else y

        if from_logits:
            def fn(y, z):
                return -(targets(y, z) * log_softmax(z)).sum(axis=-1)

            def gradient(y, z):
                return softmax_crossentropy_gradient(targets(y, z), array_module(z).exp(log_softmax(z)))

            def target_gradient(y, z):  # the smoothing scales the targets by 1 - s
                return -log_softmax(z) * z.dtype.type(1 - self.label_smoothing) / len(z)
            shortcut = None
        else:
            def fn(y, p):
                return categorical_crossentropy(targets(y, p), p)

            def gradient(y, p):
                return categorical_crossentropy_gradient(targets(y, p), p)

            def target_gradient(y, p):
                return categorical_crossentropy_target_gradient(y, p) * p.dtype.type(1 - self.label_smoothing)

            def shortcut(y, p):
                return softmax_crossentropy_gradient(targets(y, p), p)
        super().__init__(name, fn, gradient, sparse=sparse, softmax_gradient=shortcut, from_logits=bool(from_logits),
                         target_gradient=None if sparse else target_gradient)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer labels (N,) or (N, 1), as
    keras.losses.SparseCategoricalCrossentropy; from_logits as CategoricalCrossentropy.

    Args:
        from_logits (bool): y_pred are logits, not probabilities. Defaults to False.
        name (str): the loss's name in logs. Defaults to "sparse_categorical_crossentropy".

    reduction= is accepted and ignored: the loss is the mean over the batch, Keras's default.
    """

    def __init__(self, from_logits=False, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(from_logits=from_logits, name=name, sparse=True, **kwargs)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class MeanSquaredError(LossSpec):
    """mean_k (p_k - y_k)^2 per sample, as keras.losses.MeanSquaredError.

    Args:
        name (str): the loss's name in logs. Defaults to "mean_squared_error".

    reduction= is accepted and ignored: the loss is the mean over the batch, Keras's default.
    """

    def __init__(self, name="mean_squared_error", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name, mean_squared_error, mean_squared_error_gradient,
                         target_gradient=lambda y, p: -mean_squared_error_gradient(y, p))


class BinaryCrossentropy(LossSpec):
    """Binary cross-entropy, as keras.losses.BinaryCrossentropy: from_logits=True takes logits z
    (sigmoid inside, stably; gradient (sigmoid(z) - y) / (N K)); label_smoothing s: y (1 - s) + s / 2.

    Args:
        from_logits (bool): y_pred are logits, not probabilities. Defaults to False.
        label_smoothing (float): s in [0, 1]; targets become y (1 - s) + s / 2. Defaults to 0.0.
        name (str): the loss's name in logs. Defaults to "binary_crossentropy".

    reduction= is accepted and ignored: the loss is the mean over the batch, Keras's default.
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, name="binary_crossentropy", **kwargs):
        kwargs.pop("reduction", None)
        self.label_smoothing = float(label_smoothing)
        s = self.label_smoothing
        fn, grad = (binary_crossentropy_from_logits, binary_crossentropy_from_logits_gradient) if from_logits \
            else (binary_crossentropy, binary_crossentropy_gradient)
        target = binary_crossentropy_from_logits_target_gradient if from_logits else binary_crossentropy_target_gradient
        super().__init__(name, lambda y, p: fn(y * (1 - s) + 0.5 * s if s else y, p),
                         lambda y, p: grad(y * (1 - s) + 0.5 * s if s else y, p),
                         from_logits=bool(from_logits), binary=True,
                         target_gradient=lambda y, p: target(y, p) * p.dtype.type(1 - s))

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class MeanAbsoluteError(LossSpec):
    """mean_k |p_k - y_k| per sample, as keras.losses.MeanAbsoluteError.

    Args:
        name (str): the loss's name in logs. Defaults to "mean_absolute_error".

    reduction= is accepted and ignored: the loss is the mean over the batch, Keras's default.
    """

    def __init__(self, name="mean_absolute_error", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name, mean_absolute_error, mean_absolute_error_gradient,
                         target_gradient=lambda y, p: -mean_absolute_error_gradient(y, p))


class Huber(LossSpec):
    """Quadratic within delta of the target, linear beyond, as keras.losses.Huber.

    Args:
        delta (float): where the quadratic part ends and the linear one begins. Defaults to 1.0.
        name (str): the loss's name in logs. Defaults to "huber_loss".

    reduction= is accepted and ignored: the loss is the mean over the batch, Keras's default.
    """

    def __init__(self, delta=1.0, name="huber_loss", **kwargs):
        kwargs.pop("reduction", None)
        self.delta = float(delta)
        super().__init__(name, lambda y, p: huber(y, p, self.delta), lambda y, p: huber_gradient(y, p, self.delta),
                         target_gradient=lambda y, p: -huber_gradient(y, p, self.delta))

    def get_config(self):
        return {"name": self.name, "delta": self.delta}


CLASSES = {cls.__name__: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy, MeanSquaredError,
                                         BinaryCrossentropy, MeanAbsoluteError, Huber)}


def deserialize(spec):
    """The loss a saved file names: a name ("categorical_crossentropy") or {"class_name", "config"}."""
    if isinstance(spec, str):
        return get(spec)
    config = dict(spec["config"])
    return CLASSES[spec["class_name"]](**config)


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()} if type(loss) in CLASSES.values() \
        else loss.name


LOSSES = {spec.name: spec for spec in (
    LossSpec("categorical_crossentropy", categorical_crossentropy, categorical_crossentropy_gradient,
             softmax_gradient=softmax_crossentropy_gradient, target_gradient=categorical_crossentropy_target_gradient),
    LossSpec("sparse_categorical_crossentropy", sparse_categorical_crossentropy,
             sparse_categorical_crossentropy_gradient, sparse=True,
             softmax_gradient=softmax_crossentropy_gradient),
    LossSpec("mean_squared_error", mean_squared_error, mean_squared_error_gradient,
             target_gradient=lambda y, p: -mean_squared_error_gradient(y, p)),
    LossSpec("binary_crossentropy", binary_crossentropy, binary_crossentropy_gradient, binary=True,
             target_gradient=binary_crossentropy_target_gradient),
    LossSpec("mean_absolute_error", mean_absolute_error, mean_absolute_error_gradient,
             target_gradient=lambda y, p: -mean_absolute_error_gradient(y, p)),
    LossSpec("huber", huber, huber_gradient, target_gradient=lambda y, p, delta=1.0: -huber_gradient(y, p, delta)),
)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


def _recorded(spec):
    """The loss function of spec, recorded under a GradientTape: per-sample losses (N, ...) whose
    gradient, for an upstream dy, is dy times N times the gradient of their mean (each sample's
    loss reads its own row only)."""
    fn = spec.fn

    def loss(y_true, y_pred, *args, **kwargs):  # huber's delta
        if not tape.recording():
            return fn(y_true, y_pred, *args, **kwargs)
        p, y = np.asarray(tape.plain(y_pred)), np.asarray(tape.plain(y_true))
        y = y.astype(p.dtype) if not spec.sparse else y
        with tape.paused():
            per_sample = fn(y, p, *args, **kwargs)
        n = per_sample.size

        def backward(dy):
            upstream = dy.reshape(*dy.shape, *[1] * (p.ndim - dy.ndim))
            g = spec.gradient(y, p, *args, **kwargs) * p.dtype.type(n)
            gy = None if spec.target_gradient is None or not isinstance(y_true, np.ndarray) \
                else (spec.target_gradient(y, p, *args, **kwargs) * p.dtype.type(n) * upstream).reshape(np.shape(y_true))
            return [gy, g * upstream]
        return tape.record(spec.name, [y_true, y_pred], per_sample, backward, f"losses.{spec.gradient.__name__}")
    loss.__name__, loss.__doc__ = fn.__name__, fn.__doc__
    return loss


for _spec in LOSSES.values():  # keras.losses.mean_squared_error(y, p) and the others, differentiable
    globals()[_spec.name] = _recorded(_spec)
    _spec.function = globals()[_spec.name]


def get(identifier):
    """The LossSpec for a loss name or one of this module's loss functions."""
    if isinstance(identifier, LossSpec):
        return identifier
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in LOSSES:
            raise ValueError(f"unknown loss {identifier!r}; valid losses: {', '.join(LOSSES)}")
        return LOSSES[name]
    for spec in LOSSES.values():
        if identifier is spec.fn or identifier is spec.function:
            return spec
    raise TypeError(f"loss {identifier!r} is not one of minicnn's losses ({', '.join(LOSSES)}): "
                    "minicnn needs a hand-written gradient for every loss it trains with")
