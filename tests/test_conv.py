"""Conv2D (minicnn/layers/conv.py): dilation against Keras 3 and finite differences, on each
backend; padding names in any case, as Keras."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minicnn.gradcheck import check_layer
from minicnn.layers import Conv2D, MaxPooling2D


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_dilated_conv_matches_keras(each_backend, keras, tf, rng, padding):
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    ours = Conv2D(4, (3, 2), dilation_rate=(2, 3), padding=padding)
    theirs = keras.layers.Conv2D(4, (3, 2), dilation_rate=(2, 3), padding=padding)
    theirs.build((None, 9, 8, 3))
    ours.build((None, 9, 8, 3))
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    dy = rng.standard_normal(ours.compute_output_shape((None, 9, 8, 3))[1:]).astype(np.float32)[None].repeat(2, 0)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_y = theirs(xt)
        loss = tf.reduce_sum(k_y * dy)
    k_dx, k_dW, k_db = tape.gradient(loss, [xt, *theirs.trainable_weights])
    np.testing.assert_allclose(ours.forward(x, training=True), np.asarray(k_y), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.backward(dy), k_dx.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.grads["W"], k_dW.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.grads["b"], k_db.numpy(), rtol=1e-4, atol=1e-4)
    assert check_layer(Conv2D(2, 3, dilation_rate=2, padding=padding, dtype="float64"),
                       rng.standard_normal((1, 7, 6, 2)))["W"] < 1e-6
    with pytest.raises(ValueError, match="do not go with dilation_rate"):
        Conv2D(2, 3, strides=2, dilation_rate=2)


@pytest.mark.parametrize("padding", ["SAME", "Same", "same", "VALID", "Valid"])
def test_padding_is_case_insensitive_as_in_keras(padding):
    conv, pool = Conv2D(2, 3, padding=padding), MaxPooling2D(3, strides=2, padding=padding)
    assert conv.padding == pool.padding == padding.lower()
    x = np.random.default_rng(0).random((1, 7, 7, 1), dtype=np.float32)
    want = 7 if padding.lower() == "same" else 5
    assert conv.forward(x).shape == (1, want, want, 2)
    assert pool.forward(x).shape[1] == (4 if padding.lower() == "same" else 3)
    assert Conv2D(**{**conv.get_config(), "name": "again"}).padding == padding.lower()
    for bad in ("full", "", None, 1):
        with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
            Conv2D(2, 3, padding=bad)
