"""Conv2DTranspose (minicnn/layers/conv_transpose.py): Keras's output sizes, Keras's values and
gradients on the same weights over a grid of kernels, strides, paddings and output_padding,
finite differences, and the compiled twin of its forward kernel against the reference."""
import numpy as np
import pytest
from keras_twin import assert_same_pass, assert_saved_and_loaded, assert_summary_matches

from minicnn import initializers, regularizers
from minicnn.gradcheck import check_layer
from minicnn.kernels import numba_kernels, reference
from minicnn.layers import Conv2D, Conv2DTranspose, Input
from minicnn.models import Model, Sequential
from minicnn.utils import set_random_seed

# (kernel_size, strides, padding, output_padding): odd sizes, strides above and below the kernel,
# both paddings, output_padding None, 0 and the largest allowed
GRID = [(k, s, padding, op) for k in (1, 2, 3, (3, 2), 4) for s in (1, 2, 3, (2, 1)) for padding in ("valid", "same")
        for op in (None, 0, 1, 2)
        if op is None or op < min((s, s) if isinstance(s, int) else s)]


def keras_layer(keras, *args, **kwargs):
    """Keras's layer, or None where Keras refuses the arguments (TensorFlow fails on calling it
    when no convolution maps the output back to the input's size: checked apart below)."""
    try:
        return keras.layers.Conv2DTranspose(*args, **kwargs)
    except ValueError:
        return None


def refused_by_tensorflow(klayer, shape):
    try:
        klayer(np.zeros(shape, np.float32))
        return False
    except Exception:  # noqa: BLE001  (TensorFlow raises its own error types)
        return True


@pytest.mark.parametrize("kernel_size, strides, padding, output_padding", GRID)
def test_matches_keras_on_the_same_weights(each_backend, keras, tf, rng, kernel_size, strides, padding, output_padding):
    shape = (1, 5, 4, 2)  # batch 1, odd and even sizes
    klayer = keras_layer(keras, 3, kernel_size, strides=strides, padding=padding, output_padding=output_padding)
    if klayer is None or refused_by_tensorflow(klayer, shape):
        with pytest.raises(ValueError):
            Conv2DTranspose(3, kernel_size, strides=strides, padding=padding, output_padding=output_padding).build(shape)
        return
    layer = Conv2DTranspose(3, kernel_size, strides=strides, padding=padding, output_padding=output_padding)
    assert layer.compute_output_shape(shape) == (None, *klayer.compute_output_shape(shape)[1:])
    layer.build(shape)
    layer.set_weights([klayer.get_weights()[0], rng.standard_normal(3).astype(np.float32)])
    klayer.set_weights(layer.get_weights())
    assert_same_pass(layer, klayer, rng.standard_normal(shape).astype(np.float32), tf, rng)


@pytest.mark.parametrize("kwargs", [{"activation": "relu", "use_bias": False}, {"activation": "sigmoid"}])
def test_activation_and_no_bias_match_keras(each_backend, keras, tf, rng, kwargs):
    klayer = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", **kwargs)
    layer = Conv2DTranspose(4, 3, strides=2, padding="same", **kwargs)
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    klayer.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(klayer.get_weights())
    assert_same_pass(layer, klayer, x, tf, rng)


@pytest.mark.parametrize("kernel_size, strides, padding, output_padding",
                         [(3, 2, "valid", None), (2, 3, "same", None), (3, 2, "same", 1), ((3, 2), (2, 1), "valid", (1, 0)),
                          (1, 2, "valid", 1), (4, 1, "same", None)])
def test_gradients(each_backend, rng, kernel_size, strides, padding, output_padding):
    layer = Conv2DTranspose(3, kernel_size, strides=strides, padding=padding, output_padding=output_padding,
                            activation="tanh", dtype="float64")
    errors = check_layer(layer, rng.standard_normal((2, 3, 4, 2)))
    assert max(errors.values()) < 1e-6, errors


def test_forward_is_conv2d_input_gradient_and_backward_is_conv2d(rng):
    """The definition the docs give: with a Conv2D of kernel W (KH, KW, F, C) from (N, OH, OW, F)
    to (N, H, W, C), Conv2DTranspose(x) = Conv2D's dL/dinput for dL/doutput = x, and its own dx is
    that Conv2D's output for dy."""
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    up = Conv2DTranspose(5, 3, strides=2, padding="same", use_bias=False)
    y = up.forward(x, training=True)
    conv = Conv2D(3, 3, strides=2, padding="same", use_bias=False)
    conv.build(y.shape)
    conv.set_weights(up.get_weights())
    np.testing.assert_allclose(conv.forward(y, training=True).shape, x.shape)
    np.testing.assert_allclose(conv.backward(x), y, rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(up.backward(dy), conv.forward(dy), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape, W_shape, stride, pads, out", [
    ((2, 5, 4, 3), (3, 3, 4, 3), (2, 2), (1, 1, 1, 1), (9, 7)),  # "same", odd
    ((1, 3, 3, 2), (1, 1, 2, 2), (2, 2), (0, 0, 0, 0), (6, 6)),  # an output row no window reaches
    ((3, 4, 5, 1), (4, 2, 3, 1), (3, 1), (1, 2, 0, 1), (10, 5)),
    ((2, 6, 6, 8), (3, 3, 16, 8), (1, 1), (1, 1, 1, 1), (6, 6)),  # 3 x 3 x 16: the im2col size
])
def test_the_compiled_input_gradient_is_the_reference(rng, shape, W_shape, stride, pads, out):
    dy = rng.standard_normal(shape).astype(np.float32)
    W = rng.standard_normal(W_shape).astype(np.float32)
    xpad_shape = (shape[0], out[0] + pads[0] + pads[1], out[1] + pads[2] + pads[3], W_shape[2])
    want = reference.conv2d_input_gradient(dy, W, xpad_shape, stride, pads)
    got = numba_kernels.conv2d_input_gradient(dy, W, xpad_shape, stride, pads)
    assert got.shape == want.shape == (shape[0], *out, W_shape[2]) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# the layer's own pads and output sizes: strides 2 and 3, kernels 2 to 5 (at stride 3 a 2 x 2
# kernel leaves output rows no tap reaches, a 3 x 3 gives every row one tap, 4 and 5 one or two),
# both paddings, output_padding None and each value allowed, odd input sizes, batch 1
INPUT_GRADIENT_GRID = [(k, s, padding, op) for k in (2, 3, 4, 5) for s in (2, 3) for padding in ("valid", "same")
                       for op in (None, 0, 1, 2) if op is None or op < s]


@pytest.mark.parametrize("kernel_size, strides, padding, output_padding", INPUT_GRADIENT_GRID)
def test_the_compiled_forward_is_the_reference_at_the_layers_shapes(rng, kernel_size, strides, padding,
                                                                    output_padding):
    """conv2d_input_gradient as Conv2DTranspose calls it, 16 outputs (the register-blocked
    loops' width) and 5, float32 and float64, against the readable reference."""
    for filters, dtype, shape in ((16, np.float32, (1, 5, 3, 7)), (5, np.float64, (2, 4, 7, 3))):
        layer = Conv2DTranspose(filters, kernel_size, strides=strides, padding=padding, output_padding=output_padding)
        try:
            OH, OW, pads = layer.plan(shape)
        except ValueError:  # no Conv2D maps this output back to the input: the layer refuses it
            continue
        x = rng.standard_normal(shape).astype(dtype)
        W = rng.standard_normal((kernel_size, kernel_size, filters, shape[3])).astype(dtype)
        xpad_shape = (shape[0], OH + pads[0] + pads[1], OW + pads[2] + pads[3], filters)
        want = reference.conv2d_input_gradient(x, W, xpad_shape, (strides, strides), pads)
        got = numba_kernels.conv2d_input_gradient(x, W, xpad_shape, (strides, strides), pads)
        assert got.shape == want.shape == (shape[0], OH, OW, filters) and got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_the_compiled_forward_in_chunks_is_the_reference(rng, monkeypatch):
    """Chunks of 2 images out of 5 (the last one short): the same dx as in one piece."""
    x = rng.standard_normal((5, 4, 3, 6)).astype(np.float32)
    W = rng.standard_normal((3, 3, 4, 6)).astype(np.float32)
    xpad_shape, pads = (5, 9, 7, 4), (1, 0, 1, 0)
    # 2 images x OH OW x KH KW C x 4 bytes
    monkeypatch.setattr(numba_kernels, "INPUT_GRADIENT_BYTES", 2 * (4 * 3) * (3 * 3 * 4) * 4)
    want = reference.conv2d_input_gradient(x, W, xpad_shape, (2, 2), pads)
    np.testing.assert_allclose(numba_kernels.conv2d_input_gradient(x, W, xpad_shape, (2, 2), pads), want,
                               rtol=1e-5, atol=1e-5)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="output_padding must be strictly less than strides"):
        Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="output_padding"):
        Conv2DTranspose(2, 3, strides=2, output_padding=-1)
    with pytest.raises(NotImplementedError, match="dilation_rate"):
        Conv2DTranspose(2, 3, dilation_rate=2)
    with pytest.raises(ValueError, match="filters"):
        Conv2DTranspose(0, 3)
    with pytest.raises(ValueError, match="padding"):
        Conv2DTranspose(2, 3, padding="full")
    with pytest.raises(ValueError, match="choose another output_padding"):  # TensorFlow refuses it too
        Conv2DTranspose(2, 2, strides=3, padding="same", output_padding=0).build((None, 5, 5, 1))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        Conv2DTranspose(2, 3).build((None, 5, 5))


def test_kernel_shape_and_fans_are_keras(keras):
    """Kernel (KH, KW, F, C); He's uniform limit sqrt(6 / fan_in) with fan_in = KH KW F, as
    Keras computes the fans of that shape."""
    layer = Conv2DTranspose(50, (3, 2), kernel_initializer="he_uniform")
    layer.build((None, 4, 4, 7))
    assert layer.params["W"].shape == (3, 2, 50, 7) and layer.params["b"].shape == (50,)
    limit = np.sqrt(6 / (3 * 2 * 50))
    assert limit * 0.95 < np.abs(layer.params["W"]).max() <= limit
    klayer = keras.layers.Conv2DTranspose(50, (3, 2), kernel_initializer="he_uniform")
    klayer.build((None, 4, 4, 7))
    assert limit * 0.95 < np.abs(klayer.get_weights()[0]).max() <= limit
    assert initializers.compute_fans((3, 2, 50, 7)) == (300, 42)


def autoencoder(lib):
    inputs = lib.Input(shape=(12, 12, 1))
    x = lib.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    x = lib.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x)
    x = lib.layers.Conv2DTranspose(2, 2, strides=1, padding="valid", output_padding=0)(x)
    outputs = lib.layers.Conv2D(1, 2, activation="sigmoid")(x)
    return lib.Model(inputs, outputs)


def test_summary_save_load_and_training(keras, tmp_path, rng):
    import minicnn

    set_random_seed(0)
    model = autoencoder(minicnn)
    assert_summary_matches(model, autoencoder(keras))
    x = rng.random((16, 12, 12, 1), dtype=np.float32)
    model.compile(loss="binary_crossentropy", optimizer="adam")
    history = model.fit(x, x, batch_size=8, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    again = assert_saved_and_loaded(model, x, tmp_path)
    assert isinstance(again, Model) and type(again.layers[2]) is Conv2DTranspose
    seq = Sequential([Input(shape=(3, 3, 2)), Conv2DTranspose(2, 3, strides=2, output_padding=1)])
    assert seq.output_shape == (None, 8, 8, 2)
    assert_saved_and_loaded(seq, rng.random((2, 3, 3, 2), dtype=np.float32), tmp_path)


def test_an_autoencoder_has_keras_gradients_and_adam_steps(each_backend, keras, tf, rng):
    """The whole model of Conv2D and Conv2DTranspose layers, from the same weights: the same
    binary cross-entropy and gradients as Keras's, three Adam steps on (Keras's gradients given
    to both, so that round-off in the tiniest gradients is not magnified by Adam's first step)."""
    import minicnn

    model, k_model = autoencoder(minicnn), autoencoder(keras)
    k_model.set_weights(model.get_weights())
    model.compile(loss="binary_crossentropy", optimizer=minicnn.optimizers.Adam(learning_rate=0.01))
    k_opt = keras.optimizers.Adam(learning_rate=0.01)
    for step in range(3):
        x = rng.random((4, 12, 12, 1), dtype=np.float32)
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.losses.binary_crossentropy(x, k_model(x, training=True)))
        k_grads = tape.gradient(loss, k_model.trainable_weights)
        p = model.forward(x, training=True)
        assert float(model.loss.fn(x, p).mean()) == pytest.approx(float(loss), rel=1e-5)
        model.backward(x, p)
        pairs = model.grads_and_params()
        for (g, _), kg in zip(pairs, k_grads):
            np.testing.assert_allclose(g, kg.numpy(), rtol=1e-4, atol=1e-6)
        model.optimizer.apply_gradients((kg.numpy(), param) for (_, param), kg in zip(pairs, k_grads))
        k_opt.apply_gradients(zip(k_grads, k_model.trainable_weights))
        for w, kw in zip(model.get_weights(), k_model.get_weights()):
            np.testing.assert_allclose(w, kw, rtol=1e-6, atol=1e-7)


def test_regularizers_are_keras_penalties(keras, rng, tmp_path):
    """kernel_regularizer / bias_regularizer: the same penalty as Keras's layer on the same
    weights, kept through saving."""
    kwargs = {"kernel_regularizer": "l2", "bias_regularizer": keras.regularizers.L1(0.1)}
    klayer = keras.layers.Conv2DTranspose(3, 3, strides=2, **kwargs)
    klayer.build((None, 4, 4, 2))
    model = Sequential([Input(shape=(4, 4, 2)), Conv2DTranspose(3, 3, strides=2, kernel_regularizer="l2",
                                                                bias_regularizer=regularizers.L1(0.1))])
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in klayer.get_weights()]
    klayer.set_weights(weights)
    model.set_weights(weights)
    assert float(model.regularization_loss()) == pytest.approx(float(sum(klayer.losses)), rel=1e-5)
    again = assert_saved_and_loaded(model, rng.random((2, 4, 4, 2), dtype=np.float32), tmp_path)
    assert float(again.regularization_loss()) == pytest.approx(float(model.regularization_loss()), rel=1e-6)
