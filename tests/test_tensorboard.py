"""minicnn.callbacks.TensorBoard (its writer in minicnn/tensorboard.py): the event files of a short fit, read back with TensorBoard's
own reader (EventAccumulator), hold History's figures under Keras's tags and folders."""
import io

import numpy as np
import pytest
from PIL import Image
from toy import small_data, small_model

from minicnn.callbacks import TensorBoard
from minicnn.utils import set_random_seed

pytest.importorskip("tensorboardX", reason='the writer: pip install "minicnn[tensorboard]"')
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="the reader: pip install tensorboard")


def read_run(folder):
    """EventAccumulator of one run folder (train/ or validation/), every event kept."""
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0,
                                                                        "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def fit(tmp_path, **kwargs):
    set_random_seed(3)
    x, y = small_data(48)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x[:16], y[:16]),
                        callbacks=[TensorBoard(tmp_path / "logs", **kwargs)])
    return model, history


def test_epoch_scalars_equal_history(tmp_path):
    _, history = fit(tmp_path)
    train, val = read_run(tmp_path / "logs" / "train"), read_run(tmp_path / "logs" / "validation")
    assert set(train.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    assert set(val.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations",
                                          "evaluation_accuracy_vs_iterations"}
    # after each epoch's 3 steps, the validation's figures again, at the optimizer's step count
    assert scalars(val, "evaluation_loss_vs_iterations") == [(3 * (e + 1), np.float32(v))
                                                             for e, v in enumerate(history.history["val_loss"])]
    for name in ("loss", "accuracy"):
        # TensorBoard stores float32: History's float64 figures, rounded once
        assert scalars(train, f"epoch_{name}") == [(e, np.float32(v)) for e, v in enumerate(history.history[name])]
        assert scalars(val, f"epoch_{name}") == [(e, np.float32(v))
                                                 for e, v in enumerate(history.history[f"val_{name}"])]
    assert [v for _, v in scalars(train, "epoch_learning_rate")] == [np.float32(1e-3)] * 3
    assert train.Tags()["histograms"] == [] and train.Tags()["images"] == []


def test_batch_scalars_every_n_batches(tmp_path):
    seen = []

    class Running(TensorBoard):  # what fit hands the callback for each batch, to compare with
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))
            super().on_train_batch_end(batch, logs)

    set_random_seed(3)
    x, y = small_data(48)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[Running(tmp_path / "logs", update_freq=2)])
    train = read_run(tmp_path / "logs" / "train")
    # 3 batches an epoch, 9 in all, counted from 1 across epochs: every 2nd one is written
    assert scalars(train, "batch_loss") == [(k, np.float32(seen[k - 1]["loss"])) for k in (2, 4, 6, 8)]
    assert [s for s, _ in scalars(train, "batch_accuracy")] == [2, 4, 6, 8]


def test_histograms_of_weights_and_gradients_and_filter_images(tmp_path):
    model, _ = fit(tmp_path, histogram_freq=2, write_images=True)
    train = read_run(tmp_path / "logs" / "train")
    conv, dense = f"{model.name}/{model.layers[0].name}", f"{model.name}/{model.layers[4].name}"
    expected = {f"{layer}/{w}/{kind}" for layer in (conv, dense) for w in ("kernel", "bias")
                for kind in ("histogram", "gradient/histogram")}
    assert set(train.Tags()["histograms"]) == expected
    kernel = train.Histograms(f"{conv}/kernel/histogram")
    assert [e.step for e in kernel] == [0, 2]  # epochs 0 and 2 of 3
    W = model.layers[0].params["W"]  # the last histogram is of the final weights
    h = kernel[-1].histogram_value
    assert h.num == W.size and h.min == pytest.approx(W.min()) and h.max == pytest.approx(W.max())
    assert h.sum == pytest.approx(W.sum(), abs=1e-5)
    dW = train.Histograms(f"{conv}/kernel/gradient/histogram")[-1].histogram_value
    assert dW.sum == pytest.approx(model.layers[0].grads["W"].sum(), abs=1e-6)
    images = train.Images(f"{conv}/kernel/image")  # one picture a time: the 4 filters, 3 x 3 each, in a row
    assert [(im.step, im.width, im.height) for im in images] == [(0, 12, 3), (2, 12, 3)]
    pixels = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)).convert("L"), dtype=np.float32)
    mean = W.mean(axis=2)  # (3, 3, 4): each filter's channels averaged, scaled to the kernel's range
    expected = (mean - mean.min()) / (mean.max() - mean.min()) * 255
    np.testing.assert_allclose(pixels, np.concatenate([expected[:, :, f] for f in range(4)], axis=1), atol=1.01)


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(ValueError, match="update_freq must be"):
        TensorBoard(tmp_path, update_freq="sometimes")
    with pytest.raises(ValueError, match="histogram_freq must be"):
        TensorBoard(tmp_path, histogram_freq=-1)


def test_missing_writer_names_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # an import of it now fails, as when not installed
    with pytest.raises(ImportError, match=r'minicnn\[tensorboard\]'):
        TensorBoard()


def tags_and_steps(folder, kinds):
    acc = read_run(folder)
    read = {"scalars": acc.Scalars, "histograms": acc.Histograms, "images": acc.Images, "tensors": acc.Tensors}
    return {tag: [e.step for e in read[kind](tag)] for kind in kinds for tag in acc.Tags()[kind]}


def test_the_same_tags_and_steps_as_keras(tmp_path):
    """Keras's own TensorBoard on the same fit: the same folders, tags and steps (Keras stores its
    summaries as tensors; it also writes the model ("keras"), a picture of every weight, and no
    gradient histograms). update_freq=1: with N > 1, Keras also drops the epoch's figures when the
    epoch ends off an N-th batch (its record_if holds for the whole writer); minicnn writes them all."""
    keras = pytest.importorskip("keras")
    from minicnn.layers import Conv2D, Dense, Flatten
    from minicnn.models import Sequential

    x, y = small_data(48)
    args = {"histogram_freq": 1, "write_images": True, "update_freq": 1}
    k = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"),
                          keras.layers.Flatten(name="flat"), keras.layers.Dense(2, activation="softmax", name="out")],
                         name="net")  # named: Keras numbers its default names across the process (sequential_3)
    m = Sequential([Conv2D(4, 3, input_shape=(8, 8, 1), name="conv"), Flatten(name="flat"),
                    Dense(2, activation="softmax", name="out")], name="net")
    for model, callback, folder in ((k, keras.callbacks.TensorBoard, "keras"), (m, TensorBoard, "minicnn")):
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_data=(x[:16], y[:16]),
                  callbacks=[callback(str(tmp_path / folder), **args)])
    for run in ("train", "validation"):
        theirs = tags_and_steps(tmp_path / "keras" / run, ["tensors"])
        ours = tags_and_steps(tmp_path / "minicnn" / run, ["scalars", "histograms", "images"])
        theirs = {t: s for t, s in theirs.items() if t != "keras" and (not t.endswith("/image")
                                                                      or t == "net/conv/kernel/image")}
        assert {t: s for t, s in ours.items() if "/gradient/" not in t} == theirs
        assert run == "validation" or "net/conv/kernel/histogram" in theirs
