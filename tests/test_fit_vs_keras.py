"""fit, evaluate and predict against Keras 3: every argument, on the same weights and data
where the argument changes the outcome, compared by History, learning rate and final weights.

shuffle=False wherever both engines train (their random streams differ); what shuffle=True
must keep together (each sample with its label and its weight) is checked directly."""
import numpy as np
import pytest
from keras_twins import assert_history_equal, assert_weights_equal, cases, data, twins

from minicnn import utils


def _case(name):
    """fit's keyword arguments for the case `name`, on x: (10, 4) and y: (10, 3)."""
    x, y = data()
    w = np.array([1.0, 0.5, 2.0, 0.0, 1.5, 3.0, 0.25, 1.0, 2.5, 0.75], dtype=np.float32)
    xv, yv = data(n=5, seed=1)
    wv = np.array([2.0, 0.0, 1.0, 3.0, 0.5], dtype=np.float32)
    cases = {
        # 10 samples in batches of 4: the last batch has 2, so a mean of batch means is wrong
        "short_last_batch": {"batch_size": 4, "epochs": 3},
        "batch_size_3": {"batch_size": 3, "epochs": 2},
        "one_batch": {"batch_size": 32, "epochs": 3},
        "sample_weight": {"batch_size": 4, "epochs": 3, "sample_weight": w},
        "class_weight": {"batch_size": 4, "epochs": 3, "class_weight": {0: 1.0, 1: 3.0, 2: 0.25}},
        "validation_split": {"batch_size": 4, "epochs": 3, "validation_split": 0.3},
        "validation_split_sample_weight": {"batch_size": 4, "epochs": 2, "validation_split": 0.3, "sample_weight": w},
        "validation_data": {"batch_size": 4, "epochs": 3, "validation_data": (xv, yv)},
        "validation_data_weights": {"batch_size": 4, "epochs": 2, "validation_data": (xv, yv, wv)},
        "validation_freq_2": {"batch_size": 4, "epochs": 4, "validation_data": (xv, yv), "validation_freq": 2},
        "validation_freq_list": {"batch_size": 4, "epochs": 4, "validation_data": (xv, yv), "validation_freq": [1, 4]},
        "initial_epoch": {"batch_size": 4, "epochs": 4, "initial_epoch": 2},
        # 3 batches an epoch of data, 2 steps an epoch: Keras goes on where the last epoch stopped
        "steps_per_epoch": {"batch_size": 4, "epochs": 4, "steps_per_epoch": 2},
        "validation_steps": {"batch_size": 2, "epochs": 2, "validation_data": (xv, yv), "validation_steps": 2},
    }
    return x, y, {**cases[name], "shuffle": False, "verbose": 0}


FIT_CASES = ["short_last_batch", "batch_size_3", "one_batch", "sample_weight", "class_weight", "validation_split",
             "validation_split_sample_weight", "validation_data", "validation_data_weights", "validation_freq_2",
             "validation_freq_list", "initial_epoch", "steps_per_epoch", "validation_steps"]


@pytest.mark.parametrize("case", cases(FIT_CASES, fast={"short_last_batch", "validation_split_sample_weight"}))
def test_fit_argument_matches_keras(keras, case):
    x, y, kwargs = _case(case)
    ours, theirs = twins(keras)
    h_ours = ours.fit(x, y, **kwargs)
    h_theirs = theirs.fit(x, y, **kwargs)
    assert_history_equal(h_ours, h_theirs)
    assert_weights_equal(ours, theirs)


def test_short_last_batch_loss_is_the_sample_mean(keras):
    """An independent formula too: with lr=0 the weights stay, and the epoch's loss is the mean
    of the per-sample losses (weighted by sample_weight), not the mean of the batches' means."""
    x, y = data()
    w = np.linspace(0.5, 2, 10).astype(np.float32)
    ours, _ = twins(keras, lr=1e-30)
    p = ours.predict(x, verbose=0)
    per_sample = -np.log((p * y).sum(axis=1))
    history = ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, sample_weight=w)
    assert history.history["loss"][0] == pytest.approx((per_sample * w).sum() / len(x), rel=1e-5)


@pytest.mark.parametrize("kwargs", [{"batch_size": 4}, {"batch_size": 3, "steps": 2}, {"batch_size": 4, "steps": 1},
                                    {"batch_size": 4, "sample_weight": "w"}])
def test_evaluate_arguments_match_keras(keras, kwargs):
    x, y = data()
    ours, theirs = twins(keras)
    if kwargs.get("sample_weight") == "w":
        kwargs = {**kwargs, "sample_weight": np.linspace(0, 2, 10).astype(np.float32)}
    got = ours.evaluate(x, y, verbose=0, return_dict=True, **kwargs)
    want = theirs.evaluate(x, y, verbose=0, return_dict=True, **kwargs)
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=2e-5), k


@pytest.mark.parametrize("kwargs", [{"batch_size": 3}, {"batch_size": 4, "steps": 2}])
def test_predict_arguments_match_keras(keras, kwargs):
    x, _ = data()
    ours, theirs = twins(keras)
    if "steps" in kwargs:  # Keras's steps count batches of a generator
        def batches():
            for s in range(0, len(x), kwargs["batch_size"]):
                yield (x[s:s + kwargs["batch_size"]],)
        got, want = ours.predict(batches(), steps=2, verbose=0), theirs.predict(batches(), steps=2, verbose=0)
    else:
        got, want = ours.predict(x, verbose=0, **kwargs), theirs.predict(x, verbose=0, **kwargs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [
    {"loss": "sparse_categorical_crossentropy", "labels": True, "class_weight": {0: 2.0, 2: 0.5}},
    {"loss": ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.2}), "softmax": False},
    {"l2": 0.05, "sample_weight": True},  # the penalty is part of history["loss"], once per batch, as Keras
], ids=["sparse_labels_class_weight", "from_logits_label_smoothing", "l2_penalty_sample_weight"])
@pytest.mark.slow
def test_losses_and_penalties_train_as_keras(keras, options):
    x, y = data()
    options = dict(options)
    fit = {"batch_size": 4, "epochs": 3, "shuffle": False, "verbose": 0, "validation_data": data(n=5, seed=1)}
    if options.pop("labels", False):
        y = y.argmax(axis=1)
        fit["validation_data"] = (fit["validation_data"][0], fit["validation_data"][1].argmax(axis=1))
    if "class_weight" in options:
        fit["class_weight"] = options.pop("class_weight")
    if options.pop("sample_weight", False):
        fit["sample_weight"] = np.linspace(0.2, 2, 10).astype(np.float32)
    metrics = () if options.get("softmax") is False else ("accuracy",)
    ours, theirs = twins(keras, metrics=metrics, **options)
    assert_history_equal(ours.fit(x, y, **fit), theirs.fit(x, y, **fit))
    assert_weights_equal(ours, theirs)


def test_label_smoothing_trains_as_keras(keras):
    """The softmax + cross-entropy shortcut that training uses must smooth the targets too: the
    weights after fit, not just the loss, match Keras's."""
    x, y = data()
    loss = ("categorical_crossentropy", {"label_smoothing": 0.3})
    ours, theirs = twins(keras, loss=loss, lr=0.5)
    kwargs = {"batch_size": 4, "epochs": 3, "shuffle": False, "verbose": 0}
    assert_history_equal(ours.fit(x, y, **kwargs), theirs.fit(x, y, **kwargs))
    assert_weights_equal(ours, theirs)


@pytest.mark.parametrize("weighting", ["sample_weight", "class_weight"])
def test_shuffle_keeps_samples_labels_and_weights_together(monkeypatch, weighting):
    """shuffle=True draws a new order each epoch; each batch's rows of x, y and the weights
    (sample_weight, or class_weight's) must still belong to the same samples. x[i] holds i,
    y[i] the label i % 3, sample_weight[i] is i + 1."""
    from minicnn.layers import Activation, Dense
    from minicnn.models import Sequential
    n = 11
    x = np.arange(n, dtype=np.float32)[:, None].repeat(4, axis=1)
    labels = np.arange(n) % 3
    y = np.eye(3, dtype=np.float32)[labels]
    w = (np.arange(n) + 1).astype(np.float32)
    class_weight = {0: 10.0, 1: 100.0, 2: 1000.0}
    model = Sequential([Dense(3, input_shape=(4,)), Activation("softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    seen = []

    def record(xb, yb, wb=None):
        seen.append((xb[:, 0].astype(int), yb.argmax(axis=1), wb))
        return 0.0, np.full((len(xb), 3), 1 / 3, dtype=np.float32)

    monkeypatch.setattr(model, "train_step", record)
    utils.set_random_seed(3)
    weights = {"sample_weight": w} if weighting == "sample_weight" else {"class_weight": class_weight}
    model.fit(x, y, batch_size=4, epochs=3, shuffle=True, verbose=0, **weights)
    orders = [np.concatenate([s[0] for s in seen[k:k + 3]]) for k in range(0, 9, 3)]
    assert all(sorted(o) == list(range(n)) for o in orders)  # each epoch sees every sample once
    assert not all((o == np.arange(n)).all() for o in orders)  # and they were shuffled
    for idx, lab, wb in seen:
        assert (lab == labels[idx]).all()
        want = w[idx] if weighting == "sample_weight" else np.array([class_weight[c] for c in labels[idx]])
        np.testing.assert_array_equal(wb, want)


@pytest.mark.parametrize("frozen", [0, 1], ids=["first_dense", "last_dense"])
def test_a_frozen_layer_stays_and_the_rest_trains_as_keras(keras, frozen):
    """trainable=False (set before compile, as Keras asks) keeps a layer's weights through fit,
    with momentum in the optimizer, while gradients still flow through it to the layers before."""
    x, y = data()
    ours, theirs = twins(keras, momentum=0.9)
    ours.layers[frozen].trainable = False
    theirs.layers[frozen].trainable = False
    before = ours.layers[frozen].get_weights()
    ours.compile(optimizer=ours.optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    theirs.compile(optimizer=theirs.optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    kwargs = {"batch_size": 4, "epochs": 3, "shuffle": False, "verbose": 0}
    assert_history_equal(ours.fit(x, y, **kwargs), theirs.fit(x, y, **kwargs))
    assert_weights_equal(ours, theirs)
    for a, b in zip(before, ours.layers[frozen].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_dropout_is_off_in_predict_evaluate_and_validation(keras):
    """A model with Dropout(0.5): predict and evaluate equal Keras's on the same weights (Keras's
    Dropout is the identity at inference), and fit's last val_loss is Keras's evaluate on the
    weights fit ended with, while the training loss, with the dropout on, is not."""
    from minicnn.layers import Activation, Dense, Dropout
    from minicnn.models import Sequential
    x, y = data(n=40)
    ours = Sequential([Dense(16, activation="relu", input_shape=(4,)), Dropout(0.5), Dense(3), Activation("softmax")])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.5),
                               keras.layers.Dense(3), keras.layers.Activation("softmax")])
    theirs.set_weights(ours.get_weights())
    ours.compile(optimizer="sgd", loss="categorical_crossentropy")
    theirs.compile(optimizer="sgd", loss="categorical_crossentropy")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(theirs.evaluate(x, y, verbose=0), rel=1e-5)
    utils.set_random_seed(0)
    history = ours.fit(x, y, batch_size=40, epochs=1, validation_data=(x, y), shuffle=False, verbose=0).history
    theirs.set_weights(ours.get_weights())
    assert history["val_loss"][0] == pytest.approx(theirs.evaluate(x, y, verbose=0), rel=1e-5)
    assert history["loss"][0] != pytest.approx(history["val_loss"][0], rel=1e-3)


def test_generator_and_pydataset_batches_train_as_keras(keras):
    """fit on a generator of (x, y, sample_weight) batches, steps_per_epoch of them, and on a
    PyDataset with a short last batch, against Keras fed the same batches: the independent
    reference for the input paths that the array path is compared with in tests/test_fit.py.
    (Not a generator for validation_data: Keras's adapter serves the batches it peeked at again
    at each evaluation, a quirk of its own.)"""
    from minicnn.utils import PyDataset
    x, y = data(n=10)
    w = np.linspace(0.2, 2, 10).astype(np.float32)

    def forever(size=4):
        while True:
            for s in range(0, 10, size):
                yield x[s:s + size], y[s:s + size], w[s:s + size]

    def dataset(base):
        class Batches(base):
            def __len__(self):
                return 3

            def __getitem__(self, i):
                return x[i * 4:(i + 1) * 4], y[i * 4:(i + 1) * 4], w[i * 4:(i + 1) * 4]
        return Batches()

    for make, steps in ((lambda base: forever(), {"steps_per_epoch": 3}), (dataset, {}),
                        (dataset, {"steps_per_epoch": 2})):  # Keras goes on where the last epoch stopped
        ours, theirs = twins(keras)
        kwargs = {"epochs": 4, "verbose": 0, "validation_data": data(n=5, seed=1), "shuffle": False}
        h_ours = ours.fit(make(PyDataset), **steps, **kwargs)
        h_theirs = theirs.fit(make(keras.utils.PyDataset), **steps, **kwargs)
        assert_history_equal(h_ours, h_theirs)
        assert_weights_equal(ours, theirs)


def test_shuffle_draws_a_new_order_of_a_pydatasets_batches_each_epoch():
    """shuffle=True (fit's default) visits a PyDataset's batches in a new order each epoch, each
    batch once, as Keras's adapter does; shuffle=False in order."""
    from minicnn.layers import Activation, Dense
    from minicnn.models import Sequential
    from minicnn.utils import PyDataset
    x, y = data(n=10)
    seen = []

    class Batches(PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            seen.append(i)
            return x[2 * i:2 * i + 2], y[2 * i:2 * i + 2]

    model = Sequential([Dense(3, input_shape=(4,)), Activation("softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    utils.set_random_seed(0)
    model.fit(Batches(), epochs=4, verbose=0)
    epochs = [seen[k:k + 5] for k in range(0, 20, 5)]
    assert all(sorted(e) == list(range(5)) for e in epochs) and len({tuple(e) for e in epochs}) > 1
    seen.clear()
    model.fit(Batches(), epochs=2, verbose=0, shuffle=False)
    assert seen == [0, 1, 2, 3, 4] * 2
