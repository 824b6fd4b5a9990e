"""The optimizers against Keras 3's steps (Adam by its formula, every other optimizer and
option by Keras on the same gradients), clipping and schedules inside a step, and the
arguments each one refuses."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn
from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD, Adam


def keras_adam_by_hand(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    p, m, v = p.astype(np.float64), np.zeros_like(p, np.float64), np.zeros_like(p, np.float64)
    for t, g in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        p = p - alpha * m / (np.sqrt(v) + eps)
    return p


def textbook_adam(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """Kingma and Ba's form: epsilon added to sqrt of the bias-corrected v."""
    p, m, v = p.astype(np.float64), np.zeros_like(p, np.float64), np.zeros_like(p, np.float64)
    for t, g in enumerate(grads, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


@pytest.mark.parametrize("scale", [1.0, 1e-6])  # tiny gradients: epsilon matters, the two forms part
@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_matches_keras_formula(each_backend, steps, dtype, scale, rng):
    """Adam.update (NumPy backend) and its compiled twin (Numba backend) take Keras's steps."""
    p0 = rng.standard_normal((4, 3)).astype(dtype)
    grads = [(rng.standard_normal((4, 3)) * scale).astype(dtype) for _ in range(steps)]
    opt, p = Adam(learning_rate=0.01), p0.copy()
    for g in grads:
        opt.apply_gradients([(g, p)])
    assert p.dtype == np.dtype(dtype) and opt.iterations == steps
    assert all(s.dtype == np.dtype(dtype) for s in opt.slots[0].values())
    tol = 1e-6 if dtype == "float32" else 1e-14
    keras_p = keras_adam_by_hand(p0, grads, lr=0.01)
    np.testing.assert_allclose(p, keras_p, rtol=tol, atol=tol)
    if scale < 1:  # the textbook form moves these params by a visibly different amount
        textbook = textbook_adam(p0, grads, lr=0.01)
        assert np.abs(textbook - keras_p).min() > 100 * tol
        assert not np.allclose(p, textbook, rtol=tol, atol=tol)


def test_sgd_plain_momentum_and_nesterov(rng):
    g = rng.standard_normal(5)
    for momentum, nesterov in [(0.0, False), (0.9, False), (0.9, True)]:
        p, opt = np.zeros(5), SGD(learning_rate=0.1, momentum=momentum, nesterov=nesterov)
        m, want = np.zeros(5), np.zeros(5)
        for _ in range(3):
            opt.apply_gradients([(g, p)])
            m = momentum * m - 0.1 * g
            want = want + (momentum * m - 0.1 * g if nesterov else m)
        np.testing.assert_allclose(p, want)


def test_optimizer_arguments_are_checked():
    with pytest.raises(ValueError, match="learning_rate"):
        Adam(learning_rate=0)
    with pytest.raises(ValueError, match="beta_1"):
        Adam(beta_1=1.0)
    opt = Adam()
    opt.apply_gradients([(np.zeros(2), np.zeros(2))])
    with pytest.raises(ValueError, match="built for 1 params"):
        opt.apply_gradients([(np.zeros(2), np.zeros(2))] * 2)


OPTIMIZER_CASES = [("Adam", {"amsgrad": True}), ("Adam", {"weight_decay": 0.01}), ("AdamW", {}),
                   ("AdamW", {"weight_decay": 0.1, "amsgrad": True}), ("Adagrad", {}),
                   ("Adagrad", {"initial_accumulator_value": 0.5}), ("Adadelta", {"learning_rate": 1.0}),
                   ("Adadelta", {"rho": 0.9}), ("Adamax", {}), ("Nadam", {}), ("Nadam", {"beta_1": 0.8}),
                   ("SGD", {"momentum": 0.9, "weight_decay": 0.01}), ("RMSprop", {"weight_decay": 0.05})]


@pytest.mark.parametrize("name,kwargs", OPTIMIZER_CASES)
def test_optimizers_take_keras_steps(keras, rng, name, kwargs, tmp_path):
    kwargs = {"learning_rate": 0.01, **kwargs}
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours, theirs = getattr(minicnn.optimizers, name)(**kwargs), getattr(keras.optimizers, name)(**kwargs)
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    for _ in range(5):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
    for mine, v in zip(params, variables):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=2e-5, atol=2e-6)
    again = type(ours).from_config(ours.get_config())
    assert again.get_config() == ours.get_config()
    assert minicnn.optimizers.get(name.lower()).get_config()["name"] == name


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"centered": True}, {"rho": 0.8, "momentum": 0.5,
                                                                               "centered": True, "epsilon": 1e-5}])
def test_rmsprop_takes_keras_steps(keras, each_backend, rng, kwargs):
    """RMSprop.update (NumPy backend) and rmsprop_step (Numba backend) take Keras's steps."""
    from minicnn.optimizers import RMSprop
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours, theirs = RMSprop(learning_rate=0.01, **kwargs), keras.optimizers.RMSprop(learning_rate=0.01, **kwargs)
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
    for mine, v in zip(params, variables):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=1e-5, atol=1e-6)
    assert minicnn.optimizers.get("rmsprop").get_config()["rho"] == 0.9


@pytest.mark.parametrize("kwargs", [{"clipnorm": 0.5}, {"clipvalue": 0.2}, {"global_clipnorm": 0.7},
                                    {"learning_rate": "schedule"}])
def test_clipping_and_schedules_in_steps_as_keras(keras, rng, kwargs, tmp_path):
    def args(lib):
        if kwargs.get("learning_rate") == "schedule":
            return {"learning_rate": lib.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)}
        return {"learning_rate": 0.05, **kwargs}
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours, theirs = minicnn.optimizers.Adam(**args(minicnn)), keras.optimizers.Adam(**args(keras))
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(np.float32) * 2 for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
    for mine, v in zip(params, variables):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=2e-5, atol=2e-6)
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer=minicnn.optimizers.Adam(**args(minicnn)))
    model.train_on_batch(rng.random((4, 2, 2)), [0, 1, 1, 0])
    again = load_model(model.save(tmp_path / "opt.npz"))
    assert again.optimizer.get_config() == model.optimizer.get_config()
    assert again.optimizer.learning_rate == model.optimizer.learning_rate


def test_a_scheduled_rate_cannot_be_set_and_clip_options_exclude_each_other():
    from minicnn.optimizers import SGD, schedules
    opt = SGD(schedules.ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match="learning-rate schedule"):
        opt.learning_rate = 0.01
    with pytest.raises(ValueError, match="Only one of"):
        SGD(clipnorm=1.0, clipvalue=0.5)


def test_unknown_optimizer_arguments_are_refused():
    # Keras 2's lr= and decay= are accepted, as Keras 2 applied them: tests/test_legacy.py
    from minicnn.optimizers import Adam
    with pytest.raises(TypeError, match="unexpected arguments"):
        Adam(beta=0.9)


@pytest.mark.parametrize("options", [{}, {"decay": True}, {"momentum": 0.5}, {"centered": True}])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_rmsprop_step_matches_the_reference(dtype, options):
    """The compiled rmsprop_step takes the reference's steps, and refuses a step with a NaN or
    Inf anywhere (the check counts every element, it does not stop at the first) writing nothing."""
    from minicnn.kernels import numba_kernels, reference
    t = np.dtype(dtype).type
    shapes = [(3, 3, 2, 5), (7,), (5, 9)]
    decay = (t(0.3), t(0.01)) if options.get("decay") else None
    scalars = [t(0.01), t(0.9), t(1 - 0.9), t(1e-7), t(options.get("momentum", 0.0))]
    runs = []
    for step in (reference.rmsprop_step, numba_kernels.rmsprop_step):
        rng = np.random.default_rng(0)  # the same params and gradients for both
        params = [rng.standard_normal(s).astype(dtype) for s in shapes]
        names = ("v",) + (("m",) if "momentum" in options else ()) + (("a",) if "centered" in options else ())
        slots = [{k: np.zeros_like(p) for k in names} for p in params]
        for _ in range(3):
            grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
            assert step(params, grads, slots, *scalars, commit=False, decay=decay)
            assert step(params, grads, slots, *scalars, commit=True, decay=decay)
        before = [p.copy() for p in params] + [a.copy() for s in slots for a in s.values()]
        bad = [np.zeros_like(g) for g in grads]
        bad[2][4, 8] = np.nan  # one bad element, the last of the last param
        with np.errstate(over="ignore", invalid="ignore"):
            assert not step(params, bad, slots, *scalars, commit=False, decay=decay)
            huge = [np.full_like(g, np.finfo(dtype).max) for g in grads]  # g * g overflows
            assert not step(params, huge, slots, *scalars, commit=False, decay=decay)
            huge_rate = [t(np.finfo(dtype).max)] + scalars[1:]  # v stays finite, lr g overflows: p does not
            assert not step(params, [np.full_like(g, 10) for g in grads], slots, *huge_rate, commit=False, decay=decay)
        after = [p.copy() for p in params] + [a.copy() for s in slots for a in s.values()]
        assert all(np.array_equal(a, b) for a, b in zip(after, before))  # a refused check changes nothing
        runs.append(after)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_rmsprop_refuses_a_nan_gradient_and_writes_nothing(each_backend, rng):
    from minicnn.optimizers import NonFiniteError, RMSprop
    params = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    opt = RMSprop(learning_rate=0.01)
    opt.apply_gradients(zip([np.ones_like(p) for p in params], params))
    before = [p.copy() for p in params] + [opt.slots[i]["v"].copy() for i in range(2)]
    grads = [np.ones_like(p) for p in params]
    grads[1][2] = np.nan
    with pytest.raises(NonFiniteError, match="param 1"):
        opt.apply_gradients(zip(grads, params))
    after = [p.copy() for p in params] + [opt.slots[i]["v"].copy() for i in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(after, before)) and opt.iterations == 1


# -- use_ema: Keras's moving average of the weights -----------------------------------------------------
EMA_CASES = [("Adam", {}), ("AdamW", {"weight_decay": 0.1}), ("RMSprop", {"momentum": 0.5}),
             ("SGD", {"momentum": 0.9}), ("Nadam", {})]


@pytest.mark.parametrize("frequency", [None, 3])
@pytest.mark.parametrize("name,kwargs", EMA_CASES)
def test_moving_average_of_the_weights_as_keras(keras, each_backend, rng, name, kwargs, frequency):
    """7 steps with use_ema (the compiled Adam and RMSprop steps on the Numba backend): the same
    params as Keras after each step (with ema_overwrite_frequency=3 they take the average after
    steps 3 and 6), and the same averages, which finalize_variable_values writes into the params."""
    kwargs = {"learning_rate": 0.05, "use_ema": True, "ema_momentum": 0.8, "ema_overwrite_frequency": frequency,
              **kwargs}
    p0 = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours, theirs = getattr(minicnn.optimizers, name)(**kwargs), getattr(keras.optimizers, name)(**kwargs)
    params, variables = [p.copy() for p in p0], [keras.Variable(p) for p in p0]
    plain = [p.copy() for p in p0]  # the same steps without the average
    without = getattr(minicnn.optimizers, name)(**{**kwargs, "use_ema": False})
    for _ in range(7):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in p0]
        ours.apply_gradients(zip(grads, params))
        theirs.apply_gradients(zip(grads, variables))
        without.apply_gradients(zip(grads, plain))
        for mine, v in zip(params, variables):
            np.testing.assert_allclose(mine, np.asarray(v), rtol=2e-5, atol=2e-6)
    assert frequency is None or not np.allclose(params[0], plain[0], atol=1e-3)  # the overwrites changed the path
    ours.finalize_variable_values(params)
    theirs.finalize_variable_values(variables)
    for mine, v, p in zip(params, variables, plain):
        np.testing.assert_allclose(mine, np.asarray(v), rtol=2e-5, atol=2e-6)
        assert not np.allclose(mine, p, atol=1e-3)  # the average is not the last params
    assert type(ours).from_config(ours.get_config()).get_config() == ours.get_config()
    assert {k: ours.get_config()[k] for k in ("use_ema", "ema_momentum", "ema_overwrite_frequency")} == \
        {k: theirs.get_config()[k] for k in ("use_ema", "ema_momentum", "ema_overwrite_frequency")}


@pytest.mark.parametrize("frequency", [None, 2])
def test_fit_ends_on_the_moving_average_as_keras(keras, frequency):
    """fit with use_ema, on the same weights and data as Keras: the same History and the same
    weights after it (the averages, written in after the last epoch)."""
    from keras_twins import assert_history_equal, assert_weights_equal, data, twins

    from minicnn.optimizers import SGD
    x, y = data()
    ours, theirs = twins(keras)
    kwargs = {"learning_rate": 0.1, "momentum": 0.5, "use_ema": True, "ema_momentum": 0.7,
              "ema_overwrite_frequency": frequency}
    ours.compile(optimizer=SGD(**kwargs), loss="categorical_crossentropy", metrics=["accuracy"])
    theirs.compile(optimizer=keras.optimizers.SGD(**kwargs), loss="categorical_crossentropy", metrics=["accuracy"])
    fit = {"batch_size": 4, "epochs": 3, "shuffle": False, "verbose": 0}
    assert_history_equal(ours.fit(x, y, **fit), theirs.fit(x, y, **fit))
    assert_weights_equal(ours, theirs)
    last = ours.get_weights()
    ours.optimizer.finalize_variable_values(ours.trainable_weights)  # already done: nothing changes
    assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), last))


def test_moving_average_is_saved_and_goes_on_after_loading(rng, tmp_path):
    from minicnn.optimizers import Adam
    x, y = rng.random((16, 2, 2)).astype(np.float32), np.arange(16) % 2

    def model():
        m = Sequential([Flatten(input_shape=(2, 2)), Dense(2, activation="softmax")])
        m.compile(loss="sparse_categorical_crossentropy", optimizer=Adam(0.05, use_ema=True, ema_momentum=0.9,
                                                                         ema_overwrite_frequency=5))
        return m
    a = model()
    a.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    again = load_model(a.save(tmp_path / "ema.npz"))
    assert again.optimizer.get_config() == a.optimizer.get_config()
    assert again.optimizer.get_config()["ema_overwrite_frequency"] == 5
    for s, t in zip(a.optimizer.slots, again.optimizer.slots):
        np.testing.assert_array_equal(s["average"], t["average"])
    for m in (a, again):
        m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for u, v in zip(a.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_moving_average_arguments_are_checked():
    with pytest.raises(ValueError, match="ema_momentum"):
        Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        SGD(use_ema=True, ema_overwrite_frequency=2.5)
    Adam(ema_momentum=1.5)  # as Keras: checked only when the average is kept
    opt = Adam(use_ema=True)
    opt.apply_gradients([(np.ones(2), np.zeros(2))] * 2)
    with pytest.raises(ValueError, match="length of model variables"):
        opt.finalize_variable_values([np.zeros(2)])
