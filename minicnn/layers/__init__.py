"""minicnn's layers, with Keras's names, arguments and defaults (channels-last)."""
from minicnn.layers.augmentation import (
    RandomContrast,
    RandomCrop,
    RandomErasing,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from minicnn.layers.base import Layer
from minicnn.layers.conv import Conv2D
from minicnn.layers.conv_transpose import Conv2DTranspose
from minicnn.layers.core import (
    ELU,
    Activation,
    Flatten,
    LeakyReLU,
    ReLU,
    Rescaling,
    Reshape,
    Softmax,
    ZeroPadding2D,
)
from minicnn.layers.dense import Dense
from minicnn.layers.input_layer import Input, InputLayer
from minicnn.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from minicnn.layers.normalization import BatchNormalization
from minicnn.layers.pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from minicnn.layers.preprocessing import Normalization
from minicnn.layers.regularization import Dropout
from minicnn.layers.reshaping import UpSampling2D

__all__ = [
    "ELU",
    "Activation",
    "Add",
    "Average",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Conv2DTranspose",
    "Dense",
    "Dot",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Normalization",
    "RandomContrast",
    "RandomCrop",
    "RandomErasing",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "ReLU",
    "Rescaling",
    "Reshape",
    "Softmax",
    "Subtract",
    "UpSampling2D",
    "ZeroPadding2D",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]
