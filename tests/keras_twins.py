"""One small model in minicnn and in Keras 3 with the same weights, and the comparisons of what
fit leaves behind (History, learning rates, weights) that tests/test_fit_vs_keras.py and
tests/test_callbacks_vs_keras.py share.

The model is Dense(5, relu) -> Dense(3) -> softmax on 4 features, trained by plain SGD: tiny
enough that a Keras fit takes a fraction of a second, with a hidden layer so that a wrong
gradient scale or a skipped sample changes every weight."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from minicnn.layers import Activation, Dense
from minicnn.models import Sequential
from minicnn.optimizers import SGD
from minicnn.utils import to_categorical

RTOL, ATOL = 2e-4, 2e-5  # float32 in both engines, different summation orders


def data(n=10, seed=0, k=3):
    """x: (n, 4) features, y: (n, k) one-hot labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, to_categorical(rng.integers(0, k, n), k).astype(np.float32)


def twins(keras, lr=0.1, loss="categorical_crossentropy", metrics=("accuracy",), seed=0, momentum=0.0, l2=None,
          softmax=True):
    """(minicnn model, Keras model), compiled, with equal weights. l2: an L2 penalty on the first
    kernel; softmax=False ends with the logits (for a loss from_logits)."""
    from minicnn import regularizers
    ours = Sequential([Dense(5, activation="relu", input_shape=(4,), kernel_regularizer=l2 and regularizers.L2(l2)),
                       Dense(3), *([Activation("softmax")] if softmax else [])])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu",
                                                                     kernel_regularizer=l2 and keras.regularizers.L2(l2)),
                               keras.layers.Dense(3), *([keras.layers.Activation("softmax")] if softmax else [])])
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    ours.compile(optimizer=SGD(learning_rate=lr, momentum=momentum), loss=_loss(loss, None), metrics=list(metrics))
    theirs.compile(optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=momentum), loss=_loss(loss, keras),
                   metrics=list(metrics))
    return ours, theirs


def _loss(loss, keras):
    """A loss name as is; ("categorical_crossentropy", {options}) as each engine's object."""
    if isinstance(loss, str):
        return loss
    name, options = loss
    if keras is None:
        from minicnn import losses
        return {"categorical_crossentropy": losses.CategoricalCrossentropy}[name](**options)
    return {"categorical_crossentropy": keras.losses.CategoricalCrossentropy}[name](**options)


def assert_history_equal(ours, theirs):
    """The same figures under the same names, epoch by epoch; ours, theirs: History objects."""
    assert ours.epoch == theirs.epoch
    assert sorted(ours.history) == sorted(theirs.history)
    for key in theirs.history:
        np.testing.assert_allclose(ours.history[key], theirs.history[key], rtol=RTOL, atol=ATOL, err_msg=key)


def assert_weights_equal(ours, theirs):
    mine, keras_weights = ours.get_weights(), theirs.get_weights()
    assert len(mine) == len(keras_weights)
    for a, b in zip(mine, keras_weights):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def learning_rate(model):
    """The optimizer's present rate, as a float, in either engine."""
    lr = model.optimizer.learning_rate
    return float(lr) if isinstance(lr, (int, float)) else float(np.asarray(lr))


def cases(names, fast):
    """pytest parameters for names, all but those in `fast` marked slow (a Keras fit costs
    about a second: the fast suite keeps one or two cases of each test, CI runs them all)."""
    import pytest
    return [pytest.param(n, id=n, marks=() if n in fast else pytest.mark.slow) for n in names]
