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
