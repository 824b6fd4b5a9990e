"""Dense: the fully connected layer."""
from minicnn import initializers
from minicnn.layers.base import Layer
from minicnn.layers.core import Activation
from minicnn.registry import register_serializable


@register_serializable()
class Dense(Layer):
    """y = x @ W + b. x: (N, in) -> y: (N, units); W: (in, units), b: (units,).

    Args:
        units (int): the number of outputs.
        activation (str | callable | None): applied to the output. Defaults to None (linear).
        use_bias (bool): add the bias b. Defaults to True.
        kernel_initializer (str | callable): W's initializer. Defaults to "glorot_uniform".
        bias_initializer (str | callable): b's initializer. Defaults to "zeros".
        kernel_regularizer (str | Regularizer | None): a penalty on W in the loss. Defaults to None.
        bias_regularizer (str | Regularizer | None): a penalty on b in the loss. Defaults to None.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.regularize(kernel_regularizer, bias_regularizer)
        self.activation = None if activation in (None, "linear") else Activation(activation, dtype=self.dtype)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"layer {self.name!r} expects inputs of shape (N, features), got "
                             f"{input_shape}; put a Flatten() layer before it")
        n_in = input_shape[1]
        self.add_param("W", self.kernel_initializer((n_in, self.units), self.dtype, n_in, self.units))
        if self.use_bias:
            self.add_param("b", self.bias_initializer((self.units,), self.dtype, n_in, self.units))

    def compute_output_shape(self, input_shape):
        return (None, self.units)

    def count_macs(self, input_shape):
        return input_shape[1] * self.units

    def call(self, x, training=False):
        y = x @ self.params["W"]
        if self.use_bias:
            y += self.params["b"]
        if training:
            self._cache = x
        if self.activation is not None:
            y = self.activation.forward(y, training)
        return y

    def backward(self, dy):
        """dy: (N, units) -> dx: (N, in) (None when input_grad is off).
        dW = x^T dy;  db = sum_n dy;  dx = dy W^T."""
        x = self._saved()
        if self.activation is not None:
            dy = self.activation.backward(dy)
        self.grads["W"] = x.T @ dy
        if self.use_bias:
            self.grads["b"] = dy.sum(axis=0)
        return dy @ self.params["W"].T if self.input_grad else None

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                "activation": self.activation.activation if self.activation else None,
                **self.regularizer_config()}
