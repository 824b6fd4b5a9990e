"""Datasets, loaded as keras.datasets loads them."""
from minicnn.datasets import cifar10, fashion_mnist, mnist
from minicnn.datasets._files import DataFileError, DataNotFoundError

__all__ = ["DataFileError", "DataNotFoundError", "cifar10", "fashion_mnist", "mnist"]
