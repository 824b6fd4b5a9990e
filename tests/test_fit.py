"""fit's arguments as Keras 3's: sample_weight and class_weight, validation_freq, verbose,
a PyDataset or a generator for x, and the history keys of Keras 2's metric names."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.utils import set_random_seed, to_categorical


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
        assert model.train_on_batch(x, y, **kwargs) == pytest.approx(k_model.train_on_batch(x, y, **kwargs), rel=1e-5)
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


def test_a_bad_validation_freq_is_refused_before_training(rng):
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    with pytest.raises(ValueError, match="validation_freq must be an integer >= 1"):
        model.fit(rng.random((4, 2, 2)), [0, 1, 0, 1], validation_freq=0, verbose=0)
    assert model.optimizer.iterations == 0


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
    ds_model, h_ds = trained((dataset,), validation_data=Batches(x, y, 8), shuffle=False)
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
