"""EarlyStopping, ModelCheckpoint, CSVLogger, LearningRateScheduler, TerminateOnNaN, BackupAndRestore
and ReduceLROnPlateau, as Keras's, on a tiny model."""
import csv

import numpy as np
import pytest
from toy import small_data, small_model

from minicnn.callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential, load_model
from minicnn.utils import set_random_seed


class Scripted(Callback):
    """Replaces the epoch's val_loss by a scripted sequence, to drive the other callbacks."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


def model_and_data():
    set_random_seed(2)
    x, y = small_data(32)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model, x, y


def test_early_stopping_patience_and_best_weights():
    model, x, y = model_and_data()
    seen = []

    class Keep(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(model.get_weights())

    stop = EarlyStopping(patience=2, restore_best_weights=True)
    # val_loss improves until epoch 2 (index 1), then not for 2 epochs: stops after epoch 4
    history = model.fit(x, y, epochs=10, verbose=0, validation_data=(x, y),
                        callbacks=[Scripted([0.9, 0.5, 0.6, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), Keep(), stop])
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    for a, b in zip(model.get_weights(), seen[1]):
        np.testing.assert_array_equal(a, b)  # the weights of the best epoch are back


def test_early_stopping_min_delta_mode_and_missing_metric():
    model, x, y = model_and_data()
    stop = EarlyStopping(monitor="val_loss", min_delta=0.05, patience=0)
    history = model.fit(x, y, epochs=5, verbose=0, validation_data=(x, y),
                        callbacks=[Scripted([1.0, 0.97, 0.5, 0.5, 0.5]), stop])
    assert len(history.epoch) == 2  # 0.97 is not better than 1.0 by more than 0.05
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    with pytest.raises(ValueError, match="monitors 'val_loss', which fit does not report.*validation_data"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="mode must be"):
        EarlyStopping(mode="best")


def test_model_checkpoint_every_epoch_and_best_only(tmp_path):
    model, x, y = model_and_data()
    every = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.npz")
    best = ModelCheckpoint(tmp_path / "best.npz", save_best_only=True, save_weights_only=True)
    model.fit(x, y, epochs=3, verbose=0, validation_data=(x, y),
              callbacks=[Scripted([0.5, 0.7, 0.3]), every, best])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.npz", "ckpt-01-0.50.npz", "ckpt-02-0.70.npz", "ckpt-03-0.30.npz"]
    last = load_model(tmp_path / "ckpt-03-0.30.npz")
    np.testing.assert_array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))
    assert best.best == 0.3
    with pytest.raises(ValueError, match="names 'val_auc'"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "{val_auc}.npz")])


def test_csv_logger_rows_and_append(tmp_path):
    model, x, y = model_and_data()
    path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [float(r["loss"]) for r in rows] == history.history["loss"]
    model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y), callbacks=[CSVLogger(path, append=True)])
    assert len(list(csv.DictReader(path.open()))) == 3


def test_learning_rate_scheduler_lambda_and_terminate_on_nan(capsys):
    from minicnn.callbacks import LambdaCallback, LearningRateScheduler, TerminateOnNaN
    x, y = small_data(32)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    seen = []
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[
        LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else 0.01),
        LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, round(logs["learning_rate"], 6))),
                       on_train_begin=lambda logs: seen.append("begin"))])
    assert history.history["learning_rate"] == [0.01, 0.005, 0.0025]
    assert seen == ["begin", (0, 0.01), (1, 0.005), (2, 0.0025)]
    model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: 0.002)])  # one argument
    assert model.optimizer.learning_rate == 0.002
    with pytest.raises(ValueError, match="positive float learning rate"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: "fast")])
    with pytest.raises(ValueError, match="LambdaCallback takes"):
        LambdaCallback(on_batch_end=print)
    stopper = TerminateOnNaN()
    stopper.set_model(model)
    stopper.on_train_batch_end(3, {"loss": np.nan})
    assert model.stop_training and "Invalid loss" in capsys.readouterr().out


def test_every_keras_hook_and_model_checkpoint_arguments(tmp_path, capsys):
    class Recorder(Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __getattribute__(self, name):
            if name.startswith("on_"):
                return lambda *args, **kwargs: object.__getattribute__(self, "calls").append(name)
            return object.__getattribute__(self, name)

    x, y = small_data(32)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    rec = Recorder()
    model.fit(x, y, batch_size=16, epochs=1, validation_data=(x[:16], y[:16]), verbose=0, callbacks=[rec])
    assert rec.calls == ["on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end",
                         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_batch_begin",
                         "on_test_batch_end", "on_test_end", "on_epoch_end", "on_train_end"]
    rec.calls.clear()
    model.predict(x[:4], verbose=0, callbacks=[rec])
    assert rec.calls == ["on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]
    ckpt = ModelCheckpoint(str(tmp_path / "b{epoch}-{batch}.npz"), save_freq=3, verbose=1)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ckpt])  # 4 batches an epoch: saves at 3, 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1-3.npz", "b2-2.npz"]
    assert "saving model to" in capsys.readouterr().out
    best = ModelCheckpoint(str(tmp_path / "best.npz"), monitor="loss", save_best_only=True, initial_value_threshold=0.0)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[best])
    assert not (tmp_path / "best.npz").exists()  # nothing beat the threshold
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("x.npz", save_freq=0)


BACKUP_SCRIPT = """
import hashlib, os, sys
import numpy as np
sys.path.insert(0, sys.argv[3])
from toy import small_data, small_model
from minicnn.callbacks import BackupAndRestore, Callback
from minicnn.utils import set_random_seed

class Kill(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 2 and batch == 1:
            os._exit(17)  # killed mid-epoch: no cleanup, no exception handler

set_random_seed(11)
x, y = small_data(64)
model = small_model()
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
callbacks = [BackupAndRestore(sys.argv[1])] + ([Kill()] if sys.argv[2] == "kill" else [])
model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=callbacks)
h = hashlib.sha256()
for w in model.get_weights() + [s[k] for s in model.optimizer.slots for k in sorted(s)]:
    h.update(np.ascontiguousarray(w).tobytes())
print(h.hexdigest(), model.optimizer.iterations)
"""


@pytest.mark.slow
def test_backup_and_restore_resumes_a_killed_fit_bit_for_bit(tmp_path):
    import os
    import subprocess
    import sys
    tests = os.path.dirname(__file__)

    def run(backup, mode):
        return subprocess.run([sys.executable, "-c", BACKUP_SCRIPT, str(backup), mode, tests], capture_output=True,
                              text=True, check=False)
    straight = run(tmp_path / "a", "straight")
    assert straight.returncode == 0, straight.stderr
    killed = run(tmp_path / "b", "kill")
    assert killed.returncode == 17 and (tmp_path / "b" / "backup.npz").is_file()  # epochs 0 and 1 backed up
    resumed = run(tmp_path / "b", "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == straight.stdout.split()  # the same weights, Adam state and step count
    assert straight.stdout.split()[1] == "16" and not (tmp_path / "b" / "backup.npz").exists()  # deleted at the end


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
