"""Loss objects as Keras's (from_logits, label_smoothing), called directly or given to compile;
a warning for a probability loss on outputs that are not probabilities; a model used as a layer
of another; and TensorFlow's .numpy() on what model(x) and a loss return."""
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn import losses
from minicnn.layers import Dense, Flatten, Softmax
from minicnn.models import Model, Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed, to_categorical

CASES = [("CategoricalCrossentropy", {"from_logits": True}), ("CategoricalCrossentropy", {}),
         ("CategoricalCrossentropy", {"label_smoothing": 0.2}),
         ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
         ("SparseCategoricalCrossentropy", {"from_logits": True}), ("SparseCategoricalCrossentropy", {}),
         ("MeanSquaredError", {})]


@pytest.mark.parametrize("name,kwargs", CASES)
def test_loss_objects_match_keras_values_and_gradients(keras, tf, rng, name, kwargs):
    z = rng.standard_normal((6, 4)).astype(np.float32) * 3
    labels = rng.integers(0, 4, 6)
    y = labels if name.startswith("Sparse") else to_categorical(labels, 4)
    pred = z if kwargs.get("from_logits") or name == "MeanSquaredError" else np.exp(z) / np.exp(z).sum(1, keepdims=True)
    ours, theirs = getattr(losses, name)(**kwargs), getattr(keras.losses, name)(**kwargs)
    assert float(ours(y, pred)) == pytest.approx(float(theirs(y, pred)), rel=1e-5)
    zt = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        value = theirs(y, zt)
    np.testing.assert_allclose(ours.gradient(y, pred), tape.gradient(value, zt).numpy(), rtol=1e-4, atol=1e-6)


def test_from_logits_is_stable_at_huge_logits():
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    loss = losses.CategoricalCrossentropy(from_logits=True)
    assert float(loss([[0, 1, 0]], z)) == pytest.approx(2e4, rel=1e-6)
    assert np.isfinite(loss.gradient(np.array([[0, 1, 0]], np.float32), z)).all()
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=2)


def test_logits_model_trains_like_keras_and_saves_its_loss(keras, rng, tmp_path):
    """Dense(10) without softmax and SparseCategoricalCrossentropy(from_logits=True), as the
    TensorFlow tutorials write it: the same weights as Keras after a few SGD steps."""
    set_random_seed(0)
    model = Sequential([Flatten(input_shape=(6, 6)), Dense(8, activation="relu"), Dense(4)])
    k_model = keras.Sequential([keras.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"),
                                keras.layers.Dense(4)])
    k_model.set_weights(model.get_weights())
    model.compile(loss=losses.SparseCategoricalCrossentropy(from_logits=True), optimizer=SGD(0.1))
    k_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    optimizer=keras.optimizers.SGD(0.1))
    for _ in range(3):
        x, y = rng.random((8, 6, 6), dtype=np.float32), rng.integers(0, 4, 8)
        assert model.train_on_batch(x, y)[0] == pytest.approx(float(np.ravel(k_model.train_on_batch(x, y))[0]),
                                                             rel=1e-5)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    again = load_model(model.save(tmp_path / "logits.npz"))
    assert isinstance(again.loss, losses.SparseCategoricalCrossentropy) and again.loss.from_logits


def test_a_probability_loss_on_logits_warns_once(rng):
    model = Sequential([Flatten(input_shape=(6, 6)), Dense(4)])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    x, y = rng.random((16, 6, 6), dtype=np.float32), rng.integers(0, 4, 16)
    with pytest.warns(UserWarning, match="expects probabilities.*SparseCategoricalCrossentropy\\(from_logits=True\\)"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per model: not again
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        softmax = Sequential([Flatten(input_shape=(6, 6)), Dense(4, activation="softmax")])
        softmax.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        softmax.fit(x, y, verbose=0)  # probabilities: no warning


def test_a_model_as_a_layer(rng, tmp_path):
    set_random_seed(1)
    inner = Sequential([Flatten(input_shape=(6, 6)), Dense(8, activation="relu"), Dense(4)])
    outer = Sequential([inner, Softmax()])
    x, y = rng.random((12, 6, 6), dtype=np.float32), rng.integers(0, 4, 12)
    logits = inner.predict(x, verbose=0)
    np.testing.assert_allclose(outer.predict(x, verbose=0), np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                               rtol=1e-5)
    inputs = minicnn.Input((6, 6))
    graph = Model(inputs, Softmax()(inner(inputs)))
    np.testing.assert_allclose(graph.predict(x, verbose=0), outer.predict(x, verbose=0), rtol=1e-6)
    assert outer.count_params() == inner.count_params() and len(outer.get_weights()) == 4
    outer.compile(loss="sparse_categorical_crossentropy", optimizer=SGD(0.1))
    before = inner.get_weights()
    outer.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert all(np.any(a != b) for a, b in zip(before, inner.get_weights()))  # the outer optimizer trained the inner model
    again = load_model(outer.save(tmp_path / "outer.npz"))
    np.testing.assert_array_equal(again.predict(x, verbose=0), outer.predict(x, verbose=0))
    with pytest.raises(ValueError, match="must be built"):
        Sequential([Sequential([Dense(2)]), Softmax()])


def test_tensorflow_numpy_and_softmax_config(rng, tmp_path):
    model = Sequential([Flatten(input_shape=(3, 3)), Dense(2), Softmax()])
    out = model(rng.random((2, 3, 3), dtype=np.float32))
    assert out.numpy().shape == (2, 2) and type(out.numpy()) is np.ndarray
    assert float(losses.SparseCategoricalCrossentropy()([0, 1], out).numpy()) > 0
    assert type(load_model(model.save(tmp_path / "s.npz")).layers[-1]) is Softmax  # its get_config was broken


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"centered": True}, {"rho": 0.8, "momentum": 0.5,
                                                                               "centered": True, "epsilon": 1e-5}])
def test_rmsprop_takes_keras_steps(keras, rng, kwargs):
    from minicnn.optimizers import RMSprop
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours, theirs = RMSprop(learning_rate=0.01, **kwargs), keras.optimizers.RMSprop(learning_rate=0.01, **kwargs)
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
    for mine, v in zip(params, variables):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=1e-5, atol=1e-6)
    assert minicnn.optimizers.get("rmsprop").get_config()["rho"] == 0.9


def test_unknown_optimizer_arguments_are_refused():
    # Keras 2's lr= and decay= are accepted, as Keras 2 applied them: tests/test_legacy.py
    from minicnn.optimizers import Adam
    with pytest.raises(TypeError, match="unexpected arguments"):
        Adam(beta=0.9)


def test_reduce_lr_on_plateau(keras, rng):
    """The same sequence of losses through minicnn's callback and Keras's: the same rates, cut by
    `factor` after `patience` epochs without improvement, `cooldown` epochs apart, not below min_lr."""
    from minicnn.callbacks import ReduceLROnPlateau
    from minicnn.optimizers import Adam
    kwargs = {"monitor": "loss", "factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 0.02}
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer=Adam(0.1))
    k_model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    k_model.compile(loss="mse", optimizer=keras.optimizers.Adam(0.1))
    runs = []
    for m, cb in ((model, ReduceLROnPlateau(**kwargs)), (k_model, keras.callbacks.ReduceLROnPlateau(**kwargs))):
        cb.set_model(m)
        cb.on_train_begin()
        rates = []
        for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.95, 0.96, 0.97, 0.98]):
            logs = {"loss": loss}
            cb.on_epoch_end(epoch, logs)
            rates.append(round(float(logs["learning_rate"]), 6))
        runs.append(rates)
    assert runs[0] == runs[1] == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02]
    assert model.optimizer.learning_rate == 0.02
    x, y = rng.random((8, 2, 2), dtype=np.float32), rng.integers(0, 2, 8)
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[ReduceLROnPlateau(monitor="loss", patience=1)])
    assert history.history["learning_rate"][0] == pytest.approx(0.02)  # History sees what callbacks log
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=2)


@pytest.mark.parametrize("name,kwargs,sparse", [("CategoricalAccuracy", {}, False), ("SparseCategoricalAccuracy", {}, True),
                                                ("TopKCategoricalAccuracy", {"k": 2}, False),
                                                ("SparseTopKCategoricalAccuracy", {"k": 3}, True)])
def test_metric_objects_match_keras(keras, rng, name, kwargs, sparse):
    ours, theirs = getattr(minicnn.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == theirs.name
    for _ in range(3):  # accumulated over batches
        p = rng.random((7, 5)).astype(np.float32)
        labels = rng.integers(0, 5, 7)
        y = labels if sparse else to_categorical(labels, 5)
        ours.update_state(y, p)
        theirs.update_state(y, p)
    assert ours.result() == pytest.approx(float(theirs.result()), abs=1e-7)
    ours.reset_state()
    assert ours.result() == 0.0


def test_metrics_in_compile_name_the_logs(rng, tmp_path):
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(5, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam",
                  metrics=["accuracy", minicnn.metrics.SparseTopKCategoricalAccuracy(k=2)])
    x, y = rng.random((20, 4, 4), dtype=np.float32), rng.integers(0, 5, 20)
    history = model.fit(x, y, epochs=2, batch_size=5, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "sparse_top_k_categorical_accuracy", "val_loss",
                                    "val_accuracy", "val_sparse_top_k_categorical_accuracy"}
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert result["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert result["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean((p > p[np.arange(20), y][:, None]).sum(1) < 2))
    again = load_model(model.save(tmp_path / "metrics.npz"))
    assert again.evaluate(x, y, verbose=0, return_dict=True) == result
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        model.compile(loss="mse", optimizer="adam", metrics=["auc"])


OPTIMIZER_CASES = [("Adam", {"amsgrad": True}), ("Adam", {"weight_decay": 0.01}), ("AdamW", {}),
                   ("AdamW", {"weight_decay": 0.1, "amsgrad": True}), ("Adagrad", {}),
                   ("Adagrad", {"initial_accumulator_value": 0.5}), ("Adadelta", {"learning_rate": 1.0}),
                   ("Adadelta", {"rho": 0.9}), ("Adamax", {}), ("Nadam", {}), ("Nadam", {"beta_1": 0.8}),
                   ("SGD", {"momentum": 0.9, "weight_decay": 0.01}), ("RMSprop", {"weight_decay": 0.05})]


@pytest.mark.parametrize("name,kwargs", OPTIMIZER_CASES)
def test_optimizers_take_keras_steps(keras, rng, name, kwargs, tmp_path):
    kwargs = {"learning_rate": 0.01, **kwargs}
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours, theirs = getattr(minicnn.optimizers, name)(**kwargs), getattr(keras.optimizers, name)(**kwargs)
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    for _ in range(5):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
    for mine, v in zip(params, variables):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=2e-5, atol=2e-6)
    again = type(ours).from_config(ours.get_config())
    assert again.get_config() == ours.get_config()
    assert minicnn.optimizers.get(name.lower()).get_config()["name"] == name


SCHEDULES = [("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 20, "decay_rate": 0.5}),
             ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 20, "decay_rate": 0.5, "staircase": True}),
             ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.3}),
             ("PiecewiseConstantDecay", {"boundaries": [5, 50], "values": [0.1, 0.05, 0.01]}),
             ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 60, "power": 2.0}),
             ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 60, "cycle": True}),
             ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 80, "alpha": 0.1}),
             ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 80, "warmup_target": 0.1, "warmup_steps": 30})]


@pytest.mark.parametrize("name,kwargs", SCHEDULES)
def test_schedules_match_keras(keras, name, kwargs):
    ours, theirs = getattr(minicnn.optimizers.schedules, name)(**kwargs), getattr(keras.optimizers.schedules, name)(**kwargs)
    for step in (0, 1, 5, 6, 29, 30, 50, 51, 100, 150):
        assert ours(step) == pytest.approx(float(theirs(step)), rel=1e-5, abs=1e-9), step  # Keras: float32


@pytest.mark.parametrize("kwargs", [{"clipnorm": 0.5}, {"clipvalue": 0.2}, {"global_clipnorm": 0.7},
                                    {"learning_rate": "schedule"}])
def test_clipping_and_schedules_in_steps_as_keras(keras, rng, kwargs, tmp_path):
    def args(lib):
        if kwargs.get("learning_rate") == "schedule":
            return {"learning_rate": lib.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)}
        return {"learning_rate": 0.05, **kwargs}
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours, theirs = minicnn.optimizers.Adam(**args(minicnn)), keras.optimizers.Adam(**args(keras))
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(np.float32) * 2 for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
    for mine, v in zip(params, variables):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=2e-5, atol=2e-6)
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer=minicnn.optimizers.Adam(**args(minicnn)))
    model.train_on_batch(rng.random((4, 2, 2)), [0, 1, 1, 0])
    again = load_model(model.save(tmp_path / "opt.npz"))
    assert again.optimizer.get_config() == model.optimizer.get_config()
    assert again.optimizer.learning_rate == model.optimizer.learning_rate


def test_a_scheduled_rate_cannot_be_set_and_clip_options_exclude_each_other():
    from minicnn.optimizers import SGD, schedules
    opt = SGD(schedules.ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match="learning-rate schedule"):
        opt.learning_rate = 0.01
    with pytest.raises(ValueError, match="Only one of"):
        SGD(clipnorm=1.0, clipvalue=0.5)


@pytest.mark.parametrize("name,kwargs", [("BinaryCrossentropy", {}), ("BinaryCrossentropy", {"from_logits": True}),
                                         ("BinaryCrossentropy", {"label_smoothing": 0.2}),
                                         ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
                                         ("MeanAbsoluteError", {}), ("Huber", {}), ("Huber", {"delta": 0.3})])
def test_binary_and_regression_losses_match_keras(keras, tf, rng, name, kwargs):
    z = rng.standard_normal((6, 3)).astype(np.float32) * 2
    y = rng.integers(0, 2, (6, 3)).astype(np.float32)
    pred = z if kwargs.get("from_logits") or name != "BinaryCrossentropy" else 1 / (1 + np.exp(-z))
    ours, theirs = getattr(losses, name)(**kwargs), getattr(keras.losses, name)(**kwargs)
    assert float(ours(y, pred)) == pytest.approx(float(theirs(y, pred)), rel=1e-5)
    zt = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        value = theirs(y, zt)
    np.testing.assert_allclose(ours.gradient(y, pred), tape.gradient(value, zt).numpy(), rtol=1e-4, atol=1e-6)


def test_a_binary_classifier_trains_as_keras(keras, rng):
    """Dense(1, activation="sigmoid") with "binary_crossentropy" and "accuracy" (binary accuracy,
    as Keras resolves it), targets of shape (N,): the same losses, accuracy and weights."""
    set_random_seed(2)
    model = Sequential([Flatten(input_shape=(3, 3)), Dense(4, activation="tanh"), Dense(1, activation="sigmoid")])
    k_model = keras.Sequential([keras.Input((3, 3)), keras.layers.Flatten(), keras.layers.Dense(4, activation="tanh"),
                                keras.layers.Dense(1, activation="sigmoid")])
    k_model.set_weights(model.get_weights())
    model.compile(loss="binary_crossentropy", optimizer=SGD(0.5), metrics=["accuracy"])
    k_model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"])
    x, y = rng.random((16, 3, 3), dtype=np.float32), rng.integers(0, 2, 16).astype(np.float32)
    for _ in range(3):
        loss, _ = model.train_on_batch(x, y)
        assert loss == pytest.approx(float(np.ravel(k_model.train_on_batch(x, y))[0]), rel=1e-5)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ours = model.evaluate(x, y, verbose=0, return_dict=True)
    theirs = k_model.evaluate(x, y, verbose=0, return_dict=True)
    assert ours["accuracy"] == pytest.approx(float(theirs["accuracy"])) and isinstance(
        model.metric_objects[0], minicnn.metrics.BinaryAccuracy)


def test_sample_and_class_weights_as_keras(keras, rng):
    set_random_seed(3)
    model = Sequential([Flatten(input_shape=(3, 3)), Dense(4, activation="softmax")])
    k_model = keras.Sequential([keras.Input((3, 3)), keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")])
    k_model.set_weights(model.get_weights())
    model.compile(loss="sparse_categorical_crossentropy", optimizer=SGD(0.5))
    k_model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(0.5))
    x, y = rng.random((12, 3, 3), dtype=np.float32), rng.integers(0, 4, 12)
    sw, cw = rng.random(12).astype(np.float32) * 2, {0: 3.0, 2: 0.5}  # class 1 and 3: weight 1
    for kwargs in ({"sample_weight": sw}, {"class_weight": cw}, {"sample_weight": sw * 2}):
        loss, _ = model.train_on_batch(x, y, **kwargs)
        assert loss == pytest.approx(float(np.ravel(k_model.train_on_batch(x, y, **kwargs))[0]), rel=1e-5)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert model.evaluate(x, y, sample_weight=sw, verbose=0) == pytest.approx(
        float(k_model.evaluate(x, y, sample_weight=sw, verbose=0)), rel=1e-5)
    history = model.fit(x, y, class_weight=cw, epochs=1, batch_size=4, verbose=0)
    assert len(history.history["loss"]) == 1
    with pytest.raises(ValueError, match="cannot be specified at the same time"):
        model.fit(x, y, sample_weight=sw, class_weight=cw, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(12,\)"):
        model.fit(x, y, sample_weight=sw[:5], verbose=0)
    with pytest.raises(ValueError, match="finite weights >= 0"):
        model.fit(x, y, sample_weight=-sw, verbose=0)


def test_validation_freq_verbose_auto_and_history_params(rng):
    model = Sequential([Flatten(input_shape=(3, 3)), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    x, y = rng.random((20, 3, 3), dtype=np.float32), rng.integers(0, 2, 20)
    history = model.fit(x, y, epochs=4, validation_split=0.25, validation_freq=2, verbose=0)
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2
    history = model.fit(x, y, epochs=4, validation_data=(x, y), validation_freq=[1, 3], verbose=0)
    assert len(history.history["val_loss"]) == 2 and history.epoch == [0, 1, 2, 3]
    assert history.params["epochs"] == 4 and history.params["steps"] == 1
    model.fit(x, y, epochs=1, verbose="auto")


class Batches(minicnn.utils.PyDataset):
    """A PyDataset over arrays, in order, counting its epochs."""

    def __init__(self, x, y, batch_size, w=None):
        super().__init__()
        self.x, self.y, self.w, self.batch_size, self.epochs = x, y, w, batch_size, 0

    def __len__(self):
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return (self.x[s], self.y[s]) if self.w is None else (self.x[s], self.y[s], self.w[s])

    def on_epoch_end(self):
        self.epochs += 1


def test_fit_on_a_pydataset_or_a_generator_equals_fit_on_arrays(rng):
    x, y = rng.random((20, 3, 3), dtype=np.float32), rng.integers(0, 2, 20)
    w = rng.random(20).astype(np.float32)

    def trained(data, **kwargs):
        set_random_seed(7)
        model = Sequential([Flatten(input_shape=(3, 3)), Dense(2, activation="softmax")])
        model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        history = model.fit(*data, epochs=2, verbose=0, **kwargs)
        return model, history

    arrays, h_arrays = trained((x, y), batch_size=8, shuffle=False, sample_weight=w, validation_data=(x, y))
    dataset = Batches(x, y, 8, w)
    ds_model, h_ds = trained((dataset,), validation_data=Batches(x, y, 8))
    assert dataset.epochs == 2 and h_ds.params["steps"] == 3

    def forever():
        while True:
            for i in range(3):
                yield x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8], w[i * 8:(i + 1) * 8]
    gen_model, h_gen = trained((forever(),), steps_per_epoch=3)
    assert h_gen.history["loss"] == pytest.approx(h_arrays.history["loss"])
    for a, b, c in zip(arrays.get_weights(), ds_model.get_weights(), gen_model.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(c, a, rtol=1e-6, atol=1e-7)
    assert h_ds.history["loss"] == pytest.approx(h_arrays.history["loss"])
    assert h_ds.history["val_loss"] == pytest.approx(h_arrays.history["val_loss"])
    np.testing.assert_allclose(ds_model.predict(Batches(x, y, 8), verbose=0), arrays.predict(x, verbose=0), rtol=1e-6)
    assert ds_model.evaluate(Batches(x, y, 8), verbose=0) == pytest.approx(arrays.evaluate(x, y, verbose=0))
    with pytest.raises(ValueError, match="no batch in epoch 2"):
        trained((iter([(x[:8], y[:8])]),))  # a generator that runs out after one batch
    with pytest.raises(ValueError, match="give no y"):
        trained((dataset, y))
    with pytest.raises(ValueError, match=r"a batch must be \(x, y\)"):
        trained((iter([x[:8]] * 3),), steps_per_epoch=1)


@pytest.mark.parametrize("name,kwargs", [("Precision", {}), ("Recall", {}), ("Precision", {"thresholds": 0.3}),
                                         ("BinaryAccuracy", {}), ("Recall", {"thresholds": 0.7})])
def test_binary_metrics_match_keras(keras, rng, name, kwargs):
    ours, theirs = getattr(minicnn.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for _ in range(3):
        y, p = rng.integers(0, 2, (8, 3)).astype(np.float32), rng.random((8, 3)).astype(np.float32)
        ours.update_state(y, p)
        theirs.update_state(y, p)
    assert ours.result() == pytest.approx(float(theirs.result()), abs=1e-6)
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(3, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=[ours.name] if not kwargs else [ours])
    logs = model.evaluate(rng.random((8, 2, 2)), rng.integers(0, 2, (8, 3)), verbose=0, return_dict=True)
    assert set(logs) == {"loss", ours.name}


def test_a_bad_validation_freq_is_refused_before_training(rng):
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    with pytest.raises(ValueError, match="validation_freq must be an integer >= 1"):
        model.fit(rng.random((4, 2, 2)), [0, 1, 0, 1], validation_freq=0, verbose=0)
    assert model.optimizer.iterations == 0
