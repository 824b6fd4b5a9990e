"""Keras 2's ImageDataGenerator: random image transforms drawn per image, on NumPy arrays or
image files, batch by batch. Keras 3 removed it (its random image layers took its place:
minicnn/layers/augmentation.py); tutorials and books still use it, so minicnn runs it as Keras 2
ran it, and says once what Keras 3 writes instead.

The geometry is Keras 2's own (its last versions', which Keras 3 keeps as a private copy): one
3x3 matrix per image, rotation @ shift @ shear @ zoom, moved to the image's centre
(transform_matrix_offset_center), its x and y swapped for NumPy's (row, column) indexing, then
each output pixel (r, c) reads the input at matrix @ (r, c, 1), linearly interpolated as SciPy's
ndimage.affine_transform (order=1) does it; pixels read from outside follow fill_mode. One
consequence Keras 2 users meet: `tx`, drawn from height_shift_range (times the height), moves
the image sideways, and `ty`, from width_shift_range, up and down (a Keras bug never fixed).
The draws are Keras 2's too, call for call on NumPy's RandomState: with the same seed, the
same images come out. (The random image layers' kernel, affine_transform_forward, resamples as
TensorFlow does, whose "wrap" repeats every n pixels and whose "constant" fills per corner: at
the edges Keras 2's images would differ, so the map here is its own, a few lines of NumPy.)
"""
import warnings

import numpy as np

from minicnn.legacy import deprecated
from minicnn.preprocessing.image_utils import array_to_img, img_to_array, load_img  # noqa: F401  (Keras 2's names here)
from minicnn.preprocessing.iterators import DirectoryIterator, NumpyArrayIterator, rng_for

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def transform_matrix_offset_center(matrix, x, y):
    """The matrix about the image's centre: shift the centre to the origin, apply, shift back.
    x, y: the image's height and width (Keras 2's names)."""
    o_x, o_y = float(x) / 2 - 0.5, float(y) / 2 - 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ matrix @ reset


def affine_matrix(theta=0, tx=0, ty=0, shear=0, zx=1, zy=1):
    """Keras 2's 3x3 matrix (or None for the identity): rotation by theta degrees, then a shift
    by (tx, ty), a shear of `shear` degrees and a zoom by (zx, zy), each multiplied on the right."""
    parts = []
    if theta != 0:
        t = np.deg2rad(theta)
        parts.append(np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]))
    if tx != 0 or ty != 0:
        parts.append(np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]))
    if shear != 0:
        s = np.deg2rad(shear)
        parts.append(np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]]))
    if zx != 1 or zy != 1:
        parts.append(np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]]))
    if not parts:
        return None
    matrix = parts[0]
    for part in parts[1:]:
        matrix = np.dot(matrix, part)
    return matrix


def _coordinate(c, n, fill_mode):
    """Where coordinate c (along an axis of n pixels) reads, as SciPy's modes extend the input:
    "nearest" a a | a b c d | d d, "reflect" b a | a b c d | d c, "wrap" with period n - 1
    (the first and last pixels overlap: d is a), "constant" reads NaN outside [0, n - 1] (cval later)."""
    if fill_mode == "nearest":
        return np.clip(c, 0, n - 1)
    if fill_mode == "reflect":  # mirror about the pixel edges -0.5 and n - 0.5
        c = np.mod(c + 0.5, 2 * n)
        c = np.where(c >= n, 2 * n - c, c) - 0.5
        return np.clip(c, 0, n - 1)
    if fill_mode == "wrap":  # moved by whole periods only when outside [0, n - 1], as SciPy
        if n == 1:
            return np.zeros_like(c)
        period = n - 1
        c = np.where(c < 0, c + period * (np.trunc(-c / period) + 1), c)
        return np.where(c > n - 1, c - period * np.trunc(c / period), c)
    return np.where((c >= 0) & (c <= n - 1), c, np.nan)  # constant


def apply_affine_transform(x, theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, row_axis=0, col_axis=1, channel_axis=2,
                           fill_mode="nearest", cval=0.0, order=1):
    """One image x: (H, W, C) (channels last; Keras 2's axis arguments for other layouts) through
    Keras 2's affine map (see the module docstring): output (r, c) reads the input at
    matrix @ (r, c, 1), between pixels by bilinear interpolation (order=1, as Keras 2's default)."""
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    if order != 1:
        raise NotImplementedError(f"interpolation_order={order!r}: minicnn does order 1 (bilinear), Keras 2's default")
    x = np.asarray(x)
    if x.ndim != 3 or sorted((row_axis, col_axis, channel_axis)) != [0, 1, 2]:
        raise ValueError(f"apply_affine_transform takes one image of 3 axes and their three distinct indices, got "
                         f"shape {x.shape}, axes {(row_axis, col_axis, channel_axis)}")
    matrix = affine_matrix(theta, tx, ty, shear, zx, zy)
    if matrix is None:
        return x
    H, W = x.shape[row_axis], x.shape[col_axis]
    matrix = transform_matrix_offset_center(matrix, H, W)
    if col_axis > row_axis:  # x, y -> row, column: P M P with P swapping the first two axes, as Keras 2
        matrix[:, [0, 1]] = matrix[:, [1, 0]]
        matrix[[0, 1]] = matrix[[1, 0]]
    image = np.moveaxis(x, (row_axis, col_axis, channel_axis), (0, 1, 2))
    r = np.arange(H, dtype=np.float64).reshape(H, 1)
    c = np.arange(W, dtype=np.float64).reshape(1, W)
    # (H, W): where each output pixel reads; the offset first, as SciPy sums them (on an edge, the
    # last bit decides between a pixel and cval)
    rows = _coordinate(matrix[0, 2] + matrix[0, 0] * r + matrix[0, 1] * c, H, fill_mode)
    cols = _coordinate(matrix[1, 2] + matrix[1, 0] * r + matrix[1, 1] * c, W, fill_mode)
    outside = np.isnan(rows) | np.isnan(cols)
    rows, cols = np.where(outside, 0, rows), np.where(outside, 0, cols)
    r0, c0 = np.floor(rows).astype(np.intp), np.floor(cols).astype(np.intp)
    s, t = (rows - r0)[..., None], (cols - c0)[..., None]  # how far past the top-left pixel, in [0, 1)
    r1, c1 = np.minimum(r0 + 1, H - 1), np.minimum(c0 + 1, W - 1)  # weight 0 where clipped
    y = ((1 - s) * (1 - t) * image[r0, c0] + (1 - s) * t * image[r0, c1]
         + s * (1 - t) * image[r1, c0] + s * t * image[r1, c1])
    y = np.where(outside[..., None], cval, y).astype(x.dtype)
    return np.moveaxis(y, (0, 1, 2), (row_axis, col_axis, channel_axis))


def flip_axis(x, axis):
    """x reversed along `axis`."""
    return np.flip(np.asarray(x), axis)


def apply_channel_shift(x, intensity, channel_axis=2):
    """Add `intensity` to every channel, clipped to the image's own [min, max] (Keras 2's)."""
    return np.clip(x + intensity, np.min(x), np.max(x))


def apply_brightness_shift(x, brightness, scale=True):
    """Keras 2's brightness: through an 8-bit Pillow image, ImageEnhance.Brightness(brightness)
    (so the result is whole numbers in [0, 255]); images outside [0, 255] are scaled into it and,
    with scale=False, back (ImageDataGenerator passes scale=False)."""
    from PIL import ImageEnhance
    x_min, x_max = np.min(x), np.max(x)
    local_scale = x_min < 0 or x_max > 255
    img = ImageEnhance.Brightness(array_to_img(x, scale=local_scale or scale)).enhance(brightness)
    x = img_to_array(img)
    return x / 255 * (x_max - x_min) + x_min if not scale and local_scale else x


def _range_pair(value, name):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [1 - value, 1 + value]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return [value[0], value[1]]
    raise ValueError(f"`{name}` should be a float or a tuple or list of two floats. Received: {value!r}")


class ImageDataGenerator:
    """Keras 2's keras.preprocessing.image.ImageDataGenerator (Keras 3 removed it: the random
    image layers, minicnn.layers.RandomRotation and its kin, do this inside the model).

    Per image, in this order: a random affine map (rotation_range degrees, width/height_shift_range
    as a fraction of the size (< 1) or pixels, shear_range degrees, zoom_range), a channel shift,
    horizontal/vertical flips, brightness; then standardize: preprocessing_function, rescale,
    sample-wise then feature-wise centring and scaling (the feature-wise statistics from fit(x)).
    flow(x, y) and flow_from_directory(directory) give batches that fit() trains on.
    Channels last only; zca_whitening is not done (a clear error).
    """

    def __init__(self, featurewise_center=False, samplewise_center=False, featurewise_std_normalization=False,
                 samplewise_std_normalization=False, zca_whitening=False, zca_epsilon=1e-6, rotation_range=0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None, shear_range=0.0,
                 zoom_range=0.0, channel_shift_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None, data_format=None,
                 validation_split=0.0, interpolation_order=1, dtype=None):
        deprecated("keras.preprocessing.image.ImageDataGenerator",
                   "random image layers in the model (layers.RandomRotation, RandomTranslation, RandomZoom, "
                   "RandomFlip) and a PyDataset or arrays for the data")
        if zca_whitening:
            raise NotImplementedError("zca_whitening is not supported by minicnn's ImageDataGenerator; "
                                      "featurewise_center and featurewise_std_normalization are")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"minicnn's images are channels_last (N, H, W, C); got data_format={data_format!r}")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
        if interpolation_order != 1:
            raise NotImplementedError(f"interpolation_order={interpolation_order!r}: minicnn does order 1 "
                                      "(bilinear), Keras 2's default")
        if validation_split and not 0 < validation_split < 1:
            raise ValueError(f"`validation_split` must be strictly between 0 and 1.  Received: {validation_split}")
        if brightness_range is not None and (not isinstance(brightness_range, (tuple, list))
                                             or len(brightness_range) != 2):
            raise ValueError(f"`brightness_range should be tuple or list of two floats. Received: {brightness_range}")
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError(f"preprocessing_function must be callable, got {preprocessing_function!r}")
        self.featurewise_center = featurewise_center or featurewise_std_normalization  # the std needs the mean
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_center = samplewise_center or samplewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.zca_whitening, self.zca_epsilon = False, zca_epsilon
        self.rotation_range, self.shear_range = rotation_range, shear_range
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.zoom_range = _range_pair(zoom_range, "zoom_range")
        self.channel_shift_range, self.brightness_range = channel_shift_range, brightness_range
        self.fill_mode, self.cval = fill_mode, cval
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.rescale, self.preprocessing_function = rescale, preprocessing_function
        self.data_format, self.dtype = "channels_last", dtype or "float32"
        self.interpolation_order = 1
        self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        self._validation_split = validation_split
        self.mean = self.std = self.zca_whitening_matrix = None
        self._said_unfit = False

    # -- the random transform -----------------------------------------------------------------
    def get_random_transform(self, img_shape, seed=None):
        """The parameters of one random transform of an image of shape (H, W, C), as a dict for
        apply_transform: Keras 2's draws, in its order (seed: NumPy's RandomState(seed); without
        one, a generator seeded from minicnn's, so minicnn.utils.set_random_seed fixes them)."""
        return self._draw(img_shape, rng_for(seed))

    def _draw(self, img_shape, random):
        """Keras 2's draws from `random` (a np.random.RandomState), one for one."""
        H, W = img_shape[0], img_shape[1]
        theta = random.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0
        tx = _shift(random, self.height_shift_range, H)
        ty = _shift(random, self.width_shift_range, W)
        shear = random.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1, 1
        else:
            zx, zy = random.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_horizontal = (random.random() < 0.5) * self.horizontal_flip
        flip_vertical = (random.random() < 0.5) * self.vertical_flip
        channel_shift_intensity = random.uniform(-self.channel_shift_range, self.channel_shift_range) \
            if self.channel_shift_range != 0 else None
        brightness = random.uniform(*self.brightness_range) if self.brightness_range is not None else None
        return {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                "flip_horizontal": flip_horizontal, "flip_vertical": flip_vertical,
                "channel_shift_intensity": channel_shift_intensity, "brightness": brightness}

    def apply_transform(self, x, transform_parameters):
        """One image x: (H, W, C) through the transform the dict describes (keys as
        get_random_transform's; missing ones do nothing): affine map, channel shift, flips, brightness."""
        p = transform_parameters
        x = apply_affine_transform(x, p.get("theta", 0), p.get("tx", 0), p.get("ty", 0), p.get("shear", 0),
                                   p.get("zx", 1), p.get("zy", 1), fill_mode=self.fill_mode, cval=self.cval)
        if p.get("channel_shift_intensity") is not None:
            x = apply_channel_shift(x, p["channel_shift_intensity"])
        if p.get("flip_horizontal", False):
            x = flip_axis(x, 1)
        if p.get("flip_vertical", False):
            x = flip_axis(x, 0)
        if p.get("brightness") is not None:
            x = apply_brightness_shift(x, p["brightness"], False)
        return x

    def random_transform(self, x, seed=None):
        """One image x: (H, W, C) through a random transform."""
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    # -- standardization ------------------------------------------------------------------------
    def standardize(self, x):
        """Normalise x (an image or a batch) in place where it can, as Keras 2: preprocessing_function,
        rescale, x -= mean(x), x /= std(x) + 1e-6 (sample-wise: over the whole image), then the
        feature-wise mean and std of fit() (per channel)."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, keepdims=True) + 1e-6
        if self.featurewise_center and self.mean is None or self.featurewise_std_normalization and self.std is None:
            if not self._said_unfit:  # Keras 2 warns (every image) and leaves x as it is
                self._said_unfit = True
                warnings.warn("This ImageDataGenerator specifies featurewise_center or featurewise_std_normalization, "
                              "but it hasn't been fit on any training data: call .fit(x_train) first; the images "
                              "are left as they are", stacklevel=2)
            return x
        if self.featurewise_center:
            x -= self.mean
        if self.featurewise_std_normalization:
            x /= self.std + 1e-6
        return x

    def fit(self, x, augment=False, rounds=1, seed=None):
        """The feature-wise statistics of x: (N, H, W, C): the mean and std of each channel over
        every image and pixel (after rescale; with augment=True, over `rounds` random transforms
        of each image)."""
        x = np.array(x, dtype=self.dtype)  # a copy
        if x.ndim != 4:
            raise ValueError(f"Input to `.fit()` should have rank 4. Got array with shape: {x.shape}")
        random = rng_for(seed)
        if self.rescale:
            x *= self.rescale
        if augment:
            x = np.stack([self.apply_transform(image, self._draw(image.shape, random))
                          for _ in range(rounds) for image in x]).astype(self.dtype)
        if self.featurewise_center:
            self.mean = np.mean(x, axis=(0, 1, 2)).reshape(1, 1, -1)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=(0, 1, 2)).reshape(1, 1, -1)

    # -- batches --------------------------------------------------------------------------------
    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None, save_to_dir=None,
             save_prefix="", save_format="png", ignore_class_split=False, subset=None):
        """Batches of transformed images from arrays x: (N, H, W, C), with y (and sample_weight)."""
        if save_to_dir is not None:
            raise NotImplementedError("save_to_dir is not supported by minicnn's ImageDataGenerator")
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
                                  seed=seed, subset=subset, ignore_class_split=ignore_class_split, dtype=self.dtype)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb", classes=None,
                            class_mode="categorical", batch_size=32, shuffle=True, seed=None, save_to_dir=None,
                            save_prefix="", save_format="png", follow_links=False, subset=None,
                            interpolation="nearest", keep_aspect_ratio=False):
        """Batches of transformed images read from directory/<class>/<image>, one subfolder a class."""
        if save_to_dir is not None or keep_aspect_ratio:
            raise NotImplementedError("save_to_dir and keep_aspect_ratio are not supported by minicnn's "
                                      "ImageDataGenerator")
        return DirectoryIterator(directory, self, target_size=target_size, color_mode=color_mode, classes=classes,
                                 class_mode=class_mode, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 follow_links=follow_links, subset=subset, interpolation=interpolation,
                                 dtype=self.dtype)


def _shift(random, shift_range, size):
    """Keras 2's shift draw: a float range f -> uniform(-f, f); an int or list -> one of its values
    (an int n: one of 0 .. n - 1, NumPy's choice) times a random sign; times `size` when below 1."""
    if not shift_range:
        return 0
    try:
        shift = random.choice(shift_range)
        shift *= random.choice([-1, 1])
    except ValueError:  # a float: choice() takes ints and sequences only
        shift = random.uniform(-shift_range, shift_range)
    if np.max(shift_range) < 1:
        shift *= size
    return shift
