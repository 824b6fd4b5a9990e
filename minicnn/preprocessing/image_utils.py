"""Image files <-> arrays through Pillow, as keras.utils.load_img / img_to_array / array_to_img."""
import numpy as np

COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False,
             grayscale=False):
    """A Pillow image from a file, in color_mode ("grayscale", "rgb", "rgba"), resized to
    target_size (height, width) with Pillow's `interpolation` ("nearest", "bilinear", "bicubic",
    "lanczos", "box", "hamming") when its size differs."""
    from PIL import Image
    if grayscale:  # Keras 2's older argument
        color_mode = "grayscale"
    if color_mode not in COLOR_MODES:
        raise ValueError(f'Invalid color mode: {color_mode}; expected "rgb", "rgba", or "grayscale".')
    if keep_aspect_ratio:
        raise NotImplementedError("keep_aspect_ratio is not supported by minicnn's load_img")
    methods = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
               "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}
    if interpolation not in methods:
        raise ValueError(f"Invalid interpolation method {interpolation!r}; supported: {', '.join(methods)}")
    with open(path, "rb") as f:
        img = Image.open(f)
        img.load()
    if img.mode != COLOR_MODES[color_mode]:
        img = img.convert(COLOR_MODES[color_mode])
    if target_size is not None:
        size = (int(target_size[1]), int(target_size[0]))  # Pillow's (width, height)
        if img.size != size:
            img = img.resize(size, methods[interpolation])
    return img


def img_to_array(img, data_format=None, dtype="float32"):
    """A Pillow image -> (H, W, C) array (C = 1 for a grayscale image)."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"minicnn's images are channels_last; got data_format={data_format!r}")
    x = np.asarray(img, dtype=dtype)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"Unsupported image shape: {x.shape}")
    return x


def array_to_img(x, data_format=None, scale=True, dtype="float32"):
    """An (H, W, C) array -> a Pillow image (C = 1, 3 or 4); scale=True stretches its values to [0, 255]."""
    from PIL import Image
    if data_format not in (None, "channels_last"):
        raise ValueError(f"minicnn's images are channels_last; got data_format={data_format!r}")
    x = np.array(x, dtype=dtype)
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}")
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    modes = {4: "RGBA", 3: "RGB", 1: "L"}
    if x.shape[2] not in modes:
        raise ValueError(f"Unsupported channel number: {x.shape[2]}")
    pixels = x.astype("uint8")
    return Image.fromarray(pixels[:, :, 0] if x.shape[2] == 1 else pixels, modes[x.shape[2]])
