"""Keras 2's names that Keras 3 removed (minicnn/legacy.py and the modules it names): optimizers'
lr= and decay=, np_utils, fit_generator and its kin, History's acc/val_acc, and a whole Keras 2
program. Keras 2 is not installable beside Keras 3: the references are its documented formulas,
and Keras 3 where it can express the same thing (decay as an InverseTimeDecay schedule)."""
import warnings

import numpy as np
import pytest

from minicnn import legacy, optimizers


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees the once-only notes afresh."""
    legacy._warned.clear()
    yield
    legacy._warned.clear()


ALL = ("SGD", "Adam", "RMSprop", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam")


def test_lr_is_learning_rate_and_says_the_keras_3_name_once():
    for name in ALL:
        legacy._warned.clear()
        with pytest.warns(DeprecationWarning, match="learning_rate="):
            opt = getattr(optimizers, name)(lr=0.25)
        assert opt.learning_rate == 0.25 and opt.decay == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizers.SGD(lr=0.5)  # the second time: no note
        assert optimizers.SGD(learning_rate=0.1).learning_rate == 0.1
    with pytest.warns(DeprecationWarning, match="optimizer.learning_rate"):
        assert opt.lr == 0.25
    opt.lr = 0.125
    assert opt.learning_rate == 0.125


def test_sgd_decay_follows_keras_2s_formula():
    """lr_t = lr / (1 + decay * t), t the steps done before this one (Keras 2's _decayed_lr)."""
    rng = np.random.default_rng(0)
    lr, decay = 0.1, 0.5
    p = rng.standard_normal(5)
    opt, expected = optimizers.SGD(lr=lr, decay=decay), p.copy()
    for t in range(4):
        g = rng.standard_normal(5)
        assert opt.learning_rate == pytest.approx(lr / (1 + decay * t))
        opt.apply_gradients([(g, p)])
        expected -= lr / (1 + decay * t) * g
        np.testing.assert_allclose(p, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_decay_matches_keras_3_with_the_equivalent_schedule(keras, name):
    """Keras 2's decay is Keras 3's InverseTimeDecay(lr, decay_steps=1, decay_rate=decay): four
    steps of every optimizer in both engines from the same weights and gradients."""
    rng = np.random.default_rng(1)
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours = getattr(optimizers, name)(lr=0.05, decay=0.3)
    schedule = keras.optimizers.schedules.InverseTimeDecay(0.05, decay_steps=1, decay_rate=0.3)
    theirs = getattr(keras.optimizers, name)(learning_rate=schedule)
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
    for mine, v in zip(params, variables):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=1e-5, atol=1e-6)


def test_decay_is_saved_and_a_set_rate_decays_on_from_it():
    opt = optimizers.Adam(lr=0.01, decay=0.1)
    assert optimizers.Optimizer.from_config(opt.get_config()).decay == 0.1
    opt.iterations = 10  # as after ten steps: the next rate is 0.01 / 2
    assert opt.learning_rate == pytest.approx(0.005)
    opt.learning_rate = 0.001  # what ReduceLROnPlateau does: the next step's rate
    assert opt.learning_rate == pytest.approx(0.001)
    opt.iterations = 30  # and decay goes on from it, as Keras 2's undecayed lr times the factor
    assert opt.learning_rate == pytest.approx(0.002 / (1 + 0.1 * 30))
    with pytest.raises(ValueError, match="decay cannot be less than 0"):
        optimizers.SGD(decay=-1)


def test_np_utils_is_keras_2s_home_of_to_categorical():
    import minicnn
    from minicnn.utils import np_utils, to_categorical
    from minicnn.utils.np_utils import to_categorical as old
    with pytest.warns(DeprecationWarning, match="keras.utils.to_categorical"):
        y = old([0, 2, 1], 3)
    np.testing.assert_array_equal(y, to_categorical([0, 2, 1], 3))
    np.testing.assert_array_equal(np_utils.to_categorical([1], num_classes=2), [[0, 1]])
    assert minicnn.utils.np_utils is np_utils


# -- fit_generator and its kin, History's Keras 2 names -------------------------------------------
def tiny_data(n=24, seed=0):
    """Two classes of 4x4 images told apart by their brightness."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    x = (rng.random((n, 4, 4, 1)) * 0.5 + labels[:, None, None, None] * 0.5).astype(np.float32)
    return x, labels


def tiny_model(optimizer="adam", metrics=("accuracy",)):
    from minicnn.layers import Dense, Flatten
    from minicnn.models import Sequential
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=list(metrics))
    return model


def batches(x, y, batch_size):
    """A Keras 2 style generator: (x, y) batches, looping forever."""
    while True:
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]


def test_fit_generator_is_fit_on_the_batches_of_a_generator():
    from minicnn.utils import set_random_seed, to_categorical
    x, labels = tiny_data(20)
    y = to_categorical(labels)
    set_random_seed(1)
    ours = tiny_model()
    with pytest.warns(DeprecationWarning, match=r"model.fit\(generator, steps_per_epoch"):
        history = ours.fit_generator(batches(x, y, 8), steps_per_epoch=len(x) / 8, epochs=3, verbose=0,  # 2.5: 3
                                     validation_data=(x[:8], y[:8]))
    set_random_seed(1)
    reference = tiny_model()
    expected = reference.fit(batches(x, y, 8), steps_per_epoch=3, epochs=3, verbose=0, validation_data=(x[:8], y[:8]))
    for a, b in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert history.history == expected.history and list(history.history) == list(expected.history)
    with pytest.warns(DeprecationWarning, match="model.evaluate"):
        loss, acc = ours.evaluate_generator(batches(x, y, 8), steps=3)
    assert [loss, acc] == reference.evaluate(x, y, batch_size=8, verbose=0)
    with pytest.warns(DeprecationWarning, match="model.predict"):
        p = ours.predict_generator(batches(x, y, 8), steps=3)
    np.testing.assert_array_equal(p, reference.predict(x, batch_size=8, verbose=0))
    with pytest.warns(DeprecationWarning, match="argmax"):
        np.testing.assert_array_equal(ours.predict_classes(x), p.argmax(axis=-1))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        ours.fit_generator(batches(x, y, 8), steps_per_epoch="all")


def test_fit_generator_goes_round_a_sequence_for_more_steps_than_its_length():
    from minicnn.preprocessing.image import ImageDataGenerator
    from minicnn.utils import to_categorical
    x, labels = tiny_data(10)
    flow = ImageDataGenerator().flow(x, to_categorical(labels), batch_size=4, seed=0)
    seen = []
    original = flow.on_epoch_end
    flow.on_epoch_end = lambda: (seen.append("end"), original())
    tiny_model().fit_generator(flow, steps_per_epoch=5, epochs=1, verbose=0)  # 3 batches, then 2 of the next round
    assert seen == ["end"]


def test_history_answers_keras_2s_acc_and_val_acc_without_writing_them():
    from minicnn.callbacks import EarlyStopping
    from minicnn.utils import to_categorical
    x, labels = tiny_data()
    y = to_categorical(labels)
    model = tiny_model()
    stop = EarlyStopping(monitor="val_acc", patience=5)  # Keras 2.2's name, maximised
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=(x, y), callbacks=[stop])
    h = history.history
    assert list(h) == ["loss", "accuracy", "val_loss", "val_accuracy"] and len(h) == 4  # Keras 3's names, once
    with pytest.warns(DeprecationWarning, match=r"history\['accuracy'\]"):
        assert h["acc"] is h["accuracy"]
    assert h["val_acc"] is h["val_accuracy"] and "acc" in h and "val_acc" in h and h.get("acc") == h["accuracy"]
    assert "val_acc" not in dict(h) and h.get("top_k") is None and "top_k" not in h
    with pytest.raises(KeyError):
        h["val_top_k"]
    assert stop.best == max(h["val_accuracy"])
    # compiled with Keras 2's "acc": written as "acc", and "accuracy" reads it
    h2 = tiny_model(metrics=("acc",)).fit(x, y, epochs=1, verbose=0).history
    assert list(h2) == ["loss", "acc"] and h2["accuracy"] is h2["acc"]


def test_a_keras_2_program_runs_as_written(tmp_path):
    """What a Keras 2 tutorial writes (the imports aside): np_utils, lr= and decay=, an
    ImageDataGenerator with fit and flow, fit_generator, evaluate_generator, history['acc']."""
    from minicnn.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from minicnn.models import Sequential
    from minicnn.optimizers import SGD
    from minicnn.preprocessing.image import ImageDataGenerator
    from minicnn.utils import np_utils, set_random_seed

    set_random_seed(0)
    x_train, y_train = tiny_data(48, seed=1)
    x_train = np.repeat(np.repeat(x_train, 2, axis=1), 2, axis=2) * 255  # 8x8 "pixels" in [0, 255]
    Y_train = np_utils.to_categorical(y_train, 2)

    model = Sequential()
    model.add(Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1)))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Flatten())
    model.add(Dense(2, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer=SGD(lr=0.1, decay=1e-4, momentum=0.9),
                  metrics=["accuracy"])

    datagen = ImageDataGenerator(rescale=1. / 255, featurewise_center=True, width_shift_range=0.1,
                                 horizontal_flip=True)
    datagen.fit(x_train)
    history = model.fit_generator(datagen.flow(x_train, Y_train, batch_size=8), steps_per_epoch=len(x_train) / 8,
                                  epochs=8, validation_data=datagen.flow(x_train, Y_train, batch_size=8),
                                  validation_steps=6, verbose=0)
    score = model.evaluate_generator(datagen.flow(x_train, Y_train, batch_size=8, shuffle=False), steps=6)
    assert history.history["acc"][-1] > 0.9 and history.history["val_acc"][-1] > 0.9 and score[1] > 0.9
    assert model.optimizer.iterations == 48
    assert model.optimizer.learning_rate == pytest.approx(0.1 / (1 + 1e-4 * 48))
