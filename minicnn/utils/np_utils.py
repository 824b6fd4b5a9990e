"""keras.utils.np_utils, Keras 2's home of to_categorical (Keras 3: keras.utils.to_categorical)."""
from minicnn import utils
from minicnn.legacy import deprecated


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot labels: minicnn.utils.to_categorical, under its Keras 2 name."""
    deprecated("keras.utils.np_utils.to_categorical", "keras.utils.to_categorical (minicnn.utils.to_categorical)")
    return utils.to_categorical(y, num_classes, dtype)
