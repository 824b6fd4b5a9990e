"""The Keras Fashion-MNIST tutorial model and its data, as the command line and examples use them."""
import numpy as np

from minicnn.datasets import fashion_mnist
from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential
from minicnn.optimizers import Adam
from minicnn.utils import to_categorical


def build_model(compile=True):
    """Conv2D(64, 3x3) -> ReLU -> MaxPool(2) -> Conv2D(64, 3x3) -> ReLU -> MaxPool(2) -> Flatten
    -> Dense(64) -> Dense(10) -> Softmax; categorical cross-entropy, Adam, accuracy."""
    model = Sequential([
        Conv2D(64, (3, 3), input_shape=(28, 28, 1)), Activation("relu"), MaxPooling2D(pool_size=(2, 2)),
        Conv2D(64, (3, 3)), Activation("relu"), MaxPooling2D(pool_size=(2, 2)),
        Flatten(), Dense(64), Dense(10), Activation("softmax"),
    ], name="fashion_mnist_cnn")
    if compile:
        model.compile(loss="categorical_crossentropy", optimizer=Adam(), metrics=["accuracy"])
    return model


def load_data(data_dir=None, limit=None):
    """((x_train, y_train), (x_test, y_test)): x float32 (N, 28, 28, 1) in [0, 1], y one-hot (N, 10).
    limit: keep the first `limit` images of each split (a quick run)."""
    (x, y), (xt, yt) = fashion_mnist.load_data(path=data_dir)
    if limit is not None:
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit], yt[:limit]
    return (scale(x), to_categorical(y, 10)), (scale(xt), to_categorical(yt, 10))


def scale(images):
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (np.asarray(images).reshape(-1, 28, 28, 1).astype(np.float32) / 255).astype(np.float32)
