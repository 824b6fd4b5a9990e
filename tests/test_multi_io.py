"""Models of several inputs and several outputs (minicnn/multi_io.py): the same weights, losses
and History keys as Keras 3 after three steps from the same weights, loss and loss_weights as
lists and dicts, predict's list, the summary's "Connected to" column, model.weights' order."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn


def two_in_two_out(lib):
    """Keras's "multi-input multi-output" guide example, small: an image and a vector in, a class
    (softmax) and a score (linear) out; the same code builds the model in minicnn and in Keras."""
    L = lib.layers
    image = lib.Input(shape=(6, 6, 1), name="image")
    tags = lib.Input(shape=(5,), name="tags")
    x = L.Flatten(name="flat")(L.Conv2D(2, 3, activation="relu", name="conv")(image))
    t = L.Dense(4, activation="relu", name="tag_dense")(tags)
    h = L.Concatenate(name="merge")([x, t])
    digit = L.Dense(3, activation="softmax", name="digit")(h)
    score = L.Dense(1, name="score")(h)
    return lib.Model(inputs=[image, tags], outputs=[digit, score])


def data(rng, n=12):
    x = [rng.standard_normal((n, 6, 6, 1)).astype(np.float32), rng.standard_normal((n, 5)).astype(np.float32)]
    y = [rng.integers(0, 3, n), rng.standard_normal((n, 1)).astype(np.float32)]
    return x, y


def twins(rng):
    keras = pytest.importorskip("keras")
    ours, theirs = two_in_two_out(minicnn), two_in_two_out(keras)
    assert [tuple(w.shape) for w in theirs.weights] == [w.shape for w in ours.weights]  # Keras's order
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in ours.weights])
    theirs.set_weights(ours.get_weights())
    return ours, theirs


@pytest.mark.parametrize("style", ["list", "dict", "one"])
def test_three_steps_match_keras(rng, style):
    """Three SGD steps (batch 4, no shuffle) with validation data: the same weights and the same
    History (keys and values) as Keras 3; loss and loss_weights as lists, as dicts, one loss for all."""
    keras = pytest.importorskip("keras")
    ours, theirs = twins(rng)
    x, y = data(rng)
    if style == "list":
        args = {"loss": ["sparse_categorical_crossentropy", "mse"], "loss_weights": [1.0, 0.3],
                "metrics": [["accuracy"], ["mae"]]}
        fit_x, fit_y = x, y
    elif style == "one":  # one loss for every output, the digits one-hot
        args = {"loss": "mse", "metrics": {"score": ["mae"]}}
        y = [np.eye(3, dtype=np.float32)[y[0]], y[1]]
        fit_x, fit_y = x, y
    else:
        args = {"loss": {"digit": "sparse_categorical_crossentropy", "score": "mse"},
                "loss_weights": {"digit": 0.7, "score": 2.0}, "metrics": {"digit": "accuracy"}}
        fit_x, fit_y = {"image": x[0], "tags": x[1]}, {"digit": y[0], "score": y[1]}
    ours.compile(optimizer=minicnn.optimizers.SGD(0.02), **args)
    theirs.compile(optimizer=keras.optimizers.SGD(0.02), **args)
    val = ([a[:5] for a in x], [a[:5] for a in y])
    kw = {"batch_size": 4, "epochs": 1, "shuffle": False, "verbose": 0, "validation_data": val}
    h_ours, h_theirs = ours.fit(fit_x, fit_y, **kw), theirs.fit(fit_x, fit_y, **kw)
    assert sorted(h_ours.history) == sorted(h_theirs.history)
    for k, v in h_theirs.history.items():
        np.testing.assert_allclose(h_ours.history[k], v, rtol=2e-5, atol=1e-6, err_msg=k)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ev_ours, ev_theirs = ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(ev_ours, ev_theirs, rtol=2e-5, atol=1e-6)  # loss, each loss, metrics: Keras's order
    p_ours, p_theirs = ours.predict(x, verbose=0), theirs.predict(x, verbose=0)
    assert isinstance(p_ours, list) and [p.shape for p in p_ours] == [(12, 3), (12, 1)]
    for a, b in zip(p_ours, p_theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_output", [True, False])
def test_sample_weight_and_validation_split(rng, per_output):
    """sample_weight as [(N,) per output] weighs each output's loss alone, one (N,) array weighs
    every output's; validation_split cuts every input, output and weight alike (Keras's last
    samples): the same History as Keras."""
    keras = pytest.importorskip("keras")
    ours, theirs = twins(rng)
    x, y = data(rng)
    w = rng.random(12).astype(np.float32)
    w = [w, np.ones(12, np.float32)] if per_output else w  # Keras takes a list with a list y
    args = {"loss": {"digit": "sparse_categorical_crossentropy", "score": "mse"}}
    ours.compile(optimizer=minicnn.optimizers.SGD(0.02), **args)
    theirs.compile(optimizer=keras.optimizers.SGD(0.02), **args)
    kw = {"batch_size": 4, "epochs": 2, "shuffle": False, "verbose": 0, "validation_split": 0.25,
          "sample_weight": w}
    h_ours, h_theirs = ours.fit(x, y, **kw), theirs.fit(x, y, **kw)
    assert sorted(h_ours.history) == sorted(h_theirs.history)
    for k, v in h_theirs.history.items():
        np.testing.assert_allclose(h_ours.history[k], v, rtol=2e-5, atol=1e-6, err_msg=k)


def test_clear_errors_for_lists_and_dicts(rng):
    model = two_in_two_out(minicnn)
    x, y = data(rng)
    with pytest.raises(ValueError, match="list of 3 entries, but the model has 2 outputs"):
        model.compile(loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match=r"\['size'\], which are not outputs"):
        model.compile(loss={"size": "mse"})
    with pytest.raises(ValueError, match="metrics is a list of 1 entries"):
        model.compile(loss="mse", metrics=["mae"])
    model.compile(loss=["sparse_categorical_crossentropy", "mse"], optimizer="sgd")
    with pytest.raises(ValueError, match="one per input"):
        model.fit(x[0], y, verbose=0)
    with pytest.raises(ValueError, match=r"y\['score'\] must have shape \(N, 1\)"):
        model.fit(x, [y[0], np.zeros((12, 2))], verbose=0)
    with pytest.raises(ValueError, match=r"y\['score'\] must have shape"):  # a generator's batches are checked too
        model.fit(iter([(x, [y[0], np.zeros((12, 2))])]), verbose=0)
    with pytest.raises(ValueError, match="class_weight is for a model of one output"):
        model.fit(x, y, class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="no array for the input"):
        model.predict({"image": x[0]}, verbose=0)


def test_summary_connected_to():
    """A row per Input ("-": it reads nothing), then each layer with the tensors it reads, in
    Keras's spelling layer[call][0]."""
    lines = []
    two_in_two_out(minicnn).summary(print_fn=lines.append)
    rows = {line.split()[0]: line.rstrip() for line in "\n".join(lines).splitlines()[3:] if line.strip()}
    assert lines[0].splitlines()[2].rstrip().endswith("Connected to")
    assert rows["image"].split() == ["image", "(InputLayer)", "(None,", "6,", "6,", "1)", "0", "0", "-"]
    assert rows["merge"].endswith("flat[0][0], tag_dense[0][0]")
    assert rows["digit"].endswith("merge[0][0]") and rows["conv"].endswith("image[0][0]")
    assert rows["tag_dense"].endswith("tags[0][0]")


def test_weights_is_a_list_of_the_arrays_themselves():
    model = two_in_two_out(minicnn)
    assert len(model.weights) == 8 and model.weights[0].shape == (3, 3, 1, 2)
    assert model.weights[0] is model.get_layer("conv").params["W"]  # not a copy: Keras's variables
    assert [w.shape for w in model.get_layer("digit").weights] == [(36, 3), (3,)]


def test_save_and_load_keep_both_inputs_and_outputs(rng, tmp_path):
    """The graph, the weights and compile's per-output losses, weights and metrics: training goes on
    after load_model exactly as it would have."""
    model = two_in_two_out(minicnn)
    x, y = data(rng)
    model.compile(optimizer="adam", loss={"digit": "sparse_categorical_crossentropy", "score": "mse"},
                  loss_weights={"digit": 1.0, "score": 0.25}, metrics={"digit": ["accuracy"], "score": "mae"})
    model.fit(x, y, batch_size=4, verbose=0)
    model.save(tmp_path / "m.npz")
    again = minicnn.models.load_model(tmp_path / "m.npz")
    assert again.input_names == ["image", "tags"] and again.output_names == ["digit", "score"]
    for a, b in zip(model.predict(x, verbose=0), again.predict({"tags": x[1], "image": x[0]}, verbose=0)):
        np.testing.assert_array_equal(a, b)
    h1 = model.fit(x, y, batch_size=4, verbose=0, shuffle=False).history
    h2 = again.fit(x, y, batch_size=4, verbose=0, shuffle=False).history
    assert list(h1) == list(h2) == ["loss", "digit_loss", "score_loss", "digit_accuracy", "score_mae"]
    for k in h1:
        np.testing.assert_allclose(h1[k], h2[k], rtol=1e-6, err_msg=k)


def test_trace_and_pictures_say_they_take_one_input_and_one_output(rng):
    from minicnn import plot
    model = two_in_two_out(minicnn)
    x, y = data(rng)
    model.compile(loss=["sparse_categorical_crossentropy", "mse"], optimizer="sgd")
    for call in (lambda: model.trace(x), lambda: plot.feature_maps(model, x[0][0]),
                 lambda: plot.activation_histograms(model, x, y)):
        with pytest.raises(ValueError, match=r"one input and one output; this one has inputs \['image', 'tags'\]"):
            call()


def test_layer_input_and_output_in_the_graph():
    model = two_in_two_out(minicnn)
    merge = model.get_layer("merge")
    assert merge.input == [model.get_layer("flat").output, model.get_layer("tag_dense").output]
    assert model.get_layer("conv").input is model.inputs[0] and model.get_layer("digit").output is model.outputs[0]
    probe = minicnn.Model(model.inputs, merge.output)  # a sub-model from the graph's tensors, as in Keras
    assert probe.output_shape == (None, 36)


def test_callbacks_see_each_outputs_logs(rng):
    """EarlyStopping and ModelCheckpoint watch a per-output entry such as val_digit_loss."""
    model = two_in_two_out(minicnn)
    x, y = data(rng)
    model.compile(optimizer=minicnn.optimizers.SGD(0.02), loss=["sparse_categorical_crossentropy", "mse"])
    seen = []
    stop = minicnn.callbacks.EarlyStopping(monitor="val_digit_loss", patience=0, mode="min")
    log = minicnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(sorted(logs)))
    model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[stop, log])
    assert seen[0] == ["digit_loss", "loss", "score_loss", "val_digit_loss", "val_loss", "val_score_loss"]
    outputs = model(x)
    assert isinstance(outputs, list) and len(outputs) == 2


def test_a_model_of_several_inputs_as_a_layer_is_a_clear_error():
    model = two_in_two_out(minicnn)
    with pytest.raises(ValueError, match="as a layer of another only with one input and one output"):
        model([minicnn.Input(shape=(6, 6, 1)), minicnn.Input(shape=(5,))])


def test_on_the_device_stand_in_the_same_steps_as_on_the_host(rng, fake_gpu):
    """model.to("gpu") (the strict stand-in for CuPy: a missed host-to-device move fails): every
    input, target and weight moves with its batch; the same History and weights as on the host."""
    from minicnn import gpu
    host, dev = two_in_two_out(minicnn), two_in_two_out(minicnn)
    dev.set_weights(host.get_weights())
    dev.to("gpu")
    x, y = data(rng)
    w = [rng.random(12).astype(np.float32), None]
    for model in (host, dev):
        model.compile(optimizer=minicnn.optimizers.SGD(0.02), loss=["sparse_categorical_crossentropy", "mse"],
                      metrics=[["accuracy"], ["mae"]])
    kw = {"batch_size": 4, "shuffle": False, "verbose": 0, "validation_split": 0.25, "sample_weight": w}
    h_host, h_dev = host.fit(x, y, **kw).history, dev.fit(x, y, **kw).history
    assert gpu.is_device_array(dev.weights[0])
    for k in h_host:
        np.testing.assert_allclose(h_dev[k], h_host[k], rtol=1e-5, err_msg=k)
    for a, b in zip(host.get_weights(), dev.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(host.predict(x, verbose=0), dev.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_generator_of_list_and_dict_batches_trains_as_the_arrays(rng):
    """fit and evaluate on a generator (or PyDataset) of ([x1, x2], {"digit": y1, ...}) batches: the
    same History and weights as on the arrays, batch for batch."""
    arrays, batches = two_in_two_out(minicnn), two_in_two_out(minicnn)
    batches.set_weights(arrays.get_weights())
    x, y = data(rng)
    for model in (arrays, batches):
        model.compile(optimizer=minicnn.optimizers.SGD(0.02), loss=["sparse_categorical_crossentropy", "mse"],
                      metrics={"digit": "accuracy"})

    def gen():
        while True:
            for s in range(0, 12, 4):
                yield [a[s:s + 4] for a in x], {"digit": y[0][s:s + 4], "score": y[1][s:s + 4]}
    h1 = arrays.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    h2 = batches.fit(gen(), steps_per_epoch=3, epochs=2, verbose=0).history
    assert list(h1) == list(h2)
    for k in h1:
        np.testing.assert_allclose(h2[k], h1[k], rtol=1e-6, err_msg=k)
    for a, b in zip(arrays.get_weights(), batches.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(batches.evaluate(gen(), steps=3, verbose=0), arrays.evaluate(x, y, batch_size=4, verbose=0),
                               rtol=1e-6)
