"""The random image layers (minicnn/layers/augmentation.py) and the affine resampling kernel: against
Keras on the same random parameters, against transforms written independently here, compiled
twin against reference on a grid, finite differences, seeds, inference, saving and errors."""
import numpy as np
import pytest

from minicnn.gradcheck import check_layer
from minicnn.kernels import numba_kernels, reference
from minicnn.layers import (
    Conv2D,
    Dense,
    Flatten,
    Input,
    RandomContrast,
    RandomCrop,
    RandomErasing,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from minicnn.layers.augmentation import patch_mask
from minicnn.models import Model, Sequential, load_model
from minicnn.utils import set_random_seed


@pytest.fixture
def images():
    return np.random.default_rng(0).random((5, 9, 11, 2), dtype=np.float32)


def fixed(layer, seed=0):
    """The layer, drawing the same random parameters at every call (for finite differences)."""
    layer.random = lambda: np.random.default_rng(seed)
    return layer


def random_maps(rng, N, projective=True):
    """(N, 8) affine maps that read inside and outside the image, rotated, sheared and scaled."""
    t = np.zeros((N, 8), np.float32)
    t[:, [0, 4]] = rng.uniform(0.6, 1.4, (N, 2))
    t[:, [1, 3]] = rng.uniform(-0.5, 0.5, (N, 2))
    t[:, [2, 5]] = rng.uniform(-8, 8, (N, 2))
    if projective:
        t[:, 6:] = rng.uniform(-0.02, 0.02, (N, 2))
    return t


# -- the kernel ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_kernel_matches_tensorflow(keras, fill_mode, interpolation):
    rng = np.random.default_rng(1)
    x = rng.random((4, 7, 10, 3), dtype=np.float32)
    t = random_maps(rng, 4)
    expected = np.asarray(keras.ops.image.affine_transform(x, t, interpolation=interpolation, fill_mode=fill_mode,
                                                           fill_value=0.25))
    for kernels in (reference, numba_kernels):
        y, _ = kernels.affine_transform_forward(x, t, interpolation, fill_mode, 0.25)
        np.testing.assert_allclose(y, expected, atol=2e-6, err_msg=kernels.__name__)


SHAPES = [(1, 5, 7, 3), (2, 9, 9, 1), (3, 4, 13, 2), (1, 1, 6, 1), (2, 28, 28, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_twin_matches_the_reference(shape, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    t = random_maps(rng, shape[0])
    t[0] = [1, 0, -2, 0, 1, 3, 0, 0]  # an integer shift: every read on a pixel centre (ties of rounding)
    for fill_mode in ("reflect", "wrap", "constant", "nearest"):
        for interpolation in ("bilinear", "nearest"):
            y, ctx = reference.affine_transform_forward(x, t, interpolation, fill_mode, 0.5)
            y2, ctx2 = numba_kernels.affine_transform_forward(x, t, interpolation, fill_mode, 0.5)
            assert y2.dtype == y.dtype == dtype
            np.testing.assert_allclose(y2, y, atol=1e-5, err_msg=f"{fill_mode} {interpolation}")
            dx = reference.affine_transform_backward(dy, ctx)
            dx2 = numba_kernels.affine_transform_backward(dy, ctx2)
            assert dx2.dtype == dx.dtype == dtype
            np.testing.assert_allclose(dx2, dx, atol=1e-5, err_msg=f"{fill_mode} {interpolation}")


def test_integer_shift_is_a_plain_shift_with_the_fill(images):
    """Written independently: shifting by (2 rows, -3 columns) with a constant fill is slicing."""
    t = np.tile(np.array([1, 0, 3, 0, 1, -2, 0, 0], np.float32), (len(images), 1))  # reads (i - 2, j + 3)
    for kernels in (reference, numba_kernels):
        y, _ = kernels.affine_transform_forward(images, t, "bilinear", "constant", 7.0)
        expected = np.full_like(images, 7.0)
        expected[:, 2:, :-3] = images[:, :-2, 3:]
        np.testing.assert_array_equal(y, expected)


def test_the_backward_is_the_adjoint():
    """<A x, dy> == <x, A^T dy> for the linear map A of one transform, in float64."""
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((2, 6, 8, 2)), rng.standard_normal((2, 6, 8, 2))
    t = random_maps(rng, 2)
    for kernels in (reference, numba_kernels):
        for fill_mode in ("reflect", "constant", "wrap", "nearest"):
            y, ctx = kernels.affine_transform_forward(x, t, "bilinear", fill_mode, 0.0)
            assert np.isclose((y * dy).sum(), (x * kernels.affine_transform_backward(dy, ctx)).sum(), rtol=1e-10)


# -- each layer against Keras, on the same random parameters ------------------------------------------
def test_translation_against_keras(keras, images):
    layer = RandomTranslation(0.3, (-0.2, 0.4), fill_mode="constant", fill_value=0.5, seed=4)
    k = keras.layers.RandomTranslation(0.3, (-0.2, 0.4), fill_mode="constant", fill_value=0.5)
    assert (k.height_lower, k.height_upper, k.width_lower, k.width_upper) == (*layer.height_range, *layer.width_range)
    t = layer.transforms(*images.shape[:3])
    translations = np.stack([-t[:, 2], -t[:, 5]], axis=1)  # Keras's (dx, dy) in pixels
    expected = k.transform_images(images, {"translations": translations, "input_shape": images.shape})
    y, _ = reference.affine_transform_forward(images, t, "bilinear", "constant", 0.5)
    np.testing.assert_allclose(y, np.asarray(expected), atol=2e-6)
    assert np.all(np.abs(translations[:, 1]) <= 0.3 * 9) and np.all(translations[:, 0] >= -0.2 * 11)


def test_rotation_against_keras(keras, images):
    layer = RandomRotation(0.2, seed=5)
    k = keras.layers.RandomRotation(0.2)
    assert tuple(k.factor) == layer.range
    t = layer.transforms(*images.shape[:3])
    degrees = np.degrees(np.arctan2(t[:, 3], t[:, 0]))
    assert np.all(np.abs(degrees) <= 0.2 * 360)
    N = len(images)
    matrix = k._compute_affine_matrix(center_x=0.5, center_y=0.5, angle=degrees.astype(np.float32),
                                      translate_x=np.zeros(N, np.float32), translate_y=np.zeros(N, np.float32),
                                      scale=np.ones(N, np.float32), shear_x=np.zeros(N, np.float32),
                                      shear_y=np.zeros(N, np.float32), height=9, width=11)
    np.testing.assert_allclose(t, np.asarray(matrix), atol=1e-5)
    expected = k.transform_images(images, {"rotation_matrix": matrix}, training=True)
    y, _ = reference.affine_transform_forward(images, t, "bilinear", "reflect", 0.0)
    np.testing.assert_allclose(y, np.asarray(expected), atol=5e-5)


@pytest.mark.parametrize("width_factor", [None, (-0.3, 0.1)])
def test_zoom_against_keras(keras, images, width_factor):
    layer = RandomZoom(0.25, width_factor, interpolation="nearest", fill_mode="wrap", seed=6)
    k = keras.layers.RandomZoom(0.25, width_factor, interpolation="nearest", fill_mode="wrap")
    t = layer.transforms(*images.shape[:3])
    zooms = {"width_zoom": t[:, :1], "height_zoom": t[:, 4:5], "input_shape": images.shape}
    if width_factor is None:
        np.testing.assert_array_equal(t[:, 0], t[:, 4])
    expected = k.transform_images(images, zooms, training=True)
    y, _ = numba_kernels.affine_transform_forward(images, t, "nearest", "wrap", 0.0)
    np.testing.assert_allclose(y, np.asarray(expected), atol=2e-6)


@pytest.mark.parametrize("mode", RandomFlip.MODES)
def test_flip_against_keras(keras, images, mode):
    layer = RandomFlip(mode, seed=7)
    y, flips = layer.augment(images)
    assert 0 < flips.sum() < len(images)  # some flipped, some not (seed 7)
    k = keras.layers.RandomFlip(mode)
    expected = k.transform_images(images, {"flips": flips.reshape(-1, 1, 1, 1), "input_shape": images.shape})
    np.testing.assert_array_equal(y, np.asarray(expected))


def test_contrast_against_keras(keras, images):
    layer = RandomContrast(0.4, value_range=(0, 1), seed=8)
    k = keras.layers.RandomContrast(0.4, value_range=(0, 1))
    assert tuple(k.factor) == layer.range == (0.0, 0.4)  # Keras 3.15: a number only raises the contrast
    assert RandomContrast((0.2, 0.2)).range == (0.2, 0.2)
    y, (a, _) = layer.augment(images)
    assert np.all((a >= 1) & (a <= 1.4))
    expected = k.transform_images(images, {"contrast_factor": a}, training=True)
    np.testing.assert_allclose(y, np.asarray(expected), atol=1e-6)
    assert y.min() >= 0 and y.max() <= 1


def test_crop_against_keras(keras):
    x = np.random.default_rng(9).random((3, 10, 12, 2), dtype=np.float32)
    layer = RandomCrop(6, 7, seed=9)
    y = layer.forward(x, training=True)
    _, _, top, left = layer._cache
    k = keras.layers.RandomCrop(6, 7)
    np.testing.assert_array_equal(y, np.asarray(k.transform_images(x, (top, left), training=True)))
    # at inference: the largest centred window of aspect 6:7 (10 x 11, from column 0), resized
    window = x[:, 0:10, 0:11]
    expected = keras.ops.image.resize(window, (6, 7), interpolation="bilinear", antialias=False)
    np.testing.assert_allclose(layer.forward(x), np.asarray(expected), atol=2e-6)
    small = x[:, :4, :5]  # smaller than the window: resized up, as Keras documents
    np.testing.assert_allclose(RandomCrop(6, 7).forward(small), np.asarray(keras.ops.image.resize(
        small[:, :, 0:4], (6, 7), interpolation="bilinear", antialias=False)), atol=2e-6)


@pytest.mark.parametrize("shape, size, window", [((12, 10), (4, 5), (2, 0, 8, 10)), ((10, 15), (5, 5), (0, 2, 10, 10)),
                                                 ((9, 13), (3, 3), (0, 2, 9, 9)),
                                                 ((12, 11), (4, 5), (2, 0, 8, 11))])  # 8.8 rows: 8, as Keras's int()
def test_crop_at_inference_is_the_centred_window(keras, shape, size, window):
    """At inference RandomCrop resizes the largest centred window of the target's aspect ratio:
    windows written out by hand (top, left, height, width), away from (0, 0), each resized by
    Keras's resize, so that a window off by a row or a column shows."""
    x = np.random.default_rng(3).random((2, *shape, 2), dtype=np.float32)
    top, left, h, w = window
    expected = keras.ops.image.resize(x[:, top:top + h, left:left + w], size, interpolation="bilinear",
                                      antialias=False)
    np.testing.assert_allclose(RandomCrop(*size).forward(x), np.asarray(expected), atol=2e-6)


def test_crop_in_training_takes_every_window_with_the_same_chance():
    """In training, each batch is one window cut out of x (found by search, not read from the
    layer), and over many batches every position (top, left) in [0, H - height] x [0, W - width]
    comes up, about equally often."""
    x = np.arange(7 * 9, dtype=np.float32).reshape(1, 7, 9, 1)  # each cell its own value
    layer = RandomCrop(4, 5, seed=0)
    counts = np.zeros((4, 5), dtype=int)
    for _ in range(2000):
        y = layer.forward(x, training=True)
        top, left = divmod(int(y[0, 0, 0, 0]), 9)
        np.testing.assert_array_equal(y, x[:, top:top + 4, left:left + 5])
        counts[top, left] += 1
    assert counts.min() > 2000 / 20 * 0.6, counts  # 20 positions, 100 each expected


# -- gradients, seeds, inference, saving ------------------------------------------------------------
GRADIENT_LAYERS = [
    lambda: RandomTranslation(0.3, 0.3, dtype="float64"),
    lambda: RandomTranslation(0.3, 0.3, fill_mode="constant", interpolation="nearest", dtype="float64"),
    lambda: RandomRotation(0.3, fill_mode="wrap", dtype="float64"),
    lambda: RandomZoom((-0.3, 0.4), fill_mode="nearest", dtype="float64"),
    lambda: RandomFlip(dtype="float64"),
    lambda: RandomCrop(4, 5, dtype="float64"),
    lambda: RandomContrast((0.3, 0.5), value_range=(-10, 10), dtype="float64"),
    lambda: RandomErasing((1.0, 1.0), scale=(0.2, 0.5), value_range=(-10, 10), dtype="float64"),
]


@pytest.mark.parametrize("make", GRADIENT_LAYERS, ids=lambda m: type(m()).__name__)
def test_gradients_against_finite_differences(make, each_backend):
    x = np.random.default_rng(10).standard_normal((2, 6, 7, 2))
    errors = check_layer(fixed(make()), x)
    assert errors["x"] < 1e-7, errors


def test_crop_resize_gradient_against_finite_differences():
    x = np.random.default_rng(11).standard_normal((2, 3, 5, 2))  # smaller than the window: the resize path
    assert check_layer(fixed(RandomCrop(4, 4, dtype="float64")), x)["x"] < 1e-7


def test_contrast_clip_stops_the_gradient():
    layer = fixed(RandomContrast((0.5, 0.5), value_range=(0, 1), dtype="float64"))
    x = np.random.default_rng(12).random((2, 5, 5, 1))
    y = layer.forward(x, training=True)
    assert np.any(y == 0) or np.any(y == 1)  # some values clipped
    assert check_layer(layer, x)["x"] < 1e-6


def test_identity_at_inference_and_seeds(images):
    layers = [RandomFlip(seed=1), RandomTranslation(0.2, 0.2, seed=1), RandomRotation(0.1, seed=1),
              RandomZoom(0.2, seed=1), RandomContrast(0.3, seed=1), RandomErasing((1.0, 1.0), seed=1)]
    for layer in layers:
        np.testing.assert_array_equal(layer.forward(images), images)  # inference: y = x
        twin = type(layer).from_config(layer.get_config())
        a, b = layer.forward(images, training=True), twin.forward(images, training=True)
        np.testing.assert_array_equal(a, b)  # the same seed, the same draws
        assert not np.array_equal(a, images)
        assert not np.array_equal(layer.forward(images, training=True), a)  # the next batch draws anew
    set_random_seed(3)
    a = RandomRotation(0.1).forward(images, training=True)
    set_random_seed(3)
    np.testing.assert_array_equal(RandomRotation(0.1).forward(images, training=True), a)


def test_a_model_with_augmentation_trains_predicts_and_saves(tmp_path):
    set_random_seed(0)
    x = np.random.default_rng(13).random((32, 12, 12, 1), dtype=np.float32)
    y = np.arange(32) % 3
    augment = [RandomFlip("horizontal"), RandomTranslation(0.1, 0.1, fill_mode="constant"), RandomZoom(0.1),
               RandomRotation(0.05), RandomContrast(0.2, value_range=(0, 1))]
    model = Sequential([Input((12, 12, 1)), *augment, Conv2D(4, 3, activation="relu"), Flatten(),
                        Dense(3, activation="softmax")])
    assert [layer.input_grad for layer in model.layers] == [False] * 6 + [True, True]
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    plain = Sequential([Input((12, 12, 1)), Conv2D(4, 3, activation="relu"), Flatten(),
                        Dense(3, activation="softmax")])
    plain.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), plain.predict(x, verbose=0))  # no augmentation
    again = load_model(model.save(tmp_path / "augmented.npz"))
    assert [type(layer).__name__ for layer in again.layers[:5]] == [type(layer).__name__ for layer in augment]
    assert again.layers[1].get_config()["fill_mode"] == "constant"
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_functional_model_skips_the_gradient_through_augmentation():
    inputs = Input((8, 8, 1))
    h = RandomTranslation(0.1, 0.1)(RandomFlip()(inputs))
    outputs = Dense(2)(Flatten()(Conv2D(2, 3)(h)))
    model = Model(inputs, outputs)
    assert [layer.input_grad for layer in model.layers] == [False, False, False, True, True]


@pytest.mark.parametrize("make, message", [
    (lambda: RandomTranslation(0.1, 0.1, fill_mode="mirror"), "fill_mode"),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), "interpolation"),
    (lambda: RandomRotation(1.5), "factor"),
    (lambda: RandomTranslation("a", 0.1), "height_factor"),
    (lambda: RandomZoom((-1.0, 0.2)), "zoom"),
    (lambda: RandomFlip("diagonal"), "mode"),
    (lambda: RandomCrop(0, 4), "height"),
    (lambda: RandomContrast(0.2, value_range=(1, 0)), "value_range"),
    (lambda: RandomFlip(seed="x"), "seed"),
    (lambda: RandomErasing(1.5), r"`factor`.*\[0, 1\].*1\.5"),
    (lambda: RandomErasing("a"), "`factor`"),
    (lambda: RandomErasing(scale=(0.1, 1.2)), "`scale`"),
    (lambda: RandomErasing(scale=(0.1, 0.2, 0.3)), "`scale`"),
    (lambda: RandomErasing(fill_value=(1, 2)), "`fill_value`.*three"),
    (lambda: RandomErasing(fill_value="black"), "`fill_value`"),
    (lambda: RandomErasing(value_range=(1, 0)), "value_range"),
    (lambda: RandomErasing((1.0, 1.0), fill_value=(1, 2, 3)).forward(np.zeros((2, 8, 8, 1), np.float32), training=True),
     "fill_value.*1 channels"),
    (lambda: RandomFlip().forward(np.zeros((2, 8, 8), np.float32), training=True), r"\(N, H, W, C\).*\(None, 8, 8\)"),
    (lambda: RandomCrop(4, 4).forward(np.zeros((2, 8, 8), np.float32)), r"\(N, H, W, C\)"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, NotImplementedError), match=message):
        make()


# -- RandomErasing: Keras's patches, drawn by minicnn's generator ----------------------------------------
def erased_patches(y, background):
    """Each image's erased pixels (y differs from the constant background), counted: (pixels,
    rows, columns, first row, first column) per image, and whether they form one full rectangle."""
    erased = (y != background).any(axis=-1)
    in_rows, in_cols = erased.any(axis=2), erased.any(axis=1)
    rows, cols = in_rows.sum(axis=1), in_cols.sum(axis=1)
    pixels = erased.sum(axis=(1, 2))
    return (pixels, rows, cols, in_rows.argmax(axis=1), in_cols.argmax(axis=1)), np.array_equal(pixels, rows * cols)


@pytest.mark.parametrize("factor", [1.0, (0.3, 0.3)])
def test_erasing_draws_patches_as_keras_does(keras, factor):
    """Keras's layer and minicnn's, each with its own generator, on 4,000 images of 20 x 32: the
    same share of images erased (Keras 3.15: factor=1.0 draws p in [0, 1], half of the images),
    and the same distribution of the patches' heights, widths and areas (two-sample
    Kolmogorov-Smirnov), and of their top rows and left columns; each patch one rectangle, its
    area within [scale] of the image's."""
    stats = pytest.importorskip("scipy.stats")
    x = np.full((4000, 20, 32, 1), 0.5, np.float32)
    ours = RandomErasing(factor, fill_value=0.0, value_range=(0, 1), seed=3).forward(x, training=True)
    theirs = np.asarray(keras.layers.RandomErasing(factor, fill_value=0.0, value_range=(0, 1), seed=3)(x, training=True))
    rate = 0.5 if factor == 1.0 else 0.3
    for y in (ours, theirs):
        (pixels, rows, cols, *_), rectangles = erased_patches(y, 0.5)
        assert rectangles and set(np.unique(y)) <= {0.0, 0.5}
        assert abs(np.mean(pixels > 0) - rate) < 0.03  # 4 standard deviations of a binomial share
        erased = pixels > 0
        # a patch of sqrt(a) W x sqrt(b) H, a and b in [0.02, 0.33], covers one pixel more or less per side
        assert np.all(rows[erased] <= np.sqrt(0.33) * 20 + 1) and np.all(cols[erased] <= np.sqrt(0.33) * 32 + 1)
        area = pixels[erased] / (20 * 32)
        assert 0.02 < np.median(area) < 0.33
    (ours_pixels, *ours_patches), _ = erased_patches(ours, 0.5)
    (theirs_pixels, *theirs_patches), _ = erased_patches(theirs, 0.5)
    assert stats.ks_2samp(ours_pixels[ours_pixels > 0], theirs_pixels[theirs_pixels > 0]).pvalue > 1e-3
    for a, b in zip(ours_patches, theirs_patches):
        assert stats.ks_2samp(a[ours_pixels > 0], b[theirs_pixels > 0]).pvalue > 1e-3


def test_erasing_marks_the_pixels_keras_marks(keras):
    """On the same corners, Keras's mask and minicnn's hold the same pixels: x0 <= column < x1,
    y0 <= row < y1, every channel."""
    layer = RandomErasing((1.0, 1.0), fill_value=(0.1, 0.2, 0.3), value_range=(0, 1), seed=4)
    x = np.full((64, 9, 13, 3), 0.5, np.float32)
    corners, erase = fixed(layer, 5).patches(64, 9, 13)
    assert erase.all()
    y = layer.forward(x, training=True)
    k = keras.layers.RandomErasing((1.0, 1.0), fill_value=(0.1, 0.2, 0.3), value_range=(0, 1))
    mask = np.asarray(k._generate_batch_mask(x.shape, tuple(c.astype(np.float32) for c in corners)))
    np.testing.assert_array_equal(y != 0.5, mask)
    fill = np.asarray(k._get_fill_value(x, x.shape, None))
    np.testing.assert_allclose(y, np.where(mask, fill, x))  # one value per channel, as Keras
    # corners on pixel edges, where < and <= part: rows 2-4, columns 0-2 and 4-7, an empty patch
    corners = [np.array(c, np.float32) for c in ([0, 4, 3], [3, 8, 3], [2, 0, 1], [5, 9, 6])]
    np.testing.assert_array_equal(patch_mask(corners, 9, 13)[..., 0], np.asarray(
        k._generate_batch_mask((3, 9, 13, 1), tuple(corners)))[..., 0])
    assert patch_mask(corners, 9, 13)[0, 2:5, 0:3].all() and patch_mask(corners, 9, 13)[0].sum() == 9


def test_erasing_fills_with_keras_noise(keras):
    """fill_value=None: Gaussian noise times value_range's high end, clipped to the range: about
    half the erased pixels 0, the rest |N(0, 255)| with 16% at 255, as Keras's draws."""
    stats = pytest.importorskip("scipy.stats")
    x = np.full((1000, 16, 16, 1), -1.0, np.float32)  # outside the range: every erased pixel shows
    ours = RandomErasing((1.0, 1.0), seed=6).forward(x, training=True)
    theirs = np.asarray(keras.layers.RandomErasing((1.0, 1.0), seed=6)(x, training=True))
    a, b = ours[ours != -1], theirs[theirs != -1]
    for values in (a, b):
        assert values.min() == 0 and values.max() == 255
        assert abs(np.mean(values == 0) - 0.5) < 0.02 and abs(np.mean(values == 255) - stats.norm.sf(1)) < 0.02
    assert stats.ks_2samp(a, b).pvalue > 1e-3


def test_erasing_gradient_is_zero_on_the_patch():
    """dx = dy outside the erased pixels, 0 on them (the mask read off the forward's output)."""
    layer = fixed(RandomErasing((1.0, 1.0), fill_value=-5.0, value_range=(-5, 5)))
    x = np.random.default_rng(7).random((6, 10, 12, 2), dtype=np.float32)
    y = layer.forward(x, training=True)
    erased = y == -5
    assert erased.any() and not erased.all()
    dy = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), np.where(erased, 0, dy))


def test_erasing_config_and_saving(keras, tmp_path):
    layer = RandomErasing(0.4, scale=(0.1, 0.2), fill_value=(0, 0.5, 1), value_range=(0, 1), seed=2)
    k = keras.layers.RandomErasing(0.4, scale=(0.1, 0.2), fill_value=(0, 0.5, 1), value_range=(0, 1), seed=2)
    config, keras_config = layer.get_config(), k.get_config()
    for key in ("factor", "scale", "fill_value", "value_range", "seed"):
        assert np.allclose(config[key], keras_config[key]), key
    assert RandomErasing.from_config(config).get_config() == config
    model = Sequential([Input((8, 8, 3)), RandomErasing(0.5, value_range=(0, 1), seed=1), Flatten(), Dense(2)])
    again = load_model(model.save(tmp_path / "erasing.npz"))
    assert again.layers[0].get_config() == model.layers[0].get_config()
    x = np.random.default_rng(9).random((4, 8, 8, 3), dtype=np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
