"""minicnn/kernels/derived.py: what inference derives from the weights (BatchNormalization folded
into the convolution, Winograd's filter transform) is kept between batches, and never served
once the weights it came from have changed, however they changed."""
import numpy as np
import pytest

import minicnn
import minicnn.layers
import minicnn.optimizers
from minicnn.kernels.derived import DerivedCache
from minicnn.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, Input, MaxPooling2D
from minicnn.models import Sequential


def counting(fn):
    calls = []

    def compute():
        calls.append(1)
        return fn()
    return compute, calls


def test_kept_while_the_sources_keep_their_values(rng):
    cache = DerivedCache(size=2)
    W, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    compute, calls = counting(lambda: W.sum(axis=0) + b)
    first = cache.get("layer", (W, b, None), compute)
    assert cache.get("layer", (W, b, None), compute) is first and len(calls) == 1
    assert cache.get("layer", (W.copy(), b.copy(), None), compute) is first  # equal values: the same result
    W[1, 2] += 1e-12  # in place, as an optimizer step or set_weights writes
    again = cache.get("layer", (W, b, None), compute)
    assert len(calls) == 2 and again is not first
    np.testing.assert_array_equal(again, W.sum(axis=0) + b)
    assert cache.get("layer", (W.astype(np.float32), b, None), compute) is not again  # another dtype
    assert cache.get("layer", (W, b, b), compute) is not None and len(calls) == 4  # None -> an array


def test_least_recently_used_key_goes_first_and_only_numpy_arrays_are_kept(rng):
    cache = DerivedCache(size=2)
    arrays = [rng.standard_normal(3) for _ in range(3)]
    compute, calls = counting(lambda: 0)
    for k, a in enumerate(arrays):
        cache.get(k, (a,), compute)
    assert list(cache.entries) == [1, 2] and len(calls) == 3
    cache.get(1, (arrays[1],), compute)
    cache.get(0, (arrays[0],), compute)  # evicted earlier: computed again, and 2 goes
    assert list(cache.entries) == [1, 0] and len(calls) == 4

    class NotNumPy(np.ndarray):  # a device array or any other array type: no copy kept, computed every time
        pass
    other = arrays[0].view(NotNumPy)
    cache.get("other", (other,), compute)
    cache.get("other", (other,), compute)
    assert len(calls) == 6 and "other" not in cache.entries


@pytest.mark.parametrize("batchnorm", [True, False])
def test_predictions_follow_weights_changed_in_place_between_batches(batchnorm, rng):
    """The folded weights (with BatchNormalization) and the Winograd filter transform (the fused
    Conv2D -> ReLU -> MaxPooling2D of an even output) are kept between predict calls; writing into
    a weight, a moving statistic or gamma in place must change the next prediction as a model run
    layer by layer says."""
    minicnn.backend.set_backend("numba")
    try:
        block = ([Conv2D(8, 3, padding="same", use_bias=False), BatchNormalization(), Activation("relu")]
                 if batchnorm else [Conv2D(8, 3, padding="same", activation="relu")])
        model = Sequential([Input((8, 8, 6)), *block, MaxPooling2D(2), Flatten(), Dense(3)])
        x = rng.standard_normal((5, 8, 8, 6)).astype(np.float32)

        def by_layer():  # on the NumPy reference, which keeps nothing
            minicnn.backend.set_backend("numpy")
            y = x
            for layer in model.layers:
                y = layer.forward(y)
            minicnn.backend.set_backend("numba")
            return y
        conv = model.layers[0]
        writes = [lambda: conv.params["W"].__iadd__(0.5)]
        if batchnorm:
            bn = model.layers[1]
            writes += [lambda: bn.state["moving_mean"].__iadd__(0.3), lambda: bn.state["moving_variance"].__imul__(2.0),
                       lambda: bn.params["gamma"].__isub__(0.25)]
        for write in [lambda: None, *writes]:
            write()
            for _ in range(2):  # the second call is served from what the first kept
                np.testing.assert_allclose(model.predict(x, verbose=0), by_layer(), rtol=1e-4, atol=1e-5)
    finally:
        minicnn.backend._state["name"] = None


def _changes(model, x, y, rng):
    """Every kind of in-place change to the weights a kept result comes from: (name, change)."""
    conv = model.layers[0]
    bn = model.layers[1] if isinstance(model.layers[1], BatchNormalization) else None

    def set_all():  # model.set_weights: every array written in place with new values
        model.set_weights([w + rng.uniform(-0.3, 0.3, w.shape).astype(w.dtype) * (k % 4 != 3 or bn is None)
                           for k, w in enumerate(model.get_weights())])
    changes = [
        ("kernel, one element", lambda: conv.params["W"].__setitem__((1, 1, 0, 2), 2.0)),
        ("kernel, all", lambda: conv.params["W"].__imul__(1.5)),
        ("conv bias", lambda: conv.params["b"].__iadd__(np.arange(8, dtype=np.float32) / 4)),
        ("layer.set_weights", lambda: conv.set_weights([w * 0.5 for w in conv.get_weights()])),
        ("model.set_weights", set_all),
    ]
    if bn is not None:
        changes += [
            ("gamma", lambda: bn.params["gamma"].__isub__(0.25)),
            ("beta", lambda: bn.params["beta"].__iadd__(0.5)),
            ("moving_mean", lambda: bn.state["moving_mean"].__iadd__(0.3)),
            ("moving_variance", lambda: bn.state["moving_variance"].__imul__(2.0)),
            ("bn.set_weights", lambda: bn.set_weights([w[::-1].copy() for w in bn.get_weights()])),
        ]
    return changes + [("optimizer step", lambda: model.train_on_batch(x, y))]


@pytest.mark.parametrize("batchnorm", [True, False], ids=["folded_batchnorm", "winograd"])
def test_every_kind_of_weight_change_reaches_predict_as_keras_sees_it(batchnorm, keras, rng):
    """After each kind of in-place change (a kernel element, the conv bias, gamma, beta, each
    moving statistic; by a direct write, layer.set_weights, model.set_weights or an optimizer
    step), predict (twice: the second is served from what the first kept) equals Keras's predict
    with the same weights: an independent reference, which keeps nothing."""
    minicnn.backend.set_backend("numba")
    try:
        def layers(m, **first):
            block = [m.Conv2D(8, 3, padding="same", **first), m.BatchNormalization(), m.Activation("relu")] \
                if batchnorm else [m.Conv2D(8, 3, padding="same", activation="relu", **first)]
            return [*block, m.MaxPooling2D(2), m.Flatten(), m.Dense(3)]  # logits: no softmax to saturate
        model = Sequential(layers(minicnn.layers, input_shape=(8, 8, 6)))
        k_model = keras.Sequential([keras.Input((8, 8, 6)), *layers(keras.layers)])
        model.compile(optimizer=minicnn.optimizers.SGD(0.05), loss="mse")
        x = rng.standard_normal((5, 8, 8, 6)).astype(np.float32)
        y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]]
        if batchnorm:  # statistics and scales away from 0 and 1, so that each one shows
            model.layers[1].set_weights([np.linspace(0.5, 2, 8, dtype=np.float32), np.linspace(-1, 1, 8, dtype=np.float32),
                                         np.linspace(-0.5, 0.5, 8, dtype=np.float32), np.linspace(0.5, 3, 8, dtype=np.float32)])
        for name, change in [("none", lambda: None), *_changes(model, x, y, rng)]:
            change()
            k_model.set_weights(model.get_weights())
            want = k_model.predict(x, verbose=0)
            for _ in range(2):
                np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5, err_msg=name)
    finally:
        minicnn.backend._state["name"] = None
