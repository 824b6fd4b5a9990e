"""BatchNormalization: each channel standardised by its batch statistics while training, by
their moving averages at inference, then scaled and shifted by learned gamma and beta."""
from minicnn import backend, initializers
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable


@register_serializable()
class BatchNormalization(Layer):
    """Keras's BatchNormalization over the last axis (channels-last). x: (N, ..., C) -> y: same.

    Weights, in Keras's order: gamma, beta (trainable, (C,)), moving_mean, moving_variance
    (non-trainable state, (C,)). In training (and when the layer is trainable), the batch's mean
    and biased variance normalise x, and the moving ones follow them:
    moving = moving * momentum + batch * (1 - momentum). Otherwise the moving ones normalise x.
    The math: batchnorm_forward / batchnorm_backward in minicnn/kernels/reference.py.

    Args:
        axis (int): the channel axis; only the last. Defaults to -1.
        momentum (float): how much of the moving statistics each batch keeps. Defaults to 0.99.
        epsilon (float): added to the variance. Defaults to 1e-3.
        center (bool): learn the shift beta. Defaults to True.
        scale (bool): learn the scale gamma. Defaults to True.
        beta_initializer (str | callable): Defaults to "zeros".
        gamma_initializer (str | callable): Defaults to "ones".
        moving_mean_initializer (str | callable): Defaults to "zeros".
        moving_variance_initializer (str | callable): Defaults to "ones".

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    # At inference the moving statistics normalise, as when the layer is frozen and trains: that
    # is how a tape differentiates a call with training=False (see Layer.inference_gradient)
    inference_gradient = "frozen"

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1,):
            raise ValueError(f"BatchNormalization supports axis=-1 (channels-last), got axis={axis!r}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.initializers = {"gamma": gamma_initializer, "beta": beta_initializer,
                             "moving_mean": moving_mean_initializer, "moving_variance": moving_variance_initializer}

    def build(self, input_shape):
        C = input_shape[-1]
        init = {k: initializers.get(v) for k, v in self.initializers.items()}
        if self.scale:
            self.add_param("gamma", init["gamma"]((C,), self.dtype, C, C))
        if self.center:
            self.add_param("beta", init["beta"]((C,), self.dtype, C, C))
        self.add_state("moving_mean", init["moving_mean"]((C,), self.dtype, C, C))
        self.add_state("moving_variance", init["moving_variance"]((C,), self.dtype, C, C))

    def call(self, x, training=False):
        gamma, beta = self.params.get("gamma"), self.params.get("beta")
        batch_stats = bool(training and self.trainable)
        if batch_stats:
            mean, var = self.batch_statistics(x)
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        y, ctx = backend.kernels_for(x).batchnorm_forward(x, gamma, beta, mean, var, self.dtype.type(self.epsilon))
        if training:
            self._cache = (ctx, batch_stats)
        return y

    def batch_statistics(self, x):
        """The batch's mean and (biased) variance per channel, (C,) each; the moving averages follow
        them: moving = moving * momentum + batch * (1 - momentum). (Also called by the fused
        Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D step, minicnn/fusion.py.)"""
        mean, var = backend.kernels_for(x).batchnorm_moments(x)
        m = self.momentum
        self.state["moving_mean"][...] = self.state["moving_mean"] * m + mean * (1 - m)
        self.state["moving_variance"][...] = self.state["moving_variance"] * m + var * (1 - m)
        return mean, var

    def backward(self, dy):
        """dy: (N, ..., C) -> dx: same shape; fills grads["gamma"], grads["beta"]."""
        ctx, batch_stats = self._saved()
        dx, dgamma, dbeta = backend.kernels_for(dy).batchnorm_backward(dy, ctx, self.params.get("gamma"), batch_stats)
        if self.scale:
            self.grads["gamma"] = dgamma
        if self.center:
            self.grads["beta"] = dbeta
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                **{f"{k}_initializer": v for k, v in self.initializers.items() if isinstance(v, str)}}
