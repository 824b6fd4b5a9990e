"""Every argument of every callback against Keras 3: the same fit in both engines, from the same
weights, compared by History (with the learning rates), the epochs run, the files written and
the final weights.

Where a decision depends on the monitored figure, a first callback writes a scripted "score"
into each epoch's logs, so the sequence is one where the argument changes the outcome (for
ReduceLROnPlateau's cooldown: 2 or more, since under Keras's rule cooldown=1 cuts as often as
cooldown=0); the training itself is real, so restored weights and learning rates show too."""
import pytest
from keras_twins import assert_history_equal, assert_weights_equal, cases, data, learning_rate, twins

from minicnn import callbacks as ours_cb

FIT = {"batch_size": 4, "shuffle": False, "verbose": 0}


def _scripted(base, scores):
    """A callback (of base, either engine's Callback) that writes scores[epoch] as logs["score"]."""
    class Score(base):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = float(scores[epoch])
    return Score()


def _fit_both(keras, make, scores=None, epochs=None, **fit):
    """Fit the twins with make(module) -> [callbacks] for each engine (after the scripted score);
    returns (ours, theirs, our History, Keras's History)."""
    x, y = data()
    ours, theirs = twins(keras, lr=0.2)
    epochs = epochs or len(scores)
    pre = lambda base: [] if scores is None else [_scripted(base, scores)]
    h_ours = ours.fit(x, y, epochs=epochs, callbacks=pre(ours_cb.Callback) + make(ours_cb), **FIT, **fit)
    h_theirs = theirs.fit(x, y, epochs=epochs, callbacks=pre(keras.callbacks.Callback) + make(keras.callbacks),
                          **FIT, **fit)
    return ours, theirs, h_ours, h_theirs


def _assert_same_fit(ours, theirs, h_ours, h_theirs):
    assert_history_equal(h_ours, h_theirs)
    assert_weights_equal(ours, theirs)
    assert learning_rate(ours) == pytest.approx(learning_rate(theirs), rel=1e-6)


# -- EarlyStopping ------------------------------------------------------------------------------
EARLY_STOPPING = {
    # improving every epoch but never below the baseline: Keras keeps going while it improves,
    # and stops at the first epoch that does not (its wait has counted every epoch)
    "baseline": ({"baseline": 0.5, "patience": 2, "mode": "min"}, [1.0, 0.9, 0.8, 0.7, 0.9, 0.6, 0.5]),
    "baseline_restore": ({"baseline": 0.5, "patience": 2, "mode": "min", "restore_best_weights": True},
                         [1.0, 0.9, 0.8, 0.7, 0.9, 0.6, 0.5]),
    "baseline_beaten": ({"baseline": 0.85, "patience": 1, "mode": "min"}, [1.0, 0.8, 0.9, 0.7, 0.6, 0.9, 1.0]),
    "start_from_epoch": ({"start_from_epoch": 2, "patience": 1, "mode": "min"}, [0.1, 0.2, 0.5, 0.4, 0.6, 0.7, 0.8]),
    "min_delta": ({"min_delta": 0.05, "patience": 2, "mode": "min"}, [1.0, 0.97, 0.96, 0.9, 0.88, 0.87, 0.86]),
    "mode_max": ({"mode": "max", "patience": 1}, [0.1, 0.3, 0.2, 0.25, 0.4, 0.3, 0.2]),
    "patience": ({"patience": 3, "mode": "min"}, [1.0, 0.5, 0.6, 0.7, 0.4, 0.5, 0.6, 0.7, 0.8]),
    "restore_best_weights": ({"patience": 2, "mode": "min", "restore_best_weights": True},
                             [1.0, 0.5, 0.6, 0.4, 0.7, 0.8, 0.9]),
    "restore_at_the_end": ({"patience": 9, "mode": "min", "restore_best_weights": True}, [1.0, 0.5, 0.3, 0.6, 0.7]),
    "restore_start_from_epoch": ({"patience": 1, "mode": "min", "restore_best_weights": True, "start_from_epoch": 2},
                                 [0.1, 0.2, 0.5, 0.6, 0.7]),
}


@pytest.mark.parametrize("case", cases(sorted(EARLY_STOPPING), fast={"baseline_restore"}))
def test_early_stopping_matches_keras(keras, case):
    kwargs, scores = EARLY_STOPPING[case]
    made = {}

    def make(module):
        made[module] = module.EarlyStopping(monitor="score", **kwargs)
        return [made[module]]

    ours, theirs, h_ours, h_theirs = _fit_both(keras, make, scores)
    _assert_same_fit(ours, theirs, h_ours, h_theirs)
    assert len(h_ours.epoch) < len(scores) or case.startswith("restore_at")  # the sequence makes it stop


@pytest.mark.slow
def test_early_stopping_mode_auto_on_accuracy_matches_keras(keras):
    """mode="auto" maximises accuracies in both (a real figure, not a scripted one)."""
    ours, theirs, h_ours, h_theirs = _fit_both(
        keras, lambda m: [m.EarlyStopping(monitor="accuracy", patience=1, restore_best_weights=True)], epochs=8)
    _assert_same_fit(ours, theirs, h_ours, h_theirs)


# -- ReduceLROnPlateau --------------------------------------------------------------------------
FLAT = [1.0] * 8
REDUCE_LR = {
    "cooldown_0": ({"patience": 1, "cooldown": 0}, FLAT),
    "cooldown_2": ({"patience": 1, "cooldown": 2}, FLAT),
    "cooldown_3_patience_2": ({"patience": 2, "cooldown": 3}, FLAT),
    "min_delta": ({"patience": 1, "min_delta": 0.05}, [1.0, 0.97, 0.94, 0.85, 0.84, 0.83, 0.7, 0.69]),
    "min_delta_negative": ({"patience": 1, "min_delta": -0.05}, [1.0, 0.97, 0.94, 0.85, 0.84, 0.83, 0.7, 0.69]),
    "min_lr": ({"patience": 1, "min_lr": 0.03}, FLAT),
    "mode_max": ({"patience": 1, "mode": "max"}, [1.0, 0.9, 1.1, 1.2, 0.8, 1.3, 1.0, 0.9]),
    "factor": ({"patience": 2, "factor": 0.3}, [1.0, 1.1, 0.9, 1.0, 1.0, 0.8, 0.9, 0.9]),
}


@pytest.mark.parametrize("case", cases(sorted(REDUCE_LR), fast={"cooldown_2"}))
def test_reduce_lr_on_plateau_matches_keras(keras, case):
    kwargs, scores = REDUCE_LR[case]
    kwargs = {"mode": "min", "factor": 0.5, **kwargs}
    ours, theirs, h_ours, h_theirs = _fit_both(
        keras, lambda m: [m.ReduceLROnPlateau(monitor="score", **kwargs)], scores)
    _assert_same_fit(ours, theirs, h_ours, h_theirs)
    assert len(set(h_ours.history["learning_rate"])) > 1  # the sequence makes it cut


def test_reduce_lr_cooldown_changes_the_rates():
    """An independent reference, the rule written out: on a flat figure with patience 1 and
    factor 0.5, the first cut comes after epoch 1, then one every max(cooldown, 1) epochs (the
    cooldown's last epoch already counts towards patience, so cooldown=1 cuts as often as 0).
    The logs show the rate each epoch ran with."""
    from minicnn.layers import Activation, Dense
    from minicnn.models import Sequential
    from minicnn.optimizers import SGD
    x, y = data()
    rates = {}
    for cooldown in (0, 1, 2, 3):
        model = Sequential([Dense(3, input_shape=(4,)), Activation("softmax")])
        model.compile(optimizer=SGD(learning_rate=0.1), loss="categorical_crossentropy")
        cbs = [_scripted(ours_cb.Callback, FLAT), ours_cb.ReduceLROnPlateau("score", 0.5, 1, cooldown=cooldown)]
        rates[cooldown] = model.fit(x, y, epochs=8, callbacks=cbs, **FIT).history["learning_rate"]
    for cooldown, got in rates.items():
        cuts = [sum(1 for t in range(1, e) if (t - 1) % max(cooldown, 1) == 0) for e in range(8)]
        assert got == pytest.approx([0.1 * 0.5 ** c for c in cuts]), cooldown
    assert rates[1] == rates[0] != rates[2]


# -- LearningRateScheduler ----------------------------------------------------------------------
@pytest.mark.parametrize("schedule", [lambda epoch, lr: lr * 0.5 if epoch % 2 else lr,
                                      lambda epoch: 0.3 / (1 + epoch)], ids=["epoch_lr", "epoch"])
def test_learning_rate_scheduler_matches_keras(keras, schedule):
    ours, theirs, h_ours, h_theirs = _fit_both(keras, lambda m: [m.LearningRateScheduler(schedule)], epochs=5)
    _assert_same_fit(ours, theirs, h_ours, h_theirs)


# -- ModelCheckpoint ----------------------------------------------------------------------------
CHECKPOINT = {
    "save_freq_2": ({"save_freq": 2}, None),
    "save_freq_epoch": ({}, None),
    # every 2 batches, the epoch's running loss so far against the best: Keras's batch logs
    "save_freq_best_loss": ({"save_freq": 2, "save_best_only": True, "monitor": "loss", "mode": "min"}, None),
    "save_best_only": ({"save_best_only": True, "monitor": "score", "mode": "min"}, [1.0, 0.8, 0.9, 0.7, 0.7]),
    "save_best_only_max": ({"save_best_only": True, "monitor": "score", "mode": "max"}, [1.0, 0.8, 1.2, 0.7, 1.3]),
    "initial_value_threshold": ({"save_best_only": True, "monitor": "score", "mode": "min", "initial_value_threshold": 0.85},
                                [1.0, 0.9, 0.8, 0.82, 0.6]),
}


@pytest.mark.parametrize("case", cases(sorted(CHECKPOINT), fast={"save_freq_2"}))
def test_model_checkpoint_matches_keras(keras, case, tmp_path):
    """The same checkpoints (by epoch and batch), holding the same weights."""
    kwargs, scores = CHECKPOINT[case]
    batch = "-{batch}" if "save_freq" in kwargs else ""

    def make(module):
        ext, folder = (".npz", "ours") if module is ours_cb else (".weights.h5", "keras")
        return [module.ModelCheckpoint(str(tmp_path / folder / f"e{{epoch}}{batch}{ext}"), save_weights_only=True,
                                       **kwargs)]

    (tmp_path / "ours").mkdir()
    (tmp_path / "keras").mkdir()
    ours, theirs, h_ours, h_theirs = _fit_both(keras, make, scores, epochs=5)
    _assert_same_fit(ours, theirs, h_ours, h_theirs)
    saved = sorted(p.name.removesuffix(".npz") for p in (tmp_path / "ours").iterdir())
    assert saved == sorted(p.name.removesuffix(".weights.h5") for p in (tmp_path / "keras").iterdir())
    assert 0 < len(saved) < (15 if batch else 5) or case == "save_freq_epoch"
    for name in saved:
        ours.load_weights(tmp_path / "ours" / f"{name}.npz")
        theirs.load_weights(tmp_path / "keras" / f"{name}.weights.h5")
        assert_weights_equal(ours, theirs)


# -- BackupAndRestore ---------------------------------------------------------------------------
class Interrupt(Exception):
    pass


@pytest.mark.parametrize("save_freq, kill_at", [pytest.param("epoch", (2, 0), id="epoch", marks=pytest.mark.slow),
                                               pytest.param(2, (1, 2), id="every_2_batches"),
                                               pytest.param(2, (0, 2), id="every_2_batches_in_epoch_0",
                                                            marks=pytest.mark.slow)])
def test_backup_and_restore_resumes_as_keras(keras, tmp_path, save_freq, kill_at):
    """A fit killed at (epoch, batch), run again in a fresh process (fresh twins from the first
    weights): both engines restore the weights and the optimizer's momentum of the last backup
    and resume where Keras's rule says (after the last finished epoch; with save_freq=2, 3
    batches an epoch, the backup made after batch 0 of epoch 1, and epoch 1 runs again from
    it), and end with the same History of the second run and the same weights."""
    x, y = data()
    killed = twins(keras, lr=0.2, momentum=0.9)  # momentum: the optimizer's state must come back too
    fresh = twins(keras, lr=0.2, momentum=0.9)
    runs = {}
    for k, (module, base) in enumerate(((ours_cb, ours_cb.Callback), (keras.callbacks, keras.callbacks.Callback))):
        class Kill(base):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_begin(self, batch, logs=None):
                if (self.epoch, batch) == kill_at:
                    raise Interrupt
        folder = tmp_path / module.__name__
        with pytest.raises(Interrupt):
            killed[k].fit(x, y, epochs=5, callbacks=[module.BackupAndRestore(str(folder), save_freq=save_freq), Kill()],
                          **FIT)
        runs[module] = fresh[k].fit(x, y, epochs=5, callbacks=[module.BackupAndRestore(str(folder), save_freq=save_freq)],
                                    **FIT)
    assert runs[ours_cb].epoch == list(range(kill_at[0], 5))  # the epoch killed runs again
    _assert_same_fit(*fresh, runs[ours_cb], runs[keras.callbacks])


@pytest.mark.parametrize("save_freq", [0, -2, 1.5, True, "batch"])
def test_backup_and_restore_refuses_a_bad_save_freq(tmp_path, save_freq):
    with pytest.raises(ValueError, match="save_freq"):
        ours_cb.BackupAndRestore(str(tmp_path), save_freq=save_freq)


def test_monitors_on_epochs_without_validation_match_keras(keras, tmp_path):
    """validation_freq=2: val_loss is missing from every other epoch's logs. Keras's callbacks
    let such an epoch pass (with a warning; ModelCheckpoint with save_best_only saves it): the
    same stops, rates and files here, and no error."""
    xv, yv = data(n=5, seed=1)

    def make(module):
        ext, folder = (".npz", "ours") if module is ours_cb else (".weights.h5", "keras")
        return [module.EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0),
                module.ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5, min_delta=10.0),
                module.ModelCheckpoint(str(tmp_path / folder / f"e{{epoch}}{ext}"), monitor="val_loss",
                                       save_best_only=True, save_weights_only=True)]

    (tmp_path / "ours").mkdir()
    (tmp_path / "keras").mkdir()
    ours, theirs, h_ours, h_theirs = _fit_both(keras, make, epochs=6, validation_data=(xv, yv), validation_freq=2)
    assert h_ours.epoch == h_theirs.epoch and len(h_ours.epoch) < 6
    _assert_same_fit(ours, theirs, h_ours, h_theirs)
    assert sorted(p.name.removesuffix(".npz") for p in (tmp_path / "ours").iterdir()) == \
        sorted(p.name.removesuffix(".weights.h5") for p in (tmp_path / "keras").iterdir())
