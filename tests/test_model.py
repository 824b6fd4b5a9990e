import numpy as np
import pytest
from toy import small_data, small_model, tutorial_model

import minicnn
from minicnn import losses
from minicnn.callbacks import Callback
from minicnn.layers import Activation, Conv2D, Dense, Flatten, Input, MaxPooling2D, Softmax
from minicnn.models import Sequential, load_model
from minicnn.utils import set_random_seed, to_categorical


def test_tutorial_model_parameters_and_summary(capsys):
    model = tutorial_model()
    assert model.count_params() == 140_682
    assert [layer.count_params() for layer in model.layers] == [640, 0, 0, 36_928, 0, 0, 0, 102_464, 650, 0]
    model.summary()
    out = capsys.readouterr().out
    for shape in ["(None, 26, 26, 64)", "(None, 13, 13, 64)", "(None, 11, 11, 64)", "(None, 5, 5, 64)",
                  "(None, 1600)", "(None, 64)", "(None, 10)"]:
        assert shape in out
    assert "Total params: 140,682" in out and "4,952,960" in out
    assert "conv2d_" in out.replace("conv2d (", "conv2d_ (") and "max_pooling2d" in out


def test_keras_shapes_and_weight_order():
    conv = Conv2D(32, (3, 3), input_shape=(28, 28, 1))
    Sequential([conv])
    assert conv.params["W"].shape == (3, 3, 1, 32) and conv.params["b"].shape == (32,)
    assert conv.count_params() == 320  # as Keras reports
    assert np.all(conv.params["b"] == 0) and np.abs(conv.params["W"]).max() <= np.sqrt(6 / (9 + 288))
    dense = Dense(7)
    dense.forward(np.zeros((2, 5), dtype=np.float32))
    assert [w.shape for w in dense.get_weights()] == [(5, 7), (7,)]


def test_layer_protocol_by_hand(rng):
    layer = Dense(3)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = layer(x)  # builds
    assert layer.built and y.shape == (4, 3) and y.dtype == np.float32
    with pytest.raises(RuntimeError, match="forward\\(x, training=True\\) before backward"):
        Dense(2).backward(np.zeros((1, 2)))
    before = [w.copy() for w in layer.get_weights()]
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((4, 3), dtype=np.float32))
    assert dx.shape == x.shape and set(layer.grads) == set(layer.params)
    assert all(layer.grads[k].shape == layer.params[k].shape for k in layer.params)
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights()))  # backward never updates
    with pytest.raises(ValueError, match="weight 'W' has shape"):
        layer.set_weights([np.zeros((2, 2)), np.zeros(3)])


def test_fit_evaluate_predict_api(capsys):
    set_random_seed(0)
    x, y = small_data()
    model = small_model()
    model.compile(loss=minicnn.losses.categorical_crossentropy, optimizer=minicnn.optimizers.Adam(0.01),
                  metrics=["accuracy"])
    seen = []

    class Recorder(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(("epoch", epoch))

        def on_train_batch_end(self, batch, logs=None):
            seen.append(("batch", batch, sorted(logs)))

    history = model.fit(x, y, batch_size=64, epochs=3, verbose=0, validation_split=0.25, callbacks=[Recorder()])
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 3 for v in history.history.values()) and history.epoch == [0, 1, 2]
    assert seen[:2] == [("epoch", 0), ("batch", 0, ["accuracy", "loss"])] and len(seen) == 3 * (1 + 3)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(x, y, verbose=0)
    assert history.history["accuracy"][-1] > 0.8 and acc > 0.8
    p = model.predict(x, batch_size=100, verbose=0)
    assert p.shape == (256, 2) and p.dtype == np.float32 and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    # evaluate's loss is the mean per-sample loss of predict's outputs
    assert loss == pytest.approx(float(minicnn.losses.categorical_crossentropy(y, p).mean()), rel=1e-5)
    assert acc == pytest.approx(float((p.argmax(1) == y.argmax(1)).mean()))
    model.fit(x, y, batch_size=64, epochs=1, verbose=1)
    assert "Epoch 1/1" in capsys.readouterr().err  # the tqdm progress bar


def test_sparse_loss_by_name_and_sgd():
    set_random_seed(1)
    x, y = small_data()
    model = small_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer=minicnn.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x, y.argmax(1), batch_size=32, epochs=3, verbose=0)
    assert model.evaluate(x, y.argmax(1), verbose=0)[1] > 0.8


def test_training_step_stays_float32_and_float64_works():
    for dtype in ("float32", "float64"):
        set_random_seed(0)
        x, y = small_data(64)
        model = small_model(dtype)
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        model.train_on_batch(x, y)
        for layer in model.layers:
            assert all(a.dtype == np.dtype(dtype) for a in [*layer.params.values(), *layer.grads.values()])
        assert all(s.dtype == np.dtype(dtype) for slots in model.optimizer.slots for s in slots.values())
        assert model.predict(x, verbose=0).dtype == np.dtype(dtype)


def test_same_seed_same_weights(each_backend):
    runs = []
    for _ in range(2):
        set_random_seed(42)
        x, y = small_data(128)
        model = small_model()
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        runs.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    set_random_seed(43)
    assert not np.array_equal(small_model().get_weights()[0], runs[0][0])


def test_backends_take_the_same_training_steps():
    results = []
    for name in minicnn.backend.BACKENDS:
        minicnn.backend.set_backend(name)
        set_random_seed(7)
        x, y = small_data(128)
        model = small_model()
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        results.append(model.get_weights())
    minicnn.backend._state["name"] = None
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_get_set_weights_roundtrip():
    set_random_seed(0)
    a, b = small_model(), small_model()
    x, _ = small_data(8)
    assert not np.allclose(a.predict(x, verbose=0), b.predict(x, verbose=0))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    with pytest.raises(ValueError, match="has 4 weight arrays, got 1"):
        b.set_weights([np.zeros(1)])


def test_clear_errors_at_the_boundary():
    model = small_model()
    x, y = small_data(16)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y)
    with pytest.raises(RuntimeError, match=r"before model.evaluate\(\)"):
        model.evaluate(x, y)
    with pytest.raises(ValueError, match="valid losses"):
        model.compile(loss="crossentropy", optimizer="adam")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    with pytest.raises(ValueError, match="reshape\\(-1, 8, 8, 1\\)"):
        model.fit(x[..., 0], y, verbose=0)
    with pytest.raises(ValueError, match="to_categorical"):
        model.fit(x, y.argmax(1), verbose=0)
    with pytest.raises(ValueError, match="16 samples but y has 15"):
        model.fit(x, y[:15], verbose=0)
    with pytest.raises(ValueError, match="to_categorical"):  # train_on_batch checks as fit does
        model.train_on_batch(x, y.argmax(1))
    with pytest.raises(ValueError, match=r"y must have shape \(N, 2\)"):
        model.train_on_batch(x, np.zeros((16, 3), np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        model.fit(x, y, epochs=-1, verbose=0)
    with pytest.raises(ValueError, match="valid activations"):
        Activation("mish")
    with pytest.raises(ValueError, match="valid optimizers"):
        model.compile(loss="mse", optimizer="lion")
    with pytest.raises(ValueError, match="valid metrics"):
        model.compile(loss="mse", optimizer="adam", metrics=["auc"])
    with pytest.raises(ValueError, match=r"window is larger than its 2x2"):
        Sequential([Conv2D(2, 3, input_shape=(2, 2, 1))])
    with pytest.raises(ValueError, match="padding must be"):
        MaxPooling2D(padding="full")
    with pytest.raises(ValueError, match="Flatten"):
        Sequential([Dense(3, input_shape=(4, 4, 1))])


def test_validation_split_that_leaves_nothing_is_a_clear_error():
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    x, y = small_data(10)
    before = model.get_weights()
    for n, split in [(2, 0.9), (1, 0.5), (10, 1e-17)]:  # no training samples; no validation samples
        with pytest.raises(ValueError, match=f"{n} samples, too few to split.*validation_split={split}"):
            model.fit(x[:n], y[:n], validation_split=split, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    history = model.fit(x, y, validation_split=0.5, epochs=1, verbose=0)  # 5 and 5: fine
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_to_categorical_like_keras():
    np.testing.assert_array_equal(to_categorical([2, 0, 1]), np.eye(3, dtype=np.float32)[[2, 0, 1]])
    assert to_categorical(np.array([[1], [3]]), 5).shape == (2, 5)
    assert to_categorical([1]).dtype == np.float32
    with pytest.raises(ValueError, match="num_classes=2"):
        to_categorical([3], 2)
    with pytest.raises(ValueError, match="label 2 does not fit num_classes=2"):  # the boundary: a label == num_classes
        to_categorical([0, 2, 1], 2)
    np.testing.assert_array_equal(to_categorical([0, 1, 1], 2), [[1, 0], [0, 1], [0, 1]])  # num_classes - 1 fits
    with pytest.raises(ValueError, match=">= 0"):
        to_categorical([-1, 1])


@pytest.mark.slow
def test_short_real_training_run(real_data):
    """A few thousand real images, one epoch: the engine learns (tutorial model, both losses)."""
    (x_train, y_train), (x_test, y_test) = real_data
    set_random_seed(0)
    model = tutorial_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    x = x_train[:6000].reshape(-1, 28, 28, 1).astype("float32") / 255
    model.fit(x, to_categorical(y_train[:6000]), batch_size=64, epochs=1, verbose=0)
    loss, acc = model.evaluate(x_test[:2000].reshape(-1, 28, 28, 1) / 255, to_categorical(y_test[:2000], 10),
                               verbose=0)
    assert acc >= 0.72 and loss < 0.8, (loss, acc)


def test_predict_and_evaluate_do_not_depend_on_batch_size():
    """Inference runs in chunks of INFERENCE_CHUNK samples whatever batch_size is."""
    from minicnn.models import INFERENCE_CHUNK
    set_random_seed(1)
    x, y = small_data(2 * INFERENCE_CHUNK + 7)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    one = model.predict(x, batch_size=1, verbose=0)
    for b in (7, INFERENCE_CHUNK, len(x)):
        np.testing.assert_allclose(model.predict(x, batch_size=b, verbose=0), one, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(model.evaluate(x, y, batch_size=b, verbose=0),
                                   model.evaluate(x, y, batch_size=1, verbose=0), rtol=1e-5)


def test_tensorflow_numpy_and_softmax_config(rng, tmp_path):
    model = Sequential([Flatten(input_shape=(3, 3)), Dense(2), Softmax()])
    out = model(rng.random((2, 3, 3), dtype=np.float32))
    assert out.numpy().shape == (2, 2) and type(out.numpy()) is np.ndarray
    assert float(losses.SparseCategoricalCrossentropy()([0, 1], out).numpy()) > 0
    assert type(load_model(model.save(tmp_path / "s.npz")).layers[-1]) is Softmax  # its get_config was broken


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


def test_sequential_forward_and_backward_watched_without_steps():
    """forward(x, watch=f) and backpropagate(dy, watch=f) with no steps run the layers' own calls,
    each seen once, with the same outputs and gradients as the plan (fused where it can be)."""
    L = minicnn.layers
    model = Sequential([L.Conv2D(2, 3), L.ReLU(), L.MaxPooling2D(), L.Flatten(), L.Dense(3)])
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 1)).astype(np.float32)
    seen = []

    def watch(node, run):
        seen.append(node.layer.name)
        return run()
    y = model.forward(x, training=True, watch=watch)
    assert seen == [layer.name for layer in model.layers]
    np.testing.assert_allclose(y, model.forward(x, training=True), rtol=1e-6)
    model.backpropagate(np.ones_like(y))
    plain = [g.copy() for layer in model.layers for g in layer.grads.values()]
    model.forward(x, training=True, watch=watch)
    model.backpropagate(np.ones_like(y), watch=watch)
    assert seen[-5:] == [layer.name for layer in model.layers][::-1]
    for a, b in zip(plain, [g for layer in model.layers for g in layer.grads.values()]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
