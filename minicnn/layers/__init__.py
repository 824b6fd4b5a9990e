"""minicnn's layers, with Keras's names, arguments and defaults (channels-last)."""
from minicnn.layers.base import Layer
from minicnn.layers.conv import Conv2D
from minicnn.layers.core import Activation, Flatten, ReLU, Softmax
from minicnn.layers.dense import Dense
from minicnn.layers.pooling import AveragePooling2D, MaxPooling2D

__all__ = ["Activation", "AveragePooling2D", "Conv2D", "Dense", "Flatten", "Layer", "MaxPooling2D", "ReLU", "Softmax"]
