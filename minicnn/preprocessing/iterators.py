"""The batches of an ImageDataGenerator: from arrays (flow) or from image files (flow_from_directory).

Each iterator is a PyDataset, so model.fit(iterator) and fit_generator take it: batch i is
iterator[i] (len(iterator) of them an epoch, reshuffled after each), and next(iterator) loops
forever, as Keras 2's did. Keras 2 reseeds NumPy's global generator with seed + (batches given so
far) before each batch, and draws the shuffle and every image's transform from it; here a
RandomState of that same seed gives the same draws without touching NumPy's global state.
"""
import os

import numpy as np

from minicnn.preprocessing.image_utils import img_to_array, load_img
from minicnn.utils import PyDataset, rng

IMAGE_FORMATS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
CLASS_MODES = ("categorical", "binary", "sparse", "input", None)


def rng_for(seed):
    """NumPy's RandomState of `seed` (Keras 2's np.random.seed(seed)), or, without one, one
    seeded from minicnn's generator (minicnn.utils.set_random_seed makes it repeatable)."""
    return np.random.RandomState(seed if seed is not None else int(rng().integers(2**32)))


class Iterator(PyDataset):
    """n samples in batches of batch_size (the last may be smaller), shuffled each epoch."""

    def __init__(self, n, batch_size, shuffle, seed):
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.n, self.batch_size, self.shuffle, self.seed = n, int(batch_size), shuffle, seed
        self.batch_index = self.total_batches_seen = 0
        self.index_array = None
        self._random = None if seed is not None else rng_for(None)

    def _next_random(self):
        """The generator of the next batch's draws (see the module docstring)."""
        if self.seed is not None:
            self._random = np.random.RandomState(self.seed + self.total_batches_seen)
        self.total_batches_seen += 1
        return self._random

    def _set_index_array(self):
        random = self._random if self._random is not None else rng_for(None)  # on_epoch_end before any batch
        self.index_array = random.permutation(self.n) if self.shuffle else np.arange(self.n)

    def __len__(self):
        return (self.n + self.batch_size - 1) // self.batch_size

    def __getitem__(self, idx):
        if not 0 <= idx < len(self):
            raise IndexError(f"Asked to retrieve element {idx}, but the Sequence has length {len(self)}")
        random = self._next_random()
        if self.index_array is None:
            self._set_index_array()
        return self._batch(self.index_array[self.batch_size * idx:self.batch_size * (idx + 1)], random)

    def on_epoch_end(self):
        self._set_index_array()

    def reset(self):
        self.batch_index = 0

    def __iter__(self):
        return self

    def __next__(self):
        """The next batch, without end: Keras 2's generator protocol (fit_generator, next(it))."""
        random = self._next_random()
        if self.batch_index == 0:
            self._set_index_array()
        start = (self.batch_index * self.batch_size) % self.n if self.n else 0
        self.batch_index = self.batch_index + 1 if self.n > start + self.batch_size else 0
        return self._batch(self.index_array[start:start + self.batch_size], random)

    next = __next__  # Keras 2's iterator.next()

    def _transformed(self, x, random):
        """One image through the generator's random transform and standardize, as float32."""
        g = self.image_data_generator
        x = g.apply_transform(x.astype(self.dtype), g._draw(x.shape, random))
        return g.standardize(x)

    def _batch(self, index_array, random):
        raise NotImplementedError


def _split(n, subset, validation_split):
    """The [start, stop) of a subset: "validation" is the first validation_split of the samples."""
    if subset is None:
        return 0, n
    if subset not in ("training", "validation"):
        raise ValueError(f'Invalid subset name: {subset}; expected "training" or "validation".')
    cut = int(n * validation_split)
    return (0, cut) if subset == "validation" else (cut, n)


class NumpyArrayIterator(Iterator):
    """Batches of x: (N, H, W, C) transformed, with y and sample_weight as they are."""

    def __init__(self, x, y, image_data_generator, batch_size=32, shuffle=False, sample_weight=None, seed=None,
                 subset=None, ignore_class_split=False, dtype="float32"):
        x = np.asarray(x)
        if y is not None and len(x) != len(y):
            raise ValueError(f"`x` (images tensor) and `y` (labels) should have the same length. Found: "
                             f"x.shape = {x.shape}, y.shape = {np.asarray(y).shape}")
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError(f"`x` (images tensor) and `sample_weight` should have the same length. Found: "
                             f"x.shape = {x.shape}, sample_weight.shape = {np.asarray(sample_weight).shape}")
        if x.ndim != 4:
            raise ValueError(f"Input data in `NumpyArrayIterator` should have rank 4. You passed an array with "
                             f"shape {x.shape}")
        start, stop = _split(len(x), subset, image_data_generator._validation_split)
        if subset is not None and y is not None and not ignore_class_split:
            cut = int(len(x) * image_data_generator._validation_split)
            if not np.array_equal(np.unique(np.asarray(y)[:cut]), np.unique(np.asarray(y)[cut:])):
                raise ValueError("Training and validation subsets have different number of classes after the "
                                 "split. If your numpy arrays are sorted by the label, you might want to shuffle them.")
        self.dtype = dtype
        self.x = np.asarray(x[start:stop], dtype=dtype)
        self.y = None if y is None else np.asarray(y)[start:stop]
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)[start:stop]
        self.image_data_generator = image_data_generator
        super().__init__(len(self.x), batch_size, shuffle, seed)

    def _batch(self, index_array, random):
        batch_x = np.zeros((len(index_array),) + self.x.shape[1:], dtype=self.dtype)
        for i, j in enumerate(index_array):
            batch_x[i] = self._transformed(self.x[j], random)
        if self.y is None:
            return batch_x
        return (batch_x, self.y[index_array]) + (() if self.sample_weight is None else
                                                 (self.sample_weight[index_array],))


class DirectoryIterator(Iterator):
    """Batches of the images in directory/<class>/..., read with Pillow and resized to target_size;
    a class is a subfolder (sorted by name, or `classes`), and class_mode gives the targets:
    "categorical" one-hot, "binary" and "sparse" the class index, "input" the images, None none."""

    def __init__(self, directory, image_data_generator, target_size=(256, 256), color_mode="rgb", classes=None,
                 class_mode="categorical", batch_size=32, shuffle=True, seed=None, follow_links=False,
                 subset=None, interpolation="nearest", dtype="float32"):
        if class_mode not in CLASS_MODES:
            raise ValueError(f"Invalid class_mode: {class_mode}; expected one of: {CLASS_MODES}")
        if color_mode not in ("rgb", "rgba", "grayscale"):
            raise ValueError(f'Invalid color mode: {color_mode}; expected "rgb", "rgba", or "grayscale".')
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"flow_from_directory: {directory!r} is not a folder")
        self.directory, self.image_data_generator, self.dtype = directory, image_data_generator, dtype
        self.target_size, self.color_mode = tuple(target_size), color_mode
        self.image_shape = self.target_size + ({"rgb": 3, "rgba": 4, "grayscale": 1}[color_mode],)
        self.class_mode, self.interpolation = class_mode, interpolation
        if not classes:
            classes = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
        self.num_classes = len(classes)
        self.class_indices = dict(zip(classes, range(len(classes))))
        self.filenames, labels = [], []
        for name in classes:
            files = list(_image_files(os.path.join(directory, name), follow_links))
            start, stop = _split(len(files), subset, image_data_generator._validation_split)
            self.filenames += [os.path.join(name, f) for f in files[start:stop]]
            labels += [self.class_indices[name]] * (stop - start)
        self.classes = np.array(labels, dtype="int32")
        self.samples = len(self.filenames)
        self.filepaths = [os.path.join(directory, f) for f in self.filenames]
        print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        super().__init__(self.samples, batch_size, shuffle, seed)

    @property
    def labels(self):
        return self.classes

    def _batch(self, index_array, random):
        batch_x = np.zeros((len(index_array),) + self.image_shape, dtype=self.dtype)
        for i, j in enumerate(index_array):
            img = load_img(self.filepaths[j], color_mode=self.color_mode, target_size=self.target_size,
                           interpolation=self.interpolation)
            batch_x[i] = self._transformed(img_to_array(img, dtype=self.dtype), random)
        if self.class_mode is None:
            return batch_x
        if self.class_mode == "input":
            return batch_x, batch_x.copy()
        if self.class_mode in ("binary", "sparse"):
            return batch_x, self.classes[index_array].astype(self.dtype)
        batch_y = np.zeros((len(batch_x), self.num_classes), dtype=self.dtype)
        batch_y[np.arange(len(batch_x)), self.classes[index_array]] = 1.0
        return batch_x, batch_y


def _image_files(folder, follow_links):
    """The image files under folder (its subfolders too), as paths relative to it, in Keras's order."""
    for root, _, files in sorted(os.walk(folder, followlinks=follow_links), key=lambda walk: walk[0]):
        for name in sorted(files):
            if name.lower().endswith(IMAGE_FORMATS):
                yield os.path.relpath(os.path.join(root, name), folder)
