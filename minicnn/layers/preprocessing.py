"""Normalization: features shifted and scaled to mean 0 and variance 1 by statistics given, or
measured on the data once with adapt(), as Keras's preprocessing layer."""
import numpy as np

from minicnn import backend, gpu
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable


@register_serializable()
class Normalization(Layer):
    """y = (x - mean) / max(sqrt(variance), eps), or with invert=True, y = mean + x max(sqrt(variance), eps)
    (eps = backend.epsilon(), 1e-7). x: (N, ...) -> y: same shape.

    axis: the axis or axes that keep their own statistics (default -1: one mean per feature or
    channel); the others, the batch axis included, are averaged over. None: one mean for all.
    mean, variance: given (then the layer has no weights, as in Keras), or measured by
    adapt(data): the population variance (divided by the count, not count - 1). The adapted
    statistics are weights in Keras's order, mean, variance, count (non-trainable; count stays 0,
    as Keras 3 leaves it), so get_weights and set_weights match Keras's layer.
    Backward: dx = dy / max(sqrt(variance), eps) (times it, with invert): no trainable weights.

    Args:
        axis (int | tuple | None): the axis or axes with their own statistics; None for one
            mean and variance over everything. Defaults to -1.
        mean (float | array | None): the mean, given with variance instead of adapt(). Defaults to None.
        variance (float | array | None): the variance, given with mean. Defaults to None.
        invert (bool): map normalized values back: y = mean + x * scale. Defaults to False.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    data_only = True  # it prepares the data: the layer after it needs no gradient of its input either

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = () if axis is None else (int(axis),) if isinstance(axis, (int, np.integer)) else tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError(f"give both mean and variance, or neither: got mean={mean!r}, variance={variance!r}")
        if mean is not None and np.shape(mean) != np.shape(variance):
            raise ValueError(f"mean and variance must have the same shape, got {np.shape(mean)} and "
                             f"{np.shape(variance)}")
        if mean is not None and np.ndim(mean) > len(self.axis):
            raise ValueError(f"mean has rank {np.ndim(mean)}, more than the {len(self.axis)} axes kept ({self.axis})")
        self.input_mean, self.input_variance, self.invert = mean, variance, bool(invert)

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(f"layer {self.name!r}: axis {self.axis} out of range for inputs of shape {input_shape}")
        self.keep = tuple(sorted(a % ndim for a in self.axis))
        if 0 in self.keep:
            raise ValueError(f"layer {self.name!r}: axis {self.axis} includes the batch axis 0")
        self.reduce = tuple(d for d in range(ndim) if d not in self.keep)
        self.broadcast_shape = tuple(input_shape[d] if d in self.keep else 1 for d in range(ndim))
        kept = tuple(input_shape[d] for d in self.keep)
        if self.input_mean is None:
            self.add_state("mean", np.zeros(kept, self.dtype))
            self.add_state("variance", np.ones(kept, self.dtype))
            self.add_state("count", np.zeros((), self.dtype))  # Keras's is an int; minicnn saves weights in one dtype
        else:  # Keras's broadcasting of the given values: their axes are the last kept axes
            self.given = [self.expand(np.asarray(v, self.dtype)) for v in (self.input_mean, self.input_variance)]

    def expand(self, value):
        """A mean or variance, (kept axes) or broadcastable to them, -> broadcast_shape."""
        shape = [1] * len(self.broadcast_shape)
        for i in range(1, value.ndim + 1):
            shape[self.keep[-i]] = value.shape[-i]
        try:
            return np.broadcast_to(value.reshape(shape), self.broadcast_shape)
        except ValueError:
            raise ValueError(f"layer {self.name!r}: a mean or variance of shape {value.shape} does not broadcast "
                             f"to the kept axes' shape {self.broadcast_shape}") from None

    def statistics(self, like):
        """(mean, scale), each of broadcast_shape, on like's device: scale = max(sqrt(variance), eps)."""
        if self.input_mean is None:
            mean, var = (self.state[k].reshape(self.broadcast_shape) for k in ("mean", "variance"))
        else:
            mean, var = self.given
        mean, var = gpu.as_like(mean, like), gpu.as_like(var, like)
        xp = gpu.array_module(like)
        return mean, xp.maximum(xp.sqrt(var), self.dtype.type(backend.epsilon()))

    def call(self, x, training=False):
        mean, scale = self.statistics(x)
        if training:
            self._cache = scale
        return mean + x * scale if self.invert else (x - mean) / scale

    def backward(self, dy):
        """dy: (N, ...) -> dx: same shape (None when input_grad is off: dy may then be None too)."""
        scale = self._saved()
        if not self.input_grad:
            return None
        return dy * scale if self.invert else dy / scale

    def adapt(self, data):
        """Measure the mean and population variance of data: an array (N, ...), or an iterable of
        such batches (a list, a generator), combined batch by batch as Keras does."""
        if self.input_mean is not None:
            raise ValueError(f"layer {self.name!r} was given its mean and variance: adapt() has nothing to learn")
        batches = [data] if hasattr(data, "shape") else data
        total_mean = total_var = None
        total_count = 0
        for batch in batches:
            batch = np.asarray(gpu.to_host(batch[0] if isinstance(batch, tuple) else batch), np.float64)
            if not self.built:
                self.build(batch.shape)
            elif any(batch.shape[d] != self.input_shape[d] for d in self.keep):
                raise ValueError(f"layer {self.name!r} was built for inputs of shape {self.input_shape}, got data "
                                 f"of shape {batch.shape}")
            mean, var = batch.mean(axis=self.reduce), batch.var(axis=self.reduce)
            count = int(np.prod([batch.shape[d] for d in self.reduce]))
            if total_mean is None:
                total_mean, total_var, total_count = mean, var, count
                continue
            # the two groups' moments combined: each variance about the new mean, weighted by count
            total_count += count
            w = count / total_count
            new_mean = total_mean * (1 - w) + mean * w
            total_var = (total_var + (total_mean - new_mean) ** 2) * (1 - w) + (var + (mean - new_mean) ** 2) * w
            total_mean = new_mean
        if total_mean is None:
            raise ValueError(f"layer {self.name!r}: adapt() got no data")
        self.state["mean"][...] = gpu.as_like(total_mean.astype(self.dtype), self.state["mean"])
        self.state["variance"][...] = gpu.as_like(total_var.astype(self.dtype), self.state["variance"])

    def get_config(self):
        as_list = (lambda v: None if v is None else np.asarray(v).tolist())
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": as_list(self.input_mean), "variance": as_list(self.input_variance)}
