"""The layers tutorials reach for beyond the seed model (Dropout, BatchNormalization, global
pooling, Reshape, Rescaling, Input), each against finite differences and against Keras with the
same weights; and Keras 3's namespace."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn.gradcheck import check_layer
from minicnn.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalMaxPooling2D,
    Input,
    ReLU,
    Rescaling,
    Reshape,
)
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed, to_categorical


# -- Dropout -----------------------------------------------------------------------------------------
def test_dropout_is_inverted_and_only_in_training(keras, rng):
    x = rng.standard_normal((100, 100)).astype(np.float32) + 5  # no zeros of its own
    layer = Dropout(0.3, seed=1)
    np.testing.assert_array_equal(layer.forward(x), x)  # inference: the identity
    np.testing.assert_array_equal(np.asarray(keras.layers.Dropout(0.3)(x)), x)  # as in Keras
    y = layer.forward(x, training=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)  # kept values scaled by 1 / (1 - rate)
    k_y = np.asarray(keras.layers.Dropout(0.3, seed=1)(x, training=True))
    np.testing.assert_allclose(k_y[k_y != 0], x[k_y != 0] / 0.7, rtol=1e-6)  # Keras scales the same way
    assert abs((~kept).mean() - 0.3) < 0.03 and abs((k_y == 0).mean() - 0.3) < 0.03
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), dy * kept / 0.7, rtol=1e-6)  # the same mask, the same scale


def test_dropout_seeds_noise_shape_and_arguments(rng):
    x = np.ones((4, 3, 3, 5), np.float32)
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))
    set_random_seed(3)
    first = Dropout(0.5).forward(x, training=True)
    set_random_seed(3)
    np.testing.assert_array_equal(Dropout(0.5).forward(x, training=True), first)
    y = Dropout(0.5, noise_shape=(None, 1, 1, None), seed=0).forward(x, training=True)
    assert all(len(np.unique(y[n, :, :, c])) == 1 for n in range(4) for c in range(5))  # whole maps dropped
    assert np.all(Dropout(1.0).forward(x, training=True) == 0)
    assert not Dropout(1.0).mask((2, 3)).any()  # its mask, asked directly: all dropped, no division by zero
    np.testing.assert_array_equal(Dropout(0.0).forward(x, training=True), x)
    for bad in (-0.1, 1.5, "0.5", None):
        with pytest.raises(ValueError, match="rate"):
            Dropout(bad)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7, 1 / 3])
def test_dropout_mask_is_the_textbook_formula_to_the_bit(dtype, rate):
    """Dropout.mask computes ((draw < keep) / keep).astype(dtype) with fewer passes; the same bits
    (so a seed gives the masks it always gave), for rates whose 1 / keep is not exact."""
    shape = (5, 7, 3)
    keep = 1 - rate
    want = ((np.random.default_rng(4).random(shape) < keep) / keep).astype(dtype)
    got = Dropout(rate, seed=4, dtype=dtype).mask(shape)
    assert got.dtype == np.dtype(dtype) and 0 < np.count_nonzero(got) < got.size
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def test_dropout_gradient_with_its_mask_fixed(rng):
    layer = Dropout(0.4, dtype="float64", seed=0)
    fixed = layer.mask((3, 6))
    layer.mask = lambda shape: fixed  # the same mask at every forward, for the finite differences
    assert check_layer(layer, rng.standard_normal((3, 6)))["x"] < 1e-6


# -- BatchNormalization --------------------------------------------------------------------------------
def bn_pair(keras, rng, C=3, **kwargs):
    ours, theirs = BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build((None, 5, 4, C))
    theirs.build((None, 5, 4, C))
    weights = [rng.standard_normal(C).astype(np.float32) for _ in theirs.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.5  # a variance
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False, "momentum": 0.9, "epsilon": 0.01}])
def test_batchnorm_matches_keras_in_training_and_inference(each_backend, keras, tf, rng, kwargs):
    ours, theirs = bn_pair(keras, rng, **kwargs)
    x = (rng.standard_normal((6, 5, 4, 3)) * 3 + 1).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(ours.forward(x), np.asarray(theirs(x, training=False)), rtol=1e-5, atol=1e-5)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_y = theirs(xt, training=True)
        k_loss = tf.reduce_sum(k_y * dy)
    k_dx, *k_grads = tape.gradient(k_loss, [xt, *theirs.trainable_weights])
    y = ours.forward(x, training=True)
    np.testing.assert_allclose(y, np.asarray(k_y), rtol=1e-4, atol=1e-5)
    for mine, theirs_w in zip(ours.get_weights(), theirs.get_weights()):  # moving statistics moved alike
        np.testing.assert_allclose(mine, theirs_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.backward(dy), np.asarray(k_dx), rtol=1e-3, atol=1e-4)
    for key, k_g in zip(ours.params, k_grads):
        np.testing.assert_allclose(ours.grads[key], np.asarray(k_g), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(each_backend, rng, training):
    layer = BatchNormalization(dtype="float64")
    layer.build((None, 4, 3, 2))
    layer.set_weights([rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(2), np.ones(2) * 1.5])
    if not training:
        layer.trainable = False  # as Keras 3: a frozen BatchNormalization uses its moving statistics
    errors = check_layer(layer, rng.standard_normal((3, 4, 3, 2)))
    assert max(errors.values()) < 1e-6, errors


def test_batchnorm_in_a_model_trains_as_keras(keras, rng):
    """A few SGD steps of Conv2D -> BatchNormalization -> ReLU -> Dense from the same weights:
    the same weights after, moving statistics included."""
    set_random_seed(0)
    model = Sequential([Conv2D(4, 3, input_shape=(8, 8, 2)), BatchNormalization(), ReLU(), Flatten(),
                        Dense(3, activation="softmax")])
    k_model = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                                keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    k_model.set_weights(model.get_weights())
    model.compile(loss="categorical_crossentropy", optimizer=SGD(0.05))
    k_model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.05))
    for step in range(3):
        x = rng.standard_normal((8, 8, 8, 2)).astype(np.float32)
        y = to_categorical(rng.integers(0, 3, 8), 3)
        loss, _ = model.train_on_batch(x, y)
        k_loss = k_model.train_on_batch(x, y)
        assert loss == pytest.approx(float(np.ravel(k_loss)[0]), rel=1e-4)
    for mine, theirs in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_a_refused_step_leaves_the_moving_statistics(rng, tmp_path):
    from minicnn.optimizers import NonFiniteError
    model = Sequential([Flatten(input_shape=(4, 4, 1)), BatchNormalization(), Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=SGD(1e39))  # every update overflows
    before = model.get_weights()
    with pytest.raises(NonFiniteError):
        model.train_on_batch(rng.random((4, 4, 4, 1)), to_categorical([0, 1, 0, 1], 2))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    path = model.save(tmp_path / "bn.npz")
    assert [w.shape for w in load_model(path).get_weights()] == [w.shape for w in before]


# -- global pooling, Reshape, Rescaling ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["GlobalAveragePooling2D", "GlobalMaxPooling2D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(keras, rng, name, keepdims):
    x = (rng.permutation(2 * 5 * 4 * 3).reshape(2, 5, 4, 3) / 100).astype(np.float64)  # no ties
    ours = getattr(minicnn.layers, name)(keepdims=keepdims, dtype="float64")
    theirs = getattr(keras.layers, name)(keepdims=keepdims)
    np.testing.assert_allclose(ours.forward(x), np.asarray(theirs(x.astype(np.float32))), rtol=1e-6)
    assert ours.forward(x).shape == ((2, 1, 1, 3) if keepdims else (2, 3))
    assert check_layer(ours, x)["x"] < 1e-6


def test_global_max_pooling_ties_go_to_the_first_maximum():
    x = np.ones((1, 2, 2, 1))
    layer = GlobalMaxPooling2D(dtype="float64")
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.array([[5.0]]))[0, :, :, 0], [[5, 0], [0, 0]])


def test_reshape_and_rescaling(keras, rng):
    x = rng.standard_normal((2, 4, 6, 1))
    for ours, theirs in [(Reshape((3, -1)), keras.layers.Reshape((3, -1))),
                         (Rescaling(1 / 255, offset=-0.5), keras.layers.Rescaling(1 / 255, offset=-0.5))]:
        np.testing.assert_allclose(ours.forward(x.astype(np.float32)), np.asarray(theirs(x.astype(np.float32))),
                                   rtol=1e-6)
    assert check_layer(Reshape((3, -1), dtype="float64"), x)["x"] < 1e-6
    assert check_layer(Rescaling(0.5, offset=1.0, dtype="float64"), x)["x"] < 1e-6
    with pytest.raises(ValueError, match="cannot reshape inputs of shape"):
        Sequential([Reshape((5, 5), input_shape=(4, 6, 1))])


# -- Input, the namespace, Keras conveniences ---------------------------------------------------------
def test_keras_namespace_and_input(capsys):
    assert minicnn.Sequential is Sequential and minicnn.Input is Input and minicnn.Model is minicnn.models.Model
    assert minicnn.layers.MaxPool2D is minicnn.layers.MaxPooling2D
    assert minicnn.layers.AvgPool2D is minicnn.layers.AveragePooling2D
    assert minicnn.backend.image_data_format() == "channels_last"
    model = minicnn.Sequential([minicnn.Input(shape=(6, 6, 1)), Conv2D(2, 3), Flatten(), Dense(2)])
    assert model.built and model.input_shape == (None, 6, 6, 1) and len(model.layers) == 3  # the Input is no layer
    assert model.get_layer(index=1) is model.layers[1] and model.get_layer(name=model.layers[0].name) is model.layers[0]
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    x = np.zeros((3, 6, 6, 1), np.float32)
    np.testing.assert_array_equal(model(x), model.predict(x, verbose=0))
    model.summary(line_length=40)
    assert "-" * 40 + "\n" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Input can only come first"):
        model.add(minicnn.Input(shape=(2,)))
    with pytest.raises(ValueError, match="Input needs a shape"):
        minicnn.Input()


@pytest.mark.parametrize("padding", [1, (2, 0), ((1, 2), (0, 3))])
def test_zero_padding(keras, rng, padding):
    x = rng.standard_normal((2, 4, 5, 3))
    ours = minicnn.layers.ZeroPadding2D(padding, dtype="float64")
    np.testing.assert_allclose(ours.forward(x), np.asarray(keras.layers.ZeroPadding2D(padding)(x.astype(np.float32))),
                               rtol=1e-6)
    assert check_layer(ours, x)["x"] < 1e-6
    with pytest.raises(ValueError, match="padding must"):
        minicnn.layers.ZeroPadding2D("same")


def test_keras_2_idioms(tmp_path, rng):
    """metrics=["acc"] gives history["acc"] and ["val_acc"] (Keras names the keys as given); an
    .h5 or .keras file name holds minicnn's own format, and loads back."""
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["acc"])
    x, y = rng.random((20, 4, 4, 1)), to_categorical(rng.integers(0, 2, 20), 2)
    history = model.fit(x, y, epochs=2, validation_split=0.2, verbose=0,
                        callbacks=[minicnn.callbacks.ModelCheckpoint(str(tmp_path / "best.h5"), monitor="val_acc")])
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert list(model.evaluate(x, y, verbose=0, return_dict=True)) == ["loss", "acc"]
    for name in ("w.h5", "m.keras", "m.hdf5"):
        model.save(tmp_path / name)
        np.testing.assert_array_equal(load_model(tmp_path / name).predict(x, verbose=0), model.predict(x, verbose=0))
    model.save_weights(tmp_path / "weights.weights.h5")
    model.load_weights(tmp_path / "weights.weights.h5")
    assert (tmp_path / "best.h5").is_file()
    with pytest.raises(ValueError, match="distinct names"):
        model.compile(loss="mse", optimizer="adam", metrics=["accuracy", minicnn.metrics.CategoricalAccuracy("accuracy")])


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


def test_regularizers_in_loss_and_steps_as_keras(keras, rng, tmp_path):
    from minicnn import regularizers
    set_random_seed(4)
    model = Sequential([Flatten(input_shape=(4, 4, 1)),
                        Dense(6, activation="relu", kernel_regularizer=regularizers.L2(0.01), bias_regularizer="l1"),
                        Dense(3, activation="softmax", kernel_regularizer=regularizers.L1L2(l1=0.001, l2=0.002))])
    K = keras.regularizers
    k_model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(6, activation="relu", kernel_regularizer=K.L2(0.01),
                                                   bias_regularizer="l1"),
                                keras.layers.Dense(3, activation="softmax", kernel_regularizer=K.L1L2(l1=0.001, l2=0.002))])
    weights = model.get_weights()
    weights[1] = rng.standard_normal(6).astype(np.float32) * 0.1  # a bias the l1 penalty can see
    model.set_weights(weights)
    k_model.set_weights(weights)
    model.compile(loss="categorical_crossentropy", optimizer=SGD(0.1))
    k_model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.1))
    x, y = rng.random((8, 4, 4, 1), dtype=np.float32), to_categorical(rng.integers(0, 3, 8), 3)
    for _ in range(3):
        loss, _ = model.train_on_batch(x, y)
        assert loss == pytest.approx(float(np.ravel(k_model.train_on_batch(x, y))[0]), rel=1e-4)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(k_model.evaluate(x, y, verbose=0)), rel=1e-4)
    again = load_model(model.save(tmp_path / "reg.npz"))
    assert again.regularization_loss() == pytest.approx(model.regularization_loss())
    with pytest.raises(ValueError, match="unknown regularizer"):
        Dense(2, kernel_regularizer="l3")
