"""Training never loses work: non-finite steps are refused, Ctrl-C leaves a consistent model,
bad inputs get errors that say what to do, and the numerics stay finite and float32."""
import signal

import numpy as np
import pytest
from toy import small_data, small_model

from minicnn import losses
from minicnn.activations import softmax
from minicnn.callbacks import Callback
from minicnn.io import interrupts_deferred
from minicnn.layers import Dense
from minicnn.models import Sequential
from minicnn.optimizers import SGD, Adam, AdamW, NonFiniteError
from minicnn.utils import set_random_seed


def compiled(optimizer="adam"):
    set_random_seed(11)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def snapshot(model):
    opt = model.optimizer
    slots = [{k: v.copy() for k, v in s.items()} for s in opt.slots] if opt.slots else None
    return model.get_weights(), slots, opt.iterations


def assert_same_state(model, state):
    weights, slots, iterations = state
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == iterations
    if slots is not None:
        for mine, saved in zip(model.optimizer.slots, slots):
            for k in saved:
                np.testing.assert_array_equal(mine[k], saved[k])


def test_nan_or_inf_inputs_are_refused():
    model = compiled()
    x, y = small_data(32)
    x[5, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or Inf values \(the first at index \(5, 2, 3, 0\)\)"):
        model.fit(x, y, verbose=0)
    x[5, 2, 3, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.predict(x, verbose=0)
    x64 = small_data(32)[0].astype(np.float64)
    x64[0, 0, 0, 0] = 1e300  # finite in float64, Inf once cast to the model's float32
    with pytest.raises(ValueError, match="beyond float32's range"):
        model.evaluate(x64, y, verbose=0)


def test_a_non_finite_step_is_never_applied_and_fit_names_the_batch():
    model = compiled()
    x, y = small_data(64)
    model.fit(x[:32], y[:32], batch_size=16, epochs=1, verbose=0)  # two good steps: Adam has state
    state = snapshot(model)
    bad = x.copy()
    bad[40:] *= 1e30  # overflows inside the network (Keras ends such a run with NaN weights)
    with pytest.raises(NonFiniteError, match=r"epoch 1/3, batch 3/4: .*last good step.*scaled"):
        model.fit(bad, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    # the two steps before the bad batch were applied, then nothing: every weight finite
    assert model.optimizer.iterations == state[2] + 2
    assert all(np.isfinite(w).all() for w in model.get_weights())
    after = snapshot(model)
    with pytest.raises(NonFiniteError, match="not applied"):
        model.train_on_batch(bad[48:], y[48:])
    assert_same_state(model, after)
    assert len(model.history.history.get("loss", [])) == 0  # no epoch was completed


def test_an_update_that_overflows_is_refused():
    """Finite gradients, but a learning rate that throws the weights past float32's range."""
    model = compiled(SGD(learning_rate=1e38))
    x, y = small_data(16)
    x *= 100
    model.build((None, 8, 8, 1))
    state = (model.get_weights(), None, 0)
    model.forward(x, training=True)
    model.backward(y, model.forward(x, training=True))
    largest = max(np.abs(g).max() for g, _ in model.grads_and_params())
    assert np.isfinite(largest) and float(largest) * 1e38 > float(np.finfo(np.float32).max)  # the update overflows
    with pytest.raises(NonFiniteError, match="update of param"):
        model.train_on_batch(x, y)
    assert_same_state(model, state)


class InterruptAt(Callback):
    """Ctrl-C after batch `step` of epoch `epoch` (counted from 0)."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch = (epoch, step), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt


def test_interrupt_between_batches_keeps_history_and_fit_goes_on():
    model = compiled()
    x, y = small_data(64)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[InterruptAt(1, 2)], shuffle=False)
    # epoch 1 (4 steps) finished and is in the History; epoch 2 stopped after its step 3
    assert model.history.epoch == [0] and len(model.history.history["loss"]) == 1
    assert model.optimizer.iterations == 4 + 3
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model.optimizer.iterations == 11 and len(history.history["loss"]) == 1


def test_interrupt_inside_a_batch_applies_nothing(each_backend, monkeypatch):
    """Ctrl-C in the middle of a step (here: in the optimizer, on its third param: the NumPy
    update on copies, or the Numba twin's checking pass) leaves weights and optimizer state
    exactly as before the step."""
    from minicnn.kernels import numba_kernels
    model = compiled()
    x, y = small_data(32)
    model.train_on_batch(x[:16], y[:16])
    state = snapshot(model)
    calls = []
    real_update, real_step = Adam.update, numba_kernels.adam_step

    def update_then_interrupt(self, p, g, slots, t):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_update(self, p, g, slots, t)

    def check_then_interrupt(params, grads, slots, *scalars, commit, decay=None):
        assert not commit  # the interrupt comes before anything is written
        real_step(params[:2], grads[:2], slots[:2], *scalars, commit=False, decay=decay)
        raise KeyboardInterrupt

    monkeypatch.setattr(Adam, "update", update_then_interrupt)
    monkeypatch.setattr(numba_kernels, "adam_step", check_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert_same_state(model, state)
    monkeypatch.setattr(Adam, "update", real_update)
    monkeypatch.setattr(numba_kernels, "adam_step", real_step)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # and training goes on
    assert model.optimizer.iterations == state[2] + 2


@pytest.mark.parametrize("make", [lambda: Adam(learning_rate=0.01), lambda: AdamW(learning_rate=0.01, weight_decay=0.3)],
                         ids=["Adam", "AdamW"])
def test_compiled_adam_takes_the_numpy_steps_and_refuses_overflow(make):
    """The Numba twin of Adam.update (and of AdamW's weight decay before it): the same float32
    operations, so the same new values; and an update that overflows is refused with nothing
    changed, as on the NumPy path."""
    from minicnn import backend
    rng = np.random.default_rng(0)
    p0 = [rng.standard_normal(s).astype(np.float32) for s in ((3, 3, 1, 4), (4,), (7, 5))]
    runs = []
    for name in ("numpy", "numba"):
        backend.set_backend(name)
        params, opt = [p.copy() for p in p0], make()
        for step in range(3):
            opt.apply_gradients((np.float32(step + 1) * p * p - 0.5, p) for p in params)
        runs.append((params, opt))
    backend._state["name"] = None
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(a, b, rtol=2e-7, atol=1e-9)
    for sa, sb in zip(runs[0][1].slots, runs[1][1].slots):
        np.testing.assert_allclose(sa["v"], sb["v"], rtol=2e-7)
    plain = [p.copy() for p in p0]
    Adam(learning_rate=0.01).apply_gradients((np.ones_like(p), p) for p in plain)
    decayed = [p.copy() for p in p0]
    make().apply_gradients((np.ones_like(p), p) for p in decayed)
    assert all(np.array_equal(a, b) for a, b in zip(plain, decayed)) == (type(make()) is Adam)  # the decay is applied
    backend.set_backend("numba")
    try:
        params = [p.copy() for p in p0]
        opt = type(make())(learning_rate=1e39)  # beyond float32: every step is Inf
        with pytest.raises(NonFiniteError, match="update of param 0"):
            opt.apply_gradients((np.ones_like(p), p) for p in params)
        assert opt.iterations == 0 and all(np.array_equal(a, b) for a, b in zip(params, p0))
        assert opt.slots is None  # the moments of the refused first step were never kept
    finally:
        backend._state["name"] = None


def test_interrupt_inside_backward_applies_nothing(monkeypatch):
    model = compiled()
    x, y = small_data(32)
    model.train_on_batch(x[:16], y[:16])
    state = snapshot(model)
    dense = model.layers[4]

    def backward(dy):
        raise KeyboardInterrupt

    monkeypatch.setattr(dense, "backward", backward)
    with pytest.raises(KeyboardInterrupt):
        model.train_on_batch(x[16:], y[16:])
    assert_same_state(model, state)


def test_ctrl_c_during_the_commit_is_held_back_until_it_ends():
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        # raise_signal: delivered to this (the main) thread at once; os.kill lets the system hand
        # it to any thread, and with TensorFlow's pools around it could arrive after the block
        signal.raise_signal(signal.SIGINT)
        done.append("the block ran to its end")
    assert done == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_float32_stays_float32_through_training_and_saving(tmp_path):
    model = compiled()
    x, y = small_data(32)
    model.fit(x.astype(np.float64), y, batch_size=16, verbose=0)
    from minicnn.models import load_model
    again = load_model(model.save(tmp_path / "m.npz"))
    for m in (model, again):
        assert all(w.dtype == np.float32 for w in m.get_weights())
        assert all(v.dtype == np.float32 for s in m.optimizer.slots for v in s.values())
        assert all(g.dtype == np.float32 for layer in m.layers for g in layer.grads.values())


def test_softmax_and_cross_entropy_stay_finite_at_extremes():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    p = softmax(z)
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1)
    y = np.array([[0, 1, 0], [1, 0, 0]], dtype=np.float32)
    for probs in (p, np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)):  # probabilities 0 and 1
        assert np.isfinite(losses.categorical_crossentropy(y, probs)).all()
        assert np.isfinite(losses.categorical_crossentropy_gradient(y, probs)).all()
        assert np.isfinite(losses.softmax_crossentropy_gradient(y, probs)).all()
    # a confidently wrong prediction costs -log(1e-7), Keras's clipped value, not Inf
    np.testing.assert_allclose(losses.categorical_crossentropy(y[:1], p[:1]), -np.log(1e-7), rtol=1e-5)


def test_fit_on_huge_logits_trains_finitely():
    model = Sequential([Dense(3, input_shape=(2,)), Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    model.set_weights([np.eye(2, 3, dtype=np.float32) * 100, np.zeros(3, np.float32),
                       np.eye(3, dtype=np.float32) * 100, np.zeros(3, np.float32)])
    x = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # logits of 1e4
    model.fit(x, np.array([1, 0]), epochs=2, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
