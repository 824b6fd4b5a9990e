"""Input and InputLayer: where a model's data comes in, as `keras.Input(shape=(28, 28, 1))`."""
from minicnn.layers.base import Layer
from minicnn.layers.symbolic import KerasTensor, Node
from minicnn.registry import register_serializable


@register_serializable()
class InputLayer(Layer):
    """The entry of a model: shape=(H, W, C) (without the batch axis) or batch_shape=(None, H, W, C).
    x: (N, *shape) -> y = x.

    Args:
        shape (tuple | None): a sample's shape, without the batch axis.
        batch_size (int | None): the batch size, if fixed. Defaults to None.
        dtype (str | None): Defaults to None ("float32").
        batch_shape (tuple | None): the shape with the batch axis, instead of shape. Defaults to None.
        name (str | None): Defaults to None (a unique name).
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
        if shape is None and batch_shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(28, 28, 1)) (without the batch axis)")
        if shape is None:
            batch_size, shape = batch_shape[0], batch_shape[1:]
        try:
            shape = tuple(None if d is None else int(d) for d in shape)
        except (TypeError, ValueError):
            raise TypeError(f"shape must be a tuple of ints such as (28, 28, 1), got {shape!r}") from None
        super().__init__(name=name, dtype=dtype or "float32", input_shape=shape, **kwargs)
        self.batch_size = batch_size
        node = Node(self, [])
        node.output = KerasTensor((None, *shape), self.dtype, node)
        self.nodes.append(node)

    def call(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {**super().get_config(), "shape": list(self.input_shape[1:]), "batch_size": self.batch_size}


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):
    """A symbolic input of shape (None, *shape), e.g. Input(shape=(28, 28, 1)): the first item of a
    Sequential, as in Keras 3 (`keras.Sequential([keras.Input(shape), ...])`)."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name).output
