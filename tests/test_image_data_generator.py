"""minicnn.preprocessing.image.ImageDataGenerator, Keras 2's: each transform against its formula
on small images (a linear ramp, which bilinear interpolation reproduces exactly), the draws
against NumPy's RandomState by hand, and everything against Keras 3's legacy copy of Keras 2's
generator (keras.src.legacy.preprocessing.image) on the same parameters and seeds."""
import warnings

import numpy as np
import pytest

from minicnn import legacy
from minicnn.preprocessing import image
from minicnn.preprocessing.image import ImageDataGenerator

warnings.filterwarnings("ignore", category=DeprecationWarning, module=__name__)


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@pytest.fixture(scope="module")
def keras_image():
    """Keras 3's copy of Keras 2's ImageDataGenerator and its functions."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    pytest.importorskip("keras")
    pytest.importorskip("scipy")
    from keras.src.legacy.preprocessing import image as keras_image
    return keras_image


def ramp(H, W, C=2):
    """x[r, c, k] = 10 r + c + 100 k: bilinear interpolation of it at (r', c') is exactly 10 r' + c' + 100 k."""
    r, c, k = np.meshgrid(np.arange(H), np.arange(W), np.arange(C), indexing="ij")
    return (10.0 * r + c + 100.0 * k).astype(np.float32)


def expected_ramp(H, W, C, row_in, col_in):
    """The ramp read at (row_in, col_in) with fill_mode="nearest" (coordinates clipped into the image)."""
    rows, cols = np.clip(row_in, 0, H - 1), np.clip(col_in, 0, W - 1)
    return (10.0 * rows + cols)[..., None] + 100.0 * np.arange(C)


def keras2_map(H, W, A):
    """Keras 2's geometry written out: its matrix A acts on (u, v) = (column, row) about the
    point (u0, v0) = (H/2 - 0.5, W/2 - 0.5) (the height goes with u: Keras 2's x/y swap), so output
    pixel (r, c) reads column u0 + A[0] . (c - u0, r - v0, 1) and row v0 + A[1] . (c - u0, r - v0, 1)."""
    r, c = np.meshgrid(np.arange(H, dtype=float), np.arange(W, dtype=float), indexing="ij")
    u0, v0 = H / 2 - 0.5, W / 2 - 0.5
    col = u0 + A[0][0] * (c - u0) + A[0][1] * (r - v0) + A[0][2]
    row = v0 + A[1][0] * (c - u0) + A[1][1] * (r - v0) + A[1][2]
    return row, col


@pytest.mark.parametrize("H, W", [(5, 5), (4, 6), (7, 4)])
def test_each_affine_transform_against_its_formula(H, W):
    x, g = ramp(H, W), ImageDataGenerator(fill_mode="nearest")
    t, s, tx, ty, zx, zy = np.deg2rad(25), np.deg2rad(15), 1.5, -0.75, 0.6, 1.3
    cases = {
        "theta": ({"theta": 25}, [[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0]]),
        "shift": ({"tx": tx, "ty": ty}, [[1, 0, tx], [0, 1, ty]]),
        "shear": ({"shear": 15}, [[1, -np.sin(s), 0], [0, np.cos(s), 0]]),
        "zoom": ({"zx": zx, "zy": zy}, [[zx, 0, 0], [0, zy, 0]]),
    }
    for name, (params, A) in cases.items():
        row, col = keras2_map(H, W, A)
        np.testing.assert_allclose(g.apply_transform(x, params), expected_ramp(H, W, 2, row, col), atol=1e-4,
                                   err_msg=name)
    # all four at once: rotation @ shift @ shear @ zoom, in that order
    R = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    T, S = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]), np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
    A = R @ T @ S @ np.diag([zx, zy, 1])
    row, col = keras2_map(H, W, A)
    y = g.apply_transform(x, {"theta": 25, "tx": tx, "ty": ty, "shear": 15, "zx": zx, "zy": zy})
    np.testing.assert_allclose(y, expected_ramp(H, W, 2, row, col), atol=1e-4)


def test_rotation_by_90_degrees_and_whole_pixel_shifts_move_pixels_exactly():
    x = np.random.default_rng(0).random((6, 6, 3)).astype(np.float32)
    g = ImageDataGenerator()
    for quarter in (1, 2, 3):  # counter-clockwise on screen, as np.rot90
        np.testing.assert_allclose(g.apply_transform(x, {"theta": 90 * quarter}), np.rot90(x, quarter), atol=1e-6)
    # tx (drawn from height_shift_range) moves the image sideways, ty up and down: Keras 2's swap
    np.testing.assert_array_equal(g.apply_transform(x, {"tx": 2})[:, :4], x[:, 2:])
    np.testing.assert_array_equal(g.apply_transform(x, {"ty": -1})[1:], x[:-1])
    np.testing.assert_array_equal(g.apply_transform(x, {"tx": 2})[:, 4:], x[:, 5:6].repeat(2, axis=1))  # nearest


def test_fill_modes_beyond_the_edge():
    row = np.array([1.0, 2.0, 4.0, 8.0, 16.0], dtype=np.float32)
    x = np.tile(row[None, :, None], (3, 1, 1))  # (3, 5, 1): every row the same
    expected = {  # reading columns 2, 3, 4, 5, 6 (tx=2): past the edge, as SciPy extends the input
        "nearest": [4, 8, 16, 16, 16],
        "reflect": [4, 8, 16, 16, 8],  # d c b a | a b c d | d c b a
        "wrap": [4, 8, 16, 2, 4],  # period n - 1: column 5 is column 1
        "constant": [4, 8, 16, -3, -3],
    }
    for mode, want in expected.items():
        y = ImageDataGenerator(fill_mode=mode, cval=-3).apply_transform(x, {"tx": 2})
        np.testing.assert_array_equal(y[1, :, 0], want, err_msg=mode)
    # and on the other side, half a pixel out: reflect reads the edge pixel, wrap the far end
    y = ImageDataGenerator(fill_mode="wrap").apply_transform(x, {"tx": -0.5})
    np.testing.assert_allclose(y[1, :2, 0], [(8 + 16) / 2, (1 + 2) / 2])
    y = ImageDataGenerator(fill_mode="reflect").apply_transform(x, {"tx": -1.5})
    np.testing.assert_allclose(y[1, :2, 0], [1.5, 1.0])


def test_flips_channel_shift_and_brightness():
    x = np.random.default_rng(1).random((3, 4, 2)).astype(np.float32) * 100
    g = ImageDataGenerator()
    np.testing.assert_array_equal(g.apply_transform(x, {"flip_horizontal": True}), x[:, ::-1])
    np.testing.assert_array_equal(g.apply_transform(x, {"flip_vertical": True}), x[::-1])
    np.testing.assert_allclose(g.apply_transform(x, {"channel_shift_intensity": 30.0}),
                               np.clip(x + 30, x.min(), x.max()))
    rgb = np.random.default_rng(2).integers(0, 200, (3, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(g.apply_transform(rgb, {"brightness": 1.0}), rgb)  # through 8 bits, unchanged
    assert np.all(g.apply_transform(rgb, {"brightness": 0.5}) <= rgb)


def test_the_draws_are_keras_2s_on_a_random_state():
    g = ImageDataGenerator(rotation_range=20, width_shift_range=0.1, height_shift_range=[2, 3], shear_range=5,
                           zoom_range=[0.8, 1.2], horizontal_flip=True, channel_shift_range=0.5)
    rs = np.random.RandomState(7)
    theta = rs.uniform(-20, 20)
    tx = rs.choice([2, 3]) * rs.choice([-1, 1])  # pixels: one of the list, with a random sign
    ty = rs.uniform(-0.1, 0.1) * 9  # a fraction of the width
    shear = rs.uniform(-5, 5)
    zx, zy = rs.uniform(0.8, 1.2, 2)
    flip = rs.random() < 0.5
    rs.random()  # vertical_flip's draw, made even when off
    shift = rs.uniform(-0.5, 0.5)
    p = g.get_random_transform((6, 9, 1), seed=7)
    assert (p["theta"], p["tx"], p["ty"], p["shear"], p["zx"], p["zy"]) == (theta, tx, ty, shear, zx, zy)
    assert p["flip_horizontal"] == flip and not p["flip_vertical"] and p["channel_shift_intensity"] == shift
    assert ImageDataGenerator(width_shift_range=3).get_random_transform((5, 5, 1), seed=0)["ty"] in (-2, -1, 0, 1, 2)


def test_standardize_and_fit_statistics():
    rng = np.random.default_rng(3)
    x = rng.random((6, 4, 5, 3)).astype(np.float32) * 255
    g = ImageDataGenerator(rescale=1 / 255, featurewise_center=True, featurewise_std_normalization=True)
    g.fit(x)
    scaled = x / 255
    np.testing.assert_allclose(g.mean.ravel(), scaled.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(g.std.ravel(), scaled.std(axis=(0, 1, 2)), rtol=1e-4)
    y = g.standardize(x[0].copy())
    np.testing.assert_allclose(y, (scaled[0] - scaled.mean(axis=(0, 1, 2))) / (scaled.std(axis=(0, 1, 2)) + 1e-6),
                               rtol=1e-4, atol=1e-5)
    s = ImageDataGenerator(samplewise_std_normalization=True, preprocessing_function=lambda a: a * 2)
    one = x[1].copy()
    np.testing.assert_allclose(s.standardize(one.copy()), (2 * one - (2 * one).mean()) / ((2 * one).std() + 1e-6),
                               rtol=1e-4, atol=1e-5)
    unfit = ImageDataGenerator(featurewise_center=True)
    with pytest.warns(UserWarning, match="fit"):
        np.testing.assert_array_equal(unfit.standardize(one.copy()), one)  # Keras 2 warns and leaves x


def test_flow_batches_fit_trains_on_them_and_the_note_is_said_once():
    from minicnn.layers import Dense, Flatten
    from minicnn.models import Sequential
    from minicnn.utils import to_categorical
    legacy._warned.clear()
    with pytest.warns(DeprecationWarning, match="RandomRotation"):
        g = ImageDataGenerator(rotation_range=10, horizontal_flip=True, validation_split=0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        ImageDataGenerator()
    rng = np.random.default_rng(4)
    x, labels = rng.random((16, 5, 5, 1)).astype(np.float32), np.arange(16) % 2
    y = to_categorical(labels)
    it = g.flow(x, y, batch_size=5, seed=1, subset="training")
    assert len(it) == 3 and it.n == 12
    bx, by = it[0]
    assert bx.shape == (5, 5, 5, 1) and bx.dtype == np.float32 and by.shape == (5, 2)
    assert g.flow(x, y, subset="validation").n == 4
    a, b = g.flow(x, y, batch_size=4, seed=9), g.flow(x, y, batch_size=4, seed=9)
    for _ in range(5):  # seeded: the same batches, through an epoch's end
        (xa, ya), (xb, yb) = next(a), next(b)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    with pytest.raises(ValueError, match="different number of classes"):
        g.flow(x, np.sort(labels), subset="training")  # labels sorted: the first quarter is all 0
    model = Sequential([Flatten(input_shape=(5, 5, 1)), Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(g.flow(x, y, batch_size=4, seed=0), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_bad_arguments_get_clear_errors():
    with pytest.raises(NotImplementedError, match="zca_whitening"):
        ImageDataGenerator(zca_whitening=True)
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="zoom_range"):
        ImageDataGenerator(zoom_range=(0.5, 1, 2))
    with pytest.raises(ValueError, match="validation_split"):
        ImageDataGenerator(validation_split=1.5)
    with pytest.raises(ValueError, match="channels_last"):
        ImageDataGenerator(data_format="channels_first")
    with pytest.raises(ValueError, match="rank 4"):
        ImageDataGenerator().flow(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="class_mode"):
        ImageDataGenerator().flow_from_directory(".", class_mode="multi")


def write_pngs(root, classes=("cats", "dogs"), per_class=3, size=(6, 8)):
    """A folder of PNGs, one subfolder a class; returns the images as written."""
    from PIL import Image
    rng, written = np.random.default_rng(5), {}
    for name in classes:
        (root / name).mkdir()
        for i in range(per_class):
            pixels = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.png")
            written[f"{name}/{i}.png"] = pixels
    (root / "cats" / "notes.txt").write_text("not an image")
    return written


def test_flow_from_directory_reads_classes_and_targets(tmp_path, capsys):
    written = write_pngs(tmp_path)
    g = ImageDataGenerator(rescale=1 / 255)
    it = g.flow_from_directory(str(tmp_path), target_size=(6, 8), batch_size=4, shuffle=False)
    assert "Found 6 images belonging to 2 classes." in capsys.readouterr().out
    assert it.class_indices == {"cats": 0, "dogs": 1} and list(it.classes) == [0, 0, 0, 1, 1, 1]
    assert it.filenames[0].replace("\\", "/") == "cats/0.png"
    bx, by = it[0]
    np.testing.assert_allclose(bx[0], written["cats/0.png"] / 255, rtol=1e-6)
    np.testing.assert_array_equal(by, [[1, 0], [1, 0], [1, 0], [0, 1]])
    assert len(it) == 2 and it[1][0].shape == (2, 6, 8, 3)
    modes = {"binary": [0, 0, 0, 1], "sparse": [0, 0, 0, 1]}
    for mode, want in modes.items():
        np.testing.assert_array_equal(g.flow_from_directory(str(tmp_path), (6, 8), class_mode=mode, batch_size=4,
                                                            shuffle=False)[0][1], want)
    bx, by = g.flow_from_directory(str(tmp_path), (6, 8), class_mode="input", batch_size=2, shuffle=False)[0]
    np.testing.assert_array_equal(bx, by)
    assert g.flow_from_directory(str(tmp_path), (6, 8), class_mode=None, batch_size=2)[0].shape == (2, 6, 8, 3)
    small = g.flow_from_directory(str(tmp_path), target_size=(3, 4), color_mode="grayscale", batch_size=6)[0][0]
    assert small.shape == (6, 3, 4, 1)
    split = ImageDataGenerator(validation_split=1 / 3)
    assert split.flow_from_directory(str(tmp_path), (6, 8), subset="validation").samples == 2  # 1 of 3 per class
    assert split.flow_from_directory(str(tmp_path), (6, 8), subset="training").samples == 4
    only = g.flow_from_directory(str(tmp_path), (6, 8), classes=["dogs"])
    assert only.samples == 3 and only.class_indices == {"dogs": 0}
    with pytest.raises(FileNotFoundError, match="not a folder"):
        g.flow_from_directory(str(tmp_path / "missing"))


# -- against Keras 3's copy of Keras 2's generator ------------------------------------------------
@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_apply_transform_matches_keras_2s(keras_image, fill_mode):
    rng = np.random.default_rng(6)
    ours = ImageDataGenerator(fill_mode=fill_mode, cval=-1.0)
    theirs = keras_image.ImageDataGenerator(fill_mode=fill_mode, cval=-1.0)
    for H, W in ((4, 4), (5, 7), (8, 6), (1, 3)):
        x = rng.random((H, W, 3)).astype(np.float32)
        for trial in range(24):
            p = {"theta": rng.uniform(-180, 180), "tx": rng.uniform(-4, 4), "ty": rng.uniform(-4, 4),
                 "shear": rng.uniform(-40, 40), "zx": rng.uniform(0.3, 2), "zy": rng.uniform(0.3, 2),
                 "flip_horizontal": rng.random() < 0.5, "flip_vertical": rng.random() < 0.5}
            if trial < 4:  # the exact angles, whose sines put coordinates on the edges
                p = {"theta": 90 * trial + 90}
            np.testing.assert_allclose(ours.apply_transform(x, p), theirs.apply_transform(x, p), atol=1e-6,
                                       err_msg=f"{(H, W)} {p}")


def test_flow_and_fit_match_keras_2s_with_the_same_seed(keras_image):
    rng = np.random.default_rng(7)
    x, y = rng.random((10, 6, 5, 3)).astype(np.float32) * 255, np.arange(10)
    kwargs = {"rotation_range": 30, "width_shift_range": 0.2, "height_shift_range": [1, 2], "shear_range": 10,
              "zoom_range": 0.2, "horizontal_flip": True, "vertical_flip": True, "channel_shift_range": 5.0,
              "brightness_range": (0.7, 1.3), "fill_mode": "reflect", "rescale": 1 / 255, "featurewise_center": True,
              "featurewise_std_normalization": True, "samplewise_center": True}
    ours, theirs = ImageDataGenerator(**kwargs), keras_image.ImageDataGenerator(**kwargs)
    ours.fit(x, augment=True, rounds=2, seed=3)
    theirs.fit(x, augment=True, rounds=2, seed=3)
    np.testing.assert_allclose(ours.mean, theirs.mean, rtol=1e-5)
    np.testing.assert_allclose(ours.std, theirs.std, rtol=1e-5)
    a, b = ours.flow(x, y, batch_size=4, seed=11), theirs.flow(x, y, batch_size=4, seed=11)
    for _ in range(7):  # by next(), through two epochs' reshuffles
        (xa, ya), (xb, yb) = next(a), next(b)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_allclose(xa, xb, rtol=1e-5, atol=1e-5)
    a, b = ours.flow(x, y, batch_size=4, seed=12), theirs.flow(x, y, batch_size=4, seed=12)
    for _ in range(2):  # by index, as fit reads a PyDataset, and on_epoch_end's reshuffle
        for i in range(len(b)):
            (xa, ya), (xb, yb) = a[i], b[i]
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_allclose(xa, xb, rtol=1e-5, atol=1e-5)
        a.on_epoch_end()
        b.on_epoch_end()


def test_flow_from_directory_matches_keras_2s(keras_image, tmp_path):
    write_pngs(tmp_path, per_class=4)
    kwargs = {"rotation_range": 20, "zoom_range": 0.1, "horizontal_flip": True, "rescale": 1 / 255,
              "validation_split": 0.25}
    ours, theirs = ImageDataGenerator(**kwargs), keras_image.ImageDataGenerator(**kwargs)
    for subset in ("training", "validation"):
        a = ours.flow_from_directory(str(tmp_path), target_size=(5, 7), batch_size=3, seed=2, subset=subset)
        b = theirs.flow_from_directory(str(tmp_path), target_size=(5, 7), batch_size=3, seed=2, subset=subset)
        assert a.filenames == b.filenames and list(a.classes) == list(b.classes)
        for i in range(len(b)):
            (xa, ya), (xb, yb) = a[i], b[i]
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_allclose(xa, xb, rtol=1e-5, atol=1e-6)


def test_the_helper_functions_keep_keras_2s_names(keras_image):
    x = np.random.default_rng(8).random((5, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(image.apply_affine_transform(x, theta=33, zx=1.2, fill_mode="wrap"),
                               keras_image.apply_affine_transform(x, theta=33, zx=1.2, row_axis=0, col_axis=1,
                                                                  channel_axis=2, fill_mode="wrap"), atol=1e-6)
    m = np.diag([2.0, 3.0, 1.0])
    np.testing.assert_array_equal(image.transform_matrix_offset_center(m, 4, 6),
                                  keras_image.transform_matrix_offset_center(m, 4, 6))
