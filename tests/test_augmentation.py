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
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
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
              RandomZoom(0.2, seed=1), RandomContrast(0.3, seed=1)]
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
    (lambda: RandomFlip().forward(np.zeros((2, 8, 8), np.float32), training=True), r"\(N, H, W, C\).*\(None, 8, 8\)"),
    (lambda: RandomCrop(4, 4).forward(np.zeros((2, 8, 8), np.float32)), r"\(N, H, W, C\)"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, NotImplementedError), match=message):
        make()
