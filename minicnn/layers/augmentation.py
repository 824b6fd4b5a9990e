"""Data augmentation: Keras 3's random image layers, active only in training.

Each layer draws its random parameters per batch (one per image, or one for the batch where Keras
does so), applies them while training, and is the identity at inference (evaluate, predict,
model(x)), so a model trained with them is used as it is. x: (N, H, W, C) -> y: (N, H, W, C)
(RandomCrop: (N, height, width, C)). The draws come from minicnn's generator
(minicnn.utils.set_random_seed), or from the layer's own when seed= is given.

The geometric ones (RandomTranslation, RandomRotation, RandomZoom) build one affine map per image,
in Keras's (TensorFlow's) form, and resample the image through it with the kernel
affine_transform_forward (minicnn/kernels/reference.py: the map and the interpolation written out;
a compiled twin in numba_kernels.py). Each keeps what its backward needs, so a gradient flows
through an augmentation layer placed anywhere; as the model's first layers, they compute none.
"""
import numpy as np

from minicnn import backend, gpu
from minicnn.layers.base import Layer
from minicnn.registry import register_serializable
from minicnn.utils import rng

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def _factor(factor, name, low=-1.0, high=1.0, symmetric=True):
    """Keras's range of a factor: a number f -> (-f, f) (or, for symmetric=False, (0, f)); a pair -> sorted."""
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(isinstance(f, (int, float)) for f in factor):
            raise ValueError(f"{name} must be a number or a pair of numbers, got {factor!r}")
        lower, upper = sorted(float(f) for f in factor)
    elif isinstance(factor, (int, float)) and not isinstance(factor, bool):
        f = abs(float(factor))
        lower, upper = (-f, f) if symmetric else (max(-f, low), f)
    else:  # Keras raises ValueError here
        raise ValueError(f"{name} must be a number or a pair of numbers, got {factor!r}")  # noqa: TRY004
    if lower < low or upper > high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {factor!r}")
    return lower, upper


class RandomImageLayer(Layer):
    """What the random image layers share: a seed, training-only application, and a backward
    for the layers whose transform is linear in x."""

    data_only = True  # no weights, and nothing before it needs a gradient: see Layer.data_only
    inference_gradient = "identity"  # the identity at inference: what a tape differentiates then

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer {self.name!r} takes batches of images (N, H, W, C), got inputs of shape "
                             f"{input_shape}")

    def random(self):
        """The generator of the draws: the layer's own (seed=) or minicnn's."""
        return self._rng or rng()

    def call(self, x, training=False):
        if not training:
            return x
        y, self._cache = self.augment(x)
        return y

    def augment(self, x):
        """x: (N, H, W, C) -> (y, what backward needs): one random transform of the batch."""
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class _AffineLayer(RandomImageLayer):
    """A random affine map per image, resampled by the affine_transform kernel."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if fill_mode not in FILL_MODES:
            raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one {FILL_MODES}.")
        if interpolation not in INTERPOLATIONS:
            raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of one {INTERPOLATIONS}.")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)

    def transforms(self, N, H, W):
        """(N, 8) float32: each image's map from output pixel to input point, as Keras builds it."""
        raise NotImplementedError

    def augment(self, x):
        t = self.transforms(len(x), x.shape[1], x.shape[2])
        return backend.kernels_for(x).affine_transform_forward(x, gpu.as_like(t, x), self.interpolation,
                                                               self.fill_mode, self.fill_value)

    def backward(self, dy):
        """The resampling is linear in x: dx is its adjoint applied to dy (identity after inference)."""
        if self._cache is None:
            return dy
        if not self.input_grad:
            return None
        return backend.kernels_for(dy).affine_transform_backward(dy, self._cache)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


@register_serializable()
class RandomTranslation(_AffineLayer):
    """Shift each image by a random fraction of its size, as keras.layers.RandomTranslation.

    Args:
        height_factor (float | tuple): f (a shift in [-f, f] of the height) or (lower, upper), within
            [-1, 1]; a positive shift moves the image down.
        width_factor (float | tuple): the same for the width; a positive shift moves it right.
        fill_mode (str): "reflect", "wrap", "constant" or "nearest": what fills the pixels that come from
            outside. Defaults to "reflect".
        interpolation (str): "bilinear" or "nearest". Defaults to "bilinear".
        seed (int | None): the layer's own generator. Defaults to None (minicnn's).
        fill_value (float): the fill of fill_mode="constant". Defaults to 0.0.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_range = _factor(height_factor, "height_factor")
        self.width_range = _factor(width_factor, "width_factor")

    def transforms(self, N, H, W):
        # Keras's order of draws: the rows' shifts, then the columns'; in pixels
        dy = self.random().uniform(*self.height_range, size=N) * H
        dx = self.random().uniform(*self.width_range, size=N) * W
        t = np.zeros((N, 8), np.float32)
        t[:, 0] = t[:, 4] = 1
        t[:, 2], t[:, 5] = -dx, -dy  # output (i, j) reads input (i - dy, j - dx)
        return t

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


@register_serializable()
class RandomRotation(_AffineLayer):
    """Rotate each image about its centre by a random angle, as keras.layers.RandomRotation.

    Args:
        factor (float | tuple): f (an angle in [-f, f] turns, 2 pi each: 0.1 is up to 36 degrees
            either way) or (lower, upper); a positive angle turns the image counter-clockwise.
        fill_mode (str): "reflect", "wrap", "constant" or "nearest": what fills the pixels that come from
            outside. Defaults to "reflect".
        interpolation (str): "bilinear" or "nearest". Defaults to "bilinear".
        seed (int | None): the layer's own generator. Defaults to None (minicnn's).
        fill_value (float): the fill of fill_mode="constant". Defaults to 0.0.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = factor
        self.range = _factor(factor, "factor")

    def transforms(self, N, H, W):
        angle = np.radians(self.random().uniform(self.range[0] * 360, self.range[1] * 360, size=N))
        return rotation_transforms(angle, H, W)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def rotation_transforms(angle, H, W):
    """(N, 8): rotation by angle (radians, (N,)) about the image's centre ((W - 1) / 2, (H - 1) / 2),
    Keras's matrix: output (x, y) reads input R (x - centre) + centre, R = [[cos, -sin], [sin, cos]]."""
    cx, cy = (W - 1) / 2, (H - 1) / 2
    cos, sin = np.cos(angle), np.sin(angle)
    t = np.zeros((len(angle), 8), np.float32)
    t[:, 0], t[:, 1], t[:, 2] = cos, -sin, cx - cx * cos + cy * sin
    t[:, 3], t[:, 4], t[:, 5] = sin, cos, cy - cx * sin - cy * cos
    return t


@register_serializable()
class RandomZoom(_AffineLayer):
    """Zoom each image in or out about its centre, as keras.layers.RandomZoom.

    Args:
        height_factor (float | tuple): f or (lower, upper) in (-1, 1]: the image's height is read
            1 + z times as large, z drawn in that range, so a positive z zooms *out* and a negative
            one zooms in (Keras's convention).
        width_factor (float | tuple | None): the same for the width. Defaults to None (the aspect ratio
            kept).
        fill_mode (str): "reflect", "wrap", "constant" or "nearest": what fills the pixels that come from
            outside. Defaults to "reflect".
        interpolation (str): "bilinear" or "nearest". Defaults to "bilinear".
        seed (int | None): the layer's own generator. Defaults to None (minicnn's).
        fill_value (float): the fill of fill_mode="constant". Defaults to 0.0.

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_range = _factor(height_factor, "height_factor")
        self.width_range = None if width_factor is None else _factor(width_factor, "width_factor")
        if self.height_range[0] <= -1 or (self.width_range and self.width_range[0] <= -1):
            raise ValueError(f"zoom factors must lie in (-1, 1], got {height_factor!r}, {width_factor!r}")

    def transforms(self, N, H, W):
        zy = 1 + self.random().uniform(*self.height_range, size=N)
        zx = zy if self.width_range is None else 1 + self.random().uniform(*self.width_range, size=N)
        t = np.zeros((N, 8), np.float32)
        t[:, 0], t[:, 2] = zx, (W - 1) / 2 * (1 - zx)  # output x reads input centre + zx (x - centre)
        t[:, 4], t[:, 5] = zy, (H - 1) / 2 * (1 - zy)
        return t

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


@register_serializable()
class RandomFlip(RandomImageLayer):
    """Flip each image with probability 1/2, as keras.layers.RandomFlip.

    Args:
        mode (str): "horizontal" (left-right), "vertical" (up-down) or "horizontal_and_vertical"
            (both at once: as in Keras, one draw decides for the two, so the image turns by 180
            degrees or stays). Defaults to "horizontal_and_vertical".
        seed (int | None): the layer's own generator. Defaults to None (minicnn's).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in self.MODES:
            raise ValueError(f"RandomFlip layer {self.name} received an unknown mode argument {mode!r}; "
                             f"expected one of {self.MODES}")
        self.mode = mode

    def flip(self, x, flips):
        """x with the images where flips (N,) is True flipped."""
        xp = gpu.array_module(x)
        flips = gpu.as_like(flips, x).reshape(-1, 1, 1, 1)
        if self.mode != "vertical":
            x = xp.where(flips, x[:, :, ::-1], x)
        if self.mode != "horizontal":
            x = xp.where(flips, x[:, ::-1], x)
        return x

    def augment(self, x):
        flips = self.random().uniform(size=len(x)) <= 0.5  # Keras flips where its draw is <= 0.5
        return self.flip(x, flips), flips

    def backward(self, dy):
        """A flip only moves values: dx is dy flipped back, image by image."""
        if self._cache is None:
            return dy
        return self.flip(dy, self._cache) if self.input_grad else None

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@register_serializable()
class RandomCrop(RandomImageLayer):
    """Crop a random (height, width) window, as keras.layers.RandomCrop: one window for the whole
    batch, as Keras draws it. x: (N, H, W, C) -> y: (N, height, width, C).

    At inference, or when the input is not larger than the window, it returns the largest centred
    window of the target's aspect ratio, resized to (height, width) with bilinear interpolation:
    what Keras's documentation describes (Keras 3.15 itself returns such inputs uncropped).

    Args:
        height (int): the crop's height.
        width (int): the crop's width.
        seed (int | None): the layer's own generator. Defaults to None (minicnn's).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.height, self.width = int(height), int(width)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.height, self.width, input_shape[-1])

    def call(self, x, training=False):
        H, W = x.shape[1:3]
        if training and H > self.height and W > self.width:
            top = int(self.random().uniform(0, H - self.height + 1))
            left = int(self.random().uniform(0, W - self.width + 1))
            self._cache = ("crop", x.shape, top, left)
            return x[:, top:top + self.height, left:left + self.width]
        if (H, W) == (self.height, self.width):
            self._cache = ("same",) if training else None
            return x
        # the largest centred window with the target's aspect ratio, resized (TensorFlow's half-pixel bilinear)
        ch = max(min(H, int(W * self.height / self.width)), 1)
        cw = max(min(W, int(H * self.width / self.height)), 1)
        top, left = int((H - ch) / 2), int((W - cw) / 2)
        Ry, Rx = (gpu.as_like(resize_matrix(n_in, n_out, x.dtype), x) for n_in, n_out in ((ch, self.height), (cw, self.width)))
        xp = gpu.array_module(x)
        if training:
            self._cache = ("resize", x.shape, top, left, ch, cw, Ry, Rx)
        return xp.einsum("ih,nhwc,jw->nijc", Ry, x[:, top:top + ch, left:left + cw], Rx)

    def backward(self, dy):
        """The crop's gradient is dy put back in its window, zeros elsewhere (a resize: its transpose)."""
        if self._cache is None or self._cache[0] == "same":
            return dy
        if not self.input_grad:
            return None
        xp = gpu.array_module(dy)
        kind, shape, top, left = self._cache[:4]
        dx = xp.zeros(shape, dtype=dy.dtype)
        if kind == "crop":
            dx[:, top:top + self.height, left:left + self.width] = dy
        else:
            _, _, _, _, ch, cw, Ry, Rx = self._cache
            dx[:, top:top + ch, left:left + cw] = xp.einsum("ih,nijc,jw->nhwc", Ry, dy, Rx)
        return dx

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


@register_serializable()
class RandomContrast(RandomImageLayer):
    """Scale each image's contrast by a random factor, as keras.layers.RandomContrast:
    y = clip((x - mean) * a + mean, value_range), mean over H and W per channel and image.

    Args:
        factor (float | tuple): as Keras 3.15 reads it, a number f draws a in [1, 1 + f] (contrast
            only raised) and a pair (lower, upper) draws a in [1 - lower, 1 + upper]: pass
            (0.2, 0.2) for [0.8, 1.2].
        value_range (tuple): the pixels' range; (0, 1) for scaled images. Defaults to (0, 255), as
            Keras.
        seed (int | None): the layer's own generator. Defaults to None (minicnn's).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = factor
        self.range = _factor(factor, "factor", low=0.0, high=1.0, symmetric=False)
        if len(value_range) != 2 or value_range[0] >= value_range[1]:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
        self.value_range = tuple(float(v) for v in value_range)

    def augment(self, x):
        a = self.random().uniform(1 - self.range[0], 1 + self.range[1], size=(len(x), 1, 1, 1))
        a = gpu.as_like(a.astype(x.dtype), x)
        mean = x.mean(axis=(1, 2), keepdims=True)
        z = (x - mean) * a + mean
        y = gpu.array_module(x).clip(z, *self.value_range).astype(x.dtype)
        return y, (a, y == z)

    def backward(self, dy):
        """y = a x + (1 - a) mean(x) where not clipped: dx = a g + (1 - a) mean(g), g = dy where not clipped."""
        if self._cache is None:
            return dy
        if not self.input_grad:
            return None
        a, inside = self._cache
        g = dy * inside
        return a * g + (1 - a) * g.mean(axis=(1, 2), keepdims=True)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": list(self.value_range)}


@register_serializable()
class RandomErasing(RandomImageLayer):
    """Erase a random rectangle of each image, as keras.layers.RandomErasing: its pixels (every
    channel) take the fill. y = where(erased, fill, x); at inference y = x.

    Keras's draws, per image: a, b uniform in scale; the patch is sqrt(a) W wide and sqrt(b) H
    high (so its area is sqrt(a b) of the image's, within scale), at a uniform position inside
    the image; it covers the pixels x0 <= column < x0 + width, y0 <= row < y0 + height. It is
    erased with probability p, itself drawn per image uniform in factor's range.

    Args:
        factor (float | tuple): the range of p, as Keras 3.15 reads it: a number f draws p in
            [0, f] (factor=1.0 erases half of the images on average), a pair (lower, upper) in
            [lower, upper]: pass (0.5, 0.5) to erase each image with probability 0.5. Within [0, 1].
            Defaults to 1.0.
        scale (float | tuple): the range of a and b above, within [0, 1] (a number s: [0, s]).
            Defaults to (0.02, 0.33).
        fill_value (float | tuple | None): the patch's value, or one value per channel (three, as
            Keras), or None: Gaussian noise, standard deviation value_range[1], drawn per pixel.
            Clipped to value_range. Defaults to None.
        value_range (tuple): the pixels' range; (0, 1) for scaled images. Defaults to (0, 255), as
            Keras.
        seed (int | None): the layer's own generator. Defaults to None (minicnn's).

    Also the keywords of every layer: name, dtype, input_shape, trainable (see Layer).
    """

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _unit_range(factor, "factor")
        self.scale = _unit_range(scale, "scale")
        if fill_value is not None and not (_is_number(fill_value) or (
                isinstance(fill_value, (tuple, list)) and len(fill_value) == 3 and all(map(_is_number, fill_value)))):
            raise ValueError(f"The `fill_value` argument should be a number (or a list of three numbers), got "
                             f"{fill_value!r}")
        self.fill_value = list(map(float, fill_value)) if isinstance(fill_value, (tuple, list)) else \
            None if fill_value is None else float(fill_value)
        if len(value_range) != 2 or value_range[0] >= value_range[1]:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
        self.value_range = tuple(float(v) for v in value_range)

    def patches(self, N, H, W):
        """Keras's draws, in its order: the patches' corners (x0, x1, y0, y1), each (N,) in pixels
        (floats: the patch holds the pixels x0 <= column < x1, y0 <= row < y1), and erase (N,) bool."""
        r = self.random()
        sides = np.sqrt(r.uniform(*self.scale, size=(N, 2)))  # width / W and height / H
        width, height = sides[:, 0] * W, sides[:, 1] * H
        x0 = r.uniform(size=N) * (W - width)
        y0 = r.uniform(size=N) * (H - height)
        p = r.uniform(*self.factor, size=N)
        erase = r.uniform(size=N) < p
        return (x0, x0 + width, y0, y0 + height), erase

    def fill(self, shape, dtype):
        """The values of erased pixels, clipped to value_range: noise of shape (N, H, W, C), or
        the fill broadcast from (C,) or ()."""
        if self.fill_value is None:
            fill = self.random().standard_normal(shape) * self.value_range[1]
        else:
            if isinstance(self.fill_value, list) and shape[-1] != 3:
                raise ValueError(f"fill_value {self.fill_value} has three values (one per channel); the images "
                                 f"have {shape[-1]} channels")
            fill = np.asarray(self.fill_value)
        return np.clip(fill, *self.value_range).astype(dtype)

    def augment(self, x):
        N, H, W = x.shape[:3]
        corners, erase = self.patches(N, H, W)
        erased = gpu.as_like(patch_mask(corners, H, W) & erase[:, None, None, None], x)
        y = gpu.array_module(x).where(erased, gpu.as_like(self.fill(x.shape, x.dtype), x), x)
        return y, erased

    def backward(self, dy):
        """The erased pixels no longer depend on x: dx = dy elsewhere, 0 on the patch."""
        if self._cache is None:
            return dy
        return gpu.array_module(dy).where(self._cache, dy.dtype.type(0), dy) if self.input_grad else None

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": list(self.scale),
                "fill_value": self.fill_value, "value_range": list(self.value_range)}


def patch_mask(corners, H, W):
    """(N, H, W, 1) bool: True on the pixels of each patch, corners = (x0, x1, y0, y1), each (N,):
    x0 <= column < x1 and y0 <= row < y1, Keras's test (a corner on a pixel takes it in at the
    start, leaves it out at the end)."""
    x0, x1, y0, y1 = (np.asarray(c)[:, None] for c in corners)
    rows, cols = np.arange(H), np.arange(W)
    in_rows, in_cols = (rows >= y0) & (rows < y1), (cols >= x0) & (cols < x1)  # (N, H), (N, W)
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None]


def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _unit_range(factor, name):
    """Keras's range of a probability-like argument: a number f in [0, 1] -> (0, f), a pair ->
    sorted; both ends within [0, 1]."""
    message = f"The `{name}` argument should be a number (or a list of two numbers) in the range [0, 1]. " \
              f"Received: {name}={factor!r}"
    if isinstance(factor, (tuple, list)) and len(factor) == 2 and all(map(_is_number, factor)):
        lower, upper = sorted(float(f) for f in factor)
    elif _is_number(factor):
        lower, upper = 0.0, float(factor)
    else:
        raise ValueError(message)
    if lower < 0 or upper > 1:
        raise ValueError(message)
    return lower, upper


def resize_matrix(n_in, n_out, dtype):
    """(n_out, n_in): bilinear resizing of one axis as a matrix, TensorFlow's half-pixel rule:
    output o reads input p = (o + 0.5) n_in / n_out - 0.5, between floor(p) and ceil(p), both
    clamped into the image, weighted 1 - (p - floor p) and p - floor p. A resize of an image is
    R_rows @ image @ R_cols^T, and its gradient the same with the transposes."""
    p = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    low = np.floor(p)
    lerp = p - low
    R = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(R, (rows, np.clip(low, 0, n_in - 1).astype(int)), 1 - lerp)
    np.add.at(R, (rows, np.clip(np.ceil(p), 0, n_in - 1).astype(int)), lerp)
    return R.astype(dtype)
