import numpy as np
import pytest

from minicnn import activations, losses
from minicnn.optimizers import SGD, Adam
from minicnn.utils import to_categorical


def test_crossentropy_values_by_hand():
    y = np.array([[0, 1, 0], [1, 0, 0]], dtype=np.float32)
    p = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]], dtype=np.float32)
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p), [-np.log(0.7), -np.log(0.5)], rtol=1e-6)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(np.array([1, 0]), p),
                               [-np.log(0.7), -np.log(0.5)], rtol=1e-6)


def test_crossentropy_finite_at_probabilities_zero_and_one():
    y = np.eye(3, dtype=np.float32)
    for p in (np.eye(3, dtype=np.float32), np.roll(np.eye(3, dtype=np.float32), 1, axis=1)):
        values = losses.categorical_crossentropy(y, p)
        grads = losses.categorical_crossentropy_gradient(y, p)
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    # a confident wrong answer costs -log(1e-7), a confident right one nearly nothing
    assert losses.categorical_crossentropy(y, np.roll(y, 1, axis=1))[0] == pytest.approx(-np.log(1e-7), rel=1e-4)


def test_softmax_and_crossentropy_finite_at_huge_logits():
    z = np.array([[1e4, -1e4, 0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    p = activations.softmax(z)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1)
    y = to_categorical([1, 0], 3)
    assert np.all(np.isfinite(losses.categorical_crossentropy(y, p)))
    assert np.all(np.isfinite(losses.softmax_crossentropy_gradient(y, p)))
    assert np.all(np.isfinite(activations.sigmoid(z)))


def test_sparse_labels_out_of_range():
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        losses.sparse_categorical_crossentropy(np.array([0, 3]), np.full((2, 3), 1 / 3))


def test_loss_lookup():
    assert losses.get("categorical_crossentropy") is losses.get(losses.categorical_crossentropy)
    assert losses.get("mse").name == "mean_squared_error"
    with pytest.raises(ValueError, match="valid losses: categorical_crossentropy"):
        losses.get("hinge")
    with pytest.raises(TypeError, match="hand-written gradient"):
        losses.get(lambda y, p: p)


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
