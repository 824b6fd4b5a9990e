"""model.trace against independent computations, and every picture under Agg."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from toy import small_data, small_model, tutorial_model

import minicnn
from minicnn import plot
from minicnn.datasets.fashion_mnist import CLASS_NAMES
from minicnn.utils import set_random_seed, to_categorical


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_trace_shapes_macs_and_stats_match_independent_figures():
    set_random_seed(0)
    model = tutorial_model()
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    t = model.trace(x)
    shapes = [(None, 26, 26, 64), (None, 26, 26, 64), (None, 13, 13, 64), (None, 11, 11, 64), (None, 11, 11, 64),
              (None, 5, 5, 64), (None, 1600), (None, 64), (None, 10), (None, 10)]
    assert [r.output_shape for r in t.rows] == shapes
    assert [r.input_shape for r in t.rows] == [(None, 28, 28, 1), *shapes[:-1]]
    # multiply-adds by hand: OH*OW*KH*KW*C*F for a conv, in*out for a dense layer
    assert [r.macs for r in t.rows if r.macs] == [26 * 26 * 9 * 64, 11 * 11 * 9 * 64 * 64, 1600 * 64, 64 * 10]
    assert sum(r.macs for r in t.rows) == 4_952_960
    h = x  # a fresh pass, layer by layer, to recompute every row's statistics independently
    for row, layer in zip(t.rows, model.layers):
        h = layer.forward(h)
        h64 = h.astype(np.float64)
        assert np.isclose(row.mean, h64.mean(), rtol=1e-5, atol=1e-7), row.name
        assert np.isclose(row.std, h64.std(), rtol=1e-5, atol=1e-7), row.name
        assert row.zeros == np.mean(h == 0), row.name
    assert 0 < t.rows[1].zeros < 1 and t.rows[-1].zeros == 0  # a ReLU's dead units; a softmax has none
    assert len({round(r.std, 6) for r in t.rows}) >= 8  # the rows do differ: not one statistic repeated
    assert t.rows[0].backward_ms is None and t.loss is None
    assert "conv2d" in str(t) and "MACs/img" in str(t)


def test_trace_gradient_norms_by_hand():
    set_random_seed(1)
    x, y = small_data(16)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    before = model.get_weights() if model.built else None
    t = model.trace(x, y, keep=True)
    p = t.activations[-1]
    dlogits = (p - y) / len(x)  # softmax + cross-entropy, by hand
    h = t.activations[3]  # the Flatten output that feeds the Dense layer
    assert np.isclose(t.rows[4].param_grad_norms["W"], np.linalg.norm(h.T.astype(np.float64) @ dlogits), rtol=1e-5)
    assert np.isclose(t.rows[4].param_grad_norms["b"], np.linalg.norm(dlogits.sum(0)), rtol=1e-5)
    assert np.isclose(t.rows[-1].input_grad_norm, np.linalg.norm(dlogits), rtol=1e-6)
    W = model.layers[4].params["W"]
    assert np.isclose(t.rows[4].input_grad_norm, np.linalg.norm(dlogits @ W.T), rtol=1e-5)
    assert t.rows[0].input_grad_norm > 0 and t.input_grads[0].shape == x.shape  # dL/d(data) too
    assert model.layers[0].input_grad is False  # restored: training never computes it
    expected = -np.log(p[y.astype(bool)]).mean()
    assert np.isclose(t.loss, expected, rtol=1e-5)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the trace updates nothing
    rows = t.to_dicts()
    assert rows[4]["name"] == model.layers[4].name and rows[4]["backward_ms"] >= 0


def test_trace_warmup_changes_only_the_timings():
    """The untimed first run of each call (warmup) must not change a number: a forward or backward
    that wrote into its input or cache would show here. The tutorial model, whose last two layers
    take the softmax shortcut, and a model with BatchNormalization and every activation kernel."""
    from minicnn.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D
    from minicnn.models import Sequential

    rng = np.random.default_rng(3)
    x28, y10 = rng.random((4, 28, 28, 1), dtype=np.float32), to_categorical(np.arange(4) % 10, 10)
    x, y = small_data(8)
    bn_model = lambda: Sequential([Conv2D(4, 3, input_shape=x.shape[1:]), BatchNormalization(),
                                   Activation("relu"), MaxPooling2D(2), Flatten(), Dense(6), Activation("gelu"),
                                   Dense(y.shape[1], activation="softmax")])
    for build, xs, ys in ((tutorial_model, x28, y10), (bn_model, x, y)):
        set_random_seed(2)
        model = build()
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        cold, warm = model.trace(xs, ys, keep=True, warmup=False), model.trace(xs, ys, keep=True)
        for a, b in zip(cold.activations + cold.input_grads, warm.activations + warm.input_grads):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(cold.param_grads, warm.param_grads):
            assert (a is None) == (b is None)
            for key in a or {}:
                np.testing.assert_array_equal(a[key], b[key])
        assert cold.loss == warm.loss


def test_training_curves_draw_every_series():
    history = {"loss": [1.0, 0.5, 0.4], "accuracy": [0.5, 0.7, 0.8], "val_loss": [1.1, 0.6, 0.5],
               "val_accuracy": [0.4, 0.6, 0.7]}
    fig = plot.training_curves(history)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    assert [len(ax.lines) for ax in axes] == [2, 2]
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), history["val_loss"])
    assert len(plot.training_curves({"loss": [1.0]}).axes) == 1
    with pytest.raises(ValueError, match="History"):
        plot.training_curves({})


def test_training_curves_draw_accuracy_once_from_a_fit():
    """fit's History also answers Keras 2's "acc" for "accuracy": one accuracy panel, not two,
    and none under "acc"."""
    model = minicnn.models.Sequential([minicnn.layers.Input((3,)), minicnn.layers.Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    x = np.random.default_rng(0).random((8, 3), dtype=np.float32)
    history = model.fit(x, np.eye(2)[np.arange(8) % 2], epochs=2, validation_data=(x, np.eye(2)[np.arange(8) % 2]),
                        verbose=0)
    with pytest.warns(DeprecationWarning, match="Keras 2"):
        assert "acc" in history.history  # the Keras 2 name answers
    axes = plot.training_curves(history).axes
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"] and [len(ax.lines) for ax in axes] == [2, 2]
    with pytest.raises(ValueError, match="History"):
        plot.training_curves({})


def test_confusion_matrix_counts_and_labels():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    counts = plot.confusion_counts(y_true, y_pred)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    fig = plot.confusion_matrix(to_categorical(y_true, 10), y_pred, CLASS_NAMES)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASS_NAMES)
    assert ax.images[0].get_array().shape == (10, 10)
    assert "accuracy 0.6667" in ax.get_title()


def test_prediction_grid_marks_mistakes():
    images = np.random.default_rng(0).random((7, 28, 28, 1))
    truth = np.array([0, 1, 2, 3, 4, 5, 6])
    probs = to_categorical([0, 1, 2, 9, 4, 5, 6], 10) * 0.9 + 0.01
    fig = plot.prediction_grid(images, truth, probs, CLASS_NAMES, columns=4)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 8 and len(titled) == 7
    red = [ax for ax in titled if ax.title.get_color() == "red"]
    assert len(red) == 1 and "true: Dress" in red[0].get_title() and "Ankle boot" in red[0].get_title()
    assert titled[0].images[0].get_array().shape == (28, 28)


def test_conv_filters_and_feature_maps():
    set_random_seed(0)
    model = tutorial_model()
    fig = plot.conv_filters(model.layers[0])
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 64 and images[5].get_array().shape == (3, 3)
    np.testing.assert_array_equal(images[5].get_array(), model.layers[0].params["W"][:, :, 0, 5])
    assert len([ax for ax in plot.conv_filters(model.layers[3], channel=7).axes if ax.images]) == 64
    with pytest.raises(ValueError, match="channel 1 does not exist"):
        plot.conv_filters(model.layers[0], channel=1)
    with pytest.raises(TypeError, match="Conv2D"):
        plot.conv_filters(model.layers[7])
    fig = plot.feature_maps(model, np.random.default_rng(0).random((28, 28)), max_maps=4)
    sizes = sorted({ax.images[0].get_array().shape for ax in fig.axes if ax.images})
    assert sizes == [(5, 5), (11, 11), (13, 13), (26, 26)]
    assert len([ax for ax in fig.axes if ax.images]) == 6 * 4  # conv, relu, pool, conv, relu, pool


def test_activation_histograms():
    set_random_seed(0)
    x, y = small_data(16)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    fig = plot.activation_histograms(model, x, y)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sum("output" in t for t in titles) == len(model.layers)
    assert sum(" dW" in t or " db" in t for t in titles) == 4
