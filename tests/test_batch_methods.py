"""train_on_batch, test_on_batch, predict_on_batch, reset_metrics and metrics_names against Keras 3
on the same weights: what each returns (a float, a list in Keras's order, a dict), its values
over several calls (the metrics start again at every call; loss and metrics are the forward
pass's, before the update), with sample and class weights, several outputs and a train_step of
your own."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_twins import assert_weights_equal, data, twins

import minicnn

RTOL = 2e-5


def assert_same_result(ours, theirs):
    """The same kind of result (float, list or dict, of Python floats) and the same values."""
    assert type(ours) is type(theirs), (ours, theirs)
    if isinstance(theirs, dict):
        assert list(ours) == sorted(ours) and sorted(ours) == sorted(theirs)  # sorted by name, as Keras's flat logs
        ours, theirs = [ours[k] for k in sorted(ours)], [theirs[k] for k in sorted(ours)]
    if isinstance(theirs, list):
        assert all(type(v) is float for v in ours)
    assert ours == pytest.approx(theirs, rel=RTOL, abs=1e-6)


@pytest.mark.parametrize("metrics", [(), ("accuracy",), ("mae", "accuracy")])
def test_each_call_returns_what_keras_returns(keras, metrics):
    ours, theirs = twins(keras, metrics=metrics)
    assert ours.metrics_names == theirs.metrics_names  # ["loss"] or ["loss", "compile_metrics"]
    for seed in range(3):  # a new batch each call: the metrics must not run on from the last one
        x, y = data(n=12, seed=seed)
        right = (ours.predict_on_batch(x).argmax(1) == y.argmax(1)).mean()  # before the step's update
        result = ours.train_on_batch(x, y)
        assert_same_result(result, theirs.train_on_batch(x, y))
        if "accuracy" in metrics:
            assert result[-1] == pytest.approx(right)
        assert_same_result(ours.train_on_batch(x, y, return_dict=True), theirs.train_on_batch(x, y, return_dict=True))
        assert_same_result(ours.test_on_batch(x, y), theirs.test_on_batch(x, y))
        assert_same_result(ours.test_on_batch(x, y, return_dict=True), theirs.test_on_batch(x, y, return_dict=True))
        p = ours.predict_on_batch(x)
        assert type(p) is np.ndarray and p.dtype == np.float32
        np.testing.assert_allclose(p, theirs.predict_on_batch(x), rtol=RTOL, atol=1e-6)
    assert_weights_equal(ours, theirs)
    assert ours.metrics_names == theirs.metrics_names
    assert ours.metrics[0].result() == pytest.approx(ours.test_on_batch(x, y, return_dict=True)["loss"])


def test_sample_and_class_weights(keras):
    ours, theirs = twins(keras, metrics=("accuracy",))
    weights = np.random.default_rng(5).random(12).astype(np.float32) * 2
    for seed, kwargs in enumerate([{"sample_weight": weights}, {"class_weight": {0: 3.0, 2: 0.5}},
                                   {"sample_weight": weights[::-1].copy()}]):
        x, y = data(n=12, seed=seed)
        assert_same_result(ours.train_on_batch(x, y, **kwargs), theirs.train_on_batch(x, y, **kwargs))
    assert_same_result(ours.test_on_batch(x, y, sample_weight=weights), theirs.test_on_batch(x, y, sample_weight=weights))
    assert_weights_equal(ours, theirs)
    with pytest.raises(ValueError, match="cannot be specified at the same time"):
        ours.train_on_batch(x, y, sample_weight=weights, class_weight={0: 2.0})


def two_outputs(lib):
    """Outputs named out of alphabetical order: Keras lists their metrics sorted by name."""
    inputs = lib.Input((4,))
    h = lib.layers.Dense(5, activation="relu")(inputs)
    model = lib.Model(inputs, [lib.layers.Dense(3, activation="softmax", name="zed")(h), lib.layers.Dense(1, name="alpha")(h)])
    model.compile(optimizer=lib.optimizers.SGD(0.1), loss=["categorical_crossentropy", "mse"],
                  loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["mae"]])
    return model


def test_a_model_of_two_outputs(keras):
    ours, theirs = two_outputs(minicnn), two_outputs(keras)
    ours.set_weights(theirs.get_weights())
    assert ours.metrics_names == theirs.metrics_names
    rng = np.random.default_rng(0)
    for step in range(3):
        x, y = data(n=6, seed=step)
        ys = [y, rng.random((6, 1), dtype=np.float32)]
        assert_same_result(ours.train_on_batch(x, ys), theirs.train_on_batch(x, ys))
        assert ours.metrics_names == theirs.metrics_names  # each output's loss joins them
        assert_same_result(ours.train_on_batch(x, ys, return_dict=True), theirs.train_on_batch(x, ys, return_dict=True))
        assert_same_result(ours.test_on_batch(x, ys), theirs.test_on_batch(x, ys))
        assert_same_result(ours.evaluate(x, ys, verbose=0), theirs.evaluate(x, ys, verbose=0))
    p, k_p = ours.predict_on_batch(x), theirs.predict_on_batch(x)
    assert type(p) is list and len(p) == 2
    for a, b in zip(p, k_p):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-6)


def guide_model(lib, tape_cls):
    """The Keras guide's train_step and test_step (compute_loss, optimizer.apply, self.metrics), the
    batch unpacked as Keras 3's train_on_batch needs: it gives (x, y, sample_weight)."""

    class CustomModel(lib.Model):
        def train_step(self, data):
            x, y, _ = lib.utils.unpack_x_y_sample_weight(data)
            with tape_cls() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
            for metric in self.metrics:
                metric.update_state(loss) if metric.name == "loss" else metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y, _ = lib.utils.unpack_x_y_sample_weight(data)
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                metric.update_state(loss) if metric.name == "loss" else metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    inputs = lib.Input(shape=(8,))
    model = CustomModel(inputs, lib.layers.Dense(1)(lib.layers.Dense(5, activation="tanh")(inputs)))
    model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    return model


def test_a_train_step_of_your_own(keras, tf):
    ours, theirs = guide_model(minicnn, minicnn.GradientTape), guide_model(keras, tf.GradientTape)
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(1)
    for _ in range(3):
        x, y = rng.random((10, 8), dtype=np.float32), rng.random((10, 1), dtype=np.float32)
        assert_same_result(ours.train_on_batch(x, y), theirs.train_on_batch(x, y))
        assert_same_result(ours.test_on_batch(x, y, return_dict=True), theirs.test_on_batch(x, y, return_dict=True))
    assert_weights_equal(ours, theirs)


def test_bad_calls_are_refused_as_keras_refuses_them():
    model = minicnn.Sequential([minicnn.Input((4,)), minicnn.layers.Dense(2, activation="softmax")])
    x, y = data(n=4, k=2)
    assert model.metrics_names == []
    with pytest.raises(RuntimeError, match="compile"):
        model.train_on_batch(x, y)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(TypeError, match="reset_metrics"):  # Keras 2's argument, gone in Keras 3
        model.train_on_batch(x, y, reset_metrics=False)
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        model.test_on_batch(x, y[:3])
