"""Keras 2's keras.preprocessing: `image` (ImageDataGenerator, load_img, img_to_array)."""
from minicnn.preprocessing import image  # noqa: F401
