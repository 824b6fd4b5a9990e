"""Run one layer in minicnn and its twin in Keras 3 on the same weights and inputs, and compare
what each computes: the output, the input gradients and the weight gradients of sum(y * dy)."""
import numpy as np

from minicnn import summary
from minicnn.models import load_model


def keras_pass(tf, klayer, xs, dy):
    """Keras's y, dL/dx (a list for a list of inputs) and [dL/dw for its trainable weights], with
    L = sum(klayer(xs) * dy), through tf.GradientTape."""
    many = isinstance(xs, list)
    ts = [tf.constant(x) for x in (xs if many else [xs])]
    with tf.GradientTape() as tape:
        for t in ts:
            tape.watch(t)
        y = klayer(ts if many else ts[0])
        loss = tf.reduce_sum(y * dy)
    grads = tape.gradient(loss, [*ts, *klayer.trainable_weights])
    dxs = [np.zeros(t.shape, np.float32) if g is None else np.asarray(g) for g in grads[:len(ts)]]
    return np.asarray(y), dxs if many else dxs[0], [np.asarray(g) for g in grads[len(ts):]]


def assert_same_pass(layer, klayer, xs, tf, rng, tol=1e-5):
    """layer (minicnn) and klayer (Keras) hold the same weights: the same y, dx and weight grads
    (params in Keras's trainable order), to tol in float32."""
    y = layer.forward(xs, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    k_y, k_dx, k_grads = keras_pass(tf, klayer, xs, dy)
    assert y.shape == k_y.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, k_y, rtol=tol, atol=tol)
    dx = layer.backward(dy)
    for mine, theirs in zip(dx if isinstance(xs, list) else [dx], k_dx if isinstance(xs, list) else [k_dx]):
        np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol)
    assert len(layer.grads) == len(k_grads)
    for key, theirs in zip(layer.params, k_grads):
        np.testing.assert_allclose(layer.grads[key], theirs, rtol=tol, atol=tol, err_msg=key)


def assert_summary_matches(model, kmodel):
    """Each layer's output shape and parameter count, as Keras's summary lists them."""
    klayers = [k for k in kmodel.layers if type(k).__name__ != "InputLayer"]
    entries = summary.layer_calls(model)
    assert [type(e[0]).__name__ for e in entries] == [type(k).__name__ for k in klayers]
    for (layer, _, out, _), klayer in zip(entries, klayers):
        assert tuple(out) == tuple(klayer.output.shape), layer.name
        assert layer.count_params() == klayer.count_params(), layer.name
    assert model.count_params() == kmodel.count_params()


def assert_saved_and_loaded(model, x, tmp_path):
    """The model saved and loaded predicts the same; every layer's config survives from_config."""
    again = load_model(model.save(tmp_path / "model.npz"))
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.get_config() == model.get_config()
    for layer in model.layers:
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config(), layer.name
    return again
