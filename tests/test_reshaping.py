"""UpSampling2D (minicnn/layers/reshaping.py): both interpolations against Keras on the same
inputs (values and input gradients), against their formulas, and against finite differences."""
import numpy as np
import pytest
from keras_twin import assert_same_pass, assert_saved_and_loaded, assert_summary_matches

from minicnn.gradcheck import check_layer
from minicnn.layers import UpSampling2D
from minicnn.layers.reshaping import bilinear_matrix

CASES = [((2, 2), "nearest"), ((3, 2), "nearest"), ((2, 2), "bilinear"), ((3, 1), "bilinear"), ((1, 4), "bilinear"),
         (3, "bilinear")]


@pytest.mark.parametrize("size, interpolation", CASES)
def test_matches_keras(keras, tf, rng, size, interpolation):
    for shape in [(2, 5, 4, 3), (1, 1, 3, 2)]:  # odd sizes; a single row, all edge
        layer = UpSampling2D(size, interpolation=interpolation)
        klayer = keras.layers.UpSampling2D(size, interpolation=interpolation)
        assert layer.compute_output_shape(shape) == (None, *klayer.compute_output_shape(shape)[1:])
        assert_same_pass(layer, klayer, rng.standard_normal(shape).astype(np.float32), tf, rng)


@pytest.mark.parametrize("size, interpolation", CASES)
def test_gradients(rng, size, interpolation):
    errors = check_layer(UpSampling2D(size, interpolation=interpolation, dtype="float64"),
                         rng.standard_normal((2, 3, 4, 2)))
    assert errors["x"] < 1e-6, errors


def test_the_formulas():
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)
    y = UpSampling2D((2, 3)).forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], np.repeat(np.repeat(x[0, :, :, 0], 2, axis=0), 3, axis=1))
    # bilinear, factor 2 along a row [0, 4]: half-pixel centres read -0.25, 0.25, 0.75, 1.25
    row = UpSampling2D((1, 2), interpolation="bilinear").forward(np.array([0, 4], np.float32).reshape(1, 1, 2, 1))
    np.testing.assert_allclose(row.ravel(), [0, 1, 3, 4])
    M = bilinear_matrix(5, 3, np.float64)
    np.testing.assert_allclose(M.sum(axis=1), 1)  # each output a weighted mean of its neighbours
    np.testing.assert_allclose(M[1::3].argmax(axis=1), np.arange(5))  # the centre of each block sits on its pixel


def test_arguments_config_saving_and_summary(keras, tmp_path, rng):
    import minicnn

    with pytest.raises(ValueError, match="interpolation"):
        UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match="size"):
        UpSampling2D(0)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        UpSampling2D().build((None, 4, 4))

    def model(lib):
        return lib.Sequential([lib.Input(shape=(4, 3, 2)), lib.layers.UpSampling2D(),
                               lib.layers.Conv2D(2, 3, padding="same"),
                               lib.layers.UpSampling2D((2, 3), interpolation="bilinear")])

    mine = model(minicnn)
    assert_summary_matches(mine, model(keras))
    assert mine.output_shape == (None, 16, 18, 2)
    assert_saved_and_loaded(mine, rng.random((3, 4, 3, 2), dtype=np.float32), tmp_path)
