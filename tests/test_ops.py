"""Every op of minicnn.ops: its hand-written gradient against centred finite differences (float64),
through a GradientTape; a few against tf.GradientTape; NumPy's operators on recorded values."""
import numpy as np
import pytest

import minicnn
from minicnn import ops
from minicnn.gradcheck import numerical_gradient, relative_error
from minicnn.tape import GradientTape

RNG = np.random.default_rng(0)


def arr(*shape, positive=False):
    a = RNG.standard_normal(shape)
    return np.abs(a) + 0.5 if positive else a


# (name, function of the inputs, inputs): shapes with broadcasting, axes, keepdims, 1-D matmuls
CASES = [
    ("add", ops.add, [arr(3, 4), arr(4)]),
    ("subtract", ops.subtract, [arr(3, 1), arr(1, 4)]),
    ("multiply", ops.multiply, [arr(2, 3), arr(2, 1)]),
    ("divide", ops.divide, [arr(2, 3), arr(3, positive=True)]),
    ("negative", ops.negative, [arr(2, 3)]),
    ("power", ops.power, [arr(2, 3, positive=True), arr(3)]),
    ("power_number", lambda a: ops.power(a, 3), [arr(2, 3)]),
    ("square", ops.square, [arr(2, 3)]),
    ("sqrt", ops.sqrt, [arr(2, 3, positive=True)]),
    ("exp", ops.exp, [arr(2, 3)]),
    ("log", ops.log, [arr(2, 3, positive=True)]),
    ("log1p", ops.log1p, [arr(2, 3, positive=True)]),
    ("abs", ops.abs, [arr(2, 3)]),
    ("maximum", ops.maximum, [arr(2, 3), arr(2, 3)]),
    ("minimum", ops.minimum, [arr(2, 3), arr(3)]),
    ("clip", lambda a: ops.clip(a, -0.5, 0.7), [arr(3, 4)]),
    ("where", lambda a, b: ops.where(np.arange(4) % 2 == 0, a, b), [arr(3, 4), arr(3, 4)]),
    ("matmul", ops.matmul, [arr(3, 4), arr(4, 2)]),
    ("matmul_batched", ops.matmul, [arr(2, 3, 4), arr(4, 5)]),
    ("matmul_vector", ops.matmul, [arr(4), arr(4, 2)]),
    ("matmul_matrix_vector", ops.matmul, [arr(3, 4), arr(4)]),
    ("sum", lambda a: ops.sum(a, axis=1), [arr(2, 3, 4)]),
    ("sum_keepdims", lambda a: ops.sum(a, axis=(0, 2), keepdims=True), [arr(2, 3, 4)]),
    ("mean", ops.mean, [arr(2, 3)]),
    ("mean_axis", lambda a: ops.mean(a, axis=-1), [arr(2, 3)]),
    ("max", lambda a: ops.max(a, axis=0), [arr(3, 4)]),
    ("min", lambda a: ops.min(a, axis=1, keepdims=True), [arr(3, 4)]),
    ("reshape", lambda a: ops.reshape(a, (3, 4)), [arr(2, 6)]),
    ("transpose", lambda a: ops.transpose(a, (2, 0, 1)), [arr(2, 3, 4)]),
    ("expand_dims", lambda a: ops.expand_dims(a, 1), [arr(2, 3)]),
    ("squeeze", lambda a: ops.squeeze(a, 1), [arr(2, 1, 3)]),
    ("concatenate", lambda a, b: ops.concatenate([a, b], axis=1), [arr(2, 3), arr(2, 2)]),
    ("stack", lambda a, b: ops.stack([a, b], axis=-1), [arr(2, 3), arr(2, 3)]),
    ("getitem", lambda a: ops.getitem(a, (slice(1, None), slice(None, None, 2))), [arr(3, 4)]),
    ("getitem_repeated", lambda a: ops.getitem(a, np.array([0, 2, 0])), [arr(3, 4)]),
    ("cast", lambda a: ops.cast(ops.cast(a, "float32"), "float64"), [arr(2, 3)]),
    ("relu", ops.relu, [arr(3, 4)]),
    ("sigmoid", ops.sigmoid, [arr(3, 4)]),
    ("tanh", ops.tanh, [arr(3, 4)]),
    ("softplus", ops.softplus, [arr(3, 4)]),
    ("leaky_relu", ops.leaky_relu, [arr(3, 4)]),
    ("sign", ops.sign, [arr(3, 4)]),
    ("softmax", ops.softmax, [arr(3, 4)]),
    ("softmax_axis0", lambda a: ops.softmax(a, axis=0), [arr(3, 4)]),
    ("log_softmax", ops.log_softmax, [arr(3, 4)]),
]


def check(fn, inputs, eps=1e-6):
    """The tape's gradient of sum(fn(inputs) * dy) against centred differences, for each input."""
    y = fn(*inputs)
    dy = np.random.default_rng(1).standard_normal(np.shape(y))
    with GradientTape() as tape:
        tape.watch(inputs)
        loss = ops.sum(ops.multiply(fn(*inputs), dy))
    grads = tape.gradient(loss, inputs)
    errors = []
    for a, g in zip(inputs, grads):
        numeric = numerical_gradient(lambda: float(np.sum(np.asarray(fn(*inputs)) * dy)), a, eps)
        errors.append(relative_error(g, numeric))
    return errors


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_each_op_matches_finite_differences(name, fn, inputs):
    inputs = [a.copy() for a in inputs]
    eps = 1e-6 if name != "cast" else 1e-2  # float32 round trip: steps of 1e-6 drown in its rounding
    assert max(check(fn, inputs, eps)) < (1e-6 if name != "cast" else 1e-5)


def test_every_op_is_checked():
    """Each op that records itself (record("<name>", ...) in minicnn/ops.py) is run by a case above."""
    import inspect
    import re
    recorded = set(re.findall(r'record\("(\w+)"', inspect.getsource(ops)))
    seen = set()
    for _, fn, inputs in CASES:
        with GradientTape() as tape:
            fn(*[a.copy() for a in inputs])
        seen |= {r.name for r in tape.records}
    assert recorded - seen == set()


def test_python_operators_on_recorded_values():
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    w = minicnn.Variable(np.array([[1.0], [-2.0]]))

    def fn(x):
        y = ops.tanh(x @ w) * 2 - 1.5 / (ops.exp(x).sum(axis=1, keepdims=True) + 1)
        return (-y) ** 2 + abs(y).mean() + y.T.reshape(-1)[0] + np.exp(y) + np.sum(y, axis=0) + y.max()
    with GradientTape() as tape:
        tape.watch(x)
        loss = ops.sum(fn(x))
    gx, gw = tape.gradient(loss, [x, w])
    assert relative_error(gx, numerical_gradient(lambda: float(np.sum(np.asarray(fn(x)))), x)) < 1e-6
    assert relative_error(gw, numerical_gradient(lambda: float(np.sum(np.asarray(fn(x)))), w.view(np.ndarray))) < 1e-6


def test_constants_carry_no_gradient():
    x = np.array([1.0, 2.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.stop_gradient(ops.square(x)) * ops.ones_like(x) + ops.zeros_like(x) + ops.square(x))
    np.testing.assert_allclose(tape.gradient(y, x), 2 * x)


def test_ops_outside_a_tape_are_plain_numpy():
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(ops.softmax(a), np.exp(a) / np.exp(a).sum(-1, keepdims=True), rtol=1e-12)
    assert ops.sum(a).numpy() == 15.0  # TensorFlow's .numpy()


def test_ops_match_tensorflow():
    tf = pytest.importorskip("tensorflow")
    x, w = RNG.standard_normal((3, 4)).astype(np.float32), RNG.standard_normal((4, 2)).astype(np.float32)
    with GradientTape() as tape:
        tape.watch([x, w])
        h = ops.matmul(x, w)
        y = ops.mean(ops.sigmoid(h) * ops.log_softmax(h)) + ops.max(ops.concatenate([h, -h], axis=1)) \
            + ops.sum(ops.maximum(h, 0.1) / ops.sqrt(ops.square(h) + 1.0))
    gx, gw = tape.gradient(y, [x, w])
    with tf.GradientTape() as t:
        xt, wt = tf.constant(x), tf.constant(w)
        t.watch([xt, wt])
        h = tf.matmul(xt, wt)
        yt = tf.reduce_mean(tf.sigmoid(h) * tf.nn.log_softmax(h)) + tf.reduce_max(tf.concat([h, -h], axis=1)) \
            + tf.reduce_sum(tf.maximum(h, 0.1) / tf.sqrt(tf.square(h) + 1.0))
    ex, ew = t.gradient(yt, [xt, wt])
    assert relative_error(gx, ex.numpy()) < 1e-5 and relative_error(gw, ew.numpy()) < 1e-5


def test_ties_route_the_gradient_as_tensorflow():
    tf = pytest.importorskip("tensorflow")
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 3.0])
    for op, tf_op in ((ops.maximum, tf.maximum), (ops.minimum, tf.minimum)):
        with GradientTape() as tape:
            tape.watch([a, b])
            y = ops.sum(op(a, b))
        with tf.GradientTape() as t:
            at, bt = tf.constant(a), tf.constant(b)
            t.watch([at, bt])
            yt = tf.reduce_sum(tf_op(at, bt))
        for g, e in zip(tape.gradient(y, [a, b]), t.gradient(yt, [at, bt])):
            np.testing.assert_array_equal(g, e.numpy())
